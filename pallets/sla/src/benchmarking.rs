//! Benchmarks of the SLA pallet's calls and hook, each at its worst case.

use super::*;
use crate::Pallet as Sla;
use alloc::vec::Vec;
use frame_benchmarking::v2::*;
use frame_support::{pallet_prelude::*, traits::Hooks};
use frame_system::{pallet_prelude::BlockNumberFor, RawOrigin};
use sp_runtime::{FixedU128, Permill, RuntimeAppPublic};

fn provider<T: Config>(index: u32) -> T::AccountId {
	let who: T::AccountId = account("provider", index, 0);
	T::BenchmarkHelper::setup_provider(&who);
	who
}

/// Terms that are never met (so every measured window is missed), measured in windows of
/// `span` probe windows.
fn terms<T: Config>(span: u32) -> SlaTerms<BalanceOf<T>> {
	SlaTerms {
		uptime_target: Permill::one(),
		window_blocks: span.saturating_mul(T::ProbeWindow::get()),
		penalty_per_window: 1_000_000u32.into(),
		health: podchain_primitives::HealthCheck::root_ok(),
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

/// Deal `id` of `provider`, known to the market (named, paid), measured from probe window 0,
/// queued nowhere (so whatever touches it queues it: the costlier path).
fn measured_deal<T: Config>(id: DealId, provider: &T::AccountId, span: u32) {
	let publisher: T::AccountId = account("publisher", id as u32, 0);
	T::BenchmarkHelper::setup_deal(id);
	<Sla<T> as SlaTracker<_, _>>::deal_started(id, &publisher, provider, &terms::<T>(span))
		.expect("room for the deal");
	Tracked::<T>::mutate(id, |deal| {
		if let Some(deal) = deal.as_mut() {
			deal.measurement = Measurement::Since(0);
			deal.paid_at_settlement = Zero::zero();
			deal.due_at = DueAt::Nowhere;
		}
	});
	Due::<T>::remove(Sla::<T>::next_settlement(id).expect("tracked"));
}

/// Deal `id` with `windows` measurement windows of one probe window ended, each decided down,
/// and the votes of the last one still to decide; the chain is at the end of them.
fn ended_windows<T: Config>(id: DealId, provider: &T::AccountId, windows: u32) {
	measured_deal::<T>(id, provider, 1);
	let deal = Tracked::<T>::get(id).expect("tracked");
	let first = deal.first_window;
	let last = first.saturating_add(windows).saturating_sub(1);
	Tracked::<T>::mutate(id, |deal| {
		if let Some(deal) = deal.as_mut() {
			for window in first..last {
				deal.votes.down.set(window);
			}
			deal.votes.window = last;
			deal.votes.tally = Tally { up: 0, down: 1, voted: 1 };
		}
	});
	go_to::<T>(Sla::<T>::window_start(last.saturating_add(1)));
}

use sp_runtime::traits::Zero;

#[benchmarks]
mod benchmarks {
	use super::*;

	/// Worst case: the provider has the most deals (the longest list to sample from), `n`
	/// sampled deals' verdicts count, and each deal's and the provider's previous window is
	/// decided with the vote.
	#[benchmark]
	fn submit_probe(
		n: Linear<1, { T::MaxSampledDeals::get().min(MAX_SAMPLED_DEALS) }>,
	) -> Result<(), BenchmarkError> {
		let provider = provider::<T>(0);
		let keys = probers::<T>(T::MaxProbers::get());
		let deals = T::MaxSlaDealsPerProvider::get();
		for id in 0..u64::from(deals) {
			measured_deal::<T>(id, &provider, MAX_WINDOW_SPAN);
			Tracked::<T>::mutate(id, |deal| {
				if let Some(deal) = deal.as_mut() {
					deal.votes.tally = Tally { up: 1, down: 0, voted: 1 };
				}
			});
		}
		go_to::<T>(Sla::<T>::window_start(1));
		Records::<T>::insert(&provider, ProviderRecord::new(0));
		let sample = Sla::<T>::sample(&provider, 1);
		let verdicts: Vec<_> = sample
			.iter()
			.enumerate()
			.map(|(i, id)| (*id, if (i as u32) < n { Verdict::Up } else { Verdict::NotProbed }))
			.collect();
		let verdicts = verdicts.try_into().map_err(|_| BenchmarkError::Weightless)?;
		let probe = Probe { provider: provider.clone(), window: 1, prober: 0, verdicts };
		let signature = keys[0].sign(&probe.encode()).ok_or(BenchmarkError::Weightless)?;

		#[extrinsic_call]
		_(RawOrigin::None, probe, signature);

		assert_eq!(Records::<T>::get(&provider).map(|r| r.window), Some(1));
		Ok(())
	}

	/// Worst case: every deal is the caller's, its measurement starts, and it is queued.
	#[benchmark]
	fn heartbeat(n: Linear<1, { T::MaxDealsPerHeartbeat::get() }>) -> Result<(), BenchmarkError> {
		let other =
			(u64::from(n) > u64::from(T::MaxSlaDealsPerProvider::get())).then(|| provider::<T>(1));
		let provider = provider::<T>(0);
		let per_provider = u64::from(T::MaxSlaDealsPerProvider::get());
		let deals: Vec<DealId> = (0..u64::from(n)).collect();
		// Deals beyond the provider's bound belong to another: read and skipped.
		for id in &deals {
			let owner = match &other {
				Some(other) if *id >= per_provider => other.clone(),
				_ => provider.clone(),
			};
			measured_deal::<T>(*id, &owner, MAX_WINDOW_SPAN);
			Tracked::<T>::mutate(id, |deal| {
				if let Some(deal) = deal.as_mut() {
					deal.measurement = Measurement::AwaitingAgent;
				}
			});
		}
		let deals: BoundedVec<_, _> = deals.try_into().map_err(|_| BenchmarkError::Weightless)?;

		#[extrinsic_call]
		_(RawOrigin::Signed(provider.clone()), deals);

		assert!(Tracked::<T>::get(0).is_some_and(|d| d.heartbeats.get(0)));
		Ok(())
	}

	#[benchmark]
	fn offer_terms() {
		let provider = provider::<T>(0);
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

	/// Worst case: `n` windows ended, each missed, one slash for all; the next window's end
	/// finds every queue it may try full and goes to the overflow.
	#[benchmark]
	fn settle_window(n: Linear<1, HISTORY_WINDOWS>) {
		let provider = provider::<T>(0);
		ended_windows::<T>(0, &provider, n);
		let next = Sla::<T>::window_start(
			Sla::<T>::window_of(frame_system::Pallet::<T>::block_number()) + 1,
		);
		fill_due_queues::<T>(next);
		let caller: T::AccountId = whitelisted_caller();

		#[extrinsic_call]
		_(RawOrigin::Signed(caller), 0);

		assert_eq!(Tracked::<T>::get(0).map(|d| d.settled_windows), Some(n));
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

	#[benchmark]
	fn set_penalty_bill_multiple() {
		let multiple = FixedU128::from_rational(3, 2);

		#[extrinsic_call]
		_(RawOrigin::Root, multiple);

		assert_eq!(PenaltyBillMultiple::<T>::get(), multiple);
	}

	/// Worst case: every item, from the overflow and the block's queue, a window end of a
	/// different provider's deal that slashes.
	#[benchmark]
	fn on_initialize(n: Linear<0, { T::MaxDuePerBlock::get().saturating_mul(2) }>) {
		let per_queue = T::MaxDuePerBlock::get();
		for id in 0..u64::from(n) {
			let provider = provider::<T>(id as u32);
			ended_windows::<T>(id, &provider, 1);
		}
		let now = frame_system::Pallet::<T>::block_number();
		let now_u32: u32 = sp_runtime::SaturatedConversion::saturated_into(now);
		let mut due = BoundedVec::<DueItem, T::MaxDuePerBlock>::default();
		let mut overflow = BoundedVec::<DealId, T::MaxDueOverflow>::default();
		for id in 0..u64::from(n) {
			let queued = if id < u64::from(per_queue) {
				let _ = overflow.try_push(id);
				DueAt::Overflow
			} else {
				let _ = due.try_push(DueItem::WindowEnd(id));
				DueAt::Block(now_u32)
			};
			Tracked::<T>::mutate(id, |d| {
				if let Some(d) = d.as_mut() {
					d.due_at = queued;
				}
			});
		}
		Due::<T>::insert(now, due);
		DueOverflow::<T>::put(overflow);

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

/// Fills the due queues of `from` and of every probe-window boundary a window end may be moved
/// to, so the next one scheduled goes to the overflow.
fn fill_due_queues<T: Config>(from: BlockNumberFor<T>) {
	let full = BoundedVec::<DueItem, T::MaxDuePerBlock>::truncate_from(
		(0..T::MaxDuePerBlock::get())
			.map(|i| DueItem::WindowEnd(u64::from(i) + 1_000_000))
			.collect(),
	);
	Due::<T>::insert(from, full.clone());
	let first = Sla::<T>::window_of(from) + 1;
	for window in first..first + 16 {
		Due::<T>::insert(Sla::<T>::window_start(window), full.clone());
	}
}
