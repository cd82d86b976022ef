//! A test runtime with balances and the registry, and a fake market to count open deals.

use crate::{self as pallet_registry, Collateral, QuoteError, TcbStatus, TeeType, VerifiedQuote};
use core::cell::RefCell;
use frame_support::{
	derive_impl, parameter_types,
	traits::{ConstU32, ConstU64},
};
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
	static NOW: RefCell<u64> = const { RefCell::new(START_TIME) };
	static QUOTE_VERDICT: RefCell<Result<VerifiedQuote, QuoteError>> =
		RefCell::new(Ok(sample_verified(&[0; 64])));
	static OPEN_DEALS: RefCell<Vec<(AccountId, u32)>> = const { RefCell::new(Vec::new()) };
	static RENTED: RefCell<Vec<AccountId>> = const { RefCell::new(Vec::new()) };
	static STANDING: RefCell<Vec<(AccountId, bool, Permill)>> = const { RefCell::new(Vec::new()) };
	static FORGOTTEN: RefCell<Vec<AccountId>> = const { RefCell::new(Vec::new()) };
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

	fn deregistered(provider: &AccountId) {
		STANDING.with(|s| s.borrow_mut().retain(|(p, ..)| p != provider));
		FORGOTTEN.with(|f| f.borrow_mut().push(*provider));
	}
}

impl FakeSla {
	/// Providers the registry told the SLA pallet to forget, in order.
	pub fn forgotten() -> Vec<AccountId> {
		FORGOTTEN.with(|f| f.borrow().clone())
	}
}

/// The chain's time at the start of every test (Unix seconds).
pub const START_TIME: u64 = 1_800_000_000;
/// The measurement the mock verifier reports unless told otherwise.
pub const MEASUREMENT: [u8; 240] = [7; 240];

/// A verified TDX quote of [`MEASUREMENT`], up to date, carrying `report_data`, whose
/// collateral expires ten days after [`START_TIME`].
pub fn sample_verified(report_data: &[u8; 64]) -> VerifiedQuote {
	VerifiedQuote {
		tee: TeeType::IntelTdx,
		measurement: MEASUREMENT.to_vec().try_into().expect("fits"),
		report_data: *report_data,
		tcb_status: TcbStatus::UpToDate,
		advisory_ids: Default::default(),
		collateral_expires_at: START_TIME + 10 * 86_400,
	}
}

/// The chain's clock, set by tests.
pub struct Clock;
impl Clock {
	pub fn set(unix_secs: u64) {
		NOW.with(|n| *n.borrow_mut() = unix_secs);
	}
}
impl frame_support::traits::UnixTime for Clock {
	fn now() -> core::time::Duration {
		core::time::Duration::from_secs(NOW.with(|n| *n.borrow()))
	}
}

/// Stands in for DCAP verification (the real one is tested on Intel's sample quotes in
/// `podchain-attestation` and in the runtime): reports what the test chose, checking nothing.
pub struct FakeVerifier;
impl FakeVerifier {
	pub fn report(verdict: Result<VerifiedQuote, QuoteError>) {
		QUOTE_VERDICT.with(|v| *v.borrow_mut() = verdict);
	}
}
impl crate::QuoteVerifier for FakeVerifier {
	fn verify(_: &[u8], _: &Collateral, _: u64) -> Result<VerifiedQuote, QuoteError> {
		QUOTE_VERDICT.with(|v| v.borrow().clone())
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
	type QuoteVerifier = FakeVerifier;
	type UnixTime = Clock;
	type MaxAttestationAge = ConstU64<{ 30 * 86_400 }>;
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = MockBenchmarkHelper;
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
		Clock::set(START_TIME);
		FakeVerifier::report(Ok(sample_verified(&[0; 64])));
		test();
		Registry::do_try_state().expect("registry invariants hold");
	});
}

/// The benchmarks' sample: any bytes, as the fake verifier checks nothing.
#[cfg(feature = "runtime-benchmarks")]
pub struct MockBenchmarkHelper;
#[cfg(feature = "runtime-benchmarks")]
impl crate::benchmarking::BenchmarkHelper for MockBenchmarkHelper {
	fn sample_quote() -> (Vec<u8>, Collateral, u64) {
		let field = || vec![1u8; 16].try_into().expect("fits");
		let collateral = Collateral {
			pck_crl_issuer_chain: field(),
			root_ca_crl: field(),
			pck_crl: field(),
			tcb_info_issuer_chain: field(),
			tcb_info: field(),
			tcb_info_signature: field(),
			qe_identity_issuer_chain: field(),
			qe_identity: field(),
			qe_identity_signature: field(),
			pck_certificate_chain: None,
		};
		(vec![1u8; 5000], collateral, START_TIME)
	}

	fn set_time(unix_secs: u64) {
		Clock::set(unix_secs);
	}
}

/// Build test externalities for the benchmark test suite.
#[cfg(feature = "runtime-benchmarks")]
pub fn build_ext_for_benchmarks() -> sp_io::TestExternalities {
	frame_system::GenesisConfig::<Test>::default().build_storage().unwrap().into()
}
