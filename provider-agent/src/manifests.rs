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

/// The manifests the agent holds: sealed in the store, their hashes and the digests of the
/// images their publishers deliver in memory.
pub struct Vault {
	store: Arc<Store>,
	key: AtRestKey,
	hashes: Mutex<BTreeMap<u64, Held>>,
}

/// What the vault remembers of a held manifest.
#[derive(Clone, Debug)]
struct Held {
	hash: Hash,
	/// Digests of the images the publisher delivers ([`Manifest::delivered_images`]).
	images: Vec<ImageDigest>,
}

/// SHA-256 of a delivered image's OCI manifest.
pub type ImageDigest = [u8; 32];

/// The digests of the images `manifest`'s publisher delivers.
pub fn delivered_digests(manifest: &Manifest) -> Vec<ImageDigest> {
	manifest.delivered_images().iter().map(|image| image.digest).collect()
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
	/// Opens the vault over `store`, reading the manifests it holds.
	pub fn open(store: Arc<Store>, key: AtRestKey) -> Result<Self, VaultError> {
		let vault = Self { store, key, hashes: Mutex::new(BTreeMap::new()) };
		let mut hashes = BTreeMap::new();
		for deal in vault.store.deals()? {
			let Some(stored) = vault.store.manifest(deal)? else { continue };
			let hash = stored
				.get(..32)
				.and_then(|h| <Hash>::try_from(h).ok())
				.ok_or_else(|| VaultError::Unreadable(deal, "too short".into()))?;
			// One manifest that does not open must not keep the agent (and every other deal)
			// down: it is held as it was, and deploying it reports the error.
			let images = match vault.get(deal) {
				Ok(Some((_, manifest))) => delivered_digests(&manifest),
				Ok(None) => continue,
				Err(e) => {
					tracing::error!(deal, error = %e, "a held manifest cannot be read");
					Vec::new()
				}
			};
			hashes.insert(deal, Held { hash, images });
		}
		*vault.hashes.lock().map_err(|_| VaultError::Unreadable(0, "poisoned".into()))? = hashes;
		Ok(vault)
	}

	/// Hashes of the manifests held, by deal.
	pub fn hashes(&self) -> BTreeMap<u64, Hash> {
		let held = self.hashes.lock();
		held.map(|h| h.iter().map(|(deal, held)| (*deal, held.hash)).collect()).unwrap_or_default()
	}

	/// Hashes of the manifests held whose delivered images are all in, by deal: the ones the
	/// agent can run.
	pub fn runnable(&self, has_image: impl Fn(u64, &ImageDigest) -> bool) -> BTreeMap<u64, Hash> {
		let Ok(held) = self.hashes.lock() else { return BTreeMap::new() };
		held.iter()
			.filter(|(deal, held)| held.images.iter().all(|digest| has_image(**deal, digest)))
			.map(|(deal, held)| (*deal, held.hash))
			.collect()
	}

	/// The delivered images `deal`'s held manifest runs, if it holds one.
	pub fn images(&self, deal: u64) -> Option<Vec<ImageDigest>> {
		self.hashes.lock().ok()?.get(&deal).map(|held| held.images.clone())
	}

	/// Keeps `manifest` (canonical bytes whose hash is `hash`, delivering `images`) for `deal`,
	/// replacing any other.
	pub fn put(
		&self,
		deal: u64,
		hash: Hash,
		manifest: &[u8],
		images: Vec<ImageDigest>,
	) -> Result<(), StoreError> {
		let sealed = self.key.seal(&context(deal), manifest);
		self.store.put_manifest(deal, &[hash.as_slice(), &sealed].concat())?;
		if let Ok(mut hashes) = self.hashes.lock() {
			hashes.insert(deal, Held { hash, images });
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
	/// Whether the backend runs images publishers deliver.
	pub delivered_images: bool,
}

impl SpecContext {
	/// The host name `deal` is served at: its registered name under the ingress domain.
	pub fn host(&self, deal: &DealView) -> Option<String> {
		match (&deal.name, &self.ingress_domain) {
			(Some(name), Some(domain)) => Some(format!("{name}.{domain}").to_ascii_lowercase()),
			_ => None,
		}
	}

	/// The spec of `deal` running `manifest`, its delivered images staged as `images`.
	pub fn spec(
		&self,
		deal: &DealView,
		manifest: Manifest,
		manifest_hash: Hash,
		images: BTreeMap<ImageDigest, String>,
	) -> DealSpec {
		let http_host = self.host(deal);
		DealSpec {
			deal: deal.chain.id,
			provider: self.provider.clone(),
			publisher: deal.publisher.to_string(),
			manifest,
			manifest_hash,
			reserved: deal.reserved,
			http_host,
			images,
		}
	}

	/// The spec of `deal` running `manifest` before its images are staged, to check what
	/// does not depend on them (ports, resources, names); the images stand in as
	/// `name@digest`.
	pub fn spec_unstaged(&self, deal: &DealView, manifest: Manifest, hash: Hash) -> DealSpec {
		let images = manifest
			.delivered_images()
			.into_iter()
			.map(|image| (image.digest, format!("{}@{}", image.name, image.digest_text())))
			.collect();
		self.spec(deal, manifest, hash, images)
	}
}

/// Checks a delivery against the deal in `snapshot` and returns the manifest's canonical bytes,
/// its hash and the images its publisher delivers: the sender must be the deal's publisher, the manifest must be the one on chain (or
/// the update the publisher asked for), and the provider must be able to run it.
pub fn check_delivery(
	request: &InboundManifest,
	snapshot: &Snapshot,
	context: &SpecContext,
) -> Result<(Vec<u8>, Hash, Vec<ImageDigest>), RejectReason> {
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
	if !context.delivered_images && !manifest.delivered_images().is_empty() {
		return Err(RejectReason::Unrunnable(
			"this provider does not run images delivered by publishers: name images it can \
			 pull"
				.into(),
		));
	}
	let images = delivered_digests(&manifest);
	objects::build(&context.spec_unstaged(deal, manifest, hash), &context.build)
		.map_err(|e| RejectReason::Unrunnable(e.to_string()))?;
	Ok((bytes, hash, images))
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
			vault.put(3, manifest.hash(), &bytes, Vec::new()).unwrap();
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
	fn a_manifest_runs_once_its_delivered_images_are_in() {
		let dir = tempfile::tempdir().unwrap();
		let store = Arc::new(Store::open(&dir.path().join("agent.redb")).unwrap());
		let digest = [0xcd; 32];
		let yaml = WEB.replace(
			"image: localhost/podchain-demo:latest",
			&format!("image: {{name: app, digest: {}}}", podchain_manifest::digest_text(&digest)),
		);
		let manifest = Manifest::from_yaml(&yaml).unwrap();
		assert_eq!(delivered_digests(&manifest), vec![digest]);
		let plain = Manifest::from_yaml(WEB).unwrap();
		{
			let vault = Vault::open(store.clone(), at_rest_key()).unwrap();
			vault.put(1, manifest.hash(), &manifest.canonical_bytes(), vec![digest]).unwrap();
			vault.put(2, plain.hash(), &plain.canonical_bytes(), Vec::new()).unwrap();
		}
		// After a restart the vault knows again which images each manifest waits for.
		let vault = Vault::open(store, at_rest_key()).unwrap();
		assert_eq!(vault.images(1), Some(vec![digest]));
		assert_eq!(vault.runnable(|_, _| false), BTreeMap::from([(2, plain.hash())]));
		let both = BTreeMap::from([(1, manifest.hash()), (2, plain.hash())]);
		assert_eq!(vault.runnable(|deal, d| deal == 1 && *d == digest), both);
		// Another deal's copy of the image does not count.
		assert_eq!(vault.runnable(|deal, _| deal == 3).len(), 1);
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
			delivered_images: true,
		};
		let spec = context.spec_unstaged(&deal, manifest.clone(), manifest.hash());
		assert_eq!(spec.http_host.as_deref(), Some("shop.deals.example.com"));
		context.ingress_domain = None;
		assert_eq!(context.spec_unstaged(&deal, manifest.clone(), manifest.hash()).http_host, None);
	}
}
