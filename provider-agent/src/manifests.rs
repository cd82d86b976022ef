//! Manifests delivered by publishers over libp2p: checked against the deal on chain, kept
//! encrypted at rest, and handed to the cluster part when a deal is deployed.

use crate::{
	chain::{DealView, Snapshot},
	plan::{ChainState, Hash},
	store::{Store, StoreError},
};
use podchain_cluster::objects::{self, BuildOptions, DealSpec};
use podchain_manifest::Manifest;
use podchain_p2p::{node::InboundManifest, protocol::RejectReason, seal::AtRestKey};
use std::{
	collections::BTreeMap,
	sync::{Arc, Mutex},
};

/// The manifests the agent holds: sealed in the store, their hashes in memory.
pub struct Vault {
	store: Arc<Store>,
	key: AtRestKey,
	hashes: Mutex<BTreeMap<u64, Hash>>,
}

/// A stored manifest that cannot be read back (the store or the at-rest key changed).
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
	/// The store failed.
	#[error(transparent)]
	Store(#[from] StoreError),
	/// The stored bytes do not open or parse.
	#[error("stored manifest of deal {0} is unreadable: {1}")]
	Unreadable(u64, String),
}

/// Binds a sealed manifest to its deal: one deal's ciphertext does not open as another's.
fn context(deal: u64) -> Vec<u8> {
	[b"podchain-agent/manifest/".as_slice(), &deal.to_le_bytes()].concat()
}

impl Vault {
	/// Opens the vault over `store`, reading the hashes of the manifests it holds.
	pub fn open(store: Arc<Store>, key: AtRestKey) -> Result<Self, VaultError> {
		let mut hashes = BTreeMap::new();
		for deal in store.deals()? {
			if let Some(stored) = store.manifest(deal)? {
				let hash = stored
					.get(..32)
					.and_then(|h| <Hash>::try_from(h).ok())
					.ok_or_else(|| VaultError::Unreadable(deal, "too short".into()))?;
				hashes.insert(deal, hash);
			}
		}
		Ok(Self { store, key, hashes: Mutex::new(hashes) })
	}

	/// Hashes of the manifests held, by deal.
	pub fn hashes(&self) -> BTreeMap<u64, Hash> {
		self.hashes.lock().map(|h| h.clone()).unwrap_or_default()
	}

	/// Keeps `manifest` (canonical bytes whose hash is `hash`) for `deal`, replacing any other.
	pub fn put(&self, deal: u64, hash: Hash, manifest: &[u8]) -> Result<(), StoreError> {
		let sealed = self.key.seal(&context(deal), manifest);
		self.store.put_manifest(deal, &[hash.as_slice(), &sealed].concat())?;
		if let Ok(mut hashes) = self.hashes.lock() {
			hashes.insert(deal, hash);
		}
		Ok(())
	}

	/// The manifest held for `deal`, parsed, with its hash.
	pub fn get(&self, deal: u64) -> Result<Option<(Hash, Manifest)>, VaultError> {
		let Some(stored) = self.store.manifest(deal)? else { return Ok(None) };
		let unreadable = |why: String| VaultError::Unreadable(deal, why);
		let (hash, sealed) =
			stored.split_at_checked(32).ok_or_else(|| unreadable("too short".into()))?;
		let bytes = self.key.open(&context(deal), sealed).map_err(|e| unreadable(e.to_string()))?;
		let manifest = Manifest::from_bytes(&bytes).map_err(|e| unreadable(e.to_string()))?;
		let hash = <Hash>::try_from(hash).map_err(|e| unreadable(e.to_string()))?;
		Ok(Some((hash, manifest)))
	}

	/// Forgets `deal`'s hash (the store forgets its manifest with its meter).
	pub fn forget(&self, deal: u64) {
		if let Ok(mut hashes) = self.hashes.lock() {
			hashes.remove(&deal);
		}
	}
}

/// What the provider needs to build a deal's objects besides the manifest.
#[derive(Clone, Debug)]
pub struct SpecContext {
	/// The provider's account, SS58.
	pub provider: String,
	/// Domain under which registered deal names are served (`<name>.<domain>`).
	pub ingress_domain: Option<String>,
	/// How objects are built.
	pub build: BuildOptions,
}

impl SpecContext {
	/// The host name `deal` is served at: its registered name under the ingress domain.
	pub fn host(&self, deal: &DealView) -> Option<String> {
		match (&deal.name, &self.ingress_domain) {
			(Some(name), Some(domain)) => Some(format!("{name}.{domain}").to_ascii_lowercase()),
			_ => None,
		}
	}

	/// The spec of `deal` running `manifest`.
	pub fn spec(&self, deal: &DealView, manifest: Manifest, manifest_hash: Hash) -> DealSpec {
		let http_host = self.host(deal);
		DealSpec {
			deal: deal.chain.id,
			provider: self.provider.clone(),
			publisher: deal.publisher.to_string(),
			manifest,
			manifest_hash,
			reserved: deal.reserved,
			http_host,
		}
	}
}

/// Checks a delivery against the deal in `snapshot` and returns the manifest's canonical bytes
/// and hash: the sender must be the deal's publisher, the manifest must be the one on chain (or
/// the update the publisher asked for), and the provider must be able to run it.
pub fn check_delivery(
	request: &InboundManifest,
	snapshot: &Snapshot,
	context: &SpecContext,
) -> Result<(Vec<u8>, Hash), RejectReason> {
	let id = request.request().deal_id;
	let deal = snapshot.deals.get(&id).ok_or(RejectReason::UnknownDeal)?;
	if deal.chain.state == ChainState::Closing {
		return Err(RejectReason::DealClosing);
	}
	if deal.chain.is_rent {
		return Err(RejectReason::Unrunnable("a rent runs no manifest of its own".into()));
	}
	let publisher: [u8; 32] = deal.publisher.0;
	// An update in flight is what the publisher sends next; the current one may be re-sent.
	let mut result = Err(RejectReason::HashMismatch);
	for hash in deal.chain.pending_manifest.iter().chain([&deal.chain.manifest_hash]) {
		result = request.open_checked(&publisher, hash).map(|bytes| (bytes, *hash));
		if !matches!(result, Err(RejectReason::HashMismatch)) {
			break;
		}
	}
	let (bytes, hash) = result?;
	let manifest =
		Manifest::from_bytes(&bytes).map_err(|e| RejectReason::Unrunnable(e.to_string()))?;
	objects::build(&context.spec(deal, manifest, hash), &context.build)
		.map_err(|e| RejectReason::Unrunnable(e.to_string()))?;
	Ok((bytes, hash))
}

#[cfg(test)]
mod tests {
	use super::*;

	const WEB: &str = include_str!("../../client/manifest/fixtures/web.yaml");

	fn at_rest_key() -> AtRestKey {
		AtRestKey::from_keypair(&podchain_p2p::identity::from_seed([7; 32])).unwrap()
	}

	#[test]
	fn manifests_are_sealed_at_rest_and_survive_a_restart() {
		let dir = tempfile::tempdir().unwrap();
		let path = dir.path().join("agent.redb");
		let manifest = Manifest::from_yaml(WEB).unwrap();
		let bytes = manifest.canonical_bytes();
		{
			let store = Arc::new(Store::open(&path).unwrap());
			let vault = Vault::open(store.clone(), at_rest_key()).unwrap();
			vault.put(3, manifest.hash(), &bytes).unwrap();
			let stored = store.manifest(3).unwrap().unwrap();
			let text = String::from_utf8_lossy(&stored);
			assert!(!text.contains("podchain-demo"), "the manifest is not stored in the clear");
		}
		let store = Arc::new(Store::open(&path).unwrap());
		let vault = Vault::open(store.clone(), at_rest_key()).unwrap();
		assert_eq!(vault.hashes(), BTreeMap::from([(3, manifest.hash())]));
		let (hash, read) = vault.get(3).unwrap().unwrap();
		assert_eq!((hash, read.hash()), (manifest.hash(), manifest.hash()));
		// Another deal's slot, or another key, does not open it.
		let other = AtRestKey::from_keypair(&podchain_p2p::identity::from_seed([8; 32])).unwrap();
		let foreign = Vault::open(store.clone(), other).unwrap();
		assert!(matches!(foreign.get(3), Err(VaultError::Unreadable(3, _))));
		store.put_manifest(4, &store.manifest(3).unwrap().unwrap()).unwrap();
		assert!(matches!(vault.get(4), Err(VaultError::Unreadable(4, _))));
	}

	#[test]
	fn a_named_deal_is_served_under_the_ingress_domain() {
		let manifest = Manifest::from_yaml(WEB).unwrap();
		let deal = DealView {
			chain: crate::plan::ChainDeal {
				id: 9,
				is_rent: false,
				state: ChainState::Active { accepted_at: 1 },
				manifest_hash: manifest.hash(),
				pending_manifest: None,
			},
			publisher: podchain_chain::AccountId::from([2; 32]),
			metered: true,
			reserved: Default::default(),
			settled_until: 1,
			billable_until: Some(1),
			egress_limit: u64::MAX,
			name: Some("shop".into()),
			sla: None,
		};
		let mut context = SpecContext {
			provider: "provider".into(),
			ingress_domain: Some("deals.example.com".into()),
			build: BuildOptions::default(),
		};
		let spec = context.spec(&deal, manifest.clone(), manifest.hash());
		assert_eq!(spec.http_host.as_deref(), Some("shop.deals.example.com"));
		context.ingress_domain = None;
		assert_eq!(context.spec(&deal, manifest.clone(), manifest.hash()).http_host, None);
	}
}
