//! The calls' logic, the deal lifecycle the runtime tells, the runtime API's views and
//! `try_state`.

use crate::*;
use alloc::vec::Vec;
use frame_support::{ensure, pallet_prelude::*};
use frame_system::pallet_prelude::BlockNumberFor;
use podchain_primitives::{SlaParties, SlaTerms};
use sp_runtime::traits::{One, Saturating, Zero};

impl<T: Config> Pallet<T> {
	/// The parties of a live deal: started here, not ended, and with SLA terms.
	fn live_deal(
		id: DealId,
	) -> Result<
		(DealRecord<BlockNumberFor<T>>, SlaParties<T::AccountId, BalanceOf<T>>),
		DispatchError,
	> {
		let record = LiveDeals::<T>::get(id).ok_or(Error::<T>::UnknownDeal)?;
		let parties = T::Deals::sla_deal(id).ok_or(Error::<T>::UnknownDeal)?;
		Ok((record, parties))
	}

	pub(crate) fn do_commit(
		who: T::AccountId,
		id: DealId,
		volume: VolumeName,
		root: Root,
		chunk_count: u32,
		size: u64,
	) -> DispatchResult {
		let (mut record, parties) = Self::live_deal(id)?;
		ensure!(who == parties.provider, Error::<T>::NotDealProvider);
		ensure!(
			podchain_merkle::chunk_count(size) == Some(chunk_count),
			Error::<T>::InconsistentSize
		);
		ensure!(
			Challenges::<T>::get(id).is_none_or(|c| c.volume != volume),
			Error::<T>::ChallengeOpen
		);
		let now = frame_system::Pallet::<T>::block_number();
		match Commitments::<T>::get(id, &volume) {
			Some(last) => ensure!(
				now >= last.at.saturating_add(T::CommitmentPeriod::get()),
				Error::<T>::CommitTooSoon
			),
			None => {
				ensure!(record.volumes < T::MaxVolumesPerDeal::get(), Error::<T>::TooManyVolumes);
				record.volumes.saturating_inc();
				LiveDeals::<T>::insert(id, record);
			}
		}
		Commitments::<T>::insert(id, &volume, Commitment { root, chunk_count, size, at: now });
		Self::deposit_event(Event::Committed { deal: id, volume, root, chunk_count, size });
		Ok(())
	}

	pub(crate) fn do_challenge(
		who: T::AccountId,
		id: DealId,
		volume: VolumeName,
	) -> DispatchResult {
		let (mut record, parties) = Self::live_deal(id)?;
		ensure!(who == parties.publisher, Error::<T>::NotPublisher);
		let commitment = Commitments::<T>::get(id, &volume).ok_or(Error::<T>::NoCommitment)?;
		ensure!(!Challenges::<T>::contains_key(id), Error::<T>::ChallengeOpen);
		let now = frame_system::Pallet::<T>::block_number();
		if let Some(last) = record.last_challenge {
			ensure!(
				now >= last.saturating_add(T::ChallengePeriod::get()),
				Error::<T>::ChallengeTooSoon
			);
		}
		let deadline = now.saturating_add(T::ChallengeDeadline::get());
		let due_at = Self::schedule(id, deadline.saturating_add(One::one()))?;
		// Out of the same bill-bounded budget as the deal's missed windows (none of the
		// calls after this one fails, so the hold is always ended by an answer or expiry).
		let penalty = T::Deals::hold_penalty(id, parties.penalty);
		record.last_challenge = Some(now);
		LiveDeals::<T>::insert(id, record);
		Challenges::<T>::insert(
			id,
			Challenge {
				volume: volume.clone(),
				root: commitment.root,
				chunk_count: commitment.chunk_count,
				size: commitment.size,
				issued_at: now,
				deadline,
				due_at,
				publisher: parties.publisher,
				provider: parties.provider,
				penalty,
			},
		);
		Self::deposit_event(Event::Challenged {
			deal: id,
			volume,
			root: commitment.root,
			deadline,
			penalty,
		});
		Ok(())
	}

	/// Queues `id` in the first due queue with room at or after `earliest`, within
	/// [`DUE_SEARCH`] blocks; the block it went to.
	fn schedule(
		id: DealId,
		earliest: BlockNumberFor<T>,
	) -> Result<BlockNumberFor<T>, DispatchError> {
		let mut at = earliest;
		for _ in 0..DUE_SEARCH {
			// A full queue is left unwritten.
			if Due::<T>::try_mutate(at, |due| due.try_push(id)).is_ok() {
				return Ok(at);
			}
			at = at.saturating_add(One::one());
		}
		Err(Error::<T>::Busy.into())
	}

	/// The seed of a challenge's indices: the hash of the block after the one it was filed
	/// in, once that block is known (from the block after it on).
	fn seed_of(challenge: &ChallengeOf<T>) -> Option<Hash> {
		let seed_block = challenge.issued_at.saturating_add(One::one());
		let now = frame_system::Pallet::<T>::block_number();
		if now <= seed_block {
			return None;
		}
		let hash = frame_system::Pallet::<T>::block_hash(seed_block);
		let bytes = hash.as_ref();
		(bytes.len() == 32 && bytes.iter().any(|b| *b != 0)).then(|| {
			let mut seed = [0u8; 32];
			seed.copy_from_slice(bytes);
			seed
		})
	}

	/// The chunk indices a challenge asks for, once its seed block is known.
	pub fn indices_of(id: DealId, challenge: &ChallengeOf<T>) -> Option<Vec<u32>> {
		let seed = Self::seed_of(challenge)?;
		Some(podchain_merkle::challenge_indices(
			&seed,
			id,
			&challenge.volume,
			&challenge.root,
			challenge.chunk_count,
			T::ChunksPerChallenge::get(),
		))
	}

	/// The longest path among `proofs`: what verifying them costs per chunk.
	pub fn deepest(proofs: &[ChunkProof]) -> u32 {
		proofs.iter().map(|p| p.path.len() as u32).max().unwrap_or(0)
	}

	pub(crate) fn do_answer(
		who: T::AccountId,
		id: DealId,
		proofs: BoundedVec<ChunkProof, T::ChunksPerChallenge>,
	) -> DispatchResult {
		let challenge = Challenges::<T>::get(id).ok_or(Error::<T>::NoChallenge)?;
		ensure!(who == challenge.provider, Error::<T>::NotDealProvider);
		let now = frame_system::Pallet::<T>::block_number();
		ensure!(now <= challenge.deadline, Error::<T>::ChallengeExpired);
		let indices = Self::indices_of(id, &challenge).ok_or(Error::<T>::IndicesNotReady)?;
		ensure!(proofs.len() == indices.len(), Error::<T>::WrongProofCount);
		let verified = indices.iter().zip(proofs.iter()).all(|(index, proof)| {
			podchain_merkle::chunk_len(challenge.size, *index) == Some(proof.chunk.len())
				&& podchain_merkle::verify(
					&challenge.root,
					challenge.chunk_count,
					*index,
					&proof.chunk,
					&proof.path,
				)
		});
		Challenges::<T>::remove(id);
		if verified {
			T::Deals::release_penalty(id, challenge.penalty, Zero::zero());
			Self::deposit_event(Event::ChallengePassed { deal: id, volume: challenge.volume });
		} else {
			Self::fail(id, challenge, Failure::WrongProof);
		}
		Ok(())
	}

	pub(crate) fn do_expire(id: DealId) -> DispatchResult {
		let challenge = Challenges::<T>::get(id).ok_or(Error::<T>::NoChallenge)?;
		let now = frame_system::Pallet::<T>::block_number();
		ensure!(now > challenge.deadline, Error::<T>::ChallengeNotExpired);
		Challenges::<T>::remove(id);
		Self::fail(id, challenge, Failure::NoAnswer);
		Ok(())
	}

	/// The hook's side of an expiry: only the challenge queued for `now` (an answered one is
	/// gone, and a later one has its own expiry).
	pub(crate) fn expire_due(id: DealId, now: BlockNumberFor<T>) {
		if Challenges::<T>::get(id).is_some_and(|c| c.due_at == now) {
			if let Err(error) = Self::do_expire(id) {
				frame_support::defensive!("a due challenge could not expire", error);
			}
		}
	}

	/// Slashes a failed challenge's penalty from its provider to its publisher.
	fn fail(id: DealId, challenge: ChallengeOf<T>, reason: Failure) {
		let outcome = T::Slasher::slash(
			&challenge.provider,
			challenge.penalty,
			&challenge.publisher,
			challenge.penalty,
		);
		T::Deals::release_penalty(id, challenge.penalty, outcome.compensated);
		Self::deposit_event(Event::ChallengeFailed {
			deal: id,
			volume: challenge.volume,
			reason,
			slashed: outcome.slashed,
			compensated: outcome.compensated,
		});
	}

	/// The deal's open challenge with the indices it asks for (runtime API).
	pub fn challenge_view(id: DealId) -> Option<ChallengeView<BlockNumberFor<T>>> {
		let challenge = Challenges::<T>::get(id)?;
		let indices = Self::indices_of(id, &challenge);
		Some(ChallengeView {
			volume: challenge.volume,
			root: challenge.root,
			chunk_count: challenge.chunk_count,
			size: challenge.size,
			issued_at: challenge.issued_at,
			deadline: challenge.deadline,
			indices,
		})
	}

	/// The latest commitment of a volume (runtime API).
	pub fn commitment(id: DealId, volume: VolumeName) -> Option<Commitment<BlockNumberFor<T>>> {
		Commitments::<T>::get(id, volume)
	}

	/// Checks the invariants listed in the crate docs.
	#[cfg(any(feature = "try-runtime", feature = "std", test))]
	pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
		for (id, record) in LiveDeals::<T>::iter() {
			let volumes = Commitments::<T>::iter_prefix(id).count() as u32;
			ensure!(
				volumes == record.volumes,
				"a deal's volume count differs from its commitments"
			);
			ensure!(
				record.volumes <= T::MaxVolumesPerDeal::get(),
				"a deal has more volumes than allowed"
			);
		}
		for (id, _, commitment) in Commitments::<T>::iter() {
			ensure!(LiveDeals::<T>::contains_key(id), "a commitment outlived its deal");
			ensure!(
				podchain_merkle::chunk_count(commitment.size) == Some(commitment.chunk_count),
				"a commitment's chunk count does not match its size"
			);
		}
		for (id, challenge) in Challenges::<T>::iter() {
			ensure!(challenge.deadline > challenge.issued_at, "a challenge's deadline precedes it");
			ensure!(
				challenge.due_at > challenge.deadline,
				"a challenge expires before its deadline"
			);
			ensure!(
				Due::<T>::get(challenge.due_at).contains(&id),
				"an open challenge is not queued to expire"
			);
		}
		let now = frame_system::Pallet::<T>::block_number();
		for (at, due) in Due::<T>::iter() {
			ensure!(at > now, "a due queue was left behind");
			for id in due {
				// Answered challenges leave their item behind; it is skipped when due.
				if let Some(challenge) = Challenges::<T>::get(id) {
					ensure!(
						challenge.due_at == at || Due::<T>::get(challenge.due_at).contains(&id),
						"a due item names a challenge queued nowhere"
					);
				}
			}
		}
		Ok(())
	}
}

/// The deal lifecycle, as the market tells the SLA side (forwarded by the runtime's glue).
/// This pallet signs no terms of its own: [`SlaTracker::offers`] accepts any.
impl<T: Config> SlaTracker<T::AccountId, BalanceOf<T>> for Pallet<T> {
	fn offers(_provider: &T::AccountId, _terms: &SlaTerms<BalanceOf<T>>) -> bool {
		true
	}

	fn deal_started(
		id: DealId,
		_publisher: &T::AccountId,
		_provider: &T::AccountId,
		_terms: &SlaTerms<BalanceOf<T>>,
	) -> DispatchResult {
		LiveDeals::<T>::insert(id, DealRecord::default());
		Ok(())
	}

	/// Removes the deal's commitments; an open challenge stays answerable until its deadline.
	fn deal_ended(id: DealId, _paid: BalanceOf<T>) {
		LiveDeals::<T>::remove(id);
		let _ = Commitments::<T>::clear_prefix(id, T::MaxVolumesPerDeal::get(), None);
	}

	/// Volumes are not measured in windows: a pending manifest changes nothing here.
	fn manifest_pending(_id: DealId, _pending: bool) {}
}
