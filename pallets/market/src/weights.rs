//! Weights for `pallet_market`, placeholders until `scripts/benchmark.sh pallet_market`
//! regenerates this file from the benchmarks in `benchmarking.rs`.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens)]
#![allow(unused_imports)]
#![allow(missing_docs)]

use frame_support::{traits::Get, weights::{Weight, constants::ParityDbWeight}};
use core::marker::PhantomData;

/// Weight of each call of `pallet_market`.
pub trait WeightInfo {
	fn create_deployment() -> Weight;
	fn accept_deployment() -> Weight;
	fn close_deployment() -> Weight;
	fn top_up() -> Weight;
	fn update_manifest() -> Weight;
	fn report_usage(n: u32, ) -> Weight;
	fn settle() -> Weight;
	fn set_protocol_fee() -> Weight;
	fn on_initialize(n: u32, ) -> Weight;
}

/// Measured weights, with database costs taken from the runtime.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	fn create_deployment() -> Weight {
		Weight::from_parts(80_000_000, 6000)
			.saturating_add(T::DbWeight::get().reads(5_u64))
			.saturating_add(T::DbWeight::get().writes(5_u64))
	}
	fn accept_deployment() -> Weight {
		Weight::from_parts(40_000_000, 6000)
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
	fn close_deployment() -> Weight {
		Weight::from_parts(120_000_000, 9000)
			.saturating_add(T::DbWeight::get().reads(8_u64))
			.saturating_add(T::DbWeight::get().writes(8_u64))
	}
	fn top_up() -> Weight {
		Weight::from_parts(120_000_000, 9000)
			.saturating_add(T::DbWeight::get().reads(8_u64))
			.saturating_add(T::DbWeight::get().writes(7_u64))
	}
	fn update_manifest() -> Weight {
		Weight::from_parts(20_000_000, 3500)
			.saturating_add(T::DbWeight::get().reads(1_u64))
			.saturating_add(T::DbWeight::get().writes(1_u64))
	}
	fn report_usage(n: u32, ) -> Weight {
		Weight::from_parts(10_000_000, 0)
			.saturating_add(Weight::from_parts(100_000_000, 9000).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().reads((7_u64).saturating_mul(n.into())))
			.saturating_add(T::DbWeight::get().writes((6_u64).saturating_mul(n.into())))
	}
	fn settle() -> Weight {
		Weight::from_parts(120_000_000, 9000)
			.saturating_add(T::DbWeight::get().reads(8_u64))
			.saturating_add(T::DbWeight::get().writes(8_u64))
	}
	fn set_protocol_fee() -> Weight {
		Weight::from_parts(10_000_000, 0)
			.saturating_add(T::DbWeight::get().writes(1_u64))
	}
	fn on_initialize(n: u32, ) -> Weight {
		Weight::from_parts(5_000_000, 3500)
			.saturating_add(Weight::from_parts(100_000_000, 9000).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().reads(1_u64))
			.saturating_add(T::DbWeight::get().writes(1_u64))
			.saturating_add(T::DbWeight::get().reads((7_u64).saturating_mul(n.into())))
			.saturating_add(T::DbWeight::get().writes((7_u64).saturating_mul(n.into())))
	}
}

/// The same with ParityDB costs, for tests and mock runtimes.
impl WeightInfo for () {
	fn create_deployment() -> Weight { Weight::from_parts(80_000_000, 6000) }
	fn accept_deployment() -> Weight { Weight::from_parts(40_000_000, 6000) }
	fn close_deployment() -> Weight { Weight::from_parts(120_000_000, 9000) }
	fn top_up() -> Weight { Weight::from_parts(120_000_000, 9000) }
	fn update_manifest() -> Weight { Weight::from_parts(20_000_000, 3500) }
	fn report_usage(n: u32, ) -> Weight { Weight::from_parts(100_000_000, 9000).saturating_mul(n.into()) }
	fn settle() -> Weight { Weight::from_parts(120_000_000, 9000) }
	fn set_protocol_fee() -> Weight { Weight::from_parts(10_000_000, 0) }
	fn on_initialize(n: u32, ) -> Weight { Weight::from_parts(100_000_000, 9000).saturating_mul(n.into()) }
}
