//! Random sequences of market calls by honest and adversarial publishers and providers. After
//! every call:
//! (a) total issuance is unchanged;
//! (b) no bill is above the deal's locked prices for what its caps allow over the period;
//! (c) no reserved deal is Active past its exhaustion block unless the queue still holds it;
//! (d) every block a deal ran is billed (periods are contiguous, up to where the deal
//!     stopped), and every bill is paid, owed as debt, or written off in an event; every
//!     publisher lost exactly what it paid plus the escrow of its open deals;
//! and over all runs (e) a good share of the calls succeeded.

use crate::{mock::*, *};
use frame_support::traits::fungible::Inspect;
use proptest::{
	prelude::*,
	test_runner::{Config as RunnerConfig, TestRunner},
};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
enum Action {
	Create {
		publisher: u8,
		provider: u8,
		metered: bool,
		deposit: u32,
		egress_limit: u16,
	},
	Rent {
		publisher: u8,
		provider: u8,
		deposit: u32,
	},
	Accept {
		deal: u8,
	},
	Reject {
		deal: u8,
	},
	Cancel {
		deal: u8,
	},
	TopUp {
		deal: u8,
		amount: u32,
	},
	Report {
		deal: u8,
		blocks: u8,
		usage_percent: u8,
		egress: u16,
	},
	Close {
		deal: u8,
		by_provider: bool,
	},
	Settle {
		deal: u8,
	},
	/// A provider changes its prices, perhaps ahead of deals in flight.
	HikePrices {
		provider: u8,
		factor: u8,
	},
	Advance {
		blocks: u8,
	},
}

fn action() -> impl Strategy<Value = Action> {
	prop_oneof![
		3 => (0..2u8, 0..2u8, any::<bool>(), 100..20_000u32, 0..1_200u16).prop_map(
			|(publisher, provider, metered, deposit, egress_limit)| Action::Create {
				publisher,
				provider,
				metered,
				deposit,
				egress_limit,
			}
		),
		1 => (0..2u8, 0..2u8, 100..400_000u32)
			.prop_map(|(publisher, provider, deposit)| Action::Rent { publisher, provider, deposit }),
		3 => (0..8u8).prop_map(|deal| Action::Accept { deal }),
		1 => (0..8u8).prop_map(|deal| Action::Reject { deal }),
		1 => (0..8u8).prop_map(|deal| Action::Cancel { deal }),
		// Token top-ups (grace stretching) as well as real ones.
		2 => (0..8u8, prop_oneof![1..10u32, 1..20_000u32])
			.prop_map(|(deal, amount)| Action::TopUp { deal, amount }),
		// Honest usage and greedy reports above the caps.
		3 => (0..8u8, 1..6u8, 0..130u8, 0..2_000u16).prop_map(
			|(deal, blocks, usage_percent, egress)| {
				Action::Report { deal, blocks, usage_percent, egress }
			}
		),
		1 => (0..8u8, any::<bool>()).prop_map(|(deal, by_provider)| Action::Close { deal, by_provider }),
		1 => (0..8u8).prop_map(|deal| Action::Settle { deal }),
		1 => (0..2u8, prop_oneof![Just(1u8), Just(2u8), Just(100u8)])
			.prop_map(|(provider, factor)| Action::HikePrices { provider, factor }),
		2 => (1..8u8).prop_map(|blocks| Action::Advance { blocks }),
	]
}

const PUBLISHERS: [AccountId; 2] = [PUBLISHER, OTHER_PUBLISHER];
const PROVIDERS: [AccountId; 2] = [PROVIDER, OTHER_PROVIDER];

/// Most a period of `seconds` may cost a deal: its resources at its prices, plus egress at
/// its limit.
fn period_cap(deal: &DeploymentOf<Test>, seconds: u64) -> Balance {
	let egress = deal.prices.egress_per_byte * deal.egress_limit as Balance;
	(deal.prices.per_second(&deal.resources).unwrap() + egress) * seconds as Balance
}

/// A call aimed at a deal that does not exist did nothing: it does not count as a success.
const NOTHING: sp_runtime::DispatchError = sp_runtime::DispatchError::Other("no such deal");

fn run(action: &Action) -> bool {
	let now = System::block_number();
	let origin = RuntimeOrigin::signed;
	let result = match *action {
		Action::Create { publisher, provider, metered, deposit, egress_limit } => {
			let limits =
				DealLimits { max_egress_bytes_per_second: egress_limit as u64, ..limits() };
			Market::create_deployment(
				origin(PUBLISHERS[publisher as usize]),
				PROVIDERS[provider as usize],
				[1u8; 32],
				small(),
				if metered { BillingMode::Metered } else { BillingMode::Reserved },
				None,
				limits,
				deposit.into(),
			)
		}
		Action::Rent { publisher, provider, deposit } => Market::create_rent(
			origin(PUBLISHERS[publisher as usize]),
			PROVIDERS[provider as usize],
			limits(),
			deposit.into(),
		),
		Action::Accept { deal } => deal_of(deal)
			.map_or(Err(NOTHING), |(id, d)| Market::accept_deployment(origin(d.provider), id)),
		Action::Reject { deal } => deal_of(deal)
			.map_or(Err(NOTHING), |(id, d)| Market::reject_deployment(origin(d.provider), id)),
		Action::Cancel { deal } => deal_of(deal)
			.map_or(Err(NOTHING), |(id, d)| Market::cancel_deployment(origin(d.publisher), id)),
		Action::TopUp { deal, amount } => deal_of(deal)
			.map_or(Err(NOTHING), |(id, d)| Market::top_up(origin(d.publisher), id, amount.into())),
		Action::Report { deal, blocks, usage_percent, egress } => {
			deal_of(deal).map_or(Err(NOTHING), |(id, d)| {
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
					egress_bytes: egress as u64 * seconds,
				};
				Market::report_usage(origin(d.provider), vec![report].try_into().unwrap())
					.map(|_| ())
					.map_err(|e| e.error)
			})
		}
		Action::Close { deal, by_provider } => deal_of(deal).map_or(Err(NOTHING), |(id, d)| {
			let (who, reason) = if by_provider {
				(d.provider, CloseReason::ProviderDecommission)
			} else {
				(d.publisher, CloseReason::PublisherRequest)
			};
			Market::close_deployment(origin(who), id, reason).map(|_| ()).map_err(|e| e.error)
		}),
		Action::Settle { deal } => deal_of(deal).map_or(Err(NOTHING), |(id, _)| {
			Market::settle(origin(PUBLISHER), id).map(|_| ()).map_err(|e| e.error)
		}),
		Action::HikePrices { provider, factor } => {
			let p = prices();
			let f = factor as Balance;
			let hiked = Prices {
				cpu_per_millicore_second: p.cpu_per_millicore_second * f,
				memory_per_mib_second: p.memory_per_mib_second * f,
				storage_per_gib_second: p.storage_per_gib_second * f,
				gpu_per_second: 0,
				egress_per_byte: p.egress_per_byte * f,
			};
			super::set_prices(PROVIDERS[provider as usize], hiked)
		}
		Action::Advance { blocks } => {
			run_to_block(now + blocks as BlockNumber);
			Ok(())
		}
	};
	// A report batch succeeds even when its reports are refused; count those as refused.
	let refused = System::events()
		.iter()
		.any(|r| matches!(r.event, RuntimeEvent::Market(Event::UsageReportRejected { .. })));
	result.is_ok() && !refused
}

/// The `n`-th open deployment (by id), if there are that many.
fn deal_of(n: u8) -> Option<(DeploymentId, DeploymentOf<Test>)> {
	let mut deals: Vec<_> = Deployments::<Test>::iter().collect();
	deals.sort_by_key(|(id, _)| *id);
	deals.into_iter().nth(n as usize)
}

/// What the run has seen of one deal.
#[derive(Default)]
struct Ledger {
	terms: Option<DeploymentOf<Test>>,
	publisher: AccountId,
	/// Where the last billed period ended.
	billed_until: Option<BlockNumber>,
	/// Where billing must reach when the deal closes.
	stops_at: Option<BlockNumber>,
	unpaid: Balance,
	debt_settled: Balance,
}

/// Runs `actions` and checks the properties; returns (calls that succeeded, calls).
fn check(actions: &[Action]) -> (usize, usize) {
	let mut succeeded = 0;
	build_and_execute(|| {
		let issuance = Balances::total_issuance();
		let start: BTreeMap<AccountId, Balance> =
			PUBLISHERS.iter().map(|&p| (p, Balances::total_balance(&p))).collect();
		let mut paid: BTreeMap<AccountId, Balance> = BTreeMap::new();
		let mut ledgers: BTreeMap<DeploymentId, Ledger> = BTreeMap::new();

		for action in actions {
			System::reset_events();
			for (id, deal) in Deployments::<Test>::iter() {
				let ledger = ledgers.entry(id).or_default();
				ledger.publisher = deal.publisher;
				ledger.terms = Some(deal);
			}
			if run(action) {
				succeeded += 1;
			}
			let now = System::block_number();
			for record in System::events() {
				let RuntimeEvent::Market(event) = record.event else { continue };
				match event {
					Event::DeploymentCreated { id, publisher, .. }
					| Event::RentCreated { id, renter: publisher, .. } => {
						let ledger = ledgers.entry(id).or_default();
						ledger.publisher = publisher;
						ledger.terms = Deployments::<Test>::get(id);
					}
					Event::DeploymentAccepted { id } => {
						let ledger = ledgers.get_mut(&id).unwrap();
						ledger.billed_until = Some(now);
						ledger.terms = Deployments::<Test>::get(id);
					}
					Event::Settled {
						id, period_start, period_end, total, charges, unpaid, ..
					} => {
						let ledger = ledgers.get_mut(&id).unwrap();
						let deal = ledger.terms.as_ref().unwrap();
						let seconds = 6 * (period_end - period_start);
						// (b)
						let cap = period_cap(deal, seconds);
						assert!(total <= cap, "{action:?}: billed {total} for {seconds} s");
						assert_eq!(charges.total(), total);
						// (d): contiguous periods from acceptance.
						assert_eq!(ledger.billed_until, Some(period_start), "{action:?}: gap");
						ledger.billed_until = Some(period_end);
						ledger.unpaid += unpaid;
						*paid.entry(ledger.publisher).or_default() += total - unpaid;
					}
					Event::DebtPaid { id, amount, .. } => {
						let ledger = ledgers.get_mut(&id).unwrap();
						ledger.debt_settled += amount;
						*paid.entry(ledger.publisher).or_default() += amount;
					}
					Event::DebtWrittenOff { id, amount, .. } => {
						ledgers.get_mut(&id).unwrap().debt_settled += amount;
					}
					Event::OutOfFunds { id, grace_ends, .. } => {
						ledgers.get_mut(&id).unwrap().stops_at = Some(grace_ends);
					}
					Event::Closing { id, .. } => {
						let ledger = ledgers.get_mut(&id).unwrap();
						if let Some(DeploymentState::Closing { closed_at, .. }) =
							Deployments::<Test>::get(id).map(|d| d.state)
						{
							ledger.stops_at = Some(closed_at);
						}
					}
					Event::Restored { id } => {
						ledgers.get_mut(&id).unwrap().stops_at = None;
					}
					Event::DeploymentClosed { id, reason, .. } => {
						let ledger = &ledgers[&id];
						// (d): whatever was not paid was settled or written off.
						assert_eq!(ledger.unpaid, ledger.debt_settled, "{action:?}: debt lost");
						// (d): a reserved deal that ran is billed up to where it stopped.
						let deal = ledger.terms.as_ref().unwrap();
						let ran = ledger.billed_until.is_some() && reason != CloseReason::RentEnded;
						if deal.billing == BillingMode::Reserved && ran {
							let end = ledger.stops_at.map_or(now, |at| at.min(now));
							assert_eq!(ledger.billed_until, Some(end), "{action:?}: {id} unbilled");
						}
					}
					_ => {}
				}
			}
			check_invariants();
			// (a)
			assert_eq!(Balances::total_issuance(), issuance, "{action:?} changed issuance");
			// (d): publishers lost what they paid plus what sits in escrow for them.
			for p in PUBLISHERS {
				let escrow: Balance = Deployments::<Test>::iter_values()
					.filter(|d| d.publisher == p)
					.map(|d| d.escrow)
					.sum();
				let lost = start[&p] - Balances::total_balance(&p);
				assert_eq!(lost, paid.get(&p).copied().unwrap_or(0) + escrow, "{action:?}: {p}");
			}
			// (c)
			let cursor = ExpiryCursor::<Test>::get().map_or(0, |(block, _)| block);
			for (id, deal) in Deployments::<Test>::iter() {
				if let Some(runs_out) = Market::funded_until(&deal) {
					assert!(
						runs_out > now || cursor <= runs_out,
						"{action:?}: {id} active past {runs_out} at {now}"
					);
				}
			}
		}
	});
	(succeeded, actions.len())
}

#[test]
fn money_holds_against_honest_and_adversarial_parties() {
	let mut runner = TestRunner::new(RunnerConfig { cases: 200, ..RunnerConfig::default() });
	let calls = std::cell::Cell::new((0usize, 0usize));
	runner
		.run(&prop::collection::vec(action(), 1..80), |actions| {
			let (ok, all) = check(&actions);
			let (total_ok, total) = calls.get();
			calls.set((total_ok + ok, total + all));
			Ok(())
		})
		.unwrap();
	// (e) A run where (nearly) everything is refused tests nothing.
	let (ok, all) = calls.get();
	println!("{ok} of {all} calls succeeded");
	// About 38% succeed (calls on deals that do not exist count as refused); a quarter is the
	// floor.
	assert!(ok * 4 >= all, "only {ok} of {all} generated calls succeeded");
}
