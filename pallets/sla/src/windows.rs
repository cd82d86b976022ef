//! Probe windows: votes, heartbeats, offers, and settling deals' measurement windows.

use crate::*;
use frame_support::{ensure, pallet_prelude::*};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::{
	traits::{SaturatedConversion, Saturating},
	Permill, RuntimeAppPublic,
};

/// How many later blocks a due item may slip to when its own block's queue is full.
const DUE_SPREAD: u32 = 16;

impl<T: Config> Pallet<T> {
	/// The probe window `block` falls in.
	pub fn window_of(block: BlockNumberFor<T>) -> WindowIndex {
		let block: u32 = block.saturated_into();
		block / T::ProbeWindow::get().max(1)
	}

	/// First block of probe window `window`.
	pub fn window_start(window: WindowIndex) -> BlockNumberFor<T> {
		window.saturating_mul(T::ProbeWindow::get()).into()
	}

	/// Blocks from `now` to the end of its probe window, `now` included.
	pub(crate) fn blocks_left_in_window(now: BlockNumberFor<T>) -> u32 {
		let block: u32 = now.saturated_into();
		let window = T::ProbeWindow::get().max(1);
		window - block % window
	}

	/// All checks of a probe, cheapest first: window, prober, duplicate, provider, signature.
	pub(crate) fn check_probe(
		probe: &Probe<T::AccountId>,
		signature: &<T::AuthorityId as RuntimeAppPublic>::Signature,
	) -> DispatchResult {
		let now = frame_system::Pallet::<T>::block_number();
		ensure!(probe.window == Self::window_of(now), Error::<T>::StaleProbe);
		let probers = Probers::<T>::get();
		let key = probers.get(probe.prober as usize).ok_or(Error::<T>::UnknownProber)?;
		if let Some(record) = Records::<T>::get(&probe.provider) {
			let voted = record.window == probe.window && record.tally.has_voted(probe.prober);
			ensure!(!voted, Error::<T>::DuplicateProbe);
		}
		ensure!(T::Targets::health_url(&probe.provider).is_some(), Error::<T>::NotProvider);
		ensure!(key.verify(&probe.encode(), signature), Error::<T>::BadSignature);
		Ok(())
	}

	/// The pool's reason for refusing a probe that failed [`Self::check_probe`].
	pub(crate) fn invalid_probe(error: DispatchError) -> InvalidTransaction {
		match error {
			e if e == Error::<T>::StaleProbe.into() => InvalidTransaction::Stale,
			e if e == Error::<T>::DuplicateProbe.into() => InvalidTransaction::Stale,
			e if e == Error::<T>::BadSignature.into() => InvalidTransaction::BadProof,
			e if e == Error::<T>::UnknownProber.into() => InvalidTransaction::BadSigner,
			_ => InvalidTransaction::Call,
		}
	}

	/// Counts a checked probe, deciding the provider's earlier window first.
	pub(crate) fn record_probe(probe: Probe<T::AccountId>) {
		let mut record =
			Records::<T>::get(&probe.provider).unwrap_or_else(|| ProviderRecord::new(probe.window));
		Self::advance_record(&probe.provider, &mut record, probe.window);
		record.tally.count(probe.prober, probe.up);
		Records::<T>::insert(&probe.provider, record);
		Self::deposit_event(Event::ProbeRecorded {
			provider: probe.provider,
			window: probe.window,
			prober: probe.prober,
			up: probe.up,
		});
	}

	/// Moves `provider`'s record on to collecting `window`, deciding the collected window if
	/// it is older, and emits what was decided. Returns whether the record changed; the
	/// caller stores it.
	pub(crate) fn advance_record(
		provider: &T::AccountId,
		record: &mut ProviderRecord,
		window: WindowIndex,
	) -> bool {
		let was_quarantined = record.quarantined;
		let decided = record.window;
		let Some(outcome) = record.advance_to(
			window,
			Probers::<T>::decode_len().unwrap_or(0) as u32,
			T::ReputationWeight::get(),
			T::QuarantineAfter::get(),
		) else {
			return false;
		};
		Self::deposit_event(Event::WindowDecided {
			provider: provider.clone(),
			window: decided,
			outcome,
		});
		match (was_quarantined, record.quarantined) {
			(false, true) => Self::deposit_event(Event::Quarantined {
				provider: provider.clone(),
				failures: record.consecutive_failures,
			}),
			(true, false) => {
				Self::deposit_event(Event::QuarantineLifted { provider: provider.clone() })
			}
			_ => {}
		}
		true
	}

	pub(crate) fn do_heartbeat(
		provider: T::AccountId,
		deals: BoundedVec<DealId, T::MaxDealsPerHeartbeat>,
	) {
		let window = Self::window_of(frame_system::Pallet::<T>::block_number());
		let mut named = 0u32;
		for id in deals {
			Tracked::<T>::mutate(id, |maybe| {
				if let Some(deal) = maybe.as_mut().filter(|d| d.provider == provider && !d.ended) {
					deal.heartbeats.set(window);
					named.saturating_inc();
				}
			});
		}
		Self::deposit_event(Event::Heartbeat { provider, window, deals: named });
	}

	pub(crate) fn do_offer_terms(
		provider: T::AccountId,
		offer: Option<SlaOffer<BalanceOf<T>>>,
	) -> DispatchResult {
		ensure!(T::Targets::health_url(&provider).is_some(), Error::<T>::NotProvider);
		match &offer {
			Some(terms) => {
				ensure!(Self::valid_offer(terms), Error::<T>::InvalidOffer);
				Offers::<T>::insert(&provider, terms);
			}
			None => Offers::<T>::remove(&provider),
		}
		Self::deposit_event(Event::TermsOffered { provider, offer });
		Ok(())
	}

	/// Whether `window_blocks` is a whole number of probe windows, at most [`MAX_WINDOW_SPAN`].
	pub(crate) fn valid_window(window_blocks: u32) -> bool {
		let probe = T::ProbeWindow::get().max(1);
		window_blocks >= probe
			&& window_blocks.is_multiple_of(probe)
			&& window_blocks / probe <= MAX_WINDOW_SPAN
	}

	fn valid_offer(offer: &SlaOffer<BalanceOf<T>>) -> bool {
		!offer.max_uptime_target.is_zero()
			&& !offer.max_penalty_per_window.is_zero()
			&& offer.min_window_blocks <= offer.max_window_blocks
			&& Self::valid_window(offer.min_window_blocks)
			&& Self::valid_window(offer.max_window_blocks)
	}

	/// Puts `item` in the due queue of `at`, or of one of the next [`DUE_SPREAD`] blocks if
	/// that is full. Returns the block it went to, `None` if all were full.
	pub(crate) fn schedule(at: BlockNumberFor<T>, item: DueItem) -> Option<BlockNumberFor<T>> {
		let mut block = at;
		for _ in 0..=DUE_SPREAD {
			if Due::<T>::try_mutate(block, |queue| queue.try_push(item)).is_ok() {
				return Some(block);
			}
			block.saturating_inc();
		}
		None
	}

	/// Queues the end of the deal's next measurement window and records where; a deal the
	/// queues had no room for is settled by `settle_window` calls.
	pub(crate) fn schedule_window_end(id: DealId, deal: &mut TrackedDealOf<T>) {
		let at = Self::schedule(Self::settle_block(deal), DueItem::WindowEnd(id));
		if at.is_none() {
			log::warn!(target: "runtime::sla", "deal {id}: due queues full, settle by call");
		}
		deal.due_at = at.map(|b| b.saturated_into());
	}

	/// First block at which the deal's next measurement window can be settled: the start of
	/// the probe window after it, when no vote on it can come any more.
	pub(crate) fn settle_block(deal: &TrackedDealOf<T>) -> BlockNumberFor<T> {
		let (_, end) = deal.next_window(T::ProbeWindow::get());
		Self::window_start(end)
	}

	/// Settles the deal's ended windows from the hook, then queues its next window's end. An
	/// item left behind when `settle_window` settled and requeued the deal is ignored.
	pub(crate) fn settle_due_windows(id: DealId, now: BlockNumberFor<T>) {
		let Some(deal) = Tracked::<T>::get(id) else { return };
		if deal.ended || deal.due_at != Some(now.saturated_into()) {
			return;
		}
		let _ = Self::settle_ended_window(id, now);
	}

	/// Settles every ended measurement window of deal `id` and queues the next one's end.
	/// Returns whether any window was settled.
	pub(crate) fn settle_ended_window(
		id: DealId,
		now: BlockNumberFor<T>,
	) -> Result<bool, DispatchError> {
		let mut deal = Self::live_deal(id)?;
		let current = Self::window_of(now);
		let probe = T::ProbeWindow::get();
		// Every window before the current one is decided before any is read.
		let mut record = Records::<T>::get(&deal.provider);
		if let Some(record) = &mut record {
			if Self::advance_record(&deal.provider, record, current) {
				Records::<T>::insert(&deal.provider, *record);
			}
		}
		let mut settled = false;
		// Bounded: a window settles only once it has ended, and history reaches back
		// HISTORY_WINDOWS probe windows; anything older cannot be measured any more.
		for _ in 0..(HISTORY_WINDOWS / MAX_WINDOW_SPAN.max(1)).max(1) {
			let (start, end) = deal.next_window(probe);
			if end > current {
				break;
			}
			Self::settle_one(id, &deal, start, end, record.as_mut());
			deal.settled_windows.saturating_inc();
			settled = true;
		}
		if settled {
			let (_, end) = deal.next_window(probe);
			if end <= current {
				// Too far behind to measure: skip to the window now running.
				let span = deal.span(probe);
				let behind = current.saturating_sub(deal.first_window) / span;
				deal.settled_windows = behind;
			}
			Self::schedule_window_end(id, &mut deal);
			Tracked::<T>::insert(id, deal);
		}
		Ok(settled)
	}

	/// Measures probe windows `[start, end)` of a deal and slashes if it missed its target.
	fn settle_one(
		id: DealId,
		deal: &TrackedDealOf<T>,
		start: WindowIndex,
		end: WindowIndex,
		record: Option<&mut ProviderRecord>,
	) {
		let index = deal.settled_windows;
		let (mut up, mut decided) = (0u32, 0u32);
		if let Some(record) = record {
			for window in start..end {
				match record.outcome(window) {
					Outcome::Up => {
						decided.saturating_inc();
						if deal.heartbeats.get(window) {
							up.saturating_inc();
						}
					}
					Outcome::Down => decided.saturating_inc(),
					Outcome::Unknown => {}
				}
			}
		}
		if decided == 0 {
			Self::deposit_event(Event::WindowUnmeasured { deal: id, window: index });
			return;
		}
		let uptime = Permill::from_rational(up, decided);
		if uptime >= deal.terms.uptime_target {
			Self::deposit_event(Event::SlaMet { deal: id, window: index, uptime });
			return;
		}
		let (slashed, compensated) = Self::penalise(deal);
		Self::deposit_event(Event::SlaMissed {
			deal: id,
			window: index,
			uptime,
			slashed,
			compensated,
		});
	}

	/// Slashes the deal's penalty (plus the treasury's surcharge) from its provider's stake,
	/// the penalty going to the publisher first.
	pub(crate) fn penalise(deal: &TrackedDealOf<T>) -> (BalanceOf<T>, BalanceOf<T>) {
		let penalty = deal.terms.penalty_per_window;
		let amount = penalty.saturating_add(T::PenaltySurcharge::get() * penalty);
		let outcome = T::Slasher::slash(&deal.provider, amount, &deal.publisher, penalty);
		(outcome.slashed, outcome.compensated)
	}
}
