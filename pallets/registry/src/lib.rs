//! # Provider registry pallet
//!
//! Compute providers register what they sell so publishers can find them.
//!
//! ## Overview
//!
//! A provider registers its **capacity** (CPU millicores, memory MiB, storage GiB, GPUs and GPU
//! model), its **prices** per resource unit and second (the quote a deal locks in), its
//! **region** (ISO 3166-1 country, optional coarse location), the **libp2p endpoint** of its
//! agent (where publishers send encrypted manifests), the **gateway URL** of its agent's HTTP
//! gateway and the **ingress domain** it serves deals under (a deal named `web` is
//! `web.<ingress domain>`; SLA probers request deals' health checks through the gateway with
//! that host name) and, when its cluster runs in a TEE, a **verified attestation**: an Intel TDX or SGX DCAP
//! quote, checked on chain, that binds the provider's account, its agent's peer id and the key
//! publishers seal manifests to.
//! Registration holds a deposit from the provider (anti-spam), returned on deregistration.
//!
//! ## Terms
//!
//! - *Free capacity*: capacity minus what accepted deals reserve (through [`CapacityLedger`]).
//! - *Attested*: the provider's last verified quote (`attest`) has not expired, reported a
//!   measurement on the Root-managed allowlist and a TCB status Root's policy accepts. It is
//!   judged when read, so revoking a measurement or narrowing the policy unattests every
//!   provider concerned at once, with no iteration.
//! - *Quote*: the provider's prices; a deal created now locks them in.
//!
//! ## Usage
//!
//! Providers call `register_provider`, `update_provider`, `pause_provider`, `resume_provider`,
//! `deregister_provider` and `attest`. Root calls `allow_measurement`, `revoke_measurement` and
//! `set_tcb_policy`.
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
//! - Every attestation expires after it was verified, within [`Config::MaxAttestationAge`],
//!   and was verified in a past block.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

pub mod types;
pub mod validation;
pub mod weights;

mod impls;

#[cfg(feature = "runtime-benchmarks")]
pub mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

pub use podchain_attestation::{QuoteError, QuoteVerifier};
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
	const STORAGE_VERSION: StorageVersion = StorageVersion::new(2);

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

		/// Origin that manages the allowlist of TEE measurements and the TCB policy.
		type AttestationOrigin: EnsureOrigin<Self::RuntimeOrigin>;

		/// Verifies TEE quotes (the runtime: Intel DCAP, rooted in Intel's SGX root CA).
		type QuoteVerifier: QuoteVerifier;

		/// The chain's clock: quotes are verified, and attestations expire, by it.
		type UnixTime: frame_support::traits::UnixTime;

		/// Longest an attestation counts, in seconds, however long its collateral is valid.
		#[pallet::constant]
		type MaxAttestationAge: Get<u64>;

		/// Sample quotes for the benchmarks.
		#[cfg(feature = "runtime-benchmarks")]
		type BenchmarkHelper: crate::benchmarking::BenchmarkHelper;

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

	/// TEE measurements accepted as attested (Root-managed allowlist), as quotes report them.
	#[pallet::storage]
	pub type AllowedMeasurements<T> =
		StorageMap<_, Blake2_128Concat, (TeeType, Measurement), (), OptionQuery>;

	/// The TCB statuses accepted as attested (Root-managed; by default `UpToDate` only).
	#[pallet::storage]
	pub type AcceptedTcbStatuses<T> = StorageValue<_, TcbPolicy, ValueQuery>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A provider registered.
		ProviderRegistered { provider: T::AccountId, deposit: BalanceOf<T> },
		/// A provider changed its capacity, prices, rent discount, endpoint, gateway URL or
		/// ingress domain.
		ProviderUpdated { provider: T::AccountId },
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
		/// A provider's quote verified: it is attested until `expires_at` (Unix seconds) while
		/// its measurement and TCB status stay accepted.
		ProviderAttested {
			provider: T::AccountId,
			tee: TeeType,
			measurement: Measurement,
			tcb_status: TcbStatus,
			expires_at: u64,
		},
		/// A provider's attestation was dropped: its new peer id is not the one the quote bound.
		AttestationDropped { provider: T::AccountId },
		/// The TCB statuses accepted as attested changed.
		TcbPolicySet { policy: TcbPolicy },
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
		/// The gateway URL is too long, not an absolute http(s) URL, or has a query or fragment.
		InvalidGatewayUrl,
		/// The measurement is empty or longer than any TEE's.
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
		/// The quote cannot be parsed or is not a supported kind (ECDSA-256 DCAP quotes from
		/// Intel's quoting enclave: SGX version 3, TDX versions 4 and 5).
		QuoteMalformed,
		/// The collateral cannot be parsed (bad PEM, DER, JSON or text).
		CollateralInvalid,
		/// The collateral (TCB info, QE identity, a CRL or certificate) has expired: fetch
		/// current collateral from a PCCS.
		CollateralExpired,
		/// The collateral is not valid yet by the chain's clock.
		CollateralNotYetValid,
		/// A signature, certificate chain or CRL check failed: the quote is not vouched for by
		/// Intel's root, its platform is revoked, or it was altered.
		QuoteUntrusted,
		/// The quote's TCB status is not one the chain accepts (see `set_tcb_policy`).
		TcbStatusNotAllowed,
		/// The quote's report data does not commit to this provider's account, registered peer
		/// id and the sealing key given: it was made for someone or something else.
		AttestationBindingMismatch,
		/// The ingress domain is not a lower-case DNS name of at most
		/// [`MAX_DOMAIN_LEN`](crate::MAX_DOMAIN_LEN) bytes, or its last label is numeric.
		InvalidIngressDomain,
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
		/// Longest gateway URL, in bytes.
		fn max_url_len() -> u32 {
			MAX_URL_LEN
		}
		/// Longest ingress domain, in bytes.
		fn max_domain_len() -> u32 {
			MAX_DOMAIN_LEN
		}
		/// Longest TEE measurement, in bytes.
		fn max_measurement_len() -> u32 {
			podchain_attestation::MAX_MEASUREMENT_LEN
		}
		/// Largest quote `attest` takes, in bytes.
		fn max_quote_len() -> u32 {
			podchain_attestation::MAX_QUOTE_LEN
		}
		/// Largest collateral field `attest` takes, in bytes.
		fn max_collateral_field_len() -> u32 {
			podchain_attestation::MAX_COLLATERAL_FIELD_LEN
		}
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn integrity_test() {
			assert!(T::MaxProviders::get() > 0, "MaxProviders must be positive");
			assert!(T::PriceHorizonSeconds::get() > 0, "PriceHorizonSeconds must be positive");
			assert!(T::MaxAttestationAge::get() > 0, "MaxAttestationAge must be positive");
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
		/// `InvalidPeerId`, `InvalidMultiaddr`, `InvalidGatewayUrl`, `InvalidIngressDomain`, `PriceOverflow`, ...).
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::register_provider())]
		pub fn register_provider(
			origin: OriginFor<T>,
			registration: Registration<BalanceOf<T>>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_register(who, registration)
		}

		/// Change the caller's capacity, prices, rent discount, endpoint, gateway URL or ingress
		/// domain. Running
		/// deals keep the prices they locked in. A new peer id drops the attestation, which
		/// bound the old one.
		///
		/// Emits `ProviderUpdated` (and `AttestationDropped`). Fails with `NotProvider`,
		/// `CapacityBelowReserved`, or the named error of the first invalid field.
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
		/// Providers whose verified quote reported it count as attested from now on (while
		/// their attestation is unexpired and its TCB status accepted). Emits
		/// `MeasurementAllowed`.
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
		/// Providers whose quote reported it count as unattested from now on. Emits
		/// `MeasurementRevoked`.
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

		/// Prove the caller's cluster runs in an Intel TEE: verify `quote` (Intel TDX or SGX
		/// DCAP) against `collateral` at the chain's time, and record what it reports.
		///
		/// The quote's report data must start with
		/// `blake2_256(SCALE("podchain/attestation/v1", caller, registered peer id,
		/// sealing_key))`: only the TEE holding the agent's keys can produce it for this
		/// provider. The measurement comes from the quote and must be on the allowlist; the TCB
		/// status must be one Root accepts. The attestation then counts until the collateral's
		/// first expiry, at most [`Config::MaxAttestationAge`]; attest again before then.
		///
		/// Emits `ProviderAttested`. Fails with `NotProvider`, `QuoteMalformed`,
		/// `CollateralInvalid`, `CollateralExpired`, `CollateralNotYetValid`, `QuoteUntrusted`,
		/// `TcbStatusNotAllowed`, `MeasurementNotAllowed` or `AttestationBindingMismatch`.
		#[pallet::call_index(7)]
		#[pallet::weight(T::WeightInfo::attest().saturating_add(T::DbWeight::get().writes(1)))]
		pub fn attest(
			origin: OriginFor<T>,
			quote: QuoteBytes,
			collateral: Collateral,
			sealing_key: [u8; 32],
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_attest(who, &quote, &collateral, sealing_key)
		}

		/// Set the TCB statuses accepted as attested ([`Config::AttestationOrigin`], Root).
		/// `Revoked` is never accepted, whatever is asked. Judged when read: providers whose
		/// recorded status is no longer accepted count as unattested at once.
		///
		/// Emits `TcbPolicySet`.
		#[pallet::call_index(8)]
		#[pallet::weight(T::WeightInfo::set_tcb_policy())]
		pub fn set_tcb_policy(
			origin: OriginFor<T>,
			accepted: BoundedVec<TcbStatus, ConstU32<16>>,
		) -> DispatchResult {
			T::AttestationOrigin::ensure_origin(origin)?;
			let policy = TcbPolicy::accepting(&accepted);
			AcceptedTcbStatuses::<T>::put(policy);
			Self::deposit_event(Event::TcbPolicySet { policy });
			Ok(())
		}
	}
}
