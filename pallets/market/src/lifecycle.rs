//! A deployment's life: creation, acceptance, top-ups, manifest updates, closing and deadlines.

use crate::escrow::Payout;
use crate::*;
use frame_support::{
	ensure,
	pallet_prelude::*,
	traits::{fungible::MutateHold, tokens::Precision},
};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::traits::{Saturating, Zero};

/// A new deal as asked for by its publisher.
pub(crate) struct DealRequest<T: Config> {
	pub provider: T::AccountId,
	pub manifest_hash: ManifestHash,
	pub resources: Resources,
	pub billing: BillingMode,
	pub sla: Option<SlaTerms<BalanceOf<T>>>,
	pub limits: DealLimits<BalanceOf<T>>,
	pub deposit: BalanceOf<T>,
}

impl<T: Config> Pallet<T> {
	pub(crate) fn do_create(publisher: T::AccountId, request: DealRequest<T>) -> DispatchResult {
		let DealRequest { provider, manifest_hash, resources, billing, sla, limits, deposit } =
			request;
		let rent = Rents::<T>::get(&provider);
		let prices = match rent {
			Some(rent) => Self::prices_in_rent(rent, &publisher, &resources, billing)?,
			None => T::Providers::quote(&provider).ok_or(Error::<T>::ProviderUnavailable)?,
		};
		ensure!(resources.has_compute(), Error::<T>::ZeroResources);
		if let Some(terms) = &sla {
			ensure!(terms.health.is_valid(), Error::<T>::InvalidHealthCheck);
			ensure!(T::Sla::offers(&provider, terms), Error::<T>::SlaNotOffered);
		}
		ensure!(limits.admits(&prices, &resources), Error::<T>::PriceAboveLimit);
		Self::check_egress_limit(&limits)?;

		let id = NextDeploymentId::<T>::get();
		let now = frame_system::Pallet::<T>::block_number();
		let kind = match rent {
			Some(rent) => DealKind::InRent { rent },
			None => DealKind::Deployment,
		};
		let deal = Deployment {
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
			debt: Zero::zero(),
			egress_limit: limits.max_egress_bytes_per_second,
		};
		Self::check_deposit(&deal)?;
		Self::take_into_escrow(&publisher, deposit)?;
		if let Some(rent) = rent {
			Self::join_rent(rent, id);
		}
		NextDeploymentId::<T>::put(id.saturating_add(1));
		Self::index_deal(id, &publisher, &provider);
		Deployments::<T>::insert(id, deal);
		Self::deposit_event(Event::DeploymentCreated { id, publisher, provider, deposit });
		Ok(())
	}

	/// A deal's egress limit may not exceed what the chain allows any deal.
	pub(crate) fn check_egress_limit(limits: &DealLimits<BalanceOf<T>>) -> DispatchResult {
		ensure!(
			limits.max_egress_bytes_per_second <= T::MaxEgressBytesPerSecond::get(),
			Error::<T>::EgressLimitTooHigh
		);
		Ok(())
	}

	/// A new deal's deposit must cover [`Config::MinDeposit`] and its reserved resources for
	/// [`Config::MinPrepaidSeconds`]: holding capacity is never free.
	pub(crate) fn check_deposit(deal: &DeploymentOf<T>) -> DispatchResult {
		ensure!(
			deal.escrow >= T::MinDeposit::get() && deal.escrow >= Self::min_prepaid(deal),
			Error::<T>::DepositTooLow
		);
		Ok(())
	}

	pub(crate) fn do_accept(who: T::AccountId, id: DeploymentId) -> DispatchResult {
		let mut deal = Deployments::<T>::get(id).ok_or(Error::<T>::UnknownDeployment)?;
		ensure!(deal.provider == who, Error::<T>::NotProvider);
		ensure!(matches!(deal.state, DeploymentState::Pending { .. }), Error::<T>::NotPending);
		Self::reserve_capacity(id, &deal)?;
		if let Some(terms) = &deal.sla {
			T::Sla::deal_started(id, &deal.publisher, &deal.provider, terms)?;
			if deal.pending_manifest.is_some() {
				T::Sla::manifest_pending(id, true);
			}
		}
		let now = frame_system::Pallet::<T>::block_number();
		deal.state = DeploymentState::Active { accepted_at: now };
		deal.settled_until = now;
		if let Some(runs_out) = Self::funded_until(&deal) {
			Self::schedule_expiry(runs_out, id);
		}
		Deployments::<T>::insert(id, deal);
		Self::deposit_event(Event::DeploymentAccepted { id });
		Ok(())
	}

	pub(crate) fn do_reject(who: T::AccountId, id: DeploymentId) -> DispatchResult {
		let deal = Deployments::<T>::get(id).ok_or(Error::<T>::UnknownDeployment)?;
		ensure!(deal.provider == who, Error::<T>::NotProvider);
		ensure!(matches!(deal.state, DeploymentState::Pending { .. }), Error::<T>::NotPending);
		Self::finish_and_pay(id, deal, CloseReason::Rejected);
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
		Self::finish_and_pay(id, deal, CloseReason::AcceptanceTimeout);
		Ok(())
	}

	/// Adds `amount` to a deal's escrow. A deal out of funds or in debt comes back only with
	/// its debt paid and [`Config::MinPrepaidSeconds`] prepaid: a token top-up cannot buy
	/// another grace period.
	pub(crate) fn do_top_up(
		who: T::AccountId,
		id: DeploymentId,
		amount: BalanceOf<T>,
	) -> DispatchResult {
		let mut deal = Deployments::<T>::get(id).ok_or(Error::<T>::UnknownDeployment)?;
		ensure!(deal.publisher == who, Error::<T>::NotPublisher);
		ensure!(!amount.is_zero(), Error::<T>::ZeroTopUp);
		let now = frame_system::Pallet::<T>::block_number();
		let mut payout = Payout::new();
		// A grace period that ended while nobody looked has closed the deal (the hook will
		// record it; this call changes nothing).
		if Self::catch_up(id, &mut deal, now, &mut payout).is_some() {
			return Err(Error::<T>::NotActive.into());
		}
		ensure!(!matches!(deal.state, DeploymentState::Closing { .. }), Error::<T>::NotActive);
		// Bill the time already served at the old balance before adding funds.
		Self::bill_reserved(id, &mut deal, now, &mut payout);
		let out_of_funds = matches!(deal.state, DeploymentState::OutOfFunds { .. });
		if out_of_funds || !deal.debt.is_zero() {
			ensure!(
				amount >= deal.debt.saturating_add(Self::min_prepaid(&deal)),
				Error::<T>::TopUpBelowDebt
			);
		}
		Self::take_into_escrow(&who, amount)?;
		deal.escrow = deal.escrow.saturating_add(amount);
		Self::deposit_event(Event::ToppedUp { id, amount });
		Self::pay_debt(id, &mut deal, &mut payout);
		if let DeploymentState::OutOfFunds { accepted_at, .. } = deal.state {
			deal.state = DeploymentState::Active { accepted_at };
			Self::deposit_event(Event::Restored { id });
		}
		if let Some(runs_out) = Self::funded_until(&deal) {
			Self::schedule_expiry(runs_out, id);
		}
		Deployments::<T>::insert(id, deal);
		payout.pay();
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
			if deal.sla.is_some() {
				T::Sla::manifest_pending(id, true);
			}
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
			if deal.sla.is_some() {
				T::Sla::manifest_pending(id, false);
			}
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
		let by_publisher = who == deal.publisher;
		ensure!(by_publisher || who == deal.provider, Error::<T>::NotProvider);
		let now = frame_system::Pallet::<T>::block_number();
		let mut payout = Payout::new();
		// A deadline that fell meanwhile applies first; if it ended the deal, it is closed.
		if let Some(ended) = Self::catch_up(id, &mut deal, now, &mut payout) {
			payout.pay();
			return Ok(ended);
		}
		let out_of_funds = matches!(deal.state, DeploymentState::OutOfFunds { .. });
		ensure!(
			matches!(deal.state, DeploymentState::Active { .. }) || out_of_funds,
			Error::<T>::NotActive
		);
		if by_publisher {
			ensure!(reason == CloseReason::PublisherRequest, Error::<T>::InvalidCloseReason);
		} else {
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

		// The provider may still report a metered deal's last usage, unless it already has.
		let unreported = deal.settled_until < Self::billable_until(&deal, now);
		if by_publisher && deal.billing == BillingMode::Metered && unreported {
			Self::start_closing(id, deal, now, reason);
			payout.pay();
			return Ok(None);
		}
		Self::bill_reserved(id, &mut deal, now, &mut payout);
		let ended = Self::finish(id, deal, reason, &mut payout);
		payout.pay();
		Ok(ended)
	}

	/// Stops a metered deployment at `at`: its capacity is released at once, but the
	/// provider may still report usage up to `at` within the settlement window before the
	/// rest of the escrow is refunded.
	pub(crate) fn start_closing(
		id: DeploymentId,
		mut deal: DeploymentOf<T>,
		at: BlockNumberFor<T>,
		reason: CloseReason,
	) {
		Self::stop_metered(id, &mut deal, at, reason);
		Deployments::<T>::insert(id, deal);
	}

	/// Moves a running metered deal into `Closing` from block `at`.
	fn stop_metered(
		id: DeploymentId,
		deal: &mut DeploymentOf<T>,
		at: BlockNumberFor<T>,
		reason: CloseReason,
	) {
		Self::release_capacity(id, deal);
		let settle_by = at.saturating_add(T::SettlementWindow::get());
		deal.state = DeploymentState::Closing { closed_at: at, settle_by, reason };
		Self::schedule_expiry(settle_by, id);
		Self::deposit_event(Event::Closing { id, settle_by });
	}

	/// Bills a reserved deal up to now and applies any deadline that fell (anyone may call).
	/// Returns how many deployments a rent that ended held, `None` if no rent ended.
	pub(crate) fn do_settle(id: DeploymentId) -> Result<Option<u32>, DispatchError> {
		let mut deal = Deployments::<T>::get(id).ok_or(Error::<T>::UnknownDeployment)?;
		let now = frame_system::Pallet::<T>::block_number();
		let mut payout = Payout::new();
		if let Some(ended) = Self::catch_up(id, &mut deal, now, &mut payout) {
			payout.pay();
			return Ok(ended);
		}
		let deadline = Self::deadline(&deal);
		Self::bill_reserved(id, &mut deal, now, &mut payout);
		// Billing keeps the exhaustion block where it was; queue it again only if it moved,
		// so calling this repeatedly cannot fill the queue.
		if let Some(at) = Self::deadline(&deal).filter(|at| Some(*at) != deadline) {
			Self::schedule_expiry(at, id);
		}
		Deployments::<T>::insert(id, deal);
		payout.pay();
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

	/// Applies to `deal` every deadline that fell by `now`, each at its own block: a reserved
	/// deal's escrow running out, a grace period ending, a settlement window closing. Returns
	/// `Some` if the deal ended (with how many deployments a rent that ended held); otherwise
	/// the caller stores `deal`.
	pub(crate) fn catch_up(
		id: DeploymentId,
		deal: &mut DeploymentOf<T>,
		now: BlockNumberFor<T>,
		payout: &mut Payout<T>,
	) -> Option<Option<u32>> {
		loop {
			match deal.state {
				DeploymentState::Active { accepted_at } => {
					let runs_out = Self::funded_until(deal).filter(|at| *at <= now)?;
					Self::bill_reserved(id, deal, runs_out, payout);
					Self::run_out_of_funds(id, deal, accepted_at, runs_out);
				}
				DeploymentState::OutOfFunds { grace_ends, .. } if now >= grace_ends => {
					if deal.billing == BillingMode::Metered {
						// The provider may still report the grace period's usage (as debt).
						Self::stop_metered(id, deal, grace_ends, CloseReason::OutOfFunds);
						continue;
					}
					Self::bill_reserved(id, deal, grace_ends, payout);
					return Some(Self::finish(id, deal.clone(), CloseReason::OutOfFunds, payout));
				}
				DeploymentState::Closing { settle_by, reason, .. } if now >= settle_by => {
					return Some(Self::finish(id, deal.clone(), reason, payout));
				}
				_ => return None,
			}
		}
	}

	/// Looks at a queued deal at the block its deadline fell. Stale entries (a top-up came
	/// in, the deal closed) change nothing. Returns how many deployments a rent that ended
	/// held, `None` if no rent ended.
	pub(crate) fn expire(id: DeploymentId, at: BlockNumberFor<T>) -> Option<u32> {
		let mut deal = Deployments::<T>::get(id)?;
		let state = deal.state;
		let mut payout = Payout::new();
		let ended = match Self::catch_up(id, &mut deal, at, &mut payout) {
			Some(ended) => ended,
			None => {
				// A stale entry changed nothing: no write in the hook for it.
				if deal.state != state {
					Deployments::<T>::insert(id, deal);
				}
				None
			}
		};
		payout.pay();
		ended
	}

	/// [`Self::finish`] with its payments made.
	fn finish_and_pay(id: DeploymentId, deal: DeploymentOf<T>, reason: CloseReason) {
		let mut payout = Payout::new();
		Self::finish(id, deal, reason, &mut payout);
		payout.pay();
	}

	/// Ends a deal: ends the deployments of a rent, releases the capacity it still reserves,
	/// pays its debt from what the publisher still has held for it (escrow, then the name
	/// deposit) and writes off the rest in the open, refunds the escrow left and removes it.
	/// Settlement must have happened before. Returns how many deployments a rent held, `None`
	/// for anything but a rent.
	pub(crate) fn finish(
		id: DeploymentId,
		mut deal: DeploymentOf<T>,
		reason: CloseReason,
		payout: &mut Payout<T>,
	) -> Option<u32> {
		let ended_in_rent = Self::end_rent_ties(id, &deal, payout);
		if matches!(deal.state, DeploymentState::Active { .. } | DeploymentState::OutOfFunds { .. })
		{
			Self::release_capacity(id, &deal);
		}
		Self::pay_debt(id, &mut deal, payout);
		if !deal.debt.is_zero() {
			DeploymentNames::<T>::mutate(id, |name| {
				if let Some((_, deposit)) = name {
					let seized = Self::seize_name_deposit(&deal.publisher, deal.debt.min(*deposit));
					*deposit = deposit.saturating_sub(seized);
					deal.escrow = deal.escrow.saturating_add(seized);
				}
			});
			Self::pay_debt(id, &mut deal, payout);
		}
		if !deal.debt.is_zero() {
			let amount = deal.debt;
			UnpaidDebts::<T>::mutate(&deal.publisher, |record| {
				record.deals.saturating_inc();
				record.amount = record.amount.saturating_add(amount);
			});
			Self::deposit_event(Event::DebtWrittenOff {
				id,
				publisher: deal.publisher.clone(),
				amount,
			});
		}
		let refunded = Self::refund(&deal.publisher, deal.escrow);
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

	/// Checks the invariants listed in the crate docs.
	#[cfg(any(feature = "try-runtime", feature = "std", test))]
	pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
		use alloc::collections::btree_map::BTreeMap;
		use frame_support::traits::fungible::{Inspect, InspectHold};
		let next = NextDeploymentId::<T>::get();
		let queued: alloc::collections::btree_set::BTreeSet<DeploymentId> =
			Expiries::<T>::iter_values().flatten().collect();
		let mut escrow: BalanceOf<T> = Zero::zero();
		let mut deals: BTreeMap<T::AccountId, u32> = BTreeMap::new();
		for (id, deal) in Deployments::<T>::iter() {
			ensure!(id < next, "a deployment id is not below NextDeploymentId");
			escrow = escrow.saturating_add(deal.escrow);
			*deals.entry(deal.provider.clone()).or_default() += 1;
			ensure!(
				deal.debt.is_zero()
					|| matches!(
						deal.state,
						DeploymentState::OutOfFunds { .. } | DeploymentState::Closing { .. }
					),
				"a deal owes debt while running"
			);
			ensure!(
				Self::deadline(&deal).is_none() || queued.contains(&id),
				"a deal with a deadline is not in the queue"
			);
		}
		// The escrow account holds every deal's escrow on top of its existential deposit
		// (plus dust only if a payout had nowhere to go).
		let account = T::Currency::balance(&Self::escrow_account());
		ensure!(
			account >= escrow.saturating_add(T::Currency::minimum_balance()),
			"the escrow account holds less than the deals' escrow"
		);
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
		Self::try_state_expiries()?;
		Self::try_state_rents()
	}
}
