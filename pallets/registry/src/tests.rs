use crate::{mock::*, *};
use frame_support::{
	assert_noop, assert_ok,
	traits::{fungible::InspectHold, Hooks},
};
use sp_runtime::{DispatchError, Percent, Permill};

const PEER: &[u8] = b"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";

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
		gateway_url: bytes(b"https://gw.provider.example"),
		ingress_domain: bytes(b"apps.provider.example"),
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
			Event::ProviderRegistered { provider: ALICE, deposit: DEPOSIT }.into(),
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
fn register_refuses_bad_urls() {
	build_and_execute(|| {
		let mut reg = registration(1, b"DE");
		reg.gateway_url = bytes(b"provider.example/gateway");
		register_err(reg, Error::InvalidGatewayUrl);

		let mut reg = registration(1, b"DE");
		reg.gateway_url = bytes(b"https://provider.example/?x=1");
		register_err(reg, Error::InvalidGatewayUrl);

		let mut reg = registration(1, b"DE");
		let long = [b"https://p.example/".as_slice(), &[b'a'; MAX_URL_LEN as usize]].concat();
		reg.gateway_url = bytes(&long);
		register_err(reg, Error::InvalidGatewayUrl);

		for bad in [&b""[..], b"Apps.example", b"apps..example", b"10.0.0.1", b"a_b.example"] {
			let mut reg = registration(1, b"DE");
			reg.ingress_domain = bytes(bad);
			register_err(reg, Error::InvalidIngressDomain);
		}
		let mut reg = registration(1, b"DE");
		reg.ingress_domain = bytes(&[b'a'; MAX_DOMAIN_LEN as usize + 1]);
		register_err(reg, Error::InvalidIngressDomain);
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
			gateway_url: Some(bytes(b"http://127.0.0.1:9000")),
			ingress_domain: Some(bytes(b"apps.alice.test")),
		};
		assert_ok!(Registry::update_provider(RuntimeOrigin::signed(ALICE), update));
		let info = Providers::<Test>::get(ALICE).unwrap();
		assert_eq!(info.capacity.resources, resources(4000, 2048, 10));
		assert_eq!(info.prices.cpu_per_millicore_second, 5);
		assert_eq!(info.rent_discount, Percent::from_percent(50));
		assert_eq!(info.gateway_url.to_vec(), b"http://127.0.0.1:9000".to_vec());
		assert_eq!(info.ingress_domain.to_vec(), b"apps.alice.test".to_vec());
		System::assert_last_event(Event::ProviderUpdated { provider: ALICE }.into());

		let shrink = ProviderUpdate {
			capacity: Some(CapacityInput {
				resources: resources(3999, 2048, 10),
				gpu_model: bytes(b""),
			}),
			prices: None,
			rent_discount: None,
			endpoint: None,
			gateway_url: None,
			ingress_domain: None,
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
			gateway_url: Some(bytes(b"gopher://nope")),
			ingress_domain: None,
		};
		assert_noop!(
			Registry::update_provider(RuntimeOrigin::signed(ALICE), update),
			Error::<Test>::InvalidGatewayUrl
		);
		let update = ProviderUpdate {
			capacity: None,
			prices: Some(prices(9)),
			rent_discount: None,
			endpoint: None,
			gateway_url: None,
			ingress_domain: Some(bytes(b"UPPER.example")),
		};
		assert_noop!(
			Registry::update_provider(RuntimeOrigin::signed(ALICE), update),
			Error::<Test>::InvalidIngressDomain
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
			gateway_url: None,
			ingress_domain: None,
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
		assert_eq!(FakeSla::forgotten(), vec![ALICE], "the SLA pallet forgets its record");
		// The slot is free again.
		register(ALICE, 1);
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
fn probers_reach_providers_through_their_gateway() {
	build_and_execute(|| {
		register(ALICE, 1);
		assert_eq!(
			<Registry as ProbeTargets<_>>::gateway(&ALICE),
			Some((b"https://gw.provider.example".to_vec(), b"apps.provider.example".to_vec()))
		);
		assert!(<Registry as ProbeTargets<_>>::gateway(&DAVE).is_none());
		// A paused provider's running deals are still measured.
		assert_ok!(Registry::pause_provider(RuntimeOrigin::signed(ALICE)));
		assert!(<Registry as ProbeTargets<_>>::gateway(&ALICE).is_some());
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
		allow_measurement();
		assert_ok!(attest(BOB));
		let matches = Registry::match_providers(attested);
		assert_eq!(
			matches.iter().map(|m| (m.provider, m.attested)).collect::<Vec<_>>(),
			[(BOB, true)]
		);

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

mod attestation {
	use super::*;
	use frame_support::BoundedVec;
	use sp_runtime::DispatchResult;

	const SEALING_KEY: [u8; 32] = [5; 32];
	const DAY: u64 = 86_400;

	fn collateral() -> Collateral {
		let field = || vec![1u8; 8].try_into().unwrap();
		Collateral {
			pck_crl_issuer_chain: field(),
			root_ca_crl: field(),
			pck_crl: field(),
			tcb_info_issuer_chain: field(),
			tcb_info: field(),
			tcb_info_signature: field(),
			qe_identity_issuer_chain: field(),
			qe_identity: field(),
			qe_identity_signature: field(),
			pck_certificate_chain: None,
		}
	}

	/// Report data committing to `who`, `peer` and `key`, as the provider's TEE would write it.
	fn bound(who: AccountId, peer: &[u8], key: &[u8; 32]) -> [u8; 64] {
		let mut report_data = [0xaa; 64];
		report_data[..32].copy_from_slice(&podchain_attestation::binding(&who, peer, key));
		report_data
	}

	/// `who` submits a quote the verifier reports as `verified`.
	fn submit(who: AccountId, verified: VerifiedQuote, key: [u8; 32]) -> DispatchResult {
		FakeVerifier::report(Ok(verified));
		let quote = vec![1u8; 100].try_into().unwrap();
		Registry::attest(RuntimeOrigin::signed(who), quote, collateral(), key)
	}

	/// `who` attests with a quote bound to its account, peer id and [`SEALING_KEY`].
	pub(super) fn attest(who: AccountId) -> DispatchResult {
		submit(who, sample_verified(&bound(who, PEER, &SEALING_KEY)), SEALING_KEY)
	}

	pub(super) fn allow_measurement() {
		assert_ok!(Registry::allow_measurement(
			RuntimeOrigin::root(),
			TeeType::IntelTdx,
			bytes(&MEASUREMENT)
		));
	}

	fn attested(who: AccountId) -> bool {
		Registry::provider_view(&who).unwrap().attested
	}

	#[test]
	fn a_verified_bound_quote_attests_until_its_collateral_expires() {
		build_and_execute(|| {
			register(ALICE, 1);
			allow_measurement();
			assert!(!attested(ALICE));
			assert_ok!(attest(ALICE));
			let expires_at = START_TIME + 10 * DAY;
			System::assert_last_event(
				Event::ProviderAttested {
					provider: ALICE,
					tee: TeeType::IntelTdx,
					measurement: MEASUREMENT.to_vec().try_into().unwrap(),
					tcb_status: TcbStatus::UpToDate,
					expires_at,
				}
				.into(),
			);
			let record = Providers::<Test>::get(ALICE).unwrap().attestation.unwrap();
			assert_eq!(
				(
					record.sealing_key,
					record.verified_at,
					record.verified_in_block,
					record.expires_at
				),
				(SEALING_KEY, START_TIME, 1, expires_at)
			);
			assert!(attested(ALICE));
			// Judged when read: the second it expires, it no longer counts, anywhere.
			Clock::set(expires_at - 1);
			assert!(attested(ALICE));
			Clock::set(expires_at);
			assert!(!attested(ALICE));
			let mut only_attested = requirements(1000);
			only_attested.attested_only = true;
			assert!(Registry::match_providers(only_attested).is_empty());
			// A fresh quote attests again.
			Clock::set(expires_at + DAY);
			let mut verified = sample_verified(&bound(ALICE, PEER, &SEALING_KEY));
			verified.collateral_expires_at = expires_at + 20 * DAY;
			assert_ok!(submit(ALICE, verified, SEALING_KEY));
			assert!(attested(ALICE));
		});
	}

	#[test]
	fn long_lived_collateral_counts_for_max_attestation_age_at_most() {
		build_and_execute(|| {
			register(ALICE, 1);
			allow_measurement();
			let mut verified = sample_verified(&bound(ALICE, PEER, &SEALING_KEY));
			verified.collateral_expires_at = START_TIME + 365 * DAY;
			assert_ok!(submit(ALICE, verified.clone(), SEALING_KEY));
			let record = Providers::<Test>::get(ALICE).unwrap().attestation.unwrap();
			assert_eq!(record.expires_at, START_TIME + 30 * DAY);
			// Collateral already past its date is refused even if the verifier let it by.
			verified.collateral_expires_at = START_TIME;
			assert_noop!(submit(ALICE, verified, SEALING_KEY), Error::<Test>::CollateralExpired);
		});
	}

	#[test]
	fn every_verification_failure_has_its_named_error_and_changes_nothing() {
		build_and_execute(|| {
			register(ALICE, 1);
			allow_measurement();
			for (failure, error) in [
				(QuoteError::Malformed, Error::<Test>::QuoteMalformed),
				(QuoteError::InvalidCollateral, Error::<Test>::CollateralInvalid),
				(QuoteError::CollateralExpired, Error::<Test>::CollateralExpired),
				(QuoteError::CollateralNotYetValid, Error::<Test>::CollateralNotYetValid),
				(QuoteError::Untrusted, Error::<Test>::QuoteUntrusted),
			] {
				FakeVerifier::report(Err(failure));
				let quote: QuoteBytes = vec![1u8; 100].try_into().unwrap();
				assert_noop!(
					Registry::attest(
						RuntimeOrigin::signed(ALICE),
						quote,
						collateral(),
						SEALING_KEY
					),
					error
				);
			}
			assert_eq!(Providers::<Test>::get(ALICE).unwrap().attestation, None);
		});
	}

	#[test]
	fn a_quote_made_for_someone_or_something_else_is_refused() {
		build_and_execute(|| {
			register(ALICE, 1);
			register(BOB, 1);
			allow_measurement();
			// Bob's genuine quote, copied by Alice.
			let bobs = sample_verified(&bound(BOB, PEER, &SEALING_KEY));
			assert_noop!(
				submit(ALICE, bobs.clone(), SEALING_KEY),
				Error::<Test>::AttestationBindingMismatch
			);
			assert_ok!(submit(BOB, bobs, SEALING_KEY));
			// Alice's quote for another agent, or for another sealing key than the one given.
			let other_peer = b"12D3KooWHHzSeKaY8xuZVzkLbKFfvNgPPeKhFBGrMbNzbm5akpqu";
			let for_other_peer = sample_verified(&bound(ALICE, other_peer, &SEALING_KEY));
			assert_noop!(
				submit(ALICE, for_other_peer, SEALING_KEY),
				Error::<Test>::AttestationBindingMismatch
			);
			let for_other_key = sample_verified(&bound(ALICE, PEER, &[6; 32]));
			assert_noop!(
				submit(ALICE, for_other_key, SEALING_KEY),
				Error::<Test>::AttestationBindingMismatch
			);
			// Strangers attest nothing, whatever their quote.
			assert_noop!(
				submit(CHARLIE, sample_verified(&bound(CHARLIE, PEER, &SEALING_KEY)), SEALING_KEY),
				Error::<Test>::NotProvider
			);
		});
	}

	#[test]
	fn the_measurement_must_be_allowed_when_attesting_and_whenever_read() {
		build_and_execute(|| {
			register(ALICE, 1);
			assert_noop!(attest(ALICE), Error::<Test>::MeasurementNotAllowed);
			assert_noop!(
				Registry::allow_measurement(
					RuntimeOrigin::signed(ALICE),
					TeeType::IntelTdx,
					bytes(&MEASUREMENT)
				),
				DispatchError::BadOrigin
			);
			allow_measurement();
			assert_noop!(
				Registry::allow_measurement(
					RuntimeOrigin::root(),
					TeeType::IntelTdx,
					bytes(&MEASUREMENT)
				),
				Error::<Test>::MeasurementAlreadyAllowed
			);
			assert_ok!(attest(ALICE));
			assert!(attested(ALICE));
			// The same measurement reported by SGX is another entry.
			assert_ok!(Registry::allow_measurement(
				RuntimeOrigin::root(),
				TeeType::IntelSgx,
				bytes(&MEASUREMENT)
			));
			assert_ok!(Registry::revoke_measurement(
				RuntimeOrigin::root(),
				TeeType::IntelTdx,
				bytes(&MEASUREMENT)
			));
			assert!(!attested(ALICE), "revoking unattests at once");
			assert_noop!(
				Registry::revoke_measurement(
					RuntimeOrigin::root(),
					TeeType::IntelTdx,
					bytes(&MEASUREMENT)
				),
				Error::<Test>::MeasurementNotAllowed
			);
			allow_measurement();
			assert!(attested(ALICE), "and allowing again restores it");
			for bad in [&[][..], &[1; 241][..]] {
				assert_noop!(
					Registry::allow_measurement(
						RuntimeOrigin::root(),
						TeeType::IntelTdx,
						bytes(bad)
					),
					Error::<Test>::InvalidMeasurement
				);
			}
		});
	}

	#[test]
	fn only_tcb_statuses_root_accepts_count_and_revoked_never_does() {
		build_and_execute(|| {
			register(ALICE, 1);
			allow_measurement();
			let mut verified = sample_verified(&bound(ALICE, PEER, &SEALING_KEY));
			verified.tcb_status = TcbStatus::SWHardeningNeeded;
			assert_noop!(
				submit(ALICE, verified.clone(), SEALING_KEY),
				Error::<Test>::TcbStatusNotAllowed
			);
			let both: BoundedVec<_, _> =
				vec![TcbStatus::UpToDate, TcbStatus::SWHardeningNeeded].try_into().unwrap();
			assert_noop!(
				Registry::set_tcb_policy(RuntimeOrigin::signed(ALICE), both.clone()),
				DispatchError::BadOrigin
			);
			assert_ok!(Registry::set_tcb_policy(RuntimeOrigin::root(), both));
			assert_ok!(submit(ALICE, verified.clone(), SEALING_KEY));
			assert!(attested(ALICE));
			// Narrowing the policy unattests at once.
			let strict: BoundedVec<_, _> = vec![TcbStatus::UpToDate].try_into().unwrap();
			assert_ok!(Registry::set_tcb_policy(RuntimeOrigin::root(), strict));
			assert!(!attested(ALICE));
			// Revoked is never accepted, even when asked for.
			let all: BoundedVec<_, _> = TcbStatus::ALL.to_vec().try_into().unwrap();
			assert_ok!(Registry::set_tcb_policy(RuntimeOrigin::root(), all));
			verified.tcb_status = TcbStatus::Revoked;
			assert_noop!(submit(ALICE, verified, SEALING_KEY), Error::<Test>::TcbStatusNotAllowed);
		});
	}

	#[test]
	fn a_new_peer_id_drops_the_attestation_a_new_address_does_not() {
		build_and_execute(|| {
			register(ALICE, 1);
			allow_measurement();
			assert_ok!(attest(ALICE));
			let update = |peer: &[u8], addr: &[u8]| ProviderUpdate {
				capacity: None,
				prices: None,
				rent_discount: None,
				endpoint: Some(EndpointInput {
					peer_id: bytes(peer),
					multiaddrs: vec![bytes(addr)].try_into().unwrap(),
				}),
				gateway_url: None,
				ingress_domain: None,
			};
			assert_ok!(Registry::update_provider(
				RuntimeOrigin::signed(ALICE),
				update(PEER, b"/ip4/203.0.113.8/tcp/4001")
			));
			assert!(attested(ALICE), "same agent, new address");
			let other_peer = b"12D3KooWHHzSeKaY8xuZVzkLbKFfvNgPPeKhFBGrMbNzbm5akpqu";
			assert_ok!(Registry::update_provider(
				RuntimeOrigin::signed(ALICE),
				update(other_peer, b"/ip4/203.0.113.8/tcp/4001")
			));
			assert!(!attested(ALICE));
			assert_eq!(Providers::<Test>::get(ALICE).unwrap().attestation, None);
			System::assert_has_event(Event::AttestationDropped { provider: ALICE }.into());
			// The old quote bound the old peer id: it cannot restore the attestation.
			assert_noop!(attest(ALICE), Error::<Test>::AttestationBindingMismatch);
			let rebound = sample_verified(&bound(ALICE, other_peer, &SEALING_KEY));
			assert_ok!(submit(ALICE, rebound, SEALING_KEY));
			assert!(attested(ALICE));
		});
	}

	#[test]
	fn try_state_catches_an_attestation_that_outlives_its_bounds() {
		build_and_execute(|| {
			register(ALICE, 1);
			allow_measurement();
			assert_ok!(attest(ALICE));
			Providers::<Test>::mutate(ALICE, |info| {
				let a = info.as_mut().unwrap().attestation.as_mut().unwrap();
				a.expires_at = a.verified_at + 31 * DAY;
			});
			assert!(Registry::do_try_state().is_err());
			Providers::<Test>::mutate(ALICE, |info| {
				let a = info.as_mut().unwrap().attestation.as_mut().unwrap();
				a.expires_at = a.verified_at + DAY;
			});
			assert_ok!(Registry::do_try_state());
		});
	}
}

use attestation::{allow_measurement, attest};
