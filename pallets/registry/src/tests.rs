use crate::{mock::*, *};
use frame_support::{
	assert_noop, assert_ok,
	traits::{fungible::InspectHold, Hooks},
};
use sp_runtime::{DispatchError, Percent, Permill};

const PEER: &[u8] = b"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
const MEASUREMENT: [u8; 48] = [7u8; 48];

fn bytes(b: &[u8]) -> InputBytes {
	b.to_vec().try_into().unwrap()
}

fn resources(cpu: u32, mem: u32, storage: u32) -> Resources {
	Resources { cpu_millicores: cpu, memory_mib: mem, storage_gib: storage, gpus: 0 }
}

fn prices(cpu: Balance) -> Prices<Balance> {
	Prices {
		cpu_per_millicore_second: cpu,
		memory_per_mib_second: 2,
		storage_per_gib_second: 3,
		gpu_per_second: 0,
		egress_per_byte: 1,
	}
}

fn registration(cpu_price: Balance, country: &[u8; 2]) -> Registration<Balance> {
	Registration {
		capacity: CapacityInput { resources: resources(8000, 16384, 100), gpu_model: bytes(b"") },
		prices: prices(cpu_price),
		rent_discount: Percent::from_percent(20),
		region: RegionInput { country: *country, location: Some(bytes(b"Frankfurt")) },
		endpoint: EndpointInput {
			peer_id: bytes(PEER),
			multiaddrs: vec![bytes(b"/ip4/203.0.113.7/tcp/4001")].try_into().unwrap(),
		},
		health_url: bytes(b"https://provider.example/healthz"),
		attestation: Some(AttestationInput {
			tee: TeeType::AmdSevSnp,
			measurement: bytes(&MEASUREMENT),
		}),
	}
}

fn register(who: AccountId, cpu_price: Balance) {
	assert_ok!(Registry::register_provider(
		RuntimeOrigin::signed(who),
		registration(cpu_price, b"DE")
	));
}

fn register_err(reg: Registration<Balance>, err: Error<Test>) {
	assert_noop!(Registry::register_provider(RuntimeOrigin::signed(ALICE), reg), err);
}

fn requirements(cpu: u32) -> WorkloadRequirements<Balance> {
	WorkloadRequirements {
		resources: resources(cpu, 1024, 10),
		country: None,
		gpu_model: None,
		attested_only: false,
		max_price_per_hour: None,
		limit: 0,
	}
}

#[test]
fn register_holds_deposit_and_stores_provider() {
	build_and_execute(|| {
		register(ALICE, 1);
		let info = Providers::<Test>::get(ALICE).unwrap();
		assert_eq!(info.capacity.resources, resources(8000, 16384, 100));
		assert_eq!(info.region.country, *b"DE");
		assert_eq!(info.status, ProviderStatus::Active);
		assert_eq!(info.deposit, DEPOSIT);
		assert_eq!(ProviderCount::<Test>::get(), 1);
		assert_eq!(Balances::balance_on_hold(&HoldReason::ProviderDeposit.into(), &ALICE), DEPOSIT);
		System::assert_last_event(
			Event::ProviderRegistered { provider: ALICE, deposit: DEPOSIT, attested: false }.into(),
		);
	});
}

#[test]
fn register_refuses_duplicates_and_full_registry() {
	build_and_execute(|| {
		register(ALICE, 1);
		register_err(registration(1, b"DE"), Error::AlreadyRegistered);
		register(BOB, 1);
		register(CHARLIE, 1);
		assert_noop!(
			Registry::register_provider(RuntimeOrigin::signed(DAVE), registration(1, b"DE")),
			Error::<Test>::TooManyProviders
		);
	});
}

#[test]
fn register_refuses_account_without_deposit() {
	build_and_execute(|| {
		assert_noop!(
			Registry::register_provider(RuntimeOrigin::signed(PAUPER), registration(1, b"DE")),
			Error::<Test>::InsufficientDeposit
		);
	});
}

#[test]
fn register_refuses_unsigned_origin() {
	build_and_execute(|| {
		assert_noop!(
			Registry::register_provider(RuntimeOrigin::root(), registration(1, b"DE")),
			DispatchError::BadOrigin
		);
	});
}

#[test]
fn register_refuses_bad_capacity() {
	build_and_execute(|| {
		let mut reg = registration(1, b"DE");
		reg.capacity.resources = Resources::default();
		register_err(reg, Error::ZeroCapacity);

		let mut reg = registration(1, b"DE");
		reg.capacity.resources.gpus = 2;
		register_err(reg, Error::GpuModelMismatch);

		let mut reg = registration(1, b"DE");
		reg.capacity.gpu_model = bytes(b"H100");
		register_err(reg, Error::GpuModelMismatch);

		let mut reg = registration(1, b"DE");
		reg.capacity.resources.gpus = 1;
		reg.capacity.gpu_model = bytes(&[b'x'; MAX_GPU_MODEL_LEN as usize + 1]);
		register_err(reg, Error::InvalidGpuModel);
	});
}

#[test]
fn register_refuses_bad_region() {
	build_and_execute(|| {
		register_err(registration(1, b"XX"), Error::InvalidCountryCode);
		register_err(registration(1, b"de"), Error::InvalidCountryCode);

		let mut reg = registration(1, b"DE");
		reg.region.location = Some(bytes(&[b'a'; MAX_LOCATION_LEN as usize + 1]));
		register_err(reg, Error::InvalidLocation);

		let mut reg = registration(1, b"DE");
		reg.region.location = Some(bytes(b"\x07bell"));
		register_err(reg, Error::InvalidLocation);
	});
}

#[test]
fn register_refuses_bad_endpoint() {
	build_and_execute(|| {
		let mut reg = registration(1, b"DE");
		reg.endpoint.peer_id = bytes(b"not-a-peer");
		register_err(reg, Error::InvalidPeerId);

		let mut reg = registration(1, b"DE");
		reg.endpoint.multiaddrs = Default::default();
		register_err(reg, Error::NoMultiaddr);

		let mut reg = registration(1, b"DE");
		reg.endpoint.multiaddrs =
			vec![bytes(b"/ip4/203.0.113.7/tcp/4001"); MAX_MULTIADDRS as usize + 1]
				.try_into()
				.unwrap();
		register_err(reg, Error::TooManyMultiaddrs);

		let mut reg = registration(1, b"DE");
		reg.endpoint.multiaddrs = vec![bytes(b"/ip4/999.0.0.1/tcp/4001")].try_into().unwrap();
		register_err(reg, Error::InvalidMultiaddr);

		let mut reg = registration(1, b"DE");
		// Well-formed but longer than MAX_MULTIADDR_LEN.
		let too_long =
			[b"/dns4/".as_slice(), &[b'a'; 60], b".example/tcp/1", &b"/ws".repeat(30)].concat();
		reg.endpoint.multiaddrs = vec![bytes(&too_long)].try_into().unwrap();
		register_err(reg, Error::InvalidMultiaddr);
	});
}

#[test]
fn register_refuses_bad_url_and_measurement() {
	build_and_execute(|| {
		let mut reg = registration(1, b"DE");
		reg.health_url = bytes(b"provider.example/healthz");
		register_err(reg, Error::InvalidHealthUrl);

		let mut reg = registration(1, b"DE");
		let long = [b"https://p.example/".as_slice(), &[b'a'; MAX_URL_LEN as usize]].concat();
		reg.health_url = bytes(&long);
		register_err(reg, Error::InvalidHealthUrl);

		let mut reg = registration(1, b"DE");
		reg.attestation =
			Some(AttestationInput { tee: TeeType::IntelTdx, measurement: bytes(b"") });
		register_err(reg, Error::InvalidMeasurement);

		let mut reg = registration(1, b"DE");
		reg.attestation = Some(AttestationInput {
			tee: TeeType::IntelTdx,
			measurement: bytes(&[1; MAX_MEASUREMENT_LEN as usize + 1]),
		});
		register_err(reg, Error::InvalidMeasurement);
	});
}

#[test]
fn register_refuses_prices_that_overflow() {
	build_and_execute(|| {
		register_err(registration(Balance::MAX / 1000, b"DE"), Error::PriceOverflow);
		let mut reg = registration(1, b"DE");
		reg.prices.egress_per_byte = Balance::MAX / 1000;
		register_err(reg, Error::PriceOverflow);

		// Egress must stay priceable at 10 GiB/s for the whole horizon, not just at 2 GiB/s.
		let horizon = PriceHorizon::get() as Balance;
		let fits_2_gib = Balance::MAX / (horizon * (2 << 30)) - 1;
		let mut reg = registration(1, b"DE");
		reg.prices.egress_per_byte = fits_2_gib;
		register_err(reg, Error::PriceOverflow);
		let fits_10_gib = Balance::MAX / (horizon * (10 << 30));
		let mut reg = registration(1, b"DE");
		reg.prices.egress_per_byte = fits_10_gib;
		assert_ok!(Registry::register_provider(RuntimeOrigin::signed(ALICE), reg));
	});
}

#[test]
fn update_changes_fields_and_keeps_reserved_capacity() {
	build_and_execute(|| {
		register(ALICE, 1);
		assert_ok!(<Registry as CapacityLedger<_>>::reserve(&ALICE, &resources(4000, 1024, 10)));
		let update = ProviderUpdate {
			capacity: Some(CapacityInput {
				resources: resources(4000, 2048, 10),
				gpu_model: bytes(b""),
			}),
			prices: Some(prices(5)),
			rent_discount: Some(Percent::from_percent(50)),
			endpoint: None,
			health_url: Some(bytes(b"http://127.0.0.1:9000/healthz")),
			attestation: Some(None),
		};
		assert_ok!(Registry::update_provider(RuntimeOrigin::signed(ALICE), update));
		let info = Providers::<Test>::get(ALICE).unwrap();
		assert_eq!(info.capacity.resources, resources(4000, 2048, 10));
		assert_eq!(info.prices.cpu_per_millicore_second, 5);
		assert_eq!(info.rent_discount, Percent::from_percent(50));
		assert_eq!(info.health_url.to_vec(), b"http://127.0.0.1:9000/healthz".to_vec());
		assert_eq!(info.attestation, None);
		System::assert_last_event(
			Event::ProviderUpdated { provider: ALICE, attested: false }.into(),
		);

		let shrink = ProviderUpdate {
			capacity: Some(CapacityInput {
				resources: resources(3999, 2048, 10),
				gpu_model: bytes(b""),
			}),
			prices: None,
			rent_discount: None,
			endpoint: None,
			health_url: None,
			attestation: None,
		};
		assert_noop!(
			Registry::update_provider(RuntimeOrigin::signed(ALICE), shrink),
			Error::<Test>::CapacityBelowReserved
		);
	});
}

#[test]
fn update_is_all_or_nothing() {
	build_and_execute(|| {
		register(ALICE, 1);
		let update = ProviderUpdate {
			capacity: None,
			prices: Some(prices(9)),
			rent_discount: None,
			endpoint: None,
			health_url: Some(bytes(b"gopher://nope")),
			attestation: None,
		};
		assert_noop!(
			Registry::update_provider(RuntimeOrigin::signed(ALICE), update),
			Error::<Test>::InvalidHealthUrl
		);
		assert_eq!(Providers::<Test>::get(ALICE).unwrap().prices.cpu_per_millicore_second, 1);
	});
}

#[test]
fn calls_from_non_providers_fail() {
	build_and_execute(|| {
		let update = ProviderUpdate {
			capacity: None,
			prices: None,
			rent_discount: None,
			endpoint: None,
			health_url: None,
			attestation: None,
		};
		let who = RuntimeOrigin::signed(BOB);
		assert_noop!(Registry::update_provider(who.clone(), update), Error::<Test>::NotProvider);
		assert_noop!(Registry::pause_provider(who.clone()), Error::<Test>::NotProvider);
		assert_noop!(Registry::resume_provider(who.clone()), Error::<Test>::NotProvider);
		assert_noop!(Registry::deregister_provider(who), Error::<Test>::NotProvider);
		assert_noop!(
			<Registry as CapacityLedger<_>>::reserve(&BOB, &resources(1, 1, 1)),
			Error::<Test>::NotProvider
		);
	});
}

#[test]
fn pause_and_resume() {
	build_and_execute(|| {
		register(ALICE, 1);
		assert_noop!(
			Registry::resume_provider(RuntimeOrigin::signed(ALICE)),
			Error::<Test>::NotPaused
		);
		assert_ok!(Registry::pause_provider(RuntimeOrigin::signed(ALICE)));
		System::assert_last_event(Event::ProviderPaused { provider: ALICE }.into());
		assert_noop!(
			Registry::pause_provider(RuntimeOrigin::signed(ALICE)),
			Error::<Test>::AlreadyPaused
		);
		assert!(Registry::match_providers(requirements(1000)).is_empty());
		assert_ok!(Registry::resume_provider(RuntimeOrigin::signed(ALICE)));
		System::assert_last_event(Event::ProviderResumed { provider: ALICE }.into());
		assert_eq!(Registry::match_providers(requirements(1000)).len(), 1);
	});
}

#[test]
fn deregister_returns_deposit_unless_deals_are_open() {
	build_and_execute(|| {
		register(ALICE, 1);
		FakeMarket::set_open_deals(ALICE, 2);
		assert_noop!(
			Registry::deregister_provider(RuntimeOrigin::signed(ALICE)),
			Error::<Test>::HasOpenDeals
		);
		FakeMarket::set_open_deals(ALICE, 0);
		let free_before = Balances::free_balance(ALICE);
		assert_ok!(Registry::deregister_provider(RuntimeOrigin::signed(ALICE)));
		assert_eq!(Balances::free_balance(ALICE), free_before + DEPOSIT);
		assert!(Providers::<Test>::get(ALICE).is_none());
		assert_eq!(ProviderCount::<Test>::get(), 0);
		System::assert_last_event(
			Event::ProviderDeregistered { provider: ALICE, deposit_returned: DEPOSIT }.into(),
		);
		// The slot is free again.
		register(ALICE, 1);
	});
}

#[test]
fn allowlist_decides_attestation_when_read() {
	build_and_execute(|| {
		register(ALICE, 1);
		let view = Registry::provider_view(&ALICE).unwrap();
		assert!(!view.attested);

		assert_noop!(
			Registry::allow_measurement(
				RuntimeOrigin::signed(ALICE),
				TeeType::AmdSevSnp,
				bytes(&MEASUREMENT)
			),
			DispatchError::BadOrigin
		);
		assert_ok!(Registry::allow_measurement(
			RuntimeOrigin::root(),
			TeeType::AmdSevSnp,
			bytes(&MEASUREMENT)
		));
		assert!(Registry::provider_view(&ALICE).unwrap().attested);
		assert_noop!(
			Registry::allow_measurement(
				RuntimeOrigin::root(),
				TeeType::AmdSevSnp,
				bytes(&MEASUREMENT)
			),
			Error::<Test>::MeasurementAlreadyAllowed
		);
		// Same measurement from another TEE type is a different entry.
		assert_ok!(Registry::allow_measurement(
			RuntimeOrigin::root(),
			TeeType::IntelTdx,
			bytes(&MEASUREMENT)
		));

		register(BOB, 1);
		System::assert_last_event(
			Event::ProviderRegistered { provider: BOB, deposit: DEPOSIT, attested: true }.into(),
		);

		assert_ok!(Registry::revoke_measurement(
			RuntimeOrigin::root(),
			TeeType::AmdSevSnp,
			bytes(&MEASUREMENT)
		));
		assert!(!Registry::provider_view(&ALICE).unwrap().attested);
		assert_noop!(
			Registry::revoke_measurement(
				RuntimeOrigin::root(),
				TeeType::AmdSevSnp,
				bytes(&MEASUREMENT)
			),
			Error::<Test>::MeasurementNotAllowed
		);
		assert_noop!(
			Registry::allow_measurement(RuntimeOrigin::root(), TeeType::AmdSevSnp, bytes(b"")),
			Error::<Test>::InvalidMeasurement
		);
	});
}

#[test]
fn capacity_ledger_reserves_and_releases() {
	build_and_execute(|| {
		register(ALICE, 1);
		let half = resources(4000, 8192, 50);
		assert_ok!(<Registry as CapacityLedger<_>>::reserve(&ALICE, &half));
		assert_ok!(<Registry as CapacityLedger<_>>::reserve(&ALICE, &half));
		assert_noop!(
			<Registry as CapacityLedger<_>>::reserve(&ALICE, &resources(1, 0, 0)),
			Error::<Test>::InsufficientCapacity
		);
		assert!(Registry::match_providers(requirements(1)).is_empty());
		<Registry as CapacityLedger<_>>::release(&ALICE, &half);
		assert_eq!(Providers::<Test>::get(ALICE).unwrap().free(), half);
	});
}

#[test]
fn match_providers_leaves_out_quarantined_and_weighs_price_by_reputation() {
	build_and_execute(|| {
		register(ALICE, 3);
		register(BOB, 1);
		assert_ok!(Registry::register_provider(
			RuntimeOrigin::signed(CHARLIE),
			registration(2, b"FR")
		));
		let ranked = || -> Vec<_> {
			Registry::match_providers(requirements(1000)).into_iter().map(|m| m.provider).collect()
		};
		FakeSla::set(BOB, true, Permill::one());
		assert_eq!(ranked(), vec![CHARLIE, ALICE], "quarantined providers are not offered");
		FakeSla::set(BOB, false, Permill::one());
		// Per-second quotes: Bob 3078, Charlie 4078, Alice 5078. Charlie at 80% ranks at
		// 4078 x 1.2 = 4894, still before Alice; at 40%, at 4078 x 1.6 = 6525, after her.
		FakeSla::set(CHARLIE, false, Permill::from_percent(80));
		assert_eq!(ranked(), vec![BOB, CHARLIE, ALICE]);
		FakeSla::set(CHARLIE, false, Permill::from_percent(40));
		assert_eq!(ranked(), vec![BOB, ALICE, CHARLIE]);
		let charlie = Registry::match_providers(requirements(1000))
			.into_iter()
			.find(|m| m.provider == CHARLIE);
		assert_eq!(charlie.map(|m| m.reputation), Some(Permill::from_percent(40)));
	});
}

#[test]
fn providers_are_listed_for_probes_in_storage_order() {
	build_and_execute(|| {
		register(ALICE, 1);
		register(BOB, 1);
		register(CHARLIE, 1);
		let all = <Registry as ProbeTargets<_>>::providers_after(None, 10);
		assert_eq!(all.len(), 3);
		let rest = <Registry as ProbeTargets<_>>::providers_after(Some(&all[0]), 10);
		assert_eq!(rest, all[1..].to_vec());
		assert!(<Registry as ProbeTargets<_>>::providers_after(Some(&all[2]), 10).is_empty());
		assert_eq!(<Registry as ProbeTargets<_>>::providers_after(None, 1), all[..1].to_vec());
		assert!(<Registry as ProbeTargets<_>>::health_url(&ALICE).is_some());
		assert!(<Registry as ProbeTargets<_>>::health_url(&DAVE).is_none());
		// A paused provider's running deals are still measured.
		assert_ok!(Registry::pause_provider(RuntimeOrigin::signed(ALICE)));
		assert!(<Registry as ProbeTargets<_>>::health_url(&ALICE).is_some());
	});
}

#[test]
fn match_providers_filters_and_ranks_by_price() {
	build_and_execute(|| {
		register(ALICE, 3);
		register(BOB, 1);
		assert_ok!(Registry::register_provider(
			RuntimeOrigin::signed(CHARLIE),
			registration(2, b"FR")
		));

		let ranked: Vec<_> =
			Registry::match_providers(requirements(1000)).into_iter().map(|m| m.provider).collect();
		assert_eq!(ranked, vec![BOB, CHARLIE, ALICE]);

		// Quote: per second cpu 1*1000 + memory 2*1024 + storage 3*10 = 3078, per hour * 3600.
		let best = &Registry::match_providers(requirements(1000))[0];
		assert_eq!(best.price_per_hour, 3078 * 3600);
		assert_eq!(best.prices, prices(1));

		let mut in_france = requirements(1000);
		in_france.country = Some(*b"FR");
		let only: Vec<_> =
			Registry::match_providers(in_france).into_iter().map(|m| m.provider).collect();
		assert_eq!(only, vec![CHARLIE]);

		let mut cheap = requirements(1000);
		cheap.max_price_per_hour = Some(4078 * 3600);
		assert_eq!(Registry::match_providers(cheap).len(), 2);

		let mut limited = requirements(1000);
		limited.limit = 1;
		assert_eq!(Registry::match_providers(limited)[0].provider, BOB);

		let mut too_big = requirements(8001);
		too_big.limit = 0;
		assert!(Registry::match_providers(too_big).is_empty());

		let mut attested = requirements(1000);
		attested.attested_only = true;
		assert!(Registry::match_providers(attested.clone()).is_empty());
		assert_ok!(Registry::allow_measurement(
			RuntimeOrigin::root(),
			TeeType::AmdSevSnp,
			bytes(&MEASUREMENT)
		));
		assert_eq!(Registry::match_providers(attested).len(), 3);

		let mut gpu = requirements(1000);
		gpu.gpu_model = Some(b"h100".to_vec());
		assert!(Registry::match_providers(gpu).is_empty());
	});
}

#[test]
fn match_providers_finds_gpu_model_case_insensitively() {
	build_and_execute(|| {
		let mut reg = registration(1, b"US");
		reg.capacity.resources.gpus = 4;
		reg.capacity.gpu_model = bytes(b"NVIDIA H100 80GB");
		assert_ok!(Registry::register_provider(RuntimeOrigin::signed(ALICE), reg));
		let mut gpu = requirements(1000);
		gpu.resources.gpus = 2;
		gpu.gpu_model = Some(b"h100".to_vec());
		assert_eq!(Registry::match_providers(gpu.clone())[0].provider, ALICE);
		gpu.resources.gpus = 5;
		assert!(Registry::match_providers(gpu).is_empty());
	});
}

#[test]
fn try_state_catches_broken_accounting() {
	build_and_execute(|| {
		register(ALICE, 1);
		ProviderCount::<Test>::put(5);
		assert!(Registry::do_try_state().is_err());
		ProviderCount::<Test>::put(1);
		Providers::<Test>::mutate(ALICE, |p| p.as_mut().unwrap().deposit = 1);
		assert!(Registry::do_try_state().is_err());
		Providers::<Test>::mutate(ALICE, |p| p.as_mut().unwrap().deposit = DEPOSIT);
	});
}

#[test]
fn integrity_test_passes() {
	build_and_execute(|| {
		<Registry as Hooks<u64>>::integrity_test();
	});
}

#[test]
fn rent_offer_is_whole_capacity_at_the_discount() {
	build_and_execute(|| {
		use podchain_primitives::ProviderCatalog;
		assert_eq!(Registry::rent_offer(&ALICE), None);
		register(ALICE, 10);
		let (capacity, prices) = Registry::rent_offer(&ALICE).unwrap();
		assert_eq!(capacity, resources(8000, 16384, 100));
		// 20% off, rounded up in the provider's favour: 10 -> 8, 2 -> 2 (1.6), 3 -> 3 (2.4).
		assert_eq!(prices.cpu_per_millicore_second, 8);
		assert_eq!(prices.memory_per_mib_second, 2);
		assert_eq!(prices.storage_per_gib_second, 3);
		assert_eq!(prices.egress_per_byte, 1);
		assert_ok!(Registry::pause_provider(RuntimeOrigin::signed(ALICE)));
		assert_eq!(Registry::rent_offer(&ALICE), None);
	});
}

#[test]
fn rented_providers_are_not_offered() {
	build_and_execute(|| {
		register(ALICE, 1);
		assert_eq!(Registry::match_providers(requirements(1000)).len(), 1);
		FakeMarket::set_rented(ALICE);
		assert!(Registry::match_providers(requirements(1000)).is_empty());
	});
}
