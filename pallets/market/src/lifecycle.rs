//! A deployment's life: creation, acceptance, top-ups, manifest updates, closing and deadlines.

use crate::*;
use frame_support::{
	ensure,
	pallet_prelude::*,
	traits::{
		fungible::{Inspect, MutateHold},
		tokens::{Fortitude, Precision, Preservation},
	},
};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::traits::{Saturating, Zero};

/// Consecutive blocks tried when a deadline's own block is full.
const EXPIRY_SLOTS_TRIED: u32 = 8;

impl<T: Config> Pallet<T> {
	pub(crate) fn do_create(
		publisher: T::AccountId,
		provider: T::AccountId,
		manifest_hash: ManifestHash,
		resources: Resources,
		billing: BillingMode,
		sla: Option<SlaTerms<BalanceOf<T>>>,
		deposit: BalanceOf<T>,
	) -> DispatchResult {
		let rent = Rents::<T>::get(&provider);
		let prices = match rent {
			Some(rent) => Self::prices_in_rent(rent, &publisher, &resources, billing)?,
			None => T::Providers::quote(&provider).ok_or(Error::<T>::ProviderUnavailable)?,
		};
		ensure!(resources.has_compute(), Error::<T>::ZeroResources);
		if let Some(terms) = &sla {
			ensure!(T::Sla::offers(&provider, terms), Error::<T>::SlaNotOffered);
		}
		ensure!(deposit >= T::MinDeposit::get(), Error::<T>::DepositTooLow);
		Self::hold_escrow(&publisher, deposit)?;

		let id = NextDeploymentId::<T>::get();
		let now = frame_system::Pallet::<T>::block_number();
		let kind = match rent {
			Some(rent) => {
				Self::join_rent(rent, id);
				DealKind::InRent { rent }
			}
			None => DealKind::Deployment,
		};
		NextDeploymentId::<T>::put(id.saturating_add(1));
		Self::index_deal(id, &publisher, &provider);
		Deployments::<T>::insert(
			id,
			Deployment {
				publisher: publisher.clone(),
				provider: provider.clone(),
				kind,
				manifest_hash,
				pending_manifest: None,
				resources,
				billing,
				sla,
				prices,
				state: DeploymentState::Pending { created_at: now },
				escrow: deposit,
				settled_until: now,
				charged: Charges::default(),
			},
		);
		Self::deposit_event(Event::DeploymentCreated { id, publisher, provider, deposit });
		Ok(())
	}

	pub(crate) fn do_accept(who: T::AccountId, id: DeploymentId) -> DispatchResult {
		let mut deal = Deployments::<T>::get(id).ok_or(Error::<T>::UnknownDeployment)?;
		ensure!(deal.provider == who, Error::<T>::NotProvider);
		ensure!(matches!(deal.state, DeploymentState::Pending { .. }), Error::<T>::NotPending);
		Self::reserve_capacity(id, &deal)?;
		if let Some(terms) = &deal.sla {
			T::Sla::deal_started(id, &deal.publisher, &deal.provider, terms);
		}
		let now = frame_system::Pallet::<T>::block_number();
		deal.state = DeploymentState::Active { accepted_at: now };
		deal.settled_until = now;
		Deployments::<T>::insert(id, deal);
		Self::deposit_event(Event::DeploymentAccepted { id });
		Ok(())
	}

	pub(crate) fn do_reject(who: T::AccountId, id: DeploymentId) -> DispatchResult {
		let deal = Deployments::<T>::get(id).ok_or(Error::<T>::UnknownDeployment)?;
		ensure!(deal.provider == who, Error::<T>::NotProvider);
		ensure!(matches!(deal.state, DeploymentState::Pending { .. }), Error::<T>::NotPending);
		Self::finish(id, deal, CloseReason::Rejected);
		Ok(())
	}

	pub(crate) fn do_cancel(who: T::AccountId, id: DeploymentId) -> DispatchResult {
		let deal = Deployments::<T>::get(id).ok_or(Error::<T>::UnknownDeployment)?;
		ensure!(deal.publisher == who, Error::<T>::NotPublisher);
		let DeploymentState::Pending { created_at } = deal.state else {
			return Err(Error::<T>::NotPending.into());
		};
		let now = frame_system::Pallet::<T>::block_number();
		ensure!(
			now >= created_at.saturating_add(T::AcceptanceTimeout::get()),
			Error::<T>::AcceptanceNotTimedOut
		);
		Self::finish(id, deal, CloseReason::AcceptanceTimeout);
		Ok(())
	}

	pub(crate) fn do_top_up(
		who: T::AccountId,
		id: DeploymentId,
		amount: BalanceOf<T>,
	) -> DispatchResult {
		let mut deal = Deployments::<T>::get(id).ok_or(Error::<T>::UnknownDeployment)?;
		ensure!(deal.publisher == who, Error::<T>::NotPublisher);
		ensure!(!amount.is_zero(), Error::<T>::ZeroTopUp);
		ensure!(!matches!(deal.state, DeploymentState::Closing { .. }), Error::<T>::NotActive);
		Self::hold_escrow(&who, amount)?;
		let now = frame_system::Pallet::<T>::block_number();
		// Bill the time already served at the old balance before adding funds.
		Self::accrue_reserved(id, &mut deal, now);
		deal.escrow = deal.escrow.saturating_add(amount);
		Self::deposit_event(Event::ToppedUp { id, amount });
		if let DeploymentState::OutOfFunds { accepted_at, .. } = deal.state {
			// The grace period is not billed: the provider was not paid for it either way.
			deal.state = DeploymentState::Active { accepted_at };
			deal.settled_until = now;
			Self::deposit_event(Event::Restored { id });
		}
		Deployments::<T>::insert(id, deal);
		Ok(())
	}

	pub(crate) fn do_update_manifest(
		who: T::AccountId,
		id: DeploymentId,
		manifest_hash: ManifestHash,
	) -> DispatchResult {
		Deployments::<T>::try_mutate(id, |maybe| {
			let deal = maybe.as_mut().ok_or(Error::<T>::UnknownDeployment)?;
			ensure!(deal.publisher == who, Error::<T>::NotPublisher);
			ensure!(!deal.is_rent(), Error::<T>::NotADeployment);
			ensure!(!matches!(deal.state, DeploymentState::Closing { .. }), Error::<T>::NotActive);
			ensure!(deal.manifest_hash != manifest_hash, Error::<T>::SameManifest);
			deal.pending_manifest = Some(manifest_hash);
			Ok::<_, DispatchError>(())
		})?;
		Self::deposit_event(Event::ManifestUpdateRequested { id, manifest_hash });
		Ok(())
	}

	pub(crate) fn do_acknowledge_manifest(
		who: T::AccountId,
		id: DeploymentId,
		manifest_hash: ManifestHash,
	) -> DispatchResult {
		Deployments::<T>::try_mutate(id, |maybe| {
			let deal = maybe.as_mut().ok_or(Error::<T>::UnknownDeployment)?;
			ensure!(deal.provider == who, Error::<T>::NotProvider);
			ensure!(deal.pending_manifest == Some(manifest_hash), Error::<T>::ManifestMismatch);
			deal.manifest_hash = manifest_hash;
			deal.pending_manifest = None;
			Ok::<_, DispatchError>(())
		})?;
		Self::deposit_event(Event::ManifestAcknowledged { id, manifest_hash });
		Ok(())
	}

	/// Returns how many deployments closing a rent ended, `None` if no rent ended.
	pub(crate) fn do_close_call(
		who: T::AccountId,
		id: DeploymentId,
		reason: CloseReason,
	) -> Result<Option<u32>, DispatchError> {
		let mut deal = Deployments::<T>::get(id).ok_or(Error::<T>::UnknownDeployment)?;
		let out_of_funds = matches!(deal.state, DeploymentState::OutOfFunds { .. });
		ensure!(
			matches!(deal.state, DeploymentState::Active { .. }) || out_of_funds,
			Error::<T>::NotActive
		);
		let by_publisher = who == deal.publisher;
		if by_publisher {
			ensure!(reason == CloseReason::PublisherRequest, Error::<T>::InvalidCloseReason);
		} else {
			ensure!(who == deal.provider, Error::<T>::NotProvider);
			let allowed = match reason {
				CloseReason::PublisherRequest
				| CloseReason::ProviderDecommission
				| CloseReason::Sla => true,
				// A rent runs no manifest of its own.
				CloseReason::ManifestTimeout => !deal.is_rent(),
				CloseReason::OutOfFunds => out_of_funds,
				CloseReason::Rejected | CloseReason::AcceptanceTimeout | CloseReason::RentEnded => {
					false
				}
			};
			ensure!(allowed, Error::<T>::InvalidCloseReason);
		}

		let now = frame_system::Pallet::<T>::block_number();
		if by_publisher && deal.billing == BillingMode::Metered && !out_of_funds {
			Self::start_closing(id, deal, now, reason);
			return Ok(None);
		}
		Self::accrue_reserved(id, &mut deal, now);
		Ok(Self::finish(id, deal, reason))
	}

	/// Stops a running metered deployment at `now`: its capacity is released at once, but the
	/// provider may still report usage up to `now` within the settlement window before the
	/// rest of the escrow is refunded.
	pub(crate) fn start_closing(
		id: DeploymentId,
		mut deal: DeploymentOf<T>,
		now: BlockNumberFor<T>,
		reason: CloseReason,
	) {
		Self::release_capacity(id, &deal);
		let settle_by = now.saturating_add(T::SettlementWindow::get());
		deal.state = DeploymentState::Closing { closed_at: now, settle_by, reason };
		Self::schedule_expiry(settle_by, id);
		Deployments::<T>::insert(id, deal);
		Self::deposit_event(Event::Closing { id, settle_by });
	}

	/// Returns how many deployments a rent that ended held, `None` if no rent ended.
	pub(crate) fn do_settle(id: DeploymentId) -> Result<Option<u32>, DispatchError> {
		let mut deal = Deployments::<T>::get(id).ok_or(Error::<T>::UnknownDeployment)?;
		let now = frame_system::Pallet::<T>::block_number();
		if Self::deadline_passed(&deal, now) {
			return Ok(Self::expire(id, now));
		}
		Self::accrue_reserved(id, &mut deal, now);
		Deployments::<T>::insert(id, deal);
		Ok(None)
	}

	pub(crate) fn do_register_name(
		who: T::AccountId,
		id: DeploymentId,
		name: NameInput,
	) -> DispatchResult {
		let deal = Deployments::<T>::get(id).ok_or(Error::<T>::UnknownDeployment)?;
		ensure!(deal.publisher == who, Error::<T>::NotPublisher);
		ensure!(!deal.is_rent(), Error::<T>::NotADeployment);
		ensure!(!matches!(deal.state, DeploymentState::Closing { .. }), Error::<T>::NotActive);
		ensure!(is_dns_label(&name), Error::<T>::InvalidName);
		let name: DnsLabel = name.into_inner().try_into().map_err(|_| Error::<T>::InvalidName)?;
		ensure!(!Names::<T>::contains_key(&name), Error::<T>::NameTaken);
		ensure!(!DeploymentNames::<T>::contains_key(id), Error::<T>::AlreadyNamed);
		let deposit = T::NameDeposit::get();
		T::Currency::hold(&HoldReason::NameDeposit.into(), &who, deposit)
			.map_err(|_| Error::<T>::InsufficientBalance)?;
		Names::<T>::insert(&name, id);
		DeploymentNames::<T>::insert(id, (name.clone(), deposit));
		Self::deposit_event(Event::NameRegistered { id, name });
		Ok(())
	}

	/// Unbinds a deployment's name, if any, and returns its deposit to `publisher`.
	pub(crate) fn release_name_of(id: DeploymentId, publisher: &T::AccountId) {
		let Some((name, deposit)) = DeploymentNames::<T>::take(id) else { return };
		Names::<T>::remove(&name);
		if T::Currency::release(
			&HoldReason::NameDeposit.into(),
			publisher,
			deposit,
			Precision::BestEffort,
		)
		.is_err()
		{
			defensive!("a name's deposit is held while it is registered");
		}
		Self::deposit_event(Event::NameReleased { id, name });
	}

	/// Whether the deployment's grace period or settlement window is over at `now`.
	fn deadline_passed(deal: &DeploymentOf<T>, now: BlockNumberFor<T>) -> bool {
		match deal.state {
			DeploymentState::OutOfFunds { grace_ends, .. } => now >= grace_ends,
			DeploymentState::Closing { settle_by, .. } => now >= settle_by,
			_ => false,
		}
	}

	/// Closes the deployment if its deadline is over (queue or `settle`); else does nothing,
	/// so stale queue entries (a top-up came in) are harmless. Returns how many deployments a
	/// rent that ended held, `None` if no rent ended.
	pub(crate) fn expire(id: DeploymentId, now: BlockNumberFor<T>) -> Option<u32> {
		let deal = Deployments::<T>::get(id)?;
		if !Self::deadline_passed(&deal, now) {
			return None;
		}
		let reason = match deal.state {
			DeploymentState::Closing { reason, .. } => reason,
			_ => CloseReason::OutOfFunds,
		};
		Self::finish(id, deal, reason)
	}

	/// Ends a deal: ends the deployments of a rent, releases the capacity it still reserves,
	/// refunds the escrow left and removes it. Settlement must have happened before. Returns
	/// how many deployments a rent held, `None` for anything but a rent.
	pub(crate) fn finish(
		id: DeploymentId,
		deal: DeploymentOf<T>,
		reason: CloseReason,
	) -> Option<u32> {
		let ended_in_rent = Self::end_rent_ties(id, &deal);
		if matches!(deal.state, DeploymentState::Active { .. } | DeploymentState::OutOfFunds { .. })
		{
			Self::release_capacity(id, &deal);
		}
		let refunded = T::Currency::release(
			&HoldReason::Escrow.into(),
			&deal.publisher,
			deal.escrow,
			Precision::BestEffort,
		)
		.unwrap_or_else(|_| {
			defensive!("escrow is held for every open deployment");
			Zero::zero()
		});
		Self::release_name_of(id, &deal.publisher);
		Deployments::<T>::remove(id);
		Self::unindex_deal(id, &deal.publisher, &deal.provider);
		Self::deposit_event(Event::DeploymentClosed { id, reason, refunded });
		ended_in_rent
	}

	/// Counts a new deal against its provider and lists it for both parties.
	pub(crate) fn index_deal(id: DeploymentId, publisher: &T::AccountId, provider: &T::AccountId) {
		OpenDeals::<T>::mutate(provider, |n| *n = n.saturating_add(1));
		ProviderDeployments::<T>::insert(provider, id, ());
		PublisherDeployments::<T>::insert(publisher, id, ());
	}

	/// Undoes [`Self::index_deal`] for a deal that ended.
	fn unindex_deal(id: DeploymentId, publisher: &T::AccountId, provider: &T::AccountId) {
		OpenDeals::<T>::mutate_exists(provider, |n| {
			*n = n.and_then(|n| n.checked_sub(1)).filter(|n| *n > 0);
		});
		ProviderDeployments::<T>::remove(provider, id);
		PublisherDeployments::<T>::remove(publisher, id);
	}

	/// Puts `id` in the deadline queue at `at`, or at one of the next few blocks if `at` is
	/// full. If all are full the deadline is still enforced lazily by `settle`.
	pub(crate) fn schedule_expiry(at: BlockNumberFor<T>, id: DeploymentId) {
		let mut block = at;
		for _ in 0..EXPIRY_SLOTS_TRIED {
			if Expiries::<T>::try_mutate(block, |queue| queue.try_push(id)).is_ok() {
				return;
			}
			block = block.saturating_add(1u32.into());
		}
		log::warn!(target: "runtime::market", "deadline queue full; deployment {id} closes on settle");
	}

	pub(crate) fn hold_escrow(who: &T::AccountId, amount: BalanceOf<T>) -> DispatchResult {
		let spendable =
			T::Currency::reducible_balance(who, Preservation::Preserve, Fortitude::Polite);
		ensure!(spendable >= amount, Error::<T>::InsufficientBalance);
		T::Currency::hold(&HoldReason::Escrow.into(), who, amount)
			.map_err(|_| Error::<T>::InsufficientBalance.into())
	}

	/// Checks the invariants listed in the crate docs.
	#[cfg(any(feature = "try-runtime", feature = "std", test))]
	pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
		use alloc::collections::btree_map::BTreeMap;
		use frame_support::traits::fungible::InspectHold;
		let next = NextDeploymentId::<T>::get();
		let mut escrow: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
		let mut deals: BTreeMap<T::AccountId, u32> = BTreeMap::new();
		for (id, deal) in Deployments::<T>::iter() {
			ensure!(id < next, "a deployment id is not below NextDeploymentId");
			let held = escrow.entry(deal.publisher.clone()).or_insert_with(Zero::zero);
			*held = held.saturating_add(deal.escrow);
			*deals.entry(deal.provider.clone()).or_default() += 1;
		}
		for (publisher, total) in escrow {
			let held = T::Currency::balance_on_hold(&HoldReason::Escrow.into(), &publisher);
			ensure!(held == total, "escrow held differs from the publisher's deployments");
		}
		ensure!(
			OpenDeals::<T>::iter().all(|(p, n)| deals.get(&p).copied().unwrap_or(0) == n),
			"OpenDeals differs from the deployments"
		);
		ensure!(
			deals.iter().all(|(p, n)| OpenDeals::<T>::get(p) == *n),
			"a provider's deployments are not counted in OpenDeals"
		);
		let listed = |id: &DeploymentId| Deployments::<T>::get(id);
		ensure!(
			ProviderDeployments::<T>::iter()
				.all(|(p, id, ())| listed(&id).is_some_and(|d| d.provider == p)),
			"ProviderDeployments lists a closed deal or another provider's"
		);
		ensure!(
			PublisherDeployments::<T>::iter()
				.all(|(p, id, ())| listed(&id).is_some_and(|d| d.publisher == p)),
			"PublisherDeployments lists a closed deal or another publisher's"
		);
		ensure!(
			Deployments::<T>::iter().all(|(id, d)| {
				ProviderDeployments::<T>::contains_key(&d.provider, id)
					&& PublisherDeployments::<T>::contains_key(&d.publisher, id)
			}),
			"an open deal is missing from ProviderDeployments or PublisherDeployments"
		);
		let mut name_deposits: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
		for (id, (name, deposit)) in DeploymentNames::<T>::iter() {
			let deal = Deployments::<T>::get(id).ok_or("a name points to a closed deployment")?;
			ensure!(Names::<T>::get(&name) == Some(id), "Names and DeploymentNames disagree");
			let held = name_deposits.entry(deal.publisher).or_insert_with(Zero::zero);
			*held = held.saturating_add(deposit);
		}
		ensure!(
			Names::<T>::iter().count() == DeploymentNames::<T>::iter().count(),
			"a name is not bound both ways"
		);
		for (publisher, total) in name_deposits {
			let held = T::Currency::balance_on_hold(&HoldReason::NameDeposit.into(), &publisher);
			ensure!(held == total, "name deposits held differ from the names registered");
		}
		Self::try_state_rents()
	}
}
