use crate::{mock::*, *};
use frame_support::{
	assert_noop, assert_ok,
	traits::{
		fungible::{Inspect, InspectHold},
		Hooks,
	},
};
use sp_runtime::DispatchError;

fn stake_held(who: AccountId) -> Balance {
	Balances::balance_on_hold(&HoldReason::Stake.into(), &who)
}

fn free(who: AccountId) -> Balance {
	Balances::balance(&who)
}

fn bond(who: AccountId, value: Balance) {
	assert_ok!(Staking::bond(RuntimeOrigin::signed(who), value));
}

fn unbond(who: AccountId, value: Balance) {
	assert_ok!(Staking::unbond(RuntimeOrigin::signed(who), value));
}

fn chunks(who: AccountId) -> Vec<(Balance, BlockNumber)> {
	Staking::ledger(&who)
		.map(|l| l.unlocking.iter().map(|c| (c.value, c.unlock_at)).collect())
		.unwrap_or_default()
}

fn active(who: AccountId) -> Balance {
	Staking::ledger(&who).map_or(0, |l| l.active)
}

/// 100 millicores, 10 MiB, 1 GiB: 1 000 + 100 + 20 + 3 = 1 123 under `requirement()`.
fn small() -> Resources {
	Resources { cpu_millicores: 100, memory_mib: 10, storage_gib: 1, gpus: 0 }
}
const SMALL_REQUIRED: Balance = 1_123;

fn set_requirement(requirement: StakeRequirement<Balance>) {
	assert_ok!(Staking::set_requirement(RuntimeOrigin::root(), requirement));
}

fn slash(who: AccountId, amount: Balance, compensation: Balance) -> SlashOutcome<Balance> {
	<Staking as StakeSlasher<_, _>>::slash(&who, amount, &PUBLISHER, compensation)
}

fn commit(who: AccountId, resources: Resources) -> DispatchResult {
	<Staking as StakeCollateral<_>>::commit(&who, &resources)
}

fn release(who: AccountId, resources: Resources) {
	<Staking as StakeCollateral<_>>::release(&who, &resources)
}

// ----- constants and genesis -----

#[test]
fn integrity_test_passes() {
	build_and_execute(Staking::integrity_test);
}

#[test]
fn genesis_sets_the_requirement() {
	ext_with(requirement()).execute_with(|| {
		assert_eq!(Requirement::<Test>::get(), requirement());
		Staking::do_try_state().unwrap();
	});
	build_and_execute(|| assert_eq!(Requirement::<Test>::get(), StakeRequirement::default()));
}

// ----- requirement arithmetic -----

#[test]
fn requirement_is_zero_without_committed_capacity() {
	assert_eq!(requirement().for_resources(&Resources::default()), Some(0));
	assert_eq!(requirement().for_resources(&small()), Some(SMALL_REQUIRED));
	let gpu = Resources { gpus: 2, ..Default::default() };
	assert_eq!(requirement().for_resources(&gpu), Some(2_000));
}

#[test]
fn requirement_overflow_is_none() {
	let huge = StakeRequirement { per_cpu_millicore: Balance::MAX, ..requirement() };
	assert_eq!(huge.for_resources(&small()), None);
	let huge_base = StakeRequirement { base: Balance::MAX, ..requirement() };
	assert_eq!(huge_base.for_resources(&small()), None);
	assert_eq!(huge_base.for_resources(&Resources::default()), Some(0));
}

// ----- bond -----

#[test]
fn bond_holds_stake_and_creates_ledger() {
	build_and_execute(|| {
		bond(ALICE, 1_000);
		assert_eq!(stake_held(ALICE), 1_000);
		assert_eq!(free(ALICE), ENDOWMENT - 1_000);
		let ledger = Staking::ledger(&ALICE).unwrap();
		assert_eq!(ledger.active, 1_000);
		assert!(ledger.unlocking.is_empty());
		assert!(ledger.committed.is_zero());
		assert_eq!(TotalStake::<Test>::get(), 1_000);
		assert_eq!(Staking::slashable(&ALICE), 1_000);
		System::assert_last_event(Event::Bonded { who: ALICE, amount: 1_000 }.into());
	});
}

#[test]
fn bond_fails_when_already_bonded() {
	build_and_execute(|| {
		bond(ALICE, 1_000);
		assert_noop!(
			Staking::bond(RuntimeOrigin::signed(ALICE), 500),
			Error::<Test>::AlreadyBonded
		);
		// Unbonding stake still counts.
		unbond(ALICE, 1_000);
		assert_noop!(
			Staking::bond(RuntimeOrigin::signed(ALICE), 500),
			Error::<Test>::AlreadyBonded
		);
	});
}

#[test]
fn bond_rejects_zero_and_too_small() {
	build_and_execute(|| {
		assert_noop!(Staking::bond(RuntimeOrigin::signed(ALICE), 0), Error::<Test>::ZeroAmount);
		assert_noop!(
			Staking::bond(RuntimeOrigin::signed(ALICE), MIN_BOND - 1),
			Error::<Test>::BondTooSmall
		);
		bond(ALICE, MIN_BOND);
	});
}

#[test]
fn bond_fails_without_funds() {
	build_and_execute(|| {
		assert_noop!(
			Staking::bond(RuntimeOrigin::signed(PAUPER), 200),
			Error::<Test>::InsufficientBalance
		);
		assert_noop!(
			Staking::bond(RuntimeOrigin::signed(NOBODY), MIN_BOND),
			Error::<Test>::InsufficientBalance
		);
	});
}

#[test]
fn bond_requires_signed_origin() {
	build_and_execute(|| {
		assert_noop!(Staking::bond(RuntimeOrigin::root(), 1_000), DispatchError::BadOrigin);
	});
}

#[test]
fn bond_fills_a_stakeless_ledger() {
	build_and_execute(|| {
		// With no requirement, capacity can be committed without stake.
		assert_ok!(commit(ALICE, small()));
		assert_eq!(Staking::ledger(&ALICE).unwrap().active, 0);
		bond(ALICE, 1_000);
		let ledger = Staking::ledger(&ALICE).unwrap();
		assert_eq!((ledger.active, ledger.committed), (1_000, small()));
	});
}

// ----- bond_extra -----

#[test]
fn bond_extra_adds_active_stake() {
	build_and_execute(|| {
		bond(ALICE, 1_000);
		assert_ok!(Staking::bond_extra(RuntimeOrigin::signed(ALICE), 500));
		assert_eq!(active(ALICE), 1_500);
		assert_eq!(stake_held(ALICE), 1_500);
		assert_eq!(TotalStake::<Test>::get(), 1_500);
		System::assert_last_event(Event::Bonded { who: ALICE, amount: 500 }.into());
	});
}

#[test]
fn bond_extra_errors() {
	build_and_execute(|| {
		assert_noop!(
			Staking::bond_extra(RuntimeOrigin::signed(ALICE), 500),
			Error::<Test>::NotBonded
		);
		bond(ALICE, 1_000);
		assert_noop!(
			Staking::bond_extra(RuntimeOrigin::signed(ALICE), 0),
			Error::<Test>::ZeroAmount
		);
		assert_noop!(
			Staking::bond_extra(RuntimeOrigin::signed(ALICE), ENDOWMENT),
			Error::<Test>::InsufficientBalance
		);
		// With all stake unbonding, the active stake must reach the minimum again.
		unbond(ALICE, 1_000);
		assert_noop!(
			Staking::bond_extra(RuntimeOrigin::signed(ALICE), MIN_BOND - 1),
			Error::<Test>::BondTooSmall
		);
		assert_ok!(Staking::bond_extra(RuntimeOrigin::signed(ALICE), MIN_BOND));
		assert_eq!(Staking::slashable(&ALICE), 1_000 + MIN_BOND);
	});
}

// ----- unbond -----

#[test]
fn unbond_moves_active_into_a_chunk() {
	build_and_execute(|| {
		bond(ALICE, 1_000);
		unbond(ALICE, 300);
		let unlock_at = 1 + UNBONDING_PERIOD;
		System::assert_last_event(Event::Unbonded { who: ALICE, amount: 300, unlock_at }.into());
		assert_eq!(active(ALICE), 700);
		assert_eq!(chunks(ALICE), vec![(300, unlock_at)]);
		// Still held, still counted.
		assert_eq!(stake_held(ALICE), 1_000);
		assert_eq!(TotalStake::<Test>::get(), 1_000);
		// The same block adds to the same chunk.
		unbond(ALICE, 100);
		assert_eq!(chunks(ALICE), vec![(400, unlock_at)]);
		// A later block opens a new chunk.
		run_to_block(3);
		unbond(ALICE, 100);
		assert_eq!(chunks(ALICE), vec![(400, unlock_at), (100, 3 + UNBONDING_PERIOD)]);
		assert_eq!(active(ALICE), 500);
	});
}

#[test]
fn unbond_everything_is_allowed() {
	build_and_execute(|| {
		bond(ALICE, 1_000);
		unbond(ALICE, 1_000);
		assert_eq!(active(ALICE), 0);
		assert_eq!(Staking::slashable(&ALICE), 1_000);
	});
}

#[test]
fn unbond_errors() {
	build_and_execute(|| {
		assert_noop!(Staking::unbond(RuntimeOrigin::signed(ALICE), 100), Error::<Test>::NotBonded);
		bond(ALICE, 1_000);
		assert_noop!(Staking::unbond(RuntimeOrigin::signed(ALICE), 0), Error::<Test>::ZeroAmount);
		assert_noop!(
			Staking::unbond(RuntimeOrigin::signed(ALICE), 1_001),
			Error::<Test>::InsufficientActive
		);
		assert_noop!(
			Staking::unbond(RuntimeOrigin::signed(ALICE), 1_000 - MIN_BOND + 1),
			Error::<Test>::BelowMinBond
		);
	});
}

#[test]
fn unbond_fails_with_too_many_chunks() {
	build_and_execute(|| {
		bond(ALICE, 1_000);
		for block in 1..=MAX_CHUNKS as BlockNumber {
			run_to_block(block);
			unbond(ALICE, 10);
		}
		run_to_block(MAX_CHUNKS as BlockNumber + 1);
		assert_noop!(
			Staking::unbond(RuntimeOrigin::signed(ALICE), 10),
			Error::<Test>::TooManyChunks
		);
		// Once a chunk is withdrawn there is room again.
		run_to_block(1 + UNBONDING_PERIOD);
		assert_ok!(Staking::withdraw_unbonded(RuntimeOrigin::signed(ALICE)));
		unbond(ALICE, 10);
		assert_eq!(chunks(ALICE).len(), MAX_CHUNKS as usize);
	});
}

#[test]
fn unbond_is_blocked_by_committed_stake() {
	build_and_execute(|| {
		set_requirement(requirement());
		bond(ALICE, 2_000);
		assert_ok!(commit(ALICE, small()));
		assert_eq!(Staking::required_for(&ALICE), SMALL_REQUIRED);
		// 2 000 - 878 = 1 122 < 1 123.
		assert_noop!(
			Staking::unbond(RuntimeOrigin::signed(ALICE), 2_000 - SMALL_REQUIRED + 1),
			Error::<Test>::StakeCommitted
		);
		unbond(ALICE, 2_000 - SMALL_REQUIRED);
		assert_eq!(active(ALICE), SMALL_REQUIRED);
		// Released capacity frees the stake.
		release(ALICE, small());
		assert_eq!(Staking::required_for(&ALICE), 0);
		unbond(ALICE, SMALL_REQUIRED);
		assert_eq!(active(ALICE), 0);
	});
}

// ----- withdraw_unbonded -----

#[test]
fn withdraw_after_the_unbonding_period() {
	build_and_execute(|| {
		bond(ALICE, 1_000);
		unbond(ALICE, 1_000);
		run_to_block(UNBONDING_PERIOD);
		assert_noop!(
			Staking::withdraw_unbonded(RuntimeOrigin::signed(ALICE)),
			Error::<Test>::NothingToWithdraw
		);
		run_to_block(1 + UNBONDING_PERIOD);
		assert_ok!(Staking::withdraw_unbonded(RuntimeOrigin::signed(ALICE)));
		System::assert_last_event(Event::Withdrawn { who: ALICE, amount: 1_000 }.into());
		assert_eq!(stake_held(ALICE), 0);
		assert_eq!(free(ALICE), ENDOWMENT);
		assert_eq!(Staking::ledger(&ALICE), None);
		assert_eq!(TotalStake::<Test>::get(), 0);
	});
}

#[test]
fn withdraw_takes_only_due_chunks() {
	build_and_execute(|| {
		bond(ALICE, 1_000);
		unbond(ALICE, 100);
		run_to_block(5);
		unbond(ALICE, 200);
		run_to_block(1 + UNBONDING_PERIOD);
		assert_ok!(Staking::withdraw_unbonded(RuntimeOrigin::signed(ALICE)));
		System::assert_last_event(Event::Withdrawn { who: ALICE, amount: 100 }.into());
		assert_eq!(chunks(ALICE), vec![(200, 5 + UNBONDING_PERIOD)]);
		assert_eq!(stake_held(ALICE), 900);
		assert_eq!(TotalStake::<Test>::get(), 900);
		assert_eq!(free(ALICE), ENDOWMENT - 900);
	});
}

#[test]
fn withdraw_errors() {
	build_and_execute(|| {
		assert_noop!(
			Staking::withdraw_unbonded(RuntimeOrigin::signed(ALICE)),
			Error::<Test>::NotBonded
		);
		bond(ALICE, 1_000);
		assert_noop!(
			Staking::withdraw_unbonded(RuntimeOrigin::signed(ALICE)),
			Error::<Test>::NothingToWithdraw
		);
	});
}

#[test]
fn withdraw_keeps_a_ledger_with_commitments() {
	build_and_execute(|| {
		bond(ALICE, 1_000);
		// No requirement: committing needs no stake, so all of it may leave.
		assert_ok!(commit(ALICE, small()));
		unbond(ALICE, 1_000);
		run_to_block(1 + UNBONDING_PERIOD);
		assert_ok!(Staking::withdraw_unbonded(RuntimeOrigin::signed(ALICE)));
		let ledger = Staking::ledger(&ALICE).unwrap();
		assert_eq!((ledger.total(), ledger.committed), (0, small()));
		release(ALICE, small());
		assert_eq!(Staking::ledger(&ALICE), None);
	});
}

// ----- rebond -----

#[test]
fn rebond_takes_newest_chunks_first() {
	build_and_execute(|| {
		bond(ALICE, 1_000);
		unbond(ALICE, 100);
		run_to_block(2);
		unbond(ALICE, 50);
		assert_ok!(Staking::rebond(RuntimeOrigin::signed(ALICE), 70));
		System::assert_last_event(Event::Rebonded { who: ALICE, amount: 70 }.into());
		assert_eq!(chunks(ALICE), vec![(80, 1 + UNBONDING_PERIOD)]);
		assert_eq!(active(ALICE), 920);
		assert_eq!(stake_held(ALICE), 1_000);
		assert_eq!(TotalStake::<Test>::get(), 1_000);
		assert_ok!(Staking::rebond(RuntimeOrigin::signed(ALICE), 80));
		assert!(chunks(ALICE).is_empty());
		assert_eq!(active(ALICE), 1_000);
	});
}

#[test]
fn rebond_errors() {
	build_and_execute(|| {
		assert_noop!(Staking::rebond(RuntimeOrigin::signed(ALICE), 10), Error::<Test>::NotBonded);
		bond(ALICE, 1_000);
		assert_noop!(Staking::rebond(RuntimeOrigin::signed(ALICE), 0), Error::<Test>::ZeroAmount);
		assert_noop!(
			Staking::rebond(RuntimeOrigin::signed(ALICE), 10),
			Error::<Test>::InsufficientUnlocking
		);
		unbond(ALICE, 1_000);
		assert_noop!(
			Staking::rebond(RuntimeOrigin::signed(ALICE), 1_001),
			Error::<Test>::InsufficientUnlocking
		);
		assert_noop!(
			Staking::rebond(RuntimeOrigin::signed(ALICE), MIN_BOND - 1),
			Error::<Test>::BelowMinBond
		);
		assert_ok!(Staking::rebond(RuntimeOrigin::signed(ALICE), MIN_BOND));
	});
}

// ----- set_requirement -----

#[test]
fn set_requirement_by_root() {
	build_and_execute(|| {
		set_requirement(requirement());
		assert_eq!(Requirement::<Test>::get(), requirement());
		System::assert_last_event(Event::RequirementSet { requirement: requirement() }.into());
	});
}

#[test]
fn set_requirement_rejects_other_origins() {
	build_and_execute(|| {
		assert_noop!(
			Staking::set_requirement(RuntimeOrigin::signed(ALICE), requirement()),
			DispatchError::BadOrigin
		);
	});
}

#[test]
fn raised_requirement_binds_at_next_commit_or_unbond() {
	build_and_execute(|| {
		set_requirement(requirement());
		bond(ALICE, 1_500);
		assert_ok!(commit(ALICE, small()));
		set_requirement(StakeRequirement { base: 2_000, ..requirement() });
		// The running commitment stays.
		assert_eq!(Staking::ledger(&ALICE).unwrap().committed, small());
		assert_eq!(Staking::required_for(&ALICE), SMALL_REQUIRED + 1_000);
		assert_noop!(
			Staking::unbond(RuntimeOrigin::signed(ALICE), MIN_BOND),
			Error::<Test>::StakeCommitted
		);
		assert_noop!(commit(ALICE, small()), Error::<Test>::InsufficientStake);
	});
}

// ----- commit and release -----

#[test]
fn commit_within_stake() {
	build_and_execute(|| {
		set_requirement(requirement());
		bond(ALICE, 2 * SMALL_REQUIRED - 1_000);
		assert_ok!(commit(ALICE, small()));
		// The base applies once: two small deals need 1 000 + 2 * 123.
		assert_ok!(commit(ALICE, small()));
		let two = small().checked_add(&small()).unwrap();
		assert_eq!(Staking::ledger(&ALICE).unwrap().committed, two);
		assert_eq!(Staking::required_for(&ALICE), 2 * SMALL_REQUIRED - 1_000);
		// A third does not fit and changes nothing.
		assert_noop!(commit(ALICE, small()), Error::<Test>::InsufficientStake);
		release(ALICE, small());
		assert_eq!(Staking::ledger(&ALICE).unwrap().committed, small());
		assert_ok!(commit(ALICE, small()));
	});
}

#[test]
fn commit_counts_only_active_stake() {
	build_and_execute(|| {
		set_requirement(requirement());
		bond(ALICE, SMALL_REQUIRED);
		unbond(ALICE, SMALL_REQUIRED);
		assert_noop!(commit(ALICE, small()), Error::<Test>::InsufficientStake);
	});
}

#[test]
fn commit_without_ledger() {
	build_and_execute(|| {
		set_requirement(requirement());
		assert_noop!(commit(ALICE, small()), Error::<Test>::InsufficientStake);
		assert_eq!(Staking::ledger(&ALICE), None);
		// Nothing committed needs nothing, and stores nothing.
		assert_ok!(commit(ALICE, Resources::default()));
		assert_eq!(Staking::ledger(&ALICE), None);
		// A zero requirement lets a stakeless provider commit; the ledger tracks it.
		set_requirement(StakeRequirement::default());
		assert_ok!(commit(ALICE, small()));
		assert_eq!(Staking::ledger(&ALICE).unwrap().committed, small());
		assert_eq!(Staking::slashable(&ALICE), 0);
		release(ALICE, small());
		assert_eq!(Staking::ledger(&ALICE), None);
	});
}

#[test]
fn commit_overflow() {
	build_and_execute(|| {
		set_requirement(requirement());
		bond(ALICE, 1_000);
		let max = Resources { cpu_millicores: u32::MAX, ..Default::default() };
		set_requirement(StakeRequirement::default());
		assert_ok!(commit(ALICE, max));
		assert_noop!(commit(ALICE, small()), Error::<Test>::Overflow);
		set_requirement(StakeRequirement { per_cpu_millicore: Balance::MAX, ..requirement() });
		assert_eq!(Staking::required_for(&ALICE), Balance::MAX);
		assert_noop!(
			commit(ALICE, Resources { gpus: 1, ..Default::default() }),
			Error::<Test>::Overflow
		);
		assert_noop!(Staking::unbond(RuntimeOrigin::signed(ALICE), 10), Error::<Test>::Overflow);
	});
}

#[test]
fn release_frees_the_commitment() {
	build_and_execute(|| {
		bond(ALICE, 1_000);
		assert_ok!(commit(ALICE, small()));
		release(ALICE, small());
		assert!(Staking::ledger(&ALICE).unwrap().committed.is_zero());
		assert_eq!(Staking::required_for(&BOB), 0);
	});
}

// ----- slashing -----

/// ALICE with 500 active, 200 unlocking at block 11 and 300 at block 12.
fn bond_with_two_chunks() {
	bond(ALICE, 1_000);
	unbond(ALICE, 200);
	run_to_block(2);
	unbond(ALICE, 300);
	assert_eq!(chunks(ALICE), vec![(200, 11), (300, 12)]);
}

#[test]
fn slash_takes_active_then_newest_chunks() {
	build_and_execute(|| {
		bond_with_two_chunks();
		let outcome = slash(ALICE, 700, 100);
		assert_eq!(outcome, SlashOutcome { slashed: 700, compensated: 100, to_treasury: 600 });
		assert_eq!(active(ALICE), 0);
		assert_eq!(chunks(ALICE), vec![(200, 11), (100, 12)]);
		assert_eq!(stake_held(ALICE), 300);
		assert_eq!(TotalStake::<Test>::get(), 300);
		System::assert_last_event(
			Event::Slashed {
				provider: ALICE,
				amount: 700,
				compensated: 100,
				victim: PUBLISHER,
				to_treasury: 600,
			}
			.into(),
		);
		// Next the newest chunk goes, then the older one.
		let outcome = slash(ALICE, 150, 0);
		assert_eq!(outcome, SlashOutcome { slashed: 150, compensated: 0, to_treasury: 150 });
		assert_eq!(chunks(ALICE), vec![(150, 11)]);
	});
}

#[test]
fn slash_pays_compensation_first_then_treasury() {
	build_and_execute(|| {
		bond(ALICE, 1_000);
		let outcome = slash(ALICE, 400, 250);
		assert_eq!(outcome, SlashOutcome { slashed: 400, compensated: 250, to_treasury: 150 });
		assert_eq!(free(PUBLISHER), ENDOWMENT + 250);
		assert_eq!(free(TREASURY), ENDOWMENT + 150);
		assert_eq!(free(ALICE), ENDOWMENT - 1_000);
		assert_eq!(active(ALICE), 600);
		// Compensation above the slash is capped by it.
		let outcome = slash(ALICE, 100, 1_000);
		assert_eq!(outcome, SlashOutcome { slashed: 100, compensated: 100, to_treasury: 0 });
		assert_eq!(free(PUBLISHER), ENDOWMENT + 350);
	});
}

#[test]
fn slash_more_than_stake_takes_what_there_is() {
	build_and_execute(|| {
		bond_with_two_chunks();
		let outcome = slash(ALICE, 5_000, 100);
		assert_eq!(outcome, SlashOutcome { slashed: 1_000, compensated: 100, to_treasury: 900 });
		assert_eq!(stake_held(ALICE), 0);
		assert_eq!(Staking::ledger(&ALICE), None);
		assert_eq!(TotalStake::<Test>::get(), 0);
		// Nothing left to take: no event, empty outcome.
		System::reset_events();
		assert_eq!(slash(ALICE, 10, 10), SlashOutcome::default());
		assert!(System::events().is_empty());
	});
}

#[test]
fn slash_keeps_ledger_with_commitments() {
	build_and_execute(|| {
		set_requirement(requirement());
		bond(ALICE, SMALL_REQUIRED);
		assert_ok!(commit(ALICE, small()));
		slash(ALICE, SMALL_REQUIRED, 0);
		let ledger = Staking::ledger(&ALICE).unwrap();
		assert_eq!((ledger.total(), ledger.committed), (0, small()));
		// Below its requirement, the provider cannot take more until it bonds again.
		assert_noop!(commit(ALICE, small()), Error::<Test>::InsufficientStake);
		bond(ALICE, 2 * SMALL_REQUIRED);
		assert_ok!(commit(ALICE, small()));
	});
}

#[test]
fn unbonding_stake_is_slashable_until_withdrawn() {
	build_and_execute(|| {
		bond(ALICE, 1_000);
		unbond(ALICE, 1_000);
		run_to_block(1 + UNBONDING_PERIOD);
		// Due but not withdrawn: still slashable.
		assert_eq!(Staking::slashable(&ALICE), 1_000);
		assert_eq!(slash(ALICE, 300, 0).slashed, 300);
		assert_ok!(Staking::withdraw_unbonded(RuntimeOrigin::signed(ALICE)));
		System::assert_last_event(Event::Withdrawn { who: ALICE, amount: 700 }.into());
		assert_eq!(free(ALICE), ENDOWMENT - 300);
		assert_eq!(slash(ALICE, 300, 0), SlashOutcome::default());
	});
}

#[test]
fn failed_compensation_goes_to_treasury() {
	build_and_execute(|| {
		bond(ALICE, 1_000);
		// Less than the existential deposit cannot create the victim's account.
		let outcome = <Staking as StakeSlasher<_, _>>::slash(&ALICE, 100, &NOBODY, ED - 1);
		assert_eq!(outcome, SlashOutcome { slashed: 100, compensated: 0, to_treasury: 100 });
		assert_eq!(free(NOBODY), 0);
		assert_eq!(free(TREASURY), ENDOWMENT + 100);
		assert_eq!(stake_held(ALICE), 900);
	});
}

#[test]
fn failed_payments_leave_the_stake_held() {
	build_and_execute(|| {
		bond(ALICE, 1_000);
		Treasury::set(&(NOBODY + 1));
		System::reset_events();
		let outcome = <Staking as StakeSlasher<_, _>>::slash(&ALICE, ED - 1, &NOBODY, ED - 1);
		assert_eq!(outcome, SlashOutcome::default());
		assert_eq!(stake_held(ALICE), 1_000);
		assert_eq!(active(ALICE), 1_000);
		assert!(System::events().is_empty());
		// The victim's payment fails, the treasury's succeeds: only that leaves the stake.
		Treasury::set(&TREASURY);
		let outcome = <Staking as StakeSlasher<_, _>>::slash(&ALICE, ED - 1, &NOBODY, ED - 1);
		assert_eq!(outcome, SlashOutcome { slashed: ED - 1, compensated: 0, to_treasury: ED - 1 });
	});
}

#[test]
fn self_compensation_goes_to_treasury() {
	build_and_execute(|| {
		bond(ALICE, 1_000);
		let outcome = <Staking as StakeSlasher<_, _>>::slash(&ALICE, 100, &ALICE, 100);
		assert_eq!(outcome, SlashOutcome { slashed: 100, compensated: 0, to_treasury: 100 });
		assert_eq!(free(ALICE), ENDOWMENT - 1_000);
	});
}

#[test]
fn slash_without_stake_does_nothing() {
	build_and_execute(|| {
		assert_eq!(slash(BOB, 100, 100), SlashOutcome::default());
		bond(ALICE, 1_000);
		assert_eq!(slash(ALICE, 0, 0), SlashOutcome::default());
		assert_eq!(stake_held(ALICE), 1_000);
	});
}

#[test]
fn total_stake_sums_providers() {
	build_and_execute(|| {
		bond(ALICE, 1_000);
		bond(BOB, 2_000);
		unbond(BOB, 500);
		slash(ALICE, 100, 0);
		assert_eq!(TotalStake::<Test>::get(), 2_900);
	});
}
