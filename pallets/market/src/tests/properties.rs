//! Random sequences of market calls from several accounts. After every call: both pallets'
//! invariants hold, total issuance is unchanged, every publisher has lost exactly what its
//! deployments and rents were billed, and no bill exceeds what the deal allows for its period.

use crate::{mock::*, *};
use frame_support::traits::fungible::{Inspect, InspectHold};
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
enum Action {
	Create { publisher: u8, provider: u8, metered: bool, deposit: u32 },
	Rent { publisher: u8, provider: u8, deposit: u32 },
	Accept { deal: u8 },
	Reject { deal: u8 },
	Cancel { deal: u8 },
	TopUp { deal: u8, amount: u32 },
	Report { deal: u8, blocks: u8, usage_percent: u8, egress: u16 },
	Close { deal: u8, by_provider: bool },
	Settle { deal: u8 },
	Advance { blocks: u8 },
}

fn action() -> impl Strategy<Value = Action> {
	prop_oneof![
		(0..2u8, 0..2u8, any::<bool>(), 100..20_000u32).prop_map(
			|(publisher, provider, metered, deposit)| Action::Create {
				publisher,
				provider,
				metered,
				deposit
			}
		),
		(0..2u8, 0..2u8, 100..40_000u32).prop_map(|(publisher, provider, deposit)| {
			Action::Rent { publisher, provider, deposit }
		}),
		(0..8u8).prop_map(|deal| Action::Accept { deal }),
		(0..8u8).prop_map(|deal| Action::Reject { deal }),
		(0..8u8).prop_map(|deal| Action::Cancel { deal }),
		(0..8u8, 1..5_000u32).prop_map(|(deal, amount)| Action::TopUp { deal, amount }),
		(0..8u8, 1..6u8, 0..130u8, 0..2_000u16).prop_map(
			|(deal, blocks, usage_percent, egress)| {
				Action::Report { deal, blocks, usage_percent, egress }
			}
		),
		(0..8u8, any::<bool>()).prop_map(|(deal, by_provider)| Action::Close { deal, by_provider }),
		(0..8u8).prop_map(|deal| Action::Settle { deal }),
		(1..8u8).prop_map(|blocks| Action::Advance { blocks }),
	]
}

const PUBLISHERS: [AccountId; 2] = [PUBLISHER, OTHER_PUBLISHER];
const PROVIDERS: [AccountId; 2] = [PROVIDER, OTHER_PROVIDER];

/// Most a period of `seconds` may cost a deal with these terms: its resources at its prices,
/// plus egress at the most a report may claim.
fn period_cap(terms: &(Resources, Prices<Balance>), seconds: u64) -> Balance {
	let (resources, prices) = terms;
	let egress = prices.egress_per_byte * MAX_EGRESS_PER_SECOND as Balance;
	(prices.per_second(resources).unwrap() + egress) * seconds as Balance
}

fn run(action: &Action) {
	let now = System::block_number();
	let origin = RuntimeOrigin::signed;
	// Results are ignored: refused calls are part of the test; the checks run either way.
	let _ = match *action {
		Action::Create { publisher, provider, metered, deposit } => Market::create_deployment(
			origin(PUBLISHERS[publisher as usize]),
			PROVIDERS[provider as usize],
			[1u8; 32],
			small(),
			if metered { BillingMode::Metered } else { BillingMode::Reserved },
			None,
			deposit.into(),
		),
		Action::Rent { publisher, provider, deposit } => Market::create_rent(
			origin(PUBLISHERS[publisher as usize]),
			PROVIDERS[provider as usize],
			deposit.into(),
		),
		Action::Accept { deal } => deal_of(deal)
			.map_or(Ok(()), |(id, d)| Market::accept_deployment(origin(d.provider), id)),
		Action::Reject { deal } => deal_of(deal)
			.map_or(Ok(()), |(id, d)| Market::reject_deployment(origin(d.provider), id)),
		Action::Cancel { deal } => deal_of(deal)
			.map_or(Ok(()), |(id, d)| Market::cancel_deployment(origin(d.publisher), id)),
		Action::TopUp { deal, amount } => deal_of(deal)
			.map_or(Ok(()), |(id, d)| Market::top_up(origin(d.publisher), id, amount.into())),
		Action::Report { deal, blocks, usage_percent, egress } => {
			deal_of(deal).map_or(Ok(()), |(id, d)| {
				let end = (d.settled_until + blocks as BlockNumber).min(now);
				let seconds = 6 * (end.saturating_sub(d.settled_until));
				let used = |reserved: u32| reserved as u64 * seconds * usage_percent as u64 / 100;
				let report = UsageReport {
					deployment: id,
					period_start: d.settled_until,
					period_end: end,
					cpu_millicore_seconds: used(d.resources.cpu_millicores),
					memory_mib_seconds: used(d.resources.memory_mib),
					storage_gib_seconds: used(d.resources.storage_gib),
					gpu_seconds: 0,
					egress_bytes: egress as u64,
				};
				Market::report_usage(origin(d.provider), vec![report].try_into().unwrap())
			})
		}
		Action::Close { deal, by_provider } => deal_of(deal).map_or(Ok(()), |(id, d)| {
			let (who, reason) = if by_provider {
				(d.provider, CloseReason::ProviderDecommission)
			} else {
				(d.publisher, CloseReason::PublisherRequest)
			};
			Market::close_deployment(origin(who), id, reason).map(|_| ()).map_err(|e| e.error)
		}),
		Action::Settle { deal } => deal_of(deal).map_or(Ok(()), |(id, _)| {
			Market::settle(origin(PUBLISHER), id).map(|_| ()).map_err(|e| e.error)
		}),
		Action::Advance { blocks } => {
			run_to_block(now + blocks as BlockNumber);
			Ok(())
		}
	};
}

/// The `n`-th open deployment (by id), if there are that many.
fn deal_of(n: u8) -> Option<(DeploymentId, DeploymentOf<Test>)> {
	let mut deals: Vec<_> = Deployments::<Test>::iter().collect();
	deals.sort_by_key(|(id, _)| *id);
	deals.into_iter().nth(n as usize)
}

proptest! {
	#![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

	#[test]
	fn money_is_conserved_and_nobody_pays_more_than_agreed(actions in prop::collection::vec(action(), 1..80)) {
		build_and_execute(|| {
			let issuance = Balances::total_issuance();
			let start: BTreeMap<AccountId, Balance> =
				PUBLISHERS.iter().map(|&p| (p, Balances::total_balance(&p))).collect();
			let mut billed: BTreeMap<AccountId, Balance> = BTreeMap::new();
			let mut publisher_of: BTreeMap<DeploymentId, AccountId> = BTreeMap::new();
			let mut terms_of: BTreeMap<DeploymentId, (Resources, Prices<Balance>)> = BTreeMap::new();

			for action in &actions {
				System::reset_events();
				for (id, deal) in Deployments::<Test>::iter() {
					publisher_of.insert(id, deal.publisher);
					terms_of.insert(id, (deal.resources, deal.prices));
				}
				run(action);
				for record in System::events() {
					match record.event {
						RuntimeEvent::Market(Event::DeploymentCreated { id, publisher, .. })
						| RuntimeEvent::Market(Event::RentCreated { id, renter: publisher, .. }) => {
							publisher_of.insert(id, publisher);
						},
						RuntimeEvent::Market(Event::Settled { id, period_start, period_end, total, charges, .. }) => {
							let seconds = 6 * (period_end - period_start);
							let cap = period_cap(&terms_of[&id], seconds);
							assert!(total <= cap, "{action:?}: billed {total} for {seconds} s");
							assert_eq!(charges.total(), total);
							*billed.entry(publisher_of[&id]).or_default() += total;
						},
						_ => {},
					}
				}
				check_invariants();
				assert_eq!(Balances::total_issuance(), issuance, "{action:?} changed issuance");
				for p in PUBLISHERS {
					let lost = start[&p] - Balances::total_balance(&p);
					assert_eq!(lost, billed.get(&p).copied().unwrap_or(0), "{action:?}: {p} lost more than billed");
					let escrow: Balance = Deployments::<Test>::iter()
						.filter(|(_, d)| d.publisher == p)
						.map(|(_, d)| d.escrow)
						.sum();
					assert_eq!(Balances::balance_on_hold(&HoldReason::Escrow.into(), &p), escrow);
				}
			}
		});
	}
}
