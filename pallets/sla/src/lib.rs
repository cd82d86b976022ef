//! # SLA pallet
//!
//! Uptime and storage guarantees of podchain deals, backed by the provider's stake.
//!
//! ## Overview
//!
//! A provider advertises the SLA terms it signs ([`Pallet::offer_terms`]); a publisher may put
//! any terms within that offer on a deal (the market asks [`SlaTracker::offers`]). Once the
//! provider accepts the deal, the deal is measured in windows of `terms.window_blocks` blocks,
//! and each window whose uptime falls below `terms.uptime_target` slashes
//! `terms.penalty_per_window` from the provider's stake to the publisher (plus
//! [`Config::PenaltySurcharge`] of it to the treasury).
//!
//! ## Terms
//!
//! - **Probe window**: [`Config::ProbeWindow`] blocks, the unit of evidence. Measurement windows
//!   are whole numbers of probe windows.
//! - **Prober**: a validator key in [`Probers`]. Each prober's off-chain worker probes
//!   providers' health URLs and submits one signed verdict per provider per probe window as an
//!   unsigned transaction ([`Pallet::submit_probe`]).
//! - **Outcome** of a provider's probe window: up, or down, when more than half of all probers
//!   said so; otherwise unknown, and the window does not count.
//! - **Heartbeat**: the provider's agent names the deals it runs once per probe window
//!   ([`Pallet::heartbeat`]).
//!
//! A deal is up in a probe window when the probers found its provider up *and* the agent named
//! the deal. A measurement window's uptime is its up probe windows over its decided (up or
//! down) ones; a window with no decided probe window is not measured and costs nothing.
//!
//! ## Standing
//!
//! Every decided probe window updates the provider's reputation, an exponential moving
//! average of windows met ([`Config::ReputationWeight`] is the newest window's share). After
//! [`Config::QuarantineAfter`] down windows in a row the provider is quarantined: the registry
//! stops offering it to new workloads until a window finds it up again.
//!
//! ## Storage challenges
//!
//! The provider's agent commits a volume's root checksum ([`Pallet::commit_volume`]); in
//! production it runs in the attested TEE, so the root is the TEE's word. The publisher may
//! challenge the volume once per measurement window ([`Pallet::challenge_storage`]); the
//! provider must answer within [`Config::ChallengeDeadline`] blocks with the root it holds now
//! ([`Pallet::answer_challenge`], signed with the agent's key). A different root or no answer
//! slashes the deal's penalty to the publisher. A challenge open when the deal ends stays
//! answerable until its deadline.
//!
//! ## Design
//!
//! Nothing iterates over providers or deals in a hook. Votes go into the provider's record of
//! the window being collected; a window is decided when the record is next touched (the next
//! window's first vote, or a deal's settlement). Window ends and challenge deadlines go into
//! [`Due`], a per-block queue bounded by [`Config::MaxDuePerBlock`]; what does not fit there is
//! still settled by anyone calling [`Pallet::settle_window`] or [`Pallet::expire_challenge`].
//! Evidence is kept as bit sets over the last [`HISTORY_WINDOWS`] probe windows, so storage per
//! provider and per deal is constant.
//!
//! Probes are admitted through `ValidateUnsigned` (the `im-online` pattern: signed payload,
//! cheap checks first, `and_provides((provider, window, prober))`, longevity to the window's
//! end). polkadot-sdk deprecates it for `#[pallet::authorize]`; the same checks move there.
//!
//! ## Invariants (checked by `try_state`)
//!
//! - Every tracked deal's measurement windows are whole probe windows, at most
//!   [`MAX_WINDOW_SPAN`] of them.
//! - Every open challenge belongs to a tracked deal and names a committed volume.
//! - A tracked deal's volume count equals its committed volumes.
//! - No tally counts more votes than there are probers, nor more than its voters.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

pub mod types;
pub mod weights;

mod challenge;
mod impls;
mod offchain;
mod windows;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

pub use podchain_primitives::{ProbeTargets, ProviderStanding, SlaTracker, StakeSlasher};
pub use types::*;
pub use weights::WeightInfo;

use frame_support::traits::fungible;

/// Balance type of penalties.
pub type BalanceOf<T> =
	<<T as Config>::Currency as fungible::Inspect<<T as frame_system::Config>::AccountId>>::Balance;

/// A tracked deal as stored for runtime `T`.
pub type TrackedDealOf<T> = TrackedDeal<<T as frame_system::Config>::AccountId, BalanceOf<T>>;

/// Key type of prober keys in the node's keystore.
pub const KEY_TYPE: sp_core::crypto::KeyTypeId = sp_core::crypto::KeyTypeId(*b"pdsl");

/// Prober keys: sr25519, under [`KEY_TYPE`].
pub mod crypto {
	use sp_runtime::app_crypto::{app_crypto, sr25519};
	app_crypto!(sr25519, super::KEY_TYPE);
}

/// A prober's public key.
pub type ProberId = crypto::Public;

/// What the benchmarks need from the runtime: a registered provider with stake to slash.
#[cfg(feature = "runtime-benchmarks")]
pub trait BenchmarkHelper<AccountId> {
	/// Registers `who` as an active provider with a health URL and bonds stake for it.
	fn setup_provider(who: &AccountId);
}

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use frame_support::pallet_prelude::*;
	use frame_system::{offchain::CreateBare, pallet_prelude::*};
	use sp_runtime::{Perbill, Permill, RuntimeAppPublic};

	const STORAGE_VERSION: StorageVersion = StorageVersion::new(1);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	#[pallet::config]
	pub trait Config: frame_system::Config + CreateBare<Call<Self>> {
		/// Currency penalties are counted in.
		type Currency: fungible::Inspect<Self::AccountId>;

		/// Key a prober signs its verdicts with.
		type AuthorityId: Member
			+ Parameter
			+ RuntimeAppPublic
			+ Ord
			+ MaybeSerializeDeserialize
			+ MaxEncodedLen;

		/// Provider staking: takes penalties from stake.
		type Slasher: StakeSlasher<Self::AccountId, BalanceOf<Self>>;

		/// The registry: which providers to probe, and where.
		type Targets: ProbeTargets<Self::AccountId>;

		/// Blocks per probe window.
		#[pallet::constant]
		type ProbeWindow: Get<u32>;

		/// Most probers.
		#[pallet::constant]
		type MaxProbers: Get<u32>;

		/// Most health URLs one prober fetches per block.
		#[pallet::constant]
		type MaxProbesPerBlock: Get<u32>;

		/// Milliseconds a health URL has to answer.
		#[pallet::constant]
		type ProbeTimeoutMillis: Get<u64>;

		/// Down windows in a row that quarantine a provider.
		#[pallet::constant]
		type QuarantineAfter: Get<u32>;

		/// Share of the newest window in the reputation.
		#[pallet::constant]
		type ReputationWeight: Get<Permill>;

		/// Share of a penalty slashed on top of it for the treasury.
		#[pallet::constant]
		type PenaltySurcharge: Get<Perbill>;

		/// Most deals named in one heartbeat.
		#[pallet::constant]
		type MaxDealsPerHeartbeat: Get<u32>;

		/// Most volumes with a committed root per deal.
		#[pallet::constant]
		type MaxVolumesPerDeal: Get<u32>;

		/// Most window ends and challenge deadlines settled in one block.
		#[pallet::constant]
		type MaxDuePerBlock: Get<u32>;

		/// Blocks a provider has to answer a storage challenge.
		#[pallet::constant]
		type ChallengeDeadline: Get<BlockNumberFor<Self>>;

		/// Priority of probe transactions in the pool.
		#[pallet::constant]
		type UnsignedPriority: Get<TransactionPriority>;

		/// Origin that sets the probers.
		type ProberOrigin: EnsureOrigin<Self::RuntimeOrigin>;

		/// Weights of this pallet's calls and hook.
		type WeightInfo: WeightInfo;

		/// Sets up providers for the benchmarks.
		#[cfg(feature = "runtime-benchmarks")]
		type BenchmarkHelper: BenchmarkHelper<Self::AccountId>;
	}

	/// The validators' prober keys; a probe names its prober by index here.
	#[pallet::storage]
	pub type Probers<T: Config> =
		StorageValue<_, BoundedVec<T::AuthorityId, T::MaxProbers>, ValueQuery>;

	/// Whether probers fetch health URLs on loopback, private or link-local addresses
	/// (development chains only: elsewhere a provider could point probers at their own node).
	#[pallet::storage]
	pub type AllowLocalTargets<T> = StorageValue<_, bool, ValueQuery>;

	/// SLA terms each provider offers.
	#[pallet::storage]
	pub type Offers<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, SlaOffer<BalanceOf<T>>, OptionQuery>;

	/// Each probed provider's votes, history and standing.
	#[pallet::storage]
	pub type Records<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, ProviderRecord, OptionQuery>;

	/// Running deals with SLA terms.
	#[pallet::storage]
	pub type Tracked<T: Config> =
		StorageMap<_, Twox64Concat, DealId, TrackedDealOf<T>, OptionQuery>;

	/// Last committed root of each volume of a tracked deal.
	#[pallet::storage]
	pub type VolumeRoots<T: Config> = StorageDoubleMap<
		_,
		Twox64Concat,
		DealId,
		Blake2_128Concat,
		VolumeName,
		VolumeCommitment<BlockNumberFor<T>>,
		OptionQuery,
	>;

	/// The open storage challenge of a deal (one at a time).
	#[pallet::storage]
	pub type Challenges<T: Config> =
		StorageMap<_, Twox64Concat, DealId, Challenge<BlockNumberFor<T>>, OptionQuery>;

	/// Window ends and challenge deadlines due at a block.
	#[pallet::storage]
	pub type Due<T: Config> = StorageMap<
		_,
		Twox64Concat,
		BlockNumberFor<T>,
		BoundedVec<DueItem, T::MaxDuePerBlock>,
		ValueQuery,
	>;

	#[pallet::genesis_config]
	#[derive(frame_support::DefaultNoBound)]
	pub struct GenesisConfig<T: Config> {
		/// The first probers (the validators' prober keys).
		pub probers: alloc::vec::Vec<T::AuthorityId>,
		/// Whether local health URLs are probed (development chains).
		pub allow_local_targets: bool,
	}

	#[pallet::genesis_build]
	impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
		fn build(&self) {
			let probers: BoundedVec<_, T::MaxProbers> =
				self.probers.clone().try_into().expect("more genesis probers than MaxProbers");
			Probers::<T>::put(probers);
			AllowLocalTargets::<T>::put(self.allow_local_targets);
		}
	}

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A provider now offers these SLA terms (`None`: it offers none).
		TermsOffered { provider: T::AccountId, offer: Option<SlaOffer<BalanceOf<T>>> },
		/// A prober's verdict on a provider was recorded.
		ProbeRecorded { provider: T::AccountId, window: WindowIndex, prober: u32, up: bool },
		/// A provider's probe window was decided.
		WindowDecided { provider: T::AccountId, window: WindowIndex, outcome: Outcome },
		/// A provider failed `failures` windows in a row: the registry stops offering it.
		Quarantined { provider: T::AccountId, failures: u32 },
		/// A quarantined provider passed a window: it is offered again.
		QuarantineLifted { provider: T::AccountId },
		/// A provider's agent named `deals` of its tracked deals as running.
		Heartbeat { provider: T::AccountId, window: WindowIndex, deals: u32 },
		/// A deal's measurement window met its uptime target.
		SlaMet { deal: DealId, window: u32, uptime: Permill },
		/// A deal's measurement window missed its uptime target: `slashed` from the provider's
		/// stake, `compensated` of it to the publisher.
		SlaMissed {
			deal: DealId,
			window: u32,
			uptime: Permill,
			slashed: BalanceOf<T>,
			compensated: BalanceOf<T>,
		},
		/// A deal's measurement window had no decided probe window: nothing measured, nothing
		/// owed.
		WindowUnmeasured { deal: DealId, window: u32 },
		/// The provider's agent committed a volume's root.
		VolumeCommitted { deal: DealId, volume: VolumeName, root: VolumeRoot },
		/// The publisher challenged a volume; the provider must answer by `deadline`.
		StorageChallenged { deal: DealId, volume: VolumeName, deadline: BlockNumberFor<T> },
		/// The provider answered a challenge with the committed root.
		ChallengePassed { deal: DealId, volume: VolumeName },
		/// The provider answered a challenge wrongly, or not in time: slashed and compensated.
		ChallengeFailed {
			deal: DealId,
			volume: VolumeName,
			slashed: BalanceOf<T>,
			compensated: BalanceOf<T>,
		},
		/// The probers were replaced.
		ProbersSet { count: u32 },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// Only a registered, active provider may do this.
		NotProvider,
		/// The offer is empty or inconsistent, or its windows are not whole probe windows of at
		/// most [`MAX_WINDOW_SPAN`].
		InvalidOffer,
		/// The probe is for another probe window than the current one.
		StaleProbe,
		/// No prober has this index.
		UnknownProber,
		/// This prober has already voted on this provider in this window.
		DuplicateProbe,
		/// The prober's signature does not match the probe.
		BadSignature,
		/// No running deal with SLA terms has this id.
		UnknownDeal,
		/// The measurement window has not ended yet.
		WindowNotEnded,
		/// Only the deal's publisher may do this.
		NotPublisher,
		/// The deal was challenged less than a measurement window ago.
		ChallengeTooSoon,
		/// Only the deal's provider may do this.
		NotDealProvider,
		/// The deal has the most committed volumes already.
		TooManyVolumes,
		/// No root was committed for this volume.
		NoCommitment,
		/// A challenge is open on this deal: roots cannot change until it is answered.
		ChallengeOpen,
		/// No challenge is open on this deal.
		NoChallenge,
		/// The challenge's deadline has passed.
		ChallengeExpired,
		/// The challenge's deadline has not passed yet.
		ChallengeNotExpired,
		/// The due queues of the next blocks are full; try again later.
		Busy,
		/// More probers than [`Config::MaxProbers`] or [`MAX_PROBERS`].
		TooManyProbers,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		/// Settles the window ends and challenge deadlines due now; at most
		/// [`Config::MaxDuePerBlock`], never a scan.
		fn on_initialize(now: BlockNumberFor<T>) -> Weight {
			let due = Due::<T>::take(now);
			let weight = T::WeightInfo::on_initialize(due.len() as u32);
			for item in due {
				match item {
					DueItem::WindowEnd(deal) => Self::settle_due_windows(deal, now),
					DueItem::ChallengeDeadline(deal) => Self::expire_due_challenge(deal, now),
				}
			}
			weight
		}

		/// Probes providers' health URLs on validator nodes holding a prober key.
		fn offchain_worker(now: BlockNumberFor<T>) {
			if let Err(reason) = Self::probe_providers(now) {
				log::debug!(target: "runtime::sla", "no probes at {now:?}: {reason}");
			}
		}

		fn integrity_test() {
			assert!(T::ProbeWindow::get() > 1, "ProbeWindow must be at least 2 blocks");
			assert!(T::MaxProbers::get() <= MAX_PROBERS, "MaxProbers above MAX_PROBERS");
			assert!(T::MaxProbesPerBlock::get() > 0, "MaxProbesPerBlock must be positive");
			assert!(T::QuarantineAfter::get() > 0, "QuarantineAfter must be positive");
			assert!(T::MaxDuePerBlock::get() > 0, "MaxDuePerBlock must be positive");
			assert!(!T::ChallengeDeadline::get().is_zero(), "ChallengeDeadline must be positive");
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Record a prober's verdict on a provider for the current probe window (unsigned,
		/// signed with the prober key; submitted by validators' off-chain workers).
		///
		/// Emits `ProbeRecorded`, and `WindowDecided` (with `Quarantined` or
		/// `QuarantineLifted`) for the provider's previous window. Fails with `StaleProbe`,
		/// `UnknownProber`, `DuplicateProbe`, `BadSignature` or `NotProvider`.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::submit_probe())]
		pub fn submit_probe(
			origin: OriginFor<T>,
			probe: Probe<T::AccountId>,
			signature: <T::AuthorityId as RuntimeAppPublic>::Signature,
		) -> DispatchResult {
			ensure_none(origin)?;
			Self::check_probe(&probe, &signature)?;
			Self::record_probe(probe);
			Ok(())
		}

		/// Name the tracked deals the caller's agent runs now (its provider), once per probe
		/// window. Deals of other providers, or without SLA terms, are ignored.
		///
		/// Emits `Heartbeat`.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::heartbeat(deals.len() as u32))]
		pub fn heartbeat(
			origin: OriginFor<T>,
			deals: BoundedVec<DealId, T::MaxDealsPerHeartbeat>,
		) -> DispatchResult {
			let provider = ensure_signed(origin)?;
			Self::do_heartbeat(provider, deals);
			Ok(())
		}

		/// Offer SLA terms (a registered provider): deals may carry terms within the offer.
		/// `None` withdraws the offer; running deals keep their terms.
		///
		/// Emits `TermsOffered`. Fails with `NotProvider` or `InvalidOffer`.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::offer_terms())]
		pub fn offer_terms(
			origin: OriginFor<T>,
			offer: Option<SlaOffer<BalanceOf<T>>>,
		) -> DispatchResult {
			let provider = ensure_signed(origin)?;
			Self::do_offer_terms(provider, offer)
		}

		/// Settle a deal's ended measurement windows now (anyone). The hook does this at each
		/// window's end; this is for windows its queue had no room for.
		///
		/// Emits `SlaMet`, `SlaMissed` or `WindowUnmeasured` per window. Fails with
		/// `UnknownDeal` or `WindowNotEnded`.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::settle_window())]
		pub fn settle_window(origin: OriginFor<T>, deal: DealId) -> DispatchResult {
			ensure_signed(origin)?;
			let now = frame_system::Pallet::<T>::block_number();
			let settled = Self::settle_ended_window(deal, now)?;
			ensure!(settled, Error::<T>::WindowNotEnded);
			Ok(())
		}

		/// Commit the root checksum of one of a deal's volumes (its provider's agent, which in
		/// production runs in the attested TEE).
		///
		/// Emits `VolumeCommitted`. Fails with `UnknownDeal`, `NotDealProvider`, `ChallengeOpen`
		/// or `TooManyVolumes`.
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::commit_volume())]
		pub fn commit_volume(
			origin: OriginFor<T>,
			deal: DealId,
			volume: VolumeName,
			root: VolumeRoot,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_commit_volume(who, deal, volume, root)
		}

		/// Challenge a committed volume (the deal's publisher, once per measurement window): the
		/// provider must answer within [`Config::ChallengeDeadline`] blocks.
		///
		/// Emits `StorageChallenged`. Fails with `UnknownDeal`, `NotPublisher`, `NoCommitment`,
		/// `ChallengeOpen`, `ChallengeTooSoon` or `Busy`.
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::challenge_storage())]
		pub fn challenge_storage(
			origin: OriginFor<T>,
			deal: DealId,
			volume: VolumeName,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_challenge(who, deal, volume)
		}

		/// Answer the open challenge with the volume's root as held now (the deal's provider,
		/// signing with its agent key).
		///
		/// Emits `ChallengePassed`, or `ChallengeFailed` when `root` is not the committed one.
		/// Fails with `UnknownDeal`, `NotDealProvider`, `NoChallenge` or `ChallengeExpired`.
		#[pallet::call_index(6)]
		#[pallet::weight(T::WeightInfo::answer_challenge())]
		pub fn answer_challenge(
			origin: OriginFor<T>,
			deal: DealId,
			root: VolumeRoot,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_answer(who, deal, root)
		}

		/// Fail a challenge whose deadline passed unanswered (anyone). The hook does this at
		/// the deadline; this is for deadlines its queue had no room for.
		///
		/// Emits `ChallengeFailed`. Fails with `NoChallenge` or `ChallengeNotExpired`.
		#[pallet::call_index(7)]
		#[pallet::weight(T::WeightInfo::expire_challenge())]
		pub fn expire_challenge(origin: OriginFor<T>, deal: DealId) -> DispatchResult {
			ensure_signed(origin)?;
			Self::do_expire_challenge(deal)
		}

		/// Replace the probers ([`Config::ProberOrigin`]). Votes already cast in the current
		/// window stay in its tallies, where they are told apart by prober index.
		///
		/// Emits `ProbersSet`. Fails with `TooManyProbers`.
		#[pallet::call_index(8)]
		#[pallet::weight(T::WeightInfo::set_probers(probers.len() as u32))]
		pub fn set_probers(
			origin: OriginFor<T>,
			probers: BoundedVec<T::AuthorityId, T::MaxProbers>,
		) -> DispatchResult {
			T::ProberOrigin::ensure_origin(origin)?;
			ensure!(probers.len() as u32 <= MAX_PROBERS, Error::<T>::TooManyProbers);
			let count = probers.len() as u32;
			Probers::<T>::put(probers);
			Self::deposit_event(Event::ProbersSet { count });
			Ok(())
		}
	}

	#[allow(deprecated)]
	#[pallet::validate_unsigned]
	impl<T: Config> ValidateUnsigned for Pallet<T> {
		type Call = Call<T>;

		/// Admits a probe only if it is for the current window, from a known prober that has
		/// not voted on the provider yet, and correctly signed; the cheap checks come first.
		fn validate_unsigned(_source: TransactionSource, call: &Self::Call) -> TransactionValidity {
			let Call::submit_probe { probe, signature } = call else {
				return InvalidTransaction::Call.into();
			};
			if let Err(error) = Self::check_probe(probe, signature) {
				return Err(Self::invalid_probe(error).into());
			}
			let now = frame_system::Pallet::<T>::block_number();
			let left = Self::blocks_left_in_window(now);
			ValidTransaction::with_tag_prefix("PodchainSlaProbe")
				.priority(T::UnsignedPriority::get())
				.and_provides((&probe.provider, probe.window, probe.prober))
				.longevity(left.into())
				.propagate(true)
				.build()
		}
	}
}
