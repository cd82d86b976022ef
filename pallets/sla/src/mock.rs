//! A test runtime: balances and the SLA pallet, with a recording slasher, a provider list and
//! a deal book standing in for provider staking, the registry and the market (their own tests
//! cover them; the runtime tests run all of them together).

use crate::{self as pallet_sla, *};
use core::cell::RefCell;
use frame_support::{
	derive_impl, parameter_types,
	traits::{ConstU32, ConstU64, Hooks},
};
use frame_system::EnsureRoot;
use podchain_primitives::SlashOutcome;
use sp_runtime::{
	testing::{TestXt, UintAuthorityId},
	BuildStorage, Perbill, Permill,
};
use std::collections::BTreeMap;

type Block = frame_system::mocking::MockBlock<Test>;
pub type AccountId = u64;
pub type Balance = u128;
pub type Extrinsic = TestXt<RuntimeCall, ()>;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		Balances: pallet_balances,
		Sla: pallet_sla,
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

impl<LocalCall> frame_system::offchain::CreateTransactionBase<LocalCall> for Test
where
	RuntimeCall: From<LocalCall>,
{
	type RuntimeCall = RuntimeCall;
	type Extrinsic = Extrinsic;
}

impl<LocalCall> frame_system::offchain::CreateBare<LocalCall> for Test
where
	RuntimeCall: From<LocalCall>,
{
	fn create_bare(call: Self::RuntimeCall) -> Self::Extrinsic {
		Extrinsic::new_bare(call)
	}
}

/// Blocks per probe window in tests.
pub const PROBE_WINDOW: u32 = 10;
/// Most window ends in one block's queue.
pub const MAX_DUE: u32 = 2;
/// Most window ends in the overflow.
pub const MAX_OVERFLOW: u32 = 3;
pub const PROVIDER: AccountId = 1;
pub const OTHER_PROVIDER: AccountId = 2;
pub const PUBLISHER: AccountId = 10;
pub const STRANGER: AccountId = 20;

parameter_types! {
	pub const Surcharge: Perbill = Perbill::from_percent(10);
	pub const RecentWeight: Permill = Permill::from_percent(20);
}

impl pallet_sla::Config for Test {
	type Currency = Balances;
	type AuthorityId = UintAuthorityId;
	type Slasher = RecordingSlasher;
	type Targets = ProviderList;
	type Deals = DealBook;
	type ProbeWindow = ConstU32<PROBE_WINDOW>;
	type MaxProbers = ConstU32<8>;
	type MaxProbesPerBlock = ConstU32<4>;
	type MaxSampledDeals = ConstU32<2>;
	type MaxSlaDealsPerProvider = ConstU32<4>;
	type ProbeTimeoutMillis = ConstU64<2000>;
	type QuarantineAfter = ConstU32<3>;
	type ReputationWeight = RecentWeight;
	type PenaltySurcharge = Surcharge;
	type MaxDealsPerHeartbeat = ConstU32<4>;
	type MaxDuePerBlock = ConstU32<MAX_DUE>;
	type MaxDueOverflow = ConstU32<MAX_OVERFLOW>;
	type UnsignedPriority = ConstU64<{ 1 << 20 }>;
	type ProberOrigin = EnsureRoot<AccountId>;
	type WeightInfo = ();
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = ProviderList;
}

#[cfg(feature = "runtime-benchmarks")]
impl crate::BenchmarkHelper<AccountId> for ProviderList {
	fn setup_provider(who: &AccountId) {
		add_provider(*who);
		STAKE.with(|s| s.borrow_mut().insert(*who, 1_000_000));
	}

	fn setup_deal(id: DealId) {
		name_deal(id);
		set_paid(id, 1_000_000_000);
	}
}

thread_local! {
	/// Each provider's stake; slashes take from it.
	pub static STAKE: RefCell<BTreeMap<AccountId, Balance>> = const { RefCell::new(BTreeMap::new()) };
	/// Every slash: (provider, amount asked, victim, compensation asked, outcome).
	pub static SLASHES: RefCell<Vec<(AccountId, Balance, AccountId, Balance, SlashOutcome<Balance>)>> =
		const { RefCell::new(Vec::new()) };
	/// Registered providers and their gateway URLs, in storage order.
	pub static PROVIDERS: RefCell<BTreeMap<AccountId, Vec<u8>>> = const { RefCell::new(BTreeMap::new()) };
	/// Deals' registered names.
	pub static NAMES: RefCell<BTreeMap<DealId, Vec<u8>>> = const { RefCell::new(BTreeMap::new()) };
	/// What each deal's publisher has paid so far, where a test sets it.
	pub static PAID: RefCell<BTreeMap<DealId, Balance>> = const { RefCell::new(BTreeMap::new()) };
}

/// Ingress domain of every provider in tests.
pub const INGRESS_DOMAIN: &str = "apps.test";

/// The names of [`NAMES`]; the payments of [`PAID`], or for a deal a test has not set, 1,000
/// per block so far (plenty for any window's penalty in tests).
pub struct DealBook;
impl SlaDealInfo<Balance> for DealBook {
	fn name(id: DealId) -> Option<Vec<u8>> {
		NAMES.with(|n| n.borrow().get(&id).cloned())
	}

	fn paid(id: DealId) -> Balance {
		PAID.with(|p| p.borrow().get(&id).copied())
			.unwrap_or_else(|| Balance::from(System::block_number()) * 1_000)
	}
}

/// Name of deal `id` in tests.
pub fn name_of(id: DealId) -> String {
	format!("deal{id}")
}

/// Registers deal `id`'s name.
pub fn name_deal(id: DealId) {
	NAMES.with(|n| n.borrow_mut().insert(id, name_of(id).into_bytes()));
}

/// Releases deal `id`'s name.
pub fn unname_deal(id: DealId) {
	NAMES.with(|n| n.borrow_mut().remove(&id));
}

/// Sets what deal `id`'s publisher has paid in all.
pub fn set_paid(id: DealId, amount: Balance) {
	PAID.with(|p| p.borrow_mut().insert(id, amount));
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

/// The registered providers of [`PROVIDERS`].
pub struct ProviderList;
impl ProbeTargets<AccountId> for ProviderList {
	fn gateway(provider: &AccountId) -> Option<(Vec<u8>, Vec<u8>)> {
		PROVIDERS
			.with(|p| p.borrow().get(provider).cloned())
			.map(|url| (url, INGRESS_DOMAIN.as_bytes().to_vec()))
	}
}

/// Gateway URL of provider `who` in tests.
pub fn url_of(who: AccountId) -> String {
	format!("http://127.0.0.1:{}/", 9000 + who)
}

/// Registers `who` in the provider list.
pub fn add_provider(who: AccountId) {
	PROVIDERS.with(|p| p.borrow_mut().insert(who, url_of(who).into_bytes()));
}

pub fn slashes() -> Vec<(AccountId, Balance, AccountId, Balance, SlashOutcome<Balance>)> {
	SLASHES.with(|s| s.borrow().clone())
}

pub fn stake_of(who: AccountId) -> Balance {
	STAKE.with(|s| s.borrow().get(&who).copied().unwrap_or_default())
}

/// Externalities with `probers` prober keys (UintAuthorityId 1..=probers), two registered
/// providers with 10_000 stake each, at block 1; runs the pallet's invariants after the test.
pub fn build_and_execute_with(probers: u64, test: impl FnOnce()) {
	let mut ext = new_test_ext(probers);
	ext.execute_with(|| {
		test();
		Sla::do_try_state().expect("SLA invariants hold");
	});
}

/// [`build_and_execute_with`] three probers.
pub fn build_and_execute(test: impl FnOnce()) {
	build_and_execute_with(3, test)
}

pub fn new_test_ext(probers: u64) -> sp_io::TestExternalities {
	let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	pallet_sla::GenesisConfig::<Test> {
		probers: (1..=probers).map(UintAuthorityId).collect(),
		allow_local_targets: true,
	}
	.assimilate_storage(&mut storage)
	.unwrap();
	let mut ext: sp_io::TestExternalities = storage.into();
	ext.execute_with(|| {
		STAKE.with(|s| {
			let mut s = s.borrow_mut();
			s.clear();
			s.insert(PROVIDER, 10_000);
			s.insert(OTHER_PROVIDER, 10_000);
		});
		SLASHES.with(|s| s.borrow_mut().clear());
		PROVIDERS.with(|p| p.borrow_mut().clear());
		NAMES.with(|n| n.borrow_mut().clear());
		PAID.with(|p| p.borrow_mut().clear());
		add_provider(PROVIDER);
		add_provider(OTHER_PROVIDER);
		System::set_block_number(1);
	});
	ext
}

/// Advances to block `n`, running the pallet's hook on each block.
pub fn run_to_block(n: u64) {
	while System::block_number() < n {
		let next = System::block_number() + 1;
		System::set_block_number(next);
		Sla::on_initialize(next);
	}
}

/// First block of probe window `window`.
pub fn block_of_window(window: u32) -> u64 {
	u64::from(window * PROBE_WINDOW)
}
