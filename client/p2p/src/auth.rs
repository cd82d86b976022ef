//! Publisher signatures on requests: sr25519 (schnorrkel) with Substrate's signing context, so
//! the key that owns the deal on chain is the key that signs.
//!
//! Signed messages, all integers little endian (as SCALE):
//! - manifest: `"podchain/manifest/1" || deal_id (u64) || publisher (32) || provider ed25519
//!   key (32) || blake2_256(sealed payload)`;
//! - logs: `"podchain/logs/1" || deal_id (u64) || publisher (32) || provider ed25519 key (32)
//!   || timestamp_ms (u64) || nonce (16) || blake2_256(query)`.
//!
//! Messages stay under 256 bytes, so signers that pre-hash longer payloads sign them as is.

use std::collections::HashMap;

use schnorrkel::{signing_context, PublicKey, Signature};

use crate::error::AuthError;

/// Signing context of Substrate's sr25519 signatures (`sp-core`, `subxt-signer`).
pub const SIGNING_CONTEXT: &[u8] = b"substrate";

/// Domain of manifest delivery signatures.
pub const MANIFEST_DOMAIN: &[u8] = b"podchain/manifest/1";

/// Domain of log request signatures.
pub const LOGS_DOMAIN: &[u8] = b"podchain/logs/1";

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

/// Refuses requests whose timestamp is too far from local time, and requests seen before.
///
/// A request is remembered until its timestamp leaves the window, after which the timestamp
/// check refuses it anyway; so memory stays bounded by the request rate times the window.
#[derive(Debug)]
pub struct ReplayGuard {
	max_skew_ms: u64,
	capacity: usize,
	/// `(publisher, nonce)` to the time (ms) after which the entry can be forgotten.
	seen: HashMap<([u8; 32], [u8; 16]), u64>,
}

impl ReplayGuard {
	/// A guard accepting timestamps within `max_skew` of local time, remembering at most
	/// `capacity` requests.
	pub fn new(max_skew: std::time::Duration, capacity: usize) -> Self {
		let max_skew_ms = u64::try_from(max_skew.as_millis()).unwrap_or(u64::MAX);
		Self { max_skew_ms, capacity, seen: HashMap::new() }
	}

	/// Checks freshness and uniqueness of an authenticated request, and remembers it. Call only
	/// after the signature verified, so others cannot fill the memory with made-up nonces.
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
		let key = (*publisher, *nonce);
		if self.seen.contains_key(&key) {
			return Err(AuthError::Replayed);
		}
		if self.seen.len() >= self.capacity {
			self.seen.retain(|_, forget_at| *forget_at > now_ms);
			if self.seen.len() >= self.capacity {
				return Err(AuthError::Busy);
			}
		}
		self.seen.insert(key, timestamp_ms.saturating_add(self.max_skew_ms));
		Ok(())
	}
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
		let mut guard = ReplayGuard::new(std::time::Duration::from_secs(60), 2);
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
		// Full: nothing has expired yet.
		assert_eq!(guard.check(&[1; 32], &[3; 16], now, now), Err(AuthError::Busy));
		// Later the old entries are forgotten and room is made.
		assert_eq!(guard.check(&[1; 32], &[3; 16], now + 60_000, now + 60_000), Ok(()));
	}
}
