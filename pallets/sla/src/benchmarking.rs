//! Benchmarks of the SLA pallet's calls and hook, each at its worst case.

use super::*;
use crate::Pallet as Sla;
use alloc::vec::Vec;
use frame_benchmarking::v2::*;
use frame_support::{pallet_prelude::*, traits::Hooks};
use frame_system::{pallet_prelude::BlockNumberFor, RawOrigin};
use sp_runtime::{traits::SaturatedConversion, Permill, RuntimeAppPublic};

fn provider<T: Config>() -> T::AccountId {
	let who: T::AccountId = account("provider", 0, 0);
	T::BenchmarkHelper::setup_provider(&who);
	who
}

fn terms<T: Config>() -> SlaTerms<BalanceOf<T>> {
	SlaTerms {
		// Unreachable, so every settlement slashes.
		uptime_target: Permill::one(),
		window_blocks: MAX_WINDOW_SPAN.saturating_mul(T::ProbeWindow::get()),
		penalty_per_window: 1_000_000u32.into(),
	}
}

/// `count` prober keys from the keystore, the first one this node's.
fn probers<T: Config>(count: u32) -> Vec<T::AuthorityId> {
	let probers: Vec<_> = (0..count).map(|_| T::AuthorityId::generate_pair(None)).collect();
	let bounded: BoundedVec<_, T::MaxProbers> = probers.clone().try_into().expect("within bound");
	Probers::<T>::put(bounded);
	probers
}

fn go_to<T: Config>(block: BlockNumberFor<T>) {
	frame_system::Pallet::<T>::set_block_number(block);
}

/// A tracked deal of `provider` whose next measurement window has ended, with a provider
/// record collected in the window before the current one (so settling decides it too).
fn ended_window<T: Config>(id: DealId, provider: &T::AccountId) {
	let publisher: T::AccountId = account("publisher", id as u32, 0);
	<Sla<T> as SlaTracker<_, _>>::deal_started(id, &publisher, provider, &terms::<T>());
	let deal = Tracked::<T>::get(id).expect("tracked");
	let (start, end) = deal.next_window(T::ProbeWindow::get());
	let mut record = ProviderRecord::new(start);
	for window in start..end.saturating_sub(1) {
		record.tally.down = 1;
		record.decide(Outcome::Down, Permill::from_percent(10), u32::MAX);
		record.window = window.saturating_add(1);
	}
	record.tally = Tally { up: 1, down: 0, voted: 1 };
	Records::<T>::insert(provider, record);
	go_to::<T>(Sla::<T>::window_start(end));
}

fn volume(index: u32) -> VolumeName {
	let mut name = [b'v'; 63];
	name[..4].copy_from_slice(&index.to_be_bytes());
	BoundedVec::truncate_from(name.to_vec())
}

/// A tracked deal with a committed volume under challenge.
fn challenged<T: Config>(provider: &T::AccountId) -> (DealId, T::AccountId) {
	let publisher: T::AccountId = account("publisher", 0, 0);
	<Sla<T> as SlaTracker<_, _>>::deal_started(0, &publisher, provider, &terms::<T>());
	Sla::<T>::do_commit_volume(provider.clone(), 0, volume(0), [1; 32]).expect("commits");
	Sla::<T>::do_challenge(publisher.clone(), 0, volume(0)).expect("challenges");
	(0, publisher)
}

#[benchmarks]
mod benchmarks {
	use super::*;

	/// Worst case: the provider's previous window is decided with the vote.
	#[benchmark]
	fn submit_probe() -> Result<(), BenchmarkError> {
		let provider = provider::<T>();
		let keys = probers::<T>(T::MaxProbers::get());
		go_to::<T>(Sla::<T>::window_start(1));
		Records::<T>::insert(&provider, ProviderRecord::new(0));
		let probe = Probe { provider: provider.clone(), window: 1, prober: 0, up: true };
		let signature = keys[0].sign(&probe.encode()).ok_or(BenchmarkError::Weightless)?;

		#[extrinsic_call]
		_(RawOrigin::None, probe, signature);

		assert_eq!(Records::<T>::get(&provider).map(|r| r.window), Some(1));
		Ok(())
	}

	#[benchmark]
	fn heartbeat(n: Linear<1, { T::MaxDealsPerHeartbeat::get() }>) -> Result<(), BenchmarkError> {
		let provider = provider::<T>();
		let publisher: T::AccountId = account("publisher", 0, 0);
		let deals: Vec<DealId> = (0..u64::from(n)).collect();
		for id in &deals {
			<Sla<T> as SlaTracker<_, _>>::deal_started(*id, &publisher, &provider, &terms::<T>());
		}
		let deals: BoundedVec<_, _> = deals.try_into().map_err(|_| BenchmarkError::Weightless)?;

		#[extrinsic_call]
		_(RawOrigin::Signed(provider.clone()), deals);

		assert!(Tracked::<T>::get(0).is_some_and(|d| d.heartbeats.get(0)));
		Ok(())
	}

	#[benchmark]
	fn offer_terms() {
		let provider = provider::<T>();
		let offer = SlaOffer {
			max_uptime_target: Permill::from_percent(99),
			min_window_blocks: T::ProbeWindow::get(),
			max_window_blocks: T::ProbeWindow::get(),
			max_penalty_per_window: 1u32.into(),
		};

		#[extrinsic_call]
		_(RawOrigin::Signed(provider.clone()), Some(offer));

		assert!(Offers::<T>::contains_key(&provider));
	}

	/// Worst case: the whole window read, the provider's window decided, a slash.
	#[benchmark]
	fn settle_window() {
		let provider = provider::<T>();
		ended_window::<T>(0, &provider);
		let caller: T::AccountId = whitelisted_caller();

		#[extrinsic_call]
		_(RawOrigin::Signed(caller), 0);

		assert_eq!(Tracked::<T>::get(0).map(|d| d.settled_windows), Some(1));
	}

	/// Worst case: a new volume.
	#[benchmark]
	fn commit_volume() {
		let provider = provider::<T>();
		let publisher: T::AccountId = account("publisher", 0, 0);
		<Sla<T> as SlaTracker<_, _>>::deal_started(0, &publisher, &provider, &terms::<T>());

		#[extrinsic_call]
		_(RawOrigin::Signed(provider), 0, volume(1), [2; 32]);

		assert!(VolumeRoots::<T>::contains_key(0, volume(1)));
	}

	/// Worst case: the deadline's queue is full up to the last block it may slip to.
	#[benchmark]
	fn challenge_storage() {
		let provider = provider::<T>();
		let publisher: T::AccountId = account("publisher", 0, 0);
		<Sla<T> as SlaTracker<_, _>>::deal_started(0, &publisher, &provider, &terms::<T>());
		Sla::<T>::do_commit_volume(provider.clone(), 0, volume(0), [1; 32]).expect("commits");
		let now = frame_system::Pallet::<T>::block_number();
		let expiry = now + T::ChallengeDeadline::get() + 1u32.into();
		let full = BoundedVec::<DueItem, T::MaxDuePerBlock>::truncate_from(
			(0..T::MaxDuePerBlock::get()).map(|i| DueItem::WindowEnd(u64::from(i) + 100)).collect(),
		);
		let mut block = expiry;
		for _ in 0..16 {
			Due::<T>::insert(block, full.clone());
			block += 1u32.into();
		}

		#[extrinsic_call]
		_(RawOrigin::Signed(publisher), 0, volume(0));

		assert!(Challenges::<T>::contains_key(0));
	}

	/// Worst case: a wrong root, so the provider is slashed.
	#[benchmark]
	fn answer_challenge() {
		let provider = provider::<T>();
		let (deal, _) = challenged::<T>(&provider);

		#[extrinsic_call]
		_(RawOrigin::Signed(provider), deal, [9; 32]);

		assert!(!Challenges::<T>::contains_key(deal));
	}

	#[benchmark]
	fn expire_challenge() {
		let provider = provider::<T>();
		let (deal, _) = challenged::<T>(&provider);
		let deadline = Challenges::<T>::get(deal).expect("open").deadline;
		go_to::<T>(deadline + 1u32.into());
		let caller: T::AccountId = whitelisted_caller();

		#[extrinsic_call]
		_(RawOrigin::Signed(caller), deal);

		assert!(!Challenges::<T>::contains_key(deal));
	}

	#[benchmark]
	fn set_probers(n: Linear<0, { T::MaxProbers::get() }>) -> Result<(), BenchmarkError> {
		let keys: Vec<_> = (0..n).map(|_| T::AuthorityId::generate_pair(None)).collect();
		let keys: BoundedVec<_, _> = keys.try_into().map_err(|_| BenchmarkError::Weightless)?;
		let origin =
			T::ProberOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)?;

		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, keys);

		assert_eq!(Probers::<T>::decode_len().unwrap_or(0) as u32, n);
		Ok(())
	}

	/// Worst case: every due item a window end that slashes.
	#[benchmark]
	fn on_initialize(n: Linear<0, { T::MaxDuePerBlock::get() }>) {
		let provider = provider::<T>();
		for id in 0..u64::from(n) {
			ended_window::<T>(id, &provider);
		}
		let now = frame_system::Pallet::<T>::block_number();
		for id in 0..u64::from(n) {
			Tracked::<T>::mutate(id, |d| {
				if let Some(d) = d.as_mut() {
					d.due_at = Some(now.saturated_into());
				}
			});
		}
		let due = BoundedVec::<DueItem, T::MaxDuePerBlock>::truncate_from(
			(0..u64::from(n)).map(DueItem::WindowEnd).collect(),
		);
		Due::<T>::insert(now, due);

		#[block]
		{
			Sla::<T>::on_initialize(now);
		}

		if n > 0 {
			assert!(Tracked::<T>::get(0).is_some_and(|d| d.settled_windows >= 1));
		}
	}

	impl_benchmark_test_suite!(Sla, crate::mock::new_test_ext(3), crate::mock::Test);
}
