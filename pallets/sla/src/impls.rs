//! What other pallets ask of the SLA pallet, the runtime API's views, and `try_state`.

use crate::*;
use frame_support::traits::Get;
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::Permill;

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
	) {
		let now = frame_system::Pallet::<T>::block_number();
		let mut deal = TrackedDeal {
			publisher: publisher.clone(),
			provider: provider.clone(),
			terms: *terms,
			// Measurement starts with the first whole probe window.
			first_window: Self::window_of(now).saturating_add(1),
			settled_windows: 0,
			heartbeats: WindowBits::default(),
			volumes: 0,
			last_challenge: None,
			due_at: None,
			ended: false,
		};
		Self::schedule_window_end(id, &mut deal);
		Tracked::<T>::insert(id, deal);
	}

	fn deal_ended(id: DealId) {
		// Windows that ended before the deal are owed, whoever ends it.
		let now = frame_system::Pallet::<T>::block_number();
		let _ = Self::settle_ended_window(id, now);
		let Some(mut deal) = Tracked::<T>::get(id) else { return };
		if Challenges::<T>::contains_key(id) {
			// Ending the deal neither escapes an open challenge nor cuts the provider's time to
			// answer it: it stays answerable until its deadline.
			deal.ended = true;
			Tracked::<T>::insert(id, deal);
			return;
		}
		Self::forget(id);
	}
}

impl<T: Config> ProviderStanding<T::AccountId> for Pallet<T> {
	fn is_quarantined(provider: &T::AccountId) -> bool {
		Self::standing(provider).quarantined
	}

	fn reputation(provider: &T::AccountId) -> Permill {
		Self::standing(provider).reputation
	}
}

impl<T: Config> Pallet<T> {
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
		for (_, record) in Records::<T>::iter() {
			let votes = record.tally.up.saturating_add(record.tally.down);
			ensure!(
				votes <= probers.max(record.tally.voted.count_ones()),
				"a tally has more votes than probers"
			);
			ensure!(
				votes == record.tally.voted.count_ones(),
				"a tally's votes differ from its voters"
			);
		}
		for (id, deal) in Tracked::<T>::iter() {
			ensure!(
				Self::valid_window(deal.terms.window_blocks),
				"a tracked deal's window is not whole probe windows"
			);
			let volumes = VolumeRoots::<T>::iter_prefix(id).count() as u32;
			ensure!(
				volumes == deal.volumes,
				"a tracked deal's volume count differs from its roots"
			);
		}
		for (id, challenge) in Challenges::<T>::iter() {
			ensure!(Tracked::<T>::contains_key(id), "a challenge outlived its deal");
			ensure!(
				VolumeRoots::<T>::contains_key(id, &challenge.volume),
				"a challenge names an uncommitted volume"
			);
		}
		Ok(())
	}
}

/// The SLA prober key is one of a validator's session keys.
impl<T: Config> sp_runtime::BoundToRuntimeAppPublic for Pallet<T> {
	type Public = T::AuthorityId;
}
