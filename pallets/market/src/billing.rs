//! Billing: pricing periods of reserved or metered use, and moving escrow to the provider and
//! the treasury.

use crate::escrow::Payout;
use crate::*;
use frame_support::{ensure, pallet_prelude::*};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::{
	traits::{Bounded, CheckedMul, SaturatedConversion, Saturating, Zero},
	Perbill,
};

/// What an accepted usage report did, for the weight its call is charged.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Reported {
	/// It billed a period.
	Billed,
	/// It also put the deal out of funds or ended it.
	Changed,
}

impl<T: Config> Pallet<T> {
	/// Weight of a `report_usage` batch with `billing` reports that only bill and `changing`
	/// that put their deal out of funds or end it (each its own benchmark).
	pub fn report_usage_weight(billing: u32, changing: u32) -> Weight {
		T::WeightInfo::report_usage_billing(billing)
			.saturating_add(T::WeightInfo::report_usage_ending(changing))
	}

	/// Weight `report_usage` declares for a batch of `reports`: the more of "every report ends
	/// its deal" and "none does"; the call refunds down to what the batch did.
	pub(crate) fn weight_of_reports(reports: u32) -> Weight {
		Self::report_usage_weight(reports, 0).max(Self::report_usage_weight(0, reports))
	}

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

	/// The end of the period a deployment can be billed for at `now`: a running deal up to
	/// now, one out of funds up to the end of its grace period (that time is owed, as debt
	/// if the escrow cannot pay it), a closing one up to when it closed.
	pub(crate) fn billable_until(
		deal: &DeploymentOf<T>,
		now: BlockNumberFor<T>,
	) -> BlockNumberFor<T> {
		match deal.state {
			DeploymentState::Pending { .. } => deal.settled_until,
			DeploymentState::Active { .. } => now,
			DeploymentState::OutOfFunds { grace_ends, .. } => now.min(grace_ends),
			DeploymentState::Closing { closed_at, .. } => closed_at,
		}
	}

	/// Price of `deal`'s reserved resources over the blocks `[start, end)`; `None` on overflow.
	pub(crate) fn cost_of(
		deal: &DeploymentOf<T>,
		start: BlockNumberFor<T>,
		end: BlockNumberFor<T>,
	) -> Option<Charges<BalanceOf<T>>> {
		Self::reserved_charges(&deal.prices, &deal.resources, Self::seconds_between(start, end))
	}

	/// Least escrow a deal must hold to start or come back: its reserved resources for
	/// [`Config::MinPrepaidSeconds`] at its prices (saturating: an overflowing price cannot
	/// be prepaid at all).
	pub(crate) fn min_prepaid(deal: &DeploymentOf<T>) -> BalanceOf<T> {
		deal.prices
			.per_second(&deal.resources)
			.and_then(|p| p.checked_mul(&T::MinPrepaidSeconds::get().saturated_into()))
			.unwrap_or_else(BalanceOf::<T>::max_value)
	}

	/// For a running reserved deal, the block its escrow pays up to: it goes out of funds
	/// there. `None` for metered deals (their reports exhaust them) and deals that cost
	/// nothing.
	pub(crate) fn funded_until(deal: &DeploymentOf<T>) -> Option<BlockNumberFor<T>> {
		if deal.billing != BillingMode::Reserved
			|| !matches!(deal.state, DeploymentState::Active { .. })
		{
			return None;
		}
		let per_second = deal.prices.per_second(&deal.resources).unwrap_or_else(|| {
			// Overflowing prices cannot be paid for even a second.
			BalanceOf::<T>::max_value()
		});
		if per_second.is_zero() {
			return None;
		}
		let seconds: u64 = (deal.escrow / per_second).saturated_into();
		// Whole blocks whose billed seconds the escrow covers.
		let blocks =
			(seconds as u128).saturating_mul(1000) / u128::from(T::BlockDurationMillis::get());
		let blocks: BlockNumberFor<T> = blocks.saturated_into();
		Some(deal.settled_until.saturating_add(blocks))
	}

	/// The next block at which `deal` must change state without anyone touching it.
	pub(crate) fn deadline(deal: &DeploymentOf<T>) -> Option<BlockNumberFor<T>> {
		match deal.state {
			DeploymentState::Active { .. } => Self::funded_until(deal),
			DeploymentState::OutOfFunds { grace_ends, .. } => Some(grace_ends),
			DeploymentState::Closing { settle_by, .. } => Some(settle_by),
			DeploymentState::Pending { .. } => None,
		}
	}

	/// What settling a reserved deployment now would charge (runtime API).
	pub(crate) fn accrued(deal: &DeploymentOf<T>, now: BlockNumberFor<T>) -> BalanceOf<T> {
		if deal.billing != BillingMode::Reserved {
			return Zero::zero();
		}
		let end = Self::billable_until(deal, now).min(Self::funded_until(deal).unwrap_or(now));
		Self::cost_of(deal, deal.settled_until, end.max(deal.settled_until))
			.map_or(deal.escrow, |c| c.total())
	}

	/// Bills a reserved deal's resources up to `until` (no further than it can be billed at
	/// `until`). What the escrow cannot pay becomes debt. Does nothing for metered deals.
	pub(crate) fn bill_reserved(
		id: DeploymentId,
		deal: &mut DeploymentOf<T>,
		until: BlockNumberFor<T>,
		payout: &mut Payout<T>,
	) {
		if deal.billing != BillingMode::Reserved {
			return;
		}
		let end = Self::billable_until(deal, until);
		if end <= deal.settled_until {
			return;
		}
		// Prices were checked by the registry for a long horizon; if they still overflow, the
		// whole escrow is owed.
		let charges = Self::cost_of(deal, deal.settled_until, end)
			.unwrap_or(Charges { cpu: deal.escrow, ..Default::default() });
		Self::charge(id, deal, charges, end, payout);
	}

	/// Checks one usage report and settles it. Says whether it did more than bill.
	pub(crate) fn apply_report(
		who: &T::AccountId,
		report: &UsageReport<BlockNumberFor<T>>,
		now: BlockNumberFor<T>,
		payout: &mut Payout<T>,
	) -> Result<Reported, DispatchError> {
		let id = report.deployment;
		let mut deal = Deployments::<T>::get(id).ok_or(Error::<T>::UnknownDeployment)?;
		ensure!(&deal.provider == who, Error::<T>::NotProvider);
		ensure!(deal.billing == BillingMode::Metered, Error::<T>::NotMetered);
		ensure!(!matches!(deal.state, DeploymentState::Pending { .. }), Error::<T>::NotActive);
		// A deadline that fell while nobody looked applies first, at its own block, and stays
		// applied even if this report is refused (a batch is not rolled back).
		let state = deal.state;
		if Self::catch_up(id, &mut deal, now, payout).is_some() {
			return Err(Error::<T>::NotActive.into());
		}
		if deal.state != state {
			Deployments::<T>::insert(id, &deal);
		}
		ensure!(report.period_start == deal.settled_until, Error::<T>::PeriodNotContiguous);
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
				&& report.egress_bytes <= deal.egress_limit.saturating_mul(seconds),
			Error::<T>::UsageAboveReserved
		);
		let charges =
			Self::metered_charges(&deal.prices, report).ok_or(Error::<T>::ChargeOverflow)?;
		let unpaid = Self::charge(id, &mut deal, charges, report.period_end, payout);
		if !unpaid.is_zero() {
			if let DeploymentState::Active { accepted_at } = deal.state {
				Self::run_out_of_funds(id, &mut deal, accepted_at, now);
				Deployments::<T>::insert(id, deal);
				return Ok(Reported::Changed);
			}
		}
		// A closing deployment whose usage is reported in full is done.
		if let DeploymentState::Closing { closed_at, reason, .. } = deal.state {
			if deal.settled_until >= closed_at {
				Self::finish(id, deal, reason, payout);
				return Ok(Reported::Changed);
			}
		}
		Deployments::<T>::insert(id, deal);
		Ok(Reported::Billed)
	}

	/// Puts a running deal out of funds at `since`: it has a grace period to be topped up.
	pub(crate) fn run_out_of_funds(
		id: DeploymentId,
		deal: &mut DeploymentOf<T>,
		accepted_at: BlockNumberFor<T>,
		since: BlockNumberFor<T>,
	) {
		let grace_ends = since.saturating_add(T::GracePeriod::get());
		deal.state = DeploymentState::OutOfFunds { accepted_at, since, grace_ends };
		Self::schedule_expiry(grace_ends, id);
		Self::deposit_event(Event::OutOfFunds { id, since, grace_ends });
	}

	/// Bills `charges` for the period up to `period_end`: the escrow pays what it can (to the
	/// provider and the treasury, through `payout`), the rest becomes the deal's debt. Emits
	/// the itemised `Settled` event and returns the unpaid part.
	pub(crate) fn charge(
		id: DeploymentId,
		deal: &mut DeploymentOf<T>,
		charges: Charges<BalanceOf<T>>,
		period_end: BlockNumberFor<T>,
		payout: &mut Payout<T>,
	) -> BalanceOf<T> {
		let period_start = deal.settled_until;
		let total = charges.total();
		let paid = total.min(deal.escrow);
		let unpaid = total.saturating_sub(paid);
		let fee = ProtocolFee::<T>::get() * paid;
		payout.add(&deal.provider, paid.saturating_sub(fee), fee);
		deal.escrow = deal.escrow.saturating_sub(paid);
		deal.debt = deal.debt.saturating_add(unpaid);
		deal.charged.accumulate(&charges);
		deal.settled_until = period_end;
		Self::deposit_event(Event::Settled {
			id,
			period_start,
			period_end,
			charges,
			total,
			fee,
			unpaid,
		});
		unpaid
	}

	/// Pays as much of the deal's debt as its escrow holds.
	pub(crate) fn pay_debt(id: DeploymentId, deal: &mut DeploymentOf<T>, payout: &mut Payout<T>) {
		let amount = deal.debt.min(deal.escrow);
		if amount.is_zero() {
			return;
		}
		let fee = ProtocolFee::<T>::get() * amount;
		payout.add(&deal.provider, amount.saturating_sub(fee), fee);
		deal.escrow = deal.escrow.saturating_sub(amount);
		deal.debt = deal.debt.saturating_sub(amount);
		Self::deposit_event(Event::DebtPaid { id, amount, fee });
	}

	/// What the publisher has paid for `deal` by `now`: the charges its escrow paid (debt
	/// excluded), and for reserved billing the escrow that covers time already served but not
	/// billed yet (it can only go to the provider). What the SLA pallet bounds credits by.
	pub fn paid_for(deal: &DeploymentOf<T>, now: BlockNumberFor<T>) -> BalanceOf<T> {
		let billed = deal.charged.total().saturating_sub(deal.debt);
		billed.saturating_add(Self::accrued(deal, now).min(deal.escrow))
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
			debt: deal.debt,
			funded_until: Self::funded_until(&deal),
		})
	}

	/// The protocol fee (re-exported for clients that compute net payments).
	pub fn protocol_fee() -> Perbill {
		ProtocolFee::<T>::get()
	}
}
