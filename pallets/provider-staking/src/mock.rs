//! A test runtime with balances and provider staking.

use crate::{self as pallet_provider_staking, StakeRequirement};
use frame_support::{
	derive_impl, parameter_types,
	traits::{ConstU128, ConstU32, ConstU64, Hooks},
};
use frame_system::EnsureRoot;
use sp_runtime::BuildStorage;

type Block = frame_system::mocking::MockBlock<Test>;
pub type AccountId = u64;
pub type Balance = u128;
pub type BlockNumber = u64;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		Balances: pallet_balances,
		Staking: pallet_provider_staking,
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
	type ExistentialDeposit = ConstU128<ED>;
}

parameter_types! {
	/// The treasury account; tests may point it elsewhere.
	pub storage Treasury: AccountId = TREASURY;
}

impl pallet_provider_staking::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type UnbondingPeriod = ConstU64<UNBONDING_PERIOD>;
	type MaxUnlockingChunks = ConstU32<MAX_CHUNKS>;
	type MinBond = ConstU128<MIN_BOND>;
	type TreasuryAccount = Treasury;
	type RequirementOrigin = EnsureRoot<AccountId>;
	type WeightInfo = ();
}

pub const ED: Balance = 5;
pub const UNBONDING_PERIOD: BlockNumber = 10;
pub const MAX_CHUNKS: u32 = 3;
pub const MIN_BOND: Balance = 100;

pub const ALICE: AccountId = 1;
pub const BOB: AccountId = 2;
/// A publisher that may be compensated.
pub const PUBLISHER: AccountId = 10;
pub const TREASURY: AccountId = 99;
/// Has too little to bond much.
pub const PAUPER: AccountId = 9;
/// Has no account at all.
pub const NOBODY: AccountId = 77;
pub const ENDOWMENT: Balance = 1_000_000;

/// The requirement most tests use: 1 000 once anything is committed, 1 per millicore, 2 per
/// MiB, 3 per GiB, 500 per GPU.
pub fn requirement() -> StakeRequirement<Balance> {
	StakeRequirement {
		base: 1_000,
		per_cpu_millicore: 1,
		per_memory_mib: 2,
		per_storage_gib: 3,
		per_gpu: 500,
	}
}

/// Externalities with funded accounts and the default (zero) requirement.
pub fn new_test_ext() -> sp_io::TestExternalities {
	ext_with(StakeRequirement::default())
}

/// Externalities with funded accounts and `requirement` set at genesis.
pub fn ext_with(requirement: StakeRequirement<Balance>) -> sp_io::TestExternalities {
	let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	pallet_balances::GenesisConfig::<Test> {
		balances: vec![
			(ALICE, ENDOWMENT),
			(BOB, ENDOWMENT),
			(PUBLISHER, ENDOWMENT),
			(TREASURY, ENDOWMENT),
			(PAUPER, 150),
		],
		..Default::default()
	}
	.assimilate_storage(&mut storage)
	.unwrap();
	pallet_provider_staking::GenesisConfig::<Test> { requirement }
		.assimilate_storage(&mut storage)
		.unwrap();
	let mut ext: sp_io::TestExternalities = storage.into();
	ext.execute_with(|| System::set_block_number(1));
	ext
}

/// Runs `test` at block 1 with the default genesis, then checks the pallet's invariants.
pub fn build_and_execute(test: impl FnOnce()) {
	new_test_ext().execute_with(|| {
		test();
		Staking::do_try_state().expect("staking invariants hold");
	});
}

/// Advances to block `n`, running the pallet's hooks on each block.
pub fn run_to_block(n: BlockNumber) {
	while System::block_number() < n {
		let next = System::block_number() + 1;
		System::set_block_number(next);
		Staking::on_initialize(next);
	}
}
