//! Volume snapshots the provider vouches to hold: a volume's files serialised into one byte
//! stream, kept in the agent's data directory with the leaf hashes of its 4 KiB chunks.
//!
//! ## Format
//!
//! The stream starts with [`MAGIC`], then one entry per directory, regular file and symbolic
//! link under the volume's root, in the byte order of their paths (relative, `/`-separated),
//! each as: a kind byte (`d`, `f` or `l`), the path's length (u32 LE) and bytes, the
//! permission bits (u32 LE); a file then has its length (u64 LE) and contents, a link its
//! target's length (u32 LE) and bytes. Other kinds (sockets, FIFOs, devices) are left out. The
//! same files give the same stream, so the same root.
//!
//! ## On disk
//!
//! `<dir>/<deal>/<volume as hex>/<root as hex>.snap` is the stream,
//! `<root as hex>.leaves` its chunks' leaf hashes (32 bytes each, 1/128 of the stream), so
//! a challenge reads only the leaves and the chunks asked for. `pending.json` is a commitment
//! sent and not yet seen final.

use super::stream::{write_archive, write_tree, ChunkWriter};
use podchain_merkle::{chunk_len, Hash, MerkleTree, CHUNK_SIZE};
use serde::{Deserialize, Serialize};
use std::{
	fs::{self, File},
	io::{self, Read, Seek, SeekFrom, Write},
	path::{Path, PathBuf},
};

/// First bytes of every snapshot stream.
pub const MAGIC: &[u8] = b"podchain volume snapshot v1\n";

/// What a snapshot commits to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
	/// Root of the tree over its chunks.
	#[serde(with = "hex_hash")]
	pub root: Hash,
	/// Chunks in it.
	pub chunk_count: u32,
	/// Bytes in it.
	pub size: u64,
}

/// A commitment sent and not yet seen in a finalized block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
	/// The snapshot committed.
	pub snapshot: SnapshotInfo,
	/// Last block the transaction can land in.
	pub valid_until: u32,
}

/// Why a snapshot could not be taken or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
	/// Reading the volume or writing the snapshot failed.
	#[error("{what}: {source}")]
	Io {
		/// What was being done.
		what: String,
		/// What went wrong.
		#[source]
		source: io::Error,
	},
	/// The snapshot is not (or no longer) on disk.
	#[error("no snapshot {0} on disk")]
	Missing(String),
	/// The volume has more than `u32::MAX` chunks.
	#[error("the volume is too large to commit (over 16 TiB)")]
	TooLarge,
	/// The backend could not read the whole volume.
	#[error("the volume could not be read: {0}")]
	Source(String),
	/// The volume holds more than the deal's storage allows (sparse files count in full).
	#[error("the volume's snapshot is over the limit of {0} bytes")]
	OverLimit(u64),
}

fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> SnapshotError {
	let what = what.into();
	move |source| SnapshotError::Io { what, source }
}

fn hex(hash: &Hash) -> String {
	hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// Snapshots kept under one directory.
#[derive(Clone, Debug)]
pub struct SnapshotStore {
	dir: PathBuf,
}

impl SnapshotStore {
	/// Snapshots under `dir` (created when needed).
	pub fn new(dir: impl Into<PathBuf>) -> Self {
		Self { dir: dir.into() }
	}

	/// Where `deal`'s snapshots are.
	fn deal_dir(&self, deal: u64) -> PathBuf {
		self.dir.join(deal.to_string())
	}

	/// Where `volume` of `deal`'s snapshots are.
	pub fn volume_dir(&self, deal: u64, volume: &[u8]) -> PathBuf {
		let name: String = volume.iter().map(|b| format!("{b:02x}")).collect();
		self.deal_dir(deal).join(name)
	}

	/// The stream of snapshot `root`.
	pub fn snapshot_path(&self, deal: u64, volume: &[u8], root: &Hash) -> PathBuf {
		self.volume_dir(deal, volume).join(format!("{}.snap", hex(root)))
	}

	fn leaves_path(&self, deal: u64, volume: &[u8], root: &Hash) -> PathBuf {
		self.volume_dir(deal, volume).join(format!("{}.leaves", hex(root)))
	}

	/// Takes a snapshot of the files under `source` as `volume` of `deal`, of at most `limit`
	/// bytes. The caller makes sure nothing writes there meanwhile.
	pub fn take(
		&self,
		deal: u64,
		volume: &[u8],
		source: &Path,
		limit: u64,
	) -> Result<SnapshotInfo, SnapshotError> {
		self.write(deal, volume, limit, format!("read {}", source.display()), |writer| {
			write_tree(source, writer)
		})
	}

	/// Takes a snapshot of the files a `tar` archive of the volume holds (see
	/// `stream::write_archive`) as `volume` of `deal`, of at most `limit` bytes; the same
	/// files give the same snapshot as [`Self::take`]. File contents are spooled beside the
	/// snapshot while the archive is read.
	pub fn take_archive(
		&self,
		deal: u64,
		volume: &[u8],
		archive: impl Read,
		limit: u64,
	) -> Result<SnapshotInfo, SnapshotError> {
		let spool = self.volume_dir(deal, volume).join("archive.spool");
		let taken = self.write(deal, volume, limit, "read the volume's archive".into(), |writer| {
			write_archive(archive, &spool, writer)
		});
		let _ = fs::remove_file(&spool);
		taken
	}

	/// Writes the stream `write` produces as a snapshot of `volume` of `deal`, with its leaves.
	fn write(
		&self,
		deal: u64,
		volume: &[u8],
		limit: u64,
		what: String,
		write: impl FnOnce(&mut ChunkWriter) -> io::Result<()>,
	) -> Result<SnapshotInfo, SnapshotError> {
		let dir = self.volume_dir(deal, volume);
		fs::create_dir_all(&dir).map_err(io_error(format!("create {}", dir.display())))?;
		let partial = dir.join("partial.snap");
		let file =
			File::create(&partial).map_err(io_error(format!("create {}", partial.display())))?;
		let mut writer = ChunkWriter::new(file, limit);
		if let Err(e) = write(&mut writer) {
			let over = writer.over_limit;
			drop(writer);
			let _ = fs::remove_file(&partial);
			return Err(if over { SnapshotError::OverLimit(limit) } else { io_error(what)(e) });
		}
		let (leaves, size) =
			writer.finish().map_err(io_error(format!("write {}", partial.display())))?;
		let mut leaf_bytes = Vec::with_capacity(leaves.len() * 32);
		for leaf in &leaves {
			leaf_bytes.extend_from_slice(leaf);
		}
		let tree = MerkleTree::from_leaves(leaves).ok_or(SnapshotError::TooLarge)?;
		let info = SnapshotInfo { root: tree.root(), chunk_count: tree.chunk_count(), size };
		let leaves_path = self.leaves_path(deal, volume, &info.root);
		write_atomically(&leaves_path, &leaf_bytes)?;
		let snapshot = self.snapshot_path(deal, volume, &info.root);
		fs::rename(&partial, &snapshot)
			.map_err(io_error(format!("rename {}", partial.display())))?;
		Ok(info)
	}

	/// Deletes snapshot `root` of `volume` (one taken from what turned out not to be the
	/// whole volume).
	pub fn discard(&self, deal: u64, volume: &[u8], root: &Hash) {
		let _ = fs::remove_file(self.snapshot_path(deal, volume, root));
		let _ = fs::remove_file(self.leaves_path(deal, volume, root));
	}

	/// Whether snapshot `root` of `volume` is on disk.
	pub fn has(&self, deal: u64, volume: &[u8], root: &Hash) -> bool {
		self.snapshot_path(deal, volume, root).is_file()
			&& self.leaves_path(deal, volume, root).is_file()
	}

	/// Chunks `indices` of snapshot `root` of `volume` (of `size` bytes), each with its Merkle
	/// path, read from disk: what the snapshot holds now, whatever happened to it.
	pub fn prove(
		&self,
		deal: u64,
		volume: &[u8],
		root: &Hash,
		size: u64,
		indices: &[u32],
	) -> Result<Vec<(Vec<u8>, Vec<Hash>)>, SnapshotError> {
		let missing = || SnapshotError::Missing(hex(root));
		let leaves_path = self.leaves_path(deal, volume, root);
		let leaf_bytes = match fs::read(&leaves_path) {
			Ok(bytes) => bytes,
			Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing()),
			Err(e) => return Err(io_error(format!("read {}", leaves_path.display()))(e)),
		};
		let leaves = leaf_bytes
			.chunks_exact(32)
			.map(|c| <Hash>::try_from(c).unwrap_or_default())
			.collect::<Vec<_>>();
		let tree = MerkleTree::from_leaves(leaves).ok_or(SnapshotError::TooLarge)?;
		let snapshot = self.snapshot_path(deal, volume, root);
		let mut file = match File::open(&snapshot) {
			Ok(file) => file,
			Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing()),
			Err(e) => return Err(io_error(format!("open {}", snapshot.display()))(e)),
		};
		let read_error = io_error(format!("read {}", snapshot.display()));
		let mut proofs = Vec::with_capacity(indices.len());
		for index in indices {
			let len = chunk_len(size, *index).ok_or_else(missing)?;
			let mut chunk = vec![0u8; len];
			let read = file
				.seek(SeekFrom::Start(u64::from(*index) * CHUNK_SIZE as u64))
				.and_then(|_| read_up_to(&mut file, &mut chunk));
			let read = match read {
				Ok(read) => read,
				Err(e) => return Err(read_error(e)),
			};
			// A snapshot cut short answers with what is left.
			chunk.truncate(read);
			let path = tree.proof(*index).ok_or_else(missing)?;
			proofs.push((chunk, path));
		}
		Ok(proofs)
	}

	/// The commitment of `volume` sent and not seen final yet, if any.
	pub fn pending(&self, deal: u64, volume: &[u8]) -> Option<Pending> {
		let bytes = fs::read(self.volume_dir(deal, volume).join("pending.json")).ok()?;
		serde_json::from_slice(&bytes).ok()
	}

	/// Records (or with `None` forgets) the commitment of `volume` in flight.
	pub fn set_pending(
		&self,
		deal: u64,
		volume: &[u8],
		pending: Option<&Pending>,
	) -> Result<(), SnapshotError> {
		let path = self.volume_dir(deal, volume).join("pending.json");
		match pending {
			Some(pending) => {
				let bytes = serde_json::to_vec(pending).unwrap_or_default();
				write_atomically(&path, &bytes)
			}
			None => match fs::remove_file(&path) {
				Ok(()) => Ok(()),
				Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
				Err(e) => Err(io_error(format!("remove {}", path.display()))(e)),
			},
		}
	}

	/// Deletes every snapshot of `volume` but those in `keep` (a partial one a crash left too).
	pub fn keep_only(&self, deal: u64, volume: &[u8], keep: &[Hash]) -> Result<(), SnapshotError> {
		let dir = self.volume_dir(deal, volume);
		let kept: Vec<String> = keep.iter().map(hex).collect();
		let entries = match fs::read_dir(&dir) {
			Ok(entries) => entries,
			Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
			Err(e) => return Err(io_error(format!("list {}", dir.display()))(e)),
		};
		for entry in entries.flatten() {
			let name = entry.file_name().to_string_lossy().into_owned();
			let Some((stem, ext)) = name.rsplit_once('.') else { continue };
			if matches!(ext, "snap" | "leaves") && !kept.iter().any(|k| k == stem) {
				let path = entry.path();
				fs::remove_file(&path).map_err(io_error(format!("remove {}", path.display())))?;
			}
		}
		Ok(())
	}

	/// Deals with anything on disk.
	pub fn deals(&self) -> Vec<u64> {
		let Ok(entries) = fs::read_dir(&self.dir) else { return Vec::new() };
		let mut deals: Vec<u64> =
			entries.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
		deals.sort_unstable();
		deals
	}

	/// Volumes of `deal` with anything on disk, by name.
	pub fn volumes(&self, deal: u64) -> Vec<Vec<u8>> {
		let Ok(entries) = fs::read_dir(self.deal_dir(deal)) else { return Vec::new() };
		let mut volumes: Vec<Vec<u8>> =
			entries.flatten().filter_map(|e| hex_decode(e.file_name().to_str()?)).collect();
		volumes.sort();
		volumes
	}

	/// Deletes everything of `deal`.
	pub fn remove_deal(&self, deal: u64) -> Result<(), SnapshotError> {
		let dir = self.deal_dir(deal);
		match fs::remove_dir_all(&dir) {
			Ok(()) => Ok(()),
			Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
			Err(e) => Err(io_error(format!("remove {}", dir.display()))(e)),
		}
	}
}

/// Reads into `buffer` until it is full or the file ends; the bytes read.
fn read_up_to(file: &mut File, buffer: &mut [u8]) -> io::Result<usize> {
	let mut filled = 0;
	while filled < buffer.len() {
		match file.read(&mut buffer[filled..])? {
			0 => break,
			read => filled += read,
		}
	}
	Ok(filled)
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a crash leaves the old
/// file or the new one.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SnapshotError> {
	let tmp = path.with_extension("tmp");
	let write = || -> io::Result<()> {
		let mut file = File::create(&tmp)?;
		file.write_all(bytes)?;
		file.sync_all()?;
		fs::rename(&tmp, path)
	};
	write().map_err(io_error(format!("write {}", path.display())))
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
	if !text.len().is_multiple_of(2) {
		return None;
	}
	(0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

mod hex_hash {
	use serde::{Deserialize, Deserializer, Serializer};

	pub fn serialize<S: Serializer>(hash: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
		s.serialize_str(&super::hex(hash))
	}

	pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
		let text = String::deserialize(d)?;
		super::hex_decode(&text)
			.and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
			.ok_or_else(|| serde::de::Error::custom("a 32-byte hex hash"))
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use podchain_merkle::verify;

	const LIMIT: u64 = 1 << 30;

	fn volume(dir: &Path) {
		fs::create_dir_all(dir.join("sub/deeper")).unwrap();
		fs::write(dir.join("a.txt"), b"hello").unwrap();
		fs::write(dir.join("sub/big.bin"), (0..20_000u32).map(|i| i as u8).collect::<Vec<_>>())
			.unwrap();
		fs::write(dir.join("sub/deeper/empty"), b"").unwrap();
		#[cfg(unix)]
		std::os::unix::fs::symlink("a.txt", dir.join("link")).unwrap();
	}

	#[test]
	fn the_same_files_give_the_same_root_and_any_change_another() {
		let (a, b, out) = (
			tempfile::tempdir().unwrap(),
			tempfile::tempdir().unwrap(),
			tempfile::tempdir().unwrap(),
		);
		volume(a.path());
		volume(b.path());
		let store = SnapshotStore::new(out.path());
		let first = store.take(1, b"data", a.path(), LIMIT).unwrap();
		let second = store.take(2, b"data", b.path(), LIMIT).unwrap();
		assert_eq!(first, second);
		assert!(first.size > 20_000, "{first:?}");
		assert_eq!(Some(first.chunk_count), podchain_merkle::chunk_count(first.size));
		fs::write(b.path().join("sub/deeper/empty"), b"x").unwrap();
		assert_ne!(store.take(2, b"data", b.path(), LIMIT).unwrap().root, first.root);
		fs::write(b.path().join("sub/deeper/empty"), b"").unwrap();
		fs::rename(b.path().join("a.txt"), b.path().join("b.txt")).unwrap();
		assert_ne!(store.take(2, b"data", b.path(), LIMIT).unwrap().root, first.root);
		// An empty volume still has a snapshot: the header alone.
		let empty = tempfile::tempdir().unwrap();
		let info = store.take(3, b"data", empty.path(), LIMIT).unwrap();
		assert_eq!((info.size, info.chunk_count), (MAGIC.len() as u64, 1));
	}

	#[test]
	fn proofs_from_disk_verify_and_fail_once_the_snapshot_is_altered_or_gone() {
		let (source, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
		volume(source.path());
		let store = SnapshotStore::new(out.path());
		let info = store.take(5, b"data", source.path(), LIMIT).unwrap();
		assert!(store.has(5, b"data", &info.root));
		let last = info.chunk_count - 1;
		let indices = [0, 3, last, last];
		let proofs = store.prove(5, b"data", &info.root, info.size, &indices).unwrap();
		for (index, (chunk, path)) in indices.iter().zip(&proofs) {
			assert_eq!(chunk.len(), chunk_len(info.size, *index).unwrap());
			assert!(verify(&info.root, info.chunk_count, *index, chunk, path));
		}
		// The volume changes afterwards: the snapshot still answers for what was committed.
		fs::write(source.path().join("a.txt"), b"changed").unwrap();
		let again = store.prove(5, b"data", &info.root, info.size, &indices).unwrap();
		assert_eq!(again, proofs);

		// The snapshot altered on disk: its chunks no longer verify.
		let path = store.snapshot_path(5, b"data", &info.root);
		let mut bytes = fs::read(&path).unwrap();
		for byte in bytes.iter_mut() {
			*byte ^= 0xff;
		}
		fs::write(&path, &bytes).unwrap();
		let altered = store.prove(5, b"data", &info.root, info.size, &indices).unwrap();
		for (index, (chunk, path)) in indices.iter().zip(&altered) {
			assert!(!verify(&info.root, info.chunk_count, *index, chunk, path));
		}
		// Deleted: nothing to answer with.
		fs::remove_file(&path).unwrap();
		assert!(!store.has(5, b"data", &info.root));
		assert!(matches!(
			store.prove(5, b"data", &info.root, info.size, &indices),
			Err(SnapshotError::Missing(_))
		));
	}

	#[test]
	fn pending_commitments_and_cleanup_survive_restarts() {
		let (source, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
		volume(source.path());
		let store = SnapshotStore::new(out.path());
		let old = store.take(9, b"data", source.path(), LIMIT).unwrap();
		fs::write(source.path().join("a.txt"), b"newer").unwrap();
		let new = store.take(9, b"data", source.path(), LIMIT).unwrap();
		let pending = Pending { snapshot: new, valid_until: 77 };
		store.set_pending(9, b"data", Some(&pending)).unwrap();
		// A new store on the same directory: what a restarted agent finds.
		let store = SnapshotStore::new(out.path());
		assert_eq!(store.pending(9, b"data"), Some(pending));
		assert_eq!(store.deals(), vec![9]);
		assert_eq!(store.volumes(9), vec![b"data".to_vec()]);
		store.keep_only(9, b"data", &[new.root]).unwrap();
		assert!(!store.has(9, b"data", &old.root));
		assert!(store.has(9, b"data", &new.root));
		store.set_pending(9, b"data", None).unwrap();
		assert_eq!(store.pending(9, b"data"), None);
		store.remove_deal(9).unwrap();
		assert!(store.deals().is_empty());
		store.remove_deal(9).unwrap();
	}

	/// The archive a real `tar` makes of `dir`, as the Kubernetes storage-proof pod's does.
	fn tar_of(dir: &Path) -> Vec<u8> {
		let out = std::process::Command::new("tar")
			.args(["-c", "-f", "-", "-C"])
			.arg(dir)
			.arg(".")
			.output()
			.expect("tar runs");
		assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
		out.stdout
	}

	#[test]
	fn an_archive_of_the_files_gives_the_snapshot_of_the_files() {
		let (source, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
		volume(source.path());
		// A hard link reads as a second file with the same contents, in the tree as in tar.
		fs::hard_link(source.path().join("a.txt"), source.path().join("sub/hard")).unwrap();
		#[cfg(unix)]
		{
			use std::os::unix::fs::PermissionsExt;
			fs::set_permissions(source.path().join("a.txt"), fs::Permissions::from_mode(0o600))
				.unwrap();
		}
		let store = SnapshotStore::new(out.path());
		let from_tree = store.take(1, b"data", source.path(), LIMIT).unwrap();
		let archive = tar_of(source.path());
		let from_archive = store.take_archive(2, b"data", &archive[..], LIMIT).unwrap();
		assert_eq!(from_tree, from_archive);
		// The spool is gone; the snapshot answers like any other.
		assert!(!store.volume_dir(2, b"data").join("archive.spool").exists());
		let proofs = store.prove(2, b"data", &from_archive.root, from_archive.size, &[0]).unwrap();
		assert!(verify(
			&from_archive.root,
			from_archive.chunk_count,
			0,
			&proofs[0].0,
			&proofs[0].1
		));
		// Paths without `./` (another tar's spelling) give the same stream.
		let mut builder = tar::Builder::new(Vec::new());
		builder.follow_symlinks(false);
		builder.append_dir_all("", source.path()).unwrap();
		let plain = builder.into_inner().unwrap();
		assert_eq!(store.take_archive(3, b"data", &plain[..], LIMIT).unwrap(), from_tree);
	}

	#[test]
	fn archives_that_leave_the_volume_or_stop_short_are_refused() {
		let out = tempfile::tempdir().unwrap();
		let store = SnapshotStore::new(out.path());
		for evil in [&b"../outside"[..], b"/etc/passwd", b"./a/../../x"] {
			let mut header = tar::Header::new_old();
			header.as_old_mut().name[..evil.len()].copy_from_slice(evil);
			header.set_size(3);
			header.set_mode(0o644);
			header.set_entry_type(tar::EntryType::Regular);
			header.set_cksum();
			let mut archive = header.as_bytes().to_vec();
			archive.extend_from_slice(&[b'x'; 512]);
			archive.extend_from_slice(&[0; 1024]);
			let taken = store.take_archive(1, b"data", &archive[..], LIMIT);
			assert!(matches!(taken, Err(SnapshotError::Io { .. })), "{evil:?}: {taken:?}");
		}
		// Cut in the middle of a file.
		let source = tempfile::tempdir().unwrap();
		volume(source.path());
		let archive = tar_of(source.path());
		let cut = &archive[..archive.len() - 9_000];
		assert!(store.take_archive(1, b"data", cut, LIMIT).is_err());
		// Nothing half-written is left to be taken for a snapshot.
		let leftovers: Vec<_> = fs::read_dir(store.volume_dir(1, b"data"))
			.unwrap()
			.flatten()
			.map(|e| e.file_name().to_string_lossy().into_owned())
			.collect();
		assert!(leftovers.is_empty(), "{leftovers:?}");
	}

	#[test]
	fn a_volume_over_the_limit_is_refused_sparse_holes_included() {
		let (source, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
		// 64 MiB apparent, nothing on disk: a tenant's way to fill the provider's disk.
		File::create(source.path().join("sparse")).unwrap().set_len(64 << 20).unwrap();
		let store = SnapshotStore::new(out.path());
		let limit = 1 << 20;
		let taken = store.take(1, b"data", source.path(), limit);
		assert!(matches!(taken, Err(SnapshotError::OverLimit(l)) if l == limit), "{taken:?}");
		let archive = tar_of(source.path());
		let taken = store.take_archive(1, b"data", &archive[..], limit);
		assert!(matches!(taken, Err(SnapshotError::OverLimit(l)) if l == limit), "{taken:?}");
		let leftovers = fs::read_dir(store.volume_dir(1, b"data")).unwrap().count();
		assert_eq!(leftovers, 0);
		// Within the limit, taken.
		assert!(store.take(1, b"data", source.path(), 65 << 20).is_ok());
		assert_eq!(super::super::snapshot_limit(1), (1 << 30) + (1 << 26) + (64 << 20));
	}
}
