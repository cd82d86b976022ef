//! Types of the storage-proofs pallet: commitments, challenges, answers.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{traits::ConstU32, BoundedVec};
use scale_info::TypeInfo;

pub use podchain_merkle::{Hash, CHUNK_SIZE, MAX_DEPTH};
pub use podchain_primitives::DealId;

/// Name of a volume in a deal's manifest.
pub type VolumeName = BoundedVec<u8, ConstU32<63>>;

/// Root of the Merkle tree over a volume snapshot's chunks (see `podchain-merkle`).
pub type Root = Hash;

/// A volume snapshot the provider vouches to hold: the root of its tree, its chunk count and
/// its size in bytes (which fixes the length of its last chunk).
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub struct Commitment<BlockNumber> {
	/// Root of the snapshot's tree.
	pub root: Root,
	/// Chunks in the snapshot (`podchain_merkle::chunk_count(size)`).
	pub chunk_count: u32,
	/// Bytes in the snapshot.
	pub size: u64,
	/// Block it was committed in.
	pub at: BlockNumber,
}

/// A live deal's storage-proof bookkeeping.
#[derive(
	Clone,
	Copy,
	Default,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub struct DealRecord<BlockNumber> {
	/// Volumes with a commitment.
	pub volumes: u32,
	/// Block of the publisher's last challenge (rate limit).
	pub last_challenge: Option<BlockNumber>,
}

/// An open challenge. It carries everything needed to decide it, so it stays answerable
/// after the deal ended and its commitments were removed.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct Challenge<AccountId, Balance, BlockNumber> {
	/// The volume challenged.
	pub volume: VolumeName,
	/// The commitment challenged: the latest when the challenge was filed.
	pub root: Root,
	/// Its chunk count.
	pub chunk_count: u32,
	/// Its size in bytes.
	pub size: u64,
	/// Block the challenge was filed in: the hash of the block after it seeds the indices.
	pub issued_at: BlockNumber,
	/// Last block the provider may answer in.
	pub deadline: BlockNumber,
	/// Block whose due queue fails it if unanswered (after the deadline).
	pub due_at: BlockNumber,
	/// Compensated if it fails.
	pub publisher: AccountId,
	/// Must answer it; slashed if it fails.
	pub provider: AccountId,
	/// Slashed from the provider's stake to the publisher if it fails.
	pub penalty: Balance,
}

/// One challenged chunk and its Merkle path (sibling hashes from the leaf up).
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct ChunkProof {
	/// The chunk's bytes (the last chunk of a snapshot may be shorter than [`CHUNK_SIZE`]).
	pub chunk: BoundedVec<u8, ConstU32<{ CHUNK_SIZE as u32 }>>,
	/// Sibling hashes from the leaf up.
	pub path: BoundedVec<Hash, ConstU32<MAX_DEPTH>>,
}

/// Why a challenge failed.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub enum Failure {
	/// A chunk or its path did not verify against the committed root.
	WrongProof,
	/// No answer by the deadline.
	NoAnswer,
}

/// An open challenge as the runtime API shows it: what the provider must answer, and the
/// chunk indices once the block that seeds them exists.
#[derive(Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo, Debug)]
pub struct ChallengeView<BlockNumber> {
	/// The volume challenged.
	pub volume: VolumeName,
	/// The committed root challenged.
	pub root: Root,
	/// Its chunk count.
	pub chunk_count: u32,
	/// Its size in bytes.
	pub size: u64,
	/// Block the challenge was filed in.
	pub issued_at: BlockNumber,
	/// Last block an answer is accepted in.
	pub deadline: BlockNumber,
	/// The chunk indices to prove, in order; `None` until the block after `issued_at` is known
	/// (answers are accepted from the block after that).
	pub indices: Option<alloc::vec::Vec<u32>>,
}
