//! A test runtime: balances and the storage-proofs pallet, with a deal list and a recording
//! slasher standing in for the SLA pallet and provider staking (their own tests cover them;
//! the runtime tests run all of them together).

use crate::{self as pallet_storage_proofs, *};
use core::cell::RefCell;
use frame_support::{
	derive_impl,
	traits::{ConstU32, ConstU64, Hooks},
};
use podchain_primitives::{SlaParties, SlaTerms, SlashOutcome};
use sp_runtime::{traits::Hash as _, BuildStorage, Permill};
use std::collections::BTreeMap;

type Block = frame_system::mocking::MockBlock<Test>;
pub type AccountId = u64;
pub type Balance = u128;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		Balances: pallet_balances,
		StorageProofs: pallet_storage_proofs,
	}
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
	type AccountData = pallet_balances::AccountData<Balance>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
	type Balance = Balance;
	type AccountStore = System;
}

pub const PROVIDER: AccountId = 1;
pub const OTHER_PROVIDER: AccountId = 2;
pub const PUBLISHER: AccountId = 10;
pub const STRANGER: AccountId = 20;
/// The deal of [`PUBLISHER`] on [`PROVIDER`].
pub const DEAL: DealId = 7;
/// A deal of [`PUBLISHER`] on [`OTHER_PROVIDER`].
pub const OTHER_DEAL: DealId = 8;
/// Penalty of a failed proof on the test deals.
pub const PENALTY: Balance = 100;
pub const COMMITMENT_PERIOD: u64 = 20;
pub const CHALLENGE_PERIOD: u64 = 30;
pub const CHALLENGE_DEADLINE: u64 = 5;
pub const CHUNKS: u32 = 4;
pub const MAX_DUE: u32 = 2;

impl pallet_storage_proofs::Config for Test {
	type Currency = Balances;
	type Deals = DealList;
	type Slasher = RecordingSlasher;
	type CommitmentPeriod = ConstU64<COMMITMENT_PERIOD>;
	type ChallengePeriod = ConstU64<CHALLENGE_PERIOD>;
	type ChallengeDeadline = ConstU64<CHALLENGE_DEADLINE>;
	type ChunksPerChallenge = ConstU32<CHUNKS>;
	type MaxVolumesPerDeal = ConstU32<2>;
	type MaxDuePerBlock = ConstU32<MAX_DUE>;
	type WeightInfo = ();
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = DealList;
}

thread_local! {
	/// Each provider's stake; slashes take from it.
	pub static STAKE: RefCell<BTreeMap<AccountId, Balance>> = const { RefCell::new(BTreeMap::new()) };
	/// Every slash: (provider, amount asked, victim, compensation asked, outcome).
	pub static SLASHES: RefCell<Vec<(AccountId, Balance, AccountId, Balance, SlashOutcome<Balance>)>> =
		const { RefCell::new(Vec::new()) };
	/// Running SLA deals: (publisher, provider, penalty).
	pub static SLA_DEALS: RefCell<BTreeMap<DealId, (AccountId, AccountId, Balance)>> =
		const { RefCell::new(BTreeMap::new()) };
	/// Each deal's penalty budget left (none set: as much as asked), and what is held and
	/// spent of it, as the SLA pallet keeps them.
	pub static BUDGETS: RefCell<BTreeMap<DealId, Balance>> = const { RefCell::new(BTreeMap::new()) };
	pub static HELD: RefCell<BTreeMap<DealId, (Balance, Balance)>> =
		const { RefCell::new(BTreeMap::new()) };
}

/// Takes from [`STAKE`], compensation first, and records each slash.
pub struct RecordingSlasher;
impl StakeSlasher<AccountId, Balance> for RecordingSlasher {
	fn slash(
		provider: &AccountId,
		amount: Balance,
		victim: &AccountId,
		compensation: Balance,
	) -> SlashOutcome<Balance> {
		let slashed = STAKE.with(|s| {
			let mut s = s.borrow_mut();
			let stake = s.entry(*provider).or_default();
			let taken = amount.min(*stake);
			*stake -= taken;
			taken
		});
		let compensated = slashed.min(compensation);
		let outcome = SlashOutcome { slashed, compensated, to_treasury: slashed - compensated };
		SLASHES.with(|s| s.borrow_mut().push((*provider, amount, *victim, compensation, outcome)));
		outcome
	}
}

/// The deals of [`SLA_DEALS`].
pub struct DealList;
impl SlaDeals<AccountId, Balance> for DealList {
	fn sla_deal(id: DealId) -> Option<SlaParties<AccountId, Balance>> {
		SLA_DEALS.with(|d| {
			d.borrow().get(&id).map(|(publisher, provider, penalty)| SlaParties {
				publisher: *publisher,
				provider: *provider,
				penalty: *penalty,
			})
		})
	}

	fn hold_penalty(id: DealId, want: Balance) -> Balance {
		if <Self as SlaDeals<_, _>>::sla_deal(id).is_none() {
			return 0;
		}
		let held = BUDGETS.with(|b| {
			let mut budgets = b.borrow_mut();
			match budgets.get_mut(&id) {
				Some(left) => {
					let held = want.min(*left);
					*left -= held;
					held
				}
				None => want,
			}
		});
		HELD.with(|h| h.borrow_mut().entry(id).or_default().0 += held);
		held
	}

	fn release_penalty(id: DealId, held: Balance, spent: Balance) {
		if <Self as SlaDeals<_, _>>::sla_deal(id).is_none() {
			return;
		}
		BUDGETS.with(|b| {
			if let Some(left) = b.borrow_mut().get_mut(&id) {
				*left += held - spent.min(held);
			}
		});
		HELD.with(|h| {
			let mut all = h.borrow_mut();
			let entry = all.entry(id).or_default();
			entry.0 -= held;
			entry.1 += spent.min(held);
		});
	}
}

/// Limits deal `id`'s penalty budget to `left`.
pub fn set_budget(id: DealId, left: Balance) {
	BUDGETS.with(|b| b.borrow_mut().insert(id, left));
}

/// What deal `id` has held and spent of its penalty budget.
pub fn held_and_spent(id: DealId) -> (Balance, Balance) {
	HELD.with(|h| h.borrow().get(&id).copied().unwrap_or_default())
}

#[cfg(feature = "runtime-benchmarks")]
impl crate::BenchmarkHelper<AccountId> for DealList {
	fn sla_deal(id: DealId, publisher: &AccountId, provider: &AccountId) {
		SLA_DEALS.with(|d| d.borrow_mut().insert(id, (*publisher, *provider, PENALTY)));
		STAKE.with(|s| s.borrow_mut().insert(*provider, 1_000_000));
	}
}

/// Starts SLA deal `id` of `publisher` on `provider`: the SLA side and this pallet.
pub fn start_deal(id: DealId, publisher: AccountId, provider: AccountId) {
	SLA_DEALS.with(|d| d.borrow_mut().insert(id, (publisher, provider, PENALTY)));
	let terms = SlaTerms {
		uptime_target: Permill::from_percent(99),
		window_blocks: 10,
		penalty_per_window: PENALTY,
		health: podchain_primitives::HealthCheck::root_ok(),
	};
	<StorageProofs as SlaTracker<_, _>>::deal_started(id, &publisher, &provider, &terms)
		.expect("the pallet tracks every deal");
}

/// Ends deal `id`, as the market tells the SLA side.
pub fn end_deal(id: DealId) {
	SLA_DEALS.with(|d| d.borrow_mut().remove(&id));
	<StorageProofs as SlaTracker<AccountId, Balance>>::deal_ended(id, 0);
}

pub fn slashes() -> Vec<(AccountId, Balance, AccountId, Balance, SlashOutcome<Balance>)> {
	SLASHES.with(|s| s.borrow().clone())
}

pub fn stake_of(who: AccountId) -> Balance {
	STAKE.with(|s| s.borrow().get(&who).copied().unwrap_or_default())
}

/// Externalities at block 1 with two providers of 10_000 stake each and no deals.
pub fn new_test_ext() -> sp_io::TestExternalities {
	let storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	let mut ext: sp_io::TestExternalities = storage.into();
	ext.execute_with(|| {
		STAKE.with(|s| {
			let mut s = s.borrow_mut();
			s.clear();
			s.insert(PROVIDER, 10_000);
			s.insert(OTHER_PROVIDER, 10_000);
		});
		SLASHES.with(|s| s.borrow_mut().clear());
		SLA_DEALS.with(|d| d.borrow_mut().clear());
		System::set_block_number(1);
	});
	ext
}

/// [`new_test_ext`] with [`DEAL`] and [`OTHER_DEAL`] running; checks the pallet's invariants
/// after the test.
pub fn build_and_execute(test: impl FnOnce()) {
	new_test_ext().execute_with(|| {
		start_deal(DEAL, PUBLISHER, PROVIDER);
		start_deal(OTHER_DEAL, PUBLISHER, OTHER_PROVIDER);
		test();
		StorageProofs::do_try_state().expect("storage-proofs invariants hold");
	});
}

/// Advances to block `n`: each block's parent hash is recorded (as block initialisation does)
/// and the pallet's hook runs.
pub fn run_to_block(n: u64) {
	while System::block_number() < n {
		let now = System::block_number();
		frame_system::BlockHash::<Test>::insert(
			now,
			<Test as frame_system::Config>::Hashing::hash(&now.to_le_bytes()),
		);
		System::set_block_number(now + 1);
		StorageProofs::on_initialize(now + 1);
	}
}
