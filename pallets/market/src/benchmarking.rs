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
	traits::{Bounded, Saturating},
	Perbill,
};

fn funded<T: Config>(name: &'static str, index: u32) -> T::AccountId {
	let who: T::AccountId = account(name, index, 0);
	// Enough for any deposit, small enough that thousands of accounts never overflow issuance.
	T::Currency::set_balance(&who, BalanceOf::<T>::max_value() / 1_000_000u32.into());
	who
}

fn provider<T: Config>() -> T::AccountId {
	let who = funded::<T>("provider", 0);
	T::BenchmarkHelper::register_provider(&who);
	who
}

fn resources() -> Resources {
	Resources { cpu_millicores: 1000, memory_mib: 1024, storage_gib: 10, gpus: 0 }
}

fn deposit<T: Config>() -> BalanceOf<T> {
	T::MinDeposit::get().max(1_000_000_000u32.into()).saturating_mul(1_000u32.into())
}

/// Creates a deployment of `publisher` on `provider`, accepted at the current block.
fn active<T: Config>(
	publisher: &T::AccountId,
	provider: &T::AccountId,
	billing: BillingMode,
	deposit: BalanceOf<T>,
) -> DeploymentId {
	let id = NextDeploymentId::<T>::get();
	Market::<T>::do_create(
		publisher.clone(),
		provider.clone(),
		[1u8; 32],
		resources(),
		billing,
		None,
		deposit,
	)
	.expect("creates");
	Market::<T>::do_accept(provider.clone(), id).expect("accepts");
	id
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

#[benchmarks]
mod benchmarks {
	use super::*;

	/// Worst case: a deployment placed in the caller's rent (the rent is read and written).
	#[benchmark]
	fn create_deployment() -> Result<(), BenchmarkError> {
		let provider = provider::<T>();
		let publisher = funded::<T>("publisher", 0);
		let rent = NextDeploymentId::<T>::get();
		Market::<T>::do_create_rent(publisher.clone(), provider.clone(), deposit::<T>())?;
		Market::<T>::do_accept(provider.clone(), rent)?;
		let sla = Some(SlaTerms {
			uptime_target: sp_runtime::Permill::from_percent(99),
			window_blocks: 600,
			penalty_per_window: 1u32.into(),
		});

		#[extrinsic_call]
		_(
			RawOrigin::Signed(publisher),
			provider,
			[1u8; 32],
			resources(),
			BillingMode::Metered,
			sla,
			deposit::<T>(),
		);

		let placed = Deployments::<T>::get(rent + 1).map(|d| d.kind);
		assert_eq!(placed, Some(DealKind::InRent { rent }));
		Ok(())
	}

	/// Worst case: accepting a rent (the provider's deal count is checked, its whole capacity
	/// reserved and the rent recorded).
	#[benchmark]
	fn accept_deployment() -> Result<(), BenchmarkError> {
		let provider = provider::<T>();
		let renter = funded::<T>("renter", 0);
		Market::<T>::do_create_rent(renter, provider.clone(), deposit::<T>())?;

		#[extrinsic_call]
		_(RawOrigin::Signed(provider.clone()), 0);

		assert_eq!(Rents::<T>::get(&provider), Some(0));
		Ok(())
	}

	/// Worst case: a reserved deployment settled, paid to provider and treasury, and refunded.
	#[benchmark]
	fn close_deployment() {
		ProtocolFee::<T>::put(Perbill::from_percent(5));
		let provider = provider::<T>();
		let publisher = funded::<T>("publisher", 0);
		let id = active::<T>(&publisher, &provider, BillingMode::Reserved, deposit::<T>());
		advance::<T>(10);

		#[extrinsic_call]
		_(RawOrigin::Signed(publisher), id, CloseReason::PublisherRequest);

		assert!(!Deployments::<T>::contains_key(id));
	}

	/// Worst case: a reserved deployment whose elapsed time is settled (paid to provider and
	/// treasury) before the funds are added.
	#[benchmark]
	fn top_up() {
		ProtocolFee::<T>::put(Perbill::from_percent(5));
		let provider = provider::<T>();
		let publisher = funded::<T>("publisher", 0);
		let id = active::<T>(&publisher, &provider, BillingMode::Reserved, deposit::<T>());
		let now = advance::<T>(10);

		#[extrinsic_call]
		_(RawOrigin::Signed(publisher), id, deposit::<T>());

		assert_eq!(Deployments::<T>::get(id).map(|d| d.settled_until), Some(now));
	}

	#[benchmark]
	fn update_manifest() {
		let provider = provider::<T>();
		let publisher = funded::<T>("publisher", 0);
		let id = active::<T>(&publisher, &provider, BillingMode::Metered, deposit::<T>());

		#[extrinsic_call]
		_(RawOrigin::Signed(publisher), id, [2u8; 32]);

		assert_eq!(Deployments::<T>::get(id).and_then(|d| d.pending_manifest), Some([2u8; 32]));
	}

	/// `n` reports, each for its own deployment, each paid to provider and treasury.
	#[benchmark]
	fn report_usage(n: Linear<1, { T::MaxReportsPerCall::get() }>) -> Result<(), BenchmarkError> {
		ProtocolFee::<T>::put(Perbill::from_percent(5));
		let provider = provider::<T>();
		let start = frame_system::Pallet::<T>::block_number();
		let ids: Vec<_> = (0..n)
			.map(|i| {
				let publisher = funded::<T>("publisher", i);
				active::<T>(&publisher, &provider, BillingMode::Metered, deposit::<T>())
			})
			.collect();
		let end = advance::<T>(10);
		let reports: Vec<_> = ids
			.into_iter()
			.map(|deployment| UsageReport {
				deployment,
				period_start: start,
				period_end: end,
				cpu_millicore_seconds: 1_000,
				memory_mib_seconds: 1_000,
				storage_gib_seconds: 10,
				gpu_seconds: 0,
				egress_bytes: 1_000,
			})
			.collect();
		let reports: BoundedVec<_, T::MaxReportsPerCall> =
			reports.try_into().map_err(|_| BenchmarkError::Weightless)?;

		#[extrinsic_call]
		_(RawOrigin::Signed(provider), reports);

		assert_eq!(Deployments::<T>::get(0).map(|d| d.settled_until), Some(end));
		Ok(())
	}

	#[benchmark]
	fn settle() {
		ProtocolFee::<T>::put(Perbill::from_percent(5));
		let provider = provider::<T>();
		let publisher = funded::<T>("publisher", 0);
		let id = active::<T>(&publisher, &provider, BillingMode::Reserved, deposit::<T>());
		let now = advance::<T>(10);
		let caller = funded::<T>("caller", 0);

		#[extrinsic_call]
		_(RawOrigin::Signed(caller), id);

		assert_eq!(Deployments::<T>::get(id).map(|d| d.settled_until), Some(now));
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

	/// `n` out-of-funds deployments whose grace ends this block, each closed and refunded.
	#[benchmark]
	fn on_initialize(n: Linear<0, { T::MaxExpiriesPerBlock::get() }>) {
		let provider = provider::<T>();
		let start = frame_system::Pallet::<T>::block_number();
		let ids: Vec<_> = (0..n)
			.map(|i| {
				let publisher = funded::<T>("publisher", i);
				active::<T>(&publisher, &provider, BillingMode::Metered, T::MinDeposit::get())
			})
			.collect();
		let grace_ends = start + T::GracePeriod::get();
		for id in &ids {
			Deployments::<T>::mutate(id, |deal| {
				if let Some(deal) = deal {
					deal.state = DeploymentState::OutOfFunds {
						accepted_at: start,
						since: start,
						grace_ends,
					};
				}
			});
		}
		Expiries::<T>::insert(grace_ends, BoundedVec::truncate_from(ids));
		frame_system::Pallet::<T>::set_block_number(grace_ends);

		#[block]
		{
			Market::<T>::on_initialize(grace_ends);
		}

		assert_eq!(Deployments::<T>::iter().count(), 0);
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
		_(RawOrigin::Signed(renter), provider, deposit::<T>());

		assert!(Deployments::<T>::get(0).is_some_and(|d| d.is_rent()));
	}

	/// The renter closes a rent holding `c` deployments, each named and refunded as it ends.
	#[benchmark]
	fn close_rent(c: Linear<0, MAX_DEPLOYMENTS_PER_RENT>) -> Result<(), BenchmarkError> {
		ProtocolFee::<T>::put(Perbill::from_percent(5));
		let provider = provider::<T>();
		let renter = funded::<T>("renter", 0);
		let rent = NextDeploymentId::<T>::get();
		Market::<T>::do_create_rent(renter.clone(), provider.clone(), deposit::<T>())?;
		Market::<T>::do_accept(provider.clone(), rent)?;
		// Pending deployments are the dearest to end: each is refunded and its name released
		// at once (a running one only moves to `Closing`).
		for i in 0..c {
			let id = NextDeploymentId::<T>::get();
			Market::<T>::do_create(
				renter.clone(),
				provider.clone(),
				[1u8; 32],
				resources(),
				BillingMode::Metered,
				None,
				deposit::<T>(),
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
