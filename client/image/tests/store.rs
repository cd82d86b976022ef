//! The provider's blob store: offers, chunked writes, resume, sharing, limits, refusals, garbage
//! collection, recovery after a kill at any filesystem step, and the OCI archive podman loads.

mod common;

use common::*;
use podchain_image::{
	local::LocalImage,
	store::{BlobState, BlobStore, StoreError, StoreLimits},
	FormatError,
};
use std::path::Path;

const ROOMY: StoreLimits = StoreLimits { per_deal: 1 << 30, total: 1 << 32 };

fn open(root: &Path) -> BlobStore {
	BlobStore::open(root, ROOMY).unwrap()
}

/// Uploads every blob of `image` for `deal` in `chunk`-byte pieces, from the offsets `offer`
/// reported.
fn upload(store: &BlobStore, deal: u64, image: &TestImage, chunk: usize) {
	let states = store.offer(deal, &image.manifest_digest, &image.manifest).unwrap();
	for (state, (digest, bytes)) in states.iter().zip(image.blobs()) {
		assert_eq!(state.digest, digest);
		let mut at = state.have as usize;
		while at < bytes.len() {
			let end = (at + chunk).min(bytes.len());
			assert_eq!(store.write(deal, &digest, at as u64, &bytes[at..end]).unwrap(), end as u64);
			at = end;
		}
	}
	assert!(store.image_complete(deal, &image.manifest_digest));
}

fn big_image(ref_name: &str, app_size: usize) -> TestImage {
	let app: Vec<u8> = (0..app_size).map(|i| (i * 7 + i / 251) as u8).collect();
	amd64_image(ref_name, &app)
}

fn all_have(states: &[BlobState]) -> Vec<u64> {
	states.iter().map(|s| s.have).collect()
}

#[test]
fn an_image_uploads_in_chunks_and_is_complete() {
	let dir = tempfile::tempdir().unwrap();
	let store = open(dir.path());
	let image = big_image("app", 100_000);
	assert!(!store.image_complete(1, &image.manifest_digest));
	let states = store.offer(1, &image.manifest_digest, &image.manifest).unwrap();
	assert_eq!(all_have(&states), vec![0, 0, 0]);
	assert_eq!(states[0].size, image.config.len() as u64);
	upload(&store, 1, &image, 4096);
	for (digest, bytes) in image.blobs() {
		assert_eq!(std::fs::read(store.blob_path(&digest).unwrap()).unwrap(), bytes);
	}
	assert_eq!(
		std::fs::read(store.blob_path(&image.manifest_digest).unwrap()).unwrap(),
		image.manifest
	);
	assert_eq!(store.images(1), vec![image.manifest_digest]);
	assert_eq!(store.deals_pinning(&sha256(&image.layers[1])), vec![1]);
	let parsed = store.manifest_of(&image.manifest_digest).unwrap();
	assert_eq!(parsed.layers.len(), 2);
	// A second offer reports everything complete; a write to a complete blob answers its size.
	let states = store.offer(1, &image.manifest_digest, &image.manifest).unwrap();
	assert_eq!(all_have(&states), states.iter().map(|s| s.size).collect::<Vec<_>>());
	let (digest, bytes) = &image.blobs()[1];
	assert_eq!(store.write(1, digest, 0, &bytes[..10]).unwrap(), bytes.len() as u64);
	// Accounted size: manifest + config + layers.
	let expected = image.manifest.len()
		+ image.config.len()
		+ image.layers.iter().map(Vec::len).sum::<usize>();
	assert_eq!(store.size().unwrap(), expected as u64);
}

#[test]
fn wrong_offsets_overruns_and_wrong_bytes_are_refused() {
	let dir = tempfile::tempdir().unwrap();
	let store = open(dir.path());
	let image = big_image("app", 10_000);
	store.offer(1, &image.manifest_digest, &image.manifest).unwrap();
	let (digest, bytes) = image.blobs()[2].clone();
	store.write(1, &digest, 0, &bytes[..1000]).unwrap();
	// Skipping ahead or going back names the expected offset.
	for offset in [0, 999, 1001, 5000] {
		match store.write(1, &digest, offset, &bytes[offset as usize..offset as usize + 10]) {
			Err(StoreError::WrongOffset { expected: 1000, offset: o, .. }) => assert_eq!(o, offset),
			other => panic!("offset {offset}: expected WrongOffset, got {other:?}"),
		}
	}
	// Past the declared size.
	let mut long = bytes[1000..].to_vec();
	long.push(0);
	assert!(matches!(
		store.write(1, &digest, 1000, &long),
		Err(StoreError::PastEnd { size, .. }) if size == bytes.len() as u64
	));
	// Wrong bytes of the right length: the partial is deleted and the upload starts over.
	let mut wrong = bytes[1000..].to_vec();
	wrong[5] ^= 0xff;
	assert!(matches!(
		store.write(1, &digest, 1000, &wrong),
		Err(StoreError::DigestMismatch { .. })
	));
	assert!(store.blob_path(&digest).is_none());
	let states = store.offer(1, &image.manifest_digest, &image.manifest).unwrap();
	assert_eq!(states[2].have, 0);
	assert_eq!(std::fs::read_dir(dir.path().join("partial")).unwrap().count(), 0);
	upload(&store, 1, &image, 3000);
}

#[test]
fn offers_with_wrong_bytes_or_types_are_refused() {
	let dir = tempfile::tempdir().unwrap();
	let store = open(dir.path());
	let image = big_image("app", 1000);
	// Bytes that do not hash to the digest.
	let other = big_image("other", 1001);
	assert!(matches!(
		store.offer(1, &image.manifest_digest, &other.manifest),
		Err(StoreError::DigestMismatch { .. })
	));
	// An artifact manifest (config media type not an image config).
	let artifact = manifest_with(
		descriptor("application/vnd.example.sbom.v1+json", &image.config),
		vec![descriptor(OCI_LAYER, &image.layers[0])],
	);
	assert!(matches!(
		store.offer(1, &sha256(&artifact), &artifact),
		Err(StoreError::Format(FormatError::UnsupportedMediaType { role: "config", .. }))
	));
	// An index is not an image manifest.
	let index = serde_json::to_vec(&serde_json::json!({
		"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor(OCI_MANIFEST, &image.manifest)],
	}))
	.unwrap();
	assert!(matches!(
		store.offer(1, &sha256(&index), &index),
		Err(StoreError::Format(FormatError::UnsupportedMediaType { role: "manifest", .. }))
	));
	// A sha512 layer digest.
	let mut sha512 = descriptor(OCI_LAYER, &image.layers[0]);
	sha512["digest"] = serde_json::json!(format!("sha512:{}", "cd".repeat(64)));
	let manifest = manifest_with(descriptor(OCI_CONFIG, &image.config), vec![sha512]);
	assert!(matches!(
		store.offer(1, &sha256(&manifest), &manifest),
		Err(StoreError::Format(FormatError::UnsupportedDigestAlgorithm(_)))
	));
	// Too many layers.
	let layers = (0..300).map(|_| descriptor(OCI_LAYER, &image.layers[0])).collect();
	let manifest = manifest_with(descriptor(OCI_CONFIG, &image.config), layers);
	assert!(matches!(
		store.offer(1, &sha256(&manifest), &manifest),
		Err(StoreError::Format(FormatError::TooManyBlobs { count: 300, .. }))
	));
	// A manifest over the 4 MiB bound.
	let mut huge = image.manifest.clone();
	huge.extend(std::iter::repeat_n(b' ', 4 * 1024 * 1024));
	assert!(matches!(
		store.offer(1, &sha256(&huge), &huge),
		Err(StoreError::Format(FormatError::TooLarge { what: "manifest", .. }))
	));
	// Garbage.
	assert!(matches!(
		store.offer(1, &sha256(b"not json"), b"not json"),
		Err(StoreError::Format(FormatError::Malformed { .. }))
	));
	// Nothing was pinned or stored by the refusals.
	assert!(store.images(1).is_empty());
	assert_eq!(store.size().unwrap(), 0);
}

#[test]
fn a_stranger_cannot_write_blobs_its_images_do_not_list() {
	let dir = tempfile::tempdir().unwrap();
	let store = open(dir.path());
	let victim = big_image("victim", 5000);
	let attacker = big_image("attacker", 6000);
	store.offer(1, &victim.manifest_digest, &victim.manifest).unwrap();
	let (digest, bytes) = victim.blobs()[2].clone();
	// A deal with no images at all.
	assert!(matches!(
		store.write(9, &digest, 0, &bytes),
		Err(StoreError::NotPinned { deal: 9, .. })
	));
	// A deal with its own image naming the victim's layer.
	store.offer(2, &attacker.manifest_digest, &attacker.manifest).unwrap();
	assert!(matches!(
		store.write(2, &digest, 0, &bytes[..10]),
		Err(StoreError::NotPinned { deal: 2, .. })
	));
	// The manifest itself is not writable through chunks.
	assert!(matches!(
		store.write(1, &victim.manifest_digest, 0, &victim.manifest),
		Err(StoreError::NotPinned { .. })
	));
	// The victim's upload is untouched.
	upload(&store, 1, &victim, 1024);
}

#[test]
fn a_wrong_size_declared_by_another_deal_cannot_block_the_real_blob() {
	let dir = tempfile::tempdir().unwrap();
	let store = open(dir.path());
	let honest = big_image("honest", 8000);
	let layer = honest.layers[1].clone();
	// The attacker's manifest lists the honest layer with a smaller size.
	let mut short = descriptor(OCI_LAYER, &layer);
	short["size"] = serde_json::json!(layer.len() - 100);
	let attacker_manifest = manifest_with(descriptor(OCI_CONFIG, &honest.config), vec![short]);
	let attacker_digest = sha256(&attacker_manifest);
	store.offer(2, &attacker_digest, &attacker_manifest).unwrap();
	let digest = sha256(&layer);
	store.write(2, &digest, 0, &layer[..1000]).unwrap();
	// The honest deal uploads in full meanwhile; its partial is separate.
	store.offer(1, &honest.manifest_digest, &honest.manifest).unwrap();
	store.write(1, &digest, 0, &layer[..500]).unwrap();
	// The attacker's short upload can never verify, and deleting it leaves the honest partial.
	assert!(matches!(
		store.write(2, &digest, 1000, &layer[1000..layer.len() - 100]),
		Err(StoreError::DigestMismatch { .. })
	));
	upload(&store, 1, &honest, 700);
	// Once the real blob is stored, a contradicting size is refused on write and on offer, and
	// the attacker's image never counts as complete.
	assert!(matches!(
		store.write(2, &digest, 0, &layer[..10]),
		Err(StoreError::SizeMismatch { .. })
	));
	assert!(matches!(
		store.offer(3, &attacker_digest, &attacker_manifest),
		Err(StoreError::SizeMismatch { .. })
	));
	assert!(!store.image_complete(2, &attacker_digest));
	assert!(store.image_complete(1, &honest.manifest_digest));
}

#[test]
fn a_non_amd64_config_is_refused_and_deleted() {
	let dir = tempfile::tempdir().unwrap();
	let store = open(dir.path());
	let arm = image("linux", "arm64", vec![layer(&[("a", b"arm")])], "arm");
	store.offer(1, &arm.manifest_digest, &arm.manifest).unwrap();
	let config_digest = sha256(&arm.config);
	match store.write(1, &config_digest, 0, &arm.config) {
		Err(StoreError::UnsupportedPlatform { platform }) => assert_eq!(platform, "linux/arm64"),
		other => panic!("expected UnsupportedPlatform, got {other:?}"),
	}
	assert!(store.blob_path(&config_digest).is_none());
	assert!(!store.image_complete(1, &arm.manifest_digest));
	assert_eq!(std::fs::read_dir(dir.path().join("partial")).unwrap().count(), 0);
}

#[test]
fn an_upload_resumes_after_a_restart() {
	let dir = tempfile::tempdir().unwrap();
	let image = big_image("app", 300_000);
	let (digest, bytes) = image.blobs()[2].clone();
	{
		let store = open(dir.path());
		store.offer(7, &image.manifest_digest, &image.manifest).unwrap();
		store.write(7, &digest, 0, &bytes[..65_536]).unwrap();
		store.write(7, &digest, 65_536, &bytes[65_536..131_072]).unwrap();
	}
	let store = open(dir.path());
	let states = store.offer(7, &image.manifest_digest, &image.manifest).unwrap();
	assert_eq!(all_have(&states), vec![0, 0, 131_072]);
	// A write at the old offset is refused with the offset to resume at.
	assert!(matches!(
		store.write(7, &digest, 0, &bytes[..10]),
		Err(StoreError::WrongOffset { expected: 131_072, .. })
	));
	upload(&store, 7, &image, 50_000);
	assert_eq!(std::fs::read(store.blob_path(&digest).unwrap()).unwrap(), bytes);
}

#[test]
fn two_deals_share_layers_until_both_release() {
	let dir = tempfile::tempdir().unwrap();
	let store = open(dir.path());
	let base = layer(&[("bin/tool", &vec![3u8; 40_000])]);
	let first = image("linux", "amd64", vec![base.clone(), layer(&[("app", b"first")])], "first");
	let second =
		image("linux", "amd64", vec![base.clone(), layer(&[("app", b"second")])], "second");
	upload(&store, 1, &first, 8192);
	let states = store.offer(2, &second.manifest_digest, &second.manifest).unwrap();
	// The base layer is already there; config and app layer are new.
	assert_eq!(all_have(&states), vec![0, base.len() as u64, 0]);
	upload(&store, 2, &second, 8192);
	let mut pinning = store.deals_pinning(&sha256(&base));
	pinning.sort();
	assert_eq!(pinning, vec![1, 2]);

	assert!(store.release(1).unwrap());
	let report = store.collect_garbage().unwrap();
	assert_eq!(report.removed_blobs, 3, "first's manifest, config and app layer");
	assert!(store.blob_path(&sha256(&base)).is_some());
	assert!(store.image_complete(2, &second.manifest_digest));
	assert!(store.blob_path(&first.manifest_digest).is_none());

	assert!(store.release(2).unwrap());
	assert!(!store.release(2).unwrap());
	let report = store.collect_garbage().unwrap();
	assert_eq!(report.removed_blobs, 4);
	assert_eq!(std::fs::read_dir(dir.path().join("blobs/sha256")).unwrap().count(), 0);
	assert_eq!(store.size().unwrap(), 0);
}

#[test]
fn limits_count_promised_bytes_and_refusals_name_them() {
	let dir = tempfile::tempdir().unwrap();
	let image = big_image("app", 50_000);
	let image_size = (image.manifest.len()
		+ image.config.len()
		+ image.layers.iter().map(Vec::len).sum::<usize>()) as u64;
	// Per deal.
	let store = BlobStore::open(
		dir.path().join("a"),
		StoreLimits { per_deal: image_size - 1, total: 1 << 30 },
	)
	.unwrap();
	match store.offer(1, &image.manifest_digest, &image.manifest) {
		Err(StoreError::DealLimit { deal: 1, size, limit }) => {
			assert_eq!(size, image_size);
			assert_eq!(limit, image_size - 1);
		}
		other => panic!("expected DealLimit, got {other:?}"),
	}
	let store =
		BlobStore::open(dir.path().join("b"), StoreLimits { per_deal: image_size, total: 1 << 30 })
			.unwrap();
	store.offer(1, &image.manifest_digest, &image.manifest).unwrap();
	// A second image for the same deal counts with the first (shared blobs once).
	let other = big_image("other", 50_001);
	assert!(matches!(
		store.offer(1, &other.manifest_digest, &other.manifest),
		Err(StoreError::DealLimit { .. })
	));

	// Total: deal 1 offered but uploaded nothing (an abandoned upload still holds its promise).
	let total = image_size + 1000;
	let store =
		BlobStore::open(dir.path().join("c"), StoreLimits { per_deal: 1 << 30, total }).unwrap();
	store.offer(1, &image.manifest_digest, &image.manifest).unwrap();
	let (digest, bytes) = image.blobs()[2].clone();
	store.write(1, &digest, 0, &bytes[..100]).unwrap();
	match store.offer(2, &other.manifest_digest, &other.manifest) {
		Err(StoreError::StoreFull { size, limit }) => {
			assert_eq!(limit, total);
			assert!(size > total);
		}
		other => panic!("expected StoreFull, got {other:?}"),
	}
	// The same image for another deal adds nothing: accepted.
	store.offer(3, &image.manifest_digest, &image.manifest).unwrap();
	// Once deals 1 and 3 release and the partial is collected, deal 2 fits.
	store.release(1).unwrap();
	store.release(3).unwrap();
	let report = store.collect_garbage().unwrap();
	assert_eq!(report.removed_partials, 1);
	store.offer(2, &other.manifest_digest, &other.manifest).unwrap();
	// The limit also holds after a restart (accounting is derived from disk).
	drop(store);
	let store =
		BlobStore::open(dir.path().join("c"), StoreLimits { per_deal: 1 << 30, total }).unwrap();
	assert!(matches!(
		store.offer(1, &image.manifest_digest, &image.manifest),
		Err(StoreError::StoreFull { .. })
	));
}

#[test]
fn open_recovers_torn_blobs_stray_temps_and_orphan_partials() {
	let dir = tempfile::tempdir().unwrap();
	let image = big_image("app", 20_000);
	let (layer_digest, layer_bytes) = image.blobs()[2].clone();
	let (config_digest, _) = image.blobs()[0].clone();
	{
		let store = open(dir.path());
		upload(&store, 1, &image, 4096);
	}
	let root = dir.path();
	// A torn layer (as a power loss after rename could leave it), a stray temp file, a partial
	// no image lists, a partial longer than its blob, and a file with a bogus name.
	let layer_file = root.join("blobs/sha256").join(hex::encode(layer_digest));
	std::fs::write(&layer_file, &layer_bytes[..layer_bytes.len() / 2]).unwrap();
	std::fs::write(root.join("tmp/1.tmp"), b"half a pin file").unwrap();
	std::fs::write(root.join("partial").join(format!("{}-10", hex::encode([9u8; 32]))), b"0123")
		.unwrap();
	std::fs::write(root.join("blobs/sha256/../../partial/not-a-digest"), b"x").unwrap();
	let store = open(root);
	assert!(store.blob_path(&layer_digest).is_none(), "torn blob removed");
	assert!(store.blob_path(&config_digest).is_some(), "intact blob kept");
	assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);
	assert_eq!(std::fs::read_dir(root.join("partial")).unwrap().count(), 0);
	assert!(!store.image_complete(1, &image.manifest_digest));
	// The deal is still pinned; the publisher re-sends what is missing.
	let states = store.offer(1, &image.manifest_digest, &image.manifest).unwrap();
	assert_eq!(states[2].have, 0);
	upload(&store, 1, &image, 4096);
	drop(store);

	// A partial longer than its blob (which no append can produce) is removed.
	let store = open(root);
	store.release(1).unwrap();
	store.collect_garbage().unwrap();
	store.offer(1, &image.manifest_digest, &image.manifest).unwrap();
	drop(store);
	let partial =
		root.join("partial").join(format!("{}-{}", hex::encode(layer_digest), layer_bytes.len()));
	std::fs::write(&partial, vec![0u8; layer_bytes.len() + 1]).unwrap();
	let store = open(root);
	assert!(!partial.exists());
	upload(&store, 1, &image, 4096);
}

/// Invariants that must hold whenever the store is opened: every blob hashes to its name, every
/// partial is listed by a pinned image and no longer than its blob, tmp/ is empty.
fn check_invariants(root: &Path, store: &BlobStore) {
	for entry in std::fs::read_dir(root.join("blobs/sha256")).unwrap() {
		let path = entry.unwrap().path();
		let bytes = std::fs::read(&path).unwrap();
		assert_eq!(hex::encode(sha256(&bytes)), path.file_name().unwrap().to_str().unwrap());
	}
	assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);
	for entry in std::fs::read_dir(root.join("partial")).unwrap() {
		let path = entry.unwrap().path();
		let name = path.file_name().unwrap().to_str().unwrap().to_owned();
		let (hex_digest, size) = name.split_once('-').unwrap();
		let size: u64 = size.parse().unwrap();
		assert!(std::fs::metadata(&path).unwrap().len() <= size);
		let digest: [u8; 32] = hex::decode(hex_digest).unwrap().try_into().unwrap();
		assert!(!store.deals_pinning(&digest).is_empty(), "orphan partial {name}");
	}
}

/// The scenario replayed with a kill before each filesystem step in turn: two deals sharing a
/// layer, uploads, a release and a collection. After each kill the reopened store satisfies the
/// invariants, survives a second kill during its recovery run, and the scenario, run again from
/// the top, finishes with deal 2's image complete and deal 1's released and collected.
#[test]
fn a_kill_at_any_step_leaves_a_consistent_store() {
	let base = layer(&[("bin/tool", &vec![5u8; 30_000])]);
	let first = image("linux", "amd64", vec![base.clone(), layer(&[("app", b"first")])], "first");
	let second =
		image("linux", "amd64", vec![base.clone(), layer(&[("app", b"second")])], "second");
	let scenario = |store: &BlobStore| -> Result<(), StoreError> {
		for (deal, image) in [(1u64, &first), (2, &second)] {
			let states = store.offer(deal, &image.manifest_digest, &image.manifest)?;
			for (state, (digest, bytes)) in states.iter().zip(image.blobs()) {
				let mut at = state.have as usize;
				while at < bytes.len() {
					let end = (at + 7000).min(bytes.len());
					at = store.write(deal, &digest, at as u64, &bytes[at..end])? as usize;
				}
			}
		}
		assert!(store.image_complete(1, &first.manifest_digest));
		assert!(store.image_complete(2, &second.manifest_digest));
		store.release(1)?;
		store.collect_garbage()?;
		Ok(())
	};
	let mut kills = 0;
	for step in 1.. {
		let dir = tempfile::tempdir().unwrap();
		let store = open(dir.path());
		store.inject_fault_after(step);
		match scenario(&store) {
			Ok(()) => break,
			Err(StoreError::InjectedFault(_)) => kills += 1,
			Err(other) => panic!("step {step}: {other}"),
		}
		drop(store);
		// The restarted store is killed again, `step` steps into its recovery run.
		let store = open(dir.path());
		check_invariants(dir.path(), &store);
		store.inject_fault_after(step);
		match scenario(&store) {
			Ok(()) | Err(StoreError::InjectedFault(_)) => {}
			Err(other) => panic!("after a kill at step {step}, then at step {step}: {other}"),
		}
		drop(store);
		let store = open(dir.path());
		check_invariants(dir.path(), &store);
		scenario(&store).unwrap_or_else(|e| panic!("after kills at step {step}: {e}"));
		check_invariants(dir.path(), &store);
		assert!(store.image_complete(2, &second.manifest_digest));
		assert!(store.images(1).is_empty());
		assert!(store.blob_path(&first.manifest_digest).is_none());
		assert!(store.blob_path(&sha256(&base)).is_some());
	}
	assert!(kills > 30, "the scenario has {kills} filesystem steps");
	println!("killed the store before each of {kills} filesystem steps");
}

#[test]
fn two_deals_writing_one_blob_concurrently_agree() {
	let dir = tempfile::tempdir().unwrap();
	let store = std::sync::Arc::new(open(dir.path()));
	let shared = layer(&[("big", &(0..2_000_000u32).map(|i| (i % 253) as u8).collect::<Vec<_>>())]);
	let one = image("linux", "amd64", vec![shared.clone()], "one");
	let two = image("linux", "amd64", vec![shared.clone(), layer(&[("x", b"x")])], "two");
	store.offer(1, &one.manifest_digest, &one.manifest).unwrap();
	store.offer(2, &two.manifest_digest, &two.manifest).unwrap();
	let digest = sha256(&shared);
	let threads: Vec<_> = [1u64, 2]
		.into_iter()
		.map(|deal| {
			let store = store.clone();
			let shared = shared.clone();
			std::thread::spawn(move || {
				let mut at = 0usize;
				let mut resyncs = 0;
				while at < shared.len() {
					let end = (at + 16_384).min(shared.len());
					match store.write(deal, &digest, at as u64, &shared[at..end]) {
						Ok(have) => at = have as usize,
						Err(StoreError::WrongOffset { expected, .. }) => {
							at = expected as usize;
							resyncs += 1;
						}
						Err(e) => panic!("deal {deal}: {e}"),
					}
				}
				resyncs
			})
		})
		.collect();
	for thread in threads {
		thread.join().unwrap();
	}
	assert_eq!(std::fs::read(store.blob_path(&digest).unwrap()).unwrap(), shared);
	upload(&store, 1, &one, 65_536);
	upload(&store, 2, &two, 65_536);
}

#[test]
fn the_oci_archive_round_trips() {
	let dir = tempfile::tempdir().unwrap();
	let store = open(dir.path());
	let image = big_image("app", 30_000);
	store.offer(1, &image.manifest_digest, &image.manifest).unwrap();
	// Incomplete images are refused.
	assert!(matches!(
		store.oci_archive(&image.manifest_digest, "podchain/deal-1:latest", Vec::new()),
		Err(StoreError::ImageIncomplete { .. })
	));
	assert!(matches!(
		store.oci_archive(&[1u8; 32], "x", Vec::new()),
		Err(StoreError::ManifestNotStored(_))
	));
	upload(&store, 1, &image, 10_000);
	let path = dir.path().join("out.tar");
	store
		.oci_archive(
			&image.manifest_digest,
			"podchain/deal-1:latest",
			std::fs::File::create(&path).unwrap(),
		)
		.unwrap();
	let reopened = LocalImage::open(&path).unwrap();
	assert_eq!(reopened.manifest_digest(), image.manifest_digest);
	assert_eq!(reopened.name(), Some("podchain/deal-1"));
}

#[test]
fn podman_loads_the_oci_archive() {
	if !podman_available() {
		return;
	}
	let dir = tempfile::tempdir().unwrap();
	let archive = dir.path().join("busybox.oci.tar");
	let source_tag = "localhost/podchain-image-test-store:latest";
	podman_busybox_archive(source_tag, Some("podchain store test"), &archive);
	let image = LocalImage::open(&archive).unwrap();
	let _ = std::process::Command::new("podman").args(["rmi", "-f", source_tag]).output();

	// Upload it through the store as the agent would, in 64 KiB chunks.
	let store = open(&dir.path().join("store"));
	let states = store.offer(42, &image.manifest_digest(), image.manifest_bytes()).unwrap();
	let mut buf = vec![0u8; 65_536];
	for state in states {
		let mut at = state.have;
		while at < state.size {
			let n = image.read(&state.digest, at, &mut buf).unwrap();
			at = store.write(42, &state.digest, at, &buf[..n]).unwrap();
		}
	}
	assert!(store.image_complete(42, &image.manifest_digest()));

	let loaded_name = "localhost/podchain-deal-42:latest";
	let out = dir.path().join("load.tar");
	store
		.oci_archive(&image.manifest_digest(), loaded_name, std::fs::File::create(&out).unwrap())
		.unwrap();
	let load = run(std::process::Command::new("podman").arg("load").arg("-i").arg(&out));
	println!("podman load: {load}");
	let inspect = run(std::process::Command::new("podman").args(["image", "inspect", loaded_name]));
	let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
	let config_digest = format!("sha256:{}", hex::encode(image.blobs()[0].digest));
	assert_eq!(
		inspect[0]["Digest"].as_str(),
		Some(format!("sha256:{}", hex::encode(image.manifest_digest())).as_str())
	);
	assert_eq!(format!("sha256:{}", inspect[0]["Id"].as_str().unwrap()), config_digest);
	assert_eq!(inspect[0]["Architecture"].as_str(), Some("amd64"));
	// And it runs.
	let output = run(std::process::Command::new("podman").args([
		"run",
		"--rm",
		"--network=none",
		"--ulimit",
		"nofile=1024:1024",
		"--ulimit",
		"nproc=1024:1024",
		loaded_name,
	]));
	assert_eq!(output.trim(), "hello from podchain");
	let _ = std::process::Command::new("podman").args(["rmi", "-f", loaded_name]).output();

	// A second publisher image on the same busybox base: only its config and its own layer are
	// missing; the busybox layer is reported complete and is not sent again.
	let second_archive = dir.path().join("second.oci.tar");
	let second_tag = "localhost/podchain-image-test-store-second:latest";
	podman_busybox_archive(second_tag, Some("a different app"), &second_archive);
	let _ = std::process::Command::new("podman").args(["rmi", "-f", second_tag]).output();
	let second = LocalImage::open(&second_archive).unwrap();
	assert_eq!(second.blobs()[1].digest, image.blobs()[1].digest, "shared busybox layer");
	let states = store.offer(43, &second.manifest_digest(), second.manifest_bytes()).unwrap();
	let missing: u64 = states.iter().map(|s| s.size - s.have).sum();
	assert_eq!(states[1].have, states[1].size);
	assert!(missing < 10_000, "only {missing} bytes left to send of {}", second.total_size());
	println!("second image: {missing} of {} bytes to send", second.total_size());
}

#[test]
fn an_empty_layer_needs_no_upload() {
	let dir = tempfile::tempdir().unwrap();
	let store = open(dir.path());
	let image = image("linux", "amd64", vec![Vec::new(), layer(&[("a", b"a")])], "empty");
	let states = store.offer(1, &image.manifest_digest, &image.manifest).unwrap();
	assert_eq!(states[1].size, 0);
	assert_eq!(states[1].have, 0);
	assert!(store.blob_path(&sha256(b"")).is_some());
	upload(&store, 1, &image, 100);
}

#[test]
fn a_deal_pins_a_bounded_number_of_images() {
	let dir = tempfile::tempdir().unwrap();
	let store = open(dir.path());
	let images: Vec<TestImage> = (0..=podchain_image::store::MAX_IMAGES_PER_DEAL)
		.map(|i| amd64_image("app", format!("app {i}").as_bytes()))
		.collect();
	for image in &images[..podchain_image::store::MAX_IMAGES_PER_DEAL] {
		store.offer(1, &image.manifest_digest, &image.manifest).unwrap();
	}
	let last = images.last().unwrap();
	assert!(matches!(
		store.offer(1, &last.manifest_digest, &last.manifest),
		Err(StoreError::TooManyImages { deal: 1, limit: 64 })
	));
	// Re-offering a pinned image is still fine, and another deal is not affected.
	store.offer(1, &images[0].manifest_digest, &images[0].manifest).unwrap();
	store.offer(2, &last.manifest_digest, &last.manifest).unwrap();
}
