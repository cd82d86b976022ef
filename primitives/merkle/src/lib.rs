//! # podchain Merkle trees
//!
//! What a provider commits for a volume, and what answers a storage challenge on it.
//!
//! A volume snapshot is a byte stream (the provider agent's snapshot format) cut into chunks of
//! [`CHUNK_SIZE`] bytes; the last chunk may be shorter, and an empty stream is one empty chunk.
//! The tree's leaves are the chunks' hashes, in order; each level pairs neighbours, and the
//! last node of a level with an odd number of nodes is **promoted** unchanged to the next
//! level (never duplicated: a duplicate would let one chunk answer for two positions). The
//! root is the last level's only node.
//!
//! Hashes are blake2-256 with a one-byte domain tag, so a leaf can never be read as an inner
//! node or the reverse:
//!
//! - leaf: `blake2_256(0x00 ‖ len as u32 LE ‖ chunk)`: the chunk's length is committed, so
//!   the short last chunk cannot be padded or cut;
//! - node: `blake2_256(0x01 ‖ left ‖ right)`.
//!
//! A proof of chunk `index` is its sibling hashes from the leaf up, skipping levels where the
//! node is promoted. [`verify`] needs the chunk count to know where those levels are, so a
//! proof is only meaningful against a root committed together with its chunk count.
//!
//! [`challenge_indices`] derives a challenge's chunk indices from a block hash neither the
//! provider nor the publisher chose, and the challenge's deal, volume and root: the runtime
//! and the provider's agent compute the same indices.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

use alloc::vec::Vec;
use sp_crypto_hashing::blake2_256;

/// Bytes per chunk (all but the last chunk of a stream are this long).
pub const CHUNK_SIZE: usize = 4096;

/// Most sibling hashes in a proof: a tree over at most `u32::MAX` chunks is 32 levels deep.
pub const MAX_DEPTH: u32 = 32;

/// A blake2-256 hash.
pub type Hash = [u8; 32];

/// Domain tag of leaf hashes.
const LEAF_TAG: u8 = 0x00;
/// Domain tag of inner node hashes.
const NODE_TAG: u8 = 0x01;
/// Domain tag of a challenge's index derivation.
const CHALLENGE_TAG: &[u8] = b"podchain/storage-challenge/v1";

/// Hash of a leaf: the chunk with its length.
pub fn leaf_hash(chunk: &[u8]) -> Hash {
	let mut data = Vec::with_capacity(5 + chunk.len());
	data.push(LEAF_TAG);
	data.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
	data.extend_from_slice(chunk);
	blake2_256(&data)
}

/// Hash of an inner node over its two children.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
	let mut data = [0u8; 65];
	data[0] = NODE_TAG;
	data[1..33].copy_from_slice(left);
	data[33..].copy_from_slice(right);
	blake2_256(&data)
}

/// Chunks of a stream of `size` bytes (an empty stream is one empty chunk); `None` above
/// `u32::MAX` chunks (16 TiB).
pub fn chunk_count(size: u64) -> Option<u32> {
	let chunks = size.div_ceil(CHUNK_SIZE as u64).max(1);
	u32::try_from(chunks).ok()
}

/// Length of chunk `index` of a stream of `size` bytes; `None` if the stream has no such chunk.
pub fn chunk_len(size: u64, index: u32) -> Option<usize> {
	let count = chunk_count(size)?;
	if index >= count {
		return None;
	}
	let start = u64::from(index) * CHUNK_SIZE as u64;
	Some(size.saturating_sub(start).min(CHUNK_SIZE as u64) as usize)
}

/// Sibling hashes a proof of chunk `index` of `chunk_count` chunks holds; `None` if there is
/// no such chunk.
pub fn path_len(chunk_count: u32, index: u32) -> Option<u32> {
	if index >= chunk_count {
		return None;
	}
	let (mut width, mut index, mut len) = (chunk_count, index, 0);
	while width > 1 {
		if index ^ 1 < width {
			len += 1;
		}
		index >>= 1;
		width = width.div_ceil(2);
	}
	Some(len)
}

/// Whether `chunk` is chunk `index` of the stream whose tree over `chunk_count` chunks has
/// root `root`, by its sibling hashes `path` (exactly those the tree has, none more).
pub fn verify(root: &Hash, chunk_count: u32, index: u32, chunk: &[u8], path: &[Hash]) -> bool {
	if index >= chunk_count || chunk.len() > CHUNK_SIZE {
		return false;
	}
	let mut hash = leaf_hash(chunk);
	let mut siblings = path.iter();
	let (mut width, mut index) = (chunk_count, index);
	while width > 1 {
		if index ^ 1 < width {
			let Some(sibling) = siblings.next() else { return false };
			hash =
				if index & 1 == 0 { node_hash(&hash, sibling) } else { node_hash(sibling, &hash) };
		}
		index >>= 1;
		width = width.div_ceil(2);
	}
	siblings.next().is_none() && hash == *root
}

/// The `k` chunk indices a challenge asks for, each below `chunk_count`, derived from `seed`
/// (the hash of a block produced after the challenge was filed) and the challenge's deal,
/// volume and root. Indices may repeat when the volume has few chunks. Empty when
/// `chunk_count` is zero.
pub fn challenge_indices(
	seed: &Hash,
	deal: u64,
	volume: &[u8],
	root: &Hash,
	chunk_count: u32,
	k: u32,
) -> Vec<u32> {
	if chunk_count == 0 {
		return Vec::new();
	}
	let mut input = Vec::with_capacity(CHALLENGE_TAG.len() + 32 + 8 + 4 + volume.len() + 32 + 4);
	input.extend_from_slice(CHALLENGE_TAG);
	input.extend_from_slice(seed);
	input.extend_from_slice(&deal.to_le_bytes());
	// Length-prefixed, so no two (volume, root) pairs encode alike.
	input.extend_from_slice(&(volume.len() as u32).to_le_bytes());
	input.extend_from_slice(volume);
	input.extend_from_slice(root);
	let prefix = input.len();
	(0..k)
		.map(|i| {
			input.truncate(prefix);
			input.extend_from_slice(&i.to_le_bytes());
			let digest = blake2_256(&input);
			let mut word = [0u8; 8];
			word.copy_from_slice(&digest[..8]);
			// A 64-bit draw modulo at most 2^32: the bias is below 2^-32.
			(u64::from_le_bytes(word) % u64::from(chunk_count)) as u32
		})
		.collect()
}

/// A whole tree, every level kept, to give proofs of any chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerkleTree {
	/// `levels[0]` are the leaves, the last level is the root alone.
	levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
	/// The tree over leaf hashes `leaves` (as [`leaf_hash`] makes them); an empty list is
	/// taken as one empty chunk. `None` above `u32::MAX` leaves.
	pub fn from_leaves(mut leaves: Vec<Hash>) -> Option<Self> {
		if leaves.is_empty() {
			leaves.push(leaf_hash(&[]));
		}
		u32::try_from(leaves.len()).ok()?;
		let mut levels = alloc::vec![leaves];
		while let Some(level) = levels.last().filter(|l| l.len() > 1) {
			let next = level
				.chunks(2)
				.map(|pair| match pair {
					[left, right] => node_hash(left, right),
					[alone] => *alone,
					_ => unreachable!("chunks(2) yields one or two"),
				})
				.collect();
			levels.push(next);
		}
		Some(Self { levels })
	}

	/// The tree over `data` cut into chunks.
	pub fn from_data(data: &[u8]) -> Option<Self> {
		Self::from_leaves(data.chunks(CHUNK_SIZE).map(leaf_hash).collect())
	}

	/// The root.
	pub fn root(&self) -> Hash {
		self.levels.last().and_then(|l| l.first()).copied().unwrap_or_default()
	}

	/// Chunks (leaves) under the tree.
	pub fn chunk_count(&self) -> u32 {
		self.levels.first().map_or(0, |l| l.len() as u32)
	}

	/// Sibling hashes proving chunk `index`, from the leaf up; `None` if there is no such chunk.
	pub fn proof(&self, index: u32) -> Option<Vec<Hash>> {
		if index >= self.chunk_count() {
			return None;
		}
		let mut index = index as usize;
		let mut path = Vec::new();
		for level in &self.levels[..self.levels.len() - 1] {
			if let Some(sibling) = level.get(index ^ 1) {
				path.push(*sibling);
			}
			index >>= 1;
		}
		Some(path)
	}
}

#[cfg(test)]
mod tests;
