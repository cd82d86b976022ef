//! Rents: a publisher renting a provider whole, and the renter's deployments inside the rent.

use crate::{escrow::Payout, *};
use frame_support::{ensure, pallet_prelude::*};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::traits::Zero;

impl<T: Config> Pallet<T> {
	pub(crate) fn do_create_rent(
		renter: T::AccountId,
		provider: T::AccountId,
		limits: DealLimits<BalanceOf<T>>,
		deposit: BalanceOf<T>,
	) -> DispatchResult {
		let (resources, prices) =
			T::Providers::rent_offer(&provider).ok_or(Error::<T>::ProviderUnavailable)?;
		// Checked again at acceptance; refusing early saves the renter a deposit round trip.
		// Open deals include a pending rent, so this also refuses a second one.
		ensure!(OpenDeals::<T>::get(&provider) == 0, Error::<T>::ProviderBusy);
		ensure!(resources.has_compute(), Error::<T>::ZeroResources);
		ensure!(limits.admits(&prices, &resources), Error::<T>::PriceAboveLimit);
		Self::check_egress_limit(&limits)?;

		let id = NextDeploymentId::<T>::get();
		let now = frame_system::Pallet::<T>::block_number();
		let rent = Deployment {
			publisher: renter.clone(),
			provider: provider.clone(),
			kind: DealKind::Rent { deployments: Default::default(), in_use: Resources::default() },
			manifest_hash: [0; 32],
			pending_manifest: None,
			resources,
			billing: BillingMode::Reserved,
			sla: None,
			prices,
			state: DeploymentState::Pending { created_at: now },
			escrow: deposit,
			settled_until: now,
			charged: Charges::default(),
			debt: Zero::zero(),
			egress_limit: limits.max_egress_bytes_per_second,
		};
		Self::check_deposit(&rent)?;
		Self::take_into_escrow(&renter, deposit)?;
		NextDeploymentId::<T>::put(id.saturating_add(1));
		// `Rents` is written at acceptance: a pending rent does not lock the provider.
		Self::index_deal(id, &renter, &provider);
		Deployments::<T>::insert(id, rent);
		Self::deposit_event(Event::RentCreated { id, renter, provider, resources, deposit });
		Ok(())
	}

	/// Checks that `publisher` may place a deployment of `resources` in rent `rent_id` and
	/// returns the prices it pays there: the rent's egress price, nothing else. Egress is
	/// measured, so only metered deployments can run in a rent.
	pub(crate) fn prices_in_rent(
		rent_id: DeploymentId,
		publisher: &T::AccountId,
		resources: &Resources,
		billing: BillingMode,
	) -> Result<Prices<BalanceOf<T>>, DispatchError> {
		let rent = Deployments::<T>::get(rent_id).ok_or(Error::<T>::ProviderRented)?;
		ensure!(&rent.publisher == publisher, Error::<T>::ProviderRented);
		ensure!(billing == BillingMode::Metered, Error::<T>::MeteredOnlyInRent);
		ensure!(matches!(rent.state, DeploymentState::Active { .. }), Error::<T>::RentNotActive);
		let DealKind::Rent { deployments, .. } = &rent.kind else {
			return Err(Error::<T>::ProviderRented.into());
		};
		ensure!(deployments.len() < MAX_DEPLOYMENTS_PER_RENT as usize, Error::<T>::RentFull);
		ensure!(resources.fits_in(&rent.resources), Error::<T>::InsufficientRentCapacity);
		Ok(Prices { egress_per_byte: rent.prices.egress_per_byte, ..Default::default() })
	}

	/// Changes the deployment list and the capacity in use of rent `rent_id`, if it is still
	/// open.
	fn update_rent(
		rent_id: DeploymentId,
		change: impl FnOnce(&mut RentDeployments, &mut Resources),
	) {
		Deployments::<T>::mutate(rent_id, |rent| {
			if let Some(DealKind::Rent { deployments, in_use }) = rent.as_mut().map(|r| &mut r.kind)
			{
				change(deployments, in_use);
			}
		});
	}

	/// Records deployment `id` in its rent. [`Self::prices_in_rent`] checked there is room.
	pub(crate) fn join_rent(rent_id: DeploymentId, id: DeploymentId) {
		let mut joined = false;
		Self::update_rent(rent_id, |deployments, _| joined = deployments.try_push(id).is_ok());
		if !joined {
			defensive!("a rent was checked to have room for the deployment");
		}
	}

	/// Drops deployment `id` from its rent's list, if the rent is still open.
	fn leave_rent(rent_id: DeploymentId, id: DeploymentId) {
		Self::update_rent(rent_id, |deployments, _| deployments.retain(|d| *d != id));
	}

	/// Reserves an accepted deal's resources: a plain deployment from the registry, a
	/// deployment in a rent from the rent. A rent takes the whole provider, which must then
	/// hold no other deal, and from now on keeps everyone else off it.
	pub(crate) fn reserve_capacity(id: DeploymentId, deal: &DeploymentOf<T>) -> DispatchResult {
		let rent = match deal.kind {
			DealKind::Deployment => {
				T::Capacity::reserve(&deal.provider, &deal.resources)?;
				return T::Collateral::commit(&deal.provider, &deal.resources);
			}
			DealKind::Rent { .. } => {
				ensure!(OpenDeals::<T>::get(&deal.provider) == 1, Error::<T>::ProviderBusy);
				T::Capacity::reserve(&deal.provider, &deal.resources)?;
				T::Collateral::commit(&deal.provider, &deal.resources)?;
				Rents::<T>::insert(&deal.provider, id);
				return Ok(());
			}
			DealKind::InRent { rent } => rent,
		};
		Deployments::<T>::try_mutate(rent, |maybe| {
			let rent = maybe.as_mut().ok_or(Error::<T>::RentNotActive)?;
			ensure!(
				matches!(
					rent.state,
					DeploymentState::Active { .. } | DeploymentState::OutOfFunds { .. }
				),
				Error::<T>::RentNotActive
			);
			let DealKind::Rent { in_use, .. } = &mut rent.kind else {
				return Err(Error::<T>::RentNotActive.into());
			};
			let wanted =
				in_use.checked_add(&deal.resources).ok_or(Error::<T>::InsufficientRentCapacity)?;
			ensure!(wanted.fits_in(&rent.resources), Error::<T>::InsufficientRentCapacity);
			*in_use = wanted;
			Ok(())
		})
	}

	/// Gives a running deal's resources back to where [`Self::reserve_capacity`] took them
	/// (releasing the stake committed for them) and stops its SLA measurement.
	pub(crate) fn release_capacity(id: DeploymentId, deal: &DeploymentOf<T>) {
		if deal.sla.is_some() {
			let now = frame_system::Pallet::<T>::block_number();
			T::Sla::deal_ended(id, Self::paid_for(deal, now));
		}
		let DealKind::InRent { rent } = deal.kind else {
			T::Collateral::release(&deal.provider, &deal.resources);
			return T::Capacity::release(&deal.provider, &deal.resources);
		};
		Self::update_rent(rent, |_, in_use| *in_use = in_use.saturating_sub(&deal.resources));
	}

	/// Winds down what `deal` leaves behind when it ends: a rent's deployments end with it, a
	/// deployment leaves its rent. Returns how many deployments a rent ended, `None` for
	/// anything but a rent.
	pub(crate) fn end_rent_ties(
		id: DeploymentId,
		deal: &DeploymentOf<T>,
		payout: &mut Payout<T>,
	) -> Option<u32> {
		match &deal.kind {
			DealKind::Rent { deployments, .. } => {
				let now = frame_system::Pallet::<T>::block_number();
				for child in deployments {
					Self::end_in_rent(*child, now, payout);
				}
				Rents::<T>::mutate_exists(&deal.provider, |rent| {
					if *rent == Some(id) {
						*rent = None;
					}
				});
				Some(deployments.len() as u32)
			}
			DealKind::InRent { rent } => {
				Self::leave_rent(*rent, id);
				None
			}
			DealKind::Deployment => None,
		}
	}

	/// Ends a deployment whose rent ends. A running metered one first gets the settlement
	/// window for its last egress report, as if its publisher had closed it.
	fn end_in_rent(id: DeploymentId, now: BlockNumberFor<T>, payout: &mut Payout<T>) {
		let Some(deal) = Deployments::<T>::get(id) else {
			defensive!("a rent lists only open deployments");
			return;
		};
		match deal.state {
			DeploymentState::Closing { .. } => {}
			// Deployments in a rent are metered (only egress is paid); a running one keeps
			// the settlement window for its last report.
			DeploymentState::Active { .. } | DeploymentState::OutOfFunds { .. } => {
				let unreported = deal.settled_until < Self::billable_until(&deal, now);
				if unreported {
					Self::start_closing(id, deal, now, CloseReason::RentEnded);
				} else {
					Self::finish(id, deal, CloseReason::RentEnded, payout);
				}
			}
			DeploymentState::Pending { .. } => {
				Self::finish(id, deal, CloseReason::RentEnded, payout);
			}
		}
	}

	/// Weight a call declares when it may end a rent with the most deployments in it.
	pub(crate) fn weight_ending_a_rent(base: Weight) -> Weight {
		base.max(T::WeightInfo::close_rent(MAX_DEPLOYMENTS_PER_RENT))
	}

	/// Weight a call used, given how many deployments the rent it ended held, if any.
	pub(crate) fn actual_weight(base: Weight, ended_rent: Option<u32>) -> Weight {
		ended_rent.map_or(base, |n| base.max(T::WeightInfo::close_rent(n)))
	}

	/// Checks the rent invariants listed in the crate docs.
	#[cfg(any(feature = "try-runtime", feature = "std", test))]
	pub(crate) fn try_state_rents() -> Result<(), sp_runtime::TryRuntimeError> {
		for (provider, id) in Rents::<T>::iter() {
			let rent = Deployments::<T>::get(id).ok_or("Rents points to a closed deal")?;
			ensure!(rent.provider == provider, "Rents points to another provider's rent");
			ensure!(matches!(rent.kind, DealKind::Rent { .. }), "Rents points to a deployment");
		}
		for (id, deal) in Deployments::<T>::iter() {
			match &deal.kind {
				DealKind::Rent { deployments, in_use } => {
					let pending = matches!(deal.state, DeploymentState::Pending { .. });
					ensure!(
						(Rents::<T>::get(&deal.provider) == Some(id)) != pending,
						"Rents must hold exactly the accepted rents"
					);
					let mut running = Resources::default();
					for child_id in deployments {
						let child =
							Deployments::<T>::get(child_id).ok_or("a rent lists a closed deal")?;
						ensure!(
							child.kind == DealKind::InRent { rent: id },
							"a rent lists a deployment of another rent"
						);
						if matches!(
							child.state,
							DeploymentState::Active { .. } | DeploymentState::OutOfFunds { .. }
						) {
							running = running.checked_add(&child.resources).ok_or("overflow")?;
						}
					}
					ensure!(
						running == *in_use,
						"a rent's capacity in use differs from its deployments"
					);
					ensure!(
						in_use.fits_in(&deal.resources),
						"a rent's deployments exceed its capacity"
					);
				}
				DealKind::InRent { rent } => {
					if !matches!(deal.state, DeploymentState::Closing { .. }) {
						let listed = Deployments::<T>::get(rent).is_some_and(
							|r| matches!(&r.kind, DealKind::Rent { deployments, .. } if deployments.contains(&id)),
						);
						ensure!(listed, "a deployment in a rent is not listed by its rent");
					}
				}
				DealKind::Deployment => ensure!(
					!Rents::<T>::contains_key(&deal.provider),
					"a deployment at list prices is open on a rented provider"
				),
			}
		}
		Ok(())
	}
}
