//! Builders of real OCI images for the tests: layer tars, configs, manifests, indexes, written as
//! an OCI archive (tar) or an OCI layout directory.
#![allow(dead_code)]

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::{collections::BTreeMap, path::Path, process::Command};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
	Sha256::digest(bytes).into()
}

pub fn digest_text(bytes: &[u8]) -> String {
	format!("sha256:{}", hex::encode(sha256(bytes)))
}

/// A layer: an uncompressed tar holding the given files.
pub fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
	let mut builder = tar::Builder::new(Vec::new());
	for (path, contents) in files {
		let mut header = tar::Header::new_ustar();
		header.set_size(contents.len() as u64);
		header.set_mode(0o755);
		header.set_mtime(0);
		header.set_entry_type(tar::EntryType::Regular);
		builder.append_data(&mut header, path, *contents).unwrap();
	}
	builder.into_inner().unwrap()
}

/// An image config for `os`/`arch` whose rootfs lists the layers' digests.
pub fn config(os: &str, arch: &str, layers: &[Vec<u8>]) -> Vec<u8> {
	let diff_ids: Vec<String> = layers.iter().map(|l| digest_text(l)).collect();
	serde_json::to_vec(&json!({
		"architecture": arch,
		"os": os,
		"config": { "Cmd": ["/bin/sh"] },
		"rootfs": { "type": "layers", "diff_ids": diff_ids },
	}))
	.unwrap()
}

pub fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
	json!({ "mediaType": media_type, "digest": digest_text(bytes), "size": bytes.len() })
}

pub fn manifest(config: &[u8], layers: &[Vec<u8>]) -> Vec<u8> {
	manifest_with(
		descriptor(OCI_CONFIG, config),
		layers.iter().map(|l| descriptor(OCI_LAYER, l)).collect(),
	)
}

pub fn manifest_with(config: Value, layers: Vec<Value>) -> Vec<u8> {
	serde_json::to_vec(&json!({
		"schemaVersion": 2,
		"mediaType": OCI_MANIFEST,
		"config": config,
		"layers": layers,
	}))
	.unwrap()
}

/// An OCI layout's files by path, written either as an archive or as a directory.
#[derive(Clone, Default)]
pub struct Layout {
	pub files: BTreeMap<String, Vec<u8>>,
}

impl Layout {
	pub fn new() -> Layout {
		let mut layout = Layout::default();
		layout.files.insert("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec());
		layout
	}

	pub fn add_blob(&mut self, bytes: &[u8]) -> [u8; 32] {
		let digest = sha256(bytes);
		self.files.insert(format!("blobs/sha256/{}", hex::encode(digest)), bytes.to_vec());
		digest
	}

	pub fn blob_path(digest: &[u8; 32]) -> String {
		format!("blobs/sha256/{}", hex::encode(digest))
	}

	pub fn set_index(&mut self, manifests: Vec<Value>) {
		let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests });
		self.files.insert("index.json".into(), serde_json::to_vec(&index).unwrap());
	}

	/// Writes the files as a tar archive, in layout order (oci-layout and index.json last, as
	/// podman writes them after the blobs).
	pub fn archive_bytes(&self) -> Vec<u8> {
		let mut builder = tar::Builder::new(Vec::new());
		for (path, contents) in &self.files {
			let mut header = tar::Header::new_ustar();
			header.set_size(contents.len() as u64);
			header.set_mode(0o644);
			header.set_mtime(0);
			header.set_entry_type(tar::EntryType::Regular);
			builder.append_data(&mut header, path, &contents[..]).unwrap();
		}
		builder.into_inner().unwrap()
	}

	pub fn write_archive(&self, path: &Path) {
		std::fs::write(path, self.archive_bytes()).unwrap();
	}

	pub fn write_dir(&self, dir: &Path) {
		for (path, contents) in &self.files {
			let target = dir.join(path);
			std::fs::create_dir_all(target.parent().unwrap()).unwrap();
			std::fs::write(target, contents).unwrap();
		}
	}
}

/// One single-platform image, its parts kept for the assertions.
pub struct TestImage {
	pub layout: Layout,
	pub manifest: Vec<u8>,
	pub manifest_digest: [u8; 32],
	pub config: Vec<u8>,
	pub layers: Vec<Vec<u8>>,
}

impl TestImage {
	/// Config then layers, as (digest, bytes).
	pub fn blobs(&self) -> Vec<([u8; 32], Vec<u8>)> {
		std::iter::once(&self.config)
			.chain(self.layers.iter())
			.map(|b| (sha256(b), b.clone()))
			.collect()
	}
}

/// An image for `os`/`arch` with the given layers, named `ref_name` in index.json (no platform in
/// the index entry, as podman writes it).
pub fn image(os: &str, arch: &str, layers: Vec<Vec<u8>>, ref_name: &str) -> TestImage {
	let config = config(os, arch, &layers);
	let manifest = manifest(&config, &layers);
	let mut layout = Layout::new();
	layout.add_blob(&config);
	for l in &layers {
		layout.add_blob(l);
	}
	let manifest_digest = layout.add_blob(&manifest);
	let mut entry = descriptor(OCI_MANIFEST, &manifest);
	entry["annotations"] = json!({ "org.opencontainers.image.ref.name": ref_name });
	layout.set_index(vec![entry]);
	TestImage { layout, manifest, manifest_digest, config, layers }
}

/// Two layers: one shared-looking base with a file, one app layer.
pub fn amd64_image(ref_name: &str, app: &[u8]) -> TestImage {
	image(
		"linux",
		"amd64",
		vec![layer(&[("etc/base.txt", b"base layer\n")]), layer(&[("app/run", app)])],
		ref_name,
	)
}

/// Whether podman can be used (installed and we are root); prints why not otherwise.
pub fn podman_available() -> bool {
	let root = Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
	let works = Command::new("podman").arg("--version").output().is_ok_and(|o| o.status.success());
	if !works {
		println!("SKIPPED: podman is not installed (scripts/setup.sh installs it)");
	} else if !root {
		println!("SKIPPED: podman tests run as root");
	}
	works && root
}

/// Runs a command and returns its stdout; panics with stderr on failure.
pub fn run(command: &mut Command) -> String {
	let output = command.output().unwrap();
	assert!(
		output.status.success(),
		"{command:?} failed: {}",
		String::from_utf8_lossy(&output.stderr)
	);
	String::from_utf8(output.stdout).unwrap()
}

/// Builds a `FROM scratch` + busybox image with podman and saves it as an OCI archive at `out`.
/// `extra` adds a second layer with that file content (so two images share the busybox layer).
pub fn podman_busybox_archive(tag: &str, extra: Option<&str>, out: &Path) {
	let context = tempfile::tempdir().unwrap();
	std::fs::copy("/bin/busybox", context.path().join("busybox")).unwrap();
	let mut containerfile =
		String::from("FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"echo\", \"hello from podchain\"]\n");
	if let Some(extra) = extra {
		std::fs::write(context.path().join("extra.txt"), extra).unwrap();
		containerfile.push_str("COPY extra.txt /extra.txt\n");
	}
	std::fs::write(context.path().join("Containerfile"), containerfile).unwrap();
	// Files get a fixed time, so two builds share the busybox layer byte for byte.
	run(Command::new("podman")
		.args(["build", "-q", "--timestamp", "0", "-t", tag])
		.arg(context.path()));
	let _ = std::fs::remove_file(out);
	run(Command::new("podman").args(["save", "--format", "oci-archive", "-o"]).arg(out).arg(tag));
}
