//! Storage proofs: the pallet's configuration, and the glue that lets it learn about SLA deals
//! without the SLA pallet and the storage-proofs pallet knowing each other.
//!
//! - The SLA pallet tells the storage-proofs pallet a deal's publisher, provider and penalty,
//!   and holds failed proofs' penalties in the same bill-bounded budget as missed windows.
//! - [`SlaAndStorageProofs`] is what the market tells of a deal's SLA life: it forwards to the
//!   SLA pallet, then to the storage-proofs pallet (which removes an ended deal's commitments).

use crate::{AccountId, Balance, BlockNumber, Runtime};
use frame_support::{parameter_types, traits::ConstU32};
use podchain_primitives::{DealId, SlaTerms, SlaTracker};
use sp_runtime::DispatchResult;

parameter_types! {
	/// A volume may be committed anew once an hour at 6 s blocks (ten minutes on a dev chain).
	pub const CommitmentPeriod: BlockNumber = 600;
	/// A publisher may challenge a deal once every six minutes at 6 s blocks.
	pub const ChallengePeriod: BlockNumber = 60;
	/// Three minutes at 6 s blocks to answer: the agent answers from finalized blocks.
	pub const ChallengeDeadline: BlockNumber = 30;
}

impl pallet_storage_proofs::Config for Runtime {
	type Currency = crate::Balances;
	type Deals = crate::Sla;
	type Slasher = crate::ProviderStaking;
	type CommitmentPeriod = CommitmentPeriod;
	type ChallengePeriod = ChallengePeriod;
	type ChallengeDeadline = ChallengeDeadline;
	/// An answer carries 8 chunks of 4 KiB and their paths: about 41 KiB at most.
	type ChunksPerChallenge = ConstU32<8>;
	type MaxVolumesPerDeal = ConstU32<16>;
	type MaxDuePerBlock = ConstU32<64>;
	type WeightInfo = pallet_storage_proofs::weights::SubstrateWeight<Runtime>;
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = StorageProofsBenchmarkHelper;
}

/// The SLA side of a deal's life as the market tells it: the SLA pallet first, then the
/// storage-proofs pallet.
pub struct SlaAndStorageProofs;

impl SlaTracker<AccountId, Balance> for SlaAndStorageProofs {
	fn offers(provider: &AccountId, terms: &SlaTerms<Balance>) -> bool {
		<crate::Sla as SlaTracker<_, _>>::offers(provider, terms)
	}

	fn deal_started(
		id: DealId,
		publisher: &AccountId,
		provider: &AccountId,
		terms: &SlaTerms<Balance>,
	) -> DispatchResult {
		<crate::Sla as SlaTracker<_, _>>::deal_started(id, publisher, provider, terms)?;
		<crate::StorageProofs as SlaTracker<_, _>>::deal_started(id, publisher, provider, terms)
	}

	fn deal_ended(id: DealId, paid: Balance) {
		<crate::Sla as SlaTracker<AccountId, Balance>>::deal_ended(id, paid);
		<crate::StorageProofs as SlaTracker<AccountId, Balance>>::deal_ended(id, paid);
	}

	fn manifest_pending(id: DealId, pending: bool) {
		<crate::Sla as SlaTracker<AccountId, Balance>>::manifest_pending(id, pending);
	}
}

/// Registers and bonds benchmark providers and starts their SLA deals.
#[cfg(feature = "runtime-benchmarks")]
pub struct StorageProofsBenchmarkHelper;

#[cfg(feature = "runtime-benchmarks")]
impl pallet_storage_proofs::BenchmarkHelper<AccountId> for StorageProofsBenchmarkHelper {
	fn sla_deal(id: DealId, publisher: &AccountId, provider: &AccountId) {
		use crate::currency::POD;
		use frame_support::traits::fungible::Mutate;
		let _ = crate::Balances::mint_into(provider, 1_000 * POD);
		let _ = crate::Balances::mint_into(publisher, 1_000 * POD);
		<super::RegistryBenchmarkHelper as pallet_market::BenchmarkHelper<AccountId>>::register_provider(
			provider,
		);
		let terms = SlaTerms {
			uptime_target: sp_runtime::Permill::from_percent(99),
			window_blocks: super::SlaProbeWindow::get(),
			penalty_per_window: POD,
			health: podchain_primitives::HealthCheck::root_ok(),
		};
		<crate::Sla as SlaTracker<_, _>>::deal_started(id, publisher, provider, &terms)
			.expect("a fresh provider tracks no SLA deal yet");
	}
}
