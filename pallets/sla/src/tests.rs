//! Tests of the SLA pallet: offers, probes (on chain and from the off-chain worker), windows,
//! standing, heartbeats and storage challenges.

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
use sp_runtime::{testing::UintAuthorityId, DispatchError, Permill, RuntimeAppPublic};

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

/// 90% over two probe windows, `PENALTY` per missed window.
fn terms() -> SlaTerms<Balance> {
	SlaTerms {
		uptime_target: Permill::from_percent(90),
		window_blocks: 2 * PROBE_WINDOW,
		penalty_per_window: PENALTY,
	}
}

fn current_window() -> WindowIndex {
	Sla::window_of(System::block_number())
}

fn signed_probe(
	provider: AccountId,
	prober: u32,
	up: bool,
) -> (Probe<AccountId>, <UintAuthorityId as RuntimeAppPublic>::Signature) {
	let probe = Probe { provider, window: current_window(), prober, up };
	let signature = UintAuthorityId(u64::from(prober) + 1).sign(&probe.encode()).unwrap();
	(probe, signature)
}

fn vote(provider: AccountId, prober: u32, up: bool) {
	let (probe, signature) = signed_probe(provider, prober, up);
	assert_ok!(Sla::submit_probe(RuntimeOrigin::none(), probe, signature));
}

/// All three probers vote `up` on `provider` in the current window.
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

fn start_deal() {
	assert_ok!(Sla::offer_terms(RuntimeOrigin::signed(PROVIDER), Some(offer())));
	<Sla as SlaTracker<_, _>>::deal_started(DEAL, &PUBLISHER, &PROVIDER, &terms());
}

fn volume(name: &str) -> VolumeName {
	name.as_bytes().to_vec().try_into().unwrap()
}

fn last_event() -> Event<Test> {
	System::events()
		.into_iter()
		.filter_map(|r| if let RuntimeEvent::Sla(e) = r.event { Some(e) } else { None })
		.next_back()
		.expect("an SLA event")
}

fn has_event(event: Event<Test>) -> bool {
	System::events().iter().any(|r| r.event == RuntimeEvent::Sla(event.clone()))
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
}

mod probes {
	use super::*;

	#[test]
	fn a_probe_is_recorded() {
		build_and_execute(|| {
			vote(PROVIDER, 1, true);
			let record = Records::<Test>::get(PROVIDER).unwrap();
			assert_eq!(record.window, current_window());
			assert_eq!((record.tally.up, record.tally.down), (1, 0));
			assert!(record.tally.has_voted(1));
			System::assert_last_event(
				Event::ProbeRecorded { provider: PROVIDER, window: 0, prober: 1, up: true }.into(),
			);
		});
	}

	#[test]
	fn bad_probes_are_refused() {
		build_and_execute(|| {
			let (probe, signature) = signed_probe(PROVIDER, 0, true);
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
			let (unknown, unknown_sig) = signed_probe(PROVIDER, 5, true);
			assert_noop!(
				Sla::submit_probe(RuntimeOrigin::none(), unknown, unknown_sig),
				Error::<Test>::UnknownProber
			);
			let (stranger, stranger_sig) = signed_probe(STRANGER, 0, true);
			assert_noop!(
				Sla::submit_probe(RuntimeOrigin::none(), stranger, stranger_sig),
				Error::<Test>::NotProvider
			);
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
			let (probe, signature) = signed_probe(PROVIDER, 0, true);
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
	fn a_majority_of_all_probers_decides_a_window() {
		build_and_execute(|| {
			// Window 0: two of three say up. Window 1: one up, one down, one silent.
			vote(PROVIDER, 0, true);
			vote(PROVIDER, 1, true);
			vote(OTHER_PROVIDER, 0, false);
			vote(OTHER_PROVIDER, 2, false);
			enter_window(1);
			vote(PROVIDER, 0, true);
			assert!(has_event(Event::WindowDecided {
				provider: PROVIDER,
				window: 0,
				outcome: Outcome::Up
			}));
			vote(PROVIDER, 1, false);
			vote(OTHER_PROVIDER, 0, true);
			assert!(has_event(Event::WindowDecided {
				provider: OTHER_PROVIDER,
				window: 0,
				outcome: Outcome::Down
			}));
			enter_window(2);
			vote(PROVIDER, 2, true);
			assert!(has_event(Event::WindowDecided {
				provider: PROVIDER,
				window: 1,
				outcome: Outcome::Unknown
			}));
			let record = Records::<Test>::get(PROVIDER).unwrap();
			assert_eq!(record.outcome(0), Outcome::Up);
			assert_eq!(record.outcome(1), Outcome::Unknown);
			assert_eq!((record.windows_up, record.windows_down), (1, 0));
		});
	}

	#[test]
	fn reputation_weighs_recent_windows_more() {
		build_and_execute(|| {
			// 20% weight for the newest window: down, down, up.
			for (window, up) in [(0, false), (1, false), (2, true)] {
				enter_window(window);
				vote_all(PROVIDER, up);
			}
			enter_window(3);
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
	fn failing_windows_in_a_row_quarantine_until_a_window_passes() {
		build_and_execute(|| {
			for window in 0..3 {
				enter_window(window);
				vote_all(PROVIDER, false);
			}
			assert!(!<Sla as ProviderStanding<_>>::is_quarantined(&PROVIDER));
			enter_window(3);
			// Window 2 ended: three down in a row (read without a write).
			assert!(<Sla as ProviderStanding<_>>::is_quarantined(&PROVIDER));
			vote_all(PROVIDER, true);
			assert!(has_event(Event::Quarantined { provider: PROVIDER, failures: 3 }));
			enter_window(4);
			assert!(!<Sla as ProviderStanding<_>>::is_quarantined(&PROVIDER));
			vote(PROVIDER, 0, true);
			assert!(has_event(Event::QuarantineLifted { provider: PROVIDER }));
		});
	}

	#[test]
	fn root_replaces_the_probers() {
		build_and_execute(|| {
			let probers: BoundedVec<_, _> = vec![UintAuthorityId(9)].try_into().unwrap();
			assert_noop!(
				Sla::set_probers(RuntimeOrigin::signed(PROVIDER), probers.clone()),
				DispatchError::BadOrigin
			);
			assert_ok!(Sla::set_probers(RuntimeOrigin::root(), probers));
			System::assert_last_event(Event::ProbersSet { count: 1 }.into());
			let probe = Probe { provider: PROVIDER, window: 0, prober: 0, up: true };
			let signature = UintAuthorityId(9).sign(&probe.encode()).unwrap();
			assert_ok!(Sla::submit_probe(RuntimeOrigin::none(), probe, signature));
		});
	}
}

mod windows {
	use super::*;

	/// Runs measurement window 0 of the deal (probe windows 1 and 2): probes say `up` for
	/// each, heartbeats as given, then enters window 3 where it settles.
	fn measure(up: [bool; 2], heartbeats: [bool; 2]) {
		for (i, window) in [1, 2].into_iter().enumerate() {
			enter_window(window);
			vote_all(PROVIDER, up[i]);
			if heartbeats[i] {
				heartbeat(PROVIDER, &[DEAL]);
			}
		}
		enter_window(3);
	}

	#[test]
	fn a_window_up_with_heartbeats_meets_the_target() {
		build_and_execute(|| {
			start_deal();
			assert_eq!(Sla::next_settlement(DEAL), Some(block_of_window(3)));
			measure([true, true], [true, true]);
			assert!(has_event(Event::SlaMet { deal: DEAL, window: 0, uptime: Permill::one() }));
			assert!(slashes().is_empty());
			assert_eq!(Tracked::<Test>::get(DEAL).unwrap().settled_windows, 1);
			assert_eq!(Sla::next_settlement(DEAL), Some(block_of_window(5)));
		});
	}

	#[test]
	fn a_missed_window_slashes_the_penalty_to_the_publisher() {
		build_and_execute(|| {
			start_deal();
			measure([true, false], [true, true]);
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
				slashed: 1_100,
				compensated: PENALTY,
			}));
			assert_eq!(stake_of(PROVIDER), 10_000 - 1_100);
		});
	}

	#[test]
	fn a_deal_its_agent_does_not_name_is_down_even_if_the_provider_answers() {
		build_and_execute(|| {
			start_deal();
			measure([true, true], [true, false]);
			assert!(
				matches!(last_event(), Event::SlaMissed { uptime, .. } if uptime == Permill::from_percent(50))
			);
		});
	}

	#[test]
	fn a_window_without_decided_probes_costs_nothing() {
		build_and_execute(|| {
			start_deal();
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
	fn a_window_the_queue_had_no_room_for_is_settled_by_call() {
		build_and_execute(|| {
			start_deal();
			// Another deal's window end takes the due slot; clear ours to simulate overflow.
			Due::<Test>::remove(block_of_window(3));
			for (i, window) in [1, 2].into_iter().enumerate() {
				enter_window(window);
				vote_all(PROVIDER, i == 0);
				heartbeat(PROVIDER, &[DEAL]);
			}
			enter_window(4);
			assert!(slashes().is_empty(), "nothing settled it yet");
			assert_ok!(Sla::settle_window(RuntimeOrigin::signed(STRANGER), DEAL));
			assert_eq!(slashes().len(), 1);
			assert!(has_event(Event::SlaMissed {
				deal: DEAL,
				window: 0,
				uptime: Permill::from_percent(50),
				slashed: 1_100,
				compensated: PENALTY,
			}));
		});
	}

	#[test]
	fn full_due_queues_spill_into_later_blocks() {
		build_and_execute(|| {
			let at = block_of_window(3);
			for id in 100..104 {
				<Sla as SlaTracker<_, _>>::deal_started(id, &PUBLISHER, &PROVIDER, &terms());
			}
			assert_eq!(Due::<Test>::get(at).len(), 2);
			assert_eq!(Due::<Test>::get(at + 1).len(), 2);
		});
	}

	#[test]
	fn heartbeats_count_only_the_providers_own_tracked_deals() {
		build_and_execute(|| {
			start_deal();
			<Sla as SlaTracker<_, _>>::deal_started(8, &PUBLISHER, &OTHER_PROVIDER, &terms());
			heartbeat(PROVIDER, &[DEAL, 8, 99]);
			System::assert_last_event(
				Event::Heartbeat { provider: PROVIDER, window: 0, deals: 1 }.into(),
			);
			assert!(Tracked::<Test>::get(DEAL).unwrap().heartbeats.get(0));
			assert!(!Tracked::<Test>::get(8).unwrap().heartbeats.get(0));
		});
	}

	#[test]
	fn ending_a_deal_settles_the_windows_that_ended_first() {
		build_and_execute(|| {
			start_deal();
			for window in [1, 2] {
				enter_window(window);
				vote_all(PROVIDER, false);
			}
			// Window 0 has ended, but its hook has not run: the deal ends in the same block.
			System::set_block_number(block_of_window(3));
			<Sla as SlaTracker<_, _>>::deal_ended(DEAL);
			assert_eq!(slashes().len(), 1, "the ended window is still owed");
			assert!(!Tracked::<Test>::contains_key(DEAL));
		});
	}

	#[test]
	fn a_due_item_left_behind_by_settle_window_is_ignored() {
		build_and_execute(|| {
			start_deal();
			// The deal's item slipped to a later block (its own was full).
			let own = block_of_window(3);
			Due::<Test>::remove(own);
			Due::<Test>::insert(own + 1, BoundedVec::truncate_from(vec![DueItem::WindowEnd(DEAL)]));
			Tracked::<Test>::mutate(DEAL, |d| d.as_mut().unwrap().due_at = Some(own as u32 + 1));
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
			start_deal();
			<Sla as SlaTracker<_, _>>::deal_ended(DEAL);
			assert!(!Tracked::<Test>::contains_key(DEAL));
			measure([false, false], [false, false]);
			assert!(slashes().is_empty());
		});
	}
}

mod challenges {
	use super::*;

	const ROOT: VolumeRoot = [7; 32];

	fn committed_and_challenged() {
		start_deal();
		assert_ok!(Sla::commit_volume(RuntimeOrigin::signed(PROVIDER), DEAL, volume("data"), ROOT));
		assert_ok!(Sla::challenge_storage(RuntimeOrigin::signed(PUBLISHER), DEAL, volume("data")));
	}

	#[test]
	fn only_the_providers_agent_commits_roots() {
		build_and_execute(|| {
			start_deal();
			assert_ok!(Sla::commit_volume(
				RuntimeOrigin::signed(PROVIDER),
				DEAL,
				volume("a"),
				ROOT
			));
			System::assert_last_event(
				Event::VolumeCommitted { deal: DEAL, volume: volume("a"), root: ROOT }.into(),
			);
			assert_ok!(Sla::commit_volume(
				RuntimeOrigin::signed(PROVIDER),
				DEAL,
				volume("a"),
				[8; 32]
			));
			assert_eq!(VolumeRoots::<Test>::get(DEAL, volume("a")).unwrap().root, [8; 32]);
			assert_ok!(Sla::commit_volume(
				RuntimeOrigin::signed(PROVIDER),
				DEAL,
				volume("b"),
				ROOT
			));
			assert_eq!(Tracked::<Test>::get(DEAL).unwrap().volumes, 2);
			assert_noop!(
				Sla::commit_volume(RuntimeOrigin::signed(PROVIDER), DEAL, volume("c"), ROOT),
				Error::<Test>::TooManyVolumes
			);
			for who in [PUBLISHER, STRANGER] {
				assert_noop!(
					Sla::commit_volume(RuntimeOrigin::signed(who), DEAL, volume("a"), ROOT),
					Error::<Test>::NotDealProvider
				);
			}
			assert_noop!(
				Sla::commit_volume(RuntimeOrigin::signed(PROVIDER), DEAL + 1, volume("a"), ROOT),
				Error::<Test>::UnknownDeal
			);
		});
	}

	#[test]
	fn the_committed_root_passes_a_challenge() {
		build_and_execute(|| {
			committed_and_challenged();
			System::assert_last_event(
				Event::StorageChallenged {
					deal: DEAL,
					volume: volume("data"),
					deadline: 1 + CHALLENGE_DEADLINE,
				}
				.into(),
			);
			assert_noop!(
				Sla::commit_volume(RuntimeOrigin::signed(PROVIDER), DEAL, volume("data"), [0; 32]),
				Error::<Test>::ChallengeOpen
			);
			assert_ok!(Sla::answer_challenge(RuntimeOrigin::signed(PROVIDER), DEAL, ROOT));
			System::assert_last_event(
				Event::ChallengePassed { deal: DEAL, volume: volume("data") }.into(),
			);
			run_to_block(2 + CHALLENGE_DEADLINE);
			assert!(slashes().is_empty(), "an answered challenge does not expire");
		});
	}

	#[test]
	fn a_wrong_root_fails_the_challenge() {
		build_and_execute(|| {
			committed_and_challenged();
			assert_ok!(Sla::answer_challenge(RuntimeOrigin::signed(PROVIDER), DEAL, [0; 32]));
			System::assert_last_event(
				Event::ChallengeFailed {
					deal: DEAL,
					volume: volume("data"),
					slashed: 1_100,
					compensated: PENALTY,
				}
				.into(),
			);
			assert_eq!(slashes()[0].2, PUBLISHER);
			assert!(!Challenges::<Test>::contains_key(DEAL));
		});
	}

	#[test]
	fn no_answer_by_the_deadline_fails_the_challenge() {
		build_and_execute(|| {
			committed_and_challenged();
			run_to_block(1 + CHALLENGE_DEADLINE);
			assert!(slashes().is_empty(), "the deadline block is still in time");
			run_to_block(2 + CHALLENGE_DEADLINE);
			assert_eq!(slashes().len(), 1);
			assert!(matches!(last_event(), Event::ChallengeFailed { .. }));
			assert_noop!(
				Sla::answer_challenge(RuntimeOrigin::signed(PROVIDER), DEAL, ROOT),
				Error::<Test>::NoChallenge
			);
		});
	}

	#[test]
	fn a_deal_is_challenged_at_most_once_per_measurement_window() {
		build_and_execute(|| {
			committed_and_challenged();
			assert_ok!(Sla::answer_challenge(RuntimeOrigin::signed(PROVIDER), DEAL, ROOT));
			assert_noop!(
				Sla::challenge_storage(RuntimeOrigin::signed(PUBLISHER), DEAL, volume("data")),
				Error::<Test>::ChallengeTooSoon
			);
			// The window is 20 blocks; the first challenge was at block 1.
			run_to_block(20);
			assert_noop!(
				Sla::challenge_storage(RuntimeOrigin::signed(PUBLISHER), DEAL, volume("data")),
				Error::<Test>::ChallengeTooSoon
			);
			run_to_block(21);
			assert_ok!(Sla::challenge_storage(
				RuntimeOrigin::signed(PUBLISHER),
				DEAL,
				volume("data")
			));
		});
	}

	#[test]
	fn challenge_calls_check_their_caller_and_state() {
		build_and_execute(|| {
			assert_noop!(
				Sla::challenge_storage(RuntimeOrigin::signed(PUBLISHER), DEAL, volume("data")),
				Error::<Test>::UnknownDeal
			);
			start_deal();
			assert_noop!(
				Sla::challenge_storage(RuntimeOrigin::signed(PUBLISHER), DEAL, volume("data")),
				Error::<Test>::NoCommitment
			);
			assert_ok!(Sla::commit_volume(
				RuntimeOrigin::signed(PROVIDER),
				DEAL,
				volume("data"),
				ROOT
			));
			assert_noop!(
				Sla::challenge_storage(RuntimeOrigin::signed(PROVIDER), DEAL, volume("data")),
				Error::<Test>::NotPublisher
			);
			assert_noop!(
				Sla::answer_challenge(RuntimeOrigin::signed(PROVIDER), DEAL, ROOT),
				Error::<Test>::NoChallenge
			);
			assert_noop!(
				Sla::expire_challenge(RuntimeOrigin::signed(STRANGER), DEAL),
				Error::<Test>::NoChallenge
			);
			assert_ok!(Sla::challenge_storage(
				RuntimeOrigin::signed(PUBLISHER),
				DEAL,
				volume("data")
			));
			assert_noop!(
				Sla::challenge_storage(RuntimeOrigin::signed(PUBLISHER), DEAL, volume("data")),
				Error::<Test>::ChallengeOpen
			);
			assert_noop!(
				Sla::answer_challenge(RuntimeOrigin::signed(PUBLISHER), DEAL, ROOT),
				Error::<Test>::NotDealProvider
			);
			assert_noop!(
				Sla::expire_challenge(RuntimeOrigin::signed(STRANGER), DEAL),
				Error::<Test>::ChallengeNotExpired
			);
		});
	}

	#[test]
	fn a_late_answer_is_refused_and_anyone_may_expire_the_challenge() {
		build_and_execute(|| {
			committed_and_challenged();
			// The hook's deadline entry was lost to a full queue.
			Due::<Test>::remove(2 + CHALLENGE_DEADLINE);
			run_to_block(3 + CHALLENGE_DEADLINE);
			assert_noop!(
				Sla::answer_challenge(RuntimeOrigin::signed(PROVIDER), DEAL, ROOT),
				Error::<Test>::ChallengeExpired
			);
			assert_ok!(Sla::expire_challenge(RuntimeOrigin::signed(STRANGER), DEAL));
			assert_eq!(slashes().len(), 1);
		});
	}

	#[test]
	fn challenges_need_room_in_the_due_queues() {
		build_and_execute(|| {
			start_deal();
			assert_ok!(Sla::commit_volume(
				RuntimeOrigin::signed(PROVIDER),
				DEAL,
				volume("data"),
				ROOT
			));
			let expiry = 2 + CHALLENGE_DEADLINE;
			for block in expiry..expiry + 17 {
				Due::<Test>::insert(
					block,
					BoundedVec::truncate_from(vec![DueItem::WindowEnd(1), DueItem::WindowEnd(2)]),
				);
			}
			assert_noop!(
				Sla::challenge_storage(RuntimeOrigin::signed(PUBLISHER), DEAL, volume("data")),
				Error::<Test>::Busy
			);
		});
	}

	#[test]
	fn a_challenge_open_when_the_deal_ends_stays_answerable_until_its_deadline() {
		build_and_execute(|| {
			committed_and_challenged();
			<Sla as SlaTracker<_, _>>::deal_ended(DEAL);
			assert!(slashes().is_empty(), "ending the deal does not fail the challenge");
			assert!(Tracked::<Test>::get(DEAL).unwrap().ended);
			// An ended deal takes no heartbeats, commitments or challenges.
			heartbeat(PROVIDER, &[DEAL]);
			System::assert_last_event(
				Event::Heartbeat { provider: PROVIDER, window: 0, deals: 0 }.into(),
			);
			assert_noop!(
				Sla::commit_volume(RuntimeOrigin::signed(PROVIDER), DEAL, volume("x"), ROOT),
				Error::<Test>::UnknownDeal
			);
			assert_ok!(Sla::answer_challenge(RuntimeOrigin::signed(PROVIDER), DEAL, ROOT));
			assert!(slashes().is_empty());
			assert!(!Tracked::<Test>::contains_key(DEAL), "forgotten once decided");
			assert_eq!(VolumeRoots::<Test>::iter_prefix(DEAL).count(), 0);
		});
	}

	#[test]
	fn an_unanswered_challenge_of_an_ended_deal_still_fails() {
		build_and_execute(|| {
			committed_and_challenged();
			<Sla as SlaTracker<_, _>>::deal_ended(DEAL);
			run_to_block(2 + CHALLENGE_DEADLINE);
			assert_eq!(slashes().len(), 1);
			assert!(!Tracked::<Test>::contains_key(DEAL));
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

	fn expect_get(
		http: &parking_lot::RwLock<sp_core::offchain::testing::OffchainState>,
		who: AccountId,
	) {
		http.write().expect_request(PendingRequest {
			method: "GET".into(),
			uri: url_of(who),
			response: Some(b"ok".to_vec()),
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

	#[test]
	fn probes_health_urls_and_submits_signed_verdicts() {
		let (mut ext, http, pool) = validator(2);
		ext.execute_with(|| {
			expect_get(&http, PROVIDER);
			expect_get(&http, OTHER_PROVIDER);
			assert_eq!(Sla::probe_providers(1), Ok(2));
			let probes = submitted(&pool);
			assert_eq!(
				probes,
				vec![
					Probe { provider: PROVIDER, window: 0, prober: 1, up: true },
					Probe { provider: OTHER_PROVIDER, window: 0, prober: 1, up: true },
				]
			);
			// The pool admits what the worker made.
			for probe in probes {
				let signature = UintAuthorityId(2).sign(&probe.encode()).unwrap();
				assert_ok!(Sla::validate_unsigned(
					TransactionSource::Local,
					&Call::submit_probe { probe, signature }
				));
			}
		});
	}

	#[test]
	fn probes_round_robin_within_the_per_block_bound() {
		let (mut ext, http, pool) = validator(2);
		ext.execute_with(|| {
			add_provider(3);
			expect_get(&http, PROVIDER);
			expect_get(&http, OTHER_PROVIDER);
			assert_eq!(Sla::probe_providers(1), Ok(2));
			assert_eq!(submitted(&pool).len(), 2);
			// The next block picks up where the last stopped.
			expect_get(&http, 3);
			System::set_block_number(2);
			assert_eq!(Sla::probe_providers(2), Ok(1));
			assert_eq!(submitted(&pool)[0].provider, 3);
			// Every provider had its turn: nothing more this window.
			System::set_block_number(3);
			assert_eq!(Sla::probe_providers(3), Err(offchain::Idle::Done));
			// The next window starts a new walk.
			expect_get(&http, PROVIDER);
			expect_get(&http, OTHER_PROVIDER);
			System::set_block_number(11);
			assert_eq!(Sla::probe_providers(11), Ok(2));
		});
	}

	#[test]
	fn local_health_urls_are_down_unless_allowed() {
		let (mut ext, _http, pool) = validator(2);
		ext.execute_with(|| {
			AllowLocalTargets::<Test>::put(false);
			assert_eq!(Sla::probe_providers(1), Ok(2));
			assert!(submitted(&pool).iter().all(|p| !p.up), "no request, both down");
		});
	}

	#[test]
	fn local_addresses_are_recognised() {
		use offchain::is_local_url;
		for url in [
			"http://127.0.0.1:9615/metrics",
			"http://localhost:9944/health",
			"https://LOCALHOST./x",
			"http://10.1.2.3/",
			"http://172.20.0.1:80/",
			"http://192.168.1.1/",
			"http://169.254.169.254/latest/meta-data",
			"http://0.0.0.0:8080/",
			"http://100.64.0.1/",
			"http://[::1]:8080/",
			"http://[fd00::1]/",
			"http://[fe80::1]/",
			"http://user@127.0.0.1/",
		] {
			assert!(is_local_url(url), "{url} is local");
		}
		for url in [
			"https://provider.example/healthz",
			"http://8.8.8.8/",
			"http://172.32.0.1/",
			"http://[2001:db8::1]:80/",
			"http://127.example.com/",
		] {
			assert!(!is_local_url(url), "{url} is not local");
		}
	}

	#[test]
	fn skips_providers_it_has_voted_on_this_window() {
		let (mut ext, http, pool) = validator(2);
		ext.execute_with(|| {
			vote(PROVIDER, 1, true);
			expect_get(&http, OTHER_PROVIDER);
			assert_eq!(Sla::probe_providers(1), Ok(1));
			assert_eq!(submitted(&pool)[0].provider, OTHER_PROVIDER);
		});
	}

	#[test]
	fn an_unusable_health_url_is_down_without_a_request() {
		let (mut ext, http, pool) = validator(2);
		ext.execute_with(|| {
			PROVIDERS.with(|p| p.borrow_mut().insert(PROVIDER, vec![0xff, 0xfe]));
			expect_get(&http, OTHER_PROVIDER);
			assert_eq!(Sla::probe_providers(1), Ok(2));
			let probes = submitted(&pool);
			assert!(!probes[0].up && probes[1].up);
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
			expect_get(&http, PROVIDER);
			expect_get(&http, OTHER_PROVIDER);
			Sla::offchain_worker(1);
			assert_eq!(submitted(&pool).len(), 2);
		});
	}
}
