//! The publisher's image: an OCI archive (a tar file, as `podman save --format oci-archive` writes
//! it) or an OCI layout directory (`oci-layout`, `index.json`, `blobs/sha256/<hex>`).
//!
//! [`LocalImage::open`] follows `index.json` (through nested indexes) to the linux/amd64 image
//! manifest, checks media types and the config's platform, and verifies the SHA-256 and size of
//! the manifest, the config and every layer before anything is uploaded. An archive is never
//! extracted: opening records where each entry's data starts in the tar file, and
//! [`LocalImage::read`] reads blob ranges from there.

use crate::{
	config_platform, digest_to_string, is_supported_platform, parse_digest, parse_hex_digest,
	parse_image_manifest, platform_text, BlobDigest, BlobInfo, FormatError, INDEX_MEDIA_TYPES,
	MANIFEST_MEDIA_TYPES, MAX_MANIFEST_BYTES,
};
use oci_spec::image::{Descriptor, ImageIndex};
use sha2::{Digest as _, Sha256};
use std::{
	collections::HashMap,
	fs::File,
	io,
	os::unix::fs::FileExt,
	path::{Path, PathBuf},
};

/// The annotation naming an image inside an OCI layout.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// Most entries an archive may hold before it is refused.
pub const MAX_ARCHIVE_ENTRIES: usize = 10_000;
/// Deepest nesting of indexes followed.
pub const MAX_INDEX_DEPTH: usize = 4;
/// Most manifest descriptors looked at across all indexes.
pub const MAX_INDEX_ENTRIES: usize = 1_024;
/// A tar archive ends with two zero blocks.
const TAR_END_MARKER: u64 = 1024;

/// Why a publisher's image cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
	/// The path is neither a tar archive nor a directory.
	#[error("{path} is not an OCI archive or layout directory: {reason}")]
	NotAnArchive {
		/// The path given.
		path: PathBuf,
		/// Why.
		reason: String,
	},
	/// A tar archive or directory without the OCI layout files.
	#[error("{path} is not an OCI image layout: {reason}")]
	NotAnImageLayout {
		/// The path given.
		path: PathBuf,
		/// Why (which file is missing or wrong).
		reason: String,
	},
	/// The archive ends early.
	#[error("the archive is truncated: {0}")]
	TruncatedArchive(String),
	/// The archive's tar structure is damaged.
	#[error("the archive is corrupt: {0}")]
	CorruptArchive(String),
	/// A blob the image needs is not in the archive or layout.
	#[error("blob {digest} ({what}) is missing from the image")]
	MissingBlob {
		/// The blob's digest.
		digest: String,
		/// What it is: "manifest", "config", "layer", "index".
		what: &'static str,
	},
	/// A blob's bytes do not hash to its digest.
	#[error("blob {digest} ({what}) does not match its digest: its bytes hash to {actual}")]
	DigestMismatch {
		/// The digest the descriptor names.
		digest: String,
		/// What it is.
		what: &'static str,
		/// What its bytes hash to.
		actual: String,
	},
	/// A blob's size differs from its descriptor's.
	#[error("blob {digest} ({what}) is {actual} bytes, its descriptor says {expected}")]
	SizeMismatch {
		/// The blob's digest.
		digest: String,
		/// What it is.
		what: &'static str,
		/// The descriptor's size.
		expected: u64,
		/// The blob's size.
		actual: u64,
	},
	/// No linux/amd64 image in the archive.
	#[error("unsupported platform: podchain runs linux/amd64, the image offers {}", offered.join(", "))]
	UnsupportedPlatform {
		/// The platforms the image offers, as `os/arch[/variant]`.
		offered: Vec<String>,
	},
	/// Too many archive entries or index entries, or nesting too deep.
	#[error("the image exceeds a bound: {0}")]
	TooManyEntries(String),
	/// A media type, digest algorithm, bound or JSON problem in the manifest, index or config.
	#[error(transparent)]
	Format(#[from] FormatError),
	/// Reading the file failed.
	#[error("reading {path}: {source}")]
	Io {
		/// The file.
		path: PathBuf,
		/// The error.
		source: io::Error,
	},
}

/// Where the image's files are.
enum Source {
	/// A tar archive: the open file and, per blob digest, its data offset and size.
	Archive { file: File, blobs: HashMap<BlobDigest, (u64, u64)> },
	/// A layout directory.
	Layout { root: PathBuf },
}

/// A publisher's image, opened and verified.
pub struct LocalImage {
	source: Source,
	path: PathBuf,
	name: Option<String>,
	manifest_digest: BlobDigest,
	manifest_bytes: Vec<u8>,
	manifest: crate::ParsedManifest,
}

impl std::fmt::Debug for LocalImage {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		f.debug_struct("LocalImage")
			.field("path", &self.path)
			.field("name", &self.name)
			.field("manifest_digest", &digest_to_string(&self.manifest_digest))
			.finish()
	}
}

impl LocalImage {
	/// Opens an OCI archive (tar file) or OCI layout directory, selects the linux/amd64 image and
	/// verifies all of its blobs.
	pub fn open(path: impl AsRef<Path>) -> Result<LocalImage, ImageError> {
		let path = path.as_ref().to_path_buf();
		let metadata = std::fs::metadata(&path).map_err(|source| io_error(&path, source))?;
		let source = if metadata.is_dir() {
			if !path.join("oci-layout").is_file() {
				return Err(ImageError::NotAnImageLayout {
					path,
					reason: "no oci-layout file".into(),
				});
			}
			Source::Layout { root: path.clone() }
		} else {
			let file = File::open(&path).map_err(|source| io_error(&path, source))?;
			let (blobs, has_layout) = index_archive(&path, &file, metadata.len())?;
			if !has_layout {
				return Err(ImageError::NotAnImageLayout {
					path,
					reason: "no oci-layout file in the archive".into(),
				});
			}
			Source::Archive { file, blobs }
		};
		let mut image = LocalImage {
			source,
			path,
			name: None,
			manifest_digest: [0; 32],
			manifest_bytes: Vec::new(),
			manifest: crate::ParsedManifest {
				media_type: String::new(),
				config: BlobInfo { digest: [0; 32], size: 0, media_type: String::new() },
				layers: Vec::new(),
			},
		};
		image.select_manifest()?;
		Ok(image)
	}

	/// The repository name from the `org.opencontainers.image.ref.name` annotation, reduced to a
	/// valid repository name (no tag or digest, lowercase, `[a-z0-9]` separated by `.`, `_`, `-`,
	/// path components joined by `/`); `None` when there is no usable annotation.
	pub fn name(&self) -> Option<&str> {
		self.name.as_deref()
	}

	/// The SHA-256 of the linux/amd64 image manifest: what the deal pins.
	pub fn manifest_digest(&self) -> BlobDigest {
		self.manifest_digest
	}

	/// The image manifest's bytes, exactly as they hash to [`Self::manifest_digest`].
	pub fn manifest_bytes(&self) -> &[u8] {
		&self.manifest_bytes
	}

	/// The parsed image manifest.
	pub fn manifest(&self) -> &crate::ParsedManifest {
		&self.manifest
	}

	/// The blobs to upload: config, then layers.
	pub fn blobs(&self) -> Vec<BlobInfo> {
		self.manifest.blobs()
	}

	/// Bytes to upload: the sizes of the config and of each distinct layer (not the manifest,
	/// which travels in the offer).
	pub fn total_size(&self) -> u64 {
		let mut seen = std::collections::HashSet::new();
		self.blobs()
			.iter()
			.filter(|blob| seen.insert(blob.digest))
			.fold(0u64, |total, blob| total.saturating_add(blob.size))
	}

	/// Reads up to `buf.len()` bytes of blob `digest` from `offset`; returns the bytes read (0 at
	/// the end). Only the manifest, the config and the layers of this image can be read.
	pub fn read(&self, digest: &BlobDigest, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
		let size = if *digest == self.manifest_digest {
			self.manifest_bytes.len() as u64
		} else {
			std::iter::once(&self.manifest.config)
				.chain(self.manifest.layers.iter())
				.find(|blob| blob.digest == *digest)
				.map(|blob| blob.size)
				.ok_or_else(|| {
					io::Error::new(
						io::ErrorKind::NotFound,
						format!("{} is not a blob of this image", digest_to_string(digest)),
					)
				})?
		};
		let want = size.saturating_sub(offset).min(buf.len() as u64) as usize;
		if want == 0 {
			return Ok(0);
		}
		match &self.source {
			Source::Archive { file, blobs } => {
				let (start, _) = blobs.get(digest).copied().ok_or_else(|| {
					io::Error::new(io::ErrorKind::NotFound, "blob not in the archive")
				})?;
				file.read_at(&mut buf[..want], start + offset)
			}
			Source::Layout { root } => {
				let file = File::open(layout_blob_path(root, digest))?;
				file.read_at(&mut buf[..want], offset)
			}
		}
	}

	/// Reads a whole small blob (index, manifest, config) after checking its size bound.
	fn read_small(
		&self,
		digest: &BlobDigest,
		size: u64,
		what: &'static str,
	) -> Result<Vec<u8>, ImageError> {
		let limit = if what == "config" { crate::MAX_CONFIG_BYTES } else { MAX_MANIFEST_BYTES };
		if size > limit {
			return Err(FormatError::TooLarge { what, size, limit }.into());
		}
		let mut bytes = vec![0u8; size as usize];
		self.verify_blob(digest, size, what, Some(&mut bytes))?;
		Ok(bytes)
	}

	/// Checks a blob's size and SHA-256; copies its bytes into `keep` when given.
	fn verify_blob(
		&self,
		digest: &BlobDigest,
		size: u64,
		what: &'static str,
		mut keep: Option<&mut Vec<u8>>,
	) -> Result<(), ImageError> {
		let missing = || ImageError::MissingBlob { digest: digest_to_string(digest), what };
		let (file, start, actual_size, file_path) = match &self.source {
			Source::Archive { blobs, .. } => {
				let (start, len) = blobs.get(digest).copied().ok_or_else(missing)?;
				(None, start, len, self.path.clone())
			}
			Source::Layout { root } => {
				let blob_path = layout_blob_path(root, digest);
				let file = match File::open(&blob_path) {
					Ok(file) => file,
					Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing()),
					Err(source) => return Err(io_error(&blob_path, source)),
				};
				let len = file.metadata().map_err(|source| io_error(&blob_path, source))?.len();
				(Some(file), 0, len, blob_path)
			}
		};
		if actual_size != size {
			return Err(ImageError::SizeMismatch {
				digest: digest_to_string(digest),
				what,
				expected: size,
				actual: actual_size,
			});
		}
		let reader: &File = match (&file, &self.source) {
			(Some(file), _) => file,
			(None, Source::Archive { file, .. }) => file,
			(None, Source::Layout { .. }) => return Err(missing()),
		};
		let mut hasher = Sha256::new();
		let mut buf = vec![0u8; 1 << 20];
		let mut done = 0u64;
		while done < size {
			let want = (size - done).min(buf.len() as u64) as usize;
			let read = reader
				.read_at(&mut buf[..want], start + done)
				.map_err(|source| io_error(&file_path, source))?;
			if read == 0 {
				return Err(ImageError::TruncatedArchive(format!(
					"blob {} ends after {done} of {size} bytes",
					digest_to_string(digest)
				)));
			}
			hasher.update(&buf[..read]);
			if let Some(keep) = keep.as_deref_mut() {
				keep[done as usize..done as usize + read].copy_from_slice(&buf[..read]);
			}
			done += read as u64;
		}
		let actual: BlobDigest = hasher.finalize().into();
		if actual != *digest {
			return Err(ImageError::DigestMismatch {
				digest: digest_to_string(digest),
				what,
				actual: digest_to_string(&actual),
			});
		}
		Ok(())
	}

	/// Reads `index.json`, walks it to the linux/amd64 manifest and verifies the image's blobs.
	fn select_manifest(&mut self) -> Result<(), ImageError> {
		let index_bytes = self.read_index_json()?;
		let index: ImageIndex = serde_json::from_slice(&index_bytes)
			.map_err(|e| FormatError::Malformed { what: "index.json", reason: e.to_string() })?;
		let mut walk = IndexWalk::default();
		for descriptor in index.manifests() {
			let name = descriptor
				.annotations()
				.as_ref()
				.and_then(|a| a.get(REF_NAME_ANNOTATION))
				.and_then(|name| repository_name(name));
			if let Some(found) = self.walk_descriptor(descriptor, 0, &mut walk)? {
				self.name = name;
				self.manifest_digest = found.0;
				self.manifest_bytes = found.1;
				self.manifest = found.2;
				return Ok(());
			}
		}
		if walk.offered.is_empty() {
			if let Some(media_type) = walk.unsupported.into_iter().next() {
				return Err(
					FormatError::UnsupportedMediaType { role: "index entry", media_type }.into()
				);
			}
			return Err(ImageError::NotAnImageLayout {
				path: self.path.clone(),
				reason: "index.json lists no image manifest".into(),
			});
		}
		Err(ImageError::UnsupportedPlatform { offered: walk.offered })
	}

	/// Follows one index entry; returns the verified linux/amd64 image it leads to, if any.
	fn walk_descriptor(
		&self,
		descriptor: &Descriptor,
		depth: usize,
		walk: &mut IndexWalk,
	) -> Result<Option<(BlobDigest, Vec<u8>, crate::ParsedManifest)>, ImageError> {
		walk.seen += 1;
		if walk.seen > MAX_INDEX_ENTRIES {
			return Err(ImageError::TooManyEntries(format!(
				"more than {MAX_INDEX_ENTRIES} index entries"
			)));
		}
		let media_type = descriptor.media_type().to_string();
		let digest = parse_digest(descriptor.digest().as_ref())?;
		if INDEX_MEDIA_TYPES.contains(&media_type.as_str()) {
			if depth >= MAX_INDEX_DEPTH {
				return Err(ImageError::TooManyEntries(format!(
					"indexes nested deeper than {MAX_INDEX_DEPTH}"
				)));
			}
			let bytes = self.read_small(&digest, descriptor.size(), "index")?;
			let index: ImageIndex = serde_json::from_slice(&bytes).map_err(|e| {
				FormatError::Malformed { what: "image index", reason: e.to_string() }
			})?;
			for inner in index.manifests() {
				if let Some(found) = self.walk_descriptor(inner, depth + 1, walk)? {
					return Ok(Some(found));
				}
			}
			return Ok(None);
		}
		if !MANIFEST_MEDIA_TYPES.contains(&media_type.as_str()) {
			walk.unsupported.push(media_type);
			return Ok(None);
		}
		if let Some(platform) = descriptor.platform() {
			let offered = platform_text(
				platform.os(),
				platform.architecture(),
				platform.variant().as_deref(),
			);
			if !is_supported_platform(&offered) {
				walk.offered.push(offered);
				return Ok(None);
			}
		}
		// The index may not say the platform (podman's archives do not): the config decides.
		let manifest_bytes = self.read_small(&digest, descriptor.size(), "manifest")?;
		let manifest = parse_image_manifest(&manifest_bytes)?;
		let config = self.read_small(&manifest.config.digest, manifest.config.size, "config")?;
		let platform = config_platform(&config)?;
		if !is_supported_platform(&platform) {
			walk.offered.push(platform);
			return Ok(None);
		}
		let mut verified = std::collections::HashSet::new();
		for layer in &manifest.layers {
			if verified.insert(layer.digest) {
				self.verify_blob(&layer.digest, layer.size, "layer", None)?;
			}
		}
		Ok(Some((digest, manifest_bytes, manifest)))
	}

	/// The bytes of `index.json`, bounded.
	fn read_index_json(&self) -> Result<Vec<u8>, ImageError> {
		let missing = || ImageError::NotAnImageLayout {
			path: self.path.clone(),
			reason: "no index.json".into(),
		};
		let (file, start, len, file_path) = match &self.source {
			Source::Archive { file, blobs: _ } => {
				let (start, len) = archive_index_location(&self.source).ok_or_else(missing)?;
				let file = file.try_clone().map_err(|e| io_error(&self.path, e))?;
				(file, start, len, self.path.clone())
			}
			Source::Layout { root } => {
				let index_path = root.join("index.json");
				let file = File::open(&index_path).map_err(|_| missing())?;
				let len = file.metadata().map_err(|e| io_error(&index_path, e))?.len();
				(file, 0, len, index_path)
			}
		};
		if len > MAX_MANIFEST_BYTES {
			return Err(FormatError::TooLarge {
				what: "index",
				size: len,
				limit: MAX_MANIFEST_BYTES,
			}
			.into());
		}
		let mut bytes = vec![0u8; len as usize];
		file.read_exact_at(&mut bytes, start).map_err(|e| {
			if e.kind() == io::ErrorKind::UnexpectedEof {
				ImageError::TruncatedArchive("index.json ends early".into())
			} else {
				io_error(&file_path, e)
			}
		})?;
		Ok(bytes)
	}
}

/// Which platforms and media types a walk of the index met.
#[derive(Default)]
struct IndexWalk {
	offered: Vec<String>,
	unsupported: Vec<String>,
	seen: usize,
}

/// Key under which an archive's `index.json` location is kept (never a real SHA-256 prefix of
/// interest: the all-ones value).
const INDEX_JSON_KEY: BlobDigest = [0xff; 32];

fn archive_index_location(source: &Source) -> Option<(u64, u64)> {
	match source {
		Source::Archive { blobs, .. } => blobs.get(&INDEX_JSON_KEY).copied(),
		Source::Layout { .. } => None,
	}
}

/// Walks the tar headers once: records each `blobs/sha256/<hex>` entry's data offset and size (and
/// `index.json`'s, under [`INDEX_JSON_KEY`]); reports whether `oci-layout` is present.
fn index_archive(
	path: &Path,
	file: &File,
	file_len: u64,
) -> Result<(HashMap<BlobDigest, (u64, u64)>, bool), ImageError> {
	let mut archive = tar::Archive::new(file);
	let entries = archive.entries_with_seek().map_err(|e| ImageError::NotAnArchive {
		path: path.to_path_buf(),
		reason: e.to_string(),
	})?;
	let mut blobs = HashMap::new();
	let mut has_layout = false;
	let mut end_of_data = 0u64;
	for (count, entry) in entries.enumerate() {
		let entry = entry.map_err(|e| {
			if count == 0 && !has_tar_magic(file) {
				ImageError::NotAnArchive { path: path.to_path_buf(), reason: e.to_string() }
			} else if count == 0 && file_len < 512 {
				ImageError::TruncatedArchive(format!("the file ends inside the first header: {e}"))
			} else if end_of_data.saturating_add(512) > file_len {
				// The next header could not be read whole: the file ends inside it.
				ImageError::TruncatedArchive(format!("the file ends inside a tar header: {e}"))
			} else {
				ImageError::CorruptArchive(e.to_string())
			}
		})?;
		if count >= MAX_ARCHIVE_ENTRIES {
			return Err(ImageError::TooManyEntries(format!(
				"more than {MAX_ARCHIVE_ENTRIES} archive entries"
			)));
		}
		let start = entry.raw_file_position();
		let size = entry.size();
		let padded_end = start.saturating_add(size.div_ceil(512).saturating_mul(512));
		if start.saturating_add(size) > file_len {
			return Err(ImageError::TruncatedArchive(format!(
				"an entry's data runs to byte {} of a {file_len}-byte file",
				start.saturating_add(size)
			)));
		}
		end_of_data = end_of_data.max(padded_end);
		if !entry.header().entry_type().is_file() {
			continue;
		}
		let entry_path = entry.path().map_err(|e| ImageError::CorruptArchive(e.to_string()))?;
		let entry_path = entry_path.to_string_lossy();
		let entry_path = entry_path.trim_start_matches("./");
		if entry_path == "oci-layout" {
			has_layout = true;
		} else if entry_path == "index.json" {
			blobs.insert(INDEX_JSON_KEY, (start, size));
		} else if let Some(hex) = entry_path.strip_prefix("blobs/sha256/") {
			if let Some(digest) = parse_hex_digest(hex) {
				blobs.insert(digest, (start, size));
			}
		}
	}
	if end_of_data == 0 && blobs.is_empty() && !has_layout {
		return Err(ImageError::NotAnArchive {
			path: path.to_path_buf(),
			reason: "no tar entries".into(),
		});
	}
	// A tar stream ends with two zero blocks; a file cut at an entry boundary lacks them.
	let mut marker = [0u8; TAR_END_MARKER as usize];
	match file.read_exact_at(&mut marker, end_of_data) {
		Ok(()) if marker.iter().all(|b| *b == 0) => {}
		Ok(()) => return Err(ImageError::CorruptArchive("data after the last entry".into())),
		Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
			return Err(ImageError::TruncatedArchive(
				"the archive lacks its end-of-archive marker".into(),
			))
		}
		Err(source) => return Err(io_error(path, source)),
	}
	Ok((blobs, has_layout))
}

/// Whether the first block carries the ustar magic (`ustar` at byte 257): a damaged first
/// header of a real archive is corruption, not a foreign file.
fn has_tar_magic(file: &File) -> bool {
	let mut magic = [0u8; 5];
	file.read_exact_at(&mut magic, 257).is_ok() && &magic == b"ustar"
}

fn layout_blob_path(root: &Path, digest: &BlobDigest) -> PathBuf {
	root.join("blobs").join("sha256").join(hex::encode(digest))
}

fn io_error(path: &Path, source: io::Error) -> ImageError {
	ImageError::Io { path: path.to_path_buf(), source }
}

/// Reduces an OCI ref name (`registry:5000/team/app:1.0`, `app@sha256:…`, `latest`) to a valid
/// repository name, or `None` if nothing usable is left. Tags and digests are dropped; each path
/// component is lowercased and stripped to `[a-z0-9]` runs joined by one `.`, `_` or `-`.
pub fn repository_name(reference: &str) -> Option<String> {
	let without_digest = reference.split('@').next().unwrap_or_default();
	let without_tag = match without_digest.rfind(':') {
		Some(colon) if !without_digest[colon..].contains('/') => &without_digest[..colon],
		_ => without_digest,
	};
	let mut components = Vec::new();
	for component in without_tag.split('/') {
		let mut clean = String::new();
		let mut pending_separator: Option<char> = None;
		for c in component.chars().flat_map(char::to_lowercase) {
			if c.is_ascii_lowercase() || c.is_ascii_digit() {
				if let Some(separator) = pending_separator.take() {
					if !clean.is_empty() {
						clean.push(separator);
					}
				}
				clean.push(c);
			} else if matches!(c, '.' | '_' | '-') {
				pending_separator.get_or_insert(c);
			} else {
				pending_separator.get_or_insert('-');
			}
		}
		if !clean.is_empty() {
			components.push(clean);
		}
	}
	let name = components.join("/");
	if name.is_empty() || name.len() > 255 {
		return None;
	}
	Some(name)
}

#[cfg(test)]
mod tests {
	use super::repository_name;

	#[test]
	fn repository_names_are_reduced() {
		assert_eq!(repository_name("localhost/App:1.0").as_deref(), Some("localhost/app"));
		assert_eq!(repository_name("host:5000/team/app").as_deref(), Some("host-5000/team/app"));
		assert_eq!(repository_name("app@sha256:0123").as_deref(), Some("app"),);
		assert_eq!(repository_name("--My__Web  App--").as_deref(), Some("my_web-app"));
		assert_eq!(repository_name(":::"), None);
		assert_eq!(repository_name(""), None);
	}
}
