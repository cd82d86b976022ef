//! Weights for `pallet_sla`. Placeholder until `scripts/benchmark.sh` generates it.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens)]
#![allow(unused_imports)]
#![allow(missing_docs)]

use frame_support::{traits::Get, weights::{Weight, constants::ParityDbWeight}};
use core::marker::PhantomData;

/// Weight of each call of `pallet_sla`.
pub trait WeightInfo {
	fn submit_probe() -> Weight;
	fn heartbeat(n: u32, ) -> Weight;
	fn offer_terms() -> Weight;
	fn settle_window() -> Weight;
	fn commit_volume() -> Weight;
	fn challenge_storage() -> Weight;
	fn answer_challenge() -> Weight;
	fn expire_challenge() -> Weight;
	fn set_probers(n: u32, ) -> Weight;
	fn on_initialize(n: u32, ) -> Weight;
}

/// Measured weights, with database costs taken from the runtime.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	fn submit_probe() -> Weight { Weight::from_parts(50_000_000, 4000).saturating_add(T::DbWeight::get().reads_writes(4, 1)) }
	fn heartbeat(n: u32, ) -> Weight { Weight::from_parts(10_000_000, 0).saturating_add(Weight::from_parts(5_000_000, 2600).saturating_mul(n.into())).saturating_add(T::DbWeight::get().reads_writes(n.into(), n.into())) }
	fn offer_terms() -> Weight { Weight::from_parts(20_000_000, 4000).saturating_add(T::DbWeight::get().reads_writes(1, 1)) }
	fn settle_window() -> Weight { Weight::from_parts(60_000_000, 8000).saturating_add(T::DbWeight::get().reads_writes(8, 6)) }
	fn commit_volume() -> Weight { Weight::from_parts(25_000_000, 4000).saturating_add(T::DbWeight::get().reads_writes(3, 2)) }
	fn challenge_storage() -> Weight { Weight::from_parts(30_000_000, 4000).saturating_add(T::DbWeight::get().reads_writes(4, 2)) }
	fn answer_challenge() -> Weight { Weight::from_parts(60_000_000, 8000).saturating_add(T::DbWeight::get().reads_writes(8, 6)) }
	fn expire_challenge() -> Weight { Weight::from_parts(60_000_000, 8000).saturating_add(T::DbWeight::get().reads_writes(8, 6)) }
	fn set_probers(n: u32, ) -> Weight { Weight::from_parts(10_000_000, 0).saturating_add(Weight::from_parts(100_000, 0).saturating_mul(n.into())).saturating_add(T::DbWeight::get().writes(1)) }
	fn on_initialize(n: u32, ) -> Weight { Weight::from_parts(5_000_000, 0).saturating_add(Weight::from_parts(60_000_000, 8000).saturating_mul(n.into())).saturating_add(T::DbWeight::get().reads_writes((8 * n + 1).into(), (6 * n + 1).into())) }
}

impl WeightInfo for () {
	fn submit_probe() -> Weight { Weight::from_parts(50_000_000, 4000).saturating_add(ParityDbWeight::get().reads_writes(4, 1)) }
	fn heartbeat(n: u32, ) -> Weight { Weight::from_parts(10_000_000, 0).saturating_add(Weight::from_parts(5_000_000, 2600).saturating_mul(n.into())) }
	fn offer_terms() -> Weight { Weight::from_parts(20_000_000, 4000) }
	fn settle_window() -> Weight { Weight::from_parts(60_000_000, 8000) }
	fn commit_volume() -> Weight { Weight::from_parts(25_000_000, 4000) }
	fn challenge_storage() -> Weight { Weight::from_parts(30_000_000, 4000) }
	fn answer_challenge() -> Weight { Weight::from_parts(60_000_000, 8000) }
	fn expire_challenge() -> Weight { Weight::from_parts(60_000_000, 8000) }
	fn set_probers(n: u32, ) -> Weight { Weight::from_parts(10_000_000, 0).saturating_add(Weight::from_parts(100_000, 0).saturating_mul(n.into())) }
	fn on_initialize(n: u32, ) -> Weight { Weight::from_parts(5_000_000, 0).saturating_add(Weight::from_parts(60_000_000, 8000).saturating_mul(n.into())) }
}
