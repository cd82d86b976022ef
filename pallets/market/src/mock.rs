//! A test runtime: balances, the real provider registry, and the market.

use crate::{self as pallet_market};
use frame_support::{
	derive_impl, parameter_types,
	traits::{ConstU32, ConstU64},
};
use frame_system::EnsureRoot;
use pallet_registry::{
	CapacityInput, Collateral, EndpointInput, InputBytes, QuoteError, RegionInput, Registration,
	VerifiedQuote,
};
use podchain_primitives::{Prices, Resources};
use sp_runtime::{BuildStorage, Percent};

type Block = frame_system::mocking::MockBlock<Test>;
pub type AccountId = u64;
pub type Balance = u128;
pub type BlockNumber = u64;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		Balances: pallet_balances,
		Registry: pallet_registry,
		Market: pallet_market,
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
	pub const MarketPalletId: frame_support::PalletId = frame_support::PalletId(*b"py/mrket");
	/// Small pages, so tests reach the queue's limits; a test may change it.
	pub static MaxExpiries: u32 = 2;
	pub const RegistrationDeposit: Balance = 1_000;
	pub const PriceHorizon: u32 = 365 * 24 * 3600;
	pub const Treasury: AccountId = TREASURY;
}

impl pallet_registry::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type RegistrationDeposit = RegistrationDeposit;
	type MaxProviders = ConstU32<10>;
	type PriceHorizonSeconds = PriceHorizon;
	type AttestationOrigin = EnsureRoot<AccountId>;
	type QuoteVerifier = NoQuotes;
	type UnixTime = NoQuotes;
	type MaxAttestationAge = ConstU64<86_400>;
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = NoQuotes;
	type Deals = Market;
	type Standing = ();
	type WeightInfo = ();
}

/// The market's tests attest no provider: every quote is refused, and the clock stands still.
pub struct NoQuotes;
impl pallet_registry::QuoteVerifier for NoQuotes {
	fn verify(_: &[u8], _: &Collateral, _: u64) -> Result<VerifiedQuote, QuoteError> {
		Err(QuoteError::Untrusted)
	}
}
impl frame_support::traits::UnixTime for NoQuotes {
	fn now() -> core::time::Duration {
		core::time::Duration::from_secs(1_800_000_000)
	}
}
#[cfg(feature = "runtime-benchmarks")]
impl pallet_registry::benchmarking::BenchmarkHelper for NoQuotes {
	fn sample_quote() -> (Vec<u8>, Collateral, u64) {
		unreachable!("the market's benchmarks attest no provider")
	}
	fn set_time(_: u64) {}
}

impl pallet_market::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Providers = Registry;
	type Capacity = Registry;
	type Collateral = ();
	type Sla = RecordingSla;
	/// 6 s blocks.
	type BlockDurationMillis = ConstU64<6000>;
	type AcceptanceTimeout = ConstU64<10>;
	type GracePeriod = ConstU64<5>;
	type SettlementWindow = ConstU64<4>;
	type MinDeposit = ConstU128<100>;
	/// One block of the deal's resources.
	type MinPrepaidSeconds = ConstU64<6>;
	type PalletId = MarketPalletId;
	type NameDeposit = ConstU128<NAME_DEPOSIT>;
	type MaxEgressBytesPerSecond = ConstU64<MAX_EGRESS_PER_SECOND>;
	type MaxReportsPerCall = ConstU32<8>;
	type MaxExpiriesPerBlock = MaxExpiries;
	type TreasuryAccount = Treasury;
	type FeeOrigin = EnsureRoot<AccountId>;
	type WeightInfo = ();
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = RegistryHelper;
}

/// Registers benchmark providers in the real registry.
#[cfg(feature = "runtime-benchmarks")]
pub struct RegistryHelper;
#[cfg(feature = "runtime-benchmarks")]
impl crate::BenchmarkHelper<AccountId> for RegistryHelper {
	fn register_provider(who: &AccountId) {
		let capacity = Resources {
			cpu_millicores: u32::MAX,
			memory_mib: u32::MAX,
			storage_gib: u32::MAX,
			gpus: 0,
		};
		Registry::register_for_benchmarks(*who, capacity).expect("registers");
	}
}

use frame_support::traits::ConstU128;

pub const PROVIDER: AccountId = 1;
pub const OTHER_PROVIDER: AccountId = 2;
pub const PUBLISHER: AccountId = 10;
pub const OTHER_PUBLISHER: AccountId = 11;
pub const TREASURY: AccountId = 99;
pub const ENDOWMENT: Balance = 10_000_000;
pub const NAME_DEPOSIT: Balance = 50;
/// Most egress a report may claim per second.
pub const MAX_EGRESS_PER_SECOND: u64 = 1_000;

/// Prices of the test provider: per millicore-second 1, per MiB-second 1, per GiB-second 2,
/// per GPU-second 0, per egress byte 1.
pub fn prices() -> Prices<Balance> {
	Prices {
		cpu_per_millicore_second: 1,
		memory_per_mib_second: 1,
		storage_per_gib_second: 2,
		gpu_per_second: 0,
		egress_per_byte: 1,
	}
}

/// What test deployments reserve: 100 millicores, 10 MiB, 1 GiB.
pub fn small() -> Resources {
	Resources { cpu_millicores: 100, memory_mib: 10, storage_gib: 1, gpus: 0 }
}

/// Cost of `small()` for one 6 s block at `prices()`: (100 + 10 + 2) * 6.
pub const SMALL_PER_BLOCK: Balance = 672;

/// Limits that admit `prices()` with room (up to ten times), and egress up to the chain's
/// maximum.
pub fn limits() -> pallet_market::DealLimits<Balance> {
	let p = prices();
	pallet_market::DealLimits {
		max_prices: Prices {
			cpu_per_millicore_second: p.cpu_per_millicore_second * 10,
			memory_per_mib_second: p.memory_per_mib_second * 10,
			storage_per_gib_second: p.storage_per_gib_second * 10,
			gpu_per_second: 10,
			egress_per_byte: p.egress_per_byte * 10,
		},
		max_egress_bytes_per_second: MAX_EGRESS_PER_SECOND,
	}
}

/// Balance of the market's escrow account above its existential deposit: the escrow of
/// every open deal.
pub fn escrow_pool() -> Balance {
	use frame_support::traits::fungible::Inspect;
	Balances::balance(&Market::escrow_account()) - Balances::minimum_balance()
}

fn bytes(b: &[u8]) -> InputBytes {
	b.to_vec().try_into().unwrap()
}

pub fn register_provider(who: AccountId) {
	let registration = Registration {
		capacity: CapacityInput {
			resources: Resources {
				cpu_millicores: 1000,
				memory_mib: 100,
				storage_gib: 10,
				gpus: 0,
			},
			gpu_model: bytes(b""),
		},
		prices: prices(),
		rent_discount: Percent::from_percent(10),
		region: RegionInput { country: *b"DE", location: None },
		endpoint: EndpointInput {
			peer_id: bytes(b"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"),
			multiaddrs: vec![bytes(b"/ip4/127.0.0.1/tcp/4001")].try_into().unwrap(),
		},
		gateway_url: bytes(b"http://127.0.0.1:8080"),
		ingress_domain: bytes(b"apps.provider.test"),
	};
	Registry::register_provider(RuntimeOrigin::signed(who), registration).unwrap();
}

/// Externalities with funded accounts and two registered providers; runs both pallets'
/// invariants after the test body.
pub fn build_and_execute(test: impl FnOnce()) {
	let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	pallet_balances::GenesisConfig::<Test> {
		balances: [PROVIDER, OTHER_PROVIDER, PUBLISHER, OTHER_PUBLISHER, TREASURY]
			.into_iter()
			.map(|who| (who, ENDOWMENT))
			.collect(),
		..Default::default()
	}
	.assimilate_storage(&mut storage)
	.unwrap();
	pallet_market::GenesisConfig::<Test>::default().assimilate_storage(&mut storage).unwrap();
	let mut ext: sp_io::TestExternalities = storage.into();
	ext.execute_with(|| {
		SLA_CALLS.with(|c| c.borrow_mut().clear());
		RecordingSla::set_full(false);
		run_to_block(1);
		register_provider(PROVIDER);
		register_provider(OTHER_PROVIDER);
		test();
		check_invariants();
	});
}

pub fn check_invariants() {
	Market::do_try_state().expect("market invariants hold");
	Registry::do_try_state().expect("registry invariants hold");
}

/// Advances to block `n`, running the market's hook on each block.
/// What the market told the SLA pallet, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlaCall {
	Started(podchain_primitives::DealId),
	Ended(podchain_primitives::DealId, Balance),
	ManifestPending(podchain_primitives::DealId, bool),
}

thread_local! {
	static SLA_CALLS: std::cell::RefCell<Vec<SlaCall>> = const { std::cell::RefCell::new(Vec::new()) };
	static SLA_FULL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Stands in for the SLA pallet: offers any terms, records what it is told, and refuses new
/// deals when [`RecordingSla::set_full`] says so.
pub struct RecordingSla;
impl RecordingSla {
	pub fn calls() -> Vec<SlaCall> {
		SLA_CALLS.with(|c| c.borrow().clone())
	}

	pub fn set_full(full: bool) {
		SLA_FULL.with(|f| f.set(full));
	}
}

impl podchain_primitives::SlaTracker<AccountId, Balance> for RecordingSla {
	fn offers(_: &AccountId, _: &podchain_primitives::SlaTerms<Balance>) -> bool {
		true
	}

	fn deal_started(
		id: podchain_primitives::DealId,
		_: &AccountId,
		_: &AccountId,
		_: &podchain_primitives::SlaTerms<Balance>,
	) -> sp_runtime::DispatchResult {
		if SLA_FULL.with(|f| f.get()) {
			return Err(sp_runtime::DispatchError::Other("the provider tracks the most SLA deals"));
		}
		SLA_CALLS.with(|c| c.borrow_mut().push(SlaCall::Started(id)));
		Ok(())
	}

	fn deal_ended(id: podchain_primitives::DealId, paid: Balance) {
		SLA_CALLS.with(|c| c.borrow_mut().push(SlaCall::Ended(id, paid)));
	}

	fn manifest_pending(id: podchain_primitives::DealId, pending: bool) {
		SLA_CALLS.with(|c| c.borrow_mut().push(SlaCall::ManifestPending(id, pending)));
	}
}

pub fn run_to_block(n: BlockNumber) {
	use frame_support::traits::Hooks;
	while System::block_number() < n {
		let next = System::block_number() + 1;
		System::set_block_number(next);
		Market::on_initialize(next);
	}
}

/// Build test externalities for the benchmark test suite.
#[cfg(feature = "runtime-benchmarks")]
pub fn build_ext_for_benchmarks() -> sp_io::TestExternalities {
	let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	pallet_balances::GenesisConfig::<Test> {
		balances: vec![(TREASURY, ENDOWMENT)],
		..Default::default()
	}
	.assimilate_storage(&mut storage)
	.unwrap();
	pallet_market::GenesisConfig::<Test>::default().assimilate_storage(&mut storage).unwrap();
	storage.into()
}
