//! # Provider registry pallet
//!
//! Compute providers register what they sell so publishers can find them.
//!
//! ## Overview
//!
//! A provider registers its **capacity** (CPU millicores, memory MiB, storage GiB, GPUs and GPU
//! model), its **prices** per resource unit and second (the quote a deal locks in), its
//! **region** (ISO 3166-1 country, optional coarse location), the **libp2p endpoint** of its
//! agent (where publishers send encrypted manifests), an HTTP **health URL** (probed for SLAs)
//! and, when its cluster runs in a TEE, **attestation evidence** (TEE type and measurement).
//! Registration holds a deposit from the provider (anti-spam), returned on deregistration.
//!
//! ## Terms
//!
//! - *Free capacity*: capacity minus what accepted deals reserve (through [`CapacityLedger`]).
//! - *Attested*: the provider's measurement is on the Root-managed allowlist. Attestation is
//!   judged when read, so revoking a measurement unattests every provider using it at once.
//! - *Quote*: the provider's prices; a deal created now locks them in.
//!
//! ## Usage
//!
//! Providers call `register_provider`, `update_provider`, `pause_provider`, `resume_provider`
//! and `deregister_provider`. Root calls `allow_measurement` and `revoke_measurement`.
//! Publishers find providers through the runtime API `RegistryApi::match_providers`, which ranks
//! the providers that can host a workload by price.
//!
//! ## Invariants (checked by `try_state`)
//!
//! - [`ProviderCount`] equals the number of entries in [`Providers`] and is at most
//!   [`Config::MaxProviders`].
//! - Every provider's reserved capacity fits in its capacity.
//! - Every provider's deposit is exactly what is held from it under
//!   [`HoldReason::ProviderDeposit`].

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

pub mod types;
pub mod validation;
pub mod weights;

mod impls;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

pub use podchain_primitives::{
	CapacityLedger, ProbeTargets, ProviderDeals, ProviderStanding, Resources,
};
pub use types::*;
pub use weights::WeightInfo;

use frame_support::traits::fungible;

/// Balance type of the currency the registry holds deposits in.
pub type BalanceOf<T> =
	<<T as Config>::Currency as fungible::Inspect<<T as frame_system::Config>::AccountId>>::Balance;

/// A provider record as stored for runtime `T`.
pub type ProviderInfoOf<T> =
	ProviderInfo<BalanceOf<T>, frame_system::pallet_prelude::BlockNumberFor<T>>;

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use frame_support::{
		pallet_prelude::*,
		traits::fungible::{Inspect, Mutate, MutateHold},
	};
	use frame_system::pallet_prelude::*;

	/// The in-code storage version.
	const STORAGE_VERSION: StorageVersion = StorageVersion::new(1);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	#[pallet::config]
	pub trait Config: frame_system::Config {
		/// Currency the registration deposit is held in.
		type Currency: Inspect<Self::AccountId>
			+ Mutate<Self::AccountId>
			+ MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>;

		/// The overarching hold reason.
		type RuntimeHoldReason: From<HoldReason>;

		/// Deposit held from a provider while it is registered.
		#[pallet::constant]
		type RegistrationDeposit: Get<BalanceOf<Self>>;

		/// Most providers the registry holds.
		#[pallet::constant]
		type MaxProviders: Get<u32>;

		/// Longest time, in seconds, for which the full capacity must be priceable without
		/// overflow. Prices that overflow within it are refused.
		#[pallet::constant]
		type PriceHorizonSeconds: Get<u32>;

		/// Origin that manages the allowlist of TEE measurements.
		type AttestationOrigin: EnsureOrigin<Self::RuntimeOrigin>;

		/// The market, asked whether a provider still has open deals.
		type Deals: ProviderDeals<Self::AccountId>;

		/// The SLA pallet: quarantined providers are not offered, and reputation ranks offers.
		type Standing: ProviderStanding<Self::AccountId>;

		/// Weights of this pallet's calls.
		type WeightInfo: WeightInfo;
	}

	/// Reasons the registry holds funds.
	#[pallet::composite_enum]
	pub enum HoldReason {
		/// Deposit of a registered provider, returned on deregistration.
		#[codec(index = 0)]
		ProviderDeposit,
	}

	/// Registered providers by account.
	#[pallet::storage]
	pub type Providers<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, ProviderInfoOf<T>>;

	/// Number of registered providers.
	#[pallet::storage]
	pub type ProviderCount<T> = StorageValue<_, u32, ValueQuery>;

	/// TEE measurements accepted as attested (Root-managed allowlist).
	#[pallet::storage]
	pub type AllowedMeasurements<T> =
		StorageMap<_, Blake2_128Concat, (TeeType, Measurement), (), OptionQuery>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A provider registered; `attested` tells whether its measurement is on the allowlist.
		ProviderRegistered { provider: T::AccountId, deposit: BalanceOf<T>, attested: bool },
		/// A provider changed its capacity, prices, endpoint, health URL or attestation.
		ProviderUpdated { provider: T::AccountId, attested: bool },
		/// A provider stopped taking new deals.
		ProviderPaused { provider: T::AccountId },
		/// A provider takes new deals again.
		ProviderResumed { provider: T::AccountId },
		/// A provider left the registry and got its deposit back.
		ProviderDeregistered { provider: T::AccountId, deposit_returned: BalanceOf<T> },
		/// A TEE measurement was added to the allowlist.
		MeasurementAllowed { tee: TeeType, measurement: Measurement },
		/// A TEE measurement was removed from the allowlist.
		MeasurementRevoked { tee: TeeType, measurement: Measurement },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// The account is already a registered provider.
		AlreadyRegistered,
		/// The account is not a registered provider.
		NotProvider,
		/// The registry is full ([`Config::MaxProviders`]).
		TooManyProviders,
		/// Capacity offers no CPU, memory or storage at all.
		ZeroCapacity,
		/// GPUs are offered without a GPU model, or a model is named without GPUs.
		GpuModelMismatch,
		/// The GPU model name is too long or not readable text.
		InvalidGpuModel,
		/// The country is not an ISO 3166-1 alpha-2 code in upper case.
		InvalidCountryCode,
		/// The location is too long or not readable text.
		InvalidLocation,
		/// The peer id is too long or not a base58 libp2p peer id.
		InvalidPeerId,
		/// No multiaddr was given.
		NoMultiaddr,
		/// Too many multiaddrs were given.
		TooManyMultiaddrs,
		/// A multiaddr is too long, malformed, not dialable or names another peer.
		InvalidMultiaddr,
		/// The health URL is too long or not an absolute http(s) URL.
		InvalidHealthUrl,
		/// The measurement is empty or too long.
		InvalidMeasurement,
		/// The prices overflow when pricing the full capacity over the price horizon.
		PriceOverflow,
		/// The provider still has open deals.
		HasOpenDeals,
		/// The new capacity is below what accepted deals reserve.
		CapacityBelowReserved,
		/// The request asks for more than the provider's free capacity.
		InsufficientCapacity,
		/// The provider is already paused.
		AlreadyPaused,
		/// The provider is not paused.
		NotPaused,
		/// The account cannot cover the registration deposit.
		InsufficientDeposit,
		/// The measurement is already on the allowlist.
		MeasurementAlreadyAllowed,
		/// The measurement is not on the allowlist.
		MeasurementNotAllowed,
	}

	#[pallet::extra_constants]
	impl<T: Config> Pallet<T> {
		/// Longest GPU model name, in bytes.
		fn max_gpu_model_len() -> u32 {
			MAX_GPU_MODEL_LEN
		}
		/// Longest location label, in bytes.
		fn max_location_len() -> u32 {
			MAX_LOCATION_LEN
		}
		/// Longest peer id, in bytes.
		fn max_peer_id_len() -> u32 {
			MAX_PEER_ID_LEN
		}
		/// Longest multiaddr, in bytes.
		fn max_multiaddr_len() -> u32 {
			MAX_MULTIADDR_LEN
		}
		/// Most multiaddrs per provider.
		fn max_multiaddrs() -> u32 {
			MAX_MULTIADDRS
		}
		/// Longest health URL, in bytes.
		fn max_url_len() -> u32 {
			MAX_URL_LEN
		}
		/// Longest TEE measurement, in bytes.
		fn max_measurement_len() -> u32 {
			MAX_MEASUREMENT_LEN
		}
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn integrity_test() {
			assert!(T::MaxProviders::get() > 0, "MaxProviders must be positive");
			assert!(T::PriceHorizonSeconds::get() > 0, "PriceHorizonSeconds must be positive");
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Register the caller as a provider.
		///
		/// Holds [`Config::RegistrationDeposit`] from the caller. Emits `ProviderRegistered`.
		/// Fails with `AlreadyRegistered`, `TooManyProviders`, `InsufficientDeposit`, or the
		/// named error of the first invalid field (`ZeroCapacity`, `InvalidCountryCode`,
		/// `InvalidPeerId`, `InvalidMultiaddr`, `InvalidHealthUrl`, `PriceOverflow`, ...).
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::register_provider())]
		pub fn register_provider(
			origin: OriginFor<T>,
			registration: Registration<BalanceOf<T>>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_register(who, registration)
		}

		/// Change the caller's capacity, prices, rent discount, endpoint, health URL or
		/// attestation. Running deals keep the prices they locked in.
		///
		/// Emits `ProviderUpdated`. Fails with `NotProvider`, `CapacityBelowReserved`, or the
		/// named error of the first invalid field.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::update_provider())]
		pub fn update_provider(
			origin: OriginFor<T>,
			update: ProviderUpdate<BalanceOf<T>>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_update(who, update)
		}

		/// Stop taking new deals; running deals go on. Emits `ProviderPaused`.
		///
		/// Fails with `NotProvider` or `AlreadyPaused`.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::pause_provider())]
		pub fn pause_provider(origin: OriginFor<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::set_status(who, ProviderStatus::Paused)
		}

		/// Take new deals again. Emits `ProviderResumed`.
		///
		/// Fails with `NotProvider` or `NotPaused`.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::resume_provider())]
		pub fn resume_provider(origin: OriginFor<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::set_status(who, ProviderStatus::Active)
		}

		/// Leave the registry and get the deposit back. Refused while deals are open.
		///
		/// Emits `ProviderDeregistered`. Fails with `NotProvider` or `HasOpenDeals`.
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::deregister_provider())]
		pub fn deregister_provider(origin: OriginFor<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_deregister(who)
		}

		/// Add a TEE measurement to the allowlist ([`Config::AttestationOrigin`], Root).
		///
		/// Providers reporting it count as attested from now on. Emits `MeasurementAllowed`.
		/// Fails with `InvalidMeasurement` or `MeasurementAlreadyAllowed`.
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::allow_measurement())]
		pub fn allow_measurement(
			origin: OriginFor<T>,
			tee: TeeType,
			measurement: InputBytes,
		) -> DispatchResult {
			T::AttestationOrigin::ensure_origin(origin)?;
			let measurement = Self::bounded_measurement(measurement)?;
			let key = (tee, measurement);
			ensure!(
				!AllowedMeasurements::<T>::contains_key(&key),
				Error::<T>::MeasurementAlreadyAllowed
			);
			AllowedMeasurements::<T>::insert(&key, ());
			Self::deposit_event(Event::MeasurementAllowed { tee, measurement: key.1 });
			Ok(())
		}

		/// Remove a TEE measurement from the allowlist ([`Config::AttestationOrigin`], Root).
		///
		/// Providers reporting it count as unattested from now on. Emits `MeasurementRevoked`.
		/// Fails with `InvalidMeasurement` or `MeasurementNotAllowed`.
		#[pallet::call_index(6)]
		#[pallet::weight(T::WeightInfo::revoke_measurement())]
		pub fn revoke_measurement(
			origin: OriginFor<T>,
			tee: TeeType,
			measurement: InputBytes,
		) -> DispatchResult {
			T::AttestationOrigin::ensure_origin(origin)?;
			let measurement = Self::bounded_measurement(measurement)?;
			let key = (tee, measurement);
			ensure!(
				AllowedMeasurements::<T>::contains_key(&key),
				Error::<T>::MeasurementNotAllowed
			);
			AllowedMeasurements::<T>::remove(&key);
			Self::deposit_event(Event::MeasurementRevoked { tee, measurement: key.1 });
			Ok(())
		}
	}
}
