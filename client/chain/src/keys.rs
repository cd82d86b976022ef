//! Account keys: sr25519 key pairs from a secret URI (`//Alice`, a mnemonic, a hex seed, with
//! optional `//hard/soft` derivation), read from a string, an environment variable or a file.
//! The secret never appears in `Debug` output or errors.

use crate::AccountId;
use std::{fmt, path::Path, str::FromStr};
use subxt_signer::{sr25519::Keypair, SecretUri};

/// Why a key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
	/// The secret is not a valid secret URI, mnemonic or seed (its text is not repeated here).
	#[error("the secret is not a valid secret URI, mnemonic or 0x-prefixed seed")]
	InvalidSecret,
	/// The key file could not be read.
	#[error("cannot read key file {path}: {source}")]
	Read {
		/// The file.
		path: String,
		/// What went wrong.
		#[source]
		source: std::io::Error,
	},
	/// The key file can be read by other users.
	#[error("key file {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`")]
	TooOpen {
		/// The file.
		path: String,
		/// Its permission bits.
		mode: u32,
	},
}

/// An sr25519 account key pair.
#[derive(Clone)]
pub struct AccountKey {
	pair: Keypair,
}

impl AccountKey {
	/// Parses a secret URI: `//Alice`, `<mnemonic>//derivation`, or `0x<32-byte seed>`.
	pub fn from_secret(secret: &str) -> Result<Self, KeyError> {
		let uri = SecretUri::from_str(secret.trim()).map_err(|_| KeyError::InvalidSecret)?;
		let pair = Keypair::from_uri(&uri).map_err(|_| KeyError::InvalidSecret)?;
		Ok(Self { pair })
	}

	/// Reads the secret from a file that only its owner may read.
	pub fn from_file(path: &Path) -> Result<Self, KeyError> {
		let display = path.display().to_string();
		#[cfg(unix)]
		{
			use std::os::unix::fs::PermissionsExt;
			let mode = std::fs::metadata(path)
				.map_err(|source| KeyError::Read { path: display.clone(), source })?
				.permissions()
				.mode();
			if mode & 0o077 != 0 {
				return Err(KeyError::TooOpen { path: display, mode: mode & 0o777 });
			}
		}
		let secret = std::fs::read_to_string(path)
			.map_err(|source| KeyError::Read { path: display, source })?;
		Self::from_secret(&secret)
	}

	/// The account this key signs for.
	pub fn account_id(&self) -> AccountId {
		self.pair.public_key().to_account_id()
	}

	/// The public key's 32 bytes.
	pub fn public(&self) -> [u8; 32] {
		self.pair.public_key().0
	}

	/// Signs `message` (sr25519, signing context `substrate`).
	pub fn sign(&self, message: &[u8]) -> [u8; 64] {
		self.pair.sign(message).0
	}

	/// The key pair, to sign transactions with.
	pub fn pair(&self) -> &Keypair {
		&self.pair
	}
}

impl fmt::Debug for AccountKey {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		write!(f, "AccountKey({})", self.account_id())
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use std::io::Write;

	/// Alice's well-known dev account.
	const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

	#[test]
	fn dev_uri_gives_the_known_account() {
		let key = AccountKey::from_secret("//Alice").unwrap();
		assert_eq!(key.account_id().to_string(), ALICE);
		assert_eq!(format!("{key:?}"), format!("AccountKey({ALICE})"));
	}

	#[test]
	fn bad_secrets_are_refused_without_echoing_them() {
		let err = AccountKey::from_secret("not a secret at all").unwrap_err();
		assert!(!err.to_string().contains("not a secret"));
	}

	#[test]
	fn key_files_must_be_private() {
		use std::os::unix::fs::PermissionsExt;
		let dir = tempfile::tempdir().unwrap();
		let path = dir.path().join("key");
		std::fs::File::create(&path).unwrap().write_all(b"//Alice\n").unwrap();
		std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
		assert!(matches!(AccountKey::from_file(&path), Err(KeyError::TooOpen { .. })));
		std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
		assert_eq!(AccountKey::from_file(&path).unwrap().account_id().to_string(), ALICE);
	}
}
