//! Storage challenges: committed volume roots, challenges, answers and deadlines.

use crate::*;
use frame_support::{ensure, pallet_prelude::*};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::traits::Saturating;

impl<T: Config> Pallet<T> {
	pub(crate) fn do_commit_volume(
		who: T::AccountId,
		id: DealId,
		volume: VolumeName,
		root: VolumeRoot,
	) -> DispatchResult {
		let mut deal = Tracked::<T>::get(id).ok_or(Error::<T>::UnknownDeal)?;
		let by = if who == deal.publisher {
			Committer::Publisher
		} else if who == deal.provider {
			Committer::Provider
		} else {
			return Err(Error::<T>::NotParty.into());
		};
		ensure!(!Challenges::<T>::contains_key(id), Error::<T>::ChallengeOpen);
		if !VolumeRoots::<T>::contains_key(id, &volume) {
			ensure!(deal.volumes < T::MaxVolumesPerDeal::get(), Error::<T>::TooManyVolumes);
			deal.volumes.saturating_inc();
			Tracked::<T>::insert(id, deal);
		}
		let at = frame_system::Pallet::<T>::block_number();
		VolumeRoots::<T>::insert(id, &volume, VolumeCommitment { root, by, at });
		Self::deposit_event(Event::VolumeCommitted { deal: id, volume, root, by });
		Ok(())
	}

	pub(crate) fn do_challenge(
		who: T::AccountId,
		id: DealId,
		volume: VolumeName,
	) -> DispatchResult {
		let deal = Tracked::<T>::get(id).ok_or(Error::<T>::UnknownDeal)?;
		ensure!(who == deal.publisher, Error::<T>::NotPublisher);
		ensure!(VolumeRoots::<T>::contains_key(id, &volume), Error::<T>::NoCommitment);
		ensure!(!Challenges::<T>::contains_key(id), Error::<T>::ChallengeOpen);
		let now = frame_system::Pallet::<T>::block_number();
		let deadline = now.saturating_add(T::ChallengeDeadline::get());
		// The hook fails it the block after the deadline, unless answered by then.
		let expiry = deadline.saturating_add(1u32.into());
		ensure!(Self::schedule(expiry, DueItem::ChallengeDeadline(id)), Error::<T>::Busy);
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
		Ok(())
	}

	pub(crate) fn do_expire_challenge(id: DealId) -> DispatchResult {
		let challenge = Challenges::<T>::get(id).ok_or(Error::<T>::NoChallenge)?;
		let now = frame_system::Pallet::<T>::block_number();
		ensure!(now > challenge.deadline, Error::<T>::ChallengeNotExpired);
		Challenges::<T>::remove(id);
		match Tracked::<T>::get(id) {
			Some(deal) => Self::fail_challenge(id, &deal, challenge.volume),
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
}
