//! Publisher signatures on requests: sr25519 (schnorrkel) with Substrate's signing context, so
//! the key that owns the deal on chain is the key that signs.
//!
//! Signed messages, all integers little endian (as SCALE):
//! - manifest: `"podchain/manifest/1" || deal_id (u64) || publisher (32) || provider ed25519
//!   key (32) || blake2_256(sealed payload)`;
//! - logs: `"podchain/logs/1" || deal_id (u64) || publisher (32) || provider ed25519 key (32)
//!   || timestamp_ms (u64) || nonce (16) || blake2_256(query)`;
//! - image offer: `"podchain/image-offer/1" || deal_id (u64) || publisher (32) || provider
//!   ed25519 key (32) || image manifest sha256 (32) || blake2_256(sealed manifest)`;
//! - image chunk: `"podchain/image-chunk/1" || deal_id (u64) || publisher (32) || provider
//!   ed25519 key (32) || blob sha256 (32) || offset (u64) || blake2_256(sealed bytes)`.
//!
//! Messages stay under 256 bytes, so signers that pre-hash longer payloads sign them as is.

use std::collections::{HashMap, VecDeque};

use schnorrkel::{signing_context, PublicKey, Signature};

use crate::error::AuthError;

/// Signing context of Substrate's sr25519 signatures (`sp-core`, `subxt-signer`).
pub const SIGNING_CONTEXT: &[u8] = b"substrate";

/// Domain of manifest delivery signatures.
pub const MANIFEST_DOMAIN: &[u8] = b"podchain/manifest/1";

/// Domain of log request signatures.
pub const LOGS_DOMAIN: &[u8] = b"podchain/logs/1";

/// Domain of image offer signatures.
pub const IMAGE_OFFER_DOMAIN: &[u8] = b"podchain/image-offer/1";

/// Domain of image chunk signatures.
pub const IMAGE_CHUNK_DOMAIN: &[u8] = b"podchain/image-chunk/1";

/// A publisher's sr25519 key: implemented by the CLI over `subxt-signer`'s keypair.
pub trait PublisherSigner {
	/// The publisher's account: its 32-byte sr25519 public key.
	fn public(&self) -> [u8; 32];
	/// Signs `message` with signing context `b"substrate"`.
	fn sign(&self, message: &[u8]) -> [u8; 64];
}

impl PublisherSigner for schnorrkel::Keypair {
	fn public(&self) -> [u8; 32] {
		self.public.to_bytes()
	}

	fn sign(&self, message: &[u8]) -> [u8; 64] {
		schnorrkel::Keypair::sign(self, signing_context(SIGNING_CONTEXT).bytes(message)).to_bytes()
	}
}

/// Checks an sr25519 signature by `publisher` over `message`.
pub fn verify(publisher: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> Result<(), AuthError> {
	let key = PublicKey::from_bytes(publisher).map_err(|_| AuthError::InvalidPublicKey)?;
	let signature = Signature::from_bytes(signature).map_err(|_| AuthError::BadSignature)?;
	key.verify_simple(SIGNING_CONTEXT, message, &signature).map_err(|_| AuthError::BadSignature)
}

/// The message a publisher signs to deliver a sealed manifest.
pub fn manifest_message(
	deal_id: u64,
	publisher: &[u8; 32],
	provider: &[u8; 32],
	sealed_digest: &[u8; 32],
) -> Vec<u8> {
	let mut message = Vec::with_capacity(MANIFEST_DOMAIN.len() + 8 + 3 * 32);
	message.extend_from_slice(MANIFEST_DOMAIN);
	message.extend_from_slice(&deal_id.to_le_bytes());
	message.extend_from_slice(publisher);
	message.extend_from_slice(provider);
	message.extend_from_slice(sealed_digest);
	message
}

/// The message a publisher signs to read a deal's logs.
pub fn logs_message(
	deal_id: u64,
	publisher: &[u8; 32],
	provider: &[u8; 32],
	timestamp_ms: u64,
	nonce: &[u8; 16],
	query_digest: &[u8; 32],
) -> Vec<u8> {
	let mut message = Vec::with_capacity(LOGS_DOMAIN.len() + 8 + 2 * 32 + 8 + 16 + 32);
	message.extend_from_slice(LOGS_DOMAIN);
	message.extend_from_slice(&deal_id.to_le_bytes());
	message.extend_from_slice(publisher);
	message.extend_from_slice(provider);
	message.extend_from_slice(&timestamp_ms.to_le_bytes());
	message.extend_from_slice(nonce);
	message.extend_from_slice(query_digest);
	message
}

/// The message a publisher signs to offer the image manifest `manifest_digest` for a deal.
pub fn image_offer_message(
	deal_id: u64,
	publisher: &[u8; 32],
	provider: &[u8; 32],
	manifest_digest: &[u8; 32],
	sealed_digest: &[u8; 32],
) -> Vec<u8> {
	let mut message = Vec::with_capacity(IMAGE_OFFER_DOMAIN.len() + 8 + 4 * 32);
	message.extend_from_slice(IMAGE_OFFER_DOMAIN);
	message.extend_from_slice(&deal_id.to_le_bytes());
	message.extend_from_slice(publisher);
	message.extend_from_slice(provider);
	message.extend_from_slice(manifest_digest);
	message.extend_from_slice(sealed_digest);
	message
}

/// The message a publisher signs to send bytes of blob `digest` at `offset` for a deal. No
/// timestamp or nonce: chunks are idempotent (see [`crate::image::ImageChunk`]).
pub fn image_chunk_message(
	deal_id: u64,
	publisher: &[u8; 32],
	provider: &[u8; 32],
	digest: &[u8; 32],
	offset: u64,
	sealed_digest: &[u8; 32],
) -> Vec<u8> {
	let mut message = Vec::with_capacity(IMAGE_CHUNK_DOMAIN.len() + 8 + 4 * 32 + 8);
	message.extend_from_slice(IMAGE_CHUNK_DOMAIN);
	message.extend_from_slice(&deal_id.to_le_bytes());
	message.extend_from_slice(publisher);
	message.extend_from_slice(provider);
	message.extend_from_slice(digest);
	message.extend_from_slice(&offset.to_le_bytes());
	message.extend_from_slice(sealed_digest);
	message
}

/// How many recent requests of one publisher a [`ReplayGuard`] remembers by default.
pub const DEFAULT_REPLAY_PER_PUBLISHER: usize = 64;

/// Refuses requests whose timestamp is too far from local time, and requests seen before.
///
/// A request is remembered until its timestamp leaves the window, after which the timestamp
/// check refuses it anyway. The signature check before it does not keep strangers out: keys
/// are free, so anyone can sign requests with throwaway keys before the application finds that
/// they own no deal. Hence the bounds, each costing constant work per request:
/// - at most `per_publisher` requests of one publisher are remembered. Past that its request
///   with the oldest timestamp is forgotten and the publisher's timestamps must then be newer
///   than it, so its replays are still refused (only the key holder signs these timestamps);
/// - at most `capacity` requests in all. A full table forgets its oldest entries instead of
///   refusing everyone; a replay is then refused only while its original is remembered, so
///   keep `capacity` well above the expected request rate times twice the window.
#[derive(Debug)]
pub struct ReplayGuard {
	max_skew_ms: u64,
	capacity: usize,
	per_publisher: usize,
	/// The requests remembered, per publisher (at most `per_publisher` each).
	publishers: HashMap<[u8; 32], Recent>,
	/// Every remembered request, oldest first; also holds some already forgotten per
	/// publisher, skipped and compacted away.
	order: VecDeque<Seen>,
	/// How many requests are remembered (entries of `publishers`).
	len: usize,
}

/// One remembered request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
	publisher: [u8; 32],
	nonce: [u8; 16],
	timestamp_ms: u64,
}

/// The remembered requests of one publisher.
#[derive(Debug, Default)]
struct Recent {
	/// `(nonce, timestamp_ms)`, at most `per_publisher` of them.
	requests: Vec<([u8; 16], u64)>,
	/// Requests with timestamps up to this one are refused: some of them were forgotten.
	floor_ms: Option<u64>,
}

impl ReplayGuard {
	/// A guard accepting timestamps within `max_skew` of local time, remembering at most
	/// `capacity` requests in all and `per_publisher` of one publisher.
	pub fn new(max_skew: std::time::Duration, capacity: usize, per_publisher: usize) -> Self {
		let max_skew_ms = u64::try_from(max_skew.as_millis()).unwrap_or(u64::MAX);
		Self {
			max_skew_ms,
			capacity: capacity.max(1),
			per_publisher: per_publisher.max(1),
			publishers: HashMap::new(),
			order: VecDeque::new(),
			len: 0,
		}
	}

	/// How many requests are remembered.
	pub fn len(&self) -> usize {
		self.len
	}

	/// Whether no request is remembered.
	pub fn is_empty(&self) -> bool {
		self.len == 0
	}

	/// Checks freshness and uniqueness of a request whose signature verified, and remembers
	/// it. Constant work per call (amortised), however full the guard is.
	pub fn check(
		&mut self,
		publisher: &[u8; 32],
		nonce: &[u8; 16],
		timestamp_ms: u64,
		now_ms: u64,
	) -> Result<(), AuthError> {
		let skew_ms = timestamp_ms.abs_diff(now_ms);
		if skew_ms > self.max_skew_ms {
			return Err(AuthError::Stale { skew_ms, limit_ms: self.max_skew_ms });
		}
		self.expire(now_ms);

		if let Some(recent) = self.publishers.get_mut(publisher) {
			if recent.floor_ms.is_some_and(|floor| timestamp_ms <= floor)
				|| recent.requests.iter().any(|(seen, _)| seen == nonce)
			{
				return Err(AuthError::Replayed);
			}
			if recent.requests.len() >= self.per_publisher {
				// Forget the publisher's oldest request and refuse anything not newer.
				let Some((oldest, &(_, oldest_ms))) =
					recent.requests.iter().enumerate().min_by_key(|(_, (_, ms))| *ms)
				else {
					return Err(AuthError::Busy);
				};
				if timestamp_ms <= oldest_ms {
					return Err(AuthError::Busy);
				}
				recent.requests.swap_remove(oldest);
				recent.floor_ms = Some(recent.floor_ms.map_or(oldest_ms, |f| f.max(oldest_ms)));
				self.len -= 1;
			}
		}
		while self.len >= self.capacity {
			if !self.forget_oldest() {
				break;
			}
		}

		let recent = self.publishers.entry(*publisher).or_default();
		recent.requests.push((*nonce, timestamp_ms));
		self.order.push_back(Seen { publisher: *publisher, nonce: *nonce, timestamp_ms });
		self.len += 1;
		// Entries forgotten per publisher stay in `order` until they reach its front; sweep
		// them when they could outnumber the live ones (amortised: at most once per
		// `capacity` calls).
		if self.order.len() > 2 * self.capacity {
			let publishers = &self.publishers;
			self.order.retain(|seen| is_live(publishers, seen));
		}
		Ok(())
	}

	/// Forgets requests whose timestamps left the window (they are refused as stale now).
	fn expire(&mut self, now_ms: u64) {
		while let Some(front) = self.order.front().copied() {
			if !is_live(&self.publishers, &front) {
				self.order.pop_front();
			} else if front.timestamp_ms.saturating_add(self.max_skew_ms) < now_ms {
				self.order.pop_front();
				self.remove(&front);
			} else {
				break;
			}
		}
	}

	/// Forgets the oldest remembered request; false if there is none.
	fn forget_oldest(&mut self) -> bool {
		while let Some(front) = self.order.pop_front() {
			if is_live(&self.publishers, &front) {
				self.remove(&front);
				return true;
			}
		}
		false
	}

	/// Removes a live request from its publisher's entry.
	fn remove(&mut self, seen: &Seen) {
		let Some(recent) = self.publishers.get_mut(&seen.publisher) else { return };
		if let Some(at) = recent
			.requests
			.iter()
			.position(|&(nonce, ms)| nonce == seen.nonce && ms == seen.timestamp_ms)
		{
			recent.requests.swap_remove(at);
			self.len -= 1;
		}
		// Once none is left the entry goes. When the last one expired, the floor has left the
		// window too (every request kept after setting it was at least as new); when it was
		// forgotten because the table was full, the floor goes with it (see the type's doc).
		if recent.requests.is_empty() {
			self.publishers.remove(&seen.publisher);
		}
	}
}

/// Whether `seen` is still remembered (not forgotten per publisher). At most
/// `per_publisher` comparisons.
fn is_live(publishers: &HashMap<[u8; 32], Recent>, seen: &Seen) -> bool {
	publishers.get(&seen.publisher).is_some_and(|recent| {
		recent.requests.iter().any(|&(nonce, ms)| nonce == seen.nonce && ms == seen.timestamp_ms)
	})
}

/// Milliseconds since the Unix epoch, as the local clock says.
pub fn now_ms() -> u64 {
	std::time::SystemTime::now()
		.duration_since(std::time::UNIX_EPOCH)
		.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
		.unwrap_or(0)
}

#[cfg(test)]
mod tests {
	use super::*;
	use schnorrkel::{ExpansionMode, MiniSecretKey};

	fn keypair(seed: u8) -> schnorrkel::Keypair {
		MiniSecretKey::from_bytes(&[seed; 32]).unwrap().expand_to_keypair(ExpansionMode::Ed25519)
	}

	#[test]
	fn sign_and_verify() {
		let signer = keypair(1);
		let message = manifest_message(7, &signer.public(), &[2; 32], &[3; 32]);
		let signature = PublisherSigner::sign(&signer, &message);
		assert_eq!(verify(&signer.public(), &message, &signature), Ok(()));
		assert_eq!(
			verify(&keypair(2).public(), &message, &signature),
			Err(AuthError::BadSignature)
		);
		let other = manifest_message(8, &signer.public(), &[2; 32], &[3; 32]);
		assert_eq!(verify(&signer.public(), &other, &signature), Err(AuthError::BadSignature));
		assert_eq!(verify(&signer.public(), &message, &[0; 64]), Err(AuthError::BadSignature));
	}

	/// A signature made by `py-sr25519-bindings` (Substrate's sr25519 with context "substrate",
	/// seed `[7; 32]`, message "podchain kat"): the keys and signatures of Substrate tools verify.
	#[test]
	fn verifies_substrate_signature() {
		let public: [u8; 32] =
			hex::decode("7c0f469d3bd340bae718203fa30ca071a5e37c751e891dbded837b213d45d91d")
				.unwrap()
				.try_into()
				.unwrap();
		let signature: [u8; 64] = hex::decode(
			"6e59c916502c90890d1d710227410e2ae683b18ca2e0ac71294bebd32bc32668\
			 b3b7122f3981085732aa5d431610ffa9b9d609c85f2bb6567798d19dbbdde780",
		)
		.unwrap()
		.try_into()
		.unwrap();
		assert_eq!(keypair(7).public(), public);
		assert_eq!(verify(&public, b"podchain kat", &signature), Ok(()));
		assert_eq!(verify(&public, b"podchain kaT", &signature), Err(AuthError::BadSignature));
	}

	#[test]
	fn replay_guard() {
		let mut guard = ReplayGuard::new(std::time::Duration::from_secs(60), 2, 64);
		let now = 1_000_000;
		assert_eq!(guard.check(&[1; 32], &[1; 16], now, now), Ok(()));
		assert_eq!(guard.check(&[1; 32], &[1; 16], now, now), Err(AuthError::Replayed));
		assert_eq!(guard.check(&[2; 32], &[1; 16], now - 59_000, now), Ok(()));
		assert!(matches!(
			guard.check(&[1; 32], &[2; 16], now - 61_000, now),
			Err(AuthError::Stale { .. })
		));
		assert!(matches!(
			guard.check(&[1; 32], &[2; 16], now + 61_000, now),
			Err(AuthError::Stale { .. })
		));
		// Full: the oldest is forgotten rather than the newcomer refused.
		assert_eq!(guard.check(&[1; 32], &[3; 16], now, now), Ok(()));
		assert_eq!(guard.len(), 2);
		// The remembered ones are still refused.
		assert_eq!(guard.check(&[2; 32], &[1; 16], now - 59_000, now), Err(AuthError::Replayed));
		assert_eq!(guard.check(&[1; 32], &[3; 16], now, now), Err(AuthError::Replayed));
		// Later the old entries expire.
		assert_eq!(guard.check(&[3; 32], &[1; 16], now + 61_000, now + 120_001), Ok(()));
		assert_eq!(guard.len(), 1);
	}

	/// Requests signed with throwaway keys (free to make) neither lock out real publishers nor
	/// make each check scan the table.
	#[test]
	fn replay_guard_survives_throwaway_keys() {
		let capacity = 100_000;
		let mut guard = ReplayGuard::new(std::time::Duration::from_secs(60), capacity, 64);
		let now = 1_000_000;
		let throwaway = |i: u64| {
			let mut key = [0; 32];
			key[..8].copy_from_slice(&i.to_le_bytes());
			key
		};
		// Three times the capacity within the window: a scan per check would take ~10^10
		// steps here, and the old guard answered Busy to everyone once full.
		let started = std::time::Instant::now();
		for i in 0..3 * capacity as u64 {
			assert_eq!(guard.check(&throwaway(i), &[0; 16], now + i % 1000, now), Ok(()), "{i}");
		}
		assert!(started.elapsed() < std::time::Duration::from_secs(20));
		assert_eq!(guard.len(), capacity);
		let real = [0xff; 32];
		assert_eq!(guard.check(&real, &[1; 16], now, now), Ok(()));
		assert_eq!(guard.check(&real, &[1; 16], now, now), Err(AuthError::Replayed));
		assert!(guard.order.len() <= 2 * capacity);
	}

	#[test]
	fn replay_guard_caps_each_publisher() {
		let mut guard = ReplayGuard::new(std::time::Duration::from_secs(60), 100, 4);
		let now = 1_000_000;
		let key = [7; 32];
		for i in 0..1000u64 {
			let nonce =
				[(i % 251) as u8, (i / 251) as u8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
			assert_eq!(guard.check(&key, &nonce, now + i, now), Ok(()), "{i}");
			assert!(guard.len() <= 4);
		}
		// Forgotten tail entries do not pile up.
		assert!(guard.order.len() <= 200);
		// Other publishers keep their room.
		for i in 100..196u8 {
			assert_eq!(guard.check(&[i; 32], &[1; 16], now, now), Ok(()));
		}
		assert_eq!(guard.len(), 100);
		// The remembered requests of the busy key are refused, and so are the forgotten ones:
		// its timestamps must now be newer than the last one forgotten.
		let last = [(999 % 251) as u8, (999 / 251) as u8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
		assert_eq!(guard.check(&key, &last, now + 999, now), Err(AuthError::Replayed));
		assert_eq!(
			guard.check(&key, &[0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], now, now),
			Err(AuthError::Replayed)
		);
		assert_eq!(guard.check(&key, &[9; 16], now + 1000, now), Ok(()));
	}
}
