//! Error types of the crate, one per concern, all built with `thiserror`.

use libp2p::PeerId;

use crate::{image::ImageReject, protocol::RejectReason};

/// Failure to load, create or use the node's identity key.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
	/// The key file could not be read, created or written.
	#[error("identity key file {path}: {source}")]
	Io {
		/// The key file.
		path: std::path::PathBuf,
		/// What the operating system reported.
		#[source]
		source: std::io::Error,
	},
	/// The key file exists but does not hold an ed25519 secret key.
	#[error("identity key file {path} does not hold an ed25519 secret key")]
	Malformed {
		/// The key file.
		path: std::path::PathBuf,
	},
	/// The keypair is not ed25519; sealing needs an ed25519 identity.
	#[error("the node identity must be an ed25519 key")]
	NotEd25519,
}

/// Failure to seal or open an encrypted payload.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
	/// The peer id does not inline an ed25519 public key, so there is no key to encrypt to.
	#[error("peer id does not inline an ed25519 public key")]
	NoInlineKey,
	/// The key is not usable for key agreement (low order point or not on the curve).
	#[error("key unusable for key agreement")]
	WeakKey,
	/// The keypair is not ed25519.
	#[error("the node identity must be an ed25519 key")]
	NotEd25519,
	/// Unknown format version of a sealed payload.
	#[error("unsupported sealed payload version {0}")]
	UnsupportedVersion(u8),
	/// Decryption failed: wrong recipient, wrong deal or publisher, or tampered data.
	#[error("payload cannot be decrypted")]
	Undecryptable,
}

/// Failure to authenticate a signed request.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
	/// The publisher's public key is not a valid sr25519 key.
	#[error("invalid sr25519 public key")]
	InvalidPublicKey,
	/// The signature does not verify under the publisher's key.
	#[error("signature does not verify")]
	BadSignature,
	/// The request's timestamp is outside the accepted window.
	#[error("request timestamp is {skew_ms} ms away from local time (limit {limit_ms} ms)")]
	Stale {
		/// Distance between the request's timestamp and local time.
		skew_ms: u64,
		/// The accepted distance.
		limit_ms: u64,
	},
	/// The same signed request was already seen.
	#[error("request was already seen (replay)")]
	Replayed,
	/// Too many recent requests are remembered to check one more for replay.
	#[error("too many recent requests")]
	Busy,
}

/// Failure of a request over the network, or of the node itself.
#[derive(Debug, thiserror::Error)]
pub enum P2pError {
	/// The remote peer could not be dialled: it is offline, the address is wrong, or the
	/// connection handshake failed.
	#[error("provider {peer} is unreachable: {reason}")]
	Unreachable {
		/// The peer that was dialled.
		peer: PeerId,
		/// Why the dial failed, as reported by libp2p.
		reason: String,
	},
	/// No answer arrived within the request timeout.
	#[error("request to {peer} timed out")]
	Timeout {
		/// The peer that did not answer.
		peer: PeerId,
	},
	/// The remote peer answered with a typed refusal.
	#[error("request rejected by {peer}: {reason}")]
	Rejected {
		/// The peer that refused.
		peer: PeerId,
		/// Why it refused.
		reason: RejectReason,
	},
	/// The provider refused an image push for a reason that retrying cannot fix.
	#[error("image rejected by {peer}: {reason}")]
	ImageRejected {
		/// The peer that refused.
		peer: PeerId,
		/// Why it refused.
		reason: ImageReject,
	},
	/// The image to push could not be read on this side; nothing more was sent.
	#[error("reading the image failed: {0}")]
	ImageRead(String),
	/// The exchange failed after connecting: the remote does not speak the protocol, closed the
	/// stream or sent something undecodable.
	#[error("protocol error with {peer}: {reason}")]
	Protocol {
		/// The remote peer.
		peer: PeerId,
		/// What went wrong.
		reason: String,
	},
	/// The payload is larger than the protocol allows; nothing was sent.
	#[error("payload of {size} bytes exceeds the limit of {limit} bytes")]
	TooLarge {
		/// Size of the payload.
		size: usize,
		/// The protocol's limit.
		limit: usize,
	},
	/// A multiaddr names another peer in its `/p2p/` part, or cannot be listened on.
	#[error("bad address {addr}: {reason}")]
	Address {
		/// The address, as text.
		addr: String,
		/// What is wrong with it.
		reason: String,
	},
	/// The libp2p transport could not be built.
	#[error("transport setup failed: {0}")]
	Transport(String),
	/// The node was shut down; the handle can no longer be used.
	#[error("p2p node is shut down")]
	Shutdown,
	/// Sealing the payload failed (for example the peer id inlines no ed25519 key).
	#[error(transparent)]
	Seal(#[from] SealError),
	/// The node's identity is unusable.
	#[error(transparent)]
	Identity(#[from] IdentityError),
}
