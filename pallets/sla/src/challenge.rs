//! Storage challenges: volume roots the agent commits, challenges, answers and deadlines.
//!
//! Only the provider's agent commits roots: in production it runs inside the attested TEE, so
//! a committed root is the TEE's word on the volume's contents, and a challenge asks it to
//! vouch again. A root that changed without a new commitment (data lost or altered outside the
//! agent) or no answer fails. A publisher may challenge a deal once per measurement window,
//! so challenges cannot be used to grind a provider's stake.

use crate::*;
use frame_support::{ensure, pallet_prelude::*};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::traits::{SaturatedConversion, Saturating};

impl<T: Config> Pallet<T> {
	/// A running (not ended) tracked deal.
	pub(crate) fn live_deal(id: DealId) -> Result<TrackedDealOf<T>, DispatchError> {
		Tracked::<T>::get(id).filter(|d| !d.ended).ok_or(Error::<T>::UnknownDeal.into())
	}

	pub(crate) fn do_commit_volume(
		who: T::AccountId,
		id: DealId,
		volume: VolumeName,
		root: VolumeRoot,
	) -> DispatchResult {
		let mut deal = Self::live_deal(id)?;
		ensure!(who == deal.provider, Error::<T>::NotDealProvider);
		ensure!(!Challenges::<T>::contains_key(id), Error::<T>::ChallengeOpen);
		if !VolumeRoots::<T>::contains_key(id, &volume) {
			ensure!(deal.volumes < T::MaxVolumesPerDeal::get(), Error::<T>::TooManyVolumes);
			deal.volumes.saturating_inc();
			Tracked::<T>::insert(id, deal);
		}
		let at = frame_system::Pallet::<T>::block_number();
		VolumeRoots::<T>::insert(id, &volume, VolumeCommitment { root, at });
		Self::deposit_event(Event::VolumeCommitted { deal: id, volume, root });
		Ok(())
	}

	pub(crate) fn do_challenge(
		who: T::AccountId,
		id: DealId,
		volume: VolumeName,
	) -> DispatchResult {
		let mut deal = Self::live_deal(id)?;
		ensure!(who == deal.publisher, Error::<T>::NotPublisher);
		ensure!(VolumeRoots::<T>::contains_key(id, &volume), Error::<T>::NoCommitment);
		ensure!(!Challenges::<T>::contains_key(id), Error::<T>::ChallengeOpen);
		let now = frame_system::Pallet::<T>::block_number();
		let now_u32: u32 = now.saturated_into();
		if let Some(last) = deal.last_challenge {
			let next = last.saturating_add(deal.terms.window_blocks);
			ensure!(now_u32 >= next, Error::<T>::ChallengeTooSoon);
		}
		let deadline = now.saturating_add(T::ChallengeDeadline::get());
		// The hook fails it the block after the deadline, unless answered by then.
		let expiry = deadline.saturating_add(1u32.into());
		ensure!(Self::schedule(expiry, DueItem::ChallengeDeadline(id)).is_some(), Error::<T>::Busy);
		deal.last_challenge = Some(now_u32);
		Tracked::<T>::insert(id, deal);
		Challenges::<T>::insert(id, Challenge { volume: volume.clone(), issued_at: now, deadline });
		Self::deposit_event(Event::StorageChallenged { deal: id, volume, deadline });
		Ok(())
	}

	pub(crate) fn do_answer(who: T::AccountId, id: DealId, root: VolumeRoot) -> DispatchResult {
		let deal = Tracked::<T>::get(id).ok_or(Error::<T>::UnknownDeal)?;
		ensure!(who == deal.provider, Error::<T>::NotDealProvider);
		let challenge = Challenges::<T>::get(id).ok_or(Error::<T>::NoChallenge)?;
		let now = frame_system::Pallet::<T>::block_number();
		ensure!(now <= challenge.deadline, Error::<T>::ChallengeExpired);
		let committed = VolumeRoots::<T>::get(id, &challenge.volume).map(|c| c.root);
		Challenges::<T>::remove(id);
		if committed == Some(root) {
			Self::deposit_event(Event::ChallengePassed { deal: id, volume: challenge.volume });
		} else {
			Self::fail_challenge(id, &deal, challenge.volume);
		}
		Self::forget_if_ended(id, &deal);
		Ok(())
	}

	pub(crate) fn do_expire_challenge(id: DealId) -> DispatchResult {
		let challenge = Challenges::<T>::get(id).ok_or(Error::<T>::NoChallenge)?;
		let now = frame_system::Pallet::<T>::block_number();
		ensure!(now > challenge.deadline, Error::<T>::ChallengeNotExpired);
		Challenges::<T>::remove(id);
		match Tracked::<T>::get(id) {
			Some(deal) => {
				Self::fail_challenge(id, &deal, challenge.volume);
				Self::forget_if_ended(id, &deal);
			}
			None => {
				frame_support::defensive!("a challenge outlived its deal");
			}
		}
		Ok(())
	}

	/// The hook's side of a deadline: an answered challenge is gone, a later one (issued after
	/// an answer) has its own deadline.
	pub(crate) fn expire_due_challenge(id: DealId, now: BlockNumberFor<T>) {
		if Challenges::<T>::get(id).is_some_and(|c| now > c.deadline) {
			let _ = Self::do_expire_challenge(id);
		}
	}

	/// Slashes the deal's penalty for a lost or altered volume.
	pub(crate) fn fail_challenge(id: DealId, deal: &TrackedDealOf<T>, volume: VolumeName) {
		let (slashed, compensated) = Self::penalise(deal);
		Self::deposit_event(Event::ChallengeFailed { deal: id, volume, slashed, compensated });
	}

	/// Removes an ended deal once its last challenge is decided.
	pub(crate) fn forget_if_ended(id: DealId, deal: &TrackedDealOf<T>) {
		if deal.ended {
			Self::forget(id);
		}
	}

	/// Removes a deal's tracking and its volume roots.
	pub(crate) fn forget(id: DealId) {
		Tracked::<T>::remove(id);
		let _ = VolumeRoots::<T>::clear_prefix(id, T::MaxVolumesPerDeal::get(), None);
	}
}
