//! # Provider staking pallet
//!
//! Stake that compute providers bond for the capacity they commit to deals, and the slashing
//! that pays publishers when a provider breaks a promise.
//!
//! ## Overview
//!
//! A provider bonds stake (`bond`, `bond_extra`): the funds stay in its account, held under
//! [`HoldReason::Stake`] ("reserved" in polkadot.js). When the market lets the provider accept a
//! deal it asks this pallet, through [`StakeCollateral::commit`], to commit the deal's
//! resources; that succeeds only if the provider's active stake covers the Root-set
//! [`Requirement`] for everything it then has committed. When the deal ends the market
//! releases the resources again.
//!
//! To leave, a provider unbonds (`unbond`): the amount waits [`Config::UnbondingPeriod`] blocks
//! in an unlocking chunk and is then withdrawn (`withdraw_unbonded`) back to the provider's
//! free balance. While it waits it can be bonded again (`rebond`), and it can still be slashed.
//!
//! The SLA pallet slashes through [`StakeSlasher::slash`]: up to the asked amount is taken,
//! active stake first, then unlocking chunks newest first; up to the compensation goes to the
//! publisher who was let down, the rest to the treasury ([`Config::TreasuryAccount`]).
//!
//! ## Terms
//!
//! - *Active stake*: bonded stake that backs commitments and may be unbonded.
//! - *Unlocking chunk*: unbonded stake with the block it can be withdrawn at. Still held, still
//!   slashable, not counted towards commitments.
//! - *Total stake* of a provider: active plus unlocking; all of it is held and slashable.
//! - *Committed capacity*: the resources of the provider's running deals, as told by the market.
//! - *Requirement*: stake needed for committed capacity, [`StakeRequirement::for_resources`]:
//!   a base plus a price per resource unit; zero when nothing is committed.
//!
//! ## Usage
//!
//! Providers call `bond`, `bond_extra`, `unbond`, `rebond` and `withdraw_unbonded`.
//! [`Config::RequirementOrigin`] (Root) calls `set_requirement`; genesis may set the first
//! requirement. The market uses [`StakeCollateral`], the SLA pallet [`StakeSlasher`]; UIs read
//! [`Pallet::ledger`], [`Pallet::required_for`] and [`Pallet::slashable`].
//!
//! ## Design
//!
//! - Every operation touches one ledger and a fixed number of storage items; only the ledger's
//!   chunks are iterated, at most [`Config::MaxUnlockingChunks`]. Nothing runs in a hook.
//! - The committed capacity lives in the provider's ledger, so a ledger may exist with no stake
//!   at all: a provider can commit capacity while the requirement for it is zero, and a slash
//!   can take all stake of a provider with running deals. A ledger is removed as soon as it
//!   holds no stake and tracks no commitment. `bond` fills such a stakeless ledger;
//!   `AlreadyBonded` means the account has stake (active or unbonding) already.
//! - Commitments are checked against the requirement when they are made (`commit`) and when
//!   stake leaves (`unbond`). A changed requirement does not re-check existing commitments: a
//!   raised requirement binds at the provider's next accept or unbond. A slash may leave a
//!   provider below its requirement; it then cannot unbond nor accept more until it bonds more.
//! - [`Config::MinBond`] applies to what the provider does: after `bond`, `bond_extra`,
//!   `unbond` and `rebond` the active stake is zero or at least `MinBond`. A slash may leave
//!   less.
//! - Slashing is best effort and never fails. Each payment is made in its own storage layer
//!   and the ledger shrinks only by what actually left the hold. A payment to the victim that
//!   fails (for example an amount below the existential deposit to an account that does not
//!   exist) goes to the treasury instead; a payment to the treasury that fails stays held as
//!   stake. Fund the treasury account in genesis so that it always exists. A slash whose
//!   victim is the provider itself pays the treasury only, so it cannot free stake without
//!   the unbonding period.
//!
//! ## Invariants (checked by `try_state`)
//!
//! - For every ledger, the balance held from its account under [`HoldReason::Stake`] equals the
//!   ledger's total (active plus unlocking).
//! - [`TotalStake`] equals the sum of all ledgers' totals.
//! - Every ledger's unlocking chunks are non-zero and sorted by strictly increasing
//!   `unlock_at` (there are at most [`Config::MaxUnlockingChunks`], by the bounded type).
//! - No stored ledger is empty: each holds stake or tracks committed capacity.

#![cfg_attr(not(feature = "std"), no_std)]

pub use pallet::*;

pub mod types;
pub mod weights;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

pub use podchain_primitives::{StakeCollateral, StakeSlasher};
pub use types::*;
pub use weights::WeightInfo;

use frame_support::{
	defensive_assert, ensure,
	pallet_prelude::DispatchResult,
	storage::with_storage_layer,
	traits::{
		fungible::{self, InspectHold, MutateHold},
		tokens::{Fortitude, Precision, Restriction},
		Get,
	},
	BoundedVec,
};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::{
	traits::{Bounded, CheckedAdd, CheckedSub, Saturating, Zero},
	DispatchError,
};

/// Log target of this pallet.
const LOG_TARGET: &str = "runtime::provider-staking";

/// Balance type of the currency stake is held in.
pub type BalanceOf<T> =
	<<T as Config>::Currency as fungible::Inspect<<T as frame_system::Config>::AccountId>>::Balance;

/// A provider's ledger as stored for runtime `T`.
pub type StakeLedgerOf<T> =
	StakeLedger<BalanceOf<T>, BlockNumberFor<T>, <T as Config>::MaxUnlockingChunks>;

/// The stake requirement as stored for runtime `T`.
pub type StakeRequirementOf<T> = StakeRequirement<BalanceOf<T>>;

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use frame_support::{
		pallet_prelude::*,
		traits::fungible::{Inspect, Mutate, MutateHold},
	};
	use frame_system::pallet_prelude::*;

	/// The in-code storage version.
	const STORAGE_VERSION: StorageVersion = StorageVersion::new(0);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	#[pallet::config]
	pub trait Config: frame_system::Config {
		/// Currency stake is held in. Slashed stake moves from the hold to the victim's and the
		/// treasury's free balance (`transfer_on_hold`).
		type Currency: Inspect<Self::AccountId>
			+ Mutate<Self::AccountId>
			+ MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>;

		/// The overarching hold reason.
		type RuntimeHoldReason: From<HoldReason>;

		/// Blocks an unbonded chunk waits before it can be withdrawn.
		#[pallet::constant]
		type UnbondingPeriod: Get<BlockNumberFor<Self>>;

		/// Most unlocking chunks a ledger holds at once. Unbonding in the same block adds to
		/// the same chunk.
		#[pallet::constant]
		type MaxUnlockingChunks: Get<u32>;

		/// Smallest active stake a provider may keep, unless it keeps none.
		#[pallet::constant]
		type MinBond: Get<BalanceOf<Self>>;

		/// Account slashed stake goes to when it is not paid to the victim. Fund it in genesis
		/// so that it always exists.
		type TreasuryAccount: Get<Self::AccountId>;

		/// Origin that sets the stake requirement (Root).
		type RequirementOrigin: EnsureOrigin<Self::RuntimeOrigin>;

		/// Weights of this pallet's calls.
		type WeightInfo: WeightInfo;
	}

	/// Reasons this pallet holds funds.
	#[pallet::composite_enum]
	pub enum HoldReason {
		/// Stake bonded by a provider (bonded or unbonding).
		#[codec(index = 0)]
		Stake,
	}

	/// Each provider's stake, unbonding chunks and committed capacity. Absent when there is
	/// none of them.
	#[pallet::storage]
	pub type Ledgers<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, StakeLedgerOf<T>, OptionQuery>;

	/// Stake required per unit of committed capacity (Root-set; genesis may set it).
	#[pallet::storage]
	pub type Requirement<T: Config> = StorageValue<_, StakeRequirementOf<T>, ValueQuery>;

	/// Sum of all ledgers' totals (active plus unlocking): all stake held by this pallet.
	#[pallet::storage]
	pub type TotalStake<T: Config> = StorageValue<_, BalanceOf<T>, ValueQuery>;

	#[pallet::genesis_config]
	#[derive(frame_support::DefaultNoBound)]
	pub struct GenesisConfig<T: Config> {
		/// Stake required per unit of committed capacity from genesis on; zero by default.
		pub requirement: StakeRequirementOf<T>,
	}

	#[pallet::genesis_build]
	impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
		fn build(&self) {
			Requirement::<T>::put(self.requirement);
		}
	}

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// `amount` more of a provider's funds are held as active stake.
		Bonded { who: T::AccountId, amount: BalanceOf<T> },
		/// A provider unbonded `amount`; it can be withdrawn from block `unlock_at` on.
		Unbonded { who: T::AccountId, amount: BalanceOf<T>, unlock_at: BlockNumberFor<T> },
		/// `amount` of unbonded stake went back to the provider's free balance.
		Withdrawn { who: T::AccountId, amount: BalanceOf<T> },
		/// A provider bonded `amount` of its unlocking stake again.
		Rebonded { who: T::AccountId, amount: BalanceOf<T> },
		/// The stake requirement changed; it binds at each provider's next accept or unbond.
		RequirementSet { requirement: StakeRequirementOf<T> },
		/// `amount` of a provider's stake was slashed: `compensated` of it paid to `victim`,
		/// `to_treasury` to the treasury.
		Slashed {
			provider: T::AccountId,
			amount: BalanceOf<T>,
			compensated: BalanceOf<T>,
			victim: T::AccountId,
			to_treasury: BalanceOf<T>,
		},
	}

	#[pallet::error]
	pub enum Error<T> {
		/// The account has stake (active or unbonding) already; use `bond_extra` or `rebond`.
		AlreadyBonded,
		/// The account has no stake ledger.
		NotBonded,
		/// The amount must be more than zero.
		ZeroAmount,
		/// The active stake would be below [`Config::MinBond`].
		BondTooSmall,
		/// The active stake left would be above zero but below [`Config::MinBond`].
		BelowMinBond,
		/// The account cannot put that much on hold.
		InsufficientBalance,
		/// Less than that is bonded (active).
		InsufficientActive,
		/// Less than that is unbonding.
		InsufficientUnlocking,
		/// The active stake left would not cover the requirement for the committed capacity.
		StakeCommitted,
		/// The active stake does not cover the requirement for the capacity to commit.
		InsufficientStake,
		/// The ledger has [`Config::MaxUnlockingChunks`] chunks already; withdraw or wait.
		TooManyChunks,
		/// No unlocking chunk is due yet.
		NothingToWithdraw,
		/// An amount, a requirement or committed capacity overflows.
		Overflow,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn integrity_test() {
			assert!(!T::UnbondingPeriod::get().is_zero(), "UnbondingPeriod must be positive");
			assert!(T::MaxUnlockingChunks::get() > 0, "MaxUnlockingChunks must be positive");
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Bond `value` of the caller's funds as stake, held under [`HoldReason::Stake`].
		///
		/// Emits `Bonded`. Fails with `AlreadyBonded`, `ZeroAmount`, `BondTooSmall` (below
		/// [`Config::MinBond`]), `Overflow` or `InsufficientBalance`.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::bond())]
		pub fn bond(
			origin: OriginFor<T>,
			#[pallet::compact] value: BalanceOf<T>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_bond(who, value)
		}

		/// Bond `value` more of the caller's funds as active stake.
		///
		/// Emits `Bonded`. Fails with `NotBonded`, `ZeroAmount`, `BondTooSmall` (active stake
		/// still below [`Config::MinBond`]), `Overflow` or `InsufficientBalance`.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::bond_extra())]
		pub fn bond_extra(
			origin: OriginFor<T>,
			#[pallet::compact] value: BalanceOf<T>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_bond_extra(who, value)
		}

		/// Start unbonding `value` of the caller's active stake: it can be withdrawn
		/// [`Config::UnbondingPeriod`] blocks from now and stays slashable until then.
		/// Unbonding everything is allowed once nothing is committed.
		///
		/// Emits `Unbonded`. Fails with `NotBonded`, `ZeroAmount`, `InsufficientActive`,
		/// `BelowMinBond`, `StakeCommitted` (the rest would not cover the requirement for the
		/// committed capacity), `Overflow` or `TooManyChunks`.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::unbond())]
		pub fn unbond(
			origin: OriginFor<T>,
			#[pallet::compact] value: BalanceOf<T>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_unbond(who, value)
		}

		/// Release all of the caller's unlocking chunks that are due back to its free balance.
		/// The ledger is removed once it holds no stake and nothing is committed.
		///
		/// Emits `Withdrawn`. Fails with `NotBonded` or `NothingToWithdraw`.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::withdraw_unbonded())]
		pub fn withdraw_unbonded(origin: OriginFor<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_withdraw_unbonded(who)
		}

		/// Set the stake required per unit of committed capacity
		/// ([`Config::RequirementOrigin`], Root). Existing commitments are not re-checked: the
		/// new requirement binds at each provider's next accept or unbond.
		///
		/// Emits `RequirementSet`.
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::set_requirement())]
		pub fn set_requirement(
			origin: OriginFor<T>,
			requirement: StakeRequirementOf<T>,
		) -> DispatchResult {
			T::RequirementOrigin::ensure_origin(origin)?;
			Requirement::<T>::put(requirement);
			Self::deposit_event(Event::RequirementSet { requirement });
			Ok(())
		}

		/// Bond `value` of the caller's unlocking stake again, newest chunks first.
		///
		/// Emits `Rebonded`. Fails with `NotBonded`, `ZeroAmount`, `InsufficientUnlocking`,
		/// `Overflow` or `BelowMinBond` (the active stake would stay below
		/// [`Config::MinBond`]).
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::rebond())]
		pub fn rebond(
			origin: OriginFor<T>,
			#[pallet::compact] value: BalanceOf<T>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_rebond(who, value)
		}
	}
}

impl<T: Config> Pallet<T> {
	/// The stake ledger of `who`, if it has stake or committed capacity.
	pub fn ledger(who: &T::AccountId) -> Option<StakeLedgerOf<T>> {
		Ledgers::<T>::get(who)
	}

	/// Stake `who` must keep active for the capacity it has committed now (saturating at the
	/// largest balance if the requirement overflows).
	pub fn required_for(who: &T::AccountId) -> BalanceOf<T> {
		Ledgers::<T>::get(who).map_or_else(Zero::zero, |ledger| {
			Self::requirement_of(&ledger.committed).unwrap_or_else(|_| Bounded::max_value())
		})
	}

	/// Stake of `who` a slash can take now: active plus unlocking.
	pub fn slashable(who: &T::AccountId) -> BalanceOf<T> {
		Ledgers::<T>::get(who).map_or_else(Zero::zero, |ledger| ledger.total())
	}

	/// The requirement for `committed` under the current [`Requirement`].
	fn requirement_of(committed: &Resources) -> Result<BalanceOf<T>, DispatchError> {
		Requirement::<T>::get().for_resources(committed).ok_or_else(|| Error::<T>::Overflow.into())
	}

	/// Stores `ledger` for `who`, or removes it when it is empty.
	fn store_ledger(who: &T::AccountId, ledger: StakeLedgerOf<T>) {
		if ledger.is_empty() {
			Ledgers::<T>::remove(who);
		} else {
			Ledgers::<T>::insert(who, ledger);
		}
	}

	pub(crate) fn do_bond(who: T::AccountId, value: BalanceOf<T>) -> DispatchResult {
		let mut ledger = match Ledgers::<T>::get(&who) {
			Some(ledger) => {
				// A stakeless ledger only tracks commitments: bonding fills it.
				ensure!(ledger.total().is_zero(), Error::<T>::AlreadyBonded);
				ledger
			}
			None => StakeLedger::new(Zero::zero()),
		};
		ensure!(!value.is_zero(), Error::<T>::ZeroAmount);
		ensure!(value >= T::MinBond::get(), Error::<T>::BondTooSmall);
		let total_stake = TotalStake::<T>::get().checked_add(&value).ok_or(Error::<T>::Overflow)?;

		T::Currency::hold(&HoldReason::Stake.into(), &who, value)
			.map_err(|_| Error::<T>::InsufficientBalance)?;
		ledger.active = value;
		Ledgers::<T>::insert(&who, ledger);
		TotalStake::<T>::put(total_stake);
		Self::deposit_event(Event::Bonded { who, amount: value });
		Ok(())
	}

	pub(crate) fn do_bond_extra(who: T::AccountId, value: BalanceOf<T>) -> DispatchResult {
		let mut ledger = Ledgers::<T>::get(&who).ok_or(Error::<T>::NotBonded)?;
		ensure!(!value.is_zero(), Error::<T>::ZeroAmount);
		let active = ledger.active.checked_add(&value).ok_or(Error::<T>::Overflow)?;
		ensure!(active >= T::MinBond::get(), Error::<T>::BondTooSmall);
		let total_stake = TotalStake::<T>::get().checked_add(&value).ok_or(Error::<T>::Overflow)?;

		T::Currency::hold(&HoldReason::Stake.into(), &who, value)
			.map_err(|_| Error::<T>::InsufficientBalance)?;
		ledger.active = active;
		Ledgers::<T>::insert(&who, ledger);
		TotalStake::<T>::put(total_stake);
		Self::deposit_event(Event::Bonded { who, amount: value });
		Ok(())
	}

	pub(crate) fn do_unbond(who: T::AccountId, value: BalanceOf<T>) -> DispatchResult {
		let mut ledger = Ledgers::<T>::get(&who).ok_or(Error::<T>::NotBonded)?;
		ensure!(!value.is_zero(), Error::<T>::ZeroAmount);
		let active = ledger.active.checked_sub(&value).ok_or(Error::<T>::InsufficientActive)?;
		ensure!(active.is_zero() || active >= T::MinBond::get(), Error::<T>::BelowMinBond);
		ensure!(active >= Self::requirement_of(&ledger.committed)?, Error::<T>::StakeCommitted);

		let unlock_at =
			frame_system::Pallet::<T>::block_number().saturating_add(T::UnbondingPeriod::get());
		// Chunks stay sorted even if the unbonding period was shortened meanwhile.
		match ledger.unlocking.binary_search_by_key(&unlock_at, |chunk| chunk.unlock_at) {
			Ok(index) => {
				let chunk = ledger.unlocking.get_mut(index).ok_or(Error::<T>::Overflow)?;
				chunk.value = chunk.value.checked_add(&value).ok_or(Error::<T>::Overflow)?;
			}
			Err(index) => ledger
				.unlocking
				.try_insert(index, UnlockChunk { value, unlock_at })
				.map_err(|_| Error::<T>::TooManyChunks)?,
		}
		ledger.active = active;
		Ledgers::<T>::insert(&who, ledger);
		Self::deposit_event(Event::Unbonded { who, amount: value, unlock_at });
		Ok(())
	}

	pub(crate) fn do_withdraw_unbonded(who: T::AccountId) -> DispatchResult {
		let mut ledger = Ledgers::<T>::get(&who).ok_or(Error::<T>::NotBonded)?;
		let now = frame_system::Pallet::<T>::block_number();
		let amount = ledger
			.unlocking
			.iter()
			.take_while(|chunk| chunk.unlock_at <= now)
			.fold(BalanceOf::<T>::zero(), |sum, chunk| sum.saturating_add(chunk.value));
		ensure!(!amount.is_zero(), Error::<T>::NothingToWithdraw);

		T::Currency::release(&HoldReason::Stake.into(), &who, amount, Precision::Exact)?;
		ledger.unlocking.retain(|chunk| chunk.unlock_at > now);
		Self::store_ledger(&who, ledger);
		TotalStake::<T>::mutate(|total| *total = total.saturating_sub(amount));
		Self::deposit_event(Event::Withdrawn { who, amount });
		Ok(())
	}

	pub(crate) fn do_rebond(who: T::AccountId, value: BalanceOf<T>) -> DispatchResult {
		let mut ledger = Ledgers::<T>::get(&who).ok_or(Error::<T>::NotBonded)?;
		ensure!(!value.is_zero(), Error::<T>::ZeroAmount);
		ensure!(value <= ledger.unlocking_total(), Error::<T>::InsufficientUnlocking);
		let active = ledger.active.checked_add(&value).ok_or(Error::<T>::Overflow)?;
		ensure!(active >= T::MinBond::get(), Error::<T>::BelowMinBond);

		take_newest_first(&mut ledger.unlocking, value);
		ledger.active = active;
		Ledgers::<T>::insert(&who, ledger);
		Self::deposit_event(Event::Rebonded { who, amount: value });
		Ok(())
	}

	/// Moves up to `amount` held as stake of `provider` to the free balance of `dest`, in its
	/// own storage layer so a failed transfer changes nothing. Returns what moved.
	fn pay_from_stake(
		provider: &T::AccountId,
		dest: &T::AccountId,
		amount: BalanceOf<T>,
	) -> BalanceOf<T> {
		if amount.is_zero() {
			return Zero::zero();
		}
		with_storage_layer(|| {
			T::Currency::transfer_on_hold(
				&HoldReason::Stake.into(),
				provider,
				dest,
				amount,
				Precision::BestEffort,
				Restriction::Free,
				Fortitude::Force,
			)
		})
		.unwrap_or_else(|error| {
			log::warn!(target: LOG_TARGET, "slashed stake could not be paid: {error:?}");
			Zero::zero()
		})
	}

	/// Checks the invariants listed in the crate docs.
	#[cfg(any(feature = "try-runtime", feature = "std", test))]
	pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
		let mut sum = BalanceOf::<T>::zero();
		for (who, ledger) in Ledgers::<T>::iter() {
			ensure!(!ledger.is_empty(), "an empty ledger is stored");
			let held = T::Currency::balance_on_hold(&HoldReason::Stake.into(), &who);
			ensure!(held == ledger.total(), "a provider's held stake differs from its ledger");
			ensure!(
				ledger.unlocking.iter().all(|chunk| !chunk.value.is_zero()),
				"a ledger has an empty unlocking chunk"
			);
			ensure!(
				ledger.unlocking.windows(2).all(|pair| pair[0].unlock_at < pair[1].unlock_at),
				"a ledger's unlocking chunks are not sorted by unlock block"
			);
			sum = sum.checked_add(&ledger.total()).ok_or("the ledgers' totals overflow")?;
		}
		ensure!(sum == TotalStake::<T>::get(), "TotalStake differs from the sum of the ledgers");
		Ok(())
	}
}

/// Takes `amount` from `chunks`, newest (last) first, dropping the chunks it empties. Takes less
/// if the chunks hold less.
fn take_newest_first<Balance, BlockNumber, S>(
	chunks: &mut BoundedVec<UnlockChunk<Balance, BlockNumber>, S>,
	amount: Balance,
) where
	Balance: Copy + PartialOrd + Saturating + Zero,
{
	let mut left = amount;
	for chunk in chunks.iter_mut().rev() {
		if left.is_zero() {
			break;
		}
		let taken = if chunk.value < left { chunk.value } else { left };
		chunk.value = chunk.value.saturating_sub(taken);
		left = left.saturating_sub(taken);
	}
	chunks.retain(|chunk| !chunk.value.is_zero());
}

impl<T: Config> StakeCollateral<T::AccountId> for Pallet<T> {
	/// Commits `resources` if the provider's active stake covers the requirement for all its
	/// committed capacity; fails with `Overflow` or `InsufficientStake`, changing nothing. A
	/// provider without a ledger can commit only while the requirement for it is zero; a
	/// stakeless ledger then tracks the commitment.
	fn commit(provider: &T::AccountId, resources: &Resources) -> DispatchResult {
		let mut ledger =
			Ledgers::<T>::get(provider).unwrap_or_else(|| StakeLedger::new(Zero::zero()));
		let committed = ledger.committed.checked_add(resources).ok_or(Error::<T>::Overflow)?;
		ensure!(ledger.active >= Self::requirement_of(&committed)?, Error::<T>::InsufficientStake);
		ledger.committed = committed;
		Self::store_ledger(provider, ledger);
		Ok(())
	}

	/// Releases `resources` of the provider's committed capacity (saturating).
	fn release(provider: &T::AccountId, resources: &Resources) {
		let Some(mut ledger) = Ledgers::<T>::get(provider) else {
			defensive_assert!(resources.is_zero(), "released capacity that was never committed");
			return;
		};
		defensive_assert!(
			resources.fits_in(&ledger.committed),
			"released more capacity than was committed"
		);
		ledger.committed = ledger.committed.saturating_sub(resources);
		Self::store_ledger(provider, ledger);
	}
}

impl<T: Config> StakeSlasher<T::AccountId, BalanceOf<T>> for Pallet<T> {
	/// Takes up to `amount` of the provider's stake, active first, then unlocking chunks newest
	/// first. Up to `compensation` of it goes to `victim` (unless the victim is the provider),
	/// the rest to [`Config::TreasuryAccount`]; see the crate docs for failed payments. Emits
	/// `Slashed` when anything was taken. Never fails.
	fn slash(
		provider: &T::AccountId,
		amount: BalanceOf<T>,
		victim: &T::AccountId,
		compensation: BalanceOf<T>,
	) -> SlashOutcome<BalanceOf<T>> {
		let Some(mut ledger) = Ledgers::<T>::get(provider) else {
			return SlashOutcome::default();
		};
		let held = T::Currency::balance_on_hold(&HoldReason::Stake.into(), provider);
		let take = amount.min(ledger.total()).min(held);
		if take.is_zero() {
			return SlashOutcome::default();
		}
		let owed = if victim == provider { Zero::zero() } else { take.min(compensation) };
		let compensated = Self::pay_from_stake(provider, victim, owed);
		let treasury = T::TreasuryAccount::get();
		let to_treasury =
			Self::pay_from_stake(provider, &treasury, take.saturating_sub(compensated));
		let slashed = compensated.saturating_add(to_treasury);
		if slashed.is_zero() {
			return SlashOutcome::default();
		}

		// Shrink the ledger by exactly what left the hold: active first, then newest chunks.
		let from_active = slashed.min(ledger.active);
		ledger.active = ledger.active.saturating_sub(from_active);
		take_newest_first(&mut ledger.unlocking, slashed.saturating_sub(from_active));
		Self::store_ledger(provider, ledger);
		TotalStake::<T>::mutate(|total| *total = total.saturating_sub(slashed));
		Self::deposit_event(Event::Slashed {
			provider: provider.clone(),
			amount: slashed,
			compensated,
			victim: victim.clone(),
			to_treasury,
		});
		SlashOutcome { slashed, compensated, to_treasury }
	}
}
