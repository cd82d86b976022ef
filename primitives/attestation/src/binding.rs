//! What a provider's quote must vouch for.

use codec::Encode;

/// Domain separator of the binding, so that no other podchain hash can be passed off as one.
pub const BINDING_DOMAIN: &[u8] = b"podchain/attestation/v1";

/// The 32 bytes a provider's quote must carry at the start of its report data: blake2-256 of
/// the SCALE encoding of `(BINDING_DOMAIN, account, peer_id, sealing_key)`.
///
/// - `account`: the provider's account, so a quote cannot be reused by another provider;
/// - `peer_id`: its agent's libp2p peer id as registered (base58 text), so publishers know
///   the TEE holds the key they connect to;
/// - `sealing_key`: the X25519 key manifests are sealed to, so only the attested TEE can open
///   them.
pub fn binding(account: &impl Encode, peer_id: &[u8], sealing_key: &[u8; 32]) -> [u8; 32] {
	sp_crypto_hashing::blake2_256(&(BINDING_DOMAIN, account, peer_id, sealing_key).encode())
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn every_input_changes_the_binding() {
		let base = binding(&[1u8; 32], b"12D3KooWpeer", &[7; 32]);
		assert_ne!(base, binding(&[2u8; 32], b"12D3KooWpeer", &[7; 32]));
		assert_ne!(base, binding(&[1u8; 32], b"12D3KooWpeeR", &[7; 32]));
		assert_ne!(base, binding(&[1u8; 32], b"12D3KooWpeer", &[8; 32]));
		// Length-prefixed: moving bytes between fields changes it too.
		assert_ne!(binding(&[1u8; 32], b"ab", &[7; 32]), binding(&[1u8; 32], b"a", &[7; 32]));
		assert_eq!(base, binding(&[1u8; 32], b"12D3KooWpeer", &[7; 32]));
	}
}
