//! Throughput of the publisher's verification and reads and of the store's verified writes, for
//! a 200 MB image (the target is 50 MB/s end to end over loopback, so each side must be
//! well above it). Ignored by default (it writes 600 MB to disk); run it with
//! `cargo test --release --offline -p podchain-image --test throughput -- --ignored --nocapture`.

mod common;

use common::*;
use podchain_image::{
	local::LocalImage,
	store::{BlobStore, StoreLimits},
};
use std::time::Instant;

#[test]
#[ignore]
fn a_200_mb_image_opens_reads_and_stores_above_50_mb_per_s() {
	let dir = tempfile::tempdir().unwrap();
	// Four 50 MB layers of incompressible-looking bytes.
	let mut state = 0x2545_f491_4f6c_dd1d_u64;
	let layers: Vec<Vec<u8>> = (0..4)
		.map(|i| {
			let contents: Vec<u8> = (0..50_000_000)
				.map(|_| {
					state ^= state << 13;
					state ^= state >> 7;
					state ^= state << 17;
					state as u8
				})
				.collect();
			layer(&[(&format!("data/{i}"), &contents[..])])
		})
		.collect();
	let image = image("linux", "amd64", layers, "big");
	let archive = dir.path().join("big.tar");
	image.layout.write_archive(&archive);
	let total: u64 = image.blobs().iter().map(|(_, b)| b.len() as u64).sum();
	let mb = total as f64 / 1e6;

	let started = Instant::now();
	let local = LocalImage::open(&archive).unwrap();
	let open_rate = mb / started.elapsed().as_secs_f64();

	let store = BlobStore::open(
		dir.path().join("store"),
		StoreLimits { per_deal: 1 << 30, total: 1 << 31 },
	)
	.unwrap();
	let states = store.offer(1, &local.manifest_digest(), local.manifest_bytes()).unwrap();
	let mut buf = vec![0u8; 1 << 20];
	let started = Instant::now();
	for state in &states {
		let mut at = state.have;
		while at < state.size {
			let n = local.read(&state.digest, at, &mut buf).unwrap();
			at = store.write(1, &state.digest, at, &buf[..n]).unwrap();
		}
	}
	let store_rate = mb / started.elapsed().as_secs_f64();
	assert!(store.image_complete(1, &local.manifest_digest()));
	println!(
		"{mb:.0} MB image: LocalImage::open (verify every blob) {open_rate:.0} MB/s; \
		 read + BlobStore::write in 1 MiB chunks (hash, append, fsync, rename) {store_rate:.0} MB/s"
	);
	assert!(open_rate > 50.0 && store_rate > 50.0);
}
