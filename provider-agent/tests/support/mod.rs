//! What the image tests share: publisher-built archives and a store they are delivered to.

use podchain_image::{
	local::LocalImage,
	store::{BlobStore, StoreLimits},
};
use std::path::Path;

/// Room for the tests' images.
pub const LIMITS: StoreLimits = StoreLimits { per_deal: 1 << 30, total: 4 << 30 };

/// The busybox web image serving `page`, as the publisher builds it, named `image` in the
/// host's podman store.
pub fn archive(dir: &Path, file: &str, page: &str, image: &str) -> LocalImage {
	let path = dir.join(file);
	podchain_testkit::build_test_archive(&path, page, 0, image);
	LocalImage::open(&path).expect("the archive reads")
}

/// Delivers `image` to `store` for `deal`, as the agent does from a publisher's chunks.
pub fn deliver(store: &BlobStore, deal: u64, image: &LocalImage) {
	store.offer(deal, &image.manifest_digest(), image.manifest_bytes()).expect("offer");
	for blob in image.blobs() {
		let (mut offset, mut buf) = (0, vec![0u8; 1 << 20]);
		while offset < blob.size {
			let n = image.read(&blob.digest, offset, &mut buf).expect("read");
			store.write(deal, &blob.digest, offset, &buf[..n]).expect("write");
			offset += n as u64;
		}
	}
}
