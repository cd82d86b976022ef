//! Wire types of podchain's two request-response protocols, CBOR-encoded (byte fields as CBOR
//! byte strings), one request and one response per stream:
//!
//! - `/podchain/manifest/1`: [`ManifestRequest`] answered by [`ManifestResponse`];
//! - `/podchain/logs/1`: [`LogsRequest`] answered by [`LogsResponse`]. Following logs is the
//!   client asking again from [`LogChunk::next_cursor`].
//!
//! A change of any type here is a new protocol version (`/2`), not an edit.

use libp2p::{PeerId, StreamProtocol};
use rand::{rngs::OsRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::{
	auth::{self, PublisherSigner},
	blake2_256,
	error::{AuthError, P2pError},
	seal::{self, OpeningKey, SealedPayload},
};

/// Protocol name of manifest delivery.
pub const MANIFEST_PROTOCOL: StreamProtocol = StreamProtocol::new("/podchain/manifest/1");

/// Protocol name of log reading.
pub const LOGS_PROTOCOL: StreamProtocol = StreamProtocol::new("/podchain/logs/1");

/// Largest manifest (plaintext) that can be delivered: the largest a provider will parse.
pub const MAX_MANIFEST_SIZE: usize = podchain_manifest::limits::MAX_MANIFEST_BYTES;

/// Largest encoded manifest request: the sealed manifest plus room for the other fields.
pub const MAX_MANIFEST_REQUEST_BYTES: u64 = MAX_MANIFEST_SIZE as u64 + 4096;

/// Largest encoded log chunk; an agent keeps its chunks below this, minus some slack.
pub const MAX_LOGS_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;

/// Largest encoded message of any other kind (manifest responses, log requests).
pub const MAX_SMALL_MESSAGE_BYTES: u64 = 64 * 1024;

/// Why a provider refused a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RejectReason {
	/// The provider knows no such deal (or not yet: its chain view may lag).
	#[error("unknown deal")]
	UnknownDeal,
	/// The signer is not the deal's publisher.
	#[error("not the deal's publisher")]
	NotPublisher,
	/// The manifest's blake2-256 hash differs from the one on chain.
	#[error("manifest hash does not match the deal")]
	HashMismatch,
	/// The sealed manifest could not be decrypted by the provider.
	#[error("manifest cannot be decrypted")]
	Undecryptable,
	/// The publisher's signature does not verify.
	#[error("bad signature")]
	BadSignature,
	/// The request's timestamp is too far from the provider's clock.
	#[error("request too old or too far in the future")]
	Stale,
	/// The same request was already received.
	#[error("request replayed")]
	Replayed,
	/// The payload exceeds the provider's limit.
	#[error("payload too large")]
	TooLarge,
	/// The provider is overloaded; try again later.
	#[error("provider busy")]
	Busy,
	/// The deal is closing: it runs no manifest any more.
	#[error("the deal is closing")]
	DealClosing,
	/// The manifest is valid but this provider cannot run it for the deal (it needs more than
	/// the deal reserved, or a resource the cluster lacks); the text says why.
	#[error("the provider cannot run this manifest: {0}")]
	Unrunnable(String),
	/// Something failed on the provider's side.
	#[error("provider error: {0}")]
	Internal(String),
}

impl From<AuthError> for RejectReason {
	fn from(error: AuthError) -> Self {
		match error {
			AuthError::InvalidPublicKey | AuthError::BadSignature => Self::BadSignature,
			AuthError::Stale { .. } => Self::Stale,
			AuthError::Replayed => Self::Replayed,
			AuthError::Busy => Self::Busy,
		}
	}
}

/// A publisher's delivery of the manifest of one deal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRequest {
	/// The deal on chain.
	pub deal_id: u64,
	/// The signing publisher's account (sr25519 public key).
	#[serde(with = "serde_bytes")]
	pub publisher: [u8; 32],
	/// The manifest, sealed to the provider for this deal and publisher.
	pub sealed: SealedPayload,
	/// The publisher's signature of [`auth::manifest_message`].
	#[serde(with = "serde_bytes")]
	pub signature: [u8; 64],
}

impl ManifestRequest {
	/// Seals `manifest` to the provider `recipient` and signs the delivery.
	pub fn new<S: PublisherSigner + ?Sized>(
		signer: &S,
		recipient: &PeerId,
		deal_id: u64,
		manifest: &[u8],
	) -> Result<Self, P2pError> {
		if manifest.len() > MAX_MANIFEST_SIZE {
			return Err(P2pError::TooLarge { size: manifest.len(), limit: MAX_MANIFEST_SIZE });
		}
		let publisher = signer.public();
		let provider = seal::ed25519_public_of(recipient)?;
		let sealed = seal::seal(recipient, deal_id, publisher, manifest)?;
		let message = auth::manifest_message(deal_id, &publisher, &provider, &sealed.digest());
		Ok(Self { deal_id, publisher, sealed, signature: signer.sign(&message) })
	}

	/// Checks the publisher's signature; `provider` is the receiving node's ed25519 key.
	pub fn verify_signature(&self, provider: &[u8; 32]) -> Result<(), AuthError> {
		let message =
			auth::manifest_message(self.deal_id, &self.publisher, provider, &self.sealed.digest());
		auth::verify(&self.publisher, &message, &self.signature)
	}

	/// Checks the request against the deal as recorded on chain and returns the manifest:
	/// the signer must be `deal_publisher`, the payload must decrypt and its blake2-256 hash must
	/// be `manifest_hash`. The signature itself is checked by the node before delivery.
	pub fn open_checked(
		&self,
		key: &OpeningKey,
		deal_publisher: &[u8; 32],
		manifest_hash: &[u8; 32],
	) -> Result<Vec<u8>, RejectReason> {
		if &self.publisher != deal_publisher {
			return Err(RejectReason::NotPublisher);
		}
		let manifest = key
			.open(&self.sealed, self.deal_id, self.publisher)
			.map_err(|_| RejectReason::Undecryptable)?;
		if manifest.len() > MAX_MANIFEST_SIZE {
			return Err(RejectReason::TooLarge);
		}
		if &blake2_256(&manifest) != manifest_hash {
			return Err(RejectReason::HashMismatch);
		}
		Ok(manifest)
	}
}

/// The provider's answer to a [`ManifestRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ManifestResponse {
	/// The manifest was checked and stored.
	Ack(ManifestAck),
	/// The manifest was refused.
	Reject(RejectReason),
}

/// Acknowledgement of a delivered manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestAck {
	/// Blake2-256 of the manifest the provider stored.
	#[serde(with = "serde_bytes")]
	pub manifest_hash: [u8; 32],
}

/// Which logs to read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsQuery {
	/// One container of the deal, or all of them.
	pub container: Option<String>,
	/// Continue after this position ([`LogChunk::next_cursor`] of the previous chunk).
	pub cursor: Option<u64>,
	/// Without a cursor: start this many lines before the end (all lines if `None`).
	pub tail: Option<u32>,
	/// At most this many lines in the answer (the provider may send fewer).
	pub max_lines: u32,
}

impl Default for LogsQuery {
	fn default() -> Self {
		Self { container: None, cursor: None, tail: None, max_lines: 1000 }
	}
}

impl LogsQuery {
	/// Blake2-256 of the query's canonical bytes, which the request signature covers: each
	/// option as `0x00`, or `0x01` then the value; integers little endian; the container name
	/// as u32 length then UTF-8; then `max_lines`.
	pub fn digest(&self) -> [u8; 32] {
		let mut bytes = Vec::with_capacity(64);
		match &self.container {
			None => bytes.push(0),
			Some(name) => {
				bytes.push(1);
				bytes.extend_from_slice(&(name.len() as u32).to_le_bytes());
				bytes.extend_from_slice(name.as_bytes());
			}
		}
		match self.cursor {
			None => bytes.push(0),
			Some(cursor) => {
				bytes.push(1);
				bytes.extend_from_slice(&cursor.to_le_bytes());
			}
		}
		match self.tail {
			None => bytes.push(0),
			Some(tail) => {
				bytes.push(1);
				bytes.extend_from_slice(&tail.to_le_bytes());
			}
		}
		bytes.extend_from_slice(&self.max_lines.to_le_bytes());
		blake2_256(&bytes)
	}
}

/// A publisher's request for a deal's logs; fresh (timestamp and nonce) so it cannot be
/// replayed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsRequest {
	/// The deal on chain.
	pub deal_id: u64,
	/// The signing publisher's account (sr25519 public key).
	#[serde(with = "serde_bytes")]
	pub publisher: [u8; 32],
	/// What to read.
	pub query: LogsQuery,
	/// When the request was signed, in ms since the Unix epoch.
	pub timestamp_ms: u64,
	/// Random, so that two requests in the same millisecond differ.
	#[serde(with = "serde_bytes")]
	pub nonce: [u8; 16],
	/// The publisher's signature of [`auth::logs_message`].
	#[serde(with = "serde_bytes")]
	pub signature: [u8; 64],
}

impl LogsRequest {
	/// Signs a request for the logs of `deal_id` from provider `recipient`, timestamped now.
	pub fn new<S: PublisherSigner + ?Sized>(
		signer: &S,
		recipient: &PeerId,
		deal_id: u64,
		query: LogsQuery,
	) -> Result<Self, P2pError> {
		let mut nonce = [0u8; 16];
		OsRng.fill_bytes(&mut nonce);
		Self::new_at(signer, recipient, deal_id, query, auth::now_ms(), nonce)
	}

	/// Like [`LogsRequest::new`] with a given timestamp and nonce.
	pub fn new_at<S: PublisherSigner + ?Sized>(
		signer: &S,
		recipient: &PeerId,
		deal_id: u64,
		query: LogsQuery,
		timestamp_ms: u64,
		nonce: [u8; 16],
	) -> Result<Self, P2pError> {
		let publisher = signer.public();
		let provider = seal::ed25519_public_of(recipient)?;
		let message = auth::logs_message(
			deal_id,
			&publisher,
			&provider,
			timestamp_ms,
			&nonce,
			&query.digest(),
		);
		let signature = signer.sign(&message);
		Ok(Self { deal_id, publisher, query, timestamp_ms, nonce, signature })
	}

	/// Checks the publisher's signature; `provider` is the receiving node's ed25519 key.
	pub fn verify_signature(&self, provider: &[u8; 32]) -> Result<(), AuthError> {
		let message = auth::logs_message(
			self.deal_id,
			&self.publisher,
			provider,
			self.timestamp_ms,
			&self.nonce,
			&self.query.digest(),
		);
		auth::verify(&self.publisher, &message, &self.signature)
	}
}

/// The provider's answer to a [`LogsRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogsResponse {
	/// Some log lines.
	Chunk(LogChunk),
	/// The request was refused.
	Reject(RejectReason),
}

/// A run of log lines and where to continue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogChunk {
	/// The lines, oldest first.
	pub lines: Vec<LogLine>,
	/// Cursor for the next request; opaque to the client.
	pub next_cursor: u64,
	/// No more lines will come (the deal's containers are gone), so following can stop.
	pub complete: bool,
	/// How the deal's pods are doing, as the provider sees them, in the text form of
	/// [`PodsStatus`](crate::status::PodsStatus) (`running`, `starting <ready>/<wanted>`,
	/// `updating <ready>/<wanted>`, `degraded <ready>/<wanted>: <reason>`, `failed: <reason>`,
	/// `absent`; `None` from an agent that does not say). `tail: Some(0)` asks for the status
	/// alone.
	#[serde(default)]
	pub deal_status: Option<String>,
	/// The deal's HTTP traffic through the provider's gateway since the agent started, when
	/// the gateway serves the deal's name (`None` otherwise, and from older agents).
	#[serde(default)]
	pub traffic: Option<Traffic>,
}

/// A deal's HTTP traffic through the provider's gateway.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
	/// Responses by status class, `1xx` to `5xx` (the gateway's own `502`-`504` included).
	pub responses: [u64; 5],
	/// Request body bytes.
	pub bytes_in: u64,
	/// Response body bytes.
	pub bytes_out: u64,
}

impl std::fmt::Display for Traffic {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		let total: u64 = self.responses.iter().sum();
		write!(f, "{total} requests (")?;
		let classes = self.responses.iter().enumerate().filter(|(_, n)| **n > 0);
		for (i, (class, n)) in classes.enumerate() {
			write!(f, "{}{}xx {n}", if i > 0 { ", " } else { "" }, class + 1)?;
		}
		write!(f, "), {} B in, {} B out", self.bytes_in, self.bytes_out)
	}
}

impl LogChunk {
	/// An upper estimate of the chunk's encoded size, to keep it below
	/// [`MAX_LOGS_RESPONSE_BYTES`].
	pub fn encoded_len_estimate(&self) -> usize {
		self.lines.iter().map(|l| l.container.len() + l.text.len() + 48).sum::<usize>() + 64
	}
}

/// One line of a container's output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
	/// The container that wrote it.
	pub container: String,
	/// When it was written, in ms since the Unix epoch.
	pub timestamp_ms: u64,
	/// Whether it came from standard error rather than standard output.
	pub stderr: bool,
	/// The line, without its newline; not valid UTF-8 is replaced.
	pub text: String,
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::identity::{from_seed, peer_id};
	use schnorrkel::{ExpansionMode, MiniSecretKey};

	fn publisher() -> schnorrkel::Keypair {
		MiniSecretKey::from_bytes(&[3; 32]).unwrap().expand_to_keypair(ExpansionMode::Ed25519)
	}

	#[test]
	fn traffic_reads_as_a_line() {
		let traffic = Traffic { responses: [0, 12, 0, 3, 1], bytes_in: 40, bytes_out: 5_000 };
		assert_eq!(traffic.to_string(), "16 requests (2xx 12, 4xx 3, 5xx 1), 40 B in, 5000 B out");
		assert_eq!(Traffic::default().to_string(), "0 requests (), 0 B in, 0 B out");
	}

	#[test]
	fn manifest_request_checks() {
		let provider = from_seed([1; 32]);
		let provider_key = seal::ed25519_public_of(&peer_id(&provider)).unwrap();
		let opening = OpeningKey::from_keypair(&provider).unwrap();
		let signer = publisher();
		let request = ManifestRequest::new(&signer, &peer_id(&provider), 5, b"{}").unwrap();
		let hash = blake2_256(b"{}");
		assert_eq!(request.verify_signature(&provider_key), Ok(()));
		assert_eq!(request.open_checked(&opening, &signer.public(), &hash).unwrap(), b"{}");
		assert_eq!(
			request.open_checked(&opening, &[0; 32], &hash),
			Err(RejectReason::NotPublisher)
		);
		assert_eq!(
			request.open_checked(&opening, &signer.public(), &[0; 32]),
			Err(RejectReason::HashMismatch)
		);
		// Signed for another provider.
		assert_eq!(request.verify_signature(&[7; 32]), Err(AuthError::BadSignature));
		let mut moved = request.clone();
		moved.deal_id = 6;
		assert_eq!(moved.verify_signature(&provider_key), Err(AuthError::BadSignature));
		let mut tampered = request;
		tampered.sealed.ciphertext[0] ^= 1;
		assert_eq!(tampered.verify_signature(&provider_key), Err(AuthError::BadSignature));
	}

	#[test]
	fn oversized_manifest_is_refused_locally() {
		let provider = peer_id(&from_seed([1; 32]));
		let manifest = vec![0u8; MAX_MANIFEST_SIZE + 1];
		assert!(matches!(
			ManifestRequest::new(&publisher(), &provider, 1, &manifest),
			Err(P2pError::TooLarge { .. })
		));
	}

	#[test]
	fn logs_request_signature_covers_query() {
		let provider = peer_id(&from_seed([1; 32]));
		let provider_key = seal::ed25519_public_of(&provider).unwrap();
		let request = LogsRequest::new(&publisher(), &provider, 5, LogsQuery::default()).unwrap();
		assert_eq!(request.verify_signature(&provider_key), Ok(()));
		let mut other = request.clone();
		other.query.cursor = Some(10);
		assert_eq!(other.verify_signature(&provider_key), Err(AuthError::BadSignature));
		let mut other = request.clone();
		other.timestamp_ms += 1;
		assert_eq!(other.verify_signature(&provider_key), Err(AuthError::BadSignature));
		let mut other = request;
		other.query.container = Some(String::new());
		assert_eq!(other.verify_signature(&provider_key), Err(AuthError::BadSignature));
	}
}
