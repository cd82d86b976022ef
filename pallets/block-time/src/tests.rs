use crate::{self as pallet_block_time, MinimumPeriod, SlotDuration};
use frame_support::{derive_impl, traits::Get};
use sp_runtime::BuildStorage;

type Block = frame_system::mocking::MockBlock<Test>;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		BlockTime: pallet_block_time,
	}
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
}

impl pallet_block_time::Config for Test {
	type DefaultSlotDuration = frame_support::traits::ConstU64<6000>;
}

fn ext(slot_duration_millis: u64) -> sp_io::TestExternalities {
	RuntimeGenesisConfig {
		system: Default::default(),
		block_time: pallet_block_time::GenesisConfig { slot_duration_millis, ..Default::default() },
	}
	.build_storage()
	.unwrap()
	.into()
}

#[test]
fn genesis_value_sets_slot_and_minimum_period() {
	ext(1000).execute_with(|| {
		assert_eq!(<SlotDuration<Test> as Get<u64>>::get(), 1000);
		assert_eq!(<MinimumPeriod<Test> as Get<u64>>::get(), 500);
	});
}

#[test]
fn missing_genesis_value_falls_back_to_default() {
	ext(0).execute_with(|| {
		assert_eq!(<SlotDuration<Test> as Get<u64>>::get(), 6000);
		assert_eq!(<MinimumPeriod<Test> as Get<u64>>::get(), 3000);
	});
}

#[test]
fn integrity_test_passes() {
	use frame_support::traits::IntegrityTest;
	ext(0).execute_with(AllPalletsWithSystem::integrity_test);
}
