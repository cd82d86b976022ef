//! The node's libp2p identity: an ed25519 keypair kept in a file.
//!
//! The file holds the 32-byte ed25519 secret seed, raw, like Substrate's `--node-key-file` and
//! `subkey generate-node-key --bin`; 64 hex characters are accepted on reading too.

use std::{
	fs,
	io::{ErrorKind, Write},
	path::Path,
};

use libp2p::{
	identity::{ed25519, Keypair},
	PeerId,
};
use zeroize::Zeroizing;

use crate::error::IdentityError;

/// Loads the ed25519 keypair stored at `path`, or creates one there (mode 0600) if the file does
/// not exist yet.
pub fn load_or_create(path: &Path) -> Result<Keypair, IdentityError> {
	let io_err = |source| IdentityError::Io { path: path.to_owned(), source };
	match fs::read(path) {
		Ok(bytes) => {
			warn_if_readable_by_others(path);
			decode(Zeroizing::new(bytes))
				.ok_or_else(|| IdentityError::Malformed { path: path.to_owned() })
		}
		Err(e) if e.kind() == ErrorKind::NotFound => {
			if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
				fs::create_dir_all(dir).map_err(io_err)?;
			}
			let keypair = ed25519::Keypair::generate();
			let seed = Zeroizing::new(keypair.secret().as_ref().to_vec());
			match create_private(path) {
				Ok(mut file) => {
					file.write_all(&seed).and_then(|()| file.sync_all()).map_err(io_err)?;
					tracing::info!(path = %path.display(), "created a new node identity");
					Ok(keypair.into())
				}
				// Another process created it between our read and create: use theirs.
				Err(e) if e.kind() == ErrorKind::AlreadyExists => load_or_create(path),
				Err(e) => Err(io_err(e)),
			}
		}
		Err(e) => Err(io_err(e)),
	}
}

/// Builds the keypair for a 32-byte ed25519 secret seed.
pub fn from_seed(seed: [u8; 32]) -> Keypair {
	let mut seed = Zeroizing::new(seed);
	let secret = ed25519::SecretKey::try_from_bytes(&mut seed[..])
		.expect("a 32-byte slice is always a valid ed25519 seed; qed");
	ed25519::Keypair::from(secret).into()
}

/// The peer id of a keypair (for ed25519, it inlines the public key).
pub fn peer_id(keypair: &Keypair) -> PeerId {
	keypair.public().to_peer_id()
}

/// Reads a seed, raw or as hex text. A raw seed is taken as is: its bytes may be anything,
/// whitespace included, so only hex text is trimmed.
fn decode(bytes: Zeroizing<Vec<u8>>) -> Option<Keypair> {
	let mut seed = Zeroizing::new([0u8; 32]);
	if bytes.len() == 32 {
		seed.copy_from_slice(&bytes);
		return Some(from_seed(*seed));
	}
	let text = bytes.trim_ascii();
	if text.len() != 64 {
		return None;
	}
	for (out, pair) in seed.iter_mut().zip(text.chunks_exact(2)) {
		*out = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
	}
	Some(from_seed(*seed))
}

fn hex_digit(c: u8) -> Option<u8> {
	(c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<fs::File> {
	use std::os::unix::fs::OpenOptionsExt;
	fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<fs::File> {
	fs::OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
	use std::os::unix::fs::PermissionsExt;
	if let Ok(meta) = fs::metadata(path) {
		if meta.permissions().mode() & 0o077 != 0 {
			tracing::warn!(path = %path.display(), "node identity file is accessible by other users");
		}
	}
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn creates_then_loads_the_same_key() {
		let dir = tempfile::tempdir().unwrap();
		let path = dir.path().join("keys/node.key");
		let first = load_or_create(&path).unwrap();
		let second = load_or_create(&path).unwrap();
		assert_eq!(peer_id(&first), peer_id(&second));
		assert_eq!(fs::read(&path).unwrap().len(), 32);
		#[cfg(unix)]
		{
			use std::os::unix::fs::PermissionsExt;
			assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
		}
	}

	#[test]
	fn raw_seeds_with_whitespace_bytes_load() {
		let dir = tempfile::tempdir().unwrap();
		let path = dir.path().join("node.key");
		let mut seed = [7u8; 32];
		seed[0] = b' ';
		seed[31] = b'\n';
		fs::write(&path, seed).unwrap();
		assert_eq!(peer_id(&load_or_create(&path).unwrap()), peer_id(&from_seed(seed)));
	}

	#[test]
	fn reads_hex_and_rejects_garbage() {
		let dir = tempfile::tempdir().unwrap();
		let path = dir.path().join("node.key");
		fs::write(&path, format!("{}\n", "07".repeat(32))).unwrap();
		assert_eq!(peer_id(&load_or_create(&path).unwrap()), peer_id(&from_seed([7; 32])));
		fs::write(&path, b"not a key").unwrap();
		assert!(matches!(load_or_create(&path), Err(IdentityError::Malformed { .. })));
	}
}
