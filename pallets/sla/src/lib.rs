//! # SLA pallet
//!
//! Uptime guarantees of podchain deals, backed by the provider's stake.
//!
//! ## Overview
//!
//! A provider advertises the SLA terms it signs ([`Pallet::offer_terms`]); a publisher may put
//! any terms within that offer on a deal, with the health check its pods answer (the market
//! asks [`SlaTracker::offers`]). Once the provider accepts the deal and its agent names it
//! running, the deal is measured in windows of `terms.window_blocks` blocks, and each window
//! whose uptime falls below `terms.uptime_target` slashes a penalty from the provider's stake
//! to the publisher (plus [`Config::PenaltySurcharge`] of it to the treasury). The penalty is
//! `terms.penalty_per_window`, but never more than [`PenaltyBillMultiple`] times what the
//! publisher paid for the window: an SLA credit is a share of the bill, so no deal moves more
//! stake than it paid for.
//!
//! ## Terms
//!
//! - **Probe window**: [`Config::ProbeWindow`] blocks, the unit of evidence. Measurement windows
//!   are whole numbers of probe windows.
//! - **Prober**: a validator key in [`Probers`]. Each prober's off-chain worker requests the
//!   health checks of a sample of each provider's SLA deals through the provider's gateway,
//!   with the deal's host name, and submits one signed [`Probe`] per provider per probe window
//!   as an unsigned transaction ([`Pallet::submit_probe`]).
//! - **Sample**: up to [`Config::MaxSampledDeals`] of a provider's tracked deals
//!   ([`Pallet::sample`]), drawn afresh each probe window from the hash of the block before the
//!   window, the window and the provider: the same for every prober, unknown before the window.
//! - **Outcome** of a deal's probe window: up, or down, when more than half of all probers
//!   said so; otherwise unknown, and the window does not count.
//! - **Heartbeat**: the provider's agent names the deals it runs ([`Pallet::heartbeat`]). The
//!   first heartbeat naming a deal starts its measurement (from the next probe window);
//!   heartbeats never make a deal up.
//!
//! A measurement window's uptime is its up probe windows over its decided (up or down) ones; a
//! window with no decided probe window is not measured and costs nothing. Probe windows count
//! only while the deal is measured: from the window after its agent first named it, except
//! while a manifest update is pending (until the window after the first heartbeat that follows
//! the provider's acknowledgement), and only when the deal has a registered name (without one
//! it cannot be probed).
//!
//! ## Standing
//!
//! Each prober's probe also votes on the provider: up when at least half of the verdicts it
//! counted were up. A provider's decided probe windows update its reputation, an exponential
//! moving average of windows met ([`Config::ReputationWeight`] is the newest window's share).
//! After [`Config::QuarantineAfter`] down windows in a row the provider is quarantined: the
//! registry stops offering it to new workloads until a window finds it up again.
//!
//! ## Design
//!
//! Nothing iterates over providers or deals in a hook. Votes go into the record of the window
//! being collected; a window is decided when the record is next touched. Window ends go into
//! [`Due`], a per-block queue bounded by [`Config::MaxDuePerBlock`]; an end that does not fit
//! is queued at the next probe-window boundary with room, or else in [`DueOverflow`], which the
//! hook drains first; a deal queued nowhere is queued again whenever a probe, a heartbeat or
//! [`Pallet::settle_window`] touches it. Evidence is kept as bit sets over the last
//! [`HISTORY_WINDOWS`] probe windows, and a late settlement settles every ended window still in
//! that history.
//!
//! Probes are admitted through `ValidateUnsigned` (the `im-online` pattern: signed payload,
//! cheap checks first, `and_provides((provider, window, prober))`, longevity to the window's
//! end). polkadot-sdk deprecates it for `#[pallet::authorize]`; the same checks move there.
//!
//! ## Invariants (checked by `try_state`)
//!
//! - Every tracked deal's measurement windows are whole probe windows, at most
//!   [`MAX_WINDOW_SPAN`] of them.
//! - [`ProviderDeals`] lists every tracked deal once, under its provider, and nothing else.
//! - A deal queued in the overflow is listed there.
//! - No tally counts more votes than there are probers, nor more than its voters.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

pub mod host;
pub mod types;
pub mod weights;

mod impls;
mod offchain;
mod windows;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

pub use podchain_primitives::{
	ProbeTargets, ProviderStanding, SlaDealInfo, SlaDeals, SlaParties, SlaTracker, StakeSlasher,
};
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

/// What the benchmarks need from the runtime: a registered provider with stake to slash, and
/// deals the market knows.
#[cfg(feature = "runtime-benchmarks")]
pub trait BenchmarkHelper<AccountId> {
	/// Registers `who` as an active provider with a gateway and bonds stake for it.
	fn setup_provider(who: &AccountId);
	/// Makes deal `id` known to the market with a registered name and some payment, as far as
	/// [`SlaDealInfo`] reads it.
	fn setup_deal(id: DealId);
}

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use frame_support::pallet_prelude::*;
	use frame_system::{offchain::CreateBare, pallet_prelude::*};
	use sp_runtime::{FixedU128, Perbill, Permill, RuntimeAppPublic};

	const STORAGE_VERSION: StorageVersion = StorageVersion::new(2);

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

		/// The registry: where each provider's gateway is.
		type Targets: ProbeTargets<Self::AccountId>;

		/// The market: deals' names and what their publishers paid.
		type Deals: SlaDealInfo<BalanceOf<Self>>;

		/// Blocks per probe window.
		#[pallet::constant]
		type ProbeWindow: Get<u32>;

		/// Most probers.
		#[pallet::constant]
		type MaxProbers: Get<u32>;

		/// Most health checks one prober requests per block.
		#[pallet::constant]
		type MaxProbesPerBlock: Get<u32>;

		/// Most of a provider's deals probed per probe window (at most [`MAX_SAMPLED_DEALS`]).
		#[pallet::constant]
		type MaxSampledDeals: Get<u32>;

		/// Most running SLA deals per provider: accepting one more fails.
		#[pallet::constant]
		type MaxSlaDealsPerProvider: Get<u32>;

		/// Milliseconds a health check has to answer.
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

		/// Most window ends settled from one block's queue.
		#[pallet::constant]
		type MaxDuePerBlock: Get<u32>;

		/// Most window ends waiting in [`DueOverflow`].
		#[pallet::constant]
		type MaxDueOverflow: Get<u32>;

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

	/// Whether probers fetch gateways on loopback, private or link-local addresses
	/// (development chains only: elsewhere a provider could point probers at their own node).
	#[pallet::storage]
	pub type AllowLocalTargets<T> = StorageValue<_, bool, ValueQuery>;

	/// The default [`PenaltyBillMultiple`]: a window's credit is at most what it was paid.
	pub struct OneTimesTheBill;
	impl Get<FixedU128> for OneTimesTheBill {
		fn get() -> FixedU128 {
			FixedU128::from_u32(1)
		}
	}

	/// Most a missed window may cost, as a multiple of what the publisher paid for it (Root
	/// sets it; default 1).
	#[pallet::storage]
	pub type PenaltyBillMultiple<T> = StorageValue<_, FixedU128, ValueQuery, OneTimesTheBill>;

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

	/// Each provider's tracked deals, in acceptance order: the providers probers walk, and
	/// what they sample from.
	#[pallet::storage]
	pub type ProviderDeals<T: Config> = StorageMap<
		_,
		Blake2_128Concat,
		T::AccountId,
		BoundedVec<DealId, T::MaxSlaDealsPerProvider>,
		ValueQuery,
	>;

	/// Window ends due at a block.
	#[pallet::storage]
	pub type Due<T: Config> = StorageMap<
		_,
		Twox64Concat,
		BlockNumberFor<T>,
		BoundedVec<DueItem, T::MaxDuePerBlock>,
		ValueQuery,
	>;

	/// Window ends no block's queue had room for, oldest first; the hook settles up to
	/// [`Config::MaxDuePerBlock`] of them each block before the block's own queue.
	#[pallet::storage]
	pub type DueOverflow<T: Config> =
		StorageValue<_, BoundedVec<DealId, T::MaxDueOverflow>, ValueQuery>;

	#[pallet::genesis_config]
	#[derive(frame_support::DefaultNoBound)]
	pub struct GenesisConfig<T: Config> {
		/// The first probers (the validators' prober keys).
		pub probers: alloc::vec::Vec<T::AuthorityId>,
		/// Whether local gateways are probed (development chains).
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
		/// A prober's verdicts on a provider's sampled deals were recorded: `up` and `down`
		/// verdicts counted (verdicts on deals not measured now do not count).
		ProbeRecorded {
			provider: T::AccountId,
			window: WindowIndex,
			prober: u32,
			up: u32,
			down: u32,
		},
		/// A provider's probe window was decided.
		WindowDecided { provider: T::AccountId, window: WindowIndex, outcome: Outcome },
		/// A deal's probe window was decided.
		DealWindowDecided { deal: DealId, window: WindowIndex, outcome: Outcome },
		/// A provider failed `failures` windows in a row: the registry stops offering it.
		Quarantined { provider: T::AccountId, failures: u32 },
		/// A quarantined provider passed a window: it is offered again.
		QuarantineLifted { provider: T::AccountId },
		/// A provider's agent named `deals` of its tracked deals as running.
		Heartbeat { provider: T::AccountId, window: WindowIndex, deals: u32 },
		/// The agent named the deal running: its probe windows count from `window`.
		MeasurementStarted { deal: DealId, window: WindowIndex },
		/// A manifest update is pending: the deal's windows do not count until the agent names
		/// it again after the provider acknowledged the update.
		MeasurementPaused { deal: DealId },
		/// A deal's measurement window met its uptime target.
		SlaMet { deal: DealId, window: u32, uptime: Permill },
		/// A deal's measurement window missed its uptime target: `penalty` is owed to the
		/// publisher (the terms' penalty, bounded by the bill).
		SlaMissed { deal: DealId, window: u32, uptime: Permill, penalty: BalanceOf<T> },
		/// The penalties of the windows settled together were slashed from the provider's
		/// stake: `compensated` of `slashed` to the publisher, the rest to the treasury.
		PenaltySlashed { deal: DealId, slashed: BalanceOf<T>, compensated: BalanceOf<T> },
		/// A deal's measurement window had no decided probe window: nothing measured, nothing
		/// owed.
		WindowUnmeasured { deal: DealId, window: u32 },
		/// The probers were replaced.
		ProbersSet { count: u32 },
		/// Root set the most a missed window may cost, as a multiple of what it was paid.
		PenaltyBillMultipleSet { multiple: FixedU128 },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// Only a registered provider may do this.
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
		/// The probe's deals are not the provider's sample for the window.
		WrongSample,
		/// No running deal with SLA terms has this id.
		UnknownDeal,
		/// The measurement window has not ended yet.
		WindowNotEnded,
		/// The provider runs the most SLA deals it may ([`Config::MaxSlaDealsPerProvider`]).
		TooManySlaDeals,
		/// More probers than [`Config::MaxProbers`] or [`MAX_PROBERS`].
		TooManyProbers,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		/// Settles up to [`Config::MaxDuePerBlock`] window ends from [`DueOverflow`], then the
		/// window ends due now (at most [`Config::MaxDuePerBlock`]); never a scan.
		fn on_initialize(now: BlockNumberFor<T>) -> Weight {
			let overflow = Self::take_overflow(T::MaxDuePerBlock::get());
			let due = Due::<T>::take(now);
			let weight = T::WeightInfo::on_initialize(
				(overflow.len() as u32).saturating_add(due.len() as u32),
			);
			for id in overflow {
				Self::settle_due(id, DueAt::Overflow, now);
			}
			let block: u32 = sp_runtime::traits::SaturatedConversion::saturated_into(now);
			for DueItem::WindowEnd(id) in due {
				Self::settle_due(id, DueAt::Block(block), now);
			}
			weight
		}

		/// Probes sampled deals through their providers' gateways on validator nodes holding
		/// a prober key.
		fn offchain_worker(now: BlockNumberFor<T>) {
			if let Err(reason) = Self::probe_providers(now) {
				log::debug!(target: "runtime::sla", "no probes at {now:?}: {reason}");
			}
		}

		fn integrity_test() {
			assert!(T::ProbeWindow::get() > 1, "ProbeWindow must be at least 2 blocks");
			assert!(T::MaxProbers::get() <= MAX_PROBERS, "MaxProbers above MAX_PROBERS");
			assert!(T::MaxSampledDeals::get() > 0, "MaxSampledDeals must be positive");
			assert!(
				T::MaxSampledDeals::get() <= MAX_SAMPLED_DEALS,
				"MaxSampledDeals above MAX_SAMPLED_DEALS"
			);
			assert!(
				T::MaxProbesPerBlock::get() >= T::MaxSampledDeals::get(),
				"a block's probes must cover one provider's sample"
			);
			assert!(
				T::MaxSlaDealsPerProvider::get() > 0,
				"MaxSlaDealsPerProvider must be positive"
			);
			assert!(T::QuarantineAfter::get() > 0, "QuarantineAfter must be positive");
			assert!(T::MaxDuePerBlock::get() > 0, "MaxDuePerBlock must be positive");
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Record a prober's verdicts on a provider's sampled deals for the current probe window
		/// (unsigned, signed with the prober key; submitted by validators' off-chain workers).
		///
		/// Emits `ProbeRecorded`, and `WindowDecided` (with `Quarantined` or
		/// `QuarantineLifted`) and `DealWindowDecided` for earlier windows. Fails with
		/// `StaleProbe`, `UnknownProber`, `DuplicateProbe`, `WrongSample` or `BadSignature`.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::submit_probe(probe.verdicts.len() as u32))]
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

		/// Name the tracked deals the caller's agent runs now (its provider). The first
		/// heartbeat naming a deal starts its measurement from the next probe window. Deals of
		/// other providers, or without SLA terms, are ignored.
		///
		/// Emits `Heartbeat`, and `MeasurementStarted` per deal whose measurement starts.
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

		/// Settle every ended measurement window of a deal still in its history (anyone), and
		/// queue its next window's end. The hook does this at each window's end; this is for
		/// windows it has not reached.
		///
		/// Emits `SlaMet`, `SlaMissed` or `WindowUnmeasured` per window, `PenaltySlashed` if any
		/// was missed. Fails with `UnknownDeal` or `WindowNotEnded`.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::settle_window(HISTORY_WINDOWS))]
		pub fn settle_window(origin: OriginFor<T>, deal: DealId) -> DispatchResultWithPostInfo {
			ensure_signed(origin)?;
			let now = frame_system::Pallet::<T>::block_number();
			let settled = Self::settle_ended_windows(deal, now, None)?;
			ensure!(settled > 0, Error::<T>::WindowNotEnded);
			Ok(Some(T::WeightInfo::settle_window(settled)).into())
		}

		// Call indices 4 to 7 belonged to the storage challenges this pallet no longer has.

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

		/// Set the most a missed window may cost, as a multiple of what the publisher paid for
		/// it (Root). Applies to windows settled from now on.
		///
		/// Emits `PenaltyBillMultipleSet`.
		#[pallet::call_index(9)]
		#[pallet::weight(T::WeightInfo::set_penalty_bill_multiple())]
		pub fn set_penalty_bill_multiple(
			origin: OriginFor<T>,
			multiple: FixedU128,
		) -> DispatchResult {
			ensure_root(origin)?;
			PenaltyBillMultiple::<T>::put(multiple);
			Self::deposit_event(Event::PenaltyBillMultipleSet { multiple });
			Ok(())
		}
	}

	#[allow(deprecated)]
	#[pallet::validate_unsigned]
	impl<T: Config> ValidateUnsigned for Pallet<T> {
		type Call = Call<T>;

		/// Admits a probe only if it is for the current window, from a known prober that has
		/// not voted on the provider yet, for the provider's sample, and correctly signed; the
		/// cheap checks come first.
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
