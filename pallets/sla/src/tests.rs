//! Tests of the SLA pallet: offers, probes of sampled deals (on chain and from the off-chain
//! worker), measurement start and pauses, windows and penalties bounded by the bill, the due
//! queues, standing, and the bookkeeping `try_state` checks.

// Probes are checked through `ValidateUnsigned` (deprecated, in use until `authorize` replaces
// it; see the crate docs).
#![allow(deprecated)]

use crate::{mock::*, *};
use codec::{Decode, Encode};
use frame_support::{
	assert_noop, assert_ok,
	pallet_prelude::{InvalidTransaction, TransactionSource, ValidateUnsigned},
	traits::Hooks,
	BoundedVec,
};
use podchain_primitives::HealthCheck;
use sp_runtime::{testing::UintAuthorityId, DispatchError, FixedU128, Permill, RuntimeAppPublic};

const PENALTY: Balance = 1_000;
const DEAL: DealId = 7;

fn offer() -> SlaOffer<Balance> {
	SlaOffer {
		max_uptime_target: Permill::from_percent(99),
		min_window_blocks: PROBE_WINDOW,
		max_window_blocks: 4 * PROBE_WINDOW,
		max_penalty_per_window: 10 * PENALTY,
	}
}

fn health() -> HealthCheck {
	HealthCheck {
		path: b"/healthz".to_vec().try_into().unwrap(),
		expect_status: 200,
		expect_body: b"ok".to_vec().try_into().unwrap(),
	}
}

/// 90% over two probe windows, `PENALTY` per missed window.
fn terms() -> SlaTerms<Balance> {
	SlaTerms {
		uptime_target: Permill::from_percent(90),
		window_blocks: 2 * PROBE_WINDOW,
		penalty_per_window: PENALTY,
		health: health(),
	}
}

fn current_window() -> WindowIndex {
	Sla::window_of(System::block_number())
}

type Signature = <UintAuthorityId as RuntimeAppPublic>::Signature;

/// Prober `prober`'s signed probe of `provider`'s sample, every verdict `verdict`.
fn signed_probe(
	provider: AccountId,
	prober: u32,
	verdict: Verdict,
) -> (Probe<AccountId>, Signature) {
	let window = current_window();
	let verdicts =
		Sla::sample(&provider, window).into_iter().map(|id| (id, verdict)).collect::<Vec<_>>();
	let probe = Probe { provider, window, prober, verdicts: verdicts.try_into().unwrap() };
	let signature = UintAuthorityId(u64::from(prober) + 1).sign(&probe.encode()).unwrap();
	(probe, signature)
}

fn vote(provider: AccountId, prober: u32, up: bool) {
	let verdict = if up { Verdict::Up } else { Verdict::Down };
	let (probe, signature) = signed_probe(provider, prober, verdict);
	assert_ok!(Sla::submit_probe(RuntimeOrigin::none(), probe, signature));
}

/// All three probers find `provider`'s sampled deals up (or down) in the current window.
fn vote_all(provider: AccountId, up: bool) {
	for prober in 0..3 {
		vote(provider, prober, up);
	}
}

fn heartbeat(provider: AccountId, deals: &[DealId]) {
	let deals: BoundedVec<_, _> = deals.to_vec().try_into().unwrap();
	assert_ok!(Sla::heartbeat(RuntimeOrigin::signed(provider), deals));
}

/// Moves into probe window `window` (its second block).
fn enter_window(window: WindowIndex) {
	run_to_block(block_of_window(window) + 1);
}

fn start(id: DealId, provider: AccountId) {
	assert_ok!(<Sla as SlaTracker<_, _>>::deal_started(id, &PUBLISHER, &provider, &terms()));
}

/// Deal [`DEAL`] of [`PROVIDER`] accepted in window 0, named, paid 1,000 a block.
fn start_deal() {
	assert_ok!(Sla::offer_terms(RuntimeOrigin::signed(PROVIDER), Some(offer())));
	name_deal(DEAL);
	start(DEAL, PROVIDER);
}

/// [`start_deal`], and the agent names the deal in window 0: measured from window 1.
fn start_measured_deal() {
	start_deal();
	heartbeat(PROVIDER, &[DEAL]);
}

fn has_event(event: Event<Test>) -> bool {
	System::events().iter().any(|r| r.event == RuntimeEvent::Sla(event.clone()))
}

fn missed(window: u32) -> Vec<Balance> {
	System::events()
		.into_iter()
		.filter_map(|r| match r.event {
			RuntimeEvent::Sla(Event::SlaMissed { deal, window: w, penalty, .. })
				if deal == DEAL && w == window =>
			{
				Some(penalty)
			}
			_ => None,
		})
		.collect()
}

mod offers {
	use super::*;

	#[test]
	fn a_provider_offers_and_withdraws_terms() {
		build_and_execute(|| {
			assert_ok!(Sla::offer_terms(RuntimeOrigin::signed(PROVIDER), Some(offer())));
			assert_eq!(Offers::<Test>::get(PROVIDER), Some(offer()));
			System::assert_last_event(
				Event::TermsOffered { provider: PROVIDER, offer: Some(offer()) }.into(),
			);
			assert!(<Sla as SlaTracker<_, _>>::offers(&PROVIDER, &terms()));
			assert_ok!(Sla::offer_terms(RuntimeOrigin::signed(PROVIDER), None));
			assert_eq!(Offers::<Test>::get(PROVIDER), None);
			assert!(!<Sla as SlaTracker<_, _>>::offers(&PROVIDER, &terms()));
		});
	}

	#[test]
	fn only_registered_providers_offer() {
		build_and_execute(|| {
			assert_noop!(
				Sla::offer_terms(RuntimeOrigin::signed(STRANGER), Some(offer())),
				Error::<Test>::NotProvider
			);
		});
	}

	#[test]
	fn inconsistent_offers_are_refused() {
		build_and_execute(|| {
			let bad = [
				SlaOffer { max_uptime_target: Permill::zero(), ..offer() },
				SlaOffer { max_penalty_per_window: 0, ..offer() },
				SlaOffer { min_window_blocks: PROBE_WINDOW + 1, ..offer() },
				SlaOffer { min_window_blocks: 0, ..offer() },
				SlaOffer {
					min_window_blocks: 4 * PROBE_WINDOW,
					max_window_blocks: PROBE_WINDOW,
					..offer()
				},
				SlaOffer { max_window_blocks: (MAX_WINDOW_SPAN + 1) * PROBE_WINDOW, ..offer() },
			];
			for offer in bad {
				assert_noop!(
					Sla::offer_terms(RuntimeOrigin::signed(PROVIDER), Some(offer)),
					Error::<Test>::InvalidOffer
				);
			}
		});
	}

	#[test]
	fn deals_may_only_carry_terms_within_the_offer() {
		build_and_execute(|| {
			assert_ok!(Sla::offer_terms(RuntimeOrigin::signed(PROVIDER), Some(offer())));
			let offers = |t: SlaTerms<Balance>| <Sla as SlaTracker<_, _>>::offers(&PROVIDER, &t);
			assert!(offers(terms()));
			assert!(!offers(SlaTerms { uptime_target: Permill::from_percent(100), ..terms() }));
			assert!(!offers(SlaTerms { window_blocks: 5 * PROBE_WINDOW, ..terms() }));
			assert!(!offers(SlaTerms { window_blocks: PROBE_WINDOW + 3, ..terms() }));
			assert!(!offers(SlaTerms { penalty_per_window: 10 * PENALTY + 1, ..terms() }));
			assert!(!<Sla as SlaTracker<_, _>>::offers(&OTHER_PROVIDER, &terms()));
		});
	}

	#[test]
	fn deregistering_forgets_the_providers_record_and_offer() {
		build_and_execute(|| {
			start_measured_deal();
			enter_window(1);
			vote_all(PROVIDER, true);
			<Sla as SlaTracker<_, _>>::deal_ended(DEAL, 1_000_000);
			assert!(Records::<Test>::contains_key(PROVIDER));
			<Sla as ProviderStanding<_>>::deregistered(&PROVIDER);
			assert!(!Records::<Test>::contains_key(PROVIDER));
			assert!(!Offers::<Test>::contains_key(PROVIDER));
		});
	}
}

mod probes {
	use super::*;

	#[test]
	fn a_probe_counts_for_the_sampled_deals_and_the_provider() {
		build_and_execute(|| {
			start_measured_deal();
			enter_window(1);
			vote(PROVIDER, 1, true);
			let deal = Tracked::<Test>::get(DEAL).unwrap();
			assert_eq!((deal.votes.window, deal.votes.tally.up), (1, 1));
			assert!(deal.votes.tally.has_voted(1));
			let record = Records::<Test>::get(PROVIDER).unwrap();
			assert_eq!((record.window, record.tally.up, record.tally.down), (1, 1, 0));
			System::assert_last_event(
				Event::ProbeRecorded { provider: PROVIDER, window: 1, prober: 1, up: 1, down: 0 }
					.into(),
			);
		});
	}

	#[test]
	fn bad_probes_are_refused() {
		build_and_execute(|| {
			start_measured_deal();
			let (probe, signature) = signed_probe(PROVIDER, 0, Verdict::Up);
			assert_noop!(
				Sla::submit_probe(
					RuntimeOrigin::signed(PROVIDER),
					probe.clone(),
					signature.clone()
				),
				DispatchError::BadOrigin
			);
			let stale = Probe { window: 1, ..probe.clone() };
			let stale_sig = UintAuthorityId(1).sign(&stale.encode()).unwrap();
			assert_noop!(
				Sla::submit_probe(RuntimeOrigin::none(), stale, stale_sig),
				Error::<Test>::StaleProbe
			);
			let (unknown, unknown_sig) = signed_probe(PROVIDER, 5, Verdict::Up);
			assert_noop!(
				Sla::submit_probe(RuntimeOrigin::none(), unknown, unknown_sig),
				Error::<Test>::UnknownProber
			);
			// A provider without SLA deals has nothing to probe.
			let (empty, empty_sig) = signed_probe(OTHER_PROVIDER, 0, Verdict::Up);
			assert_noop!(
				Sla::submit_probe(RuntimeOrigin::none(), empty, empty_sig),
				Error::<Test>::WrongSample
			);
			// Verdicts on other deals than the sample.
			for verdicts in [vec![], vec![(DEAL + 1, Verdict::Up)], vec![(DEAL, Verdict::Up); 2]] {
				let wrong = Probe { verdicts: verdicts.try_into().unwrap(), ..probe.clone() };
				let sig = UintAuthorityId(1).sign(&wrong.encode()).unwrap();
				assert_noop!(
					Sla::submit_probe(RuntimeOrigin::none(), wrong, sig),
					Error::<Test>::WrongSample
				);
			}
			// Prober 1's key signing as prober 0.
			let forged = UintAuthorityId(2).sign(&probe.encode()).unwrap();
			assert_noop!(
				Sla::submit_probe(RuntimeOrigin::none(), probe.clone(), forged),
				Error::<Test>::BadSignature
			);
			assert_ok!(Sla::submit_probe(RuntimeOrigin::none(), probe.clone(), signature.clone()));
			assert_noop!(
				Sla::submit_probe(RuntimeOrigin::none(), probe, signature),
				Error::<Test>::DuplicateProbe
			);
		});
	}

	#[test]
	fn the_pool_admits_only_valid_probes_once_per_window() {
		build_and_execute(|| {
			start_measured_deal();
			let (probe, signature) = signed_probe(PROVIDER, 0, Verdict::Up);
			let call = Call::submit_probe { probe: probe.clone(), signature: signature.clone() };
			let valid = Sla::validate_unsigned(TransactionSource::External, &call).unwrap();
			assert_eq!(valid.provides, vec![("PodchainSlaProbe", (PROVIDER, 0u32, 0u32)).encode()]);
			// Block 1 of a 10-block window: valid for the 9 blocks left.
			assert_eq!(valid.longevity, 9);

			let forged = UintAuthorityId(2).sign(&probe.encode()).unwrap();
			let call = Call::submit_probe { probe: probe.clone(), signature: forged };
			assert_eq!(
				Sla::validate_unsigned(TransactionSource::External, &call),
				Err(InvalidTransaction::BadProof.into())
			);
			run_to_block(block_of_window(1));
			let call = Call::submit_probe { probe, signature };
			assert_eq!(
				Sla::validate_unsigned(TransactionSource::External, &call),
				Err(InvalidTransaction::Stale.into())
			);
			let other = Call::set_probers { probers: Default::default() };
			assert_eq!(
				Sla::validate_unsigned(TransactionSource::External, &other),
				Err(InvalidTransaction::Call.into())
			);
		});
	}

	#[test]
	fn a_majority_of_all_probers_decides_each_deals_window() {
		build_and_execute(|| {
			start_measured_deal();
			enter_window(1);
			vote(PROVIDER, 0, true);
			vote(PROVIDER, 1, true);
			enter_window(2);
			vote(PROVIDER, 0, true);
			assert!(has_event(Event::DealWindowDecided {
				deal: DEAL,
				window: 1,
				outcome: Outcome::Up
			}));
			vote(PROVIDER, 1, false);
			enter_window(3);
			vote(PROVIDER, 2, false);
			let deal = Tracked::<Test>::get(DEAL).unwrap();
			assert_eq!(deal.votes.outcome(1), Outcome::Up);
			assert_eq!(deal.votes.outcome(2), Outcome::Unknown, "one up, one down, one silent");
		});
	}

	#[test]
	fn each_window_samples_a_bounded_seeded_set_of_the_providers_deals() {
		build_and_execute(|| {
			for id in 1..=4 {
				start(id, PROVIDER);
			}
			start(9, OTHER_PROVIDER);
			assert_eq!(Sla::sample(&OTHER_PROVIDER, 0), vec![9], "fewer than the bound: all");
			let mut seen = std::collections::BTreeSet::new();
			for window in 0..12 {
				enter_window(window);
				let sample = Sla::sample(&PROVIDER, window);
				assert_eq!(sample.len(), 2, "MaxSampledDeals");
				assert_ne!(sample[0], sample[1]);
				assert!(sample.iter().all(|id| (1..=4).contains(id)));
				// Every prober, and the chain, draws the same sample in the window.
				assert_eq!(Sla::sample(&PROVIDER, window), sample);
				seen.extend(sample);
			}
			assert_eq!(seen.len(), 4, "every deal is sampled sooner or later");
			assert!(Sla::sample(&STRANGER, 0).is_empty());
		});
	}

	#[test]
	fn a_provider_has_a_bounded_number_of_sla_deals() {
		build_and_execute(|| {
			for id in 1..=4 {
				start(id, PROVIDER);
			}
			assert_noop!(
				<Sla as SlaTracker<_, _>>::deal_started(5, &PUBLISHER, &PROVIDER, &terms()),
				Error::<Test>::TooManySlaDeals
			);
			assert_eq!(ProviderDeals::<Test>::get(PROVIDER).to_vec(), vec![1, 2, 3, 4]);
			<Sla as SlaTracker<_, _>>::deal_ended(2, 0);
			assert_eq!(ProviderDeals::<Test>::get(PROVIDER).to_vec(), vec![1, 3, 4]);
			start(5, PROVIDER);
			for id in [1, 3, 4, 5] {
				<Sla as SlaTracker<_, _>>::deal_ended(id, 0);
			}
			assert!(!ProviderDeals::<Test>::contains_key(PROVIDER), "an empty list is removed");
		});
	}

	#[test]
	fn verdicts_on_deals_not_measured_or_not_named_do_not_count() {
		build_and_execute(|| {
			start_deal();
			// Named but never named running by the agent.
			vote(PROVIDER, 0, false);
			assert_eq!(Tracked::<Test>::get(DEAL).unwrap().votes.tally, Tally::default());
			System::assert_last_event(
				Event::ProbeRecorded { provider: PROVIDER, window: 0, prober: 0, up: 0, down: 0 }
					.into(),
			);
			heartbeat(PROVIDER, &[DEAL]);
			enter_window(1);
			unname_deal(DEAL);
			vote(PROVIDER, 0, false);
			assert_eq!(Tracked::<Test>::get(DEAL).unwrap().votes.tally.down, 0, "no name");
			name_deal(DEAL);
			let (probe, signature) = signed_probe(PROVIDER, 1, Verdict::NotProbed);
			assert_ok!(Sla::submit_probe(RuntimeOrigin::none(), probe, signature));
			assert_eq!(Tracked::<Test>::get(DEAL).unwrap().votes.tally, Tally::default());
			vote(PROVIDER, 2, false);
			assert_eq!(Tracked::<Test>::get(DEAL).unwrap().votes.tally.down, 1);
		});
	}

	#[test]
	fn reputation_weighs_recent_windows_more() {
		build_and_execute(|| {
			start_measured_deal();
			// 20% weight for the newest window: down, down, up.
			for (window, up) in [(1, false), (2, false), (3, true)] {
				enter_window(window);
				vote_all(PROVIDER, up);
			}
			enter_window(4);
			let standing = Sla::standing(&PROVIDER);
			// 1.0 -> 0.8 -> 0.64 -> 0.64 * 0.8 + 0.2 = 0.712
			assert_eq!(standing.reputation, Permill::from_parts(712_000));
			assert_eq!((standing.windows_up, standing.windows_down), (1, 2));
			assert_eq!(
				<Sla as ProviderStanding<_>>::reputation(&OTHER_PROVIDER),
				Permill::one(),
				"never probed: full reputation"
			);
		});
	}

	#[test]
	fn a_provider_is_down_when_most_of_a_probes_verdicts_are() {
		build_and_execute(|| {
			for id in [1, 2] {
				name_deal(id);
				start(id, PROVIDER);
			}
			heartbeat(PROVIDER, &[1, 2]);
			enter_window(1);
			let mixed = |prober: u32, first: Verdict, second: Verdict| {
				let window = current_window();
				let sample = Sla::sample(&PROVIDER, window);
				let verdicts = vec![(sample[0], first), (sample[1], second)];
				let probe = Probe {
					provider: PROVIDER,
					window,
					prober,
					verdicts: verdicts.try_into().unwrap(),
				};
				let signature =
					UintAuthorityId(u64::from(prober) + 1).sign(&probe.encode()).unwrap();
				assert_ok!(Sla::submit_probe(RuntimeOrigin::none(), probe, signature));
			};
			// Half up counts as up: one tenant failing its own check does not sink the provider.
			for prober in 0..3 {
				mixed(prober, Verdict::Up, Verdict::Down);
			}
			let record = Records::<Test>::get(PROVIDER).unwrap();
			assert_eq!((record.tally.up, record.tally.down), (3, 0));
			enter_window(2);
			for prober in 0..3 {
				mixed(prober, Verdict::Down, Verdict::Down);
			}
			let record = Records::<Test>::get(PROVIDER).unwrap();
			assert_eq!((record.tally.up, record.tally.down), (0, 3));
		});
	}

	#[test]
	fn failing_windows_in_a_row_quarantine_until_a_window_passes() {
		build_and_execute(|| {
			start_measured_deal();
			for window in 1..4 {
				enter_window(window);
				vote_all(PROVIDER, false);
			}
			assert!(!<Sla as ProviderStanding<_>>::is_quarantined(&PROVIDER));
			enter_window(4);
			// Window 3 ended: three down in a row (read without a write).
			assert!(<Sla as ProviderStanding<_>>::is_quarantined(&PROVIDER));
			vote_all(PROVIDER, true);
			assert!(has_event(Event::Quarantined { provider: PROVIDER, failures: 3 }));
			enter_window(5);
			assert!(!<Sla as ProviderStanding<_>>::is_quarantined(&PROVIDER));
			vote(PROVIDER, 0, true);
			assert!(has_event(Event::QuarantineLifted { provider: PROVIDER }));
		});
	}

	#[test]
	fn root_replaces_the_probers() {
		build_and_execute(|| {
			start_measured_deal();
			let probers: BoundedVec<_, _> = vec![UintAuthorityId(9)].try_into().unwrap();
			assert_noop!(
				Sla::set_probers(RuntimeOrigin::signed(PROVIDER), probers.clone()),
				DispatchError::BadOrigin
			);
			assert_ok!(Sla::set_probers(RuntimeOrigin::root(), probers));
			System::assert_last_event(Event::ProbersSet { count: 1 }.into());
			let (probe, _) = signed_probe(PROVIDER, 0, Verdict::Up);
			let signature = UintAuthorityId(9).sign(&probe.encode()).unwrap();
			assert_ok!(Sla::submit_probe(RuntimeOrigin::none(), probe, signature));
		});
	}
}

mod measurement {
	use super::*;

	#[test]
	fn measurement_starts_the_window_after_the_agent_first_names_the_deal() {
		build_and_execute(|| {
			start_deal();
			assert_eq!(Tracked::<Test>::get(DEAL).unwrap().measurement, Measurement::AwaitingAgent);
			// Window 1: the pods are not running yet; probes find the deal down.
			enter_window(1);
			vote_all(PROVIDER, false);
			heartbeat(PROVIDER, &[DEAL]);
			System::assert_has_event(Event::MeasurementStarted { deal: DEAL, window: 2 }.into());
			enter_window(2);
			vote_all(PROVIDER, true);
			enter_window(3);
			// Measurement window 0 (probe windows 1 and 2): only window 2 counts, and it was up.
			assert!(has_event(Event::SlaMet { deal: DEAL, window: 0, uptime: Permill::one() }));
			assert!(slashes().is_empty());
		});
	}

	#[test]
	fn a_deal_its_agent_never_names_owes_nothing() {
		build_and_execute(|| {
			// The publisher never delivers the manifest: probes find nothing, every window.
			start_deal();
			for window in 1..9 {
				enter_window(window);
				vote_all(PROVIDER, false);
			}
			enter_window(9);
			assert!(slashes().is_empty());
			for window in 0..4 {
				assert!(has_event(Event::WindowUnmeasured { deal: DEAL, window }));
			}
		});
	}

	#[test]
	fn heartbeats_alone_never_make_a_deal_up() {
		build_and_execute(|| {
			start_measured_deal();
			for window in [1, 2] {
				enter_window(window);
				heartbeat(PROVIDER, &[DEAL]);
				vote_all(PROVIDER, false);
			}
			enter_window(3);
			assert_eq!(missed(0), vec![PENALTY], "named every window, found down: missed");
		});
	}

	#[test]
	fn windows_do_not_count_while_a_manifest_update_is_pending() {
		build_and_execute(|| {
			start_measured_deal();
			enter_window(1);
			vote_all(PROVIDER, true);
			<Sla as SlaTracker<_, _>>::manifest_pending(DEAL, true);
			System::assert_last_event(Event::MeasurementPaused { deal: DEAL }.into());
			// The window running when the update was asked for is dropped, and so are those
			// until the agent names the deal after the provider acknowledged.
			enter_window(2);
			vote_all(PROVIDER, false);
			heartbeat(PROVIDER, &[DEAL]);
			assert_eq!(Tracked::<Test>::get(DEAL).unwrap().measurement, Measurement::UpdatePending);
			enter_window(3);
			<Sla as SlaTracker<_, _>>::manifest_pending(DEAL, false);
			vote_all(PROVIDER, false);
			heartbeat(PROVIDER, &[DEAL]);
			System::assert_has_event(Event::MeasurementStarted { deal: DEAL, window: 4 }.into());
			enter_window(4);
			vote_all(PROVIDER, false);
			enter_window(5);
			let deal = Tracked::<Test>::get(DEAL).unwrap();
			for window in 1..4 {
				assert_eq!(deal.votes.outcome(window), Outcome::Unknown, "window {window}");
			}
			assert_eq!(deal.votes.outcome(4), Outcome::Down);
			assert!(has_event(Event::WindowUnmeasured { deal: DEAL, window: 0 }));
			assert_eq!(missed(1), vec![PENALTY], "window 4 counts again");
		});
	}
}

mod windows {
	use super::*;

	/// Runs measurement window 0 of the deal (probe windows 1 and 2) with probes saying `up`
	/// for each, then enters window 3 where it settles.
	fn measure(up: [bool; 2]) {
		for (i, window) in [1, 2].into_iter().enumerate() {
			enter_window(window);
			vote_all(PROVIDER, up[i]);
		}
		enter_window(3);
	}

	#[test]
	fn an_up_window_meets_the_target() {
		build_and_execute(|| {
			start_measured_deal();
			assert_eq!(Sla::next_settlement(DEAL), Some(block_of_window(3)));
			measure([true, true]);
			assert!(has_event(Event::SlaMet { deal: DEAL, window: 0, uptime: Permill::one() }));
			assert!(slashes().is_empty());
			assert_eq!(Tracked::<Test>::get(DEAL).unwrap().settled_windows, 1);
			assert_eq!(Sla::next_settlement(DEAL), Some(block_of_window(5)));
		});
	}

	#[test]
	fn a_missed_window_slashes_the_penalty_to_the_publisher() {
		build_and_execute(|| {
			start_measured_deal();
			measure([true, false]);
			// Penalty plus the 10% surcharge; the penalty compensates the publisher.
			assert_eq!(
				slashes(),
				vec![(
					PROVIDER,
					1_100,
					PUBLISHER,
					PENALTY,
					podchain_primitives::SlashOutcome {
						slashed: 1_100,
						compensated: PENALTY,
						to_treasury: 100
					}
				)]
			);
			assert!(has_event(Event::SlaMissed {
				deal: DEAL,
				window: 0,
				uptime: Permill::from_percent(50),
				penalty: PENALTY,
			}));
			assert!(has_event(Event::PenaltySlashed {
				deal: DEAL,
				slashed: 1_100,
				compensated: PENALTY
			}));
			assert_eq!(stake_of(PROVIDER), 10_000 - 1_100);
		});
	}

	#[test]
	fn a_window_without_decided_probes_costs_nothing() {
		build_and_execute(|| {
			start_measured_deal();
			for window in [1, 2] {
				enter_window(window);
				// One of three probers: no majority.
				vote(PROVIDER, 0, false);
			}
			enter_window(3);
			assert!(has_event(Event::WindowUnmeasured { deal: DEAL, window: 0 }));
			assert!(slashes().is_empty());
		});
	}

	#[test]
	fn settle_window_checks_the_deal_and_its_end() {
		build_and_execute(|| {
			assert_noop!(
				Sla::settle_window(RuntimeOrigin::signed(STRANGER), DEAL),
				Error::<Test>::UnknownDeal
			);
			start_deal();
			assert_noop!(
				Sla::settle_window(RuntimeOrigin::signed(STRANGER), DEAL),
				Error::<Test>::WindowNotEnded
			);
		});
	}

	#[test]
	fn a_late_settlement_settles_every_ended_window_in_history() {
		build_and_execute(|| {
			start_measured_deal();
			// The hook never reaches the deal: its queue entry is lost.
			Due::<Test>::remove(block_of_window(3));
			for window in 1..11 {
				enter_window(window);
				vote_all(PROVIDER, window % 2 == 0);
			}
			enter_window(11);
			assert!(slashes().is_empty(), "nothing settled it yet");
			assert_ok!(Sla::settle_window(RuntimeOrigin::signed(STRANGER), DEAL));
			// Five measurement windows of one up and one down probe window: all missed.
			for window in 0..5 {
				assert_eq!(missed(window), vec![PENALTY], "window {window}");
			}
			assert_eq!(slashes().len(), 1, "one slash for all of them");
			assert_eq!(slashes()[0].3, 5 * PENALTY);
			assert_eq!(Tracked::<Test>::get(DEAL).unwrap().settled_windows, 5);
			assert_eq!(Sla::next_settlement(DEAL), Some(block_of_window(13)));
		});
	}

	#[test]
	fn a_due_queue_past_its_limit_forgets_no_window() {
		build_and_execute(|| {
			// Every queue a window end at block 30 may go to is full but one slot, and the
			// overflow has room for three: eight deals end there.
			let end = block_of_window(3);
			let filler =
				BoundedVec::truncate_from(vec![DueItem::WindowEnd(1_000); MAX_DUE as usize]);
			Due::<Test>::insert(end, BoundedVec::truncate_from(vec![DueItem::WindowEnd(1_000)]));
			for window in 4..20 {
				Due::<Test>::insert(block_of_window(window), filler.clone());
			}
			let deals: Vec<DealId> = (1..=8).collect();
			for (i, id) in deals.iter().enumerate() {
				let provider = 100 + (i as u64 / 4);
				add_provider(provider);
				STAKE.with(|s| s.borrow_mut().insert(provider, 100_000));
				name_deal(*id);
				start(*id, provider);
			}
			let due_at: Vec<DueAt> =
				deals.iter().map(|id| Tracked::<Test>::get(id).unwrap().due_at).collect();
			assert_eq!(due_at[0], DueAt::Block(end as u32));
			assert_eq!(&due_at[1..4], &[DueAt::Overflow; 3]);
			assert_eq!(&due_at[4..], &[DueAt::Nowhere; 4]);
			heartbeat(100, &[1, 2, 3, 4]);
			heartbeat(101, &[5, 6, 7, 8]);
			// Touched by the heartbeat: queued again, but everything is still full.
			for window in [1, 2] {
				enter_window(window);
				vote_all(100, false);
				vote_all(101, false);
			}
			// Probes touched deals queued nowhere: the hook drained the overflow meanwhile
			// (early, so they went back to it), and there is room for some again.
			run_to_block(block_of_window(20) + 5);
			// Anything still queued nowhere is settled when touched, here by settle_window.
			for id in &deals {
				if Tracked::<Test>::get(id).unwrap().settled_windows == 0 {
					assert_ok!(Sla::settle_window(RuntimeOrigin::signed(STRANGER), *id));
				}
			}
			for id in &deals {
				let deal = Tracked::<Test>::get(id).unwrap();
				assert!(deal.settled_windows >= 1, "deal {id} settled");
				let penalties: Vec<Balance> = System::events()
					.into_iter()
					.filter_map(|r| match r.event {
						RuntimeEvent::Sla(Event::SlaMissed {
							deal, window: 0, penalty, ..
						}) if deal == *id => Some(penalty),
						_ => None,
					})
					.collect();
				let sampled = deal.votes.outcome(1) == Outcome::Down
					|| deal.votes.outcome(2) == Outcome::Down;
				if sampled {
					assert_eq!(penalties, vec![PENALTY], "deal {id} pays its missed window 0");
				} else {
					assert!(penalties.is_empty());
				}
			}
			let paid: Balance = slashes().iter().map(|s| s.4.compensated).sum();
			let missed_windows = System::events()
				.into_iter()
				.filter(|r| matches!(r.event, RuntimeEvent::Sla(Event::SlaMissed { .. })))
				.count() as Balance;
			assert_eq!(paid, missed_windows * PENALTY, "every missed window paid");
			assert!(missed_windows >= 4, "two sampled deals of each provider missed window 0");
		});
	}

	#[test]
	fn the_hook_drains_the_overflow_first() {
		build_and_execute(|| {
			start_measured_deal();
			let end = block_of_window(3);
			// The deal's end went to the overflow.
			Due::<Test>::remove(end);
			DueOverflow::<Test>::put(BoundedVec::truncate_from(vec![DEAL]));
			Tracked::<Test>::mutate(DEAL, |d| d.as_mut().unwrap().due_at = DueAt::Overflow);
			for window in [1, 2] {
				enter_window(window);
				vote_all(PROVIDER, false);
			}
			// Drained before its window ended: queued again at its end.
			assert!(DueOverflow::<Test>::get().is_empty());
			assert_eq!(Tracked::<Test>::get(DEAL).unwrap().due_at, DueAt::Block(end as u32));
			run_to_block(end);
			assert_eq!(missed(0), vec![PENALTY]);
		});
	}

	#[test]
	fn ending_a_deal_settles_the_windows_that_ended_first() {
		build_and_execute(|| {
			start_measured_deal();
			for window in [1, 2] {
				enter_window(window);
				vote_all(PROVIDER, false);
			}
			// Window 0 has ended, but its hook has not run: the deal ends in the same block.
			System::set_block_number(block_of_window(3));
			<Sla as SlaTracker<_, _>>::deal_ended(DEAL, 1_000_000);
			assert_eq!(slashes().len(), 1, "the ended window is still owed");
			assert!(!Tracked::<Test>::contains_key(DEAL));
		});
	}

	#[test]
	fn a_due_item_left_behind_by_settle_window_is_ignored() {
		build_and_execute(|| {
			start_measured_deal();
			// The deal's item slipped to a later block (its own was full).
			let own = block_of_window(3);
			Due::<Test>::remove(own);
			Due::<Test>::insert(own + 1, BoundedVec::truncate_from(vec![DueItem::WindowEnd(DEAL)]));
			Tracked::<Test>::mutate(DEAL, |d| {
				d.as_mut().unwrap().due_at = DueAt::Block(own as u32 + 1)
			});
			for window in [1, 2] {
				enter_window(window);
				vote_all(PROVIDER, false);
			}
			run_to_block(own);
			assert_ok!(Sla::settle_window(RuntimeOrigin::signed(STRANGER), DEAL));
			assert_eq!(slashes().len(), 1);
			// The old item fires: it settles nothing and queues nothing more.
			run_to_block(own + 1);
			assert_eq!(slashes().len(), 1);
			let queued: usize = (own..own + 40).map(|b| Due::<Test>::get(b).len()).sum();
			assert_eq!(queued, 1, "one window end queued for the deal");
		});
	}

	#[test]
	fn an_ended_deal_is_no_longer_measured() {
		build_and_execute(|| {
			start_measured_deal();
			<Sla as SlaTracker<_, _>>::deal_ended(DEAL, 1_000_000);
			assert!(!Tracked::<Test>::contains_key(DEAL));
			heartbeat(PROVIDER, &[DEAL]);
			System::assert_last_event(
				Event::Heartbeat { provider: PROVIDER, window: 0, deals: 0 }.into(),
			);
			enter_window(3);
			assert!(slashes().is_empty());
		});
	}

	#[test]
	fn heartbeats_count_only_the_providers_own_tracked_deals() {
		build_and_execute(|| {
			start_deal();
			start(8, OTHER_PROVIDER);
			heartbeat(PROVIDER, &[DEAL, 8, 99]);
			System::assert_last_event(
				Event::Heartbeat { provider: PROVIDER, window: 0, deals: 1 }.into(),
			);
			assert!(Tracked::<Test>::get(DEAL).unwrap().heartbeats.get(0));
			assert!(!Tracked::<Test>::get(8).unwrap().heartbeats.get(0));
			assert_eq!(Tracked::<Test>::get(8).unwrap().measurement, Measurement::AwaitingAgent);
		});
	}
}

mod credits {
	use super::*;

	/// [`start_measured_deal`] with nothing paid at acceptance, then `paid` in all.
	fn start_paid(paid: Balance) {
		set_paid(DEAL, 0);
		start_measured_deal();
		set_paid(DEAL, paid);
	}

	/// Measurement window 0 found down in both probe windows.
	fn miss_window_0() {
		for window in [1, 2] {
			enter_window(window);
			vote_all(PROVIDER, false);
		}
	}

	#[test]
	fn a_penalty_is_at_most_what_the_window_was_paid() {
		build_and_execute(|| {
			start_paid(300);
			assert_eq!(Sla::penalty_bound(DEAL), Some(300));
			miss_window_0();
			enter_window(3);
			assert_eq!(missed(0), vec![300]);
			assert_eq!(slashes()[0].1, 330, "the surcharge is on what is owed");
			// Paid nothing since: the next missed window costs nothing.
			assert_eq!(Sla::penalty_bound(DEAL), Some(0));
			for window in [3, 4] {
				enter_window(window);
				vote_all(PROVIDER, false);
			}
			enter_window(5);
			assert_eq!(missed(1), vec![0]);
			assert_eq!(slashes().len(), 1, "nothing to slash");
			assert_eq!(Sla::penalty_bound(DEAL + 1), None);
		});
	}

	#[test]
	fn root_sets_the_bill_multiple() {
		build_and_execute(|| {
			let twice = FixedU128::from_u32(2);
			assert_eq!(PenaltyBillMultiple::<Test>::get(), FixedU128::from_u32(1), "default 1x");
			assert_noop!(
				Sla::set_penalty_bill_multiple(RuntimeOrigin::signed(PUBLISHER), twice),
				DispatchError::BadOrigin
			);
			assert_ok!(Sla::set_penalty_bill_multiple(RuntimeOrigin::root(), twice));
			System::assert_last_event(Event::PenaltyBillMultipleSet { multiple: twice }.into());
			start_paid(300);
			assert_eq!(Sla::penalty_bound(DEAL), Some(600));
			miss_window_0();
			enter_window(3);
			assert_eq!(missed(0), vec![600]);
		});
	}

	#[test]
	fn windows_settled_together_share_what_was_paid_since_the_last_settlement() {
		build_and_execute(|| {
			start_paid(1_500);
			Due::<Test>::remove(block_of_window(3));
			for window in 1..7 {
				enter_window(window);
				vote_all(PROVIDER, false);
			}
			enter_window(7);
			assert_ok!(Sla::settle_window(RuntimeOrigin::signed(STRANGER), DEAL));
			assert_eq!(missed(0), vec![PENALTY]);
			assert_eq!(missed(1), vec![500]);
			assert_eq!(missed(2), vec![0]);
			assert_eq!(slashes()[0].3, 1_500);
		});
	}

	#[test]
	fn storage_challenges_share_the_bill_bounded_budget_with_missed_windows() {
		build_and_execute(|| {
			start_paid(300);
			// A challenge holds 200 of the 300 the window was paid; a missed window gets the rest.
			assert_eq!(<Sla as SlaDeals<_, _>>::hold_penalty(DEAL, 200), 200);
			assert_eq!(Sla::penalty_bound(DEAL), Some(100));
			assert_eq!(<Sla as SlaDeals<_, _>>::hold_penalty(DEAL, 200), 100, "bounded too");
			// One challenge passes (released), one fails with 80 slashed (spent).
			<Sla as SlaDeals<_, _>>::release_penalty(DEAL, 100, 0);
			<Sla as SlaDeals<_, _>>::release_penalty(DEAL, 200, 80);
			assert_eq!(Sla::penalty_bound(DEAL), Some(220));
			miss_window_0();
			enter_window(3);
			assert_eq!(missed(0), vec![220], "stake moved in all: 80 + 220 = what was paid");
			// A settlement starts the budget anew from what is paid next.
			let deal = Tracked::<Test>::get(DEAL).unwrap();
			assert_eq!((deal.penalty_held, deal.penalty_spent), (0, 0));
			set_paid(DEAL, 350);
			assert_eq!(Sla::penalty_bound(DEAL), Some(50));
		});
	}

	#[test]
	fn a_hold_open_when_the_deal_ends_counts_as_spent() {
		build_and_execute(|| {
			start_paid(0);
			miss_window_0();
			assert_eq!(<Sla as SlaDeals<_, _>>::hold_penalty(DEAL, 30), 0, "nothing paid yet");
			set_paid(DEAL, 40);
			assert_eq!(<Sla as SlaDeals<_, _>>::hold_penalty(DEAL, 30), 30);
			System::set_block_number(block_of_window(3));
			<Sla as SlaTracker<_, _>>::deal_ended(DEAL, 40);
			assert_eq!(missed(0), vec![10]);
			// The challenge fails later: its penalty was kept out of the last settlement.
			<Sla as SlaDeals<_, _>>::release_penalty(DEAL, 30, 30);
			assert_eq!(
				<Sla as SlaDeals<_, _>>::hold_penalty(DEAL, 1),
				0,
				"an ended deal holds nothing"
			);
			assert!(<Sla as SlaDeals<_, _>>::sla_deal(DEAL).is_none());
		});
	}

	#[test]
	fn a_deal_that_ends_is_bounded_by_what_the_market_says_was_paid() {
		build_and_execute(|| {
			start_paid(0);
			miss_window_0();
			System::set_block_number(block_of_window(3));
			<Sla as SlaTracker<_, _>>::deal_ended(DEAL, 40);
			assert_eq!(missed(0), vec![40]);
		});
	}

	/// An alternate account of the provider opens an SLA deal with a huge penalty to drain the
	/// provider's stake past its unbonding period. Never named, it moves nothing; named and
	/// down, it moves at most what it paid.
	#[test]
	fn laundering_stake_through_an_sla_deal_gains_nothing() {
		build_and_execute(|| {
			let huge = SlaTerms { penalty_per_window: 10_000, ..terms() };
			assert_ok!(Sla::offer_terms(
				RuntimeOrigin::signed(PROVIDER),
				Some(SlaOffer { max_penalty_per_window: 10_000, ..offer() })
			));
			set_paid(DEAL, 50);
			assert_ok!(<Sla as SlaTracker<_, _>>::deal_started(DEAL, &STRANGER, &PROVIDER, &huge));
			// Never named by the agent, never given a name: every window unmeasured.
			for window in 1..7 {
				enter_window(window);
				vote_all(PROVIDER, false);
			}
			enter_window(7);
			assert!(slashes().is_empty());
			assert_eq!(stake_of(PROVIDER), 10_000);
			// Named, run, and found down: at most what was paid moves.
			name_deal(DEAL);
			heartbeat(PROVIDER, &[DEAL]);
			set_paid(DEAL, 50 + 120);
			for window in [7, 8] {
				enter_window(window);
				vote_all(PROVIDER, false);
			}
			enter_window(9);
			let compensated: Balance = slashes().iter().map(|s| s.4.compensated).sum();
			assert_eq!(compensated, 120, "the alternate account gets back what it paid");
			assert_eq!(stake_of(PROVIDER), 10_000 - 132);
		});
	}
}

mod bookkeeping {
	use super::*;

	#[test]
	fn try_state_catches_deal_lists_out_of_step_with_tracked_deals() {
		build_and_execute(|| {
			start_deal();
			ProviderDeals::<Test>::insert(OTHER_PROVIDER, BoundedVec::truncate_from(vec![DEAL]));
			assert!(Sla::do_try_state().is_err());
			ProviderDeals::<Test>::remove(OTHER_PROVIDER);
			ProviderDeals::<Test>::insert(PROVIDER, BoundedVec::truncate_from(vec![DEAL, DEAL]));
			assert!(Sla::do_try_state().is_err());
			ProviderDeals::<Test>::remove(PROVIDER);
			assert!(Sla::do_try_state().is_err());
			ProviderDeals::<Test>::insert(PROVIDER, BoundedVec::truncate_from(vec![DEAL]));
			Tracked::<Test>::mutate(DEAL, |d| d.as_mut().unwrap().due_at = DueAt::Overflow);
			assert!(Sla::do_try_state().is_err());
			DueOverflow::<Test>::put(BoundedVec::truncate_from(vec![DEAL]));
			assert_ok!(Sla::do_try_state());
		});
	}
}

mod offchain_worker {
	use super::*;
	use sp_core::offchain::{
		testing::{PendingRequest, PoolState, TestOffchainExt, TestTransactionPoolExt},
		OffchainDbExt, OffchainWorkerExt, TransactionPoolExt,
	};
	use std::sync::Arc;

	/// Externalities of a validator whose keystore holds prober key `key`, with the offchain
	/// and pool extensions; returns them with the HTTP and pool states to script and inspect.
	fn validator(
		key: u64,
	) -> (
		sp_io::TestExternalities,
		Arc<parking_lot::RwLock<sp_core::offchain::testing::OffchainState>>,
		Arc<parking_lot::RwLock<PoolState>>,
	) {
		let (offchain, http) = TestOffchainExt::new();
		let (pool, pool_state) = TestTransactionPoolExt::new();
		let mut ext = new_test_ext(3);
		ext.register_extension(OffchainDbExt::new(offchain.clone()));
		ext.register_extension(OffchainWorkerExt::new(offchain));
		ext.register_extension(TransactionPoolExt::new(pool));
		UintAuthorityId::set_all_keys(vec![key]);
		(ext, http, pool_state)
	}

	/// A measured, named SLA deal `id` of `provider`.
	fn deal(id: DealId, provider: AccountId) {
		name_deal(id);
		start(id, provider);
		heartbeat(provider, &[id]);
	}

	/// The request for deal `id` of `provider`, answered with `body`.
	fn expect_check(
		http: &parking_lot::RwLock<sp_core::offchain::testing::OffchainState>,
		provider: AccountId,
		id: DealId,
		body: &[u8],
	) {
		http.write().expect_request(PendingRequest {
			method: "GET".into(),
			uri: format!("{}healthz", url_of(provider)),
			headers: vec![("Host".into(), format!("{}.{}", name_of(id), INGRESS_DOMAIN))],
			response: Some(body.to_vec()),
			sent: true,
			..Default::default()
		});
	}

	fn submitted(pool: &parking_lot::RwLock<PoolState>) -> Vec<Probe<AccountId>> {
		pool.write()
			.transactions
			.drain(..)
			.map(|raw| {
				let xt = Extrinsic::decode(&mut &raw[..]).unwrap();
				let RuntimeCall::Sla(Call::submit_probe { probe, signature }) = xt.function else {
					panic!("not a probe: {:?}", xt.function)
				};
				// Signed by this node's key, prober 1 (UintAuthorityId 2).
				assert!(UintAuthorityId(2).verify(&probe.encode(), &signature));
				probe
			})
			.collect()
	}

	fn verdicts(probe: &Probe<AccountId>) -> Vec<(DealId, Verdict)> {
		probe.verdicts.to_vec()
	}

	#[test]
	fn requests_each_sampled_deals_health_path_with_its_host_name() {
		let (mut ext, http, pool) = validator(2);
		ext.execute_with(|| {
			deal(1, PROVIDER);
			deal(2, PROVIDER);
			expect_check(&http, PROVIDER, 1, b"all ok");
			expect_check(&http, PROVIDER, 2, b"booting");
			assert_eq!(Sla::probe_providers(1), Ok(1));
			let probes = submitted(&pool);
			assert_eq!(probes.len(), 1);
			assert_eq!(
				verdicts(&probes[0]),
				vec![(1, Verdict::Up), (2, Verdict::Down)],
				"the second answer lacks \"ok\""
			);
			// The pool admits what the worker made.
			let probe = probes[0].clone();
			let signature = UintAuthorityId(2).sign(&probe.encode()).unwrap();
			assert_ok!(Sla::validate_unsigned(
				TransactionSource::Local,
				&Call::submit_probe { probe, signature }
			));
		});
	}

	#[test]
	fn a_deal_without_a_name_is_not_probed() {
		let (mut ext, _http, pool) = validator(2);
		ext.execute_with(|| {
			start(1, PROVIDER);
			assert_eq!(Sla::probe_providers(1), Ok(1));
			assert_eq!(verdicts(&submitted(&pool)[0]), vec![(1, Verdict::NotProbed)]);
		});
	}

	#[test]
	fn only_providers_with_sla_deals_are_walked_within_the_per_block_bound() {
		let (mut ext, _http, pool) = validator(2);
		ext.execute_with(|| {
			// Four requests per block; providers 3 and 4 have two sampled deals, 5 has one.
			for (id, provider) in [(1, 3), (2, 3), (3, 4), (4, 4), (5, 5)] {
				add_provider(provider);
				deal(id, provider);
			}
			// Every gateway is local and refused: verdicts without requests.
			AllowLocalTargets::<Test>::put(false);
			let mut order = Vec::new();
			for block in 1..5u64 {
				System::set_block_number(block);
				match Sla::probe_providers(block) {
					Ok(_) => {
						let probes = submitted(&pool);
						let requests: usize = probes.iter().map(|p| p.verdicts.len()).sum();
						assert!(requests <= 4, "at most four health checks a block");
						order.extend(probes.iter().map(|p| p.provider));
					}
					Err(idle) => {
						assert_eq!(idle, offchain::Idle::Done);
						break;
					}
				}
			}
			order.sort();
			assert_eq!(order, vec![3, 4, 5], "PROVIDER and OTHER_PROVIDER have no SLA deals");
			// The next window starts a new walk.
			System::set_block_number(11);
			assert!(Sla::probe_providers(11).is_ok_and(|n| n > 0));
		});
	}

	#[test]
	fn local_gateways_are_down_unless_allowed() {
		let (mut ext, _http, pool) = validator(2);
		ext.execute_with(|| {
			deal(1, PROVIDER);
			AllowLocalTargets::<Test>::put(false);
			assert_eq!(Sla::probe_providers(1), Ok(1));
			assert_eq!(verdicts(&submitted(&pool)[0]), vec![(1, Verdict::Down)], "no request");
		});
	}

	#[test]
	fn an_answer_is_up_only_with_the_expected_status_and_body() {
		use offchain::{is_up, MAX_BODY_BYTES};
		let check = health();
		assert!(is_up(200, b"status: ok", &check));
		assert!(!is_up(503, b"ok", &check));
		assert!(!is_up(200, b"fail", &check));
		assert!(!is_up(200, b"", &check));
		let any = HealthCheck { expect_body: Default::default(), ..health() };
		assert!(is_up(200, b"", &any));
		assert!(!is_up(204, b"", &any));
		let mut late = vec![b'x'; MAX_BODY_BYTES];
		late.extend_from_slice(b"ok");
		assert!(!is_up(200, &late, &check), "only the first bytes are read");
	}

	#[test]
	fn skips_providers_it_has_voted_on_this_window() {
		let (mut ext, http, pool) = validator(2);
		ext.execute_with(|| {
			deal(1, PROVIDER);
			deal(2, OTHER_PROVIDER);
			vote(PROVIDER, 1, true);
			expect_check(&http, OTHER_PROVIDER, 2, b"ok");
			assert_eq!(Sla::probe_providers(1), Ok(1));
			assert_eq!(submitted(&pool)[0].provider, OTHER_PROVIDER);
		});
	}

	#[test]
	fn stays_idle_without_a_prober_key_or_late_in_the_window() {
		let (mut ext, _http, pool) = validator(42);
		ext.execute_with(|| {
			assert_eq!(Sla::probe_providers(1), Err(offchain::Idle::NoProberKey));
			UintAuthorityId::set_all_keys(vec![2u64]);
			System::set_block_number(5);
			assert_eq!(Sla::probe_providers(5), Err(offchain::Idle::LateInWindow));
			assert!(pool.read().transactions.is_empty());
		});
	}

	#[test]
	fn the_hook_runs_the_worker() {
		let (mut ext, http, pool) = validator(2);
		ext.execute_with(|| {
			deal(1, PROVIDER);
			expect_check(&http, PROVIDER, 1, b"ok");
			Sla::offchain_worker(1);
			assert_eq!(submitted(&pool).len(), 1);
		});
	}
}
