//! podchain's container images, from the publisher's disk to the provider's container store.
//!
//! - [`local`]: the publisher side. Opens an OCI archive (`podman save --format oci-archive`) or an
//!   OCI layout directory, picks the linux/amd64 image manifest, verifies every blob and serves
//!   byte ranges of them for upload without extracting anything.
//! - [`store`]: the provider side. A content-addressed, crash-safe blob store that accepts an image
//!   only for a deal that pins its manifest digest, verifies every byte against that manifest,
//!   enforces per-deal and total size limits and writes the OCI archive podman loads.
//!
//! Chain of trust: the deal's on-chain manifest hash covers the image manifest digest; the manifest
//! bytes hash to that digest; the manifest lists config and layers by digest and size; every blob's
//! bytes hash to its digest. Digests are SHA-256 only and are handled as `[u8; 32]` everywhere, so a
//! digest never reaches a file path as attacker-chosen text.

#![warn(missing_docs)]

pub mod local;
pub mod store;

use oci_spec::image::{Arch, Descriptor, ImageConfiguration, ImageManifest, Os};
use sha2::{Digest as _, Sha256};

/// A SHA-256 digest of a blob (manifest, config or layer).
pub type BlobDigest = [u8; 32];

/// Largest image manifest (and index) accepted, in bytes. Real manifests are a few KiB.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Largest image config accepted, in bytes. Real configs are a few KiB.
pub const MAX_CONFIG_BYTES: u64 = 8 * 1024 * 1024;
/// Most layers an image manifest may list.
pub const MAX_LAYERS: usize = 256;

/// Media types of an image manifest podchain accepts.
pub const MANIFEST_MEDIA_TYPES: &[&str] = &[
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
];
/// Media types of an image index (publisher side only, to choose the platform).
pub const INDEX_MEDIA_TYPES: &[&str] = &[
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
];
/// Media types of an image config podchain accepts.
pub const CONFIG_MEDIA_TYPES: &[&str] =
	&["application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"];
/// Media types of a layer podchain accepts (no foreign or non-distributable layers).
pub const LAYER_MEDIA_TYPES: &[&str] = &[
	"application/vnd.oci.image.layer.v1.tar",
	"application/vnd.oci.image.layer.v1.tar+gzip",
	"application/vnd.oci.image.layer.v1.tar+zstd",
	"application/vnd.docker.image.rootfs.diff.tar.gzip",
];

/// The one platform podchain runs.
pub const SUPPORTED_PLATFORM: &str = "linux/amd64";

/// Why an image manifest, config or digest is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
	/// The digest uses an algorithm other than SHA-256.
	#[error("unsupported digest algorithm in {0:?}: only sha256 is accepted")]
	UnsupportedDigestAlgorithm(String),
	/// The digest is not `sha256:` followed by 64 lowercase hex digits.
	#[error("malformed digest {0:?}")]
	MalformedDigest(String),
	/// A manifest, config or layer has a media type podchain does not accept.
	#[error("unsupported media type {media_type:?} for the {role}")]
	UnsupportedMediaType {
		/// What the media type was for: "manifest", "config", "layer" or "index entry".
		role: &'static str,
		/// The refused media type.
		media_type: String,
	},
	/// The manifest (or index) is larger than [`MAX_MANIFEST_BYTES`].
	#[error("the {what} is {size} bytes, over the bound of {limit} bytes")]
	TooLarge {
		/// What is too large: "manifest", "index" or "config".
		what: &'static str,
		/// Its size.
		size: u64,
		/// The bound.
		limit: u64,
	},
	/// The manifest lists more than [`MAX_LAYERS`] layers.
	#[error("the image lists {count} layers, over the bound of {limit}")]
	TooManyBlobs {
		/// Layers listed.
		count: usize,
		/// The bound.
		limit: usize,
	},
	/// The JSON does not parse as the OCI type it should be.
	#[error("malformed {what}: {reason}")]
	Malformed {
		/// What failed to parse.
		what: &'static str,
		/// The parser's reason.
		reason: String,
	},
	/// One image lists the same blob digest with two different sizes.
	#[error("the image lists blob {digest} with two sizes, {first} and {second}")]
	ConflictingSizes {
		/// The blob.
		digest: String,
		/// One size.
		first: u64,
		/// The other size.
		second: u64,
	},
}

/// The SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> BlobDigest {
	Sha256::digest(bytes).into()
}

/// Text form of a digest: `sha256:<64 lowercase hex>`.
pub fn digest_to_string(digest: &BlobDigest) -> String {
	format!("sha256:{}", hex::encode(digest))
}

/// Parses `sha256:<64 lowercase hex>`; other algorithms are a named error.
pub fn parse_digest(text: &str) -> Result<BlobDigest, FormatError> {
	let Some((algorithm, encoded)) = text.split_once(':') else {
		return Err(FormatError::MalformedDigest(text.to_owned()));
	};
	if algorithm != "sha256" {
		return Err(FormatError::UnsupportedDigestAlgorithm(text.to_owned()));
	}
	parse_hex_digest(encoded).ok_or_else(|| FormatError::MalformedDigest(text.to_owned()))
}

/// Parses 64 lowercase hex digits (a blob file's name).
pub(crate) fn parse_hex_digest(encoded: &str) -> Option<BlobDigest> {
	if encoded.len() != 64 || !encoded.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
		return None;
	}
	let mut digest = [0u8; 32];
	hex::decode_to_slice(encoded, &mut digest).ok()?;
	Some(digest)
}

/// One blob an image manifest lists: its config or a layer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobInfo {
	/// SHA-256 of the blob's bytes.
	pub digest: BlobDigest,
	/// The blob's size in bytes.
	pub size: u64,
	/// The descriptor's media type.
	pub media_type: String,
}

/// An image manifest checked against podchain's rules: its media type, config and layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedManifest {
	/// The manifest's own media type (the OCI one when the manifest does not say).
	pub media_type: String,
	/// The config blob.
	pub config: BlobInfo,
	/// The layers, in order (bottom first).
	pub layers: Vec<BlobInfo>,
}

impl ParsedManifest {
	/// Config then layers, as the store and the uploader walk them.
	pub fn blobs(&self) -> Vec<BlobInfo> {
		let mut blobs = Vec::with_capacity(self.layers.len() + 1);
		blobs.push(self.config.clone());
		blobs.extend(self.layers.iter().cloned());
		blobs
	}
}

/// Converts a descriptor to a [`BlobInfo`], refusing non-SHA-256 digests.
pub(crate) fn descriptor_blob(descriptor: &Descriptor) -> Result<BlobInfo, FormatError> {
	Ok(BlobInfo {
		digest: parse_digest(descriptor.digest().as_ref())?,
		size: descriptor.size(),
		media_type: descriptor.media_type().to_string(),
	})
}

/// Parses and checks image manifest bytes: bound, media types, SHA-256 digests, layer count, sizes.
pub fn parse_image_manifest(bytes: &[u8]) -> Result<ParsedManifest, FormatError> {
	let size = bytes.len() as u64;
	if size > MAX_MANIFEST_BYTES {
		return Err(FormatError::TooLarge { what: "manifest", size, limit: MAX_MANIFEST_BYTES });
	}
	// The media type is checked before the full parse, so an artifact or index is named as such
	// rather than reported as a malformed image manifest.
	#[derive(serde::Deserialize)]
	struct Probe {
		#[serde(rename = "mediaType")]
		media_type: Option<String>,
	}
	let probe: Probe = serde_json::from_slice(bytes)
		.map_err(|e| FormatError::Malformed { what: "image manifest", reason: e.to_string() })?;
	let media_type = probe.media_type.unwrap_or_else(|| MANIFEST_MEDIA_TYPES[0].to_owned());
	if !MANIFEST_MEDIA_TYPES.contains(&media_type.as_str()) {
		return Err(FormatError::UnsupportedMediaType { role: "manifest", media_type });
	}
	let manifest: ImageManifest = serde_json::from_slice(bytes)
		.map_err(|e| FormatError::Malformed { what: "image manifest", reason: e.to_string() })?;
	if let Some(artifact) = manifest.artifact_type() {
		return Err(FormatError::UnsupportedMediaType {
			role: "manifest",
			media_type: artifact.to_string(),
		});
	}
	if manifest.layers().len() > MAX_LAYERS {
		return Err(FormatError::TooManyBlobs {
			count: manifest.layers().len(),
			limit: MAX_LAYERS,
		});
	}
	let config = descriptor_blob(manifest.config())?;
	if !CONFIG_MEDIA_TYPES.contains(&config.media_type.as_str()) {
		return Err(FormatError::UnsupportedMediaType {
			role: "config",
			media_type: config.media_type,
		});
	}
	if config.size > MAX_CONFIG_BYTES {
		return Err(FormatError::TooLarge {
			what: "config",
			size: config.size,
			limit: MAX_CONFIG_BYTES,
		});
	}
	let mut layers = Vec::with_capacity(manifest.layers().len());
	for descriptor in manifest.layers() {
		let layer = descriptor_blob(descriptor)?;
		if !LAYER_MEDIA_TYPES.contains(&layer.media_type.as_str()) {
			return Err(FormatError::UnsupportedMediaType {
				role: "layer",
				media_type: layer.media_type,
			});
		}
		layers.push(layer);
	}
	let parsed = ParsedManifest { media_type, config, layers };
	let blobs = parsed.blobs();
	for (i, a) in blobs.iter().enumerate() {
		if let Some(b) = blobs[..i].iter().find(|b| b.digest == a.digest && b.size != a.size) {
			return Err(FormatError::ConflictingSizes {
				digest: digest_to_string(&a.digest),
				first: b.size,
				second: a.size,
			});
		}
	}
	Ok(parsed)
}

/// The `os/arch[/variant]` an image config declares.
pub fn config_platform(config_bytes: &[u8]) -> Result<String, FormatError> {
	let config: ImageConfiguration = serde_json::from_slice(config_bytes)
		.map_err(|e| FormatError::Malformed { what: "image config", reason: e.to_string() })?;
	Ok(platform_text(config.os(), config.architecture(), config.variant().as_deref()))
}

/// `os/arch[/variant]`.
pub(crate) fn platform_text(os: &Os, arch: &Arch, variant: Option<&str>) -> String {
	match variant {
		Some(variant) if !variant.is_empty() => format!("{os}/{arch}/{variant}"),
		_ => format!("{os}/{arch}"),
	}
}

/// Whether `platform` (as [`platform_text`] writes it) is the one podchain runs. A variant on
/// amd64 (`v2`, `v3`: micro-architecture levels) is refused too: the provider's CPU may lack it.
pub(crate) fn is_supported_platform(platform: &str) -> bool {
	platform == SUPPORTED_PLATFORM
}
