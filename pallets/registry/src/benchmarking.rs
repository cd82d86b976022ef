//! Benchmarks of the registry's calls, each at its worst case: the longest fields allowed and
//! the slowest validation path.

use super::*;
use alloc::{vec, vec::Vec};
use frame_benchmarking::v2::*;
use frame_support::{
	traits::{fungible::Mutate, EnsureOrigin},
	BoundedVec,
};
use frame_system::RawOrigin;
use sp_runtime::{traits::Bounded, Percent};

/// An ed25519 peer id, the longest common form.
const PEER: &[u8] = b"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";

fn input(bytes: &[u8]) -> InputBytes {
	bytes.to_vec().try_into().expect("benchmark input fits")
}

/// The longest registration the pallet stores: every list full, every string at its limit.
fn worst_registration<T: Config>() -> Registration<BalanceOf<T>> {
	let addr = [b"/dns4/".as_slice(), &[b'a'; 40], b".example/tcp/4001/ws/p2p/", PEER].concat();
	Registration {
		capacity: CapacityInput {
			resources: Resources {
				cpu_millicores: 64_000,
				memory_mib: 262_144,
				storage_gib: 4096,
				gpus: 8,
			},
			gpu_model: input(&[b'G'; MAX_GPU_MODEL_LEN as usize]),
		},
		prices: Prices {
			cpu_per_millicore_second: 1u32.into(),
			memory_per_mib_second: 1u32.into(),
			storage_per_gib_second: 1u32.into(),
			gpu_per_second: 1u32.into(),
			egress_per_byte: 1u32.into(),
		},
		rent_discount: Percent::from_percent(10),
		region: RegionInput {
			country: *b"ZW",
			location: Some(input(&[b'L'; MAX_LOCATION_LEN as usize])),
		},
		endpoint: EndpointInput {
			peer_id: input(PEER),
			multiaddrs: vec![input(&addr); MAX_MULTIADDRS as usize].try_into().expect("fits"),
		},
		gateway_url: input(
			&[b"https://provider.example/".as_slice(), &[b'h'; MAX_URL_LEN as usize - 25]].concat(),
		),
		ingress_domain: input(
			&[
				[b'a'; 63].as_slice(),
				b".",
				&[b'b'; 63],
				b".",
				&[b'c'; MAX_DOMAIN_LEN as usize - 128],
			]
			.concat(),
		),
	}
}

/// What the benchmarks need from the runtime to verify a real quote.
pub trait BenchmarkHelper {
	/// A genuine quote, its collateral, and a time (Unix seconds) at which it verifies.
	fn sample_quote() -> (Vec<u8>, Collateral, u64);
	/// Sets the chain's clock.
	fn set_time(unix_secs: u64);
}

/// The longest measurement any TEE reports.
fn longest_measurement() -> InputBytes {
	input(&[9u8; podchain_attestation::MAX_MEASUREMENT_LEN as usize])
}

fn funded_provider<T: Config>() -> T::AccountId {
	let who: T::AccountId = whitelisted_caller();
	T::Currency::set_balance(&who, BalanceOf::<T>::max_value() / 2u32.into());
	who
}

fn registered_provider<T: Config>() -> T::AccountId {
	let who = funded_provider::<T>();
	Pallet::<T>::do_register(who.clone(), worst_registration::<T>()).expect("registers");
	who
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn register_provider() {
		let who = funded_provider::<T>();
		let registration = worst_registration::<T>();

		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), registration);

		assert!(Providers::<T>::contains_key(&who));
	}

	#[benchmark]
	fn update_provider() {
		let who = registered_provider::<T>();
		let full = worst_registration::<T>();
		let update = ProviderUpdate {
			capacity: Some(full.capacity),
			prices: Some(full.prices),
			rent_discount: Some(Percent::from_percent(30)),
			endpoint: Some(full.endpoint),
			gateway_url: Some(full.gateway_url),
			ingress_domain: Some(full.ingress_domain),
		};

		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), update);

		assert_eq!(
			Providers::<T>::get(&who).expect("registered").rent_discount,
			Percent::from_percent(30)
		);
	}

	#[benchmark]
	fn pause_provider() {
		let who = registered_provider::<T>();

		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()));

		assert_eq!(Providers::<T>::get(&who).expect("registered").status, ProviderStatus::Paused);
	}

	#[benchmark]
	fn resume_provider() {
		let who = registered_provider::<T>();
		Pallet::<T>::set_status(who.clone(), ProviderStatus::Paused).expect("pauses");

		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()));

		assert_eq!(Providers::<T>::get(&who).expect("registered").status, ProviderStatus::Active);
	}

	#[benchmark]
	fn deregister_provider() {
		let who = registered_provider::<T>();

		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()));

		assert!(!Providers::<T>::contains_key(&who));
	}

	#[benchmark]
	fn allow_measurement() -> Result<(), BenchmarkError> {
		let origin = T::AttestationOrigin::try_successful_origin()
			.map_err(|_| BenchmarkError::Weightless)?;
		let measurement = longest_measurement();

		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, TeeType::IntelTdx, measurement);

		assert_eq!(AllowedMeasurements::<T>::iter().count(), 1);
		Ok(())
	}

	#[benchmark]
	fn revoke_measurement() -> Result<(), BenchmarkError> {
		let origin = T::AttestationOrigin::try_successful_origin()
			.map_err(|_| BenchmarkError::Weightless)?;
		let measurement = longest_measurement();
		let stored = Pallet::<T>::bounded_measurement(measurement.clone())?;
		AllowedMeasurements::<T>::insert((TeeType::IntelTdx, stored), ());

		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, TeeType::IntelTdx, measurement);

		assert_eq!(AllowedMeasurements::<T>::iter().count(), 0);
		Ok(())
	}

	/// A genuine quote verified through to the binding check, the last before the record is
	/// written: no sample quote binds a benchmark account, so the call fails there, having
	/// done everything else. The call's weight adds the record's one write.
	#[benchmark]
	fn attest() -> Result<(), BenchmarkError> {
		let who = registered_provider::<T>();
		let (quote, collateral, time) = T::BenchmarkHelper::sample_quote();
		T::BenchmarkHelper::set_time(time);
		let verified = T::QuoteVerifier::verify(&quote, &collateral, time)
			.map_err(|_| BenchmarkError::Stop("the sample quote does not verify"))?;
		AllowedMeasurements::<T>::insert((verified.tee, verified.measurement), ());
		AcceptedTcbStatuses::<T>::put(TcbPolicy::accepting(&[verified.tcb_status]));
		let quote: QuoteBytes =
			quote.try_into().map_err(|_| BenchmarkError::Stop("the sample quote is too large"))?;

		#[block]
		{
			let outcome = Pallet::<T>::attest(
				RawOrigin::Signed(who.clone()).into(),
				quote,
				collateral,
				[5; 32],
			);
			assert_eq!(outcome, Err(Error::<T>::AttestationBindingMismatch.into()));
		}

		Ok(())
	}

	#[benchmark]
	fn set_tcb_policy() -> Result<(), BenchmarkError> {
		let origin = T::AttestationOrigin::try_successful_origin()
			.map_err(|_| BenchmarkError::Weightless)?;
		let accepted: BoundedVec<_, _> =
			TcbStatus::ALL.to_vec().try_into().map_err(|_| BenchmarkError::Weightless)?;

		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, accepted);

		assert!(AcceptedTcbStatuses::<T>::get().accepts(TcbStatus::OutOfDate));
		Ok(())
	}

	impl_benchmark_test_suite!(Pallet, crate::mock::build_ext_for_benchmarks(), crate::mock::Test);
}
