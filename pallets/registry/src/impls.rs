//! The registry's logic behind its calls, its runtime API and the traits it offers the market.

use crate::{validation, *};
use alloc::vec::Vec;
use frame_support::{
	ensure,
	pallet_prelude::*,
	traits::{fungible::MutateHold, tokens::Precision},
};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::{
	traits::{CheckedMul, Saturating},
	PerThing, Permill,
};

/// Seconds in an hour, the period of the runtime API's quotes.
const SECONDS_PER_HOUR: u32 = 3600;

impl<T: Config> Pallet<T> {
	pub(crate) fn do_register(
		who: T::AccountId,
		registration: Registration<BalanceOf<T>>,
	) -> DispatchResult {
		ensure!(!Providers::<T>::contains_key(&who), Error::<T>::AlreadyRegistered);
		let count = ProviderCount::<T>::get();
		ensure!(count < T::MaxProviders::get(), Error::<T>::TooManyProviders);

		let capacity = Self::checked_capacity(registration.capacity)?;
		Self::ensure_priceable(&registration.prices, &capacity.resources)?;
		let region = Self::checked_region(registration.region)?;
		let endpoint = Self::checked_endpoint(registration.endpoint)?;
		let gateway_url = Self::checked_gateway_url(registration.gateway_url)?;
		let ingress_domain = Self::checked_ingress_domain(registration.ingress_domain)?;

		let deposit = T::RegistrationDeposit::get();
		T::Currency::hold(&HoldReason::ProviderDeposit.into(), &who, deposit)
			.map_err(|_| Error::<T>::InsufficientDeposit)?;

		let info = ProviderInfo {
			capacity,
			reserved: Resources::default(),
			prices: registration.prices,
			rent_discount: registration.rent_discount,
			region,
			endpoint,
			gateway_url,
			ingress_domain,
			attestation: None,
			status: ProviderStatus::Active,
			deposit,
			registered_at: frame_system::Pallet::<T>::block_number(),
		};
		Providers::<T>::insert(&who, info);
		ProviderCount::<T>::put(count.saturating_add(1));
		Self::deposit_event(Event::ProviderRegistered { provider: who, deposit });
		Ok(())
	}

	pub(crate) fn do_update(
		who: T::AccountId,
		update: ProviderUpdate<BalanceOf<T>>,
	) -> DispatchResult {
		let mut info = Providers::<T>::get(&who).ok_or(Error::<T>::NotProvider)?;
		// Validate everything before the single write.
		if let Some(capacity) = update.capacity {
			let capacity = Self::checked_capacity(capacity)?;
			ensure!(info.reserved.fits_in(&capacity.resources), Error::<T>::CapacityBelowReserved);
			info.capacity = capacity;
		}
		if let Some(prices) = update.prices {
			info.prices = prices;
		}
		Self::ensure_priceable(&info.prices, &info.capacity.resources)?;
		if let Some(discount) = update.rent_discount {
			info.rent_discount = discount;
		}
		let mut dropped = false;
		if let Some(endpoint) = update.endpoint {
			let endpoint = Self::checked_endpoint(endpoint)?;
			// The quote bound the old peer id: publishers must not seal to the new one on its
			// word.
			if endpoint.peer_id != info.endpoint.peer_id {
				dropped = info.attestation.take().is_some();
			}
			info.endpoint = endpoint;
		}
		if let Some(url) = update.gateway_url {
			info.gateway_url = Self::checked_gateway_url(url)?;
		}
		if let Some(domain) = update.ingress_domain {
			info.ingress_domain = Self::checked_ingress_domain(domain)?;
		}
		Providers::<T>::insert(&who, info);
		if dropped {
			Self::deposit_event(Event::AttestationDropped { provider: who.clone() });
		}
		Self::deposit_event(Event::ProviderUpdated { provider: who });
		Ok(())
	}

	pub(crate) fn set_status(who: T::AccountId, status: ProviderStatus) -> DispatchResult {
		Providers::<T>::try_mutate(&who, |maybe| {
			let info = maybe.as_mut().ok_or(Error::<T>::NotProvider)?;
			match (info.status, status) {
				(ProviderStatus::Paused, ProviderStatus::Paused) => {
					Err(Error::<T>::AlreadyPaused.into())
				}
				(ProviderStatus::Active, ProviderStatus::Active) => {
					Err(Error::<T>::NotPaused.into())
				}
				_ => {
					info.status = status;
					Ok::<_, DispatchError>(())
				}
			}
		})?;
		let event = match status {
			ProviderStatus::Paused => Event::ProviderPaused { provider: who },
			ProviderStatus::Active => Event::ProviderResumed { provider: who },
		};
		Self::deposit_event(event);
		Ok(())
	}

	pub(crate) fn do_deregister(who: T::AccountId) -> DispatchResult {
		let info = Providers::<T>::get(&who).ok_or(Error::<T>::NotProvider)?;
		ensure!(T::Deals::open_deals(&who) == 0, Error::<T>::HasOpenDeals);
		let returned = T::Currency::release(
			&HoldReason::ProviderDeposit.into(),
			&who,
			info.deposit,
			Precision::BestEffort,
		)?;
		Providers::<T>::remove(&who);
		ProviderCount::<T>::mutate(|count| *count = count.saturating_sub(1));
		T::Standing::deregistered(&who);
		Self::deposit_event(Event::ProviderDeregistered {
			provider: who,
			deposit_returned: returned,
		});
		Ok(())
	}

	fn checked_capacity(input: CapacityInput) -> Result<Capacity, DispatchError> {
		let resources = input.resources;
		ensure!(resources.has_compute(), Error::<T>::ZeroCapacity);
		ensure!((resources.gpus > 0) != input.gpu_model.is_empty(), Error::<T>::GpuModelMismatch);
		if !input.gpu_model.is_empty() {
			ensure!(validation::is_label(&input.gpu_model), Error::<T>::InvalidGpuModel);
		}
		let gpu_model =
			input.gpu_model.into_inner().try_into().map_err(|_| Error::<T>::InvalidGpuModel)?;
		Ok(Capacity { resources, gpu_model })
	}

	/// Refuses prices whose cost for the full capacity over the price horizon overflows, so
	/// quotes and bills computed from them later cannot.
	fn ensure_priceable(prices: &Prices<BalanceOf<T>>, capacity: &Resources) -> DispatchResult {
		let horizon = T::PriceHorizonSeconds::get();
		prices.for_duration(capacity, horizon).ok_or(Error::<T>::PriceOverflow)?;
		// Egress is billed per byte: a full horizon at 10 GiB/s must be priceable too.
		let egress_bytes_per_second = BalanceOf::<T>::from(10u32)
			.checked_mul(&BalanceOf::<T>::from(1u32 << 30))
			.ok_or(Error::<T>::PriceOverflow)?;
		prices
			.egress_per_byte
			.checked_mul(&egress_bytes_per_second)
			.and_then(|per_second| per_second.checked_mul(&horizon.into()))
			.ok_or(Error::<T>::PriceOverflow)?;
		Ok(())
	}

	fn checked_region(input: RegionInput) -> Result<Region, DispatchError> {
		ensure!(validation::is_country_code(&input.country), Error::<T>::InvalidCountryCode);
		let location = match input.location {
			None => None,
			Some(label) => {
				ensure!(validation::is_label(&label), Error::<T>::InvalidLocation);
				Some(label.into_inner().try_into().map_err(|_| Error::<T>::InvalidLocation)?)
			}
		};
		Ok(Region { country: input.country, location })
	}

	fn checked_endpoint(input: EndpointInput) -> Result<Endpoint, DispatchError> {
		ensure!(validation::is_peer_id(&input.peer_id), Error::<T>::InvalidPeerId);
		let peer_id: PeerIdText =
			input.peer_id.into_inner().try_into().map_err(|_| Error::<T>::InvalidPeerId)?;
		ensure!(!input.multiaddrs.is_empty(), Error::<T>::NoMultiaddr);
		ensure!(input.multiaddrs.len() <= MAX_MULTIADDRS as usize, Error::<T>::TooManyMultiaddrs);
		let multiaddrs = input
			.multiaddrs
			.into_iter()
			.map(|addr| {
				ensure!(validation::is_multiaddr(&addr, &peer_id), Error::<T>::InvalidMultiaddr);
				MultiaddrText::try_from(addr.into_inner()).map_err(|_| Error::<T>::InvalidMultiaddr)
			})
			.collect::<Result<Vec<_>, _>>()?;
		let multiaddrs = multiaddrs.try_into().map_err(|_| Error::<T>::TooManyMultiaddrs)?;
		Ok(Endpoint { peer_id, multiaddrs })
	}

	fn checked_gateway_url(input: InputBytes) -> Result<GatewayUrl, DispatchError> {
		ensure!(validation::is_gateway_url(&input), Error::<T>::InvalidGatewayUrl);
		Ok(input.into_inner().try_into().map_err(|_| Error::<T>::InvalidGatewayUrl)?)
	}

	fn checked_ingress_domain(input: InputBytes) -> Result<IngressDomain, DispatchError> {
		ensure!(validation::is_ingress_domain(&input), Error::<T>::InvalidIngressDomain);
		Ok(input.into_inner().try_into().map_err(|_| Error::<T>::InvalidIngressDomain)?)
	}

	pub(crate) fn do_attest(
		who: T::AccountId,
		quote: &[u8],
		collateral: &Collateral,
		sealing_key: [u8; 32],
	) -> DispatchResult {
		let info = Providers::<T>::get(&who).ok_or(Error::<T>::NotProvider)?;
		let now = Self::now();
		let verified = T::QuoteVerifier::verify(quote, collateral, now).map_err(|e| match e {
			QuoteError::Malformed => Error::<T>::QuoteMalformed,
			QuoteError::InvalidCollateral => Error::<T>::CollateralInvalid,
			QuoteError::CollateralExpired => Error::<T>::CollateralExpired,
			QuoteError::CollateralNotYetValid => Error::<T>::CollateralNotYetValid,
			QuoteError::Untrusted => Error::<T>::QuoteUntrusted,
		})?;
		ensure!(
			AcceptedTcbStatuses::<T>::get().accepts(verified.tcb_status),
			Error::<T>::TcbStatusNotAllowed
		);
		ensure!(
			AllowedMeasurements::<T>::contains_key((verified.tee, verified.measurement.clone())),
			Error::<T>::MeasurementNotAllowed
		);
		let bound = podchain_attestation::binding(&who, &info.endpoint.peer_id, &sealing_key);
		ensure!(verified.report_data[..32] == bound[..], Error::<T>::AttestationBindingMismatch);
		let expires_at =
			verified.collateral_expires_at.min(now.saturating_add(T::MaxAttestationAge::get()));
		ensure!(expires_at > now, Error::<T>::CollateralExpired);

		let attestation = Attestation {
			tee: verified.tee,
			measurement: verified.measurement,
			tcb_status: verified.tcb_status,
			advisory_ids: verified.advisory_ids,
			sealing_key,
			verified_at: now,
			verified_in_block: frame_system::Pallet::<T>::block_number(),
			expires_at,
		};
		let event = Event::ProviderAttested {
			provider: who.clone(),
			tee: attestation.tee,
			measurement: attestation.measurement.clone(),
			tcb_status: attestation.tcb_status,
			expires_at,
		};
		Providers::<T>::mutate(&who, |maybe| {
			if let Some(info) = maybe {
				info.attestation = Some(attestation);
			}
		});
		Self::deposit_event(event);
		Ok(())
	}

	/// The chain's time in Unix seconds.
	fn now() -> u64 {
		<T::UnixTime as frame_support::traits::UnixTime>::now().as_secs()
	}

	pub(crate) fn bounded_measurement(input: InputBytes) -> Result<Measurement, DispatchError> {
		ensure!(!input.is_empty(), Error::<T>::InvalidMeasurement);
		Ok(input.into_inner().try_into().map_err(|_| Error::<T>::InvalidMeasurement)?)
	}

	/// Whether the provider's attestation counts now: unexpired, its TCB status accepted and
	/// its measurement allowed. Two reads at most, whatever the number of providers.
	pub fn is_attested(info: &ProviderInfoOf<T>) -> bool {
		let Some(a) = info.attestation.as_ref() else { return false };
		Self::now() < a.expires_at
			&& AcceptedTcbStatuses::<T>::get().accepts(a.tcb_status)
			&& AllowedMeasurements::<T>::contains_key((a.tee, a.measurement.clone()))
	}

	/// A provider with its attestation judged against the allowlist now (runtime API).
	pub fn provider_view(
		who: &T::AccountId,
	) -> Option<ProviderView<BalanceOf<T>, BlockNumberFor<T>>> {
		Providers::<T>::get(who)
			.map(|info| ProviderView { attested: Self::is_attested(&info), info })
	}

	/// Active providers able to host `req` now, best first (runtime API, off-chain only: it
	/// reads every provider, at most [`Config::MaxProviders`]). Quarantined providers are left
	/// out; the rest rank by price weighted by reputation: a provider that met a share `r` of
	/// its SLA probe windows ranks as if it charged `price x (2 - r)`.
	pub fn match_providers(
		req: WorkloadRequirements<BalanceOf<T>>,
	) -> Vec<ProviderMatch<T::AccountId, BalanceOf<T>>> {
		let gpu_filter = req.gpu_model.as_ref().map(|m| m.to_ascii_lowercase());
		let mut matches: Vec<_> = Providers::<T>::iter()
			.filter_map(|(provider, info)| {
				if info.status != ProviderStatus::Active
					|| T::Deals::is_rented(&provider)
					|| T::Standing::is_quarantined(&provider)
				{
					return None;
				}
				let free = info.free();
				if !req.resources.fits_in(&free) {
					return None;
				}
				if req.country.is_some_and(|c| c != info.region.country) {
					return None;
				}
				if let Some(wanted) = &gpu_filter {
					let model = info.capacity.gpu_model.to_ascii_lowercase();
					if wanted.is_empty() || !model.windows(wanted.len()).any(|w| w == &wanted[..]) {
						return None;
					}
				}
				let attested = Self::is_attested(&info);
				if req.attested_only && !attested {
					return None;
				}
				let price_per_hour = info.prices.for_duration(&req.resources, SECONDS_PER_HOUR)?;
				if req.max_price_per_hour.is_some_and(|max| price_per_hour > max) {
					return None;
				}
				let reputation = T::Standing::reputation(&provider);
				Some(ProviderMatch {
					provider,
					price_per_hour,
					prices: info.prices,
					free,
					country: info.region.country,
					attested,
					reputation,
				})
			})
			.collect();
		// Cheapest after reputation; then attested before unattested, better reputation first,
		// and by account so the order is deterministic.
		let ranked = |m: &ProviderMatch<T::AccountId, BalanceOf<T>>| {
			let penalty = Permill::one().saturating_sub(m.reputation) * m.price_per_hour;
			m.price_per_hour.saturating_add(penalty)
		};
		matches.sort_by(|a, b| {
			ranked(a)
				.cmp(&ranked(b))
				.then(b.attested.cmp(&a.attested))
				.then(b.reputation.cmp(&a.reputation))
				.then_with(|| a.provider.encode().cmp(&b.provider.encode()))
		});
		if req.limit > 0 {
			matches.truncate(req.limit as usize);
		}
		matches
	}

	/// Checks the invariants listed in the crate docs.
	#[cfg(any(feature = "try-runtime", feature = "std", test))]
	pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
		use frame_support::traits::fungible::InspectHold;
		let mut count = 0u32;
		for (who, info) in Providers::<T>::iter() {
			count = count.saturating_add(1);
			ensure!(
				info.reserved.fits_in(&info.capacity.resources),
				"a provider's reserved capacity exceeds its capacity"
			);
			let held = T::Currency::balance_on_hold(&HoldReason::ProviderDeposit.into(), &who);
			ensure!(held == info.deposit, "a provider's held deposit differs from its record");
			if let Some(a) = &info.attestation {
				ensure!(a.expires_at > a.verified_at, "an attestation expires before it was made");
				ensure!(
					a.verified_in_block <= frame_system::Pallet::<T>::block_number(),
					"an attestation was verified in a future block"
				);
				ensure!(
					a.expires_at <= a.verified_at.saturating_add(T::MaxAttestationAge::get()),
					"an attestation outlives MaxAttestationAge"
				);
			}
		}
		ensure!(count == ProviderCount::<T>::get(), "ProviderCount differs from the providers");
		ensure!(count <= T::MaxProviders::get(), "more providers than MaxProviders");
		Ok(())
	}
}

impl<T: Config> CapacityLedger<T::AccountId> for Pallet<T> {
	fn reserve(provider: &T::AccountId, resources: &Resources) -> DispatchResult {
		Providers::<T>::try_mutate(provider, |maybe| {
			let info = maybe.as_mut().ok_or(Error::<T>::NotProvider)?;
			let reserved =
				info.reserved.checked_add(resources).ok_or(Error::<T>::InsufficientCapacity)?;
			ensure!(reserved.fits_in(&info.capacity.resources), Error::<T>::InsufficientCapacity);
			info.reserved = reserved;
			Ok(())
		})
	}

	fn release(provider: &T::AccountId, resources: &Resources) {
		Providers::<T>::mutate(provider, |maybe| {
			if let Some(info) = maybe {
				defensive_assert!(
					resources.fits_in(&info.reserved),
					"released more capacity than was reserved"
				);
				info.reserved = info.reserved.saturating_sub(resources);
			}
		});
	}
}

impl<T: Config> podchain_primitives::ProviderCatalog<T::AccountId, BalanceOf<T>> for Pallet<T> {
	fn quote(provider: &T::AccountId) -> Option<Prices<BalanceOf<T>>> {
		Providers::<T>::get(provider)
			.filter(|info| info.status == ProviderStatus::Active)
			.map(|info| info.prices)
	}

	fn rent_offer(provider: &T::AccountId) -> Option<(Resources, Prices<BalanceOf<T>>)> {
		let info = Providers::<T>::get(provider).filter(|i| i.status == ProviderStatus::Active)?;
		let keep = info.rent_discount.left_from_one();
		let discounted = |price: BalanceOf<T>| keep.mul_ceil(price);
		let p = info.prices;
		let prices = Prices {
			cpu_per_millicore_second: discounted(p.cpu_per_millicore_second),
			memory_per_mib_second: discounted(p.memory_per_mib_second),
			storage_per_gib_second: discounted(p.storage_per_gib_second),
			gpu_per_second: discounted(p.gpu_per_second),
			egress_per_byte: discounted(p.egress_per_byte),
		};
		Some((info.capacity.resources, prices))
	}
}

#[cfg(feature = "runtime-benchmarks")]
impl<T: Config> Pallet<T> {
	/// Registers `who` (already funded for the deposit) with `capacity` and a price of 1 per unit
	/// and second, so other pallets' benchmarks can set up a provider.
	pub fn register_for_benchmarks(who: T::AccountId, capacity: Resources) -> DispatchResult {
		let input = |bytes: &[u8]| {
			InputBytes::try_from(bytes.to_vec()).map_err(|_| Error::<T>::InvalidPeerId)
		};
		let one: BalanceOf<T> = 1u32.into();
		Self::do_register(
			who,
			Registration {
				capacity: CapacityInput { resources: capacity, gpu_model: input(b"")? },
				prices: Prices {
					cpu_per_millicore_second: one,
					memory_per_mib_second: one,
					storage_per_gib_second: one,
					gpu_per_second: one,
					egress_per_byte: one,
				},
				rent_discount: Default::default(),
				region: RegionInput { country: *b"DE", location: None },
				endpoint: EndpointInput {
					peer_id: input(b"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA")?,
					multiaddrs: alloc::vec![input(b"/ip4/127.0.0.1/tcp/4001")?]
						.try_into()
						.map_err(|_| Error::<T>::TooManyMultiaddrs)?,
				},
				gateway_url: input(b"http://127.0.0.1:8080")?,
				ingress_domain: input(b"apps.provider.test")?,
			},
		)
	}
}

impl<T: Config> ProbeTargets<T::AccountId> for Pallet<T> {
	fn gateway(provider: &T::AccountId) -> Option<(Vec<u8>, Vec<u8>)> {
		// Paused providers too: their running deals are still measured.
		Providers::<T>::get(provider)
			.map(|info| (info.gateway_url.into_inner(), info.ingress_domain.into_inner()))
	}
}
