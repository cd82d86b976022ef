//! Benchmarks of the provider-staking calls, each at its worst case: ledgers with full (or
//! all but full) unlocking chunks, and committed capacity whose requirement is checked.

use super::*;
use crate::Pallet as Staking;
use frame_benchmarking::v2::*;
use frame_support::traits::{fungible::Mutate, EnsureOrigin};
use frame_system::RawOrigin;
use sp_runtime::traits::Bounded;

/// A funded account: enough for any bond, little enough that many never overflow issuance.
fn funded<T: Config>(name: &'static str) -> T::AccountId {
	let who: T::AccountId = account(name, 0, 0);
	T::Currency::set_balance(&who, BalanceOf::<T>::max_value() / 1_000_000u32.into());
	who
}

/// The stake each unlocking chunk holds.
fn unit<T: Config>() -> BalanceOf<T> {
	T::MinBond::get().max(1_000u32.into())
}

/// A requirement of one unit per committed millicore, and capacity of one millicore committed:
/// every requirement check computes and compares.
fn require_and_commit<T: Config>(who: &T::AccountId) -> Result<(), BenchmarkError> {
	Requirement::<T>::put(StakeRequirement {
		base: Zero::zero(),
		per_cpu_millicore: 1u32.into(),
		per_memory_mib: 1u32.into(),
		per_storage_gib: 1u32.into(),
		per_gpu: 1u32.into(),
	});
	let resources = Resources { cpu_millicores: 1, memory_mib: 1, storage_gib: 1, gpus: 1 };
	Staking::<T>::commit(who, &resources).map_err(|_| BenchmarkError::Weightless)
}

/// Bonds `chunks + active` units for `who` and unbonds one unit in each of `chunks` blocks, so
/// the ledger has `chunks` unlocking chunks and `active` units active. Returns the block of the
/// last unbonding.
fn bond_with_chunks<T: Config>(
	who: &T::AccountId,
	chunks: u32,
	active: u32,
) -> Result<BlockNumberFor<T>, BenchmarkError> {
	let unit = unit::<T>();
	let stake = unit.saturating_mul(chunks.saturating_add(active).into());
	Staking::<T>::do_bond(who.clone(), stake)?;
	let mut now = frame_system::Pallet::<T>::block_number();
	for _ in 0..chunks {
		now = now.saturating_add(1u32.into());
		frame_system::Pallet::<T>::set_block_number(now);
		Staking::<T>::do_unbond(who.clone(), unit)?;
	}
	Ok(now)
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn bond() {
		let who = funded::<T>("provider");
		let value = unit::<T>();

		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), value);

		assert_eq!(Staking::<T>::slashable(&who), value);
	}

	#[benchmark]
	fn bond_extra() -> Result<(), BenchmarkError> {
		let who = funded::<T>("provider");
		Staking::<T>::do_bond(who.clone(), unit::<T>())?;

		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), unit::<T>());

		assert_eq!(Staking::<T>::slashable(&who), unit::<T>().saturating_mul(2u32.into()));
		Ok(())
	}

	/// Worst case: `MaxUnlockingChunks - 1` chunks present, a new one inserted, and the
	/// requirement for committed capacity checked.
	#[benchmark]
	fn unbond() -> Result<(), BenchmarkError> {
		let who = funded::<T>("provider");
		let chunks = T::MaxUnlockingChunks::get().saturating_sub(1);
		let last = bond_with_chunks::<T>(&who, chunks, 2)?;
		require_and_commit::<T>(&who)?;
		frame_system::Pallet::<T>::set_block_number(last.saturating_add(1u32.into()));

		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), unit::<T>());

		let ledger = Staking::<T>::ledger(&who).ok_or(BenchmarkError::Weightless)?;
		assert_eq!(ledger.unlocking.len() as u32, T::MaxUnlockingChunks::get());
		Ok(())
	}

	/// Worst case: `MaxUnlockingChunks` chunks, all due, all released, and the ledger removed.
	#[benchmark]
	fn withdraw_unbonded() -> Result<(), BenchmarkError> {
		let who = funded::<T>("provider");
		let chunks = T::MaxUnlockingChunks::get();
		// Nothing active: the withdrawal empties the ledger.
		let last = bond_with_chunks::<T>(&who, chunks, 0)?;
		frame_system::Pallet::<T>::set_block_number(last.saturating_add(T::UnbondingPeriod::get()));

		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()));

		assert!(Staking::<T>::ledger(&who).is_none());
		Ok(())
	}

	#[benchmark]
	fn set_requirement() -> Result<(), BenchmarkError> {
		let origin = T::RequirementOrigin::try_successful_origin()
			.map_err(|_| BenchmarkError::Weightless)?;
		let requirement = StakeRequirement {
			base: unit::<T>(),
			per_cpu_millicore: 1u32.into(),
			per_memory_mib: 1u32.into(),
			per_storage_gib: 1u32.into(),
			per_gpu: 1u32.into(),
		};

		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, requirement);

		assert_eq!(Requirement::<T>::get(), requirement);
		Ok(())
	}

	/// Worst case: rebonding all of `MaxUnlockingChunks` chunks.
	#[benchmark]
	fn rebond() -> Result<(), BenchmarkError> {
		let who = funded::<T>("provider");
		let chunks = T::MaxUnlockingChunks::get();
		bond_with_chunks::<T>(&who, chunks, 1)?;
		let unlocking =
			Staking::<T>::ledger(&who).ok_or(BenchmarkError::Weightless)?.unlocking_total();

		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), unlocking);

		let ledger = Staking::<T>::ledger(&who).ok_or(BenchmarkError::Weightless)?;
		assert!(ledger.unlocking.is_empty());
		Ok(())
	}

	impl_benchmark_test_suite!(Staking, crate::mock::new_test_ext(), crate::mock::Test);
}
