//! Rents: a provider rented whole, and the renter's deployments inside the rent.

use super::*;

/// The mock provider's whole capacity.
fn whole() -> Resources {
	Resources { cpu_millicores: 1000, memory_mib: 100, storage_gib: 10, gpus: 0 }
}

/// List prices large enough that the 10% rent discount shows: 10, 10, 20 and 10 per unit.
fn list_prices() -> Prices<Balance> {
	Prices {
		cpu_per_millicore_second: 10,
		memory_per_mib_second: 10,
		storage_per_gib_second: 20,
		gpu_per_second: 0,
		egress_per_byte: 10,
	}
}

/// `list_prices` with 10% off.
fn rent_prices() -> Prices<Balance> {
	Prices {
		cpu_per_millicore_second: 9,
		memory_per_mib_second: 9,
		storage_per_gib_second: 18,
		gpu_per_second: 0,
		egress_per_byte: 9,
	}
}

/// Rent of the whole provider for one 6 s block at `rent_prices`: (9000 + 900 + 180) * 6.
const RENT_PER_BLOCK: Balance = 60_480;

fn set_list_prices() {
	assert_ok!(set_prices(PROVIDER, list_prices()));
}

fn rent(deposit: Balance) -> DeploymentId {
	set_list_prices();
	let id = NextDeploymentId::<Test>::get();
	assert_ok!(Market::create_rent(RuntimeOrigin::signed(PUBLISHER), PROVIDER, limits(), deposit));
	id
}

fn active_rent(deposit: Balance) -> DeploymentId {
	let id = rent(deposit);
	assert_ok!(Market::accept_deployment(RuntimeOrigin::signed(PROVIDER), id));
	id
}

fn in_use(rent: DeploymentId) -> Resources {
	match Deployments::<Test>::get(rent).unwrap().kind {
		DealKind::Rent { in_use, .. } => in_use,
		kind => panic!("not a rent: {kind:?}"),
	}
}

fn closed_reason(id: DeploymentId) -> Option<CloseReason> {
	System::events().into_iter().find_map(|record| match record.event {
		RuntimeEvent::Market(Event::DeploymentClosed { id: closed, reason, .. })
			if closed == id =>
		{
			Some(reason)
		}
		_ => None,
	})
}

#[test]
fn create_rent_locks_whole_capacity_at_the_discount() {
	build_and_execute(|| {
		let id = rent(1_000_000);
		let deal = Deployments::<Test>::get(id).unwrap();
		assert_eq!(deal.resources, whole());
		assert_eq!(deal.prices, rent_prices());
		assert_eq!(deal.billing, BillingMode::Reserved);
		assert!(deal.is_rent());
		assert_eq!(escrow_held(PUBLISHER), 1_000_000);
		System::assert_last_event(
			Event::RentCreated {
				id,
				renter: PUBLISHER,
				provider: PROVIDER,
				resources: whole(),
				deposit: 1_000_000,
			}
			.into(),
		);
		// The provider is rented once it accepts; the registry stops offering it then.
		use podchain_primitives::ProviderDeals;
		assert!(!Market::is_rented(&PROVIDER));
		assert_ok!(Market::accept_deployment(RuntimeOrigin::signed(PROVIDER), id));
		assert_eq!(Rents::<Test>::get(PROVIDER), Some(id));
		assert!(Market::is_rented(&PROVIDER));
	});
}

#[test]
fn a_pending_rent_does_not_lock_the_provider() {
	build_and_execute(|| {
		let id = rent(1_000_000);
		assert_ok!(Market::create_deployment(
			RuntimeOrigin::signed(OTHER_PUBLISHER),
			PROVIDER,
			MANIFEST,
			small(),
			BillingMode::Metered,
			None,
			limits(),
			10_000,
		));
		// The rent needs the provider to itself: it can only be rejected now.
		assert_noop!(
			Market::accept_deployment(RuntimeOrigin::signed(PROVIDER), id),
			Error::<Test>::ProviderBusy
		);
		assert_ok!(Market::reject_deployment(RuntimeOrigin::signed(PROVIDER), id));
		assert_eq!(closed_reason(id), Some(CloseReason::Rejected));
	});
}

#[test]
fn create_rent_refuses_bad_input() {
	build_and_execute(|| {
		let go = |provider, deposit| {
			Market::create_rent(RuntimeOrigin::signed(PUBLISHER), provider, limits(), deposit)
		};
		assert_noop!(go(PUBLISHER, 1_000), Error::<Test>::ProviderUnavailable);
		assert_noop!(go(PROVIDER, 99), Error::<Test>::DepositTooLow);
		assert_noop!(go(PROVIDER, ENDOWMENT), Error::<Test>::InsufficientBalance);
		// A provider with a deal cannot be rented.
		create(BillingMode::Reserved, 1_000);
		assert_noop!(go(PROVIDER, 1_000), Error::<Test>::ProviderBusy);
		// Nor one rented already.
		assert_ok!(go(OTHER_PROVIDER, RENT_PER_BLOCK));
		assert_noop!(
			Market::create_rent(
				RuntimeOrigin::signed(OTHER_PUBLISHER),
				OTHER_PROVIDER,
				limits(),
				1_000
			),
			Error::<Test>::ProviderBusy
		);
		// A paused provider takes no rent.
		assert_ok!(Registry::pause_provider(RuntimeOrigin::signed(PROVIDER)));
		assert_noop!(
			Market::create_rent(RuntimeOrigin::signed(OTHER_PUBLISHER), PROVIDER, limits(), 1_000),
			Error::<Test>::ProviderUnavailable
		);
	});
}

#[test]
fn others_cannot_place_deals_on_a_rented_provider() {
	build_and_execute(|| {
		let rent = active_rent(RENT_PER_BLOCK);
		assert_noop!(
			Market::create_deployment(
				RuntimeOrigin::signed(OTHER_PUBLISHER),
				PROVIDER,
				MANIFEST,
				small(),
				BillingMode::Reserved,
				None,
				limits(),
				1_000,
			),
			Error::<Test>::ProviderRented
		);
		let place = |billing| {
			Market::create_deployment(
				RuntimeOrigin::signed(PUBLISHER),
				PROVIDER,
				MANIFEST,
				small(),
				billing,
				None,
				limits(),
				1_000,
			)
		};
		// Inside a rent only egress is paid, and egress is metered.
		assert_noop!(place(BillingMode::Reserved), Error::<Test>::MeteredOnlyInRent);
		// A rent out of funds takes no new deployments.
		run_to_block(3);
		assert_ok!(Market::settle(RuntimeOrigin::signed(PUBLISHER), rent));
		assert_noop!(place(BillingMode::Metered), Error::<Test>::RentNotActive);
	});
}

#[test]
fn accepted_rent_reserves_everything_and_bills_the_discounted_price() {
	build_and_execute(|| {
		let id = active_rent(1_000_000);
		assert_eq!(reserved(PROVIDER), whole());
		run_to_block(11);
		assert_ok!(Market::settle(RuntimeOrigin::signed(OTHER_PUBLISHER), id));
		let bill = Market::bill(id).unwrap();
		assert_eq!(bill.total, 10 * RENT_PER_BLOCK);
		assert_eq!(Balances::balance(&PROVIDER), ENDOWMENT - 1_000 + 10 * RENT_PER_BLOCK);
	});
}

#[test]
fn deployments_in_a_rent_use_its_capacity_and_pay_only_egress() {
	build_and_execute(|| {
		let rent = active_rent(1_000_000);
		let metered = create_active(BillingMode::Metered, 10_000);
		let other = create_active(BillingMode::Metered, 10_000);
		for id in [metered, other] {
			let deal = Deployments::<Test>::get(id).unwrap();
			assert_eq!(deal.kind, DealKind::InRent { rent });
			assert_eq!(deal.prices, Prices { egress_per_byte: 9, ..Default::default() });
		}
		// The rent holds the registry's capacity; its deployments take theirs from the rent.
		assert_eq!(reserved(PROVIDER), whole());
		assert_eq!(in_use(rent), small().checked_add(&small()).unwrap());

		run_to_block(3);
		submit(vec![report(metered, 1, 3)]);
		let bill = Market::bill(metered).unwrap();
		assert_eq!(bill.charged, Charges { egress: 9 * 100, ..Default::default() });
	});
}

#[test]
fn a_rent_holds_only_what_fits() {
	build_and_execute(|| {
		let rent = active_rent(1_000_000);
		let big = Resources { cpu_millicores: 600, ..small() };
		let place = |resources| {
			Market::create_deployment(
				RuntimeOrigin::signed(PUBLISHER),
				PROVIDER,
				MANIFEST,
				resources,
				BillingMode::Metered,
				None,
				limits(),
				1_000,
			)
		};
		let too_big = Resources { cpu_millicores: 1001, ..small() };
		assert_noop!(place(too_big), Error::<Test>::InsufficientRentCapacity);
		let first = NextDeploymentId::<Test>::get();
		assert_ok!(place(big));
		assert_ok!(place(big));
		assert_ok!(Market::accept_deployment(RuntimeOrigin::signed(PROVIDER), first));
		assert_noop!(
			Market::accept_deployment(RuntimeOrigin::signed(PROVIDER), first + 1),
			Error::<Test>::InsufficientRentCapacity
		);
		assert_eq!(in_use(rent), big);
		// Closing the first frees its share for the second.
		assert_ok!(Market::close_deployment(
			RuntimeOrigin::signed(PUBLISHER),
			first,
			CloseReason::PublisherRequest
		));
		assert_ok!(Market::accept_deployment(RuntimeOrigin::signed(PROVIDER), first + 1));
	});
}

#[test]
fn a_rent_holds_a_bounded_number_of_deployments() {
	build_and_execute(|| {
		active_rent(1_000_000);
		let tiny = Resources { cpu_millicores: 1, memory_mib: 0, storage_gib: 0, gpus: 0 };
		let place = || {
			Market::create_deployment(
				RuntimeOrigin::signed(PUBLISHER),
				PROVIDER,
				MANIFEST,
				tiny,
				BillingMode::Metered,
				None,
				limits(),
				100,
			)
		};
		for _ in 0..MAX_DEPLOYMENTS_PER_RENT {
			assert_ok!(place());
		}
		assert_noop!(place(), Error::<Test>::RentFull);
	});
}

#[test]
fn closing_a_rent_ends_its_deployments() {
	build_and_execute(|| {
		let rent = active_rent(1_000_000);
		let metered = create_active(BillingMode::Metered, 10_000);
		let pending = create(BillingMode::Metered, 10_000);
		assert_ok!(Market::register_name(
			RuntimeOrigin::signed(PUBLISHER),
			pending,
			b"web".to_vec().try_into().unwrap()
		));
		run_to_block(4);

		assert_ok!(Market::close_deployment(
			RuntimeOrigin::signed(PUBLISHER),
			rent,
			CloseReason::PublisherRequest
		));
		assert_eq!(closed_reason(rent), Some(CloseReason::PublisherRequest));
		assert_eq!(closed_reason(pending), Some(CloseReason::RentEnded));
		assert!(Names::<Test>::iter().next().is_none());
		assert_eq!(Rents::<Test>::get(PROVIDER), None);
		assert_eq!(reserved(PROVIDER), Resources::default());
		// The metered one waits for its last egress report.
		assert!(matches!(
			Deployments::<Test>::get(metered).unwrap().state,
			DeploymentState::Closing { closed_at: 4, reason: CloseReason::RentEnded, .. }
		));
		submit(vec![report(metered, 1, 4)]);
		assert_eq!(closed_reason(metered), Some(CloseReason::RentEnded));
		assert_eq!(escrow_held(PUBLISHER), 0);
		assert_eq!(OpenDeals::<Test>::get(PROVIDER), 0);
		// The provider is open to everyone again.
		assert_ok!(Market::create_deployment(
			RuntimeOrigin::signed(OTHER_PUBLISHER),
			PROVIDER,
			MANIFEST,
			small(),
			BillingMode::Reserved,
			None,
			limits(),
			10_000,
		));
	});
}

#[test]
fn a_rent_out_of_funds_ends_with_its_deployments_after_grace() {
	build_and_execute(|| {
		let rent = active_rent(RENT_PER_BLOCK * 2);
		let child = create_active(BillingMode::Metered, 1_000);
		run_to_block(5);
		assert_ok!(Market::settle(RuntimeOrigin::signed(OTHER_PUBLISHER), rent));
		let DeploymentState::OutOfFunds { grace_ends, .. } =
			Deployments::<Test>::get(rent).unwrap().state
		else {
			panic!("the rent ran out of funds");
		};
		run_to_block(grace_ends);
		assert_eq!(closed_reason(rent), Some(CloseReason::OutOfFunds));
		assert_eq!(reserved(PROVIDER), Resources::default());
		// Its metered deployment gets the settlement window for a last egress report.
		let DeploymentState::Closing { settle_by, .. } =
			Deployments::<Test>::get(child).unwrap().state
		else {
			panic!("the deployment is closing");
		};
		run_to_block(settle_by);
		assert_eq!(closed_reason(child), Some(CloseReason::RentEnded));
		assert_eq!(Deployments::<Test>::iter().count(), 0);
	});
}

#[test]
fn a_rent_is_not_a_deployment() {
	build_and_execute(|| {
		let rent = active_rent(1_000_000);
		let publisher = RuntimeOrigin::signed(PUBLISHER);
		assert_noop!(
			Market::update_manifest(publisher.clone(), rent, [9; 32]),
			Error::<Test>::NotADeployment
		);
		assert_noop!(
			Market::register_name(publisher, rent, b"web".to_vec().try_into().unwrap()),
			Error::<Test>::NotADeployment
		);
		let provider = RuntimeOrigin::signed(PROVIDER);
		for reason in [CloseReason::ManifestTimeout, CloseReason::RentEnded] {
			assert_noop!(
				Market::close_deployment(provider.clone(), rent, reason),
				Error::<Test>::InvalidCloseReason
			);
		}
		// The provider cannot leave while rented.
		assert_noop!(
			Registry::deregister_provider(provider),
			pallet_registry::Error::<Test>::HasOpenDeals
		);
	});
}

#[test]
fn nobody_ends_a_deployment_as_if_its_rent_ended() {
	build_and_execute(|| {
		active_rent(1_000_000);
		let child = create_active(BillingMode::Metered, 1_000);
		for who in [PUBLISHER, PROVIDER] {
			assert_noop!(
				Market::close_deployment(RuntimeOrigin::signed(who), child, CloseReason::RentEnded),
				Error::<Test>::InvalidCloseReason
			);
		}
	});
}
