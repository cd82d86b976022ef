//! # Market pallet
//!
//! Deployments (deals) between publishers and providers: escrow, billing and settlement.
//!
//! ## Overview
//!
//! A publisher creates a deployment on a provider, naming the manifest hash, the resources,
//! the billing mode, its limits (highest prices, most egress per second) and a deposit. The
//! provider's current quote is locked into the deal, if it is within the limits, and the
//! deposit moves into the market's escrow account ([`Pallet::escrow_account`]); it must cover
//! the reserved resources for [`Config::MinPrepaidSeconds`]. The provider accepts (its
//! capacity is reserved in the registry) or rejects.
//!
//! Billing moves escrow to the provider, minus a Root-set protocol fee that goes to the
//! treasury:
//! - **Metered**: the provider reports measured usage in batches (`report_usage`). Periods
//!   must be contiguous and lie in the deal's billable time; usage is capped at the reserved
//!   resources and the deal's egress limit over the period, so a provider cannot drain a
//!   publisher.
//! - **Reserved**: price x reserved resources x elapsed time. The block at which the escrow
//!   runs out is known in advance and queued, so the deal goes out of funds exactly there
//!   with nobody touching it; `settle` (anyone) bills up to now.
//!
//! When the escrow runs out the deal enters a grace period. Cost the escrow cannot cover (the
//! grace period, usage reported in it) becomes the deal's **debt**: a top-up must pay it and
//! prepay [`Config::MinPrepaidSeconds`] again to bring the deal back; a deal that ends owing
//! pays from what is still held for it (escrow, name deposit) and the rest is written off in
//! the open (`DebtWrittenOff`, [`UnpaidDebts`]).
//!
//! A publisher may also **rent** a provider whole (`create_rent`): the provider's whole
//! capacity at its rent discount, billed like a reserved deployment. While the rent is open
//! nobody else can place deals on the provider; the renter's own deployments there run inside
//! the rent's capacity and pay only for egress, and end when the rent ends.
//!
//! ## Design
//!
//! Nothing iterates over deals in a hook: the per-block cost is the same with a million
//! active deals. The only timed work (escrow exhaustion, grace and settlement deadlines) goes
//! through [`Expiries`], a paged per-block queue the hook works through at most
//! [`Config::MaxExpiriesPerBlock`] entries at a time; no deadline is dropped, and one handled
//! late applies at the block it fell. Every call that touches a deal applies its passed
//! deadlines first.
//!
//! Escrow is one account's balance rather than holds on each publisher, so a batch of usage
//! reports pays its provider and the treasury once.
//!
//! ## Invariants (checked by `try_state`)
//!
//! - The escrow account holds at least the existential deposit plus the escrow of every open
//!   deal (exactly that, unless a payout had no account able to take it).
//! - Only deals out of funds or closing owe debt; every deal with a deadline is queued, and
//!   no queued page is behind the hook's cursor.
//! - [`OpenDeals`] of a provider equals the number of its deployments, and
//!   [`ProviderDeployments`] and [`PublisherDeployments`] list exactly the open deals.
//! - Every deployment's id is below [`NextDeploymentId`].
//! - [`Rents`] maps each rented provider to its accepted rent and nothing else; a rent lists exactly the
//!   deployments inside it, and its capacity in use is the sum of their running resources,
//!   within the rent's resources.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

pub mod types;
pub mod weights;

mod billing;
mod escrow;
mod expiry;
mod lifecycle;
mod rent;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

pub use podchain_primitives::{
	CapacityLedger, ProviderCatalog, ProviderDeals, SlaTracker, StakeCollateral,
};
pub use types::*;
pub use weights::WeightInfo;

use frame_support::traits::fungible;

/// Balance type of the currency escrow is held in.
pub type BalanceOf<T> =
	<<T as Config>::Currency as fungible::Inspect<<T as frame_system::Config>::AccountId>>::Balance;

/// A deployment as stored for runtime `T`.
pub type DeploymentOf<T> = Deployment<
	<T as frame_system::Config>::AccountId,
	BalanceOf<T>,
	frame_system::pallet_prelude::BlockNumberFor<T>,
>;

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use frame_support::{
		pallet_prelude::*,
		storage::with_storage_layer,
		traits::fungible::{Inspect, Mutate, MutateHold},
		PalletId,
	};
	use frame_system::pallet_prelude::*;
	use sp_runtime::{
		traits::{Saturating, Zero},
		Perbill,
	};

	/// Version 2: escrow sits in the pallet's escrow account instead of publisher holds;
	/// deals carry debt and an egress limit; the deadline queue is paged.
	const STORAGE_VERSION: StorageVersion = StorageVersion::new(2);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	#[pallet::config]
	pub trait Config: frame_system::Config {
		/// Currency escrow is held in.
		type Currency: Inspect<Self::AccountId>
			+ Mutate<Self::AccountId>
			+ MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>;

		/// The overarching hold reason.
		type RuntimeHoldReason: From<HoldReason>;

		/// The registry: providers' current quotes.
		type Providers: ProviderCatalog<Self::AccountId, BalanceOf<Self>>;

		/// The registry: capacity reserved by accepted deals.
		type Capacity: CapacityLedger<Self::AccountId>;

		/// Provider staking: the stake a provider needs for the capacity it commits.
		type Collateral: StakeCollateral<Self::AccountId>;

		/// The SLA pallet: which terms a provider offers; measures running deals' terms.
		type Sla: SlaTracker<Self::AccountId, BalanceOf<Self>>;

		/// Milliseconds per block, to turn blocks into billed seconds.
		type BlockDurationMillis: Get<u64>;

		/// Blocks a provider has to accept a deployment before its publisher may cancel it.
		#[pallet::constant]
		type AcceptanceTimeout: Get<BlockNumberFor<Self>>;

		/// Blocks an out-of-funds deployment waits for a top-up before it closes.
		#[pallet::constant]
		type GracePeriod: Get<BlockNumberFor<Self>>;

		/// Blocks a provider has, after the publisher closes a metered deployment, to report
		/// the last usage.
		#[pallet::constant]
		type SettlementWindow: Get<BlockNumberFor<Self>>;

		/// Smallest deposit a deployment can be created with, whatever it costs.
		#[pallet::constant]
		type MinDeposit: Get<BalanceOf<Self>>;

		/// Seconds of a deal's reserved resources its escrow must cover at creation, and
		/// after its debt when it comes back from running out of funds.
		#[pallet::constant]
		type MinPrepaidSeconds: Get<u64>;

		/// Id of the account holding every deal's escrow.
		#[pallet::constant]
		type PalletId: Get<PalletId>;

		/// Deposit held for a name bound to a deployment.
		#[pallet::constant]
		type NameDeposit: Get<BalanceOf<Self>>;

		/// Highest egress limit, in bytes per second, a deal may be created with.
		#[pallet::constant]
		type MaxEgressBytesPerSecond: Get<u64>;

		/// Most reports in one `report_usage` call.
		#[pallet::constant]
		type MaxReportsPerCall: Get<u32>;

		/// Most deadlines processed in one block, and the size of a page of the queue.
		#[pallet::constant]
		type MaxExpiriesPerBlock: Get<u32>;

		/// Account the protocol fee goes to.
		type TreasuryAccount: Get<Self::AccountId>;

		/// Origin that sets the protocol fee.
		type FeeOrigin: EnsureOrigin<Self::RuntimeOrigin>;

		/// Weights of this pallet's calls and hook.
		type WeightInfo: WeightInfo;

		/// Sets up providers for the benchmarks.
		#[cfg(feature = "runtime-benchmarks")]
		type BenchmarkHelper: BenchmarkHelper<Self::AccountId>;
	}

	/// Reasons the market holds funds. (Escrow is not held: it sits in the escrow account.)
	#[pallet::composite_enum]
	pub enum HoldReason {
		/// Deposit for a name bound to a deployment.
		#[codec(index = 1)]
		NameDeposit,
	}

	/// Id the next deployment gets.
	#[pallet::storage]
	pub type NextDeploymentId<T> = StorageValue<_, DeploymentId, ValueQuery>;

	/// Open deployments (pending, active, out of funds or closing) by id.
	#[pallet::storage]
	pub type Deployments<T: Config> =
		StorageMap<_, Twox64Concat, DeploymentId, DeploymentOf<T>, OptionQuery>;

	/// Open deals of each provider: what its agent reads on start, without scanning all deals.
	#[pallet::storage]
	pub type ProviderDeployments<T: Config> = StorageDoubleMap<
		_,
		Blake2_128Concat,
		T::AccountId,
		Twox64Concat,
		DeploymentId,
		(),
		OptionQuery,
	>;

	/// Open deals of each publisher: what its wallet or CLI lists.
	#[pallet::storage]
	pub type PublisherDeployments<T: Config> = StorageDoubleMap<
		_,
		Blake2_128Concat,
		T::AccountId,
		Twox64Concat,
		DeploymentId,
		(),
		OptionQuery,
	>;

	/// Number of open deployments per provider.
	#[pallet::storage]
	pub type OpenDeals<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, u32, ValueQuery>;

	/// Share of every payment that goes to the treasury.
	#[pallet::storage]
	pub type ProtocolFee<T> = StorageValue<_, Perbill, ValueQuery>;

	/// Deals with a deadline at a block (escrow running out, grace end, settlement end), in
	/// pages of at most [`Config::MaxExpiriesPerBlock`].
	#[pallet::storage]
	pub type Expiries<T: Config> = StorageDoubleMap<
		_,
		Twox64Concat,
		BlockNumberFor<T>,
		Twox64Concat,
		u32,
		BoundedVec<DeploymentId, T::MaxExpiriesPerBlock>,
		ValueQuery,
	>;

	/// Number of pages of [`Expiries`] at a block.
	#[pallet::storage]
	pub type ExpiryPages<T: Config> =
		StorageMap<_, Twox64Concat, BlockNumberFor<T>, u32, ValueQuery>;

	/// The next page of [`Expiries`] the hook handles: (block, page).
	#[pallet::storage]
	pub type ExpiryCursor<T: Config> = StorageValue<_, (BlockNumberFor<T>, u32), OptionQuery>;

	/// Debt each publisher's deals left unpaid when they ended: its standing.
	#[pallet::storage]
	pub type UnpaidDebts<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, UnpaidRecord<BalanceOf<T>>, ValueQuery>;

	/// Funds the escrow account with the existential deposit, which never leaves it.
	#[pallet::genesis_config]
	#[derive(frame_support::DefaultNoBound)]
	pub struct GenesisConfig<T: Config> {
		#[serde(skip)]
		pub _config: core::marker::PhantomData<T>,
	}

	#[pallet::genesis_build]
	impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
		fn build(&self) {
			let account = Pallet::<T>::escrow_account();
			if T::Currency::balance(&account).is_zero() {
				let minted = T::Currency::mint_into(&account, T::Currency::minimum_balance());
				assert!(minted.is_ok(), "the escrow account is funded at genesis");
			}
		}
	}

	/// The accepted rent of each rented provider (a pending rent does not lock the provider).
	#[pallet::storage]
	pub type Rents<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, DeploymentId, OptionQuery>;

	/// Deployment bound to each registered name.
	#[pallet::storage]
	pub type Names<T: Config> =
		StorageMap<_, Blake2_128Concat, DnsLabel, DeploymentId, OptionQuery>;

	/// Name of a deployment, with the deposit held for it.
	#[pallet::storage]
	pub type DeploymentNames<T: Config> =
		StorageMap<_, Twox64Concat, DeploymentId, (DnsLabel, BalanceOf<T>), OptionQuery>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A publisher created a deployment; `deposit` went into escrow.
		DeploymentCreated {
			id: DeploymentId,
			publisher: T::AccountId,
			provider: T::AccountId,
			deposit: BalanceOf<T>,
		},
		/// A publisher asked to rent a provider whole; `deposit` went into escrow. Once the
		/// provider accepts, `resources` (its whole capacity) are the renter's.
		RentCreated {
			id: DeploymentId,
			renter: T::AccountId,
			provider: T::AccountId,
			resources: Resources,
			deposit: BalanceOf<T>,
		},
		/// The provider accepted; billing starts.
		DeploymentAccepted { id: DeploymentId },
		/// The publisher added funds to the escrow.
		ToppedUp { id: DeploymentId, amount: BalanceOf<T> },
		/// The publisher asked for a new manifest.
		ManifestUpdateRequested { id: DeploymentId, manifest_hash: ManifestHash },
		/// The provider runs the new manifest.
		ManifestAcknowledged { id: DeploymentId, manifest_hash: ManifestHash },
		/// An itemised bill: what a period cost, per resource, in all `total`. The escrow paid
		/// `total - unpaid` (`fee` of it to the treasury, the rest to the provider); `unpaid`
		/// became the deal's debt.
		Settled {
			id: DeploymentId,
			period_start: BlockNumberFor<T>,
			period_end: BlockNumberFor<T>,
			charges: Charges<BalanceOf<T>>,
			total: BalanceOf<T>,
			fee: BalanceOf<T>,
			unpaid: BalanceOf<T>,
		},
		/// `amount` of a deal's debt was paid (`fee` of it to the treasury, the rest to the
		/// provider).
		DebtPaid { id: DeploymentId, amount: BalanceOf<T>, fee: BalanceOf<T> },
		/// A deal ended owing `amount` that nothing held for it could pay; it counts in the
		/// publisher's [`UnpaidDebts`].
		DebtWrittenOff { id: DeploymentId, publisher: T::AccountId, amount: BalanceOf<T> },
		/// A usage report was refused; the others in its batch settled.
		UsageReportRejected { id: DeploymentId, error: DispatchError },
		/// The escrow ran out at block `since`; the deployment closes at `grace_ends` unless
		/// topped up. The grace period is owed (as debt).
		OutOfFunds { id: DeploymentId, since: BlockNumberFor<T>, grace_ends: BlockNumberFor<T> },
		/// A top-up brought an out-of-funds deployment back.
		Restored { id: DeploymentId },
		/// The publisher closed a metered deployment; the provider may report its last usage
		/// until `settle_by`.
		Closing { id: DeploymentId, settle_by: BlockNumberFor<T> },
		/// A deployment ended; `refunded` went back to the publisher.
		DeploymentClosed { id: DeploymentId, reason: CloseReason, refunded: BalanceOf<T> },
		/// Root set the protocol fee.
		ProtocolFeeSet { fee: Perbill },
		/// A name now points to a deployment; the agent serves it as the deployment's host.
		NameRegistered { id: DeploymentId, name: DnsLabel },
		/// A name was released (by its publisher, or when its deployment closed).
		NameReleased { id: DeploymentId, name: DnsLabel },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// No open deployment has this id.
		UnknownDeployment,
		/// Only the deployment's publisher may do this.
		NotPublisher,
		/// Only the deployment's provider may do this.
		NotProvider,
		/// The provider is not registered or takes no new deals.
		ProviderUnavailable,
		/// A deployment must reserve some CPU, memory or storage.
		ZeroResources,
		/// The deposit is below [`Config::MinDeposit`] or does not cover the reserved resources
		/// for [`Config::MinPrepaidSeconds`].
		DepositTooLow,
		/// The publisher cannot cover the deposit or top-up.
		InsufficientBalance,
		/// The deployment is not waiting for acceptance.
		NotPending,
		/// The deployment is not running.
		NotActive,
		/// The provider still has time to accept.
		AcceptanceNotTimedOut,
		/// This close reason is not the caller's to give, or not in this state.
		InvalidCloseReason,
		/// No manifest update waits for acknowledgement, or it has another hash.
		ManifestMismatch,
		/// The new manifest is the one running.
		SameManifest,
		/// Usage reports are for metered deployments.
		NotMetered,
		/// The period does not start where the last settled one ended.
		PeriodNotContiguous,
		/// The period is empty, reversed, or reaches past the deployment's active time.
		InvalidPeriod,
		/// The usage exceeds the reserved resources over the period.
		UsageAboveReserved,
		/// Pricing the usage overflows.
		ChargeOverflow,
		/// A top-up must add something.
		ZeroTopUp,
		/// The name is not a lower-case RFC 1123 DNS label of 1 to 63 characters.
		InvalidName,
		/// The name belongs to another deployment.
		NameTaken,
		/// The deployment has a name already.
		AlreadyNamed,
		/// The deployment has no name.
		NotNamed,
		/// A provider can only be rented while it has no deals.
		ProviderBusy,
		/// Another publisher rents this provider.
		ProviderRented,
		/// The rent is not running yet (or any more): deployments cannot be placed in it.
		RentNotActive,
		/// The rent holds [`MAX_DEPLOYMENTS_PER_RENT`] deployments already.
		RentFull,
		/// The rent's capacity left cannot hold these resources.
		InsufficientRentCapacity,
		/// A rent runs no manifest and has no name: this is for deployments.
		NotADeployment,
		/// Deployments in a rent pay only for egress, which is measured: they must be metered.
		MeteredOnlyInRent,
		/// The provider does not offer these SLA terms (see the SLA pallet's `offer_terms`).
		SlaNotOffered,
		/// The deal owes debt or is out of funds: a top-up must pay the debt and prepay
		/// [`Config::MinPrepaidSeconds`] of its resources.
		TopUpBelowDebt,
		/// The provider's price for a unit the deal pays for is above the publisher's limit.
		PriceAboveLimit,
		/// The egress limit is above what the chain allows a deal
		/// ([`Config::MaxEgressBytesPerSecond`]).
		EgressLimitTooHigh,
		/// The SLA terms' health check cannot be requested: its path must start with `/` and
		/// be visible ASCII, its status be 100 to 599, its expected body visible ASCII.
		InvalidHealthCheck,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		/// Applies the deadlines due by this block (escrow running out, grace ends, settlement
		/// ends); at most [`Config::MaxExpiriesPerBlock`], never a scan.
		fn on_initialize(now: BlockNumberFor<T>) -> Weight {
			let work = Self::process_expiries(now);
			let mut weight = T::WeightInfo::on_initialize(work.entries);
			if work.ended_in_rents > 0 {
				weight.saturating_accrue(T::WeightInfo::close_rent(work.ended_in_rents));
			}
			weight
		}

		fn integrity_test() {
			assert!(T::BlockDurationMillis::get() > 0, "BlockDurationMillis must be positive");
			assert!(T::MaxReportsPerCall::get() > 0, "MaxReportsPerCall must be positive");
			assert!(T::MaxExpiriesPerBlock::get() > 0, "MaxExpiriesPerBlock must be positive");
			// A deadline must fall in a later block, whose hook has not run yet.
			assert!(!T::GracePeriod::get().is_zero(), "GracePeriod must be positive");
			assert!(!T::SettlementWindow::get().is_zero(), "SettlementWindow must be positive");
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Create a deployment on `provider`, locking in its current prices and moving
		/// `deposit` from the caller into escrow. On a provider the caller rents, the
		/// deployment runs inside the rent and pays only for egress.
		///
		/// `limits` bound what the caller agrees to: the call fails if the provider's price for
		/// any unit the deal pays for is above `limits.max_prices` when it executes, and reports
		/// may bill at most `limits.max_egress_bytes_per_second` of egress. The deposit must
		/// cover [`Config::MinDeposit`] and the resources for [`Config::MinPrepaidSeconds`].
		///
		/// Emits `DeploymentCreated`. Fails with `ProviderUnavailable`, `ProviderRented`,
		/// `RentNotActive`, `MeteredOnlyInRent`, `RentFull`, `InsufficientRentCapacity`,
		/// `InvalidHealthCheck`, `SlaNotOffered`, `ZeroResources`, `PriceAboveLimit`,
		/// `EgressLimitTooHigh`, `DepositTooLow` or `InsufficientBalance`.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::create_deployment())]
		pub fn create_deployment(
			origin: OriginFor<T>,
			provider: T::AccountId,
			manifest_hash: ManifestHash,
			resources: Resources,
			billing: BillingMode,
			sla: Option<SlaTerms<BalanceOf<T>>>,
			limits: DealLimits<BalanceOf<T>>,
			deposit: BalanceOf<T>,
		) -> DispatchResult {
			let publisher = ensure_signed(origin)?;
			let request = lifecycle::DealRequest {
				provider,
				manifest_hash,
				resources,
				billing,
				sla,
				limits,
				deposit,
			};
			Self::do_create(publisher, request)
		}

		/// Accept a pending deployment (its provider): reserves the capacity, commits stake for
		/// it, starts billing and, with SLA terms, the SLA's measurement windows.
		///
		/// Emits `DeploymentAccepted`. Fails with `NotProvider`, `NotPending`, the registry's
		/// `InsufficientCapacity`, provider staking's `InsufficientStake`,
		/// `InsufficientRentCapacity` inside a rent, `ProviderBusy` for a rent of a provider
		/// that took other deals meanwhile, or the SLA pallet's `TooManySlaDeals`.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::accept_deployment())]
		pub fn accept_deployment(origin: OriginFor<T>, id: DeploymentId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_accept(who, id)
		}

		/// Reject a pending deployment (its provider): the publisher gets the whole escrow back.
		///
		/// Emits `DeploymentClosed` with reason `Rejected`. Fails with `NotProvider` or
		/// `NotPending`.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::close_deployment())]
		pub fn reject_deployment(origin: OriginFor<T>, id: DeploymentId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_reject(who, id)
		}

		/// Cancel a deployment the provider did not accept within
		/// [`Config::AcceptanceTimeout`] (its publisher): full refund.
		///
		/// Emits `DeploymentClosed` with reason `AcceptanceTimeout`. Fails with `NotPublisher`,
		/// `NotPending` or `AcceptanceNotTimedOut`.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::close_deployment())]
		pub fn cancel_deployment(origin: OriginFor<T>, id: DeploymentId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_cancel(who, id)
		}

		/// Add `amount` to the escrow (its publisher). Settles reserved billing first. A deal
		/// out of funds, or owing debt, comes back only if `amount` pays the debt and prepays
		/// [`Config::MinPrepaidSeconds`] of its resources; then its debt is paid first.
		///
		/// Emits `ToppedUp` (and `DebtPaid`, `Restored`). Fails with `NotPublisher`,
		/// `ZeroTopUp`, `NotActive`, `TopUpBelowDebt` or `InsufficientBalance`.
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::top_up())]
		pub fn top_up(
			origin: OriginFor<T>,
			id: DeploymentId,
			amount: BalanceOf<T>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			// A refused top-up leaves no trace of the deadlines it applied on the way.
			with_storage_layer(|| Self::do_top_up(who, id, amount))
		}

		/// Ask the provider to run a new manifest (its publisher). Takes effect when the
		/// provider acknowledges it.
		///
		/// Emits `ManifestUpdateRequested`. Fails with `NotPublisher` or `SameManifest`.
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::update_manifest())]
		pub fn update_manifest(
			origin: OriginFor<T>,
			id: DeploymentId,
			manifest_hash: ManifestHash,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_update_manifest(who, id, manifest_hash)
		}

		/// Acknowledge the manifest update the publisher asked for (its provider).
		///
		/// Emits `ManifestAcknowledged`. Fails with `NotProvider` or `ManifestMismatch`.
		#[pallet::call_index(6)]
		#[pallet::weight(T::WeightInfo::update_manifest())]
		pub fn acknowledge_manifest(
			origin: OriginFor<T>,
			id: DeploymentId,
			manifest_hash: ManifestHash,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_acknowledge_manifest(who, id, manifest_hash)
		}

		/// Close a running deployment. The publisher closes with `PublisherRequest`; the
		/// provider with `PublisherRequest`, `ManifestTimeout`, `ProviderDecommission`, `Sla`,
		/// or `OutOfFunds` (only once the escrow ran out). What is owed is settled (debt paid
		/// from what is held for the deal, the rest written off), the capacity released and the
		/// rest refunded. A metered deployment closed by its publisher first waits
		/// [`Config::SettlementWindow`] for the provider's last report, unless its usage is
		/// reported up to now.
		///
		/// Closing a rent ends the deployments inside it (`RentEnded`).
		///
		/// Emits `DeploymentClosed` or `Closing`. Fails with `NotPublisher`/`NotProvider`,
		/// `NotActive` or `InvalidCloseReason`.
		#[pallet::call_index(7)]
		#[pallet::weight(Pallet::<T>::weight_ending_a_rent(T::WeightInfo::close_deployment()))]
		pub fn close_deployment(
			origin: OriginFor<T>,
			id: DeploymentId,
			reason: CloseReason,
		) -> DispatchResultWithPostInfo {
			let who = ensure_signed(origin)?;
			let ended = with_storage_layer(|| Self::do_close_call(who, id, reason))?;
			Ok(Some(Self::actual_weight(T::WeightInfo::close_deployment(), ended)).into())
		}

		/// Report measured usage of metered deployments (their provider). Each report is
		/// checked alone: a bad one is refused with `UsageReportRejected` and the others settle.
		/// Usage is capped at the reserved resources and the deal's egress limit over the
		/// period; what the escrow cannot pay becomes the deal's debt. The provider is paid once
		/// for the whole batch.
		///
		/// Emits `Settled` per accepted report.
		#[pallet::call_index(8)]
		#[pallet::weight(Pallet::<T>::weight_of_reports(reports.len() as u32))]
		pub fn report_usage(
			origin: OriginFor<T>,
			reports: BoundedVec<UsageReport<BlockNumberFor<T>>, T::MaxReportsPerCall>,
		) -> DispatchResultWithPostInfo {
			let who = ensure_signed(origin)?;
			let count = reports.len() as u32;
			let now = frame_system::Pallet::<T>::block_number();
			let mut payout = escrow::Payout::new();
			let mut changed = 0u32;
			for report in reports {
				match Self::apply_report(&who, &report, now, &mut payout) {
					Ok(billing::Reported::Changed) => changed.saturating_inc(),
					Ok(billing::Reported::Billed) => {}
					Err(error) => Self::deposit_event(Event::UsageReportRejected {
						id: report.deployment,
						error,
					}),
				}
			}
			payout.pay();
			let billed_only = count.saturating_sub(changed);
			Ok(Some(Self::report_usage_weight(billed_only, changed)).into())
		}

		/// Settle a deployment now (anyone): bills reserved time (as debt once out of funds),
		/// and applies any deadline that fell: escrow running out, grace period or settlement
		/// window ended. The deadline queue does this on its own; this is for impatience.
		///
		/// Emits `Settled`, `OutOfFunds` or `DeploymentClosed` as they happen. Fails with
		/// `UnknownDeployment`.
		#[pallet::call_index(9)]
		#[pallet::weight(Pallet::<T>::weight_ending_a_rent(T::WeightInfo::settle()))]
		pub fn settle(origin: OriginFor<T>, id: DeploymentId) -> DispatchResultWithPostInfo {
			ensure_signed(origin)?;
			let ended = with_storage_layer(|| Self::do_settle(id))?;
			Ok(Some(Self::actual_weight(T::WeightInfo::settle(), ended)).into())
		}

		/// Bind a unique DNS label to a deployment (its publisher), holding
		/// [`Config::NameDeposit`]. Released when the deployment closes.
		///
		/// Emits `NameRegistered`. Fails with `NotPublisher`, `NotActive`, `InvalidName`,
		/// `NameTaken`, `AlreadyNamed` or `InsufficientBalance`.
		#[pallet::call_index(11)]
		#[pallet::weight(T::WeightInfo::register_name())]
		pub fn register_name(
			origin: OriginFor<T>,
			id: DeploymentId,
			name: NameInput,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_register_name(who, id, name)
		}

		/// Release a deployment's name (its publisher) and its deposit, while the deployment
		/// runs funded (once out of funds, the deposit is kept towards its debt).
		///
		/// Emits `NameReleased`. Fails with `NotPublisher`, `NotNamed` or `NotActive`.
		#[pallet::call_index(12)]
		#[pallet::weight(T::WeightInfo::release_name())]
		pub fn release_name(origin: OriginFor<T>, id: DeploymentId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let deal = Deployments::<T>::get(id).ok_or(Error::<T>::UnknownDeployment)?;
			ensure!(deal.publisher == who, Error::<T>::NotPublisher);
			ensure!(DeploymentNames::<T>::contains_key(id), Error::<T>::NotNamed);
			// Once the escrow has run out the deposit may have to pay the deal's debt.
			ensure!(
				matches!(
					deal.state,
					DeploymentState::Pending { .. } | DeploymentState::Active { .. }
				) && deal.debt.is_zero(),
				Error::<T>::NotActive
			);
			Self::release_name_of(id, &deal.publisher);
			Ok(())
		}

		/// Rent `provider` whole (it must have no deals): its whole capacity at its rent
		/// discount, billed like a reserved deployment from the provider's acceptance, with
		/// `deposit` moved from the caller into escrow. `limits` work as for
		/// `create_deployment`, and so does the minimum deposit. Once the provider accepts (it must still have
		/// no other deal) nobody else can place deals on it; the caller's metered deployments
		/// there run inside the rent and pay only for egress. Top-ups, `settle` and closing work
		/// as for deployments.
		///
		/// Emits `RentCreated`. Fails with `ProviderUnavailable`, `ProviderBusy`,
		/// `ZeroResources`, `PriceAboveLimit`, `EgressLimitTooHigh`, `DepositTooLow` or
		/// `InsufficientBalance`.
		#[pallet::call_index(13)]
		#[pallet::weight(T::WeightInfo::create_rent())]
		pub fn create_rent(
			origin: OriginFor<T>,
			provider: T::AccountId,
			limits: DealLimits<BalanceOf<T>>,
			deposit: BalanceOf<T>,
		) -> DispatchResult {
			let renter = ensure_signed(origin)?;
			Self::do_create_rent(renter, provider, limits, deposit)
		}

		/// Set the share of every payment that goes to the treasury ([`Config::FeeOrigin`]).
		///
		/// Emits `ProtocolFeeSet`.
		#[pallet::call_index(10)]
		#[pallet::weight(T::WeightInfo::set_protocol_fee())]
		pub fn set_protocol_fee(origin: OriginFor<T>, fee: Perbill) -> DispatchResult {
			T::FeeOrigin::ensure_origin(origin)?;
			ProtocolFee::<T>::put(fee);
			Self::deposit_event(Event::ProtocolFeeSet { fee });
			Ok(())
		}
	}
}

/// What the benchmarks need from the runtime: a registered provider with room for many deals.
#[cfg(feature = "runtime-benchmarks")]
pub trait BenchmarkHelper<AccountId> {
	/// Registers `who`, already funded, as a provider with ample capacity.
	fn register_provider(who: &AccountId);
	/// The most deals with SLA terms one provider may run (the SLA side refuses more).
	fn max_sla_deals_per_provider() -> u32 {
		u32::MAX
	}
	/// The shortest SLA measurement window a benchmark provider offers: the most windows end,
	/// and are settled, by the time a deal does.
	fn shortest_sla_window() -> u32 {
		600
	}
}

/// What the SLA pallet reads of a deal: its name (the host probers ask the provider's gateway
/// for) and what its publisher has paid.
impl<T: Config> podchain_primitives::SlaDealInfo<BalanceOf<T>> for Pallet<T> {
	fn name(id: DeploymentId) -> Option<alloc::vec::Vec<u8>> {
		DeploymentNames::<T>::get(id).map(|(name, _)| name.into_inner())
	}

	fn paid(id: DeploymentId) -> BalanceOf<T> {
		let now = frame_system::Pallet::<T>::block_number();
		Deployments::<T>::get(id)
			.map_or_else(sp_runtime::traits::Zero::zero, |deal| Self::paid_for(&deal, now))
	}
}

impl<T: Config> ProviderDeals<T::AccountId> for Pallet<T> {
	fn open_deals(provider: &T::AccountId) -> u32 {
		OpenDeals::<T>::get(provider)
	}

	fn is_rented(provider: &T::AccountId) -> bool {
		Rents::<T>::contains_key(provider)
	}
}
