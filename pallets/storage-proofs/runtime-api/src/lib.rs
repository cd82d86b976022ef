//! Runtime API of the storage-proofs pallet, for providers' agents and publishers' tools.

#![cfg_attr(not(feature = "std"), no_std)]

use codec::Codec;
pub use pallet_storage_proofs::{ChallengeView, Commitment, DealId, VolumeName};

sp_api::decl_runtime_apis! {
	/// Open challenges, the chunks they ask for, and commitments.
	pub trait StorageProofsApi<BlockNumber>
	where
		BlockNumber: Codec,
	{
		/// The deal's open challenge, with the chunk indices it asks for once the block that
		/// seeds them is known (`indices` is `None` until then).
		fn challenge(deal: DealId) -> Option<ChallengeView<BlockNumber>>;

		/// The latest commitment of a deal's volume.
		fn commitment(deal: DealId, volume: VolumeName) -> Option<Commitment<BlockNumber>>;
	}
}
