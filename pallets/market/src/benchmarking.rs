//! Benchmarks of the market's calls and hook, each at its worst case.

use super::*;
use crate::Pallet as Market;
use alloc::vec::Vec;
use frame_benchmarking::v2::*;
use frame_support::{
	pallet_prelude::*,
	traits::{fungible::Mutate, EnsureOrigin, Hooks},
};
use frame_system::{pallet_prelude::BlockNumberFor, RawOrigin};
use sp_runtime::{
	traits::{Bounded, SaturatedConversion, Saturating, Zero},
	Perbill,
};

fn funded<T: Config>(name: &'static str, index: u32) -> T::AccountId {
	let who: T::AccountId = account(name, index, 0);
	// Enough for any deposit, small enough that thousands of accounts never overflow issuance.
	T::Currency::set_balance(&who, BalanceOf::<T>::max_value() / 1_000_000u32.into());
	who
}

fn provider<T: Config>() -> T::AccountId {
	// The benchmark harness runs calls from block 1 on: set up at the block they run in.
	if frame_system::Pallet::<T>::block_number().is_zero() {
		frame_system::Pallet::<T>::set_block_number(1u32.into());
	}
	let who = funded::<T>("provider", 0);
	T::BenchmarkHelper::register_provider(&who);
	who
}

fn resources() -> Resources {
	Resources { cpu_millicores: 1000, memory_mib: 1024, storage_gib: 10, gpus: 0 }
}

/// Resources dear enough that a grace period's debt is more than a name deposit, so ending the
/// deal takes every step: paying from escrow, then from the name deposit, then writing off.
fn dear_resources() -> Resources {
	Resources { cpu_millicores: u32::MAX / 4 * 3, memory_mib: 1024, storage_gib: 10, gpus: 0 }
}

fn deposit<T: Config>() -> BalanceOf<T> {
	T::MinDeposit::get().max(1_000_000_000u32.into()).saturating_mul(1_000u32.into())
}

/// Limits that admit any quote, with the chain's egress maximum.
fn any_price<T: Config>() -> DealLimits<BalanceOf<T>> {
	let max = BalanceOf::<T>::max_value();
	DealLimits {
		max_prices: Prices {
			cpu_per_millicore_second: max,
			memory_per_mib_second: max,
			storage_per_gib_second: max,
			gpu_per_second: max,
			egress_per_byte: max,
		},
		max_egress_bytes_per_second: T::MaxEgressBytesPerSecond::get(),
	}
}

/// SLA terms every benchmark provider offers, so ending a deal also ends its measurement.
fn sla<T: Config>() -> Option<SlaTerms<BalanceOf<T>>> {
	Some(SlaTerms {
		uptime_target: sp_runtime::Permill::from_percent(99),
		window_blocks: T::BenchmarkHelper::shortest_sla_window(),
		penalty_per_window: 1u32.into(),
		health: podchain_primitives::HealthCheck::root_ok(),
	})
}

fn request<T: Config>(
	provider: &T::AccountId,
	resources: Resources,
	billing: BillingMode,
	sla: Option<SlaTerms<BalanceOf<T>>>,
	deposit: BalanceOf<T>,
) -> lifecycle::DealRequest<T> {
	lifecycle::DealRequest {
		provider: provider.clone(),
		manifest_hash: [1u8; 32],
		resources,
		billing,
		sla,
		limits: any_price::<T>(),
		deposit,
	}
}

/// Creates a deployment of `publisher` on `provider`, accepted at the current block.
fn active<T: Config>(
	publisher: &T::AccountId,
	provider: &T::AccountId,
	billing: BillingMode,
	deposit: BalanceOf<T>,
) -> DeploymentId {
	accepted::<T>(publisher, request::<T>(provider, resources(), billing, None, deposit))
}

fn accepted<T: Config>(
	publisher: &T::AccountId,
	request: lifecycle::DealRequest<T>,
) -> DeploymentId {
	let id = NextDeploymentId::<T>::get();
	let provider = request.provider.clone();
	Market::<T>::do_create(publisher.clone(), request).expect("creates");
	Market::<T>::do_accept(provider, id).expect("accepts");
	id
}

/// The least escrow a dear deal can start with: it runs out soonest.
fn dear_prepaid<T: Config>(provider: &T::AccountId) -> BalanceOf<T> {
	let prices = T::Providers::quote(provider).expect("a benchmark provider quotes");
	let per_second = prices.per_second(&dear_resources()).expect("no overflow");
	per_second
		.saturating_mul(T::MinPrepaidSeconds::get().saturated_into())
		.max(T::MinDeposit::get())
}

/// A reserved, named deal with SLA terms on `provider` that has run out of funds and is at the
/// last block of its grace period (nothing has looked at it since it ran out: whoever does
/// next applies the exhaustion first). Returns its id.
fn in_grace<T: Config>(
	publisher: &T::AccountId,
	provider: &T::AccountId,
) -> Result<DeploymentId, BenchmarkError> {
	let deposit = dear_prepaid::<T>(provider);
	let id = accepted::<T>(
		publisher,
		request::<T>(provider, dear_resources(), BillingMode::Reserved, sla::<T>(), deposit),
	);
	let name = alloc::format!("deal-{id}").into_bytes();
	Market::<T>::do_register_name(
		publisher.clone(),
		id,
		name.try_into().map_err(|_| BenchmarkError::Weightless)?,
	)?;
	let deal = Deployments::<T>::get(id).ok_or(BenchmarkError::Weightless)?;
	let runs_out = Market::<T>::funded_until(&deal).ok_or(BenchmarkError::Weightless)?;
	let last_grace_block =
		runs_out.saturating_add(T::GracePeriod::get()).saturating_sub(1u32.into());
	frame_system::Pallet::<T>::set_block_number(
		last_grace_block.max(frame_system::Pallet::<T>::block_number()),
	);
	Ok(id)
}

/// Runs `f` and rolls back everything it wrote: to learn where a call will queue a deadline.
fn dry_run<R>(f: impl FnOnce() -> Result<R, DispatchError>) -> Result<R, BenchmarkError> {
	use frame_support::storage::{with_transaction, TransactionOutcome};
	with_transaction(|| TransactionOutcome::Rollback(f())).map_err(BenchmarkError::from)
}

/// Adds a full page to the queue at `at`, so whatever a call queues there opens a new page.
fn fill_queue_page<T: Config>(at: BlockNumberFor<T>) {
	let pages = ExpiryPages::<T>::get(at);
	let full: Vec<DeploymentId> =
		(0..T::MaxExpiriesPerBlock::get()).map(|i| u64::MAX - i as u64).collect();
	Expiries::<T>::insert(at, pages, BoundedVec::truncate_from(full));
	ExpiryPages::<T>::insert(at, pages.saturating_add(1));
}

fn advance<T: Config>(blocks: u32) -> BlockNumberFor<T> {
	let now = frame_system::Pallet::<T>::block_number() + blocks.into();
	frame_system::Pallet::<T>::set_block_number(now);
	now
}

/// A name of the greatest length allowed.
fn longest_name() -> Result<NameInput, BenchmarkError> {
	[b'a'; MAX_NAME_LEN as usize].to_vec().try_into().map_err(|_| BenchmarkError::Weightless)
}

/// A batch for `report_usage` by the benchmark provider: `n` reports that only bill (their
/// escrow covers the period) and `e` that end a named deal with SLA terms closed by its
/// publisher, whose last report costs more than its escrow and name deposit.
#[allow(clippy::type_complexity)]
fn report_batch<T: Config>(
	n: u32,
	e: u32,
) -> Result<
	(T::AccountId, BoundedVec<UsageReport<BlockNumberFor<T>>, T::MaxReportsPerCall>),
	BenchmarkError,
> {
	ProtocolFee::<T>::put(Perbill::from_percent(5));
	let provider = provider::<T>();
	let start = frame_system::Pallet::<T>::block_number();
	// Dear enough that a long period's bill is more than the prepaid escrow plus the name
	// deposit, small enough that all of them fit on the provider at once.
	let dear = Resources {
		cpu_millicores: u32::MAX / 2 / T::MaxReportsPerCall::get().max(1),
		..resources()
	};
	let prices = T::Providers::quote(&provider).ok_or(BenchmarkError::Weightless)?;
	let per_second = prices.per_second(&dear).ok_or(BenchmarkError::Weightless)?;
	let prepaid = per_second
		.saturating_mul(T::MinPrepaidSeconds::get().saturated_into())
		.max(T::MinDeposit::get());
	// Long enough that a full report of a dear deal costs more than its escrow and the name
	// deposit together.
	let owed = prepaid.saturating_add(T::NameDeposit::get());
	let seconds: u64 = (owed / per_second.max(1u32.into())).saturated_into();
	let millis = T::BlockDurationMillis::get().max(1);
	let blocks: u32 =
		(seconds.saturating_add(1).saturating_mul(1000) / millis + 1).saturated_into();
	// A billing-only report pays from an escrow that covers the whole period.
	let plain_per_second = prices.per_second(&resources()).ok_or(BenchmarkError::Weightless)?;
	let period_seconds = u64::from(blocks).saturating_mul(millis) / 1000 + 1;
	let plain_deposit = plain_per_second
		.saturating_mul(period_seconds.saturated_into())
		.saturating_add(deposit::<T>());
	let mut ids = Vec::new();
	for i in 0..n.saturating_add(e) {
		let publisher = funded::<T>("publisher", i);
		let id = if i < e {
			// One provider reports them all: past its most SLA deals, they carry no terms.
			let terms = if i < T::BenchmarkHelper::max_sla_deals_per_provider() {
				sla::<T>()
			} else {
				None
			};
			let id = accepted::<T>(
				&publisher,
				request::<T>(&provider, dear, BillingMode::Metered, terms, prepaid),
			);
			let name = alloc::format!("deal-{id}").into_bytes();
			let name = name.try_into().map_err(|_| BenchmarkError::Weightless)?;
			Market::<T>::do_register_name(publisher.clone(), id, name)?;
			id
		} else {
			active::<T>(&publisher, &provider, BillingMode::Metered, plain_deposit)
		};
		ids.push(id);
	}
	let end = advance::<T>(blocks);
	for id in ids.iter().take(e as usize) {
		let publisher = Deployments::<T>::get(id).ok_or(BenchmarkError::Weightless)?.publisher;
		Market::<T>::do_close_call(publisher, *id, CloseReason::PublisherRequest)?;
	}
	let seconds = Market::<T>::seconds_between(start, end);
	let reports: Vec<_> = ids
		.iter()
		.enumerate()
		.map(|(i, &deployment)| {
			let r = if (i as u32) < e { dear } else { resources() };
			let full = |reserved: u32| u64::from(reserved).saturating_mul(seconds);
			UsageReport {
				deployment,
				period_start: start,
				period_end: end,
				cpu_millicore_seconds: full(r.cpu_millicores),
				memory_mib_seconds: full(r.memory_mib),
				storage_gib_seconds: full(r.storage_gib),
				gpu_seconds: 0,
				egress_bytes: 1_000,
			}
		})
		.collect();
	let reports = reports.try_into().map_err(|_| BenchmarkError::Weightless)?;
	Ok((provider, reports))
}

/// What a batch from [`report_batch`] must have done.
fn verify_report_batch<T: Config>(n: u32, e: u32) {
	assert_eq!(Deployments::<T>::iter().count() as u32, n);
	let billed_only = |d: DeploymentOf<T>| matches!(d.state, DeploymentState::Active { .. });
	assert!(Deployments::<T>::iter_values().all(billed_only), "plain reports only bill");
	if e > 0 {
		assert!(!UnpaidDebts::<T>::get(funded::<T>("publisher", 0)).amount.is_zero());
	}
}

#[benchmarks]
mod benchmarks {
	use super::*;

	/// Worst case: a deployment with SLA terms placed in the caller's rent (the rent is read
	/// and written).
	#[benchmark]
	fn create_deployment() -> Result<(), BenchmarkError> {
		let provider = provider::<T>();
		let publisher = funded::<T>("publisher", 0);
		let rent = NextDeploymentId::<T>::get();
		Market::<T>::do_create_rent(
			publisher.clone(),
			provider.clone(),
			any_price::<T>(),
			deposit::<T>(),
		)?;
		Market::<T>::do_accept(provider.clone(), rent)?;

		#[extrinsic_call]
		_(
			RawOrigin::Signed(publisher),
			provider,
			[1u8; 32],
			resources(),
			BillingMode::Metered,
			sla::<T>(),
			any_price::<T>(),
			deposit::<T>(),
		);

		let placed = Deployments::<T>::get(rent + 1).map(|d| d.kind);
		assert_eq!(placed, Some(DealKind::InRent { rent }));
		Ok(())
	}

	/// Worst case: a reserved deployment with SLA terms (its measurement starts), whose
	/// exhaustion block opens a new page of the queue.
	#[benchmark]
	fn accept_deployment() -> Result<(), BenchmarkError> {
		let provider = provider::<T>();
		let publisher = funded::<T>("publisher", 0);
		let id = NextDeploymentId::<T>::get();
		let deposit = dear_prepaid::<T>(&provider);
		Market::<T>::do_create(
			publisher,
			request::<T>(&provider, dear_resources(), BillingMode::Reserved, sla::<T>(), deposit),
		)?;
		// Where acceptance will queue its exhaustion block: open a new page there.
		let runs_out = dry_run(|| {
			Market::<T>::do_accept(provider.clone(), id)?;
			Ok(Deployments::<T>::get(id).and_then(|deal| Market::<T>::funded_until(&deal)))
		})?
		.ok_or(BenchmarkError::Weightless)?;
		fill_queue_page::<T>(runs_out);

		#[extrinsic_call]
		_(RawOrigin::Signed(provider), id);

		assert_eq!(ExpiryPages::<T>::get(runs_out), 2, "queued at {runs_out:?} in a new page");
		Ok(())
	}

	/// Worst case: the provider closes a named reserved deal with SLA terms at the end of its
	/// grace period. The call first applies the exhaustion nobody looked at, then bills the
	/// grace period as debt, ends the SLA, pays the debt from the name deposit and writes off
	/// the rest.
	#[benchmark]
	fn close_deployment() -> Result<(), BenchmarkError> {
		ProtocolFee::<T>::put(Perbill::from_percent(5));
		let provider = provider::<T>();
		let publisher = funded::<T>("publisher", 0);
		let id = in_grace::<T>(&publisher, &provider)?;

		#[extrinsic_call]
		_(RawOrigin::Signed(provider), id, CloseReason::OutOfFunds);

		assert!(!Deployments::<T>::contains_key(id));
		assert_eq!(UnpaidDebts::<T>::get(&publisher).deals, 1);
		Ok(())
	}

	/// Worst case: a named reserved deal with SLA terms at the end of its grace period comes
	/// back: the exhaustion nobody looked at is applied, the grace period billed as debt, the
	/// debt paid to provider and treasury, and the new exhaustion block opens a queue page.
	#[benchmark]
	fn top_up() -> Result<(), BenchmarkError> {
		ProtocolFee::<T>::put(Perbill::from_percent(5));
		let provider = provider::<T>();
		let publisher = funded::<T>("publisher", 0);
		let id = in_grace::<T>(&publisher, &provider)?;
		let amount = deposit::<T>().saturating_mul(1_000_000u32.into());
		// Where the top-up will queue the new exhaustion block: open a new page there.
		let runs_out = dry_run(|| {
			Market::<T>::do_top_up(publisher.clone(), id, amount)?;
			Ok(Deployments::<T>::get(id).and_then(|deal| Market::<T>::funded_until(&deal)))
		})?
		.ok_or(BenchmarkError::Weightless)?;
		fill_queue_page::<T>(runs_out);

		#[extrinsic_call]
		_(RawOrigin::Signed(publisher), id, amount);

		let deal = Deployments::<T>::get(id).ok_or(BenchmarkError::Weightless)?;
		assert!(matches!(deal.state, DeploymentState::Active { .. }));
		assert!(deal.debt.is_zero());
		Ok(())
	}

	/// Worst case: the deal carries SLA terms, whose measurement pauses meanwhile.
	#[benchmark]
	fn update_manifest() {
		let provider = provider::<T>();
		let publisher = funded::<T>("publisher", 0);
		let id = accepted::<T>(
			&publisher,
			request::<T>(&provider, resources(), BillingMode::Metered, sla::<T>(), deposit::<T>()),
		);

		#[extrinsic_call]
		_(RawOrigin::Signed(publisher), id, [2u8; 32]);

		assert_eq!(Deployments::<T>::get(id).and_then(|d| d.pending_manifest), Some([2u8; 32]));
	}

	/// `n` reports that only bill, each for its own deployment, paid to provider and treasury
	/// once for the batch.
	#[benchmark]
	fn report_usage_billing(
		n: Linear<1, { T::MaxReportsPerCall::get() }>,
	) -> Result<(), BenchmarkError> {
		let (provider, reports) = report_batch::<T>(n, 0)?;

		#[extrinsic_call]
		report_usage(RawOrigin::Signed(provider), reports);

		verify_report_batch::<T>(n, 0);
		Ok(())
	}

	/// `e` reports that end their deal, the worst case each (see [`report_batch`]). Apart from
	/// billing-only reports: measured in one benchmark, the ending reports' cost drowns theirs.
	/// Measured up to the most SLA deals one provider may run, so that every deal measured
	/// carries terms; the slope prices the calls with more (fewer of them with terms) above
	/// their cost.
	#[benchmark]
	fn report_usage_ending(
		e: Linear<
			1,
			{ T::MaxReportsPerCall::get().min(T::BenchmarkHelper::max_sla_deals_per_provider()) },
		>,
	) -> Result<(), BenchmarkError> {
		let (provider, reports) = report_batch::<T>(0, e)?;

		#[extrinsic_call]
		report_usage(RawOrigin::Signed(provider), reports);

		verify_report_batch::<T>(0, e);
		Ok(())
	}

	/// Worst case: anyone settles a named reserved deal with SLA terms whose grace period
	/// ended while nobody looked: its exhaustion and grace end are applied and it ends owing.
	#[benchmark]
	fn settle() -> Result<(), BenchmarkError> {
		ProtocolFee::<T>::put(Perbill::from_percent(5));
		let provider = provider::<T>();
		let publisher = funded::<T>("publisher", 0);
		let id = in_grace::<T>(&publisher, &provider)?;
		advance::<T>(1);
		let caller = funded::<T>("caller", 0);

		#[extrinsic_call]
		_(RawOrigin::Signed(caller), id);

		assert!(!Deployments::<T>::contains_key(id));
		Ok(())
	}

	#[benchmark]
	fn set_protocol_fee() -> Result<(), BenchmarkError> {
		let origin =
			T::FeeOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)?;

		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, Perbill::from_percent(3));

		assert_eq!(ProtocolFee::<T>::get(), Perbill::from_percent(3));
		Ok(())
	}

	/// `n` deadlines in one page: named reserved deals with SLA terms, each of its own
	/// provider, whose grace ends; each is billed, pays from its name deposit and ends owing.
	/// The cursor first steps over the most empty blocks it may. Measured from one deadline
	/// up: the first brings writes of its own (the SLA due queue, the treasury), which a fit
	/// through an empty page would spread over the slope and under-price a full page by; an
	/// empty page is priced at the intercept, above its cost.
	#[benchmark]
	fn on_initialize(
		n: Linear<1, { T::MaxExpiriesPerBlock::get() }>,
	) -> Result<(), BenchmarkError> {
		ProtocolFee::<T>::put(Perbill::from_percent(5));
		let start = frame_system::Pallet::<T>::block_number().max(1u32.into());
		frame_system::Pallet::<T>::set_block_number(start);
		let mut ids = Vec::new();
		for i in 0..n {
			let who = funded::<T>("provider", i);
			T::BenchmarkHelper::register_provider(&who);
			let publisher = funded::<T>("publisher", i);
			let deposit = dear_prepaid::<T>(&who);
			let id = accepted::<T>(
				&publisher,
				request::<T>(&who, dear_resources(), BillingMode::Reserved, sla::<T>(), deposit),
			);
			let name = alloc::format!("deal-{id}").into_bytes();
			let name = name.try_into().map_err(|_| BenchmarkError::Weightless)?;
			Market::<T>::do_register_name(publisher, id, name)?;
			ids.push(id);
		}
		// All ran out at `start` (as if their escrow had been spent) and their grace ends now.
		let grace_ends = start.saturating_add(T::GracePeriod::get());
		for id in &ids {
			Deployments::<T>::mutate(id, |deal| {
				if let Some(deal) = deal {
					deal.escrow = Zero::zero();
					deal.state = DeploymentState::OutOfFunds {
						accepted_at: start,
						since: start,
						grace_ends,
					};
				}
			});
		}
		let _ = Expiries::<T>::clear(u32::MAX, None);
		let _ = ExpiryPages::<T>::clear(u32::MAX, None);
		let lag: BlockNumberFor<T> = expiry::MAX_EMPTY_BLOCKS_STEPPED.into();
		let now = grace_ends.saturating_add(lag);
		if n > 0 {
			Expiries::<T>::insert(grace_ends, 0, BoundedVec::truncate_from(ids));
			ExpiryPages::<T>::insert(grace_ends, 1);
		}
		ExpiryCursor::<T>::put((grace_ends.saturating_sub(lag), 0));
		frame_system::Pallet::<T>::set_block_number(now);

		#[block]
		{
			Market::<T>::on_initialize(now);
		}

		assert_eq!(Deployments::<T>::iter().count(), 0);
		Ok(())
	}

	#[benchmark]
	fn register_name() -> Result<(), BenchmarkError> {
		let provider = provider::<T>();
		let publisher = funded::<T>("publisher", 0);
		let id = active::<T>(&publisher, &provider, BillingMode::Metered, deposit::<T>());
		let name = longest_name()?;

		#[extrinsic_call]
		_(RawOrigin::Signed(publisher), id, name);

		assert!(DeploymentNames::<T>::contains_key(id));
		Ok(())
	}

	#[benchmark]
	fn release_name() -> Result<(), BenchmarkError> {
		let provider = provider::<T>();
		let publisher = funded::<T>("publisher", 0);
		let id = active::<T>(&publisher, &provider, BillingMode::Metered, deposit::<T>());
		let name = longest_name()?;
		Market::<T>::do_register_name(publisher.clone(), id, name)?;

		#[extrinsic_call]
		_(RawOrigin::Signed(publisher), id);

		assert!(!DeploymentNames::<T>::contains_key(id));
		Ok(())
	}

	#[benchmark]
	fn create_rent() {
		let provider = provider::<T>();
		let renter = funded::<T>("renter", 0);

		#[extrinsic_call]
		_(RawOrigin::Signed(renter), provider, any_price::<T>(), deposit::<T>());

		assert!(Deployments::<T>::get(0).is_some_and(|d| d.is_rent()));
	}

	/// The renter closes a rent holding `c` deployments, each named and refunded as it ends.
	#[benchmark]
	fn close_rent(c: Linear<0, MAX_DEPLOYMENTS_PER_RENT>) -> Result<(), BenchmarkError> {
		ProtocolFee::<T>::put(Perbill::from_percent(5));
		let provider = provider::<T>();
		let renter = funded::<T>("renter", 0);
		let rent = NextDeploymentId::<T>::get();
		Market::<T>::do_create_rent(
			renter.clone(),
			provider.clone(),
			any_price::<T>(),
			deposit::<T>(),
		)?;
		Market::<T>::do_accept(provider.clone(), rent)?;
		// Pending deployments are the dearest to end: each is refunded and its name released
		// at once (a running one only moves to `Closing`).
		for i in 0..c {
			let id = NextDeploymentId::<T>::get();
			Market::<T>::do_create(
				renter.clone(),
				request::<T>(&provider, resources(), BillingMode::Metered, None, deposit::<T>()),
			)?;
			let name = alloc::format!("deployment-{i}").into_bytes();
			let name = name.try_into().map_err(|_| BenchmarkError::Weightless)?;
			Market::<T>::do_register_name(renter.clone(), id, name)?;
		}
		advance::<T>(10);

		#[extrinsic_call]
		close_deployment(RawOrigin::Signed(renter), rent, CloseReason::PublisherRequest);

		assert_eq!(Deployments::<T>::iter().count(), 0);
		Ok(())
	}

	impl_benchmark_test_suite!(Market, crate::mock::build_ext_for_benchmarks(), crate::mock::Test);
}
