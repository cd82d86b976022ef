//! Attacks on the market's money, one test each, named after the attack. Each one worked on
//! the market before deals carried debt, limits and a queued exhaustion block.

use super::*;

fn state(id: DeploymentId) -> DeploymentState<BlockNumber> {
	Deployments::<Test>::get(id).unwrap().state
}

/// A metered deal whose provider reported more than its escrow holds at block 3: out of
/// funds and in debt. Its id and the block its grace period ends.
fn out_of_funds_in_debt() -> (DeploymentId, BlockNumber) {
	let id = create_active(BillingMode::Metered, 700);
	run_to_block(3);
	submit(vec![report(id, 1, 3)]);
	let DeploymentState::OutOfFunds { grace_ends, .. } = state(id) else { panic!("out of funds") };
	(id, grace_ends)
}

fn raise_prices(factor: Balance) {
	let p = prices();
	let raised = Prices {
		cpu_per_millicore_second: p.cpu_per_millicore_second * factor,
		memory_per_mib_second: p.memory_per_mib_second * factor,
		storage_per_gib_second: p.storage_per_gib_second * factor,
		gpu_per_second: p.gpu_per_second * factor,
		egress_per_byte: p.egress_per_byte * factor,
	};
	assert_ok!(set_prices(PROVIDER, raised));
}

/// Limits admitting exactly the current quote.
fn exact_limits() -> DealLimits<Balance> {
	DealLimits { max_prices: prices(), max_egress_bytes_per_second: MAX_EGRESS_PER_SECOND }
}

#[test]
fn reserved_deal_left_alone_for_a_month_pays_for_every_block_it_ran() {
	build_and_execute(|| {
		let deposit = 10 * SMALL_PER_BLOCK;
		let id = create_active(BillingMode::Reserved, deposit);
		let provider_before = Balances::balance(&PROVIDER);
		// A month of 6 s blocks, and nobody calls anything.
		run_to_block(30 * 24 * 600);
		// The deal went out of funds at block 11, when the escrow ran out, ran its grace
		// period (owed, and written off in the open since nothing else was held), and ended.
		assert!(Deployments::<Test>::get(id).is_none());
		System::assert_has_event(Event::OutOfFunds { id, since: 11, grace_ends: 16 }.into());
		System::assert_has_event(
			Event::DeploymentClosed { id, reason: CloseReason::OutOfFunds, refunded: 0 }.into(),
		);
		assert_eq!(Balances::balance(&PROVIDER), provider_before + deposit);
		assert_eq!(
			UnpaidDebts::<Test>::get(PUBLISHER),
			UnpaidRecord { deals: 1, amount: 5 * SMALL_PER_BLOCK }
		);
		assert_eq!(reserved(PROVIDER), Resources::default());
	});
}

#[test]
fn rent_left_alone_goes_out_of_funds_when_its_escrow_runs_out() {
	build_and_execute(|| {
		// List prices ×10 (10, 10, 20 a unit): the rent of the whole provider is 10% off,
		// (9 × 1000 + 9 × 100 + 18 × 10) × 6 = 60,480 a block.
		raise_prices(10);
		let per_block = 60_480;
		assert_ok!(Market::create_rent(
			RuntimeOrigin::signed(PUBLISHER),
			PROVIDER,
			limits(),
			5 * per_block
		));
		let id = NextDeploymentId::<Test>::get() - 1;
		assert_ok!(Market::accept_deployment(RuntimeOrigin::signed(PROVIDER), id));
		assert_eq!(Market::bill(id).unwrap().funded_until, Some(6));
		run_to_block(6);
		assert_eq!(
			state(id),
			DeploymentState::OutOfFunds { accepted_at: 1, since: 6, grace_ends: 11 }
		);
		let bill = Market::bill(id).unwrap();
		assert_eq!((bill.total, bill.escrow), (5 * per_block, 0));
		run_to_block(11);
		System::assert_has_event(
			Event::DebtWrittenOff { id, publisher: PUBLISHER, amount: 5 * per_block }.into(),
		);
		assert_eq!(Rents::<Test>::get(PROVIDER), None);
	});
}

#[test]
fn grace_stretching_with_token_top_ups_is_refused() {
	build_and_execute(|| {
		let (id, grace_ends) = out_of_funds_in_debt();
		run_to_block(grace_ends - 1);
		// One planck no longer buys a new grace period.
		assert_noop!(
			Market::top_up(RuntimeOrigin::signed(PUBLISHER), id, 1),
			Error::<Test>::TopUpBelowDebt
		);
		let debt = Deployments::<Test>::get(id).unwrap().debt;
		assert_noop!(
			Market::top_up(RuntimeOrigin::signed(PUBLISHER), id, debt + SMALL_PER_BLOCK - 1),
			Error::<Test>::TopUpBelowDebt
		);
		// The grace period ends: the deal stops, the provider may report the grace usage.
		run_to_block(grace_ends);
		assert!(matches!(
			state(id),
			DeploymentState::Closing { closed_at, reason: CloseReason::OutOfFunds, .. }
				if closed_at == grace_ends
		));
		assert_noop!(
			Market::top_up(RuntimeOrigin::signed(PUBLISHER), id, 1_000_000),
			Error::<Test>::NotActive
		);
		submit(vec![report(id, 3, grace_ends)]);
		System::assert_has_event(
			Event::DeploymentClosed { id, reason: CloseReason::OutOfFunds, refunded: 0 }.into(),
		);
		assert_eq!(UnpaidDebts::<Test>::get(PUBLISHER).deals, 1);
	});
}

#[test]
fn provider_raising_prices_ahead_of_a_deal_is_refused() {
	build_and_execute(|| {
		// The publisher saw the quote; the provider raises it ×1000 before the deal executes.
		raise_prices(1000);
		let go = |billing| {
			Market::create_deployment(
				RuntimeOrigin::signed(PUBLISHER),
				PROVIDER,
				MANIFEST,
				small(),
				billing,
				None,
				exact_limits(),
				1_000_000,
			)
		};
		assert_noop!(go(BillingMode::Metered), Error::<Test>::PriceAboveLimit);
		assert_noop!(go(BillingMode::Reserved), Error::<Test>::PriceAboveLimit);
		assert_noop!(
			Market::create_rent(
				RuntimeOrigin::signed(PUBLISHER),
				PROVIDER,
				exact_limits(),
				1_000_000
			),
			Error::<Test>::PriceAboveLimit
		);
		// A unit the deal does not reserve does not count (the test deals reserve no GPU);
		// egress always does.
		assert_ok!(set_prices(PROVIDER, Prices { gpu_per_second: 5, ..prices() }));
		assert_ok!(Market::create_deployment(
			RuntimeOrigin::signed(PUBLISHER),
			PROVIDER,
			MANIFEST,
			small(),
			BillingMode::Metered,
			None,
			exact_limits(),
			10_000,
		));
		let no_egress = DealLimits {
			max_prices: Prices { egress_per_byte: 0, gpu_per_second: 5, ..prices() },
			..exact_limits()
		};
		assert_noop!(
			Market::create_deployment(
				RuntimeOrigin::signed(PUBLISHER),
				PROVIDER,
				MANIFEST,
				small(),
				BillingMode::Metered,
				None,
				no_egress,
				10_000,
			),
			Error::<Test>::PriceAboveLimit
		);
	});
}

#[test]
fn egress_beyond_the_deal_limit_is_refused() {
	build_and_execute(|| {
		let limits = DealLimits { max_egress_bytes_per_second: 10, ..limits() };
		assert_ok!(Market::create_deployment(
			RuntimeOrigin::signed(PUBLISHER),
			PROVIDER,
			MANIFEST,
			small(),
			BillingMode::Metered,
			None,
			limits,
			100_000,
		));
		let id = NextDeploymentId::<Test>::get() - 1;
		assert_ok!(Market::accept_deployment(RuntimeOrigin::signed(PROVIDER), id));
		run_to_block(3);
		// Two blocks, 12 s: at most 120 bytes.
		let mut greedy = report(id, 1, 3);
		greedy.egress_bytes = 121;
		submit(vec![greedy]);
		System::assert_last_event(
			Event::UsageReportRejected { id, error: Error::<Test>::UsageAboveReserved.into() }
				.into(),
		);
		let mut fair = report(id, 1, 3);
		fair.egress_bytes = 120;
		submit(vec![fair]);
		assert_eq!(Deployments::<Test>::get(id).unwrap().charged.egress, 120);
		// Nobody can agree to more than the chain allows.
		let unbounded =
			DealLimits { max_egress_bytes_per_second: MAX_EGRESS_PER_SECOND + 1, ..limits };
		assert_noop!(
			Market::create_deployment(
				RuntimeOrigin::signed(PUBLISHER),
				PROVIDER,
				MANIFEST,
				small(),
				BillingMode::Metered,
				None,
				unbounded,
				100_000,
			),
			Error::<Test>::EgressLimitTooHigh
		);
	});
}

#[test]
fn reserving_a_whole_provider_for_free_is_refused() {
	build_and_execute(|| {
		let whole = Resources { cpu_millicores: 1000, memory_mib: 100, storage_gib: 10, gpus: 0 };
		// (1000 + 100 + 20) a second for the minimum prepaid 6 s.
		let min = 1120 * 6;
		let go = |deposit| {
			Market::create_deployment(
				RuntimeOrigin::signed(PUBLISHER),
				PROVIDER,
				MANIFEST,
				whole,
				BillingMode::Metered,
				None,
				limits(),
				deposit,
			)
		};
		assert_noop!(go(100), Error::<Test>::DepositTooLow);
		assert_noop!(go(min - 1), Error::<Test>::DepositTooLow);
		assert_ok!(go(min));
	});
}

#[test]
fn closing_with_nothing_left_to_report_refunds_at_once() {
	build_and_execute(|| {
		let id = create_active(BillingMode::Metered, 10_000);
		run_to_block(3);
		submit(vec![report(id, 1, 3)]);
		let escrow = Deployments::<Test>::get(id).unwrap().escrow;
		let before = Balances::balance(&PUBLISHER);
		assert_ok!(Market::close_deployment(
			RuntimeOrigin::signed(PUBLISHER),
			id,
			CloseReason::PublisherRequest
		));
		System::assert_last_event(
			Event::DeploymentClosed { id, reason: CloseReason::PublisherRequest, refunded: escrow }
				.into(),
		);
		assert_eq!(Balances::balance(&PUBLISHER), before + escrow);
	});
}

#[test]
fn name_deposit_pays_the_debt_before_anything_is_written_off() {
	build_and_execute(|| {
		let id = create_active(BillingMode::Reserved, SMALL_PER_BLOCK);
		assert_ok!(Market::register_name(
			RuntimeOrigin::signed(PUBLISHER),
			id,
			b"web".to_vec().try_into().unwrap()
		));
		run_to_block(2);
		assert!(matches!(state(id), DeploymentState::OutOfFunds { .. }));
		// Out of funds, the deposit stays towards the debt.
		assert_noop!(
			Market::release_name(RuntimeOrigin::signed(PUBLISHER), id),
			Error::<Test>::NotActive
		);
		let provider_before = Balances::balance(&PROVIDER);
		run_to_block(7);
		// Five blocks of grace owed; the name deposit pays NAME_DEPOSIT of it.
		System::assert_has_event(Event::DebtPaid { id, amount: NAME_DEPOSIT, fee: 0 }.into());
		System::assert_has_event(
			Event::DebtWrittenOff {
				id,
				publisher: PUBLISHER,
				amount: 5 * SMALL_PER_BLOCK - NAME_DEPOSIT,
			}
			.into(),
		);
		assert_eq!(Balances::balance(&PROVIDER), provider_before + NAME_DEPOSIT);
		assert_eq!(Balances::balance_on_hold(&HoldReason::NameDeposit.into(), &PUBLISHER), 0);
	});
}

#[test]
fn repeated_settle_does_not_fill_the_queue() {
	build_and_execute(|| {
		let id = create_active(BillingMode::Reserved, 100 * SMALL_PER_BLOCK);
		let queued = || Expiries::<Test>::iter_values().map(|page| page.len()).sum::<usize>();
		assert_eq!(queued(), 1);
		for block in 2..20 {
			run_to_block(block);
			for _ in 0..5 {
				assert_ok!(Market::settle(RuntimeOrigin::signed(OTHER_PUBLISHER), id));
			}
		}
		assert_eq!(queued(), 1);
	});
}

#[test]
fn a_provider_cannot_bill_past_the_grace_period() {
	build_and_execute(|| {
		let (id, grace_ends) = out_of_funds_in_debt();
		run_to_block(grace_ends + 2);
		submit(vec![report(id, 3, grace_ends + 1)]);
		System::assert_last_event(
			Event::UsageReportRejected { id, error: Error::<Test>::InvalidPeriod.into() }.into(),
		);
	});
}

#[test]
fn a_top_up_after_the_grace_period_ended_does_not_revive_the_deal() {
	build_and_execute(|| {
		// Fill the queue so the hook is late to the deal's grace end.
		MaxExpiries::set(1);
		let id = create_active(BillingMode::Reserved, SMALL_PER_BLOCK);
		// Entries for a deal that does not exist take the hook's budget.
		for _ in 0..12 {
			Market::schedule_expiry(7, 1_000);
		}
		run_to_block(8);
		// Grace ended at block 7; the hook has not got to it, the top-up still sees it.
		assert!(Deployments::<Test>::get(id).is_some());
		assert_noop!(
			Market::top_up(RuntimeOrigin::signed(PUBLISHER), id, 1_000_000),
			Error::<Test>::NotActive
		);
		// Anyone's settle ends it as of block 7.
		assert_ok!(Market::settle(RuntimeOrigin::signed(OTHER_PUBLISHER), id));
		assert!(Deployments::<Test>::get(id).is_none());
		MaxExpiries::set(2);
	});
}
