//! A test runtime with balances and the registry, and a fake market to count open deals.

use crate::{self as pallet_registry};
use core::cell::RefCell;
use frame_support::{derive_impl, parameter_types, traits::ConstU32};
use frame_system::EnsureRoot;
use sp_runtime::{BuildStorage, Permill};

type Block = frame_system::mocking::MockBlock<Test>;
pub type AccountId = u64;
pub type Balance = u128;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		Balances: pallet_balances,
		Registry: pallet_registry,
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
	type RuntimeHoldReason = RuntimeHoldReason;
}

parameter_types! {
	pub const RegistrationDeposit: Balance = DEPOSIT;
	/// One year of seconds.
	pub const PriceHorizon: u32 = 365 * 24 * 3600;
}

thread_local! {
	static OPEN_DEALS: RefCell<Vec<(AccountId, u32)>> = const { RefCell::new(Vec::new()) };
	static RENTED: RefCell<Vec<AccountId>> = const { RefCell::new(Vec::new()) };
	static STANDING: RefCell<Vec<(AccountId, bool, Permill)>> = const { RefCell::new(Vec::new()) };
}

/// Stands in for the SLA pallet: tests set providers' quarantine and reputation.
pub struct FakeSla;
impl FakeSla {
	pub fn set(provider: AccountId, quarantined: bool, reputation: Permill) {
		STANDING.with(|s| {
			let mut s = s.borrow_mut();
			s.retain(|(p, ..)| *p != provider);
			s.push((provider, quarantined, reputation));
		});
	}

	fn get(provider: &AccountId) -> (bool, Permill) {
		STANDING.with(|s| {
			s.borrow()
				.iter()
				.find(|(p, ..)| p == provider)
				.map_or((false, Permill::one()), |(_, q, r)| (*q, *r))
		})
	}
}

impl crate::ProviderStanding<AccountId> for FakeSla {
	fn is_quarantined(provider: &AccountId) -> bool {
		Self::get(provider).0
	}

	fn reputation(provider: &AccountId) -> Permill {
		Self::get(provider).1
	}
}

/// Stands in for the market: tests set how many open deals a provider has.
pub struct FakeMarket;
impl FakeMarket {
	pub fn set_rented(provider: AccountId) {
		RENTED.with(|r| r.borrow_mut().push(provider));
	}

	pub fn set_open_deals(provider: AccountId, deals: u32) {
		OPEN_DEALS.with(|d| {
			let mut d = d.borrow_mut();
			d.retain(|(p, _)| *p != provider);
			d.push((provider, deals));
		});
	}
}
impl crate::ProviderDeals<AccountId> for FakeMarket {
	fn open_deals(provider: &AccountId) -> u32 {
		OPEN_DEALS.with(|d| d.borrow().iter().find(|(p, _)| p == provider).map_or(0, |(_, n)| *n))
	}

	fn is_rented(provider: &AccountId) -> bool {
		RENTED.with(|r| r.borrow().contains(provider))
	}
}

impl pallet_registry::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type RegistrationDeposit = RegistrationDeposit;
	type MaxProviders = ConstU32<3>;
	type PriceHorizonSeconds = PriceHorizon;
	type AttestationOrigin = EnsureRoot<AccountId>;
	type Deals = FakeMarket;
	type Standing = FakeSla;
	type WeightInfo = ();
}

pub const DEPOSIT: Balance = 1_000;
pub const ALICE: AccountId = 1;
pub const BOB: AccountId = 2;
pub const CHARLIE: AccountId = 3;
pub const DAVE: AccountId = 4;
/// Has too little to cover the deposit.
pub const PAUPER: AccountId = 9;

/// Externalities with funded accounts; runs the pallet's invariants after the test body.
pub fn build_and_execute(test: impl FnOnce()) {
	let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	pallet_balances::GenesisConfig::<Test> {
		balances: vec![
			(ALICE, 1_000_000),
			(BOB, 1_000_000),
			(CHARLIE, 1_000_000),
			(DAVE, 1_000_000),
			(PAUPER, 500),
		],
		..Default::default()
	}
	.assimilate_storage(&mut storage)
	.unwrap();
	let mut ext: sp_io::TestExternalities = storage.into();
	ext.execute_with(|| {
		System::set_block_number(1);
		test();
		Registry::do_try_state().expect("registry invariants hold");
	});
}

/// Build test externalities for the benchmark test suite.
#[cfg(feature = "runtime-benchmarks")]
pub fn build_ext_for_benchmarks() -> sp_io::TestExternalities {
	frame_system::GenesisConfig::<Test>::default().build_storage().unwrap().into()
}
