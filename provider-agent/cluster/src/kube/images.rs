//! Images publishers deliver, on Kubernetes: the nodes pull them from the agent's pull-only
//! registry by digest, under a repository only the deal's pods are told:
//! `<host>/deal-<id>-<token>/<name>@sha256:<hex>`, where the token is a keyed hash of the
//! deal id under the agent's secret. Another tenant cannot name it (it never sees the deal's
//! pod specs), and the registry serves a deal's repository only the images that deal pins.

use podchain_manifest::{blake2_256, DeliveredImage};

use crate::DealId;

/// Domain of the repository token's hash.
const TOKEN_DOMAIN: &[u8] = b"podchain/registry/repository/v1";

/// Hex digits of a repository's token (64 bits of it).
const TOKEN_HEX: usize = 16;

/// Where the cluster's nodes pull delivered images from.
#[derive(Clone, PartialEq, Eq)]
pub struct DeliveredImages {
	/// The registry's `host[:port]` as the nodes reach it (their containerd configuration maps
	/// it to the agent's registry endpoint).
	pub host: String,
	/// The agent's secret the repositories' tokens are derived from.
	pub key: [u8; 32],
}

impl std::fmt::Debug for DeliveredImages {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		f.debug_struct("DeliveredImages").field("host", &self.host).finish_non_exhaustive()
	}
}

impl DeliveredImages {
	/// The reference `deal`'s pods run `image` by.
	pub fn reference(&self, deal: DealId, image: &DeliveredImage) -> String {
		format!(
			"{}/{}/{}@{}",
			self.host,
			repository(&self.key, deal),
			image.name,
			image.digest_text()
		)
	}
}

fn token(key: &[u8; 32], deal: DealId) -> String {
	let hash = blake2_256(&[TOKEN_DOMAIN, key.as_slice(), &deal.to_le_bytes()].concat());
	hash[..TOKEN_HEX / 2].iter().map(|b| format!("{b:02x}")).collect()
}

/// The first path component of `deal`'s repositories: `deal-<id>-<token>`.
pub fn repository(key: &[u8; 32], deal: DealId) -> String {
	format!("deal-{deal}-{}", token(key, deal))
}

/// The deal whose repository `component` is, if its token is right.
pub fn deal_of_repository(key: &[u8; 32], component: &str) -> Option<DealId> {
	let (id, given) = component.strip_prefix("deal-")?.split_once('-')?;
	let deal: DealId = id.parse().ok()?;
	// No leading zeros or signs: one spelling per deal.
	if deal.to_string() != id || given.len() != TOKEN_HEX {
		return None;
	}
	let expected = token(key, deal);
	// Compared in constant time: a wrong token reveals nothing of the right one.
	let differing = expected.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
	(differing == 0).then_some(deal)
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn repositories_are_the_deals_and_unguessable_without_the_key() {
		let key = [7; 32];
		let repo = repository(&key, 42);
		assert!(repo.starts_with("deal-42-") && repo.len() == "deal-42-".len() + TOKEN_HEX);
		assert_eq!(deal_of_repository(&key, &repo), Some(42));
		// Another key, deal, token or spelling is not it.
		assert_eq!(deal_of_repository(&[8; 32], &repo), None);
		assert_eq!(deal_of_repository(&key, &repo.replace("deal-42-", "deal-43-")), None);
		assert_eq!(deal_of_repository(&key, &repo.replace("deal-42-", "deal-042-")), None);
		let mut wrong = repo.clone();
		let last = wrong.pop().unwrap();
		wrong.push(if last == '0' { '1' } else { '0' });
		assert_eq!(deal_of_repository(&key, &wrong), None);
		assert_eq!(deal_of_repository(&key, "deal-42"), None);
		assert_eq!(deal_of_repository(&key, &format!("{repo}0")), None);
		let images = DeliveredImages { host: "registry.podchain:5000".into(), key };
		let image = DeliveredImage { name: "team/web".into(), digest: [0xab; 32] };
		assert_eq!(
			images.reference(42, &image),
			format!("registry.podchain:5000/{repo}/team/web@sha256:{}", "ab".repeat(32))
		);
		assert!(!format!("{images:?}").contains("7, 7"), "the key stays out of logs");
	}
}
