//! Weights for `pallet_storage_proofs`.
//!
//! Placeholder until benchmarked: conservative hand values (storage accesses counted from the
//! code, compute overestimated) until `scripts/benchmark.sh` regenerates this file from the
//! pallet's benchmarks on a benchmark node. Regenerate rather than edit.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens)]
#![allow(unused_imports)]
#![allow(missing_docs)]

use frame_support::{traits::Get, weights::{Weight, constants::ParityDbWeight}};
use core::marker::PhantomData;

/// Weight of each call of `pallet_storage_proofs`.
pub trait WeightInfo {
	fn commit() -> Weight;
	fn challenge() -> Weight;
	fn answer(d: u32, ) -> Weight;
	fn expire() -> Weight;
	fn on_initialize(n: u32, ) -> Weight;
}

/// Hand-estimated weights, with database costs taken from the runtime.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	// Placeholder until benchmarked.
	/// Storage: `StorageProofs::LiveDeals` (r:1 w:1), `Sla::Tracked` (r:1 w:0),
	/// `StorageProofs::Challenges` (r:1 w:0), `StorageProofs::Commitments` (r:1 w:1)
	fn commit() -> Weight {
		Weight::from_parts(60_000_000, 8_000)
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
	// Placeholder until benchmarked.
	/// Storage: `StorageProofs::LiveDeals` (r:1 w:1), `Sla::Tracked` (r:1 w:0),
	/// `StorageProofs::Commitments` (r:1 w:0), `StorageProofs::Challenges` (r:1 w:1),
	/// `StorageProofs::Due` (r:16 w:1, at worst every searched queue full)
	fn challenge() -> Weight {
		Weight::from_parts(120_000_000, 40_000)
			.saturating_add(T::DbWeight::get().reads(20_u64))
			.saturating_add(T::DbWeight::get().writes(3_u64))
	}
	// Placeholder until benchmarked.
	/// Storage: `StorageProofs::Challenges` (r:1 w:1), `System::BlockHash` (r:1 w:0),
	/// a failed proof's slash (r:6 w:5).
	/// Compute: k chunks of 4 KiB hashed, k * `d` node hashes.
	/// Component `d` (the longest path) ranges over `[0, 32]`.
	fn answer(d: u32, ) -> Weight {
		Weight::from_parts(400_000_000, 20_000)
			.saturating_add(Weight::from_parts(25_000_000, 0).saturating_mul(d.into()))
			.saturating_add(T::DbWeight::get().reads(8_u64))
			.saturating_add(T::DbWeight::get().writes(6_u64))
	}
	// Placeholder until benchmarked.
	/// Storage: `StorageProofs::Challenges` (r:1 w:1), the slash (r:6 w:5).
	fn expire() -> Weight {
		Weight::from_parts(100_000_000, 20_000)
			.saturating_add(T::DbWeight::get().reads(7_u64))
			.saturating_add(T::DbWeight::get().writes(6_u64))
	}
	// Placeholder until benchmarked.
	/// Storage: `StorageProofs::Due` (r:1 w:1), per item `n` an expiry (r:7 w:6).
	/// Component `n` ranges over `[0, MaxDuePerBlock]`.
	fn on_initialize(n: u32, ) -> Weight {
		Weight::from_parts(10_000_000, 2_000)
			.saturating_add(Weight::from_parts(100_000_000, 20_000).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().reads(1_u64))
			.saturating_add(T::DbWeight::get().writes(1_u64))
			.saturating_add(T::DbWeight::get().reads((7_u64).saturating_mul(n.into())))
			.saturating_add(T::DbWeight::get().writes((6_u64).saturating_mul(n.into())))
	}
}

/// For tests: the same estimates with RocksDB-free database costs.
impl WeightInfo for () {
	fn commit() -> Weight {
		Weight::from_parts(60_000_000, 8_000)
			.saturating_add(ParityDbWeight::get().reads(4_u64))
			.saturating_add(ParityDbWeight::get().writes(2_u64))
	}
	fn challenge() -> Weight {
		Weight::from_parts(120_000_000, 40_000)
			.saturating_add(ParityDbWeight::get().reads(20_u64))
			.saturating_add(ParityDbWeight::get().writes(3_u64))
	}
	fn answer(d: u32, ) -> Weight {
		Weight::from_parts(400_000_000, 20_000)
			.saturating_add(Weight::from_parts(25_000_000, 0).saturating_mul(d.into()))
			.saturating_add(ParityDbWeight::get().reads(8_u64))
			.saturating_add(ParityDbWeight::get().writes(6_u64))
	}
	fn expire() -> Weight {
		Weight::from_parts(100_000_000, 20_000)
			.saturating_add(ParityDbWeight::get().reads(7_u64))
			.saturating_add(ParityDbWeight::get().writes(6_u64))
	}
	fn on_initialize(n: u32, ) -> Weight {
		Weight::from_parts(10_000_000, 2_000)
			.saturating_add(Weight::from_parts(100_000_000, 20_000).saturating_mul(n.into()))
			.saturating_add(ParityDbWeight::get().reads((1_u64).saturating_add((7_u64).saturating_mul(n.into()))))
			.saturating_add(ParityDbWeight::get().writes((1_u64).saturating_add((6_u64).saturating_mul(n.into()))))
	}
}
