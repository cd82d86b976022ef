//! Weights for `pallet_sla`.
//!
//! Placeholder until benchmarked: the calls and hook changed with the probes of tenants'
//! health checks (per-deal verdicts, bounded credits, the due overflow). The values below are
//! hand-set from the last measured run of the previous calls, scaled for the new storage
//! reads and writes and rounded up; regenerate with `scripts/benchmark.sh`.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens)]
#![allow(unused_imports)]
#![allow(missing_docs)]

use frame_support::{traits::Get, weights::{Weight, constants::ParityDbWeight}};
use core::marker::PhantomData;

/// Weight of each call of `pallet_sla`.
pub trait WeightInfo {
	fn submit_probe(n: u32, ) -> Weight;
	fn heartbeat(n: u32, ) -> Weight;
	fn offer_terms() -> Weight;
	fn settle_window(n: u32, ) -> Weight;
	fn set_probers(n: u32, ) -> Weight;
	fn set_penalty_bill_multiple() -> Weight;
	fn on_initialize(n: u32, ) -> Weight;
}

/// Weights with database costs taken from the runtime.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	/// Placeholder until benchmarked.
	/// Reads: Probers, Records, ProviderDeals, System::BlockHash; per verdict Tracked and the
	/// market's DeploymentNames (and Due when the deal is queued again). Writes: Records; per
	/// verdict Tracked (and Due).
	fn submit_probe(n: u32, ) -> Weight {
		Weight::from_parts(140_000_000, 12_000)
			.saturating_add(Weight::from_parts(12_000_000, 0).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().reads((3_u64).saturating_mul(n.into())))
			.saturating_add(T::DbWeight::get().writes(1_u64))
			.saturating_add(T::DbWeight::get().writes((2_u64).saturating_mul(n.into())))
			.saturating_add(Weight::from_parts(0, 9_000).saturating_mul(n.into()))
	}
	/// Placeholder until benchmarked.
	/// Per deal: Tracked (r/w), and Due (r/w) when it is queued again.
	fn heartbeat(n: u32, ) -> Weight {
		Weight::from_parts(15_000_000, 1_000)
			.saturating_add(Weight::from_parts(8_000_000, 0).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().reads((2_u64).saturating_mul(n.into())))
			.saturating_add(T::DbWeight::get().writes((2_u64).saturating_mul(n.into())))
			.saturating_add(Weight::from_parts(0, 6_000).saturating_mul(n.into()))
	}
	/// Storage: `Registry::Providers` (r:1 w:0), `Sla::Offers` (r:0 w:1).
	fn offer_terms() -> Weight {
		Weight::from_parts(17_376_000, 5215)
			.saturating_add(T::DbWeight::get().reads(1_u64))
			.saturating_add(T::DbWeight::get().writes(1_u64))
	}
	/// Placeholder until benchmarked.
	/// Tracked, Probers, PenaltyBillMultiple, the market's Deployments, the slash (staking
	/// ledger, holds, accounts, total stake) and up to 17 due queues plus the overflow; `n`
	/// windows settled, each a read of the deal's bits and an event.
	fn settle_window(n: u32, ) -> Weight {
		Weight::from_parts(180_000_000, 60_000)
			.saturating_add(Weight::from_parts(1_500_000, 0).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().reads(29_u64))
			.saturating_add(T::DbWeight::get().writes(9_u64))
	}
	/// Storage: `Sla::Probers` (r:0 w:1).
	fn set_probers(n: u32, ) -> Weight {
		Weight::from_parts(24_847_917, 0)
			.saturating_add(Weight::from_parts(246_056, 0).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().writes(1_u64))
	}
	/// Placeholder until benchmarked. Storage: `Sla::PenaltyBillMultiple` (r:0 w:1).
	fn set_penalty_bill_multiple() -> Weight {
		Weight::from_parts(10_000_000, 0)
			.saturating_add(T::DbWeight::get().writes(1_u64))
	}
	/// Placeholder until benchmarked.
	/// The overflow and the block's queue, then per item what `settle_window` of one window
	/// costs, with a slash of a different provider each.
	fn on_initialize(n: u32, ) -> Weight {
		Weight::from_parts(20_000_000, 4_000)
			.saturating_add(Weight::from_parts(30_000_000, 0).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().reads((29_u64).saturating_mul(n.into())))
			.saturating_add(T::DbWeight::get().writes(2_u64))
			.saturating_add(T::DbWeight::get().writes((9_u64).saturating_mul(n.into())))
			.saturating_add(Weight::from_parts(0, 12_000).saturating_mul(n.into()))
	}
}

/// The same weights with ParityDB costs, for tests and mock runtimes.
impl WeightInfo for () {
	/// Placeholder until benchmarked.
	/// Reads: Probers, Records, ProviderDeals, System::BlockHash; per verdict Tracked and the
	/// market's DeploymentNames (and Due when the deal is queued again). Writes: Records; per
	/// verdict Tracked (and Due).
	fn submit_probe(n: u32, ) -> Weight {
		Weight::from_parts(140_000_000, 12_000)
			.saturating_add(Weight::from_parts(12_000_000, 0).saturating_mul(n.into()))
			.saturating_add(ParityDbWeight::get().reads(4_u64))
			.saturating_add(ParityDbWeight::get().reads((3_u64).saturating_mul(n.into())))
			.saturating_add(ParityDbWeight::get().writes(1_u64))
			.saturating_add(ParityDbWeight::get().writes((2_u64).saturating_mul(n.into())))
			.saturating_add(Weight::from_parts(0, 9_000).saturating_mul(n.into()))
	}
	/// Placeholder until benchmarked.
	/// Per deal: Tracked (r/w), and Due (r/w) when it is queued again.
	fn heartbeat(n: u32, ) -> Weight {
		Weight::from_parts(15_000_000, 1_000)
			.saturating_add(Weight::from_parts(8_000_000, 0).saturating_mul(n.into()))
			.saturating_add(ParityDbWeight::get().reads((2_u64).saturating_mul(n.into())))
			.saturating_add(ParityDbWeight::get().writes((2_u64).saturating_mul(n.into())))
			.saturating_add(Weight::from_parts(0, 6_000).saturating_mul(n.into()))
	}
	/// Storage: `Registry::Providers` (r:1 w:0), `Sla::Offers` (r:0 w:1).
	fn offer_terms() -> Weight {
		Weight::from_parts(17_376_000, 5215)
			.saturating_add(ParityDbWeight::get().reads(1_u64))
			.saturating_add(ParityDbWeight::get().writes(1_u64))
	}
	/// Placeholder until benchmarked.
	/// Tracked, Probers, PenaltyBillMultiple, the market's Deployments, the slash (staking
	/// ledger, holds, accounts, total stake) and up to 17 due queues plus the overflow; `n`
	/// windows settled, each a read of the deal's bits and an event.
	fn settle_window(n: u32, ) -> Weight {
		Weight::from_parts(180_000_000, 60_000)
			.saturating_add(Weight::from_parts(1_500_000, 0).saturating_mul(n.into()))
			.saturating_add(ParityDbWeight::get().reads(29_u64))
			.saturating_add(ParityDbWeight::get().writes(9_u64))
	}
	/// Storage: `Sla::Probers` (r:0 w:1).
	fn set_probers(n: u32, ) -> Weight {
		Weight::from_parts(24_847_917, 0)
			.saturating_add(Weight::from_parts(246_056, 0).saturating_mul(n.into()))
			.saturating_add(ParityDbWeight::get().writes(1_u64))
	}
	/// Placeholder until benchmarked. Storage: `Sla::PenaltyBillMultiple` (r:0 w:1).
	fn set_penalty_bill_multiple() -> Weight {
		Weight::from_parts(10_000_000, 0)
			.saturating_add(ParityDbWeight::get().writes(1_u64))
	}
	/// Placeholder until benchmarked.
	/// The overflow and the block's queue, then per item what `settle_window` of one window
	/// costs, with a slash of a different provider each.
	fn on_initialize(n: u32, ) -> Weight {
		Weight::from_parts(20_000_000, 4_000)
			.saturating_add(Weight::from_parts(30_000_000, 0).saturating_mul(n.into()))
			.saturating_add(ParityDbWeight::get().reads(2_u64))
			.saturating_add(ParityDbWeight::get().reads((29_u64).saturating_mul(n.into())))
			.saturating_add(ParityDbWeight::get().writes(2_u64))
			.saturating_add(ParityDbWeight::get().writes((9_u64).saturating_mul(n.into())))
			.saturating_add(Weight::from_parts(0, 12_000).saturating_mul(n.into()))
	}
}
