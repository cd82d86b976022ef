//! Unit tests of every call and named error; `properties` drives random call sequences.

use crate::{mock::*, *};
use frame_support::{
	assert_noop, assert_ok,
	traits::fungible::{Inspect, InspectHold},
};
use sp_runtime::{DispatchError, Perbill, Permill};

mod adversarial;
mod properties;
mod rent;

const MANIFEST: ManifestHash = [7u8; 32];

/// `provider` changes its prices and nothing else.
fn set_prices(provider: AccountId, prices: Prices<Balance>) -> sp_runtime::DispatchResult {
	let update = pallet_registry::ProviderUpdate {
		capacity: None,
		prices: Some(prices),
		rent_discount: None,
		endpoint: None,
		gateway_url: None,
		ingress_domain: None,
	};
	Registry::update_provider(RuntimeOrigin::signed(provider), update)
}

fn create(billing: BillingMode, deposit: Balance) -> DeploymentId {
	let id = NextDeploymentId::<Test>::get();
	assert_ok!(Market::create_deployment(
		RuntimeOrigin::signed(PUBLISHER),
		PROVIDER,
		MANIFEST,
		small(),
		billing,
		None,
		limits(),
		deposit,
	));
	id
}

fn create_active(billing: BillingMode, deposit: Balance) -> DeploymentId {
	let id = create(billing, deposit);
	assert_ok!(Market::accept_deployment(RuntimeOrigin::signed(PROVIDER), id));
	id
}

/// Escrow of `who`'s open deals (the escrow account holds it: `try_state` checks the sum).
fn escrow_held(who: AccountId) -> Balance {
	Deployments::<Test>::iter_values().filter(|d| d.publisher == who).map(|d| d.escrow).sum()
}

fn report(id: DeploymentId, start: BlockNumber, end: BlockNumber) -> UsageReport<BlockNumber> {
	UsageReport {
		deployment: id,
		period_start: start,
		period_end: end,
		cpu_millicore_seconds: 50 * 6 * (end - start),
		memory_mib_seconds: 10 * 6 * (end - start),
		storage_gib_seconds: 6 * (end - start),
		gpu_seconds: 0,
		egress_bytes: 100,
	}
}

fn submit(reports: Vec<UsageReport<BlockNumber>>) {
	assert_ok!(Market::report_usage(RuntimeOrigin::signed(PROVIDER), reports.try_into().unwrap()));
}

fn reserved(provider: AccountId) -> Resources {
	pallet_registry::Providers::<Test>::get(provider).unwrap().reserved
}

#[test]
fn create_locks_quote_and_holds_deposit() {
	build_and_execute(|| {
		let id = create(BillingMode::Reserved, 10_000);
		let deal = Deployments::<Test>::get(id).unwrap();
		assert_eq!(deal.prices, prices());
		assert_eq!(deal.escrow, 10_000);
		assert_eq!(deal.state, DeploymentState::Pending { created_at: 1 });
		assert_eq!(escrow_held(PUBLISHER), 10_000);
		assert_eq!(OpenDeals::<Test>::get(PROVIDER), 1);
		assert!(ProviderDeployments::<Test>::contains_key(PROVIDER, id));
		assert!(PublisherDeployments::<Test>::contains_key(PUBLISHER, id));
		System::assert_last_event(
			Event::DeploymentCreated {
				id,
				publisher: PUBLISHER,
				provider: PROVIDER,
				deposit: 10_000,
			}
			.into(),
		);
		// A later price change does not touch the deal.
		assert_ok!(set_prices(PROVIDER, Prices { cpu_per_millicore_second: 50, ..prices() }));
		assert_eq!(Deployments::<Test>::get(id).unwrap().prices, prices());
	});
}

#[test]
fn create_refuses_bad_input() {
	build_and_execute(|| {
		let origin = RuntimeOrigin::signed(PUBLISHER);
		let go = |provider, resources, deposit| {
			Market::create_deployment(
				origin.clone(),
				provider,
				MANIFEST,
				resources,
				BillingMode::Metered,
				None,
				limits(),
				deposit,
			)
		};
		assert_noop!(go(PUBLISHER, small(), 1_000), Error::<Test>::ProviderUnavailable);
		assert_noop!(go(PROVIDER, Resources::default(), 1_000), Error::<Test>::ZeroResources);
		assert_noop!(go(PROVIDER, small(), 99), Error::<Test>::DepositTooLow);
		assert_noop!(go(PROVIDER, small(), ENDOWMENT), Error::<Test>::InsufficientBalance);
		assert_ok!(Registry::pause_provider(RuntimeOrigin::signed(PROVIDER)));
		assert_noop!(go(PROVIDER, small(), 1_000), Error::<Test>::ProviderUnavailable);
	});
}

#[test]
fn accept_reserves_capacity_and_reject_refunds() {
	build_and_execute(|| {
		let id = create(BillingMode::Reserved, 10_000);
		assert_noop!(
			Market::accept_deployment(RuntimeOrigin::signed(OTHER_PROVIDER), id),
			Error::<Test>::NotProvider
		);
		assert_noop!(
			Market::accept_deployment(RuntimeOrigin::signed(PROVIDER), 42),
			Error::<Test>::UnknownDeployment
		);
		assert_ok!(Market::accept_deployment(RuntimeOrigin::signed(PROVIDER), id));
		assert_eq!(reserved(PROVIDER), small());
		assert_noop!(
			Market::accept_deployment(RuntimeOrigin::signed(PROVIDER), id),
			Error::<Test>::NotPending
		);
		assert_noop!(
			Market::reject_deployment(RuntimeOrigin::signed(PROVIDER), id),
			Error::<Test>::NotPending
		);

		let other = create(BillingMode::Reserved, 5_000);
		assert_noop!(
			Market::reject_deployment(RuntimeOrigin::signed(PUBLISHER), other),
			Error::<Test>::NotProvider
		);
		assert_ok!(Market::reject_deployment(RuntimeOrigin::signed(PROVIDER), other));
		System::assert_last_event(
			Event::DeploymentClosed { id: other, reason: CloseReason::Rejected, refunded: 5_000 }
				.into(),
		);
		assert_eq!(escrow_held(PUBLISHER), 10_000);
	});
}

#[test]
fn accept_fails_without_free_capacity() {
	build_and_execute(|| {
		let big = Resources { cpu_millicores: 900, memory_mib: 10, storage_gib: 1, gpus: 0 };
		for _ in 0..2 {
			assert_ok!(Market::create_deployment(
				RuntimeOrigin::signed(PUBLISHER),
				PROVIDER,
				MANIFEST,
				big,
				BillingMode::Reserved,
				None,
				limits(),
				10_000,
			));
		}
		assert_ok!(Market::accept_deployment(RuntimeOrigin::signed(PROVIDER), 0));
		assert_noop!(
			Market::accept_deployment(RuntimeOrigin::signed(PROVIDER), 1),
			pallet_registry::Error::<Test>::InsufficientCapacity
		);
	});
}

#[test]
fn cancel_only_after_acceptance_timeout() {
	build_and_execute(|| {
		let id = create(BillingMode::Metered, 1_000);
		assert_noop!(
			Market::cancel_deployment(RuntimeOrigin::signed(OTHER_PUBLISHER), id),
			Error::<Test>::NotPublisher
		);
		assert_noop!(
			Market::cancel_deployment(RuntimeOrigin::signed(PUBLISHER), id),
			Error::<Test>::AcceptanceNotTimedOut
		);
		run_to_block(11);
		let before = Balances::balance(&PUBLISHER);
		assert_ok!(Market::cancel_deployment(RuntimeOrigin::signed(PUBLISHER), id));
		assert_eq!(Balances::balance(&PUBLISHER), before + 1_000);
		assert_eq!(OpenDeals::<Test>::get(PROVIDER), 0);
		assert!(Deployments::<Test>::get(id).is_none());

		let accepted = create_active(BillingMode::Metered, 1_000);
		assert_noop!(
			Market::cancel_deployment(RuntimeOrigin::signed(PUBLISHER), accepted),
			Error::<Test>::NotPending
		);
	});
}

#[test]
fn reserved_billing_is_lazy_and_itemised() {
	build_and_execute(|| {
		ProtocolFee::<Test>::put(Perbill::from_percent(10));
		let id = create_active(BillingMode::Reserved, 100_000);
		run_to_block(11);
		let provider_before = Balances::balance(&PROVIDER);
		let treasury_before = Balances::balance(&TREASURY);
		assert_eq!(Market::bill(id).unwrap().accrued, 10 * SMALL_PER_BLOCK);
		assert_ok!(Market::settle(RuntimeOrigin::signed(OTHER_PUBLISHER), id));
		let total = 10 * SMALL_PER_BLOCK;
		let fee = total / 10;
		System::assert_has_event(
			Event::Settled {
				id,
				period_start: 1,
				period_end: 11,
				charges: Charges { cpu: 6_000, memory: 600, storage: 120, gpu: 0, egress: 0 },
				total,
				fee,
				unpaid: 0,
			}
			.into(),
		);
		assert_eq!(Balances::balance(&PROVIDER), provider_before + total - fee);
		assert_eq!(Balances::balance(&TREASURY), treasury_before + fee);
		assert_eq!(escrow_held(PUBLISHER), 100_000 - total);
		let bill = Market::bill(id).unwrap();
		assert_eq!(
			(bill.total, bill.escrow, bill.settled_until, bill.accrued),
			(total, 100_000 - total, 11, 0)
		);
		// Settling twice in a block charges nothing more.
		assert_ok!(Market::settle(RuntimeOrigin::signed(PUBLISHER), id));
		assert_eq!(Market::bill(id).unwrap().total, total);
	});
}

#[test]
fn reserved_funds_run_out_at_their_block_and_grace_becomes_debt() {
	build_and_execute(|| {
		// Three blocks prepaid from block 1: the escrow pays up to block 4.
		let id = create_active(BillingMode::Reserved, 3 * SMALL_PER_BLOCK);
		assert_eq!(Market::bill(id).unwrap().funded_until, Some(4));
		// Nobody touches the deal: the queue puts it out of funds at block 4.
		run_to_block(4);
		System::assert_has_event(Event::OutOfFunds { id, since: 4, grace_ends: 9 }.into());
		assert_eq!(Market::bill(id).unwrap().total, 3 * SMALL_PER_BLOCK);
		assert_eq!(reserved(PROVIDER), small());
		let provider_before = Balances::balance(&PROVIDER);
		run_to_block(9);
		// The grace period ran (five blocks) and is owed; nothing held pays it, so it is
		// written off in the open and counted against the publisher.
		System::assert_has_event(
			Event::DebtWrittenOff { id, publisher: PUBLISHER, amount: 5 * SMALL_PER_BLOCK }.into(),
		);
		System::assert_last_event(
			Event::DeploymentClosed { id, reason: CloseReason::OutOfFunds, refunded: 0 }.into(),
		);
		assert_eq!(
			UnpaidDebts::<Test>::get(PUBLISHER),
			UnpaidRecord { deals: 1, amount: 5 * SMALL_PER_BLOCK }
		);
		assert_eq!(Balances::balance(&PROVIDER), provider_before);
		assert_eq!(reserved(PROVIDER), Resources::default());
		assert_eq!(escrow_pool(), 0);
	});
}

#[test]
fn top_up_pays_the_debt_then_restores() {
	build_and_execute(|| {
		let id = create_active(BillingMode::Reserved, 2 * SMALL_PER_BLOCK);
		run_to_block(4);
		assert!(matches!(
			Deployments::<Test>::get(id).unwrap().state,
			DeploymentState::OutOfFunds { since: 3, grace_ends: 8, .. }
		));
		assert_noop!(
			Market::top_up(RuntimeOrigin::signed(PUBLISHER), id, 0),
			Error::<Test>::ZeroTopUp
		);
		assert_noop!(
			Market::top_up(RuntimeOrigin::signed(OTHER_PUBLISHER), id, 10),
			Error::<Test>::NotPublisher
		);
		run_to_block(6);
		// Blocks 3..6 of grace are owed; with one block prepaid that is the least top-up.
		let debt = 3 * SMALL_PER_BLOCK;
		assert_noop!(
			Market::top_up(RuntimeOrigin::signed(PUBLISHER), id, debt + SMALL_PER_BLOCK - 1),
			Error::<Test>::TopUpBelowDebt
		);
		let provider_before = Balances::balance(&PROVIDER);
		assert_ok!(Market::top_up(RuntimeOrigin::signed(PUBLISHER), id, 50_000));
		System::assert_has_event(Event::DebtPaid { id, amount: debt, fee: 0 }.into());
		System::assert_has_event(Event::Restored { id }.into());
		assert_eq!(Balances::balance(&PROVIDER), provider_before + debt);
		let deal = Deployments::<Test>::get(id).unwrap();
		assert_eq!(deal.state, DeploymentState::Active { accepted_at: 1 });
		assert_eq!((deal.settled_until, deal.escrow, deal.debt), (6, 50_000 - debt, 0));
		// The stale queue entry at the old grace end does nothing.
		run_to_block(12);
		assert!(Deployments::<Test>::get(id).is_some());
		assert_ok!(Market::settle(RuntimeOrigin::signed(PUBLISHER), id));
		assert_eq!(Market::bill(id).unwrap().escrow, 50_000 - debt - 6 * SMALL_PER_BLOCK);
	});
}

#[test]
fn the_deadline_queue_never_forgets() {
	build_and_execute(|| {
		// Pages of two: seven deals running out at the same block need four pages, and the
		// hook takes one page a block.
		let ids: Vec<_> = (0..7).map(|_| create(BillingMode::Reserved, SMALL_PER_BLOCK)).collect();
		for id in &ids {
			assert_ok!(Market::accept_deployment(RuntimeOrigin::signed(PROVIDER), *id));
		}
		assert_eq!(ExpiryPages::<Test>::get(2), 4);
		run_to_block(2);
		let out = || {
			ids.iter()
				.filter(|id| {
					matches!(
						Deployments::<Test>::get(*id).unwrap().state,
						DeploymentState::OutOfFunds { .. }
					)
				})
				.count()
		};
		assert_eq!(out(), 2);
		run_to_block(5);
		assert_eq!(out(), 7);
		// Each ran out at block 2, however late the hook got to it.
		for id in &ids {
			assert!(matches!(
				Deployments::<Test>::get(id).unwrap().state,
				DeploymentState::OutOfFunds { since: 2, grace_ends: 7, .. }
			));
		}
		run_to_block(12);
		assert_eq!(Deployments::<Test>::iter().count(), 0);
	});
}

#[test]
fn metered_reports_are_checked_one_by_one() {
	build_and_execute(|| {
		ProtocolFee::<Test>::put(Perbill::from_percent(5));
		let id = create_active(BillingMode::Metered, 1_000_000);
		let reserved_id = create_active(BillingMode::Reserved, 1_000);
		run_to_block(5);
		let provider_before = Balances::balance(&PROVIDER);
		let mut too_much = report(id, 3, 5);
		too_much.cpu_millicore_seconds = 100 * 6 * 2 + 1;
		submit(vec![
			report(id, 1, 3),
			report(id, 1, 3),
			report(id, 4, 5),
			report(id, 3, 6),
			too_much,
			report(reserved_id, 1, 2),
			report(77, 1, 2),
			report(id, 3, 5),
		]);
		let rejected = |error: DispatchError| {
			System::assert_has_event(Event::UsageReportRejected { id, error }.into())
		};
		rejected(Error::<Test>::PeriodNotContiguous.into());
		rejected(Error::<Test>::InvalidPeriod.into());
		rejected(Error::<Test>::UsageAboveReserved.into());
		System::assert_has_event(
			Event::UsageReportRejected { id: reserved_id, error: Error::<Test>::NotMetered.into() }
				.into(),
		);
		System::assert_has_event(
			Event::UsageReportRejected { id: 77, error: Error::<Test>::UnknownDeployment.into() }
				.into(),
		);
		// Two good periods: 1..3 and 3..5, 2 blocks (12 s) each.
		let per_period = 50 * 12 + 10 * 12 + 2 * 12 + 100;
		let deal = Deployments::<Test>::get(id).unwrap();
		assert_eq!(deal.settled_until, 5);
		assert_eq!(deal.charged.total(), 2 * per_period);
		assert_eq!(deal.charged.egress, 200);
		let fee = Perbill::from_percent(5) * per_period;
		assert_eq!(Balances::balance(&PROVIDER), provider_before + 2 * (per_period - fee));
	});
}

#[test]
fn only_the_provider_reports() {
	build_and_execute(|| {
		let id = create_active(BillingMode::Metered, 10_000);
		run_to_block(3);
		assert_ok!(Market::report_usage(
			RuntimeOrigin::signed(OTHER_PROVIDER),
			vec![report(id, 1, 2)].try_into().unwrap()
		));
		System::assert_last_event(
			Event::UsageReportRejected { id, error: Error::<Test>::NotProvider.into() }.into(),
		);
		let pending = create(BillingMode::Metered, 10_000);
		submit(vec![report(pending, 3, 3)]);
		System::assert_last_event(
			Event::UsageReportRejected { id: pending, error: Error::<Test>::NotActive.into() }
				.into(),
		);
	});
}

#[test]
fn a_report_larger_than_the_escrow_pays_what_is_left_and_owes_the_rest() {
	build_and_execute(|| {
		let id = create_active(BillingMode::Metered, 700);
		run_to_block(3);
		submit(vec![report(id, 1, 3)]);
		let cost = 2 * (50 * 6 + 10 * 6 + 2 * 6) + 100;
		let deal = Deployments::<Test>::get(id).unwrap();
		assert_eq!((deal.escrow, deal.debt), (0, cost - 700));
		assert_eq!(deal.charged.total(), cost);
		assert!(matches!(deal.state, DeploymentState::OutOfFunds { since: 3, .. }));
		assert_eq!(escrow_pool(), 0);
	});
}

#[test]
fn publisher_closes_metered_deal_after_the_last_report() {
	build_and_execute(|| {
		let id = create_active(BillingMode::Metered, 100_000);
		run_to_block(4);
		assert_noop!(
			Market::close_deployment(RuntimeOrigin::signed(PUBLISHER), id, CloseReason::Sla),
			Error::<Test>::InvalidCloseReason
		);
		assert_ok!(Market::close_deployment(
			RuntimeOrigin::signed(PUBLISHER),
			id,
			CloseReason::PublisherRequest
		));
		System::assert_last_event(Event::Closing { id, settle_by: 8 }.into());
		assert_eq!(reserved(PROVIDER), Resources::default());
		run_to_block(6);
		// The provider reports up to the close, not beyond.
		submit(vec![report(id, 1, 5)]);
		System::assert_last_event(
			Event::UsageReportRejected { id, error: Error::<Test>::InvalidPeriod.into() }.into(),
		);
		let before = Balances::balance(&PUBLISHER);
		submit(vec![report(id, 1, 4)]);
		let charged = 3 * (50 * 6 + 10 * 6 + 2 * 6) + 100;
		System::assert_has_event(
			Event::DeploymentClosed {
				id,
				reason: CloseReason::PublisherRequest,
				refunded: 100_000 - charged,
			}
			.into(),
		);
		assert_eq!(Balances::balance(&PUBLISHER), before + 100_000 - charged);
	});
}

#[test]
fn closing_deal_refunds_when_the_provider_stays_silent() {
	build_and_execute(|| {
		let id = create_active(BillingMode::Metered, 100_000);
		run_to_block(3);
		assert_ok!(Market::close_deployment(
			RuntimeOrigin::signed(PUBLISHER),
			id,
			CloseReason::PublisherRequest
		));
		assert_noop!(
			Market::top_up(RuntimeOrigin::signed(PUBLISHER), id, 10),
			Error::<Test>::NotActive
		);
		run_to_block(7);
		System::assert_last_event(
			Event::DeploymentClosed {
				id,
				reason: CloseReason::PublisherRequest,
				refunded: 100_000,
			}
			.into(),
		);
	});
}

#[test]
fn provider_close_reasons() {
	build_and_execute(|| {
		let id = create_active(BillingMode::Reserved, 100_000);
		let close = |who, reason| Market::close_deployment(RuntimeOrigin::signed(who), id, reason);
		assert_noop!(close(OTHER_PROVIDER, CloseReason::Sla), Error::<Test>::NotProvider);
		assert_noop!(close(PROVIDER, CloseReason::Rejected), Error::<Test>::InvalidCloseReason);
		assert_noop!(close(PROVIDER, CloseReason::OutOfFunds), Error::<Test>::InvalidCloseReason);
		run_to_block(3);
		let before = Balances::balance(&PUBLISHER);
		assert_ok!(close(PROVIDER, CloseReason::ProviderDecommission));
		let charged = 2 * SMALL_PER_BLOCK;
		System::assert_has_event(
			Event::DeploymentClosed {
				id,
				reason: CloseReason::ProviderDecommission,
				refunded: 100_000 - charged,
			}
			.into(),
		);
		assert_eq!(Balances::balance(&PUBLISHER), before + 100_000 - charged);
		assert_eq!(reserved(PROVIDER), Resources::default());
		assert_noop!(close(PROVIDER, CloseReason::Sla), Error::<Test>::UnknownDeployment);

		let pending = create(BillingMode::Reserved, 1_000);
		assert_noop!(
			Market::close_deployment(RuntimeOrigin::signed(PROVIDER), pending, CloseReason::Sla),
			Error::<Test>::NotActive
		);
	});
}

#[test]
fn manifest_updates_need_the_providers_acknowledgement() {
	build_and_execute(|| {
		let id = create_active(BillingMode::Metered, 1_000);
		let new = [9u8; 32];
		assert_noop!(
			Market::update_manifest(RuntimeOrigin::signed(PROVIDER), id, new),
			Error::<Test>::NotPublisher
		);
		assert_noop!(
			Market::update_manifest(RuntimeOrigin::signed(PUBLISHER), id, MANIFEST),
			Error::<Test>::SameManifest
		);
		assert_ok!(Market::update_manifest(RuntimeOrigin::signed(PUBLISHER), id, new));
		System::assert_last_event(Event::ManifestUpdateRequested { id, manifest_hash: new }.into());
		assert_noop!(
			Market::acknowledge_manifest(RuntimeOrigin::signed(PROVIDER), id, [1u8; 32]),
			Error::<Test>::ManifestMismatch
		);
		assert_noop!(
			Market::acknowledge_manifest(RuntimeOrigin::signed(PUBLISHER), id, new),
			Error::<Test>::NotProvider
		);
		assert_ok!(Market::acknowledge_manifest(RuntimeOrigin::signed(PROVIDER), id, new));
		let deal = Deployments::<Test>::get(id).unwrap();
		assert_eq!((deal.manifest_hash, deal.pending_manifest), (new, None));
	});
}

#[test]
fn protocol_fee_is_root_only() {
	build_and_execute(|| {
		assert_noop!(
			Market::set_protocol_fee(RuntimeOrigin::signed(PUBLISHER), Perbill::from_percent(1)),
			DispatchError::BadOrigin
		);
		assert_ok!(Market::set_protocol_fee(RuntimeOrigin::root(), Perbill::from_percent(1)));
		assert_eq!(Market::protocol_fee(), Perbill::from_percent(1));
	});
}

#[test]
fn registry_refuses_to_deregister_a_provider_with_deals() {
	build_and_execute(|| {
		let id = create(BillingMode::Metered, 1_000);
		assert_noop!(
			Registry::deregister_provider(RuntimeOrigin::signed(PROVIDER)),
			pallet_registry::Error::<Test>::HasOpenDeals
		);
		assert_ok!(Market::reject_deployment(RuntimeOrigin::signed(PROVIDER), id));
		assert_ok!(Registry::deregister_provider(RuntimeOrigin::signed(PROVIDER)));
	});
}

#[test]
fn sla_terms_are_stored() {
	build_and_execute(|| {
		let terms = SlaTerms {
			uptime_target: Permill::from_percent(99),
			window_blocks: 100,
			penalty_per_window: 50,
			health: podchain_primitives::HealthCheck::root_ok(),
		};
		assert_ok!(Market::create_deployment(
			RuntimeOrigin::signed(PUBLISHER),
			PROVIDER,
			MANIFEST,
			small(),
			BillingMode::Reserved,
			Some(terms.clone()),
			limits(),
			1_000,
		));
		assert_eq!(Deployments::<Test>::get(0).unwrap().sla, Some(terms));
	});
}

/// An SLA deal: the market tells the SLA pallet when it starts, while its manifest update is
/// pending, and when it ends with what its publisher paid; it shows the deal's name and
/// payment.
#[test]
fn the_sla_pallet_hears_of_an_sla_deals_life_and_payments() {
	use podchain_primitives::SlaDealInfo;
	build_and_execute(|| {
		let terms = SlaTerms {
			uptime_target: Permill::from_percent(99),
			window_blocks: 100,
			penalty_per_window: 50,
			health: podchain_primitives::HealthCheck::root_ok(),
		};
		let create = || {
			Market::create_deployment(
				RuntimeOrigin::signed(PUBLISHER),
				PROVIDER,
				MANIFEST,
				small(),
				BillingMode::Reserved,
				Some(terms.clone()),
				limits(),
				100_000,
			)
		};
		assert_ok!(create());
		// The provider tracks the most SLA deals it may: accepting fails, changing nothing.
		RecordingSla::set_full(true);
		assert!(Market::accept_deployment(RuntimeOrigin::signed(PROVIDER), 0).is_err());
		assert!(matches!(
			Deployments::<Test>::get(0).unwrap().state,
			DeploymentState::Pending { .. }
		));
		RecordingSla::set_full(false);
		assert_ok!(Market::accept_deployment(RuntimeOrigin::signed(PROVIDER), 0));
		assert_eq!(<Market as SlaDealInfo<Balance>>::name(0), None);
		assert_ok!(Market::register_name(
			RuntimeOrigin::signed(PUBLISHER),
			0,
			b"web".to_vec().try_into().unwrap()
		));
		assert_eq!(<Market as SlaDealInfo<Balance>>::name(0), Some(b"web".to_vec()));

		// Reserved billing: the escrow covering the blocks served counts as paid.
		run_to_block(11);
		assert_eq!(<Market as SlaDealInfo<Balance>>::paid(0), 10 * SMALL_PER_BLOCK);
		assert_ok!(Market::update_manifest(RuntimeOrigin::signed(PUBLISHER), 0, [8; 32]));
		assert_ok!(Market::acknowledge_manifest(RuntimeOrigin::signed(PROVIDER), 0, [8; 32]));
		run_to_block(21);
		assert_ok!(Market::close_deployment(
			RuntimeOrigin::signed(PUBLISHER),
			0,
			CloseReason::PublisherRequest
		));
		assert_eq!(<Market as SlaDealInfo<Balance>>::paid(0), 0, "closed: no deal");
		assert_eq!(
			RecordingSla::calls(),
			vec![
				SlaCall::Started(0),
				SlaCall::ManifestPending(0, true),
				SlaCall::ManifestPending(0, false),
				SlaCall::Ended(0, 20 * SMALL_PER_BLOCK),
			]
		);
		// A deal without SLA terms is none of the SLA pallet's business.
		let plain = create_active(BillingMode::Reserved, 100_000);
		assert_ok!(Market::update_manifest(RuntimeOrigin::signed(PUBLISHER), plain, [9; 32]));
		assert_eq!(RecordingSla::calls().len(), 4);
	});
}

#[test]
fn sla_health_checks_must_be_requestable() {
	build_and_execute(|| {
		let valid = podchain_primitives::HealthCheck::root_ok();
		let bounded = |b: &[u8]| b.to_vec().try_into().unwrap();
		for health in [
			podchain_primitives::HealthCheck { path: bounded(b"healthz"), ..valid.clone() },
			podchain_primitives::HealthCheck { path: bounded(b""), ..valid.clone() },
			podchain_primitives::HealthCheck { path: bounded(b"/a b"), ..valid.clone() },
			podchain_primitives::HealthCheck { path: bounded(b"/\r\nX: y"), ..valid.clone() },
			podchain_primitives::HealthCheck { expect_status: 99, ..valid.clone() },
			podchain_primitives::HealthCheck { expect_status: 600, ..valid.clone() },
			podchain_primitives::HealthCheck {
				expect_body: b"ok\n".to_vec().try_into().unwrap(),
				..valid.clone()
			},
		] {
			let terms = SlaTerms {
				uptime_target: Permill::from_percent(99),
				window_blocks: 100,
				penalty_per_window: 50,
				health,
			};
			assert_noop!(
				Market::create_deployment(
					RuntimeOrigin::signed(PUBLISHER),
					PROVIDER,
					MANIFEST,
					small(),
					BillingMode::Reserved,
					Some(terms),
					limits(),
					1_000,
				),
				Error::<Test>::InvalidHealthCheck
			);
		}
	});
}

#[test]
fn try_state_catches_broken_accounting() {
	build_and_execute(|| {
		let id = create(BillingMode::Metered, 1_000);
		Deployments::<Test>::mutate(id, |d| d.as_mut().unwrap().escrow = 1_001);
		assert!(Market::do_try_state().is_err());
		Deployments::<Test>::mutate(id, |d| d.as_mut().unwrap().escrow = 1_000);
		OpenDeals::<Test>::insert(PROVIDER, 3);
		assert!(Market::do_try_state().is_err());
		OpenDeals::<Test>::insert(PROVIDER, 1);
	});
}

fn name(label: &[u8]) -> NameInput {
	label.to_vec().try_into().unwrap()
}

#[test]
fn names_are_unique_valid_and_released_on_close() {
	build_and_execute(|| {
		let id = create_active(BillingMode::Reserved, 10_000);
		let other = create_active(BillingMode::Reserved, 10_000);
		let register = |who, id, label: &[u8]| {
			Market::register_name(RuntimeOrigin::signed(who), id, name(label))
		};
		for bad in [&b""[..], b"Web", b"-web", b"web-", b"web.app", b"caf\xc3\xa9", &[b'a'; 64]] {
			assert_noop!(register(PUBLISHER, id, bad), Error::<Test>::InvalidName);
		}
		assert_noop!(register(PROVIDER, id, b"web"), Error::<Test>::NotPublisher);
		assert_ok!(register(PUBLISHER, id, b"web-1"));
		let web: DnsLabel = b"web-1".to_vec().try_into().unwrap();
		System::assert_last_event(Event::NameRegistered { id, name: web }.into());
		assert_eq!(
			Balances::balance_on_hold(&HoldReason::NameDeposit.into(), &PUBLISHER),
			NAME_DEPOSIT
		);
		assert_noop!(register(PUBLISHER, other, b"web-1"), Error::<Test>::NameTaken);
		assert_noop!(register(PUBLISHER, id, b"web-2"), Error::<Test>::AlreadyNamed);
		assert_ok!(register(PUBLISHER, other, b"api"));

		assert_noop!(
			Market::release_name(RuntimeOrigin::signed(PROVIDER), other),
			Error::<Test>::NotPublisher
		);
		assert_ok!(Market::release_name(RuntimeOrigin::signed(PUBLISHER), other));
		assert_noop!(
			Market::release_name(RuntimeOrigin::signed(PUBLISHER), other),
			Error::<Test>::NotNamed
		);
		let api: DnsLabel = b"api".to_vec().try_into().unwrap();
		assert!(Names::<Test>::get(api).is_none());

		// Closing the deployment frees its name for others.
		assert_ok!(Market::close_deployment(RuntimeOrigin::signed(PROVIDER), id, CloseReason::Sla));
		assert_eq!(Balances::balance_on_hold(&HoldReason::NameDeposit.into(), &PUBLISHER), 0);
		assert_ok!(register(PUBLISHER, other, b"web-1"));
	});
}
