//! Configuration of each pallet in the runtime.

use crate::{
	currency::{EXISTENTIAL_DEPOSIT, MICRO_POD, POD},
	AccountId, Aura, Balance, Balances, Block, BlockNumber, Hash, Nonce, PalletInfo, Runtime,
	RuntimeCall, RuntimeEvent, RuntimeFreezeReason, RuntimeHoldReason, RuntimeOrigin, RuntimeTask,
	System, NETWORK_SLOT_DURATION, VERSION,
};
use frame_support::PalletId;
use frame_support::{
	derive_impl,
	dispatch::DispatchClass,
	parameter_types,
	traits::{ConstBool, ConstU128, ConstU32, ConstU64, ConstU8, VariantCountOf},
	weights::{
		constants::{ParityDbWeight, WEIGHT_REF_TIME_PER_SECOND},
		IdentityFee, Weight,
	},
};
use frame_system::{limits::BlockWeights as SystemBlockWeights, EnsureRoot};
use pallet_transaction_payment::{ConstFeeMultiplier, FungibleAdapter, Multiplier};
use sp_consensus_aura::sr25519::AuthorityId as AuraId;
use sp_runtime::{
	traits::{AccountIdConversion, One},
	Perbill,
};
use sp_version::RuntimeVersion;

mod storage_proofs;
pub use storage_proofs::{ChallengePeriod, CommitmentPeriod, SlaAndStorageProofs};

/// Share of a block's weight and length that normal (non-operational) extrinsics may use.
const NORMAL_DISPATCH_RATIO: Perbill = Perbill::from_percent(75);

parameter_types! {
	pub const BlockHashCount: BlockNumber = 2400;
	pub const Version: RuntimeVersion = VERSION;
	/// Two seconds of compute per block: a third of a 6 s slot, leaving time to propagate
	/// and import.
	pub RuntimeBlockWeights: SystemBlockWeights = SystemBlockWeights::with_sensible_defaults(
		Weight::from_parts(2u64 * WEIGHT_REF_TIME_PER_SECOND, u64::MAX),
		NORMAL_DISPATCH_RATIO,
	);
	/// 5 MiB blocks, of which normal extrinsics may fill `NORMAL_DISPATCH_RATIO`.
	pub RuntimeBlockLength: frame_system::limits::BlockLength =
		frame_system::limits::BlockLength::builder()
			.max_length(5 * 1024 * 1024)
			.modify_max_length_for_class(DispatchClass::Normal, |max| *max = NORMAL_DISPATCH_RATIO * *max)
			.build();
	/// Generic Substrate address format.
	pub const SS58Prefix: u16 = 42;
}

#[derive_impl(frame_system::config_preludes::SolochainDefaultConfig)]
impl frame_system::Config for Runtime {
	type Block = Block;
	type BlockWeights = RuntimeBlockWeights;
	type BlockLength = RuntimeBlockLength;
	type AccountId = AccountId;
	type Nonce = Nonce;
	type Hash = Hash;
	type BlockHashCount = BlockHashCount;
	/// The node stores state in ParityDB.
	type DbWeight = ParityDbWeight;
	type Version = Version;
	type AccountData = pallet_balances::AccountData<Balance>;
	type SS58Prefix = SS58Prefix;
	type MaxConsumers = ConstU32<16>;
}

impl pallet_block_time::Config for Runtime {
	type DefaultSlotDuration = ConstU64<NETWORK_SLOT_DURATION>;
}

impl pallet_aura::Config for Runtime {
	type AuthorityId = AuraId;
	type DisabledValidators = ();
	type MaxAuthorities = ConstU32<32>;
	type AllowMultipleBlocksPerSlot = ConstBool<false>;
	type SlotDuration = pallet_block_time::SlotDuration<Runtime>;
}

impl pallet_grandpa::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type WeightInfo = ();
	type MaxAuthorities = ConstU32<32>;
	type MaxNominators = ConstU32<0>;
	type MaxSetIdSessionEntries = ConstU64<0>;
	type KeyOwnerProof = sp_core::Void;
	type EquivocationReportSystem = ();
}

impl pallet_timestamp::Config for Runtime {
	/// Milliseconds since the Unix epoch.
	type Moment = u64;
	type OnTimestampSet = Aura;
	type MinimumPeriod = pallet_block_time::MinimumPeriod<Runtime>;
	type WeightInfo = ();
}

impl pallet_balances::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type MaxLocks = ConstU32<50>;
	type MaxReserves = ();
	type ReserveIdentifier = [u8; 8];
	type Balance = Balance;
	type DustRemoval = ();
	type ExistentialDeposit = ConstU128<EXISTENTIAL_DEPOSIT>;
	type AccountStore = System;
	type WeightInfo = pallet_balances::weights::SubstrateWeight<Runtime>;
	type FreezeIdentifier = RuntimeFreezeReason;
	type MaxFreezes = VariantCountOf<RuntimeFreezeReason>;
	type RuntimeHoldReason = RuntimeHoldReason;
	type RuntimeFreezeReason = RuntimeFreezeReason;
	type DoneSlashHandler = ();
}

parameter_types! {
	pub FeeMultiplier: Multiplier = Multiplier::one();
	/// Fee per byte of an extrinsic.
	pub const TransactionByteFee: Balance = MICRO_POD;
}

impl pallet_transaction_payment::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type OnChargeTransaction = FungibleAdapter<Balances, ()>;
	type OperationalFeeMultiplier = ConstU8<5>;
	/// One second of compute costs one POD.
	type WeightToFee = IdentityFee<Balance>;
	type LengthToFee = frame_support::weights::ConstantMultiplier<Balance, TransactionByteFee>;
	type FeeMultiplierUpdate = ConstFeeMultiplier<FeeMultiplier>;
	type WeightInfo = pallet_transaction_payment::weights::SubstrateWeight<Runtime>;
}

impl pallet_sudo::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type RuntimeCall = RuntimeCall;
	type WeightInfo = pallet_sudo::weights::SubstrateWeight<Runtime>;
}

parameter_types! {
	/// Deposit held while a provider is registered.
	pub const ProviderRegistrationDeposit: Balance = 100 * POD;
	/// Prices must stay computable for the full capacity over a year.
	pub const PriceHorizonSeconds: u32 = 365 * 24 * 3600;
	/// An attestation counts for 30 days at most, however long its collateral is valid.
	pub const MaxAttestationAge: u64 = 30 * 24 * 3600;
}

impl pallet_registry::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type RegistrationDeposit = ProviderRegistrationDeposit;
	type MaxProviders = ConstU32<10_000>;
	type PriceHorizonSeconds = PriceHorizonSeconds;
	type AttestationOrigin = EnsureRoot<AccountId>;
	type QuoteVerifier = podchain_attestation::DcapVerifier;
	type UnixTime = crate::Timestamp;
	type MaxAttestationAge = MaxAttestationAge;
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = RegistryBenchmarks;
	type Deals = crate::Market;
	type Standing = crate::Sla;
	type WeightInfo = pallet_registry::weights::SubstrateWeight<Runtime>;
}

/// Intel's sample TDX quote, verified for real in the registry's benchmarks.
#[cfg(feature = "runtime-benchmarks")]
pub struct RegistryBenchmarks;

#[cfg(feature = "runtime-benchmarks")]
impl pallet_registry::benchmarking::BenchmarkHelper for RegistryBenchmarks {
	fn sample_quote() -> (alloc::vec::Vec<u8>, pallet_registry::Collateral, u64) {
		use podchain_attestation::samples;
		(samples::TDX_QUOTE.to_vec(), samples::tdx_collateral(), samples::SAMPLE_TIME)
	}

	fn set_time(unix_secs: u64) {
		pallet_timestamp::Now::<Runtime>::put(unix_secs.saturating_mul(1000));
	}
}

parameter_types! {
	/// Account the protocol fee goes to. Endowed at genesis so fees below the existential
	/// deposit can still be paid in.
	pub TreasuryAccount: AccountId = TREASURY_PALLET_ID.into_account_truncating();
	/// Smallest deposit a deployment can be created with.
	pub const MinDeploymentDeposit: Balance = POD;
	/// The account every deal's escrow sits in.
	pub const MarketPalletId: PalletId = PalletId(*b"pod/mrkt");
	/// Deposit held for a name bound to a deployment.
	pub const NameDeposit: Balance = POD;
	/// Egress a report may claim per second: 10 GiB/s, as the registry's price check assumes.
	pub const MaxEgressBytesPerSecond: u64 = 10 << 30;
}

/// Id of the treasury that collects the protocol fee.
pub const TREASURY_PALLET_ID: PalletId = PalletId(*b"pod/trsy");

impl pallet_market::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Providers = crate::Registry;
	type Capacity = crate::Registry;
	type Collateral = crate::ProviderStaking;
	type Sla = storage_proofs::SlaAndStorageProofs;
	type BlockDurationMillis = pallet_block_time::SlotDuration<Runtime>;
	/// Ten minutes at 6 s blocks.
	type AcceptanceTimeout = ConstU32<100>;
	/// An hour at 6 s blocks.
	type GracePeriod = ConstU32<600>;
	/// Ten minutes at 6 s blocks.
	type SettlementWindow = ConstU32<100>;
	type MinDeposit = MinDeploymentDeposit;
	/// An hour of the deal's resources.
	type MinPrepaidSeconds = ConstU64<3600>;
	type PalletId = MarketPalletId;
	type NameDeposit = NameDeposit;
	type MaxEgressBytesPerSecond = MaxEgressBytesPerSecond;
	type MaxReportsPerCall = ConstU32<1000>;
	type MaxExpiriesPerBlock = ConstU32<64>;
	type TreasuryAccount = TreasuryAccount;
	type FeeOrigin = EnsureRoot<AccountId>;
	type WeightInfo = pallet_market::weights::SubstrateWeight<Runtime>;
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = RegistryBenchmarkHelper;
}

/// Registers benchmark providers in the registry, for the market's benchmarks.
#[cfg(feature = "runtime-benchmarks")]
pub struct RegistryBenchmarkHelper;
#[cfg(feature = "runtime-benchmarks")]
impl pallet_market::BenchmarkHelper<AccountId> for RegistryBenchmarkHelper {
	fn max_sla_deals_per_provider() -> u32 {
		<<Runtime as pallet_sla::Config>::MaxSlaDealsPerProvider as frame_support::traits::Get<
			u32,
		>>::get()
	}

	fn shortest_sla_window() -> u32 {
		SlaProbeWindow::get()
	}

	fn register_provider(who: &AccountId) {
		let capacity = podchain_primitives::Resources {
			cpu_millicores: u32::MAX,
			memory_mib: u32::MAX,
			storage_gib: u32::MAX,
			gpus: 0,
		};
		crate::Registry::register_for_benchmarks(who.clone(), capacity)
			.expect("a funded account registers as a benchmark provider");
		bond_for_benchmarks(who);
		let offer = pallet_sla::SlaOffer {
			max_uptime_target: sp_runtime::Permill::one(),
			min_window_blocks: SlaProbeWindow::get(),
			max_window_blocks: SlaProbeWindow::get() * pallet_sla::MAX_WINDOW_SPAN,
			max_penalty_per_window: Balance::MAX,
		};
		pallet_sla::Offers::<Runtime>::insert(who, offer);
	}
}

/// Bonds a large stake for a benchmark provider, so the requirement never binds and slashes
/// always find stake.
#[cfg(feature = "runtime-benchmarks")]
fn bond_for_benchmarks(who: &AccountId) {
	use frame_support::traits::fungible::Mutate;
	// Benchmark providers have (almost) unbounded capacity: a rent commits all of it.
	let stake = 1_000_000_000 * POD;
	let _ = Balances::mint_into(who, stake.saturating_mul(2));
	let bonded =
		pallet_provider_staking::Pallet::<Runtime>::bond(RuntimeOrigin::signed(who.clone()), stake);
	if bonded.is_err() {
		let _ = pallet_provider_staking::Pallet::<Runtime>::bond_extra(
			RuntimeOrigin::signed(who.clone()),
			stake,
		);
	}
}

parameter_types! {
	/// A day at 6 s blocks: stake stays slashable that long after unbonding.
	pub const UnbondingPeriod: BlockNumber = 14_400;
	/// Smallest stake a provider keeps bonded.
	pub const MinBond: Balance = 10 * POD;
}

impl pallet_provider_staking::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type UnbondingPeriod = UnbondingPeriod;
	type MaxUnlockingChunks = ConstU32<32>;
	type MinBond = MinBond;
	type TreasuryAccount = TreasuryAccount;
	type RequirementOrigin = EnsureRoot<AccountId>;
	type WeightInfo = pallet_provider_staking::weights::SubstrateWeight<Runtime>;
}

parameter_types! {
	/// Blocks per SLA probe window: 10 s on a dev chain, a minute at 6 s blocks.
	pub const SlaProbeWindow: u32 = 10;
	/// The newest probe window's share of a provider's reputation.
	pub const ReputationWeight: sp_runtime::Permill = sp_runtime::Permill::from_percent(10);
	/// Slashed on top of an SLA penalty, for the treasury.
	pub const PenaltySurcharge: Perbill = Perbill::from_percent(10);
	/// Probe verdicts go before ordinary transactions.
	pub const SlaProbePriority: u64 = u64::MAX / 2;
}

impl pallet_sla::Config for Runtime {
	type Currency = Balances;
	type AuthorityId = pallet_sla::ProberId;
	type Slasher = crate::ProviderStaking;
	type Targets = crate::Registry;
	type Deals = crate::Market;
	type ProbeWindow = SlaProbeWindow;
	type MaxProbers = ConstU32<64>;
	/// Health checks one prober requests per block (two providers' samples).
	type MaxProbesPerBlock = ConstU32<8>;
	type MaxSampledDeals = ConstU32<4>;
	type MaxSlaDealsPerProvider = ConstU32<256>;
	type ProbeTimeoutMillis = ConstU64<2_000>;
	type QuarantineAfter = ConstU32<3>;
	type ReputationWeight = ReputationWeight;
	type PenaltySurcharge = PenaltySurcharge;
	/// A provider's SLA deals: the agent names them all in one heartbeat.
	type MaxDealsPerHeartbeat = ConstU32<256>;
	/// With as many drained from the overflow: at most 64 settlements a block.
	type MaxDuePerBlock = ConstU32<32>;
	type MaxDueOverflow = ConstU32<4_096>;
	type UnsignedPriority = SlaProbePriority;
	type ProberOrigin = EnsureRoot<AccountId>;
	type WeightInfo = pallet_sla::weights::SubstrateWeight<Runtime>;
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = SlaBenchmarkHelper;
}

impl<LocalCall> frame_system::offchain::CreateTransactionBase<LocalCall> for Runtime
where
	RuntimeCall: From<LocalCall>,
{
	type Extrinsic = crate::UncheckedExtrinsic;
	type RuntimeCall = RuntimeCall;
}

/// Off-chain workers submit probe verdicts as bare (unsigned) extrinsics.
impl<LocalCall> frame_system::offchain::CreateBare<LocalCall> for Runtime
where
	RuntimeCall: From<LocalCall>,
{
	fn create_bare(call: RuntimeCall) -> crate::UncheckedExtrinsic {
		crate::UncheckedExtrinsic::new_bare(call)
	}
}

/// Registers and bonds benchmark providers, for the SLA pallet's benchmarks.
#[cfg(feature = "runtime-benchmarks")]
pub struct SlaBenchmarkHelper;
#[cfg(feature = "runtime-benchmarks")]
impl pallet_sla::BenchmarkHelper<AccountId> for SlaBenchmarkHelper {
	fn setup_provider(who: &AccountId) {
		use frame_support::traits::fungible::Mutate;
		let _ = Balances::mint_into(who, 1_000 * POD);
		<RegistryBenchmarkHelper as pallet_market::BenchmarkHelper<AccountId>>::register_provider(
			who,
		);
	}

	/// A running deal the market knows, with a name and a large bill paid, so penalties are
	/// bounded by the terms alone.
	fn setup_deal(id: podchain_primitives::DealId) {
		use pallet_market::{BillingMode, Charges, DealKind, Deployment, DeploymentState};
		let someone: AccountId = frame_benchmarking::account("sla-deal", 0, 0);
		let deal = Deployment {
			publisher: someone.clone(),
			provider: someone,
			kind: DealKind::Deployment,
			manifest_hash: [0; 32],
			pending_manifest: None,
			resources: Default::default(),
			billing: BillingMode::Metered,
			sla: None,
			prices: Default::default(),
			state: DeploymentState::Active { accepted_at: 0 },
			escrow: 0,
			settled_until: 0,
			charged: Charges { cpu: 1_000_000_000 * POD, ..Default::default() },
			debt: 0,
			egress_limit: 0,
		};
		pallet_market::Deployments::<Runtime>::insert(id, deal);
		let name: pallet_market::DnsLabel =
			alloc::format!("deal{id}").into_bytes().try_into().expect("a short label");
		pallet_market::Names::<Runtime>::insert(&name, id);
		pallet_market::DeploymentNames::<Runtime>::insert(id, (name, 0));
	}
}
