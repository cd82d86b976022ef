//! Writing a snapshot stream (the format is in `snapshot.rs`), from a directory (podman: the
//! volume's mountpoint) or from a `tar` archive of one (Kubernetes: read through the
//! storage-proof pod). The same files give the same stream either way: the archive's entries
//! are put in the same byte order of their paths, their contents spooled to disk meanwhile.

use super::snapshot::MAGIC;
use podchain_merkle::{leaf_hash, Hash, CHUNK_SIZE};
use std::{
	collections::BTreeMap,
	fs::{self, File},
	io::{self, BufWriter, Read, Seek, SeekFrom, Write},
	path::{Path, PathBuf},
};

/// Writes a stream in chunks, hashing each as it is completed, up to a limit of bytes.
pub(super) struct ChunkWriter {
	out: BufWriter<File>,
	chunk: Vec<u8>,
	leaves: Vec<Hash>,
	size: u64,
	limit: u64,
	/// Whether a write went past the limit.
	pub over_limit: bool,
}

impl ChunkWriter {
	/// A writer into `file` of at most `limit` bytes.
	pub fn new(file: File, limit: u64) -> Self {
		Self {
			out: BufWriter::with_capacity(1 << 20, file),
			chunk: Vec::with_capacity(CHUNK_SIZE),
			leaves: Vec::new(),
			size: 0,
			limit,
			over_limit: false,
		}
	}

	fn push(&mut self, mut bytes: &[u8]) -> io::Result<()> {
		self.size = self.size.saturating_add(bytes.len() as u64);
		if self.size > self.limit {
			self.over_limit = true;
			return Err(io::Error::other(format!("over the limit of {} bytes", self.limit)));
		}
		while !bytes.is_empty() {
			let take = (CHUNK_SIZE - self.chunk.len()).min(bytes.len());
			self.chunk.extend_from_slice(&bytes[..take]);
			bytes = &bytes[take..];
			if self.chunk.len() == CHUNK_SIZE {
				self.leaves.push(leaf_hash(&self.chunk));
				self.out.write_all(&self.chunk)?;
				self.chunk.clear();
			}
		}
		Ok(())
	}

	/// The leaves (the last chunk's included, an empty stream's one empty chunk) and the size.
	pub fn finish(mut self) -> io::Result<(Vec<Hash>, u64)> {
		if !self.chunk.is_empty() || self.leaves.is_empty() {
			self.leaves.push(leaf_hash(&self.chunk));
			self.out.write_all(&self.chunk)?;
		}
		let file = self.out.into_inner().map_err(|e| e.into_error())?;
		file.sync_all()?;
		Ok((self.leaves, self.size))
	}
}

/// Where a file's contents are read from.
#[derive(Clone, Debug)]
enum Contents {
	/// A file on disk.
	Path(PathBuf),
	/// A range of the spool file.
	Spooled { offset: u64 },
}

/// One entry of the stream, by kind.
#[derive(Clone, Debug)]
enum Body {
	Directory,
	File { len: u64, contents: Contents },
	Link(Vec<u8>),
}

#[derive(Clone, Debug)]
struct Entry {
	mode: u32,
	body: Body,
}

/// Serialises the tree under `root` into `writer`.
pub(super) fn write_tree(root: &Path, writer: &mut ChunkWriter) -> io::Result<()> {
	let mut stack = vec![PathBuf::new()];
	let mut entries = BTreeMap::new();
	// Every path first, then in byte order: the stream does not depend on readdir's order.
	while let Some(relative) = stack.pop() {
		for entry in fs::read_dir(root.join(&relative))? {
			let entry = entry?;
			let path = relative.join(entry.file_name());
			let meta = fs::symlink_metadata(root.join(&path))?;
			let kind = meta.file_type();
			let body = if kind.is_dir() {
				stack.push(path.clone());
				Body::Directory
			} else if kind.is_file() {
				Body::File { len: meta.len(), contents: Contents::Path(root.join(&path)) }
			} else if kind.is_symlink() {
				Body::Link(path_bytes(&fs::read_link(root.join(&path))?))
			} else {
				continue;
			};
			entries.insert(path_bytes(&path), Entry { mode: mode_of(&meta), body });
		}
	}
	write_entries(&entries, None, writer)
}

/// Serialises the tree a `tar` archive holds (paths relative to its root, `./` or not) into
/// `writer`, spooling file contents to `spool` (truncated first) meanwhile. Hard links are
/// files with their target's contents, as the tree on disk reads. Anything but directories,
/// regular files and links is left out, as from a tree; an entry whose path leaves the root is
/// an error.
pub(super) fn write_archive(
	archive: impl Read,
	spool: &Path,
	writer: &mut ChunkWriter,
) -> io::Result<()> {
	let mut spooled =
		File::options().create(true).truncate(true).read(true).write(true).open(spool)?;
	let mut entries: BTreeMap<Vec<u8>, Entry> = BTreeMap::new();
	let mut offset = 0u64;
	let mut archive = tar::Archive::new(archive);
	for item in archive.entries()? {
		let mut item = item?;
		let path = relative_path(&item.path_bytes())?;
		if path.is_empty() {
			continue; // the root itself
		}
		let header = item.header();
		let mode = header.mode()? & 0o7777;
		let kind = header.entry_type();
		let body = if kind.is_dir() {
			Body::Directory
		} else if kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse() {
			// No more spooled than the stream may hold: a sparse file's holes count in full.
			let room = writer.limit.saturating_sub(offset);
			let mut out = BufWriter::new(&mut spooled);
			let len = io::copy(&mut (&mut item).take(room.saturating_add(1)), &mut out)?;
			out.flush()?;
			drop(out);
			if len > room {
				writer.over_limit = true;
				return Err(io::Error::other(format!("over the limit of {} bytes", writer.limit)));
			}
			let body = Body::File { len, contents: Contents::Spooled { offset } };
			offset = offset.saturating_add(len);
			body
		} else if kind.is_symlink() {
			let target = item.link_name_bytes().ok_or_else(|| invalid("a link without target"))?;
			Body::Link(target.into_owned())
		} else if kind.is_hard_link() {
			let target = item.link_name_bytes().ok_or_else(|| invalid("a link without target"))?;
			let target = relative_path(&target)?;
			match entries.get(&target) {
				Some(entry @ Entry { body: Body::File { .. }, .. }) => {
					entries.insert(path, entry.clone());
					continue;
				}
				_ => return Err(invalid("a hard link to no file before it")),
			}
		} else {
			continue;
		};
		entries.insert(path, Entry { mode, body });
	}
	write_entries(&entries, Some(&mut spooled), writer)
}

/// Writes the header and `entries`, in their (byte) order.
fn write_entries(
	entries: &BTreeMap<Vec<u8>, Entry>,
	mut spool: Option<&mut File>,
	writer: &mut ChunkWriter,
) -> io::Result<()> {
	writer.push(MAGIC)?;
	let mut buffer = vec![0u8; 1 << 16];
	for (path, entry) in entries {
		let tag = match entry.body {
			Body::Directory => b'd',
			Body::File { .. } => b'f',
			Body::Link(_) => b'l',
		};
		writer.push(&[tag])?;
		writer.push(&(path.len() as u32).to_le_bytes())?;
		writer.push(path)?;
		writer.push(&entry.mode.to_le_bytes())?;
		match &entry.body {
			Body::File { len, contents } => {
				writer.push(&len.to_le_bytes())?;
				let copied = match contents {
					Contents::Path(full) => {
						copy(&mut File::open(full)?.take(*len), &mut buffer, writer)?
					}
					Contents::Spooled { offset } => {
						let spool = spool.as_deref_mut().ok_or_else(|| invalid("no spool"))?;
						spool.seek(SeekFrom::Start(*offset))?;
						copy(&mut (&mut *spool).take(*len), &mut buffer, writer)?
					}
				};
				if copied != *len {
					return Err(io::Error::new(
						io::ErrorKind::UnexpectedEof,
						format!("{} changed while it was read", String::from_utf8_lossy(path)),
					));
				}
			}
			Body::Link(target) => {
				writer.push(&(target.len() as u32).to_le_bytes())?;
				writer.push(target)?;
			}
			Body::Directory => {}
		}
	}
	Ok(())
}

/// Copies `from` into `writer`; the bytes copied.
fn copy(from: &mut impl Read, buffer: &mut [u8], writer: &mut ChunkWriter) -> io::Result<u64> {
	let mut copied = 0u64;
	loop {
		let read = from.read(buffer)?;
		if read == 0 {
			return Ok(copied);
		}
		writer.push(&buffer[..read])?;
		copied += read as u64;
	}
}

/// An archive path as the stream writes it: relative, `/`-separated, no `.` components, no
/// trailing `/`; empty for the root. A path that could leave the root is an error.
fn relative_path(raw: &[u8]) -> io::Result<Vec<u8>> {
	let mut parts: Vec<&[u8]> = Vec::new();
	for part in raw.split(|b| *b == b'/') {
		match part {
			b"" | b"." => {}
			b".." => return Err(invalid("a path with `..` in the archive")),
			part => parts.push(part),
		}
	}
	if raw.first() == Some(&b'/') {
		return Err(invalid("an absolute path in the archive"));
	}
	Ok(parts.join(&b'/'))
}

fn invalid(what: &str) -> io::Error {
	io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

#[cfg(unix)]
fn path_bytes(path: &Path) -> Vec<u8> {
	use std::os::unix::ffi::OsStrExt;
	path.as_os_str().as_bytes().to_vec()
}

#[cfg(not(unix))]
fn path_bytes(path: &Path) -> Vec<u8> {
	path.to_string_lossy().replace('\\', "/").into_bytes()
}

#[cfg(unix)]
fn mode_of(meta: &fs::Metadata) -> u32 {
	use std::os::unix::fs::PermissionsExt;
	meta.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode_of(meta: &fs::Metadata) -> u32 {
	if meta.permissions().readonly() {
		0o444
	} else {
		0o644
	}
}
