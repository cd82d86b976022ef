//! The provider's content-addressed image blob store.
//!
//! # Layout (under the agent's data dir)
//! - `blobs/sha256/<hex>`: complete blobs (image manifests, configs, layers). A file appears here
//!   only by `rename` after its bytes were hashed to `<hex>`, checked against the declared size and
//!   fsynced, so it is immutable and verified.
//! - `partial/<hex>-<size>`: a blob being uploaded, the prefix received so far. Keyed by the size
//!   too, so a deal declaring a wrong size for someone else's layer gets its own partial and cannot
//!   disturb theirs (only the true size can ever hash to the digest).
//! - `deals/<deal_id>`: the image manifest digests the deal pins, one `sha256:<hex>` a line,
//!   replaced atomically (write to `tmp/`, fsync, rename, fsync the directory).
//! - `tmp/`: files being written before their rename; anything here after a restart is garbage.
//!
//! # Crash safety
//! Every state change is one rename or one unlink, after the data it exposes is durable:
//! - a kill while storing a manifest or a pin file leaves a temp file (removed by [`BlobStore::open`])
//!   or the complete new file, never a torn one;
//! - a kill while appending leaves a partial that is a prefix of what was sent (or longer than the
//!   store acknowledged): on the first write after a restart the store hashes the prefix again and
//!   resumes at its length, which [`BlobStore::offer`] reports; a prefix that is not the blob's
//!   fails the final SHA-256 check and is deleted, so garbage never enters `blobs/`;
//! - `open` hashes every file in `blobs/` and removes one whose bytes do not match its name (a torn
//!   write after a power loss), removes partials no pinned image lists, partials longer than their
//!   blob, and partials whose blob is already complete.
//!
//! Reference counts are never stored: a blob is in use while some `deals/<id>` file names a
//! manifest that lists it, and [`BlobStore::collect_garbage`] derives that from the pin files.
//!
//! # Limits
//! The store accounts for every blob a pinned image lists at its declared size, whether it is
//! stored yet or not, plus any unreferenced file still on disk. An offer is refused when the
//! deal's images would exceed `per_deal` or the store's accounted size would exceed `total`, so
//! partial uploads, abandoned or not, can never fill the disk past the limit.

use crate::{
	config_platform, digest_to_string, is_supported_platform, local::REF_NAME_ANNOTATION,
	parse_digest, parse_hex_digest, parse_image_manifest, sha256, BlobDigest, FormatError,
	ParsedManifest,
};
use oci_spec::image::{DescriptorBuilder, ImageIndexBuilder, MediaType};
use sha2::{Digest as _, Sha256};
use std::{
	collections::{BTreeMap, BTreeSet, HashMap, HashSet},
	fs::{self, File, OpenOptions},
	io::{self, Read, Seek, Write},
	path::{Path, PathBuf},
	str::FromStr,
	sync::{
		atomic::{AtomicU64, Ordering},
		Arc, Mutex, MutexGuard,
	},
};

/// A deal's on-chain id.
pub type DealId = u64;

/// Most images one deal may pin (a deal's manifest names a few containers; the bound keeps pin
/// files and the per-offer accounting small whatever a publisher sends).
pub const MAX_IMAGES_PER_DEAL: usize = 64;

/// Size limits of the store, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
	/// Most bytes the distinct blobs (manifests, configs, layers) of one deal's images may take.
	pub per_deal: u64,
	/// Most bytes the whole store may hold or have promised to hold.
	pub total: u64,
}

/// How much of one blob the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobState {
	/// The blob's SHA-256.
	pub digest: BlobDigest,
	/// Its size, from the manifest.
	pub size: u64,
	/// Bytes held: `size` when complete (skip it), otherwise the offset to resume at.
	pub have: u64,
}

/// What [`BlobStore::collect_garbage`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
	/// Complete blobs removed.
	pub removed_blobs: usize,
	/// Partial uploads removed.
	pub removed_partials: usize,
	/// Bytes freed on disk.
	pub freed_bytes: u64,
}

/// Why the store refused a request.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
	/// Bytes do not hash to the digest they were sent for.
	#[error("the bytes of {digest} hash to {actual}")]
	DigestMismatch {
		/// The digest claimed.
		digest: String,
		/// What the bytes hash to.
		actual: String,
	},
	/// The manifest or config breaks podchain's rules (media type, digest algorithm, bounds, JSON).
	#[error(transparent)]
	Format(#[from] FormatError),
	/// The deal's images would exceed the per-deal limit.
	#[error(
		"deal {deal}'s images would take {size} bytes, over the per-deal limit of {limit} bytes"
	)]
	DealLimit {
		/// The deal.
		deal: DealId,
		/// Bytes its images would take.
		size: u64,
		/// The per-deal limit.
		limit: u64,
	},
	/// The store would exceed its total limit.
	#[error("the image store would hold {size} bytes, over its limit of {limit} bytes")]
	StoreFull {
		/// Bytes the store would hold or have promised.
		size: u64,
		/// The total limit.
		limit: u64,
	},
	/// The blob is not listed by any image the deal pins.
	#[error("blob {digest} is not listed by any image deal {deal} pins")]
	NotPinned {
		/// The deal.
		deal: DealId,
		/// The blob.
		digest: String,
	},
	/// The deal already pins [`MAX_IMAGES_PER_DEAL`] images.
	#[error("deal {deal} already pins {limit} images, the most a deal may pin")]
	TooManyImages {
		/// The deal.
		deal: DealId,
		/// The bound.
		limit: usize,
	},
	/// The deal does not pin this image manifest.
	#[error("deal {deal} does not pin image {manifest}")]
	ImageNotPinned {
		/// The deal.
		deal: DealId,
		/// The image manifest digest.
		manifest: String,
	},
	/// A chunk does not start where the partial blob ends.
	#[error("a chunk of {digest} starts at {offset}, the store expects offset {expected}")]
	WrongOffset {
		/// The blob.
		digest: String,
		/// Where the chunk starts.
		offset: u64,
		/// Where the next chunk must start (resume here).
		expected: u64,
	},
	/// A chunk runs past the blob's declared size.
	#[error("a chunk of {digest} ends at {end}, past the blob's size of {size}")]
	PastEnd {
		/// The blob.
		digest: String,
		/// Where the chunk ends.
		end: u64,
		/// The declared size.
		size: u64,
	},
	/// A blob already stored (verified) has a size other than the manifest declares.
	#[error(
		"the manifest declares blob {digest} as {declared} bytes, the verified blob is {actual}"
	)]
	SizeMismatch {
		/// The blob.
		digest: String,
		/// The size the manifest declares.
		declared: u64,
		/// The stored blob's size.
		actual: u64,
	},
	/// The image's config is not linux/amd64.
	#[error("unsupported platform {platform}: podchain runs linux/amd64")]
	UnsupportedPlatform {
		/// The config's `os/arch[/variant]`.
		platform: String,
	},
	/// The image manifest is not in the store.
	#[error("image manifest {0} is not in the store")]
	ManifestNotStored(String),
	/// Some of the image's blobs are not complete yet.
	#[error("image {manifest} is incomplete: blob {missing} is not stored")]
	ImageIncomplete {
		/// The image manifest digest.
		manifest: String,
		/// The first blob missing.
		missing: String,
	},
	/// A pin file cannot be read (it is only ever replaced atomically, so this is not a crash).
	#[error("pin file {path} is unreadable: {reason}")]
	CorruptPinFile {
		/// The file.
		path: PathBuf,
		/// Why.
		reason: String,
	},
	/// A filesystem operation failed.
	#[error("{op} {path}: {source}")]
	Io {
		/// What was being done.
		op: &'static str,
		/// The file.
		path: PathBuf,
		/// The error.
		source: io::Error,
	},
	/// A test stopped the store before a filesystem step, as a kill would.
	#[doc(hidden)]
	#[error("injected fault before: {0}")]
	InjectedFault(&'static str),
}

/// One upload in progress: the open partial file and the SHA-256 of its bytes so far.
struct Partial {
	file: File,
	have: u64,
	hasher: Sha256,
}

/// In-memory state, guarded by one mutex held per request (one chunk), never across a blob.
struct State {
	/// Mirror of the pin files (written through: file first, then memory).
	pins: BTreeMap<DealId, BTreeSet<BlobDigest>>,
	/// Parsed stored manifests (immutable content).
	manifests: HashMap<BlobDigest, Arc<ParsedManifest>>,
	/// Uploads in progress, by (digest, declared size).
	partials: HashMap<(BlobDigest, u64), Partial>,
}

/// The provider's image blob store. See the module documentation for its layout and guarantees.
pub struct BlobStore {
	root: PathBuf,
	limits: StoreLimits,
	state: Mutex<State>,
	/// Countdown of filesystem steps before an injected fault (0: never).
	fault_after: AtomicU64,
}

impl std::fmt::Debug for BlobStore {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		f.debug_struct("BlobStore").field("root", &self.root).field("limits", &self.limits).finish()
	}
}

impl BlobStore {
	/// Opens (creating if needed) the store under `root` and recovers from any earlier kill: temp
	/// files removed, blobs whose bytes do not match their name removed, partials kept only when a
	/// pinned image lists them and they are no longer than the blob.
	pub fn open(root: impl AsRef<Path>, limits: StoreLimits) -> Result<BlobStore, StoreError> {
		let root = root.as_ref().to_path_buf();
		for dir in [blobs_dir(&root), root.join("partial"), root.join("deals"), root.join("tmp")] {
			fs::create_dir_all(&dir).map_err(|e| io_err("creating", &dir, e))?;
		}
		for path in list_dir(&root.join("tmp"))? {
			remove_file(&path)?;
		}
		let mut pins = BTreeMap::new();
		for path in list_dir(&root.join("deals"))? {
			let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
			match name.parse::<DealId>() {
				Ok(deal) => {
					pins.insert(deal, read_pin_file(&path)?);
				}
				// Only pin files are ever written here; anything else is not ours to keep.
				Err(_) => remove_file(&path)?,
			}
		}
		for path in list_dir(&blobs_dir(&root))? {
			let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
			let intact = match parse_hex_digest(name) {
				Some(digest) => hash_file(&path)?.0 == digest,
				None => false,
			};
			if !intact {
				remove_file(&path)?;
			}
		}
		let store = BlobStore {
			root,
			limits,
			state: Mutex::new(State { pins, manifests: HashMap::new(), partials: HashMap::new() }),
			fault_after: AtomicU64::new(0),
		};
		let mut state = store.lock();
		let referenced = store.referenced(&mut state);
		let configs = store.pinned_configs(&mut state);
		for path in list_dir(&store.root.join("partial"))? {
			let parsed = parse_partial_name(&path);
			let keep = match parsed {
				Some((digest, size)) => {
					referenced.contains(&(digest, size))
						&& !store.blob_file(&digest).exists()
						&& file_len(&path)? <= size
				}
				None => false,
			};
			if !keep {
				remove_file(&path)?;
			} else if let Some((digest, size)) = parsed {
				// A kill between the last append and the rename leaves a full partial.
				store.finish_if_full(&mut state, &digest, size, configs.contains(&digest))?;
			}
		}
		drop(state);
		Ok(store)
	}

	/// Accepts image `manifest_digest` for `deal`: checks the bytes hash to the digest, parses and
	/// checks the manifest, enforces the limits, stores the manifest and pins it for the deal (all
	/// idempotent). Returns the config's and layers' states: complete ones are skipped, partial
	/// ones resume at `have`.
	pub fn offer(
		&self,
		deal: DealId,
		manifest_digest: &BlobDigest,
		manifest_bytes: &[u8],
	) -> Result<Vec<BlobState>, StoreError> {
		let actual = sha256(manifest_bytes);
		if actual != *manifest_digest {
			return Err(StoreError::DigestMismatch {
				digest: digest_to_string(manifest_digest),
				actual: digest_to_string(&actual),
			});
		}
		let manifest = parse_image_manifest(manifest_bytes)?;
		let mut state = self.lock();
		if let Some(pinned) = state.pins.get(&deal) {
			if !pinned.contains(manifest_digest) && pinned.len() >= MAX_IMAGES_PER_DEAL {
				return Err(StoreError::TooManyImages { deal, limit: MAX_IMAGES_PER_DEAL });
			}
		}
		for blob in manifest.blobs() {
			if let Some(actual) = self.stored_size(&blob.digest)? {
				if actual != blob.size {
					return Err(StoreError::SizeMismatch {
						digest: digest_to_string(&blob.digest),
						declared: blob.size,
						actual,
					});
				}
			}
		}
		let image_items = image_items(manifest_digest, manifest_bytes.len() as u64, &manifest);

		// Per deal: the distinct blobs of the deal's images with this one.
		let mut deal_items = image_items.clone();
		let pinned: Vec<BlobDigest> =
			state.pins.get(&deal).map(|p| p.iter().copied().collect()).unwrap_or_default();
		for pinned_manifest in pinned {
			if let Some(parsed) = self.cached_manifest(&mut state, &pinned_manifest)? {
				let len = self.stored_size(&pinned_manifest)?.unwrap_or_default();
				deal_items.extend(image_items_of(&pinned_manifest, len, &parsed));
			}
		}
		let deal_size = sum_sizes(&deal_items);
		if deal_size > self.limits.per_deal {
			return Err(StoreError::DealLimit {
				deal,
				size: deal_size,
				limit: self.limits.per_deal,
			});
		}
		// Whole store: what it holds or has promised, plus what this image adds.
		let referenced = self.referenced(&mut state);
		let accounted = self.accounted_size(&referenced)?;
		let added = sum_sizes(&image_items.difference(&referenced).copied().collect());
		let would_hold = accounted.saturating_add(added);
		if would_hold > self.limits.total {
			return Err(StoreError::StoreFull { size: would_hold, limit: self.limits.total });
		}

		if !self.blob_file(manifest_digest).exists() {
			self.write_atomically(&self.blob_file(manifest_digest), manifest_bytes)?;
		}
		let mut deal_pins = state.pins.get(&deal).cloned().unwrap_or_default();
		if deal_pins.insert(*manifest_digest) {
			self.write_atomically(&self.pin_file(deal), &pin_file_text(&deal_pins))?;
			state.pins.insert(deal, deal_pins);
		}
		state.manifests.insert(*manifest_digest, Arc::new(manifest.clone()));
		let mut states = Vec::new();
		for (i, blob) in manifest.blobs().iter().enumerate() {
			self.finish_if_full(&mut state, &blob.digest, blob.size, i == 0)?;
			let have = self.have(&state, &blob.digest, blob.size)?;
			states.push(BlobState { digest: blob.digest, size: blob.size, have });
		}
		Ok(states)
	}

	/// Appends `bytes` at `offset` of blob `digest` for `deal`; returns the bytes now held. The
	/// blob must be the config or a layer of an image the deal pins, `offset` must be the partial's
	/// length (the error names the expected offset) and the chunk must not pass the declared size.
	/// Reaching the size verifies the SHA-256 (a mismatch deletes the partial), checks a config's
	/// platform, fsyncs and renames the blob into `blobs/`. A complete blob answers its size.
	pub fn write(
		&self,
		deal: DealId,
		digest: &BlobDigest,
		offset: u64,
		bytes: &[u8],
	) -> Result<u64, StoreError> {
		let mut state = self.lock();
		let (size, is_config) = self.pinned_blob(&mut state, deal, digest)?;
		if let Some(actual) = self.stored_size(digest)? {
			if actual != size {
				return Err(StoreError::SizeMismatch {
					digest: digest_to_string(digest),
					declared: size,
					actual,
				});
			}
			return Ok(size);
		}
		let key = (*digest, size);
		if let std::collections::hash_map::Entry::Vacant(vacant) = state.partials.entry(key) {
			// First touch since the store opened: hash the prefix already on disk once.
			vacant.insert(self.load_partial(digest, size)?);
			if self.finish_if_full(&mut state, digest, size, is_config)? {
				return Ok(size);
			}
		}
		let partial_path = self.partial_file(digest, size);
		let Some(partial) = state.partials.get_mut(&key) else {
			return Err(io_err("resuming", &partial_path, io::ErrorKind::NotFound.into()));
		};
		if offset != partial.have {
			return Err(StoreError::WrongOffset {
				digest: digest_to_string(digest),
				offset,
				expected: partial.have,
			});
		}
		let end = offset.saturating_add(bytes.len() as u64);
		if end > size {
			return Err(StoreError::PastEnd { digest: digest_to_string(digest), end, size });
		}
		if bytes.is_empty() {
			return Ok(partial.have);
		}
		let (first, second) = bytes.split_at(bytes.len() / 2);
		let appended = self.step("append").and_then(|()| {
			partial.file.write_all(first).map_err(|e| io_err("appending to", &partial_path, e))?;
			self.step("append, second half")?;
			partial.file.write_all(second).map_err(|e| io_err("appending to", &partial_path, e))
		});
		if let Err(error) = appended {
			// Cut back to what was acknowledged; if even that fails, forget the state so the
			// next write hashes the file again.
			if partial.file.set_len(partial.have).is_err()
				|| matches!(error, StoreError::InjectedFault(_))
			{
				state.partials.remove(&key);
			}
			return Err(error);
		}
		partial.hasher.update(bytes);
		partial.have = end;
		if end < size {
			return Ok(end);
		}
		let Some(partial) = state.partials.remove(&key) else {
			return Err(io_err("completing", &partial_path, io::ErrorKind::NotFound.into()));
		};
		self.complete(partial, digest, is_config, &partial_path)?;
		Ok(size)
	}

	/// Whether `deal` pins image `manifest_digest` and the manifest, config and every layer are
	/// complete in the store.
	pub fn image_complete(&self, deal: DealId, manifest_digest: &BlobDigest) -> bool {
		let mut state = self.lock();
		if !state.pins.get(&deal).is_some_and(|p| p.contains(manifest_digest)) {
			return false;
		}
		match self.cached_manifest(&mut state, manifest_digest) {
			Ok(Some(manifest)) => manifest
				.blobs()
				.iter()
				.all(|blob| self.stored_size(&blob.digest).ok().flatten() == Some(blob.size)),
			_ => false,
		}
	}

	/// The image manifest digests `deal` pins.
	pub fn images(&self, deal: DealId) -> Vec<BlobDigest> {
		self.lock().pins.get(&deal).map(|p| p.iter().copied().collect()).unwrap_or_default()
	}

	/// Unpins every image of `deal` (its blobs stay until [`Self::collect_garbage`] finds no
	/// other deal using them). Returns whether the deal pinned anything.
	pub fn release(&self, deal: DealId) -> Result<bool, StoreError> {
		let mut state = self.lock();
		let path = self.pin_file(deal);
		if !path.exists() {
			state.pins.remove(&deal);
			return Ok(false);
		}
		self.step("remove pin file")?;
		remove_file(&path)?;
		self.step("fsync deals dir")?;
		sync_dir(&self.root.join("deals"))?;
		state.pins.remove(&deal);
		Ok(true)
	}

	/// Removes every blob and partial that no pinned image lists. What is pinned is read from the
	/// pin files on disk, not from a counter.
	pub fn collect_garbage(&self) -> Result<GcReport, StoreError> {
		let mut state = self.lock();
		let mut pins = BTreeMap::new();
		for path in list_dir(&self.root.join("deals"))? {
			let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
			if let Ok(deal) = name.parse::<DealId>() {
				pins.insert(deal, read_pin_file(&path)?);
			}
		}
		state.pins = pins;
		let referenced = self.referenced(&mut state);
		let referenced_digests: HashSet<BlobDigest> = referenced.iter().map(|(d, _)| *d).collect();
		let mut report = GcReport::default();
		for path in list_dir(&blobs_dir(&self.root))? {
			let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
			let digest = parse_hex_digest(name);
			if digest.is_some_and(|d| referenced_digests.contains(&d)) {
				continue;
			}
			let len = file_len(&path)?;
			self.step("remove blob")?;
			remove_file(&path)?;
			if let Some(digest) = digest {
				state.manifests.remove(&digest);
			}
			report.removed_blobs += 1;
			report.freed_bytes = report.freed_bytes.saturating_add(len);
		}
		for path in list_dir(&self.root.join("partial"))? {
			let parsed = parse_partial_name(&path);
			if parsed.is_some_and(|key| referenced.contains(&key)) {
				continue;
			}
			let len = file_len(&path)?;
			self.step("remove partial")?;
			remove_file(&path)?;
			if let Some(key) = parsed {
				state.partials.remove(&key);
			}
			report.removed_partials += 1;
			report.freed_bytes = report.freed_bytes.saturating_add(len);
		}
		Ok(report)
	}

	/// Bytes the store holds or has promised: every blob a pinned image lists, at its declared
	/// size whether stored yet or not, plus unreferenced files still on disk. The limits apply
	/// to this figure.
	pub fn size(&self) -> Result<u64, StoreError> {
		let mut state = self.lock();
		let referenced = self.referenced(&mut state);
		self.accounted_size(&referenced)
	}

	/// The path of a complete blob, if the store has it.
	pub fn blob_path(&self, digest: &BlobDigest) -> Option<PathBuf> {
		let path = self.blob_file(digest);
		path.is_file().then_some(path)
	}

	/// The deals that pin an image whose manifest is `digest` or lists `digest`.
	pub fn deals_pinning(&self, digest: &BlobDigest) -> Vec<DealId> {
		let mut state = self.lock();
		let pins = state.pins.clone();
		pins.into_iter()
			.filter(|(_, manifests)| {
				manifests.iter().any(|m| {
					m == digest
						|| self.cached_manifest(&mut state, m).ok().flatten().is_some_and(
							|parsed| parsed.blobs().iter().any(|b| b.digest == *digest),
						)
				})
			})
			.map(|(deal, _)| deal)
			.collect()
	}

	/// The parsed descriptors of stored image manifest `manifest_digest`.
	pub fn manifest_of(&self, manifest_digest: &BlobDigest) -> Result<ParsedManifest, StoreError> {
		let mut state = self.lock();
		self.cached_manifest(&mut state, manifest_digest)?
			.map(|parsed| (*parsed).clone())
			.ok_or_else(|| StoreError::ManifestNotStored(digest_to_string(manifest_digest)))
	}

	/// Writes image `manifest_digest` as an OCI archive (`oci-layout`, `index.json` naming it
	/// `ref_name` through the `org.opencontainers.image.ref.name` annotation, then the manifest,
	/// config and layer blobs) to `out`, for `podman load`. Every blob must be complete. The
	/// blobs are opened before the store's lock is released, so a concurrent garbage collection
	/// cannot pull them from under the archive.
	pub fn oci_archive(
		&self,
		manifest_digest: &BlobDigest,
		ref_name: &str,
		out: impl Write,
	) -> Result<(), StoreError> {
		let (manifest, manifest_bytes, mut files) = {
			let mut state = self.lock();
			let manifest = self
				.cached_manifest(&mut state, manifest_digest)?
				.ok_or_else(|| StoreError::ManifestNotStored(digest_to_string(manifest_digest)))?;
			let manifest_path = self.blob_file(manifest_digest);
			let manifest_bytes =
				fs::read(&manifest_path).map_err(|e| io_err("reading", &manifest_path, e))?;
			let mut files = Vec::new();
			let mut seen = HashSet::new();
			for blob in manifest.blobs() {
				if !seen.insert(blob.digest) {
					continue;
				}
				let path = self.blob_file(&blob.digest);
				let incomplete = || StoreError::ImageIncomplete {
					manifest: digest_to_string(manifest_digest),
					missing: digest_to_string(&blob.digest),
				};
				let file = File::open(&path).map_err(|_| incomplete())?;
				if file.metadata().map_err(|e| io_err("reading", &path, e))?.len() != blob.size {
					return Err(incomplete());
				}
				files.push((blob.digest, blob.size, file));
			}
			(manifest, manifest_bytes, files)
		};
		let descriptor = DescriptorBuilder::default()
			.media_type(MediaType::from(manifest.media_type.as_str()))
			.digest(
				oci_spec::image::Digest::from_str(&digest_to_string(manifest_digest))
					.map_err(|e| oci_format_error("manifest digest", e))?,
			)
			.size(manifest_bytes.len() as u64)
			.annotations(HashMap::from([(REF_NAME_ANNOTATION.to_owned(), ref_name.to_owned())]))
			.build()
			.map_err(|e| oci_format_error("index descriptor", e))?;
		let index = ImageIndexBuilder::default()
			.schema_version(2u32)
			.media_type(MediaType::ImageIndex)
			.manifests(vec![descriptor])
			.build()
			.map_err(|e| oci_format_error("index", e))?;
		let index_json = serde_json::to_vec(&index)
			.map_err(|e| FormatError::Malformed { what: "index", reason: e.to_string() })?;

		let archive_err = |e: io::Error| io_err("writing the OCI archive of", &self.root, e);
		let mut builder = tar::Builder::new(out);
		for dir in ["blobs/", "blobs/sha256/"] {
			let mut header = tar_header(0);
			header.set_entry_type(tar::EntryType::Directory);
			header.set_mode(0o755);
			builder.append_data(&mut header, dir, io::empty()).map_err(archive_err)?;
		}
		let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
		builder
			.append_data(&mut tar_header(layout.len() as u64), "oci-layout", &layout[..])
			.map_err(archive_err)?;
		builder
			.append_data(&mut tar_header(index_json.len() as u64), "index.json", &index_json[..])
			.map_err(archive_err)?;
		builder
			.append_data(
				&mut tar_header(manifest_bytes.len() as u64),
				blob_entry_name(manifest_digest),
				&manifest_bytes[..],
			)
			.map_err(archive_err)?;
		for (digest, size, file) in &mut files {
			file.rewind().map_err(archive_err)?;
			builder
				.append_data(&mut tar_header(*size), blob_entry_name(digest), file.take(*size))
				.map_err(archive_err)?;
		}
		builder.into_inner().map_err(archive_err)?.flush().map_err(archive_err)?;
		Ok(())
	}

	/// Test hook: the `steps`-th filesystem step from now fails with
	/// [`StoreError::InjectedFault`] before it runs, leaving the disk as a kill there would.
	/// 0 disables it.
	#[doc(hidden)]
	pub fn inject_fault_after(&self, steps: u64) {
		self.fault_after.store(steps, Ordering::SeqCst);
	}

	// ---- internals ----

	fn lock(&self) -> MutexGuard<'_, State> {
		// A panic cannot leave the disk inconsistent (every change is one rename or unlink), and
		// the in-memory state only caches it.
		self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
	}

	fn step(&self, what: &'static str) -> Result<(), StoreError> {
		let left = self.fault_after.load(Ordering::SeqCst);
		if left == 0 {
			return Ok(());
		}
		if left == 1 {
			self.fault_after.store(0, Ordering::SeqCst);
			return Err(StoreError::InjectedFault(what));
		}
		self.fault_after.store(left - 1, Ordering::SeqCst);
		Ok(())
	}

	fn blob_file(&self, digest: &BlobDigest) -> PathBuf {
		blobs_dir(&self.root).join(hex::encode(digest))
	}

	fn partial_file(&self, digest: &BlobDigest, size: u64) -> PathBuf {
		self.root.join("partial").join(format!("{}-{size}", hex::encode(digest)))
	}

	fn pin_file(&self, deal: DealId) -> PathBuf {
		self.root.join("deals").join(deal.to_string())
	}

	fn stored_size(&self, digest: &BlobDigest) -> Result<Option<u64>, StoreError> {
		let path = self.blob_file(digest);
		match fs::metadata(&path) {
			Ok(metadata) => Ok(Some(metadata.len())),
			Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
			Err(e) => Err(io_err("reading", &path, e)),
		}
	}

	/// Bytes held of a blob: its size if complete, else the partial's length.
	fn have(&self, state: &State, digest: &BlobDigest, size: u64) -> Result<u64, StoreError> {
		if let Some(actual) = self.stored_size(digest)? {
			// A stored blob of another size cannot be this descriptor's (offer refuses that).
			return Ok(if actual == size { size } else { 0 });
		}
		if let Some(partial) = state.partials.get(&(*digest, size)) {
			return Ok(partial.have);
		}
		let path = self.partial_file(digest, size);
		match fs::metadata(&path) {
			Ok(metadata) => Ok(metadata.len().min(size)),
			Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
			Err(e) => Err(io_err("reading", &path, e)),
		}
	}

	/// The parsed manifest, from the cache or from `blobs/` (None if not stored).
	fn cached_manifest(
		&self,
		state: &mut State,
		digest: &BlobDigest,
	) -> Result<Option<Arc<ParsedManifest>>, StoreError> {
		if let Some(parsed) = state.manifests.get(digest) {
			return Ok(Some(parsed.clone()));
		}
		let path = self.blob_file(digest);
		let bytes = match fs::read(&path) {
			Ok(bytes) => bytes,
			Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
			Err(e) => return Err(io_err("reading", &path, e)),
		};
		let parsed = Arc::new(parse_image_manifest(&bytes)?);
		state.manifests.insert(*digest, parsed.clone());
		Ok(Some(parsed))
	}

	/// Every (digest, declared size) a pinned image lists, manifests included.
	fn referenced(&self, state: &mut State) -> HashSet<(BlobDigest, u64)> {
		let manifests: Vec<BlobDigest> =
			state.pins.values().flat_map(|p| p.iter().copied()).collect();
		let mut items = HashSet::new();
		for manifest_digest in manifests {
			// A pinned manifest not (yet) stored references nothing; a new offer stores it again.
			if let (Ok(Some(parsed)), Ok(Some(len))) =
				(self.cached_manifest(state, &manifest_digest), self.stored_size(&manifest_digest))
			{
				items.extend(image_items_of(&manifest_digest, len, &parsed));
			}
		}
		items
	}

	/// Referenced items at their declared sizes plus unreferenced files on disk.
	fn accounted_size(&self, referenced: &HashSet<(BlobDigest, u64)>) -> Result<u64, StoreError> {
		let referenced_digests: HashSet<BlobDigest> = referenced.iter().map(|(d, _)| *d).collect();
		let mut total = sum_sizes(referenced);
		for path in list_dir(&blobs_dir(&self.root))? {
			let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
			if !parse_hex_digest(name).is_some_and(|d| referenced_digests.contains(&d)) {
				total = total.saturating_add(file_len(&path)?);
			}
		}
		for path in list_dir(&self.root.join("partial"))? {
			if !parse_partial_name(&path).is_some_and(|key| referenced.contains(&key)) {
				total = total.saturating_add(file_len(&path)?);
			}
		}
		Ok(total)
	}

	/// The declared size of `digest` in the deal's images and whether one lists it as config.
	fn pinned_blob(
		&self,
		state: &mut State,
		deal: DealId,
		digest: &BlobDigest,
	) -> Result<(u64, bool), StoreError> {
		let manifests: Vec<BlobDigest> =
			state.pins.get(&deal).map(|p| p.iter().copied().collect()).unwrap_or_default();
		let mut found = None;
		for manifest_digest in manifests {
			let Some(parsed) = self.cached_manifest(state, &manifest_digest)? else { continue };
			if parsed.config.digest == *digest {
				found = Some((parsed.config.size, true));
				break;
			}
			if let Some(layer) = parsed.layers.iter().find(|l| l.digest == *digest) {
				found.get_or_insert((layer.size, false));
			}
		}
		found.ok_or_else(|| StoreError::NotPinned { deal, digest: digest_to_string(digest) })
	}

	/// Digests that some pinned image lists as its config.
	fn pinned_configs(&self, state: &mut State) -> HashSet<BlobDigest> {
		let manifests: Vec<BlobDigest> =
			state.pins.values().flat_map(|p| p.iter().copied()).collect();
		manifests
			.iter()
			.filter_map(|m| self.cached_manifest(state, m).ok().flatten())
			.map(|parsed| parsed.config.digest)
			.collect()
	}

	/// Completes a partial that already holds all `size` bytes (left so by a kill or an I/O error
	/// between the last append and the rename). Returns whether the blob is now complete; a
	/// partial whose bytes are wrong is deleted (the upload starts over).
	fn finish_if_full(
		&self,
		state: &mut State,
		digest: &BlobDigest,
		size: u64,
		is_config: bool,
	) -> Result<bool, StoreError> {
		let key = (*digest, size);
		let path = self.partial_file(digest, size);
		let full = match state.partials.get(&key) {
			Some(partial) => partial.have == size,
			// An empty blob needs no upload: it completes as soon as it is offered.
			None => size == 0 || fs::metadata(&path).is_ok_and(|m| m.len() == size),
		};
		if !full || self.blob_file(digest).exists() {
			return Ok(false);
		}
		let partial = match state.partials.remove(&key) {
			Some(partial) => partial,
			None => self.load_partial(digest, size)?,
		};
		match self.complete(partial, digest, is_config, &path) {
			Ok(()) => Ok(true),
			Err(
				StoreError::DigestMismatch { .. }
				| StoreError::UnsupportedPlatform { .. }
				| StoreError::Format(_),
			) => Ok(false),
			Err(other) => Err(other),
		}
	}

	/// Opens (or creates) a partial and hashes the prefix already on disk.
	fn load_partial(&self, digest: &BlobDigest, size: u64) -> Result<Partial, StoreError> {
		let path = self.partial_file(digest, size);
		let mut file = OpenOptions::new()
			.create(true)
			.read(true)
			.append(true)
			.open(&path)
			.map_err(|e| io_err("opening", &path, e))?;
		let len = file.metadata().map_err(|e| io_err("reading", &path, e))?.len();
		if len > size {
			file.set_len(0).map_err(|e| io_err("truncating", &path, e))?;
			return Ok(Partial { file, have: 0, hasher: Sha256::new() });
		}
		let mut hasher = Sha256::new();
		file.rewind().map_err(|e| io_err("reading", &path, e))?;
		let hashed = io::copy(&mut (&mut file).take(len), &mut hasher)
			.map_err(|e| io_err("hashing", &path, e))?;
		Ok(Partial { file, have: hashed, hasher })
	}

	/// Verifies a partial that reached its size and moves it into `blobs/`.
	fn complete(
		&self,
		partial: Partial,
		digest: &BlobDigest,
		is_config: bool,
		partial_path: &Path,
	) -> Result<(), StoreError> {
		let actual: BlobDigest = partial.hasher.finalize().into();
		if actual != *digest {
			drop(partial.file);
			remove_file(partial_path)?;
			return Err(StoreError::DigestMismatch {
				digest: digest_to_string(digest),
				actual: digest_to_string(&actual),
			});
		}
		if is_config {
			// The config is small (bounded by the manifest parser), so it is read whole.
			let refusal = match fs::read(partial_path) {
				Ok(bytes) => match config_platform(&bytes) {
					Ok(platform) if is_supported_platform(&platform) => None,
					Ok(platform) => Some(StoreError::UnsupportedPlatform { platform }),
					Err(format) => Some(StoreError::Format(format)),
				},
				Err(e) => return Err(io_err("reading", partial_path, e)),
			};
			if let Some(refusal) = refusal {
				drop(partial.file);
				remove_file(partial_path)?;
				return Err(refusal);
			}
		}
		self.step("fsync blob")?;
		partial.file.sync_all().map_err(|e| io_err("syncing", partial_path, e))?;
		drop(partial.file);
		let target = self.blob_file(digest);
		self.step("rename blob")?;
		fs::rename(partial_path, &target).map_err(|e| io_err("renaming", partial_path, e))?;
		self.step("fsync blobs dir")?;
		sync_dir(&blobs_dir(&self.root))?;
		Ok(())
	}

	/// Writes `bytes` to `target` through `tmp/`: write, fsync, rename, fsync the directory.
	fn write_atomically(&self, target: &Path, bytes: &[u8]) -> Result<(), StoreError> {
		let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("file");
		let temp = self.root.join("tmp").join(format!("{name}.tmp"));
		self.step("write temp file")?;
		let mut file = File::create(&temp).map_err(|e| io_err("creating", &temp, e))?;
		file.write_all(bytes).map_err(|e| io_err("writing", &temp, e))?;
		self.step("fsync temp file")?;
		file.sync_all().map_err(|e| io_err("syncing", &temp, e))?;
		drop(file);
		self.step("rename temp file")?;
		fs::rename(&temp, target).map_err(|e| io_err("renaming", &temp, e))?;
		self.step("fsync directory")?;
		if let Some(dir) = target.parent() {
			sync_dir(dir)?;
		}
		Ok(())
	}
}

/// The (digest, size) items of one image: manifest, config, layers.
fn image_items(
	manifest_digest: &BlobDigest,
	manifest_len: u64,
	manifest: &ParsedManifest,
) -> HashSet<(BlobDigest, u64)> {
	image_items_of(manifest_digest, manifest_len, manifest).collect()
}

fn image_items_of<'a>(
	manifest_digest: &BlobDigest,
	manifest_len: u64,
	manifest: &'a ParsedManifest,
) -> impl Iterator<Item = (BlobDigest, u64)> + 'a {
	std::iter::once((*manifest_digest, manifest_len))
		.chain(std::iter::once((manifest.config.digest, manifest.config.size)))
		.chain(manifest.layers.iter().map(|l| (l.digest, l.size)))
}

fn sum_sizes(items: &HashSet<(BlobDigest, u64)>) -> u64 {
	items.iter().fold(0u64, |total, (_, size)| total.saturating_add(*size))
}

fn blobs_dir(root: &Path) -> PathBuf {
	root.join("blobs").join("sha256")
}

fn blob_entry_name(digest: &BlobDigest) -> String {
	format!("blobs/sha256/{}", hex::encode(digest))
}

fn tar_header(size: u64) -> tar::Header {
	let mut header = tar::Header::new_ustar();
	header.set_size(size);
	header.set_mode(0o644);
	header.set_mtime(0);
	header.set_entry_type(tar::EntryType::Regular);
	header
}

fn parse_partial_name(path: &Path) -> Option<(BlobDigest, u64)> {
	let name = path.file_name()?.to_str()?;
	let (hex, size) = name.split_once('-')?;
	Some((parse_hex_digest(hex)?, size.parse().ok()?))
}

fn pin_file_text(pins: &BTreeSet<BlobDigest>) -> Vec<u8> {
	pins.iter().map(|d| format!("{}\n", digest_to_string(d))).collect::<String>().into_bytes()
}

fn read_pin_file(path: &Path) -> Result<BTreeSet<BlobDigest>, StoreError> {
	let text = fs::read_to_string(path).map_err(|e| StoreError::CorruptPinFile {
		path: path.to_path_buf(),
		reason: e.to_string(),
	})?;
	text.lines()
		.filter(|line| !line.is_empty())
		.map(|line| {
			parse_digest(line).map_err(|e| StoreError::CorruptPinFile {
				path: path.to_path_buf(),
				reason: e.to_string(),
			})
		})
		.collect()
}

fn hash_file(path: &Path) -> Result<(BlobDigest, u64), StoreError> {
	let mut file = File::open(path).map_err(|e| io_err("opening", path, e))?;
	let mut hasher = Sha256::new();
	let len = io::copy(&mut file, &mut hasher).map_err(|e| io_err("hashing", path, e))?;
	Ok((hasher.finalize().into(), len))
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
	let mut paths = Vec::new();
	for entry in fs::read_dir(dir).map_err(|e| io_err("listing", dir, e))? {
		paths.push(entry.map_err(|e| io_err("listing", dir, e))?.path());
	}
	paths.sort();
	Ok(paths)
}

fn file_len(path: &Path) -> Result<u64, StoreError> {
	Ok(fs::metadata(path).map_err(|e| io_err("reading", path, e))?.len())
}

fn remove_file(path: &Path) -> Result<(), StoreError> {
	match fs::remove_file(path) {
		Ok(()) => Ok(()),
		Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
		// A directory where a file belongs is not ours either.
		Err(_) if path.is_dir() => {
			fs::remove_dir_all(path).map_err(|e| io_err("removing", path, e))
		}
		Err(e) => Err(io_err("removing", path, e)),
	}
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
	File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_err("syncing", dir, e))
}

fn io_err(op: &'static str, path: &Path, source: io::Error) -> StoreError {
	StoreError::Io { op, path: path.to_path_buf(), source }
}

fn oci_format_error(what: &'static str, error: oci_spec::OciSpecError) -> StoreError {
	StoreError::Format(FormatError::Malformed { what, reason: error.to_string() })
}
