//! Encryption of payloads to a provider's libp2p identity, and of the agent's files at rest.
//!
//! A provider registers only its peer id, which inlines its ed25519 public key. The publisher
//! converts that key to X25519 (Edwards to Montgomery) and does an ephemeral-static key
//! agreement; the provider derives the matching X25519 secret from its ed25519 seed the way
//! libsodium's `crypto_sign_ed25519_sk_to_curve25519` does. So no extra key needs registering.
//!
//! Sealing, version 1:
//! - `shared = X25519(ephemeral_secret, recipient_x25519)`, refused if all zero;
//! - `key = HKDF-SHA256(salt = none, ikm = shared, info = "podchain/seal/v1" || deal_id (u64 LE)
//!   || publisher (32) || ephemeral_public (32) || recipient_x25519 (32))`;
//! - `ciphertext = XChaCha20-Poly1305(key, random 24-byte nonce, plaintext,
//!   ad = "podchain/seal/v1" || deal_id (u64 LE) || publisher (32))`.

use chacha20poly1305::{
	aead::{Aead, KeyInit, Payload},
	XChaCha20Poly1305, XNonce,
};
use curve25519_dalek::edwards::CompressedEdwardsY;
use hkdf::Hkdf;
use libp2p::{identity::Keypair, PeerId};
use rand::{rngs::OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use x25519_dalek::{PublicKey as XPublic, StaticSecret};
use zeroize::Zeroizing;

use crate::error::SealError;

/// Format version of [`SealedPayload`] this crate writes and reads.
pub const SEAL_VERSION: u8 = 1;

/// Bytes the AEAD adds to the plaintext (the Poly1305 tag).
pub const TAG_LEN: usize = 16;

/// Domain of the sealing key derivation and associated data.
const SEAL_DOMAIN: &[u8] = b"podchain/seal/v1";

/// HKDF label of the at-rest key; distinct from every other use of the identity key.
const AT_REST_DOMAIN: &[u8] = b"podchain/at-rest/v1";

/// Multihash code of the identity hash, used by peer ids that inline their public key.
const IDENTITY_MULTIHASH: u64 = 0x00;

/// A payload encrypted to one provider for one deal and publisher.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedPayload {
	/// Format version, [`SEAL_VERSION`].
	pub version: u8,
	/// The sender's ephemeral X25519 public key.
	#[serde(with = "serde_bytes")]
	pub ephemeral: [u8; 32],
	/// XChaCha20-Poly1305 nonce.
	#[serde(with = "serde_bytes")]
	pub nonce: [u8; 24],
	/// Ciphertext followed by the 16-byte Poly1305 tag.
	#[serde(with = "serde_bytes")]
	pub ciphertext: Vec<u8>,
}

impl SealedPayload {
	/// Blake2-256 of `version || ephemeral || nonce || ciphertext`: what a request signature
	/// covers (the fixed-size fields come first, so the layout is unambiguous).
	pub fn digest(&self) -> [u8; 32] {
		use blake2::{digest::consts::U32, Blake2b, Digest};
		Blake2b::<U32>::new()
			.chain_update([self.version])
			.chain_update(self.ephemeral)
			.chain_update(self.nonce)
			.chain_update(&self.ciphertext)
			.finalize()
			.into()
	}
}

// Payloads can be large; their bytes say nothing useful in a log line.
impl core::fmt::Debug for SealedPayload {
	fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
		f.debug_struct("SealedPayload")
			.field("version", &self.version)
			.field("ciphertext_len", &self.ciphertext.len())
			.finish_non_exhaustive()
	}
}

/// The ed25519 public key inlined in a peer id (`12D3KooW...` ids).
pub fn ed25519_public_of(peer: &PeerId) -> Result<[u8; 32], SealError> {
	let multihash = peer.as_ref();
	if multihash.code() != IDENTITY_MULTIHASH {
		return Err(SealError::NoInlineKey);
	}
	libp2p::identity::PublicKey::try_decode_protobuf(multihash.digest())
		.ok()
		.and_then(|key| key.try_into_ed25519().ok())
		.map(|key| key.to_bytes())
		.ok_or(SealError::NoInlineKey)
}

/// Converts an ed25519 public key to the X25519 public key of the same secret (birational map
/// from Edwards to Montgomery form); refuses invalid and small-order points.
pub fn x25519_public_from_ed25519(ed25519_public: &[u8; 32]) -> Result<[u8; 32], SealError> {
	let point = CompressedEdwardsY(*ed25519_public).decompress().ok_or(SealError::WeakKey)?;
	if point.is_small_order() {
		return Err(SealError::WeakKey);
	}
	Ok(point.to_montgomery().to_bytes())
}

/// Derives the X25519 secret from an ed25519 seed as libsodium does: the first half of
/// SHA-512(seed), clamped.
pub fn x25519_secret_from_ed25519(seed: &[u8; 32]) -> StaticSecret {
	let hash: Zeroizing<[u8; 64]> = Zeroizing::new(Sha512::digest(seed).into());
	let mut scalar = Zeroizing::new([0u8; 32]);
	scalar.copy_from_slice(&hash[..32]);
	scalar[0] &= 248;
	scalar[31] &= 127;
	scalar[31] |= 64;
	StaticSecret::from(*scalar)
}

/// Encrypts `plaintext` to the provider whose peer id is `recipient`, for `deal_id` and the
/// publisher account `publisher`.
pub fn seal(
	recipient: &PeerId,
	deal_id: u64,
	publisher: [u8; 32],
	plaintext: &[u8],
) -> Result<SealedPayload, SealError> {
	let recipient = XPublic::from(x25519_public_from_ed25519(&ed25519_public_of(recipient)?)?);
	let mut ephemeral_bytes = Zeroizing::new([0u8; 32]);
	OsRng.fill_bytes(&mut ephemeral_bytes[..]);
	let ephemeral = StaticSecret::from(*ephemeral_bytes);
	let ephemeral_public = XPublic::from(&ephemeral);
	let shared = ephemeral.diffie_hellman(&recipient);
	if !shared.was_contributory() {
		return Err(SealError::WeakKey);
	}
	let cipher =
		cipher(shared.as_bytes(), deal_id, &publisher, ephemeral_public.as_bytes(), &recipient);
	let mut nonce = [0u8; 24];
	OsRng.fill_bytes(&mut nonce);
	let aad = associated_data(deal_id, &publisher);
	let ciphertext = cipher
		.encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
		.map_err(|_| SealError::Undecryptable)?;
	Ok(SealedPayload {
		version: SEAL_VERSION,
		ephemeral: ephemeral_public.to_bytes(),
		nonce,
		ciphertext,
	})
}

/// Decrypts a payload sealed to `keypair`'s peer id for `deal_id` and `publisher`.
pub fn open(
	keypair: &Keypair,
	sealed: &SealedPayload,
	deal_id: u64,
	publisher: [u8; 32],
) -> Result<Vec<u8>, SealError> {
	OpeningKey::from_keypair(keypair)?.open(sealed, deal_id, publisher)
}

/// The provider's X25519 secret, derived once from its identity, for opening payloads.
pub struct OpeningKey {
	secret: StaticSecret,
	public: XPublic,
}

impl OpeningKey {
	/// Derives the opening key of an ed25519 identity.
	pub fn from_keypair(keypair: &Keypair) -> Result<Self, SealError> {
		let ed = keypair.clone().try_into_ed25519().map_err(|_| SealError::NotEd25519)?;
		let mut seed = Zeroizing::new([0u8; 32]);
		seed.copy_from_slice(ed.secret().as_ref());
		let secret = x25519_secret_from_ed25519(&seed);
		let public = XPublic::from(&secret);
		Ok(Self { secret, public })
	}

	/// The X25519 public key senders encrypt to.
	pub fn x25519_public(&self) -> [u8; 32] {
		self.public.to_bytes()
	}

	/// Decrypts a payload sealed to this key for `deal_id` and `publisher`.
	pub fn open(
		&self,
		sealed: &SealedPayload,
		deal_id: u64,
		publisher: [u8; 32],
	) -> Result<Vec<u8>, SealError> {
		if sealed.version != SEAL_VERSION {
			return Err(SealError::UnsupportedVersion(sealed.version));
		}
		let ephemeral = XPublic::from(sealed.ephemeral);
		let shared = self.secret.diffie_hellman(&ephemeral);
		if !shared.was_contributory() {
			return Err(SealError::Undecryptable);
		}
		let cipher =
			cipher(shared.as_bytes(), deal_id, &publisher, &sealed.ephemeral, &self.public);
		let aad = associated_data(deal_id, &publisher);
		cipher
			.decrypt(
				XNonce::from_slice(&sealed.nonce),
				Payload { msg: &sealed.ciphertext, aad: &aad },
			)
			.map_err(|_| SealError::Undecryptable)
	}
}

// Never print the secret.
impl core::fmt::Debug for OpeningKey {
	fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
		f.debug_struct("OpeningKey").field("public", &self.public.as_bytes()).finish()
	}
}

fn cipher(
	shared: &[u8; 32],
	deal_id: u64,
	publisher: &[u8; 32],
	ephemeral: &[u8; 32],
	recipient: &XPublic,
) -> XChaCha20Poly1305 {
	let mut info = Vec::with_capacity(SEAL_DOMAIN.len() + 8 + 3 * 32);
	info.extend_from_slice(SEAL_DOMAIN);
	info.extend_from_slice(&deal_id.to_le_bytes());
	info.extend_from_slice(publisher);
	info.extend_from_slice(ephemeral);
	info.extend_from_slice(recipient.as_bytes());
	let mut key = Zeroizing::new([0u8; 32]);
	Hkdf::<Sha256>::new(None, shared)
		.expand(&info, &mut key[..])
		.expect("32 bytes is a valid HKDF-SHA256 output length; qed");
	XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&key[..]))
}

fn associated_data(deal_id: u64, publisher: &[u8; 32]) -> Vec<u8> {
	let mut aad = Vec::with_capacity(SEAL_DOMAIN.len() + 8 + 32);
	aad.extend_from_slice(SEAL_DOMAIN);
	aad.extend_from_slice(&deal_id.to_le_bytes());
	aad.extend_from_slice(publisher);
	aad
}

/// Symmetric key for the agent's files at rest, derived from the node identity.
///
/// Sealed layout: `version (1) || nonce (24) || XChaCha20-Poly1305 ciphertext and tag`, the
/// caller's `context` (for example a file name or deal id) as associated data so a file cannot
/// be swapped for another.
pub struct AtRestKey(XChaCha20Poly1305);

impl AtRestKey {
	/// Derives the key: HKDF-SHA256 over the ed25519 seed with info `"podchain/at-rest/v1"`.
	pub fn from_keypair(keypair: &Keypair) -> Result<Self, SealError> {
		let ed = keypair.clone().try_into_ed25519().map_err(|_| SealError::NotEd25519)?;
		let mut key = Zeroizing::new([0u8; 32]);
		Hkdf::<Sha256>::new(None, ed.secret().as_ref())
			.expand(AT_REST_DOMAIN, &mut key[..])
			.expect("32 bytes is a valid HKDF-SHA256 output length; qed");
		Ok(Self(XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&key[..]))))
	}

	/// Encrypts `plaintext`, bound to `context`.
	pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
		let mut nonce = [0u8; 24];
		OsRng.fill_bytes(&mut nonce);
		let ciphertext = self
			.0
			.encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: context })
			.expect("XChaCha20-Poly1305 encrypts any input below 256 GiB; qed");
		let mut out = Vec::with_capacity(1 + 24 + ciphertext.len());
		out.push(SEAL_VERSION);
		out.extend_from_slice(&nonce);
		out.extend_from_slice(&ciphertext);
		out
	}

	/// Decrypts what [`AtRestKey::seal`] produced with the same `context`.
	pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
		let (&version, rest) = sealed.split_first().ok_or(SealError::Undecryptable)?;
		if version != SEAL_VERSION {
			return Err(SealError::UnsupportedVersion(version));
		}
		if rest.len() < 24 {
			return Err(SealError::Undecryptable);
		}
		let (nonce, ciphertext) = rest.split_at(24);
		self.0
			.decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: context })
			.map_err(|_| SealError::Undecryptable)
	}
}

// Never print the key.
impl core::fmt::Debug for AtRestKey {
	fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
		f.write_str("AtRestKey")
	}
}

/// Encrypts a file's contents for storage on the agent's disk (see [`AtRestKey`]).
pub fn seal_at_rest(
	keypair: &Keypair,
	context: &[u8],
	plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
	Ok(AtRestKey::from_keypair(keypair)?.seal(context, plaintext))
}

/// Decrypts what [`seal_at_rest`] produced with the same identity and `context`.
pub fn open_at_rest(
	keypair: &Keypair,
	context: &[u8],
	sealed: &[u8],
) -> Result<Vec<u8>, SealError> {
	AtRestKey::from_keypair(keypair)?.open(context, sealed)
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::identity::{from_seed, peer_id};

	const PUBLISHER: [u8; 32] = [9; 32];

	fn unhex(s: &str) -> [u8; 32] {
		hex::decode(s).unwrap().try_into().unwrap()
	}

	#[test]
	fn roundtrip() {
		let provider = from_seed([1; 32]);
		let sealed = seal(&peer_id(&provider), 42, PUBLISHER, b"manifest").unwrap();
		assert_eq!(sealed.ciphertext.len(), b"manifest".len() + 16);
		assert_eq!(open(&provider, &sealed, 42, PUBLISHER).unwrap(), b"manifest");
		let layout = [&[1u8][..], &sealed.ephemeral, &sealed.nonce, &sealed.ciphertext].concat();
		assert_eq!(sealed.digest(), crate::blake2_256(&layout));
		let empty = seal(&peer_id(&provider), 0, PUBLISHER, b"").unwrap();
		assert_eq!(open(&provider, &empty, 0, PUBLISHER).unwrap(), b"");
	}

	#[test]
	fn wrong_recipient_fails() {
		let sealed = seal(&peer_id(&from_seed([1; 32])), 42, PUBLISHER, b"manifest").unwrap();
		let other = from_seed([2; 32]);
		assert_eq!(open(&other, &sealed, 42, PUBLISHER), Err(SealError::Undecryptable));
	}

	#[test]
	fn tampering_fails() {
		let provider = from_seed([1; 32]);
		let sealed = seal(&peer_id(&provider), 42, PUBLISHER, b"manifest").unwrap();
		let undecryptable = Err(SealError::Undecryptable);
		// Associated data: deal id and publisher.
		assert_eq!(open(&provider, &sealed, 43, PUBLISHER), undecryptable);
		assert_eq!(open(&provider, &sealed, 42, [8; 32]), undecryptable);
		// Every byte of ciphertext, nonce and ephemeral key is covered.
		for i in 0..sealed.ciphertext.len() {
			let mut bad = sealed.clone();
			bad.ciphertext[i] ^= 1;
			assert_eq!(open(&provider, &bad, 42, PUBLISHER), undecryptable);
		}
		let mut bad = sealed.clone();
		bad.nonce[0] ^= 1;
		assert_eq!(open(&provider, &bad, 42, PUBLISHER), undecryptable);
		let mut bad = sealed.clone();
		bad.ephemeral[3] ^= 1;
		assert_eq!(open(&provider, &bad, 42, PUBLISHER), undecryptable);
		let mut bad = sealed.clone();
		bad.ciphertext.truncate(10);
		assert_eq!(open(&provider, &bad, 42, PUBLISHER), undecryptable);
		// A low-order ephemeral key (all zero) yields no shared secret.
		let mut bad = sealed.clone();
		bad.ephemeral = [0; 32];
		assert_eq!(open(&provider, &bad, 42, PUBLISHER), undecryptable);
		let mut bad = sealed;
		bad.version = 2;
		assert_eq!(open(&provider, &bad, 42, PUBLISHER), Err(SealError::UnsupportedVersion(2)));
	}

	/// Vector from libsodium's `ed25519_convert` test (checked against libsodium itself).
	#[test]
	fn ed25519_to_x25519_known_answer() {
		let seed = unhex("421151a459faeade3d247115f94aedae42318124095afabe4d1451a559faedee");
		let keypair = from_seed(seed);
		let ed_public = ed25519_public_of(&peer_id(&keypair)).unwrap();
		assert_eq!(
			ed_public,
			unhex("b5076a8474a832daee4dd5b4040983b6623b5f344aca57d4d6ee4baf3f259e6e")
		);
		let x_public = unhex("f1814f0e8ff1043d8a44d25babff3cedcae6c22c3edaa48f857ae70de2baae50");
		let x_secret = unhex("8052030376d47112be7f73ed7a019293dd12ad910b654455798b4667d73de166");
		assert_eq!(x25519_public_from_ed25519(&ed_public).unwrap(), x_public);
		assert_eq!(x25519_secret_from_ed25519(&seed).to_bytes(), x_secret);
		let opening = OpeningKey::from_keypair(&keypair).unwrap();
		assert_eq!(opening.x25519_public(), x_public);

		// Both sides of the key agreement agree.
		let ephemeral = StaticSecret::from([5u8; 32]);
		let from_sender = ephemeral.diffie_hellman(&XPublic::from(x_public));
		let from_recipient =
			x25519_secret_from_ed25519(&seed).diffie_hellman(&XPublic::from(&ephemeral));
		assert_eq!(from_sender.as_bytes(), from_recipient.as_bytes());
	}

	#[test]
	fn peer_ids_without_ed25519_key_are_refused() {
		let hashed: PeerId = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N".parse().unwrap();
		assert_eq!(seal(&hashed, 1, PUBLISHER, b"x"), Err(SealError::NoInlineKey));
		let small_order = [0u8; 32]; // not even a valid key encoding of a useful point
		assert_eq!(x25519_public_from_ed25519(&small_order), Err(SealError::WeakKey));
	}

	#[test]
	fn at_rest_roundtrip_and_binding() {
		let keypair = from_seed([1; 32]);
		let sealed = seal_at_rest(&keypair, b"deal/42", b"secret manifest").unwrap();
		assert_eq!(open_at_rest(&keypair, b"deal/42", &sealed).unwrap(), b"secret manifest");
		assert_eq!(open_at_rest(&keypair, b"deal/43", &sealed), Err(SealError::Undecryptable));
		assert_eq!(
			open_at_rest(&from_seed([2; 32]), b"deal/42", &sealed),
			Err(SealError::Undecryptable)
		);
		assert_eq!(
			open_at_rest(&keypair, b"deal/42", &sealed[..20]),
			Err(SealError::Undecryptable)
		);
		assert_eq!(open_at_rest(&keypair, b"deal/42", &[]), Err(SealError::Undecryptable));
	}
}
