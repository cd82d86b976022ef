//! Wire types of `/podchain/image/1`: a publisher pushes a deal's container image to the
//! provider, blob by blob, in sealed and signed chunks. One request and one response per
//! stream, CBOR-encoded like the other protocols (byte fields as CBOR byte strings):
//!
//! - [`ImageOffer`]: "deal D runs image manifest M, here are M's bytes". The provider checks
//!   that D's delivered manifest pins M and that the bytes hash to M, then answers
//!   [`ImageResponse::Plan`]: every blob of the image (config and layers) with the bytes it
//!   already holds, so the publisher skips complete blobs and resumes partial ones.
//! - [`ImageChunk`]: "deal D, blob B, these bytes at offset O". The provider appends them and
//!   answers [`ImageResponse::Stored`] with the bytes it now holds of B; an offset other than
//!   its current length is [`ImageReject::OffsetMismatch`], naming the offset it expects.
//!
//! Every request is signed by the deal's publisher over the deal, the publisher, the
//! provider's key, the digests, the offset and the sealed payload's digest (see
//! [`auth::image_offer_message`], [`auth::image_chunk_message`]), and its payload is sealed to
//! the provider for the deal and publisher ([`seal::seal`]). So a chunk can be neither read in
//! transit, nor moved to another deal, blob, offset or provider.
//!
//! A change of any type here is a new protocol version (`/2`), not an edit.

use libp2p::{PeerId, StreamProtocol};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
	auth::{self, PublisherSigner},
	error::{AuthError, P2pError},
	protocol::RejectReason,
	seal::{self, OpeningKey, SealedPayload},
};

/// Protocol name of image delivery.
pub const IMAGE_PROTOCOL: StreamProtocol = StreamProtocol::new("/podchain/image/1");

/// Bytes of blob a publisher puts in one chunk. 1 MiB, measured on loopback between two
/// nodes on 2 busy cores (`benches/image_transfer.rs`, 200 MB in four layers, MB/s over
/// several runs): 1 MiB 100-139, 2 MiB 64-120, 4 MiB 93-111, 8 MiB 91. The per-chunk costs (a
/// key agreement, a signature, a round trip) stay small at 1 MiB, and a smaller chunk bounds
/// what a provider buffers per inbound stream (the codec reads a whole request before
/// decoding it). One chunk per blob travels at a time, [`crate::push::PUSH_PARALLEL_BLOBS`]
/// blobs at once, so on a link with round-trip time `t` one blob moves at most 1 MiB per `t`.
pub const IMAGE_CHUNK_SIZE: usize = 1024 * 1024;

/// Largest blob payload (plaintext) one chunk may carry; a provider refuses more.
pub const MAX_IMAGE_CHUNK_SIZE: usize = IMAGE_CHUNK_SIZE;

/// Largest image manifest (plaintext) an offer may carry: 1 MiB, hundreds of times what an
/// image manifest of [`MAX_IMAGE_BLOBS`] layers takes, and no more than a chunk, so that it
/// does not raise [`MAX_IMAGE_REQUEST_BYTES`].
pub const MAX_IMAGE_MANIFEST_SIZE: usize = 1024 * 1024;

/// Largest encoded image request: the larger sealed payload plus room for the other fields.
/// The codec stops reading there, so a larger request is dropped without an answer.
pub const MAX_IMAGE_REQUEST_BYTES: u64 = (if MAX_IMAGE_CHUNK_SIZE > MAX_IMAGE_MANIFEST_SIZE {
	MAX_IMAGE_CHUNK_SIZE
} else {
	MAX_IMAGE_MANIFEST_SIZE
}) as u64
	+ 4096;

/// Largest number of blobs a plan may list (config and layers); images have tens.
pub const MAX_IMAGE_BLOBS: usize = 1024;

/// Largest encoded image response: a plan of [`MAX_IMAGE_BLOBS`] blobs, or a refusal.
pub const MAX_IMAGE_RESPONSE_BYTES: u64 = (MAX_IMAGE_BLOBS * 128) as u64 + 4096;

/// SHA-256 of `bytes`: OCI digests (`sha256:<hex>`), as the 32 raw bytes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
	Sha256::digest(bytes).into()
}

/// A digest in OCI's text form, `sha256:<64 lowercase hex>`.
pub fn digest_text(digest: &[u8; 32]) -> String {
	let mut text = String::with_capacity(7 + 64);
	text.push_str("sha256:");
	for byte in digest {
		text.push_str(&format!("{byte:02x}"));
	}
	text
}

/// Why a provider refused an image request. The first cases mirror [`RejectReason`] (not
/// extended, so that `/podchain/manifest/1` keeps its encoding); the others carry the
/// provider's store's refusal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ImageReject {
	/// The provider knows no such deal (or not yet: its chain view may lag).
	#[error("unknown deal")]
	UnknownDeal,
	/// The signer is not the deal's publisher.
	#[error("not the deal's publisher")]
	NotPublisher,
	/// The sealed payload could not be decrypted by the provider.
	#[error("payload cannot be decrypted")]
	Undecryptable,
	/// The publisher's signature does not verify.
	#[error("bad signature")]
	BadSignature,
	/// The payload exceeds the protocol's limit.
	#[error("payload too large")]
	TooLarge,
	/// The provider is overloaded; try again later.
	#[error("provider busy")]
	Busy,
	/// The deal is closing: it takes no image any more.
	#[error("the deal is closing")]
	DealClosing,
	/// The deal's manifest does not pin this image, or the image does not list this blob.
	#[error("not pinned by the deal")]
	NotPinned,
	/// The bytes do not hash to the digest they were sent as (the offer's manifest, or a
	/// completed blob, which the provider then discards).
	#[error("digest mismatch")]
	DigestMismatch,
	/// The bytes go past the blob's size in the image manifest.
	#[error("size mismatch")]
	SizeMismatch,
	/// The chunk does not start where the provider's copy of the blob ends; resend from
	/// `expected`.
	#[error("expected offset {expected}")]
	OffsetMismatch {
		/// The bytes of the blob the provider holds: where the next chunk starts.
		expected: u64,
	},
	/// Storing the image would exceed a limit of the provider (per deal or in all).
	#[error("{size} bytes over the limit of {limit} bytes")]
	OverLimit {
		/// The size that was refused.
		size: u64,
		/// The provider's limit.
		limit: u64,
	},
	/// The deal already pins as many images as a deal may (its updates' images count until the
	/// deal ends).
	#[error("the deal already pins {limit} images, the most a deal may")]
	TooManyImages {
		/// The bound.
		limit: u32,
	},
	/// The image uses a media type the provider does not take (named).
	#[error("unsupported media type {0}")]
	UnsupportedMediaType(String),
	/// The image is not for linux/amd64; the text names what it is for.
	#[error("unsupported platform: {0}")]
	UnsupportedPlatform(String),
	/// The image manifest cannot be parsed, or the provider's copy is inconsistent.
	#[error("corrupt image: {0}")]
	Corrupt(String),
	/// Something failed on the provider's side.
	#[error("provider error: {0}")]
	Internal(String),
}

impl ImageReject {
	/// Whether asking again later can succeed: the provider was busy or failed internally.
	/// [`ImageReject::OffsetMismatch`] is answered by resending from the expected offset
	/// instead.
	pub fn is_transient(&self) -> bool {
		matches!(self, Self::Busy | Self::Internal(_))
	}
}

impl From<AuthError> for ImageReject {
	fn from(error: AuthError) -> Self {
		match error {
			AuthError::Busy => Self::Busy,
			// Image requests carry no timestamp or nonce: only signature failures occur.
			AuthError::InvalidPublicKey
			| AuthError::BadSignature
			| AuthError::Stale { .. }
			| AuthError::Replayed => Self::BadSignature,
		}
	}
}

/// Maps the refusals the two protocols share; the manifest-only ones become `Internal`.
impl From<RejectReason> for ImageReject {
	fn from(reason: RejectReason) -> Self {
		match reason {
			RejectReason::UnknownDeal => Self::UnknownDeal,
			RejectReason::NotPublisher => Self::NotPublisher,
			RejectReason::Undecryptable => Self::Undecryptable,
			RejectReason::BadSignature => Self::BadSignature,
			RejectReason::TooLarge => Self::TooLarge,
			RejectReason::Busy => Self::Busy,
			RejectReason::DealClosing => Self::DealClosing,
			RejectReason::Internal(text) => Self::Internal(text),
			other => Self::Internal(other.to_string()),
		}
	}
}

/// A request of `/podchain/image/1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageRequest {
	/// Offers an image; answered by a plan.
	Offer(ImageOffer),
	/// Sends bytes of one blob; answered by what the provider now holds.
	Chunk(ImageChunk),
}

/// A publisher's offer of the image a deal pins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageOffer {
	/// The deal on chain.
	pub deal_id: u64,
	/// The signing publisher's account (sr25519 public key).
	#[serde(with = "serde_bytes")]
	pub publisher: [u8; 32],
	/// SHA-256 of the image manifest: what the deal's manifest pins.
	#[serde(with = "serde_bytes")]
	pub manifest_digest: [u8; 32],
	/// The image manifest's bytes, sealed to the provider for this deal and publisher.
	pub sealed_manifest: SealedPayload,
	/// The publisher's signature of [`auth::image_offer_message`].
	#[serde(with = "serde_bytes")]
	pub signature: [u8; 64],
}

impl ImageOffer {
	/// Seals the image manifest `manifest` (whose SHA-256 is `manifest_digest`) to provider
	/// `recipient` and signs the offer.
	pub fn new<S: PublisherSigner + ?Sized>(
		signer: &S,
		recipient: &PeerId,
		deal_id: u64,
		manifest_digest: [u8; 32],
		manifest: &[u8],
	) -> Result<Self, P2pError> {
		if manifest.len() > MAX_IMAGE_MANIFEST_SIZE {
			return Err(P2pError::TooLarge {
				size: manifest.len(),
				limit: MAX_IMAGE_MANIFEST_SIZE,
			});
		}
		let publisher = signer.public();
		let provider = seal::ed25519_public_of(recipient)?;
		let sealed_manifest = seal::seal(recipient, deal_id, publisher, manifest)?;
		let message = auth::image_offer_message(
			deal_id,
			&publisher,
			&provider,
			&manifest_digest,
			&sealed_manifest.digest(),
		);
		let signature = signer.sign(&message);
		Ok(Self { deal_id, publisher, manifest_digest, sealed_manifest, signature })
	}

	/// Checks the publisher's signature; `provider` is the receiving node's ed25519 key.
	pub fn verify_signature(&self, provider: &[u8; 32]) -> Result<(), AuthError> {
		let message = auth::image_offer_message(
			self.deal_id,
			&self.publisher,
			provider,
			&self.manifest_digest,
			&self.sealed_manifest.digest(),
		);
		auth::verify(&self.publisher, &message, &self.signature)
	}

	/// Checks the offer against the deal's publisher as recorded on chain and returns the
	/// image manifest's bytes: the signer must be `deal_publisher`, the payload must decrypt
	/// and hash (SHA-256) to [`ImageOffer::manifest_digest`]. The signature itself is checked
	/// by the node before delivery; whether the deal pins the digest is the caller's check.
	pub fn open_checked(
		&self,
		key: &OpeningKey,
		deal_publisher: &[u8; 32],
	) -> Result<Vec<u8>, ImageReject> {
		let manifest = open_from(
			key,
			&self.sealed_manifest,
			self.deal_id,
			&self.publisher,
			deal_publisher,
			MAX_IMAGE_MANIFEST_SIZE,
		)?;
		if sha256(&manifest) != self.manifest_digest {
			return Err(ImageReject::DigestMismatch);
		}
		Ok(manifest)
	}
}

/// Bytes of one blob of the image, at an offset.
///
/// There is no replay protection, on purpose: a chunk is idempotent. Its signature binds it to
/// one deal, blob, offset and provider, and the provider appends a chunk only at the offset
/// where its copy ends. Sent again, a chunk lands where it already did (refused as
/// [`ImageReject::OffsetMismatch`]), or, after the provider discarded its partial copy, writes
/// the same bytes the publisher signed for that place, which the blob's digest checks at the
/// end. Only the provider and the publisher see chunks in clear (Noise encrypts the
/// connection), and neither gains from replaying them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageChunk {
	/// The deal on chain.
	pub deal_id: u64,
	/// The signing publisher's account (sr25519 public key).
	#[serde(with = "serde_bytes")]
	pub publisher: [u8; 32],
	/// SHA-256 of the whole blob.
	#[serde(with = "serde_bytes")]
	pub digest: [u8; 32],
	/// Where in the blob the bytes go.
	pub offset: u64,
	/// The bytes, sealed to the provider for this deal and publisher.
	pub sealed: SealedPayload,
	/// The publisher's signature of [`auth::image_chunk_message`].
	#[serde(with = "serde_bytes")]
	pub signature: [u8; 64],
}

impl ImageChunk {
	/// Seals `bytes` of blob `digest` at `offset` to provider `recipient` and signs them.
	pub fn new<S: PublisherSigner + ?Sized>(
		signer: &S,
		recipient: &PeerId,
		deal_id: u64,
		digest: [u8; 32],
		offset: u64,
		bytes: &[u8],
	) -> Result<Self, P2pError> {
		if bytes.len() > MAX_IMAGE_CHUNK_SIZE {
			return Err(P2pError::TooLarge { size: bytes.len(), limit: MAX_IMAGE_CHUNK_SIZE });
		}
		let publisher = signer.public();
		let provider = seal::ed25519_public_of(recipient)?;
		let sealed = seal::seal(recipient, deal_id, publisher, bytes)?;
		let message = auth::image_chunk_message(
			deal_id,
			&publisher,
			&provider,
			&digest,
			offset,
			&sealed.digest(),
		);
		let signature = signer.sign(&message);
		Ok(Self { deal_id, publisher, digest, offset, sealed, signature })
	}

	/// Checks the publisher's signature; `provider` is the receiving node's ed25519 key.
	pub fn verify_signature(&self, provider: &[u8; 32]) -> Result<(), AuthError> {
		let message = auth::image_chunk_message(
			self.deal_id,
			&self.publisher,
			provider,
			&self.digest,
			self.offset,
			&self.sealed.digest(),
		);
		auth::verify(&self.publisher, &message, &self.signature)
	}

	/// Checks the chunk against the deal's publisher as recorded on chain and returns its
	/// bytes: the signer must be `deal_publisher` and the payload must decrypt. Whether the
	/// deal's image lists the blob, and the offset, are the store's checks.
	pub fn open_checked(
		&self,
		key: &OpeningKey,
		deal_publisher: &[u8; 32],
	) -> Result<Vec<u8>, ImageReject> {
		open_from(
			key,
			&self.sealed,
			self.deal_id,
			&self.publisher,
			deal_publisher,
			MAX_IMAGE_CHUNK_SIZE,
		)
	}
}

/// Opens what `publisher` sealed for `deal_id`, once `publisher` is the deal's publisher on
/// chain; the plaintext may be at most `max` bytes.
fn open_from(
	key: &OpeningKey,
	sealed: &SealedPayload,
	deal_id: u64,
	publisher: &[u8; 32],
	deal_publisher: &[u8; 32],
	max: usize,
) -> Result<Vec<u8>, ImageReject> {
	if publisher != deal_publisher {
		return Err(ImageReject::NotPublisher);
	}
	let bytes = key.open(sealed, deal_id, *publisher).map_err(|_| ImageReject::Undecryptable)?;
	if bytes.len() > max {
		return Err(ImageReject::TooLarge);
	}
	Ok(bytes)
}

/// One blob of an offered image, and how much of it the provider holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobState {
	/// SHA-256 of the blob.
	#[serde(with = "serde_bytes")]
	pub digest: [u8; 32],
	/// Its size, as the image manifest gives it.
	pub size: u64,
	/// The bytes the provider holds: `size` when complete, else where the next chunk starts.
	pub have: u64,
}

/// The provider's answer to an [`ImageRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageResponse {
	/// Answer to an offer: the image's blobs (config and layers) and what is held of each.
	Plan(Vec<BlobState>),
	/// Answer to a chunk: the bytes of the blob the provider now holds.
	Stored {
		/// Bytes held; the blob is complete (and its digest verified) when this is its size.
		have: u64,
	},
	/// The request was refused.
	Reject(ImageReject),
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::identity::{from_seed, peer_id};
	use schnorrkel::{ExpansionMode, MiniSecretKey};

	fn publisher(seed: u8) -> schnorrkel::Keypair {
		MiniSecretKey::from_bytes(&[seed; 32]).unwrap().expand_to_keypair(ExpansionMode::Ed25519)
	}

	#[test]
	fn digest_text_form() {
		assert_eq!(
			digest_text(&sha256(b"")),
			"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
		);
	}

	#[test]
	fn offer_checks() {
		let provider = from_seed([1; 32]);
		let provider_key = seal::ed25519_public_of(&peer_id(&provider)).unwrap();
		let opening = OpeningKey::from_keypair(&provider).unwrap();
		let signer = publisher(3);
		let manifest = b"{\"schemaVersion\":2}";
		let offer =
			ImageOffer::new(&signer, &peer_id(&provider), 5, sha256(manifest), manifest).unwrap();
		assert_eq!(offer.verify_signature(&provider_key), Ok(()));
		assert_eq!(offer.open_checked(&opening, &signer.public()).unwrap(), manifest);
		assert_eq!(
			offer.open_checked(&opening, &publisher(4).public()),
			Err(ImageReject::NotPublisher)
		);
		// Another digest: the signature breaks; re-signed, the bytes do not hash to it.
		let mut other = offer.clone();
		other.manifest_digest = [9; 32];
		assert_eq!(other.verify_signature(&provider_key), Err(AuthError::BadSignature));
		let lying = ImageOffer::new(&signer, &peer_id(&provider), 5, [9; 32], manifest).unwrap();
		assert_eq!(
			lying.open_checked(&opening, &signer.public()),
			Err(ImageReject::DigestMismatch)
		);
		// Sealed to another provider: its signature names that provider's key.
		let elsewhere = from_seed([2; 32]);
		let offer =
			ImageOffer::new(&signer, &peer_id(&elsewhere), 5, sha256(manifest), manifest).unwrap();
		assert_eq!(offer.verify_signature(&provider_key), Err(AuthError::BadSignature));
		assert_eq!(offer.open_checked(&opening, &signer.public()), Err(ImageReject::Undecryptable));
	}

	#[test]
	fn chunk_signature_binds_its_place() {
		let provider = from_seed([1; 32]);
		let provider_key = seal::ed25519_public_of(&peer_id(&provider)).unwrap();
		let opening = OpeningKey::from_keypair(&provider).unwrap();
		let signer = publisher(3);
		let chunk = ImageChunk::new(&signer, &peer_id(&provider), 5, [7; 32], 4096, b"layer bytes")
			.unwrap();
		assert_eq!(chunk.verify_signature(&provider_key), Ok(()));
		assert_eq!(chunk.open_checked(&opening, &signer.public()).unwrap(), b"layer bytes");
		let moved: [fn(&mut ImageChunk); 5] = [
			|c| c.deal_id = 6,
			|c| c.digest = [8; 32],
			|c| c.offset = 0,
			|c| c.publisher = publisher(4).public(),
			|c| c.sealed.ciphertext[0] ^= 1,
		];
		for change in moved {
			let mut other = chunk.clone();
			change(&mut other);
			assert_eq!(other.verify_signature(&provider_key), Err(AuthError::BadSignature));
		}
		let elsewhere = from_seed([2; 32]);
		let elsewhere_key = seal::ed25519_public_of(&peer_id(&elsewhere)).unwrap();
		assert_eq!(chunk.verify_signature(&elsewhere_key), Err(AuthError::BadSignature));
	}

	#[test]
	fn oversized_payloads_are_not_built() {
		let provider = peer_id(&from_seed([1; 32]));
		let big = vec![0; MAX_IMAGE_CHUNK_SIZE + 1];
		assert!(matches!(
			ImageChunk::new(&publisher(3), &provider, 5, [7; 32], 0, &big),
			Err(P2pError::TooLarge { .. })
		));
		let big = vec![0; MAX_IMAGE_MANIFEST_SIZE + 1];
		assert!(matches!(
			ImageOffer::new(&publisher(3), &provider, 5, [7; 32], &big),
			Err(P2pError::TooLarge { .. })
		));
	}

	/// A full plan and a full chunk stay within the codec's limits.
	#[test]
	fn encoded_sizes_fit_the_limits() {
		let plan = ImageResponse::Plan(vec![
			BlobState {
				digest: [0xff; 32],
				size: u64::MAX,
				have: u64::MAX
			};
			MAX_IMAGE_BLOBS
		]);
		let encoded = cbor4ii::serde::to_vec(Vec::new(), &plan).unwrap();
		assert!(encoded.len() as u64 <= MAX_IMAGE_RESPONSE_BYTES, "{}", encoded.len());
		let reject = ImageResponse::Reject(ImageReject::OverLimit { size: u64::MAX, limit: 1 });
		assert!(cbor4ii::serde::to_vec(Vec::new(), &reject).unwrap().len() < 64);

		let provider = peer_id(&from_seed([1; 32]));
		let chunk = ImageRequest::Chunk(
			ImageChunk::new(
				&publisher(3),
				&provider,
				u64::MAX,
				[0xff; 32],
				u64::MAX,
				&vec![0xab; MAX_IMAGE_CHUNK_SIZE],
			)
			.unwrap(),
		);
		let encoded = cbor4ii::serde::to_vec(Vec::new(), &chunk).unwrap();
		assert!(encoded.len() as u64 <= MAX_IMAGE_REQUEST_BYTES, "{}", encoded.len());
		// Byte fields are byte strings: the overhead is a few hundred bytes, not 2x.
		assert!(encoded.len() < MAX_IMAGE_CHUNK_SIZE + seal::TAG_LEN + 512, "{}", encoded.len());
	}
}
