//! Billing: pricing periods of reserved or metered use, and moving escrow to the provider and
//! the treasury.

use crate::*;
use frame_support::{
	ensure,
	pallet_prelude::*,
	traits::{
		fungible::MutateHold,
		tokens::{Fortitude, Precision, Restriction},
	},
};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::{
	traits::{CheckedMul, SaturatedConversion, Saturating, Zero},
	Perbill,
};

impl<T: Config> Pallet<T> {
	/// Seconds billed for the blocks `[start, end)`.
	pub(crate) fn seconds_between(start: BlockNumberFor<T>, end: BlockNumberFor<T>) -> u64 {
		let blocks: u64 = end.saturating_sub(start).saturated_into();
		blocks.saturating_mul(T::BlockDurationMillis::get()) / 1000
	}

	/// Price of holding `resources` for `seconds` at `prices`, per resource.
	fn reserved_charges(
		prices: &Prices<BalanceOf<T>>,
		resources: &Resources,
		seconds: u64,
	) -> Option<Charges<BalanceOf<T>>> {
		let secs: BalanceOf<T> = seconds.saturated_into();
		let price = |unit: BalanceOf<T>, amount: u32| {
			unit.checked_mul(&BalanceOf::<T>::from(amount))?.checked_mul(&secs)
		};
		Some(Charges {
			cpu: price(prices.cpu_per_millicore_second, resources.cpu_millicores)?,
			memory: price(prices.memory_per_mib_second, resources.memory_mib)?,
			storage: price(prices.storage_per_gib_second, resources.storage_gib)?,
			gpu: price(prices.gpu_per_second, resources.gpus)?,
			egress: Zero::zero(),
		})
	}

	/// Price of a usage report at `prices`, per resource.
	fn metered_charges(
		prices: &Prices<BalanceOf<T>>,
		report: &UsageReport<BlockNumberFor<T>>,
	) -> Option<Charges<BalanceOf<T>>> {
		let price = |unit: BalanceOf<T>, used: u64| unit.checked_mul(&used.saturated_into());
		Some(Charges {
			cpu: price(prices.cpu_per_millicore_second, report.cpu_millicore_seconds)?,
			memory: price(prices.memory_per_mib_second, report.memory_mib_seconds)?,
			storage: price(prices.storage_per_gib_second, report.storage_gib_seconds)?,
			gpu: price(prices.gpu_per_second, report.gpu_seconds)?,
			egress: price(prices.egress_per_byte, report.egress_bytes)?,
		})
	}

	/// The end of the period a deployment can be billed for at `now`.
	fn billable_until(deal: &DeploymentOf<T>, now: BlockNumberFor<T>) -> BlockNumberFor<T> {
		match deal.state {
			DeploymentState::Pending { .. } => deal.settled_until,
			DeploymentState::Active { .. } => now,
			DeploymentState::OutOfFunds { since, .. } => since,
			DeploymentState::Closing { closed_at, .. } => closed_at,
		}
	}

	/// What settling a reserved deployment now would charge (runtime API).
	pub(crate) fn accrued(deal: &DeploymentOf<T>, now: BlockNumberFor<T>) -> BalanceOf<T> {
		if deal.billing != BillingMode::Reserved {
			return Zero::zero();
		}
		let seconds = Self::seconds_between(deal.settled_until, Self::billable_until(deal, now));
		Self::reserved_charges(&deal.prices, &deal.resources, seconds)
			.map_or(deal.escrow, |c| c.total().min(deal.escrow))
	}

	/// Bills a reserved deployment up to `now` (lazy settlement). Does nothing for metered
	/// deployments, which are billed by reports.
	pub(crate) fn accrue_reserved(
		id: DeploymentId,
		deal: &mut DeploymentOf<T>,
		now: BlockNumberFor<T>,
	) {
		if deal.billing != BillingMode::Reserved {
			return;
		}
		let end = Self::billable_until(deal, now);
		if end <= deal.settled_until {
			return;
		}
		let seconds = Self::seconds_between(deal.settled_until, end);
		// Prices were checked by the registry for a long horizon; if they still overflow, the
		// whole escrow is owed.
		let charges = Self::reserved_charges(&deal.prices, &deal.resources, seconds)
			.unwrap_or(Charges { cpu: deal.escrow, ..Default::default() });
		Self::charge(id, deal, charges, end, now);
	}

	/// Checks one usage report and settles it.
	pub(crate) fn apply_report(
		who: &T::AccountId,
		report: &UsageReport<BlockNumberFor<T>>,
	) -> DispatchResult {
		let id = report.deployment;
		let mut deal = Deployments::<T>::get(id).ok_or(Error::<T>::UnknownDeployment)?;
		ensure!(&deal.provider == who, Error::<T>::NotProvider);
		ensure!(deal.billing == BillingMode::Metered, Error::<T>::NotMetered);
		ensure!(!matches!(deal.state, DeploymentState::Pending { .. }), Error::<T>::NotActive);
		ensure!(report.period_start == deal.settled_until, Error::<T>::PeriodNotContiguous);
		let now = frame_system::Pallet::<T>::block_number();
		ensure!(
			report.period_end > report.period_start
				&& report.period_end <= Self::billable_until(&deal, now),
			Error::<T>::InvalidPeriod
		);
		let seconds = Self::seconds_between(report.period_start, report.period_end);
		let cap = |reserved: u32| u64::from(reserved).saturating_mul(seconds);
		let r = &deal.resources;
		ensure!(
			report.cpu_millicore_seconds <= cap(r.cpu_millicores)
				&& report.memory_mib_seconds <= cap(r.memory_mib)
				&& report.storage_gib_seconds <= cap(r.storage_gib)
				&& report.gpu_seconds <= cap(r.gpus)
				&& report.egress_bytes <= T::MaxEgressBytesPerSecond::get().saturating_mul(seconds),
			Error::<T>::UsageAboveReserved
		);
		let charges =
			Self::metered_charges(&deal.prices, report).ok_or(Error::<T>::ChargeOverflow)?;
		Self::charge(id, &mut deal, charges, report.period_end, now);
		// A closing deployment whose usage is reported in full is done.
		if let DeploymentState::Closing { closed_at, reason, .. } = deal.state {
			if deal.settled_until >= closed_at {
				Self::finish(id, deal, reason);
				return Ok(());
			}
		}
		Deployments::<T>::insert(id, deal);
		Ok(())
	}

	/// Moves `charges` (capped at the escrow) from the publisher to the provider and the
	/// treasury, records the period as settled up to `period_end`, and puts the deployment out
	/// of funds when the escrow could not cover it. Emits the itemised `Settled` event.
	fn charge(
		id: DeploymentId,
		deal: &mut DeploymentOf<T>,
		charges: Charges<BalanceOf<T>>,
		period_end: BlockNumberFor<T>,
		now: BlockNumberFor<T>,
	) {
		let period_start = deal.settled_until;
		let owed = charges.total();
		let exhausted = owed > deal.escrow;
		let charges = if exhausted { Self::cap_charges(charges, deal.escrow) } else { charges };
		let total = charges.total();
		let fee = ProtocolFee::<T>::get() * total;
		let reason = HoldReason::Escrow.into();
		let pay = |to: &T::AccountId, amount: BalanceOf<T>| {
			if amount.is_zero() {
				return Ok(Zero::zero());
			}
			T::Currency::transfer_on_hold(
				&reason,
				&deal.publisher,
				to,
				amount,
				Precision::Exact,
				Restriction::Free,
				Fortitude::Polite,
			)
		};
		// Escrow only shrinks by what actually moved, so held funds and records always agree.
		let net = total.saturating_sub(fee);
		let mut paid = Zero::zero();
		match pay(&deal.provider, net) {
			Ok(_) => paid = net,
			Err(_) => {
				defensive!("the escrow covers every charge it is capped at");
			}
		}
		// The treasury may not exist yet (a fee below the existential deposit): then the
		// provider gets the fee rather than leaving it stranded.
		if pay(&T::TreasuryAccount::get(), fee).is_ok() || pay(&deal.provider, fee).is_ok() {
			paid = paid.saturating_add(fee);
		}
		deal.escrow = deal.escrow.saturating_sub(paid);
		deal.charged.accumulate(&charges);
		deal.settled_until = period_end;
		Self::deposit_event(Event::Settled { id, period_start, period_end, charges, total, fee });

		if exhausted {
			if let DeploymentState::Active { accepted_at } = deal.state {
				let grace_ends = now.saturating_add(T::GracePeriod::get());
				deal.state = DeploymentState::OutOfFunds { accepted_at, since: now, grace_ends };
				Self::schedule_expiry(grace_ends, id);
				Self::deposit_event(Event::OutOfFunds { id, grace_ends });
			}
		}
	}

	/// Cuts charges down to `available`, resource by resource in a fixed order, so the parts
	/// still add up to what is paid.
	fn cap_charges(
		charges: Charges<BalanceOf<T>>,
		available: BalanceOf<T>,
	) -> Charges<BalanceOf<T>> {
		let mut left = available;
		let mut take = |amount: BalanceOf<T>| {
			let taken = amount.min(left);
			left = left.saturating_sub(taken);
			taken
		};
		Charges {
			cpu: take(charges.cpu),
			memory: take(charges.memory),
			storage: take(charges.storage),
			gpu: take(charges.gpu),
			egress: take(charges.egress),
		}
	}

	/// A deployment's bill so far (runtime API).
	pub fn bill(id: DeploymentId) -> Option<Bill<BalanceOf<T>, BlockNumberFor<T>>> {
		let deal = Deployments::<T>::get(id)?;
		let now = frame_system::Pallet::<T>::block_number();
		Some(Bill {
			charged: deal.charged,
			total: deal.charged.total(),
			escrow: deal.escrow,
			settled_until: deal.settled_until,
			accrued: Self::accrued(&deal, now),
		})
	}

	/// The protocol fee (re-exported for clients that compute net payments).
	pub fn protocol_fee() -> Perbill {
		ProtocolFee::<T>::get()
	}
}
