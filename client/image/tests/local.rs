//! The publisher side: opening OCI archives and layout directories, and every refusal.

mod common;

use common::*;
use podchain_image::{
	local::{ImageError, LocalImage},
	FormatError,
};
use serde_json::json;
use std::path::Path;

fn open_bytes(dir: &Path, bytes: &[u8]) -> Result<LocalImage, ImageError> {
	let path = dir.join("image.tar");
	std::fs::write(&path, bytes).unwrap();
	LocalImage::open(&path)
}

fn read_blob(image: &LocalImage, digest: &[u8; 32], size: usize) -> Vec<u8> {
	// Odd buffer size, so reads cross chunk boundaries at uneven offsets.
	let mut out = Vec::new();
	let mut buf = [0u8; 333];
	loop {
		let n = image.read(digest, out.len() as u64, &mut buf).unwrap();
		if n == 0 {
			break;
		}
		out.extend_from_slice(&buf[..n]);
	}
	assert_eq!(out.len(), size);
	out
}

fn check_opened(image: &LocalImage, expected: &TestImage) {
	assert_eq!(image.manifest_digest(), expected.manifest_digest);
	assert_eq!(image.manifest_bytes(), &expected.manifest[..]);
	let blobs = image.blobs();
	assert_eq!(blobs.len(), 1 + expected.layers.len());
	for (info, (digest, bytes)) in blobs.iter().zip(expected.blobs()) {
		assert_eq!(info.digest, digest);
		assert_eq!(info.size, bytes.len() as u64);
		assert_eq!(read_blob(image, &digest, bytes.len()), bytes);
	}
	assert_eq!(blobs[0].media_type, OCI_CONFIG);
	assert_eq!(blobs[1].media_type, OCI_LAYER);
	let total: usize = expected.config.len() + expected.layers.iter().map(Vec::len).sum::<usize>();
	assert_eq!(image.total_size(), total as u64);
	// A digest outside the image is not readable.
	let mut buf = [0u8; 8];
	assert!(image.read(&[7u8; 32], 0, &mut buf).is_err());
}

#[test]
fn opens_an_archive_and_a_layout_directory() {
	let dir = tempfile::tempdir().unwrap();
	let image = amd64_image("localhost/My-App:1.0", b"#!/bin/sh\necho hi\n");
	let opened = open_bytes(dir.path(), &image.layout.archive_bytes()).unwrap();
	check_opened(&opened, &image);
	assert_eq!(opened.name(), Some("localhost/my-app"));

	let layout_dir = dir.path().join("layout");
	image.layout.write_dir(&layout_dir);
	let opened = LocalImage::open(&layout_dir).unwrap();
	check_opened(&opened, &image);
	assert_eq!(opened.name(), Some("localhost/my-app"));
}

#[test]
fn follows_nested_indexes_to_linux_amd64() {
	let dir = tempfile::tempdir().unwrap();
	let amd64 = amd64_image("app", b"amd64 app");
	let arm64 = image("linux", "arm64", vec![layer(&[("app/run", b"arm64 app")])], "app");
	let mut layout = amd64.layout.clone();
	for (path, bytes) in &arm64.layout.files {
		if path.starts_with("blobs/") {
			layout.files.insert(path.clone(), bytes.clone());
		}
	}
	let mut arm_entry = descriptor(OCI_MANIFEST, &arm64.manifest);
	arm_entry["platform"] = json!({ "os": "linux", "architecture": "arm64", "variant": "v8" });
	let mut amd_entry = descriptor(OCI_MANIFEST, &amd64.manifest);
	amd_entry["platform"] = json!({ "os": "linux", "architecture": "amd64" });
	let inner = serde_json::to_vec(&json!({
		"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [arm_entry, amd_entry],
	}))
	.unwrap();
	layout.add_blob(&inner);
	let mut entry = descriptor(OCI_INDEX, &inner);
	entry["annotations"] =
		json!({ "org.opencontainers.image.ref.name": "registry.example:5000/team/app:v2" });
	layout.set_index(vec![entry]);
	let opened = open_bytes(dir.path(), &layout.archive_bytes()).unwrap();
	assert_eq!(opened.manifest_digest(), amd64.manifest_digest);
	assert_eq!(opened.name(), Some("registry.example-5000/team/app"));
}

#[test]
fn an_arm64_only_image_is_refused_naming_its_platforms() {
	let dir = tempfile::tempdir().unwrap();
	// Platform known only from the config (index entry without platform, as podman writes).
	let arm64 = image("linux", "arm64", vec![layer(&[("a", b"a")])], "app");
	match open_bytes(dir.path(), &arm64.layout.archive_bytes()) {
		Err(ImageError::UnsupportedPlatform { offered }) => {
			assert_eq!(offered, vec!["linux/arm64"])
		}
		other => panic!("expected UnsupportedPlatform, got {other:?}"),
	}
	// Platforms from the index entries.
	let mut layout = arm64.layout.clone();
	let mut a = descriptor(OCI_MANIFEST, &arm64.manifest);
	a["platform"] = json!({ "os": "linux", "architecture": "arm64", "variant": "v8" });
	let mut b = descriptor(OCI_MANIFEST, &arm64.manifest);
	b["platform"] = json!({ "os": "windows", "architecture": "amd64" });
	layout.set_index(vec![a, b]);
	let error = open_bytes(dir.path(), &layout.archive_bytes()).unwrap_err();
	assert!(
		matches!(&error, ImageError::UnsupportedPlatform { offered } if offered == &vec!["linux/arm64/v8".to_string(), "windows/amd64".to_string()]),
		"{error:?}"
	);
	assert!(error.to_string().contains("linux/arm64/v8, windows/amd64"), "{error}");
}

#[test]
fn truncated_archives_are_refused_at_every_cut() {
	let dir = tempfile::tempdir().unwrap();
	let image = amd64_image("app", &vec![b'x'; 5000]);
	let bytes = image.layout.archive_bytes();
	let len = bytes.len();
	// Cuts inside the first header, inside headers and data further on, at an entry boundary
	// (end-of-archive marker missing), and one byte short.
	let mut cuts = vec![0, 100, 511, 512, 700, 1024, 1500, 3000, len / 2, len - 1024, len - 1];
	cuts.extend((0..len).step_by(512).skip(1).take(40));
	for cut in cuts {
		let result = open_bytes(dir.path(), &bytes[..cut]);
		match result {
			Err(ImageError::TruncatedArchive(_)) => {}
			Err(ImageError::NotAnArchive { .. }) if cut <= 512 => {}
			other => panic!("cut at {cut} of {len}: expected TruncatedArchive, got {other:?}"),
		}
	}
	// The whole archive opens.
	open_bytes(dir.path(), &bytes).unwrap();
}

/// Offset of a file's data inside an archive built by `Layout::archive_bytes`.
fn data_offset(bytes: &[u8], name: &str) -> usize {
	let mut archive = tar::Archive::new(bytes);
	for entry in archive.entries().unwrap() {
		let entry = entry.unwrap();
		if entry.path().unwrap().to_str() == Some(name) {
			return entry.raw_file_position() as usize;
		}
	}
	panic!("{name} not in the archive");
}

#[test]
fn a_flipped_byte_in_a_layer_is_a_digest_mismatch() {
	let dir = tempfile::tempdir().unwrap();
	let image = amd64_image("app", b"application bytes");
	let mut bytes = image.layout.archive_bytes();
	let layer_path = Layout::blob_path(&sha256(&image.layers[1]));
	let at = data_offset(&bytes, &layer_path) + 600;
	bytes[at] ^= 0x01;
	match open_bytes(dir.path(), &bytes) {
		Err(ImageError::DigestMismatch { what: "layer", digest, .. }) => {
			assert_eq!(digest, digest_text(&image.layers[1]))
		}
		other => panic!("expected DigestMismatch, got {other:?}"),
	}
	// A flipped byte in a tar header is a corrupt archive.
	let mut bytes = image.layout.archive_bytes();
	let header = data_offset(&bytes, &layer_path) - 512;
	bytes[header + 10] ^= 0x01;
	let result = open_bytes(dir.path(), &bytes);
	assert!(
		matches!(result, Err(ImageError::CorruptArchive(_))),
		"flipped header byte: {result:?}"
	);
	// The same in the first header: still an archive (ustar magic), so corrupt, not foreign.
	let mut bytes = image.layout.archive_bytes();
	bytes[10] ^= 0x01;
	let result = open_bytes(dir.path(), &bytes);
	assert!(matches!(result, Err(ImageError::CorruptArchive(_))), "first header: {result:?}");
}

#[test]
fn a_wrong_size_and_a_missing_blob_are_named() {
	let dir = tempfile::tempdir().unwrap();
	let image = amd64_image("app", b"app");
	// The manifest declares layer 1 one byte longer than it is.
	let mut layer_descriptor = descriptor(OCI_LAYER, &image.layers[1]);
	layer_descriptor["size"] = json!(image.layers[1].len() + 1);
	let manifest = manifest_with(
		descriptor(OCI_CONFIG, &image.config),
		vec![descriptor(OCI_LAYER, &image.layers[0]), layer_descriptor],
	);
	let mut layout = image.layout.clone();
	layout.add_blob(&manifest);
	layout.set_index(vec![descriptor(OCI_MANIFEST, &manifest)]);
	match open_bytes(dir.path(), &layout.archive_bytes()) {
		Err(ImageError::SizeMismatch { expected, actual, what: "layer", .. }) => {
			assert_eq!(expected, image.layers[1].len() as u64 + 1);
			assert_eq!(actual, image.layers[1].len() as u64);
		}
		other => panic!("expected SizeMismatch, got {other:?}"),
	}

	// A layout directory missing a layer.
	let layout_dir = dir.path().join("layout");
	image.layout.write_dir(&layout_dir);
	std::fs::remove_file(layout_dir.join(Layout::blob_path(&sha256(&image.layers[0])))).unwrap();
	assert!(matches!(
		LocalImage::open(&layout_dir),
		Err(ImageError::MissingBlob { what: "layer", .. })
	));
	// An archive missing the manifest.
	let mut layout = image.layout.clone();
	layout.files.remove(&Layout::blob_path(&image.manifest_digest));
	assert!(matches!(
		open_bytes(dir.path(), &layout.archive_bytes()),
		Err(ImageError::MissingBlob { what: "manifest", .. })
	));
}

#[test]
fn unsupported_media_types_and_digest_algorithms_are_named() {
	let dir = tempfile::tempdir().unwrap();
	let image = amd64_image("app", b"app");
	let with_manifest = |manifest: Vec<u8>| {
		let mut layout = image.layout.clone();
		layout.add_blob(&manifest);
		layout.set_index(vec![descriptor(OCI_MANIFEST, &manifest)]);
		layout.archive_bytes()
	};
	// A non-distributable (foreign) layer.
	let foreign = manifest_with(
		descriptor(OCI_CONFIG, &image.config),
		vec![descriptor(
			"application/vnd.oci.image.layer.nondistributable.v1.tar",
			&image.layers[0],
		)],
	);
	match open_bytes(dir.path(), &with_manifest(foreign)) {
		Err(ImageError::Format(FormatError::UnsupportedMediaType {
			role: "layer",
			media_type,
		})) => assert_eq!(media_type, "application/vnd.oci.image.layer.nondistributable.v1.tar"),
		other => panic!("expected UnsupportedMediaType, got {other:?}"),
	}
	// An artifact: its config is not an image config.
	let artifact = manifest_with(
		descriptor("application/vnd.example.sbom.v1+json", &image.config),
		vec![descriptor(OCI_LAYER, &image.layers[0])],
	);
	assert!(matches!(
		open_bytes(dir.path(), &with_manifest(artifact)),
		Err(ImageError::Format(FormatError::UnsupportedMediaType { role: "config", .. }))
	));
	// An artifact manifest listed in the index.
	let mut layout = image.layout.clone();
	layout.set_index(vec![descriptor(
		"application/vnd.oci.artifact.manifest.v1+json",
		&image.manifest,
	)]);
	assert!(matches!(
		open_bytes(dir.path(), &layout.archive_bytes()),
		Err(ImageError::Format(FormatError::UnsupportedMediaType { role: "index entry", .. }))
	));
	// A sha512 layer digest.
	let mut sha512 = descriptor(OCI_LAYER, &image.layers[0]);
	sha512["digest"] = json!(format!("sha512:{}", "ab".repeat(64)));
	let manifest = manifest_with(descriptor(OCI_CONFIG, &image.config), vec![sha512]);
	assert!(matches!(
		open_bytes(dir.path(), &with_manifest(manifest)),
		Err(ImageError::Format(FormatError::UnsupportedDigestAlgorithm(_)))
	));
}

#[test]
fn bounds_refuse_too_many_layers_and_huge_manifests() {
	let dir = tempfile::tempdir().unwrap();
	let image = amd64_image("app", b"app");
	let layers: Vec<_> = (0..257).map(|_| descriptor(OCI_LAYER, &image.layers[0])).collect();
	let manifest = manifest_with(descriptor(OCI_CONFIG, &image.config), layers);
	let mut layout = image.layout.clone();
	layout.add_blob(&manifest);
	layout.set_index(vec![descriptor(OCI_MANIFEST, &manifest)]);
	assert!(matches!(
		open_bytes(dir.path(), &layout.archive_bytes()),
		Err(ImageError::Format(FormatError::TooManyBlobs { count: 257, limit: 256 }))
	));
	// An index entry claiming a 5 MiB manifest is refused before anything is read.
	let mut entry = descriptor(OCI_MANIFEST, &image.manifest);
	entry["size"] = json!(5 * 1024 * 1024);
	let mut layout = image.layout.clone();
	layout.set_index(vec![entry]);
	assert!(matches!(
		open_bytes(dir.path(), &layout.archive_bytes()),
		Err(ImageError::Format(FormatError::TooLarge { what: "manifest", .. }))
	));
}

#[test]
fn things_that_are_not_oci_images_are_named() {
	let dir = tempfile::tempdir().unwrap();
	assert!(matches!(
		open_bytes(dir.path(), &vec![0x5a; 4096]),
		Err(ImageError::NotAnArchive { .. })
	));
	// A tar without oci-layout (a plain layer).
	assert!(matches!(
		open_bytes(dir.path(), &layer(&[("hello", b"world")])),
		Err(ImageError::NotAnImageLayout { .. })
	));
	// A directory without oci-layout.
	let empty = dir.path().join("empty");
	std::fs::create_dir(&empty).unwrap();
	assert!(matches!(LocalImage::open(&empty), Err(ImageError::NotAnImageLayout { .. })));
	// An archive without index.json.
	let mut layout = amd64_image("app", b"app").layout;
	layout.files.remove("index.json");
	assert!(matches!(
		open_bytes(dir.path(), &layout.archive_bytes()),
		Err(ImageError::NotAnImageLayout { .. })
	));
	// A path that does not exist.
	assert!(matches!(LocalImage::open(dir.path().join("nope")), Err(ImageError::Io { .. })));
}

#[test]
fn opens_a_podman_built_busybox_archive() {
	if !podman_available() {
		return;
	}
	let dir = tempfile::tempdir().unwrap();
	let archive = dir.path().join("busybox.oci.tar");
	podman_busybox_archive("localhost/podchain-image-test-local:latest", None, &archive);
	let image = LocalImage::open(&archive).unwrap();
	assert_eq!(image.name(), Some("localhost/podchain-image-test-local"));
	let blobs = image.blobs();
	assert_eq!(blobs.len(), 2, "config and the busybox layer");
	// The layer is at least busybox's size (it may be compressed: then smaller than the file but
	// still hundreds of KiB); reading it back whole hashes to its digest.
	let layer = &blobs[1];
	assert!(layer.size > 300_000, "busybox layer is {} bytes", layer.size);
	let bytes = read_blob(&image, &layer.digest, layer.size as usize);
	assert_eq!(sha256(&bytes), layer.digest);
	assert_eq!(sha256(image.manifest_bytes()), image.manifest_digest());
	let _ = std::process::Command::new("podman")
		.args(["rmi", "-f", "localhost/podchain-image-test-local:latest"])
		.output();
}

#[test]
fn docker_media_types_are_accepted() {
	let dir = tempfile::tempdir().unwrap();
	let base = amd64_image("app", b"app");
	let manifest = serde_json::to_vec(&json!({
		"schemaVersion": 2,
		"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
		"config": descriptor("application/vnd.docker.container.image.v1+json", &base.config),
		"layers": base.layers.iter()
			.map(|l| descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", l))
			.collect::<Vec<_>>(),
	}))
	.unwrap();
	let mut layout = base.layout.clone();
	layout.add_blob(&manifest);
	layout.set_index(vec![descriptor(
		"application/vnd.docker.distribution.manifest.v2+json",
		&manifest,
	)]);
	let opened = open_bytes(dir.path(), &layout.archive_bytes()).unwrap();
	assert_eq!(opened.manifest_digest(), sha256(&manifest));
	assert_eq!(
		opened.manifest().media_type,
		"application/vnd.docker.distribution.manifest.v2+json"
	);
	assert_eq!(opened.name(), None, "no ref name annotation");
}
