//! # Storage-proofs pallet
//!
//! Proofs that a provider still holds the data of its deals' volumes, backed by its stake.
//!
//! ## Overview
//!
//! For each volume of a deal with SLA terms, the provider's agent takes a consistent snapshot
//! at most once per [`Config::CommitmentPeriod`], keeps it, and commits the root of the Merkle
//! tree over its 4 KiB chunks, with its chunk count and size ([`Pallet::commit`]). The deal's
//! publisher may challenge a committed volume at most once per [`Config::ChallengePeriod`]
//! ([`Pallet::challenge`]): the challenge names the latest commitment, and asks for
//! [`Config::ChunksPerChallenge`] chunk indices derived from the hash of the block *after* the
//! one it was filed in, with the deal, volume and root (`podchain_merkle::challenge_indices`),
//! so neither side chooses them and the provider cannot know them before it is challenged.
//! The provider answers before [`Config::ChallengeDeadline`] blocks pass with those chunks and
//! their Merkle paths ([`Pallet::answer`]), verified against the committed root at a cost of
//! O(k log n). A chunk or path that does not verify, or no answer by the deadline, fails the
//! challenge: the penalty the challenge carries (at most one SLA window's, see
//! [`podchain_primitives::SlaDeals`]) is slashed from the provider's stake to the publisher.
//!
//! Answering needs the snapshot's bytes: the root and the paths alone do not make a chunk.
//! What it proves is possession of the committed snapshot at answer time; see the SLA docs
//! (`docs/sla.md`, "Storage proofs") for what it does not prove.
//!
//! ## Deals
//!
//! The runtime tells this pallet when a deal with SLA terms starts and ends (it implements
//! [`podchain_primitives::SlaTracker`], forwarded by the runtime's glue). Commitments and
//! challenges need a deal that started and has not ended; an ended deal's commitments are
//! removed at once, while a challenge open then stays answerable until its deadline (it carries
//! its publisher, provider, root and penalty).
//!
//! ## Design
//!
//! - One open challenge per deal; while it is open, the challenged volume takes no new
//!   commitment (a provider cannot replace the root it is being asked about).
//! - Deadlines go into [`Due`], a per-block queue bounded by [`Config::MaxDuePerBlock`]; a
//!   challenge is only filed if its expiry fits in one of the [`DUE_SEARCH`] blocks after its
//!   deadline, so no deadline is ever forgotten. The hook fails what is due, never scans; anyone
//!   may call [`Pallet::expire`] after the deadline too.
//! - A failed verification is final: the provider does not get a second try at a challenge.
//!   A malformed answer (not exactly k proofs) is refused without deciding anything.
//!
//! ## Invariants (checked by `try_state`)
//!
//! - Every commitment belongs to a live deal, whose volume count equals its commitments, at
//!   most [`Config::MaxVolumesPerDeal`]; each commitment's chunk count matches its size.
//! - Every open challenge's deadline is after its filing and its expiry is after its deadline
//!   and queued in [`Due`] at that block; every [`Due`] item names an open challenge due then.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

pub mod types;
pub mod weights;

mod impls;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

pub use podchain_primitives::{SlaDeals, SlaTracker, StakeSlasher};
pub use types::*;
pub use weights::WeightInfo;

use frame_support::traits::fungible;

/// Balance type of penalties.
pub type BalanceOf<T> =
	<<T as Config>::Currency as fungible::Inspect<<T as frame_system::Config>::AccountId>>::Balance;

/// An open challenge as stored for runtime `T`.
pub type ChallengeOf<T> = Challenge<
	<T as frame_system::Config>::AccountId,
	BalanceOf<T>,
	frame_system::pallet_prelude::BlockNumberFor<T>,
>;

/// Blocks after a deadline searched for room in [`Due`]; a challenge whose expiry fits in none
/// of them is refused (`Busy`) rather than filed without one.
pub const DUE_SEARCH: u32 = 16;

/// What the benchmarks need from the runtime: a running deal with SLA terms whose provider
/// has stake to slash.
#[cfg(feature = "runtime-benchmarks")]
pub trait BenchmarkHelper<AccountId> {
	/// Makes deal `id` a running SLA deal of `publisher` and `provider` wherever
	/// [`Config::Deals`] looks, with stake bonded for `provider`.
	fn sla_deal(id: DealId, publisher: &AccountId, provider: &AccountId);
}

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use frame_support::pallet_prelude::*;
	use frame_system::pallet_prelude::*;

	const STORAGE_VERSION: StorageVersion = StorageVersion::new(0);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	#[pallet::config]
	pub trait Config: frame_system::Config {
		/// Currency penalties are counted in.
		type Currency: fungible::Inspect<Self::AccountId>;

		/// Deals with SLA terms: their publisher, provider and penalty.
		type Deals: SlaDeals<Self::AccountId, BalanceOf<Self>>;

		/// Provider staking: takes penalties from stake.
		type Slasher: StakeSlasher<Self::AccountId, BalanceOf<Self>>;

		/// Fewest blocks between two commitments of the same volume.
		#[pallet::constant]
		type CommitmentPeriod: Get<BlockNumberFor<Self>>;

		/// Fewest blocks between two challenges of the same deal.
		#[pallet::constant]
		type ChallengePeriod: Get<BlockNumberFor<Self>>;

		/// Blocks the provider has to answer a challenge, counted from the block it was filed
		/// in (at least 3: answers are accepted from two blocks after filing).
		#[pallet::constant]
		type ChallengeDeadline: Get<BlockNumberFor<Self>>;

		/// Chunks a challenge asks for.
		#[pallet::constant]
		type ChunksPerChallenge: Get<u32>;

		/// Most volumes with a commitment per deal.
		#[pallet::constant]
		type MaxVolumesPerDeal: Get<u32>;

		/// Most challenge expiries settled in one block.
		#[pallet::constant]
		type MaxDuePerBlock: Get<u32>;

		/// Weights of this pallet's calls and hook.
		type WeightInfo: WeightInfo;

		/// Sets up deals for the benchmarks.
		#[cfg(feature = "runtime-benchmarks")]
		type BenchmarkHelper: BenchmarkHelper<Self::AccountId>;
	}

	/// Live deals with SLA terms (started, not ended): their volume count and last challenge.
	#[pallet::storage]
	pub type LiveDeals<T: Config> =
		StorageMap<_, Twox64Concat, DealId, DealRecord<BlockNumberFor<T>>, OptionQuery>;

	/// The latest commitment of each volume of a live deal.
	#[pallet::storage]
	pub type Commitments<T: Config> = StorageDoubleMap<
		_,
		Twox64Concat,
		DealId,
		Blake2_128Concat,
		VolumeName,
		Commitment<BlockNumberFor<T>>,
		OptionQuery,
	>;

	/// The open challenge of a deal (one at a time), until answered or expired.
	#[pallet::storage]
	pub type Challenges<T: Config> =
		StorageMap<_, Twox64Concat, DealId, ChallengeOf<T>, OptionQuery>;

	/// Deals whose challenge expires at a block, if still open.
	#[pallet::storage]
	pub type Due<T: Config> = StorageMap<
		_,
		Twox64Concat,
		BlockNumberFor<T>,
		BoundedVec<DealId, T::MaxDuePerBlock>,
		ValueQuery,
	>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// The provider committed a snapshot of a volume.
		Committed { deal: DealId, volume: VolumeName, root: Root, chunk_count: u32, size: u64 },
		/// The publisher challenged the volume's latest commitment; the provider must answer
		/// by `deadline`, with the chunks the block after this one selects. A failure costs
		/// `penalty`, held from the deal's bill-bounded SLA budget.
		Challenged {
			deal: DealId,
			volume: VolumeName,
			root: Root,
			deadline: BlockNumberFor<T>,
			penalty: BalanceOf<T>,
		},
		/// Every chunk of the answer verified against the committed root.
		ChallengePassed { deal: DealId, volume: VolumeName },
		/// The challenge failed: `slashed` from the provider's stake, `compensated` of it to
		/// the publisher.
		ChallengeFailed {
			deal: DealId,
			volume: VolumeName,
			reason: Failure,
			slashed: BalanceOf<T>,
			compensated: BalanceOf<T>,
		},
	}

	#[pallet::error]
	pub enum Error<T> {
		/// No running deal with SLA terms has this id.
		UnknownDeal,
		/// Only the deal's provider may do this.
		NotDealProvider,
		/// Only the deal's publisher may do this.
		NotPublisher,
		/// The chunk count is not the one the size gives, or the size is too large.
		InconsistentSize,
		/// The deal has the most committed volumes already.
		TooManyVolumes,
		/// The volume was committed less than a commitment period ago.
		CommitTooSoon,
		/// A challenge is open on this volume: its root cannot change until it is decided.
		ChallengeOpen,
		/// No snapshot of this volume was committed.
		NoCommitment,
		/// The deal was challenged less than a challenge period ago.
		ChallengeTooSoon,
		/// The due queues after the deadline are full; try again later.
		Busy,
		/// No challenge is open on this deal.
		NoChallenge,
		/// The block that selects the challenged chunks is not known yet: answer from the
		/// second block after the challenge.
		IndicesNotReady,
		/// An answer must hold exactly one proof per challenged chunk.
		WrongProofCount,
		/// The challenge's deadline has passed.
		ChallengeExpired,
		/// The challenge's deadline has not passed yet.
		ChallengeNotExpired,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		/// Fails the challenges due now that are still open; at most
		/// [`Config::MaxDuePerBlock`], never a scan.
		fn on_initialize(now: BlockNumberFor<T>) -> Weight {
			let due = Due::<T>::take(now);
			let weight = T::WeightInfo::on_initialize(due.len() as u32);
			for deal in due {
				Self::expire_due(deal, now);
			}
			weight
		}

		fn integrity_test() {
			assert!(T::ChunksPerChallenge::get() > 0, "ChunksPerChallenge must be positive");
			assert!(T::MaxDuePerBlock::get() > 0, "MaxDuePerBlock must be positive");
			assert!(
				T::ChallengeDeadline::get() >= 3u32.into(),
				"ChallengeDeadline must leave a block to answer in"
			);
			assert!(
				T::ChallengePeriod::get() > T::ChallengeDeadline::get(),
				"ChallengePeriod must outlast ChallengeDeadline"
			);
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Commit a snapshot of one of a deal's volumes (the deal's provider): the root of the
		/// Merkle tree over its chunks, its chunk count and its size. The provider vouches to
		/// hold this snapshot until it commits the next one.
		///
		/// Emits `Committed`. Fails with `UnknownDeal`, `NotDealProvider`, `InconsistentSize`,
		/// `ChallengeOpen`, `CommitTooSoon` or `TooManyVolumes`.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::commit())]
		pub fn commit(
			origin: OriginFor<T>,
			deal: DealId,
			volume: VolumeName,
			root: Root,
			chunk_count: u32,
			size: u64,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_commit(who, deal, volume, root, chunk_count, size)
		}

		/// Challenge the latest commitment of a volume (the deal's publisher, once per
		/// [`Config::ChallengePeriod`]). The provider must answer within
		/// [`Config::ChallengeDeadline`] blocks.
		///
		/// Emits `Challenged`. Fails with `UnknownDeal`, `NotPublisher`, `NoCommitment`,
		/// `ChallengeOpen`, `ChallengeTooSoon` or `Busy`.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::challenge())]
		pub fn challenge(origin: OriginFor<T>, deal: DealId, volume: VolumeName) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_challenge(who, deal, volume)
		}

		/// Answer the deal's open challenge (its provider) with the challenged chunks and their
		/// Merkle paths, in the order of the challenge's indices.
		///
		/// Emits `ChallengePassed`, or `ChallengeFailed` (slashing the provider) when any chunk
		/// does not verify. Fails with `NoChallenge`, `NotDealProvider`, `ChallengeExpired`,
		/// `IndicesNotReady` or `WrongProofCount`.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::answer(Pallet::<T>::deepest(proofs)))]
		pub fn answer(
			origin: OriginFor<T>,
			deal: DealId,
			proofs: BoundedVec<ChunkProof, T::ChunksPerChallenge>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_answer(who, deal, proofs)
		}

		/// Fail a challenge whose deadline passed unanswered (anyone). The hook does this at
		/// the challenge's expiry; this is for whoever does not want to wait for it.
		///
		/// Emits `ChallengeFailed`. Fails with `NoChallenge` or `ChallengeNotExpired`.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::expire())]
		pub fn expire(origin: OriginFor<T>, deal: DealId) -> DispatchResult {
			ensure_signed(origin)?;
			Self::do_expire(deal)
		}
	}
}
