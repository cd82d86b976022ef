//! What other pallets ask of the SLA pallet, the runtime API's views, and `try_state`.

use crate::*;
use frame_support::traits::Get;
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::{
	traits::{Saturating, Zero},
	DispatchResult, Permill,
};

impl<T: Config> SlaTracker<T::AccountId, BalanceOf<T>> for Pallet<T> {
	fn offers(provider: &T::AccountId, terms: &SlaTerms<BalanceOf<T>>) -> bool {
		let Some(offer) = Offers::<T>::get(provider) else { return false };
		Self::valid_window(terms.window_blocks)
			&& terms.window_blocks >= offer.min_window_blocks
			&& terms.window_blocks <= offer.max_window_blocks
			&& terms.uptime_target <= offer.max_uptime_target
			&& terms.penalty_per_window <= offer.max_penalty_per_window
	}

	fn deal_started(
		id: DealId,
		publisher: &T::AccountId,
		provider: &T::AccountId,
		terms: &SlaTerms<BalanceOf<T>>,
	) -> DispatchResult {
		ProviderDeals::<T>::try_mutate(provider, |deals| {
			deals.try_push(id).map_err(|_| Error::<T>::TooManySlaDeals)
		})?;
		let now = frame_system::Pallet::<T>::block_number();
		let window = Self::window_of(now);
		let mut deal = TrackedDeal {
			publisher: publisher.clone(),
			provider: provider.clone(),
			terms: terms.clone(),
			// Measurement windows are counted from the first whole probe window; probe windows
			// count once the agent names the deal running.
			first_window: window.saturating_add(1),
			settled_windows: 0,
			measurement: Measurement::AwaitingAgent,
			votes: DealVotes { window, ..Default::default() },
			heartbeats: WindowBits::default(),
			paid_at_settlement: T::Deals::paid(id),
			penalty_held: Zero::zero(),
			penalty_spent: Zero::zero(),
			due_at: DueAt::Nowhere,
		};
		Self::schedule_window_end(id, &mut deal);
		Tracked::<T>::insert(id, deal);
		Ok(())
	}

	fn deal_ended(id: DealId, paid: BalanceOf<T>) {
		// Windows that ended before the deal are owed, whoever ends it.
		let now = frame_system::Pallet::<T>::block_number();
		let _ = Self::settle_ended_windows(id, now, Some(paid));
		Self::forget(id);
	}

	fn manifest_pending(id: DealId, pending: bool) {
		let Some(mut deal) = Tracked::<T>::get(id) else { return };
		if pending {
			let now = Self::window_of(frame_system::Pallet::<T>::block_number());
			// Earlier windows stand as voted; votes of the window running now are dropped, as
			// is every window until the update is acknowledged and the agent names the deal.
			Self::advance_deal(id, &mut deal, now, Probers::<T>::decode_len().unwrap_or(0) as u32);
			deal.votes.tally = Tally::default();
			if deal.measurement != Measurement::UpdatePending {
				deal.measurement = Measurement::UpdatePending;
				Self::deposit_event(Event::MeasurementPaused { deal: id });
			}
		} else if deal.measurement == Measurement::UpdatePending {
			deal.measurement = Measurement::AwaitingAgent;
		}
		Tracked::<T>::insert(id, deal);
	}
}

impl<T: Config> ProviderStanding<T::AccountId> for Pallet<T> {
	fn is_quarantined(provider: &T::AccountId) -> bool {
		Self::standing(provider).quarantined
	}

	fn reputation(provider: &T::AccountId) -> Permill {
		Self::standing(provider).reputation
	}

	fn deregistered(provider: &T::AccountId) {
		Records::<T>::remove(provider);
		Offers::<T>::remove(provider);
	}
}

/// Deals with SLA terms as the storage-proofs pallet sees them; a failed proof's penalty comes
/// out of the same bill-bounded budget as missed windows.
impl<T: Config> SlaDeals<T::AccountId, BalanceOf<T>> for Pallet<T> {
	fn sla_deal(id: DealId) -> Option<SlaParties<T::AccountId, BalanceOf<T>>> {
		let deal = Tracked::<T>::get(id)?;
		Some(SlaParties {
			publisher: deal.publisher,
			provider: deal.provider,
			penalty: deal.terms.penalty_per_window,
		})
	}

	fn hold_penalty(id: DealId, want: BalanceOf<T>) -> BalanceOf<T> {
		let Some(mut deal) = Tracked::<T>::get(id) else { return Zero::zero() };
		let held = want.min(Self::budget_of(&deal, T::Deals::paid(id)));
		deal.penalty_held = deal.penalty_held.saturating_add(held);
		Tracked::<T>::insert(id, deal);
		held
	}

	fn release_penalty(id: DealId, held: BalanceOf<T>, spent: BalanceOf<T>) {
		// An ended deal settled its last windows with the hold counted as spent already.
		let Some(mut deal) = Tracked::<T>::get(id) else { return };
		deal.penalty_held = deal.penalty_held.saturating_sub(held);
		deal.penalty_spent = deal.penalty_spent.saturating_add(spent.min(held));
		Tracked::<T>::insert(id, deal);
	}
}

impl<T: Config> Pallet<T> {
	/// Removes a deal's tracking and its place in its provider's list.
	pub(crate) fn forget(id: DealId) {
		let Some(deal) = Tracked::<T>::take(id) else { return };
		ProviderDeals::<T>::mutate_exists(&deal.provider, |deals| {
			if let Some(list) = deals {
				list.retain(|d| *d != id);
				if list.is_empty() {
					*deals = None;
				}
			}
		});
		if deal.due_at == DueAt::Overflow {
			DueOverflow::<T>::mutate(|queue| queue.retain(|d| *d != id));
		}
	}

	/// A provider's standing now, deciding its last collected window if it has ended (a
	/// read: nothing is stored).
	pub fn standing(provider: &T::AccountId) -> Standing {
		let now = Self::window_of(frame_system::Pallet::<T>::block_number());
		let Some(mut record) = Records::<T>::get(provider) else {
			return (&ProviderRecord::new(now)).into();
		};
		record.advance_to(
			now,
			Probers::<T>::decode_len().unwrap_or(0) as u32,
			T::ReputationWeight::get(),
			T::QuarantineAfter::get(),
		);
		(&record).into()
	}

	/// The SLA terms `provider` offers.
	pub fn offer(provider: &T::AccountId) -> Option<SlaOffer<BalanceOf<T>>> {
		Offers::<T>::get(provider)
	}

	/// Block at which the deal's current measurement window can be settled.
	pub fn next_settlement(id: DealId) -> Option<BlockNumberFor<T>> {
		Tracked::<T>::get(id).map(|deal| Self::settle_block(&deal))
	}

	/// Checks the invariants listed in the crate docs.
	#[cfg(any(feature = "try-runtime", feature = "std", test))]
	pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
		use frame_support::ensure;
		let probers = Probers::<T>::decode_len().unwrap_or(0) as u32;
		let tally_ok = |tally: &Tally| {
			let votes = tally.up.saturating_add(tally.down);
			votes <= probers.max(tally.voted.count_ones()) && votes <= tally.voted.count_ones()
		};
		for (_, record) in Records::<T>::iter() {
			ensure!(tally_ok(&record.tally), "a provider tally has more votes than voters");
		}
		let overflow = DueOverflow::<T>::get();
		let mut tracked = 0usize;
		for (id, deal) in Tracked::<T>::iter() {
			tracked += 1;
			ensure!(
				Self::valid_window(deal.terms.window_blocks),
				"a tracked deal's window is not whole probe windows"
			);
			ensure!(tally_ok(&deal.votes.tally), "a deal tally has more votes than voters");
			ensure!(
				ProviderDeals::<T>::get(&deal.provider).iter().filter(|d| **d == id).count() == 1,
				"a tracked deal is not listed once under its provider"
			);
			if deal.due_at == DueAt::Overflow {
				ensure!(overflow.contains(&id), "a deal queued in the overflow is not there");
			}
		}
		let mut listed = 0usize;
		for (provider, deals) in ProviderDeals::<T>::iter() {
			ensure!(!deals.is_empty(), "an empty deal list is stored");
			for id in deals.iter() {
				ensure!(
					Tracked::<T>::get(id).is_some_and(|d| d.provider == provider),
					"a listed deal is not tracked under its provider"
				);
			}
			listed += deals.len();
		}
		ensure!(listed == tracked, "deal lists and tracked deals differ");
		Ok(())
	}
}

/// The SLA prober key is one of a validator's session keys.
impl<T: Config> sp_runtime::BoundToRuntimeAppPublic for Pallet<T> {
	type Public = T::AuthorityId;
}
