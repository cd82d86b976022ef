//! Probe windows: samples, votes, heartbeats, offers, the due queues, and settling deals'
//! measurement windows with penalties bounded by the bill.

use crate::*;
use alloc::vec::Vec;
use codec::Encode;
use frame_support::{ensure, pallet_prelude::*};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::{
	traits::{SaturatedConversion, Saturating, Zero},
	FixedPointNumber, Permill, RuntimeAppPublic,
};

/// Probe-window boundaries after a full due queue searched for room before the overflow.
const DUE_SEARCH: u32 = 16;

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

	fn probers_count() -> u32 {
		Probers::<T>::decode_len().unwrap_or(0) as u32
	}

	/// The deals of `provider` probed in `window`: up to [`Config::MaxSampledDeals`] of its
	/// tracked deals, all of them if it has no more. The draw is seeded by the hash of the block
	/// before the window's first block, the window and the provider: every prober and the
	/// chain draw the same sample, and nobody knows it before the window starts.
	pub fn sample(provider: &T::AccountId, window: WindowIndex) -> Vec<DealId> {
		let mut deals = ProviderDeals::<T>::get(provider).into_inner();
		let want = T::MaxSampledDeals::get().min(MAX_SAMPLED_DEALS) as usize;
		if deals.len() <= want {
			return deals;
		}
		let before = Self::window_start(window).saturating_sub(1u32.into());
		let anchor = frame_system::Pallet::<T>::block_hash(before);
		let seed = (b"podchain::sla::sample", anchor, window, provider)
			.using_encoded(sp_io::hashing::blake2_256);
		// A partial Fisher-Yates shuffle: the first `want` places get distinct deals.
		for i in 0..want {
			let draw = (seed, i as u32).using_encoded(sp_io::hashing::blake2_256);
			let r = u32::from_le_bytes([draw[0], draw[1], draw[2], draw[3]]) as usize;
			let j = i + r % (deals.len() - i);
			deals.swap(i, j);
		}
		deals.truncate(want);
		deals
	}

	/// All checks of a probe, cheapest first: window, prober, duplicate, sample, signature.
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
		let sample = Self::sample(&probe.provider, probe.window);
		ensure!(
			!sample.is_empty()
				&& sample.len() == probe.verdicts.len()
				&& sample.iter().zip(probe.verdicts.iter()).all(|(a, (b, _))| a == b),
			Error::<T>::WrongSample
		);
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

	/// Counts a checked probe: each verdict on a deal measured now and probeable (it has a
	/// name) goes into the deal's tally; the provider gets one vote, up when at least half of
	/// the counted verdicts were up. Earlier windows of the provider and the deals are decided
	/// first.
	pub(crate) fn record_probe(probe: Probe<T::AccountId>) {
		let window = probe.window;
		let probers = Self::probers_count();
		let (mut up, mut down) = (0u32, 0u32);
		for (id, verdict) in probe.verdicts.iter() {
			let is_up = match verdict {
				Verdict::Up => true,
				Verdict::Down => false,
				Verdict::NotProbed => continue,
			};
			let Some(mut deal) = Tracked::<T>::get(id) else { continue };
			let counts = deal.measurement.counts(window) && T::Deals::name(*id).is_some();
			Self::advance_deal(*id, &mut deal, window, probers);
			if counts && !deal.votes.tally.has_voted(probe.prober) {
				deal.votes.tally.count(probe.prober, is_up);
				if is_up {
					up.saturating_inc();
				} else {
					down.saturating_inc();
				}
			}
			Self::requeue_if_lost(*id, &mut deal);
			Tracked::<T>::insert(id, deal);
		}
		let mut record =
			Records::<T>::get(&probe.provider).unwrap_or_else(|| ProviderRecord::new(window));
		Self::advance_record(&probe.provider, &mut record, window);
		if up.saturating_add(down) == 0 {
			record.tally.mark(probe.prober);
		} else {
			record.tally.count(probe.prober, up >= down);
		}
		Records::<T>::insert(&probe.provider, record);
		Self::deposit_event(Event::ProbeRecorded {
			provider: probe.provider,
			window,
			prober: probe.prober,
			up,
			down,
		});
	}

	/// Moves a deal's votes on to collecting `window`, deciding the collected window if it is
	/// older; the caller stores the deal.
	pub(crate) fn advance_deal(
		id: DealId,
		deal: &mut TrackedDealOf<T>,
		window: WindowIndex,
		probers: u32,
	) {
		if let Some((decided, outcome)) = deal.votes.advance_to(window, probers) {
			if deal.votes.up.get(decided) || deal.votes.down.get(decided) {
				Self::deposit_event(Event::DealWindowDecided {
					deal: id,
					window: decided,
					outcome,
				});
			}
		}
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
			Self::probers_count(),
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
			let Some(mut deal) = Tracked::<T>::get(id).filter(|d| d.provider == provider) else {
				continue;
			};
			deal.heartbeats.set(window);
			if deal.measurement == Measurement::AwaitingAgent {
				// The deployment runs: its windows count from the next whole one.
				let from = window.saturating_add(1);
				deal.measurement = Measurement::Since(from);
				Self::deposit_event(Event::MeasurementStarted { deal: id, window: from });
			}
			Self::requeue_if_lost(id, &mut deal);
			Tracked::<T>::insert(id, deal);
			named.saturating_inc();
		}
		Self::deposit_event(Event::Heartbeat { provider, window, deals: named });
	}

	pub(crate) fn do_offer_terms(
		provider: T::AccountId,
		offer: Option<SlaOffer<BalanceOf<T>>>,
	) -> DispatchResult {
		ensure!(T::Targets::gateway(&provider).is_some(), Error::<T>::NotProvider);
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

	/// Queues deal `id`'s window end at block `at`; if that block's queue is full, at the next
	/// probe-window boundary with room (up to [`DUE_SEARCH`] of them), else in the overflow.
	pub(crate) fn schedule(at: BlockNumberFor<T>, id: DealId) -> DueAt {
		let item = DueItem::WindowEnd(id);
		if Due::<T>::try_mutate(at, |queue| queue.try_push(item)).is_ok() {
			return DueAt::Block(at.saturated_into());
		}
		let first = Self::window_of(at).saturating_add(1);
		for window in first..first.saturating_add(DUE_SEARCH) {
			let block = Self::window_start(window);
			if Due::<T>::try_mutate(block, |queue| queue.try_push(item)).is_ok() {
				return DueAt::Block(block.saturated_into());
			}
		}
		let queued = DueOverflow::<T>::try_mutate(|queue| {
			if queue.contains(&id) {
				return Ok(());
			}
			queue.try_push(id).map(|_| ())
		});
		if queued.is_ok() {
			return DueAt::Overflow;
		}
		log::warn!(target: "runtime::sla", "deal {id}: every due queue full, queued when touched");
		DueAt::Nowhere
	}

	/// Queues the end of the deal's next measurement window and records where.
	pub(crate) fn schedule_window_end(id: DealId, deal: &mut TrackedDealOf<T>) {
		deal.due_at = Self::schedule(Self::settle_block(deal), id);
	}

	/// A deal no queue had room for is queued now that something touched it.
	pub(crate) fn requeue_if_lost(id: DealId, deal: &mut TrackedDealOf<T>) {
		if deal.due_at == DueAt::Nowhere {
			Self::schedule_window_end(id, deal);
		}
	}

	/// Takes up to `count` deals from the front of the overflow.
	pub(crate) fn take_overflow(count: u32) -> Vec<DealId> {
		if DueOverflow::<T>::decode_len().unwrap_or(0) == 0 {
			return Vec::new();
		}
		DueOverflow::<T>::mutate(|queue| {
			let take = (count as usize).min(queue.len());
			let mut all = core::mem::take(queue).into_inner();
			let rest = all.split_off(take);
			*queue = BoundedVec::truncate_from(rest);
			all
		})
	}

	/// First block at which the deal's next measurement window can be settled: the start of
	/// the probe window after it, when no vote on it can come any more.
	pub(crate) fn settle_block(deal: &TrackedDealOf<T>) -> BlockNumberFor<T> {
		let (_, end) = deal.next_window(T::ProbeWindow::get());
		Self::window_start(end)
	}

	/// The hook's side of a queued window end: settles the deal if the item is the one it
	/// waits on (an item left behind after `settle_window` settled and queued it elsewhere is
	/// ignored). A deal drained from the overflow before its window ended is queued again.
	pub(crate) fn settle_due(id: DealId, from: DueAt, now: BlockNumberFor<T>) {
		let Some(mut deal) = Tracked::<T>::get(id) else { return };
		if deal.due_at != from {
			return;
		}
		if Self::settle_block(&deal) > now {
			Self::schedule_window_end(id, &mut deal);
			Tracked::<T>::insert(id, deal);
			return;
		}
		let _ = Self::settle_ended_windows(id, now, None);
	}

	/// Settles every ended measurement window of deal `id` still in its history and queues
	/// the next one's end. The windows settled together cost at most the bill multiple of what
	/// the publisher paid since the last settlement (`paid` now, or as the market reads it).
	/// Returns how many windows were settled.
	pub(crate) fn settle_ended_windows(
		id: DealId,
		now: BlockNumberFor<T>,
		paid: Option<BalanceOf<T>>,
	) -> Result<u32, DispatchError> {
		let mut deal = Tracked::<T>::get(id).ok_or(Error::<T>::UnknownDeal)?;
		let current = Self::window_of(now);
		let probe = T::ProbeWindow::get();
		// Every window before the current one is decided before any is read.
		Self::advance_deal(id, &mut deal, current, Self::probers_count());
		let paid = paid.unwrap_or_else(|| T::Deals::paid(id));
		let mut budget = Self::budget_of(&deal, paid);
		let mut owed = BalanceOf::<T>::zero();
		let mut settled = 0u32;
		// Bounded: a window settles only once it has ended, and measurement windows are at
		// least one probe window, so at most HISTORY_WINDOWS of them have evidence left.
		while settled < HISTORY_WINDOWS {
			let (start, end) = deal.next_window(probe);
			if end > current {
				break;
			}
			let penalty = Self::settle_one(id, &deal, start, end, budget);
			budget = budget.saturating_sub(penalty);
			owed = owed.saturating_add(penalty);
			deal.settled_windows.saturating_inc();
			settled.saturating_inc();
		}
		if settled == 0 {
			Self::requeue_if_lost(id, &mut deal);
			Tracked::<T>::insert(id, deal);
			return Ok(0);
		}
		let (_, end) = deal.next_window(probe);
		if end <= current {
			// Older than the history: no evidence of these windows is left to measure.
			let span = deal.span(probe);
			deal.settled_windows = current.saturating_sub(deal.first_window) / span;
		}
		deal.paid_at_settlement = paid.max(deal.paid_at_settlement);
		deal.penalty_spent = Zero::zero();
		if !owed.is_zero() {
			let amount = owed.saturating_add(T::PenaltySurcharge::get() * owed);
			let outcome = T::Slasher::slash(&deal.provider, amount, &deal.publisher, owed);
			Self::deposit_event(Event::PenaltySlashed {
				deal: id,
				slashed: outcome.slashed,
				compensated: outcome.compensated,
			});
		}
		Self::schedule_window_end(id, &mut deal);
		Tracked::<T>::insert(id, deal);
		Ok(settled)
	}

	/// Measures probe windows `[start, end)` of a deal; returns the penalty owed for it (the
	/// terms' penalty if it missed its target, at most `budget`).
	fn settle_one(
		id: DealId,
		deal: &TrackedDealOf<T>,
		start: WindowIndex,
		end: WindowIndex,
		budget: BalanceOf<T>,
	) -> BalanceOf<T> {
		let index = deal.settled_windows;
		let (mut up, mut decided) = (0u32, 0u32);
		for window in start..end {
			match deal.votes.outcome(window) {
				Outcome::Up => {
					decided.saturating_inc();
					up.saturating_inc();
				}
				Outcome::Down => decided.saturating_inc(),
				Outcome::Unknown => {}
			}
		}
		if decided == 0 {
			Self::deposit_event(Event::WindowUnmeasured { deal: id, window: index });
			return Zero::zero();
		}
		let uptime = Permill::from_rational(up, decided);
		if uptime >= deal.terms.uptime_target {
			Self::deposit_event(Event::SlaMet { deal: id, window: index, uptime });
			return Zero::zero();
		}
		let penalty = deal.terms.penalty_per_window.min(budget);
		Self::deposit_event(Event::SlaMissed { deal: id, window: index, uptime, penalty });
		penalty
	}

	/// The most one window's penalty may be for deal `deal` now: its terms' penalty, bounded by
	/// the bill multiple of what the publisher paid since the deal's last settlement. `None`
	/// for a deal not tracked.
	pub fn penalty_bound(deal: DealId) -> Option<BalanceOf<T>> {
		let tracked = Tracked::<T>::get(deal)?;
		let budget = Self::budget_of(&tracked, T::Deals::paid(deal));
		Some(tracked.terms.penalty_per_window.min(budget))
	}

	/// What penalties may still cost deal `deal` until its next settlement, the publisher
	/// having paid `paid` in all: the bill multiple of what it paid since the last settlement,
	/// less what storage challenges hold or spent of it.
	pub(crate) fn budget_of(deal: &TrackedDealOf<T>, paid: BalanceOf<T>) -> BalanceOf<T> {
		Self::bill_bound(paid.saturating_sub(deal.paid_at_settlement))
			.saturating_sub(deal.penalty_held)
			.saturating_sub(deal.penalty_spent)
	}

	/// [`PenaltyBillMultiple`] times `paid`, saturating.
	fn bill_bound(paid: BalanceOf<T>) -> BalanceOf<T> {
		let paid: u128 = paid.saturated_into();
		PenaltyBillMultiple::<T>::get().saturating_mul_int(paid).saturated_into()
	}
}
