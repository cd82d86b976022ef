//! Weights for `pallet_provider_staking`: a hand-written placeholder in the format
//! `scripts/benchmark.sh` generates, with storage accesses counted from the code and times
//! estimated. Regenerate from the pallet's benchmarks before release rather than edit.

// Command (to regenerate):
// podchain-node
// benchmark
// pallet
// --chain
// dev
// --pallet
// pallet_provider_staking
// --extrinsic
// *
// --steps
// 50
// --repeat
// 20
// --wasm-execution
// compiled
// --heap-pages
// 4096
// --template
// scripts/weight-template.hbs
// --output
// pallets/provider-staking/src/weights.rs

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens)]
#![allow(unused_imports)]
#![allow(missing_docs)]

use frame_support::{traits::Get, weights::{Weight, constants::ParityDbWeight}};
use core::marker::PhantomData;

/// Weight of each call of `pallet_provider_staking`.
pub trait WeightInfo {
	fn bond() -> Weight;
	fn bond_extra() -> Weight;
	fn unbond() -> Weight;
	fn withdraw_unbonded() -> Weight;
	fn set_requirement() -> Weight;
	fn rebond() -> Weight;
}

/// Measured weights, with database costs taken from the runtime.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	/// Storage: `ProviderStaking::Ledgers` (r:1 w:1)
	/// Proof: `ProviderStaking::Ledgers` (`max_values`: None, `max_size`: Some(721), added: 3196, mode: `MaxEncodedLen`)
	/// Storage: `ProviderStaking::TotalStake` (r:1 w:1)
	/// Proof: `ProviderStaking::TotalStake` (`max_values`: Some(1), `max_size`: Some(16), added: 511, mode: `MaxEncodedLen`)
	/// Storage: `Balances::Holds` (r:1 w:1)
	/// Proof: `Balances::Holds` (`max_values`: None, `max_size`: Some(103), added: 2578, mode: `MaxEncodedLen`)
	/// Storage: `System::Account` (r:1 w:1)
	/// Proof: `System::Account` (`max_values`: None, `max_size`: Some(128), added: 2603, mode: `MaxEncodedLen`)
	fn bond() -> Weight {
		// Proof size: measured `0`, estimated `4186`.
		// Fastest run: 60_000_000 picoseconds.
		Weight::from_parts(65_000_000, 4186)
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().writes(4_u64))
	}
	/// Storage: `ProviderStaking::Ledgers` (r:1 w:1)
	/// Proof: `ProviderStaking::Ledgers` (`max_values`: None, `max_size`: Some(721), added: 3196, mode: `MaxEncodedLen`)
	/// Storage: `ProviderStaking::TotalStake` (r:1 w:1)
	/// Proof: `ProviderStaking::TotalStake` (`max_values`: Some(1), `max_size`: Some(16), added: 511, mode: `MaxEncodedLen`)
	/// Storage: `Balances::Holds` (r:1 w:1)
	/// Proof: `Balances::Holds` (`max_values`: None, `max_size`: Some(103), added: 2578, mode: `MaxEncodedLen`)
	/// Storage: `System::Account` (r:1 w:1)
	/// Proof: `System::Account` (`max_values`: None, `max_size`: Some(128), added: 2603, mode: `MaxEncodedLen`)
	fn bond_extra() -> Weight {
		// Proof size: measured `0`, estimated `4186`.
		// Fastest run: 60_000_000 picoseconds.
		Weight::from_parts(65_000_000, 4186)
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().writes(4_u64))
	}
	/// Storage: `ProviderStaking::Ledgers` (r:1 w:1)
	/// Proof: `ProviderStaking::Ledgers` (`max_values`: None, `max_size`: Some(721), added: 3196, mode: `MaxEncodedLen`)
	/// Storage: `ProviderStaking::Requirement` (r:1 w:0)
	/// Proof: `ProviderStaking::Requirement` (`max_values`: Some(1), `max_size`: Some(80), added: 575, mode: `MaxEncodedLen`)
	fn unbond() -> Weight {
		// Proof size: measured `0`, estimated `4186`.
		// Fastest run: 25_000_000 picoseconds.
		Weight::from_parts(30_000_000, 4186)
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().writes(1_u64))
	}
	/// Storage: `ProviderStaking::Ledgers` (r:1 w:1)
	/// Proof: `ProviderStaking::Ledgers` (`max_values`: None, `max_size`: Some(721), added: 3196, mode: `MaxEncodedLen`)
	/// Storage: `ProviderStaking::TotalStake` (r:1 w:1)
	/// Proof: `ProviderStaking::TotalStake` (`max_values`: Some(1), `max_size`: Some(16), added: 511, mode: `MaxEncodedLen`)
	/// Storage: `Balances::Holds` (r:1 w:1)
	/// Proof: `Balances::Holds` (`max_values`: None, `max_size`: Some(103), added: 2578, mode: `MaxEncodedLen`)
	/// Storage: `System::Account` (r:1 w:1)
	/// Proof: `System::Account` (`max_values`: None, `max_size`: Some(128), added: 2603, mode: `MaxEncodedLen`)
	fn withdraw_unbonded() -> Weight {
		// Proof size: measured `0`, estimated `4186`.
		// Fastest run: 65_000_000 picoseconds.
		Weight::from_parts(70_000_000, 4186)
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().writes(4_u64))
	}
	/// Storage: `ProviderStaking::Requirement` (r:0 w:1)
	/// Proof: `ProviderStaking::Requirement` (`max_values`: Some(1), `max_size`: Some(80), added: 575, mode: `MaxEncodedLen`)
	fn set_requirement() -> Weight {
		// Proof size: measured `0`, estimated `0`.
		// Fastest run: 8_000_000 picoseconds.
		Weight::from_parts(10_000_000, 0)
			.saturating_add(T::DbWeight::get().writes(1_u64))
	}
	/// Storage: `ProviderStaking::Ledgers` (r:1 w:1)
	/// Proof: `ProviderStaking::Ledgers` (`max_values`: None, `max_size`: Some(721), added: 3196, mode: `MaxEncodedLen`)
	fn rebond() -> Weight {
		// Proof size: measured `0`, estimated `4186`.
		// Fastest run: 20_000_000 picoseconds.
		Weight::from_parts(25_000_000, 4186)
			.saturating_add(T::DbWeight::get().reads(1_u64))
			.saturating_add(T::DbWeight::get().writes(1_u64))
	}
}

/// The same estimates with ParityDB costs, for tests and mock runtimes.
impl WeightInfo for () {
	fn bond() -> Weight {
		Weight::from_parts(65_000_000, 4186)
			.saturating_add(ParityDbWeight::get().reads(4_u64))
			.saturating_add(ParityDbWeight::get().writes(4_u64))
	}
	fn bond_extra() -> Weight {
		Weight::from_parts(65_000_000, 4186)
			.saturating_add(ParityDbWeight::get().reads(4_u64))
			.saturating_add(ParityDbWeight::get().writes(4_u64))
	}
	fn unbond() -> Weight {
		Weight::from_parts(30_000_000, 4186)
			.saturating_add(ParityDbWeight::get().reads(2_u64))
			.saturating_add(ParityDbWeight::get().writes(1_u64))
	}
	fn withdraw_unbonded() -> Weight {
		Weight::from_parts(70_000_000, 4186)
			.saturating_add(ParityDbWeight::get().reads(4_u64))
			.saturating_add(ParityDbWeight::get().writes(4_u64))
	}
	fn set_requirement() -> Weight {
		Weight::from_parts(10_000_000, 0)
			.saturating_add(ParityDbWeight::get().writes(1_u64))
	}
	fn rebond() -> Weight {
		Weight::from_parts(25_000_000, 4186)
			.saturating_add(ParityDbWeight::get().reads(1_u64))
			.saturating_add(ParityDbWeight::get().writes(1_u64))
	}
}
