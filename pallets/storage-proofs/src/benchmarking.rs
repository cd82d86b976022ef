//! Benchmarks of the storage-proofs pallet's calls and hook, each at its worst case.

use super::*;
use crate::Pallet as StorageProofs;
use alloc::{vec, vec::Vec};
use frame_benchmarking::v2::*;
use frame_support::{pallet_prelude::*, traits::Hooks};
use frame_system::{pallet_prelude::BlockNumberFor, RawOrigin};
use podchain_primitives::SlaTerms;
use sp_runtime::traits::{Hash as _, One, Saturating};

/// A live SLA deal `id` of a fresh publisher and provider (with stake), known to the pallet.
fn live_deal<T: Config>(id: DealId) -> (T::AccountId, T::AccountId) {
	let publisher: T::AccountId = account("publisher", id as u32, 0);
	let provider: T::AccountId = account("provider", id as u32, 0);
	T::BenchmarkHelper::sla_deal(id, &publisher, &provider);
	let terms = SlaTerms {
		uptime_target: Default::default(),
		window_blocks: 0,
		penalty_per_window: 1_000_000u32.into(),
		health: podchain_primitives::HealthCheck::root_ok(),
	};
	<StorageProofs<T> as SlaTracker<_, _>>::deal_started(id, &publisher, &provider, &terms)
		.expect("the pallet tracks every deal");
	(publisher, provider)
}

fn volume(index: u32) -> VolumeName {
	let mut name = [b'v'; 63];
	name[..4].copy_from_slice(&index.to_be_bytes());
	BoundedVec::truncate_from(name.to_vec())
}

/// A commitment of `volume` of deal `id` whose tree has depth `depth`: 2^depth chunks, all
/// alike, so every path is the same and a proof of any index costs `depth` node hashes.
/// Returns the chunk and the path.
fn uniform_commitment<T: Config>(
	id: DealId,
	volume: &VolumeName,
	depth: u32,
) -> (Vec<u8>, Vec<Hash>) {
	let chunk = vec![0xab; CHUNK_SIZE];
	let mut path = Vec::new();
	let mut hash = podchain_merkle::leaf_hash(&chunk);
	for _ in 0..depth {
		path.push(hash);
		hash = podchain_merkle::node_hash(&hash, &hash);
	}
	let chunk_count = 1u32 << depth;
	let size = u64::from(chunk_count) * CHUNK_SIZE as u64;
	let at = frame_system::Pallet::<T>::block_number();
	Commitments::<T>::insert(id, volume, Commitment { root: hash, chunk_count, size, at });
	LiveDeals::<T>::mutate(id, |d| {
		if let Some(d) = d {
			d.volumes.saturating_inc();
		}
	});
	(chunk, path)
}

/// Files a challenge on `volume` of deal `id` by its publisher now.
fn file_challenge<T: Config>(id: DealId, publisher: &T::AccountId, volume: &VolumeName) {
	StorageProofs::<T>::challenge(RawOrigin::Signed(publisher.clone()).into(), id, volume.clone())
		.expect("a committed volume of a live deal can be challenged");
}

/// Moves to the block after the one whose hash seeds the open challenge of `id`.
fn seed_indices<T: Config>(id: DealId) {
	let challenge = Challenges::<T>::get(id).expect("challenged");
	let seed_block = challenge.issued_at.saturating_add(One::one());
	frame_system::BlockHash::<T>::insert(seed_block, T::Hashing::hash(b"seed block"));
	frame_system::Pallet::<T>::set_block_number(seed_block.saturating_add(One::one()));
}

#[benchmarks]
mod benchmarks {
	use super::*;

	/// A new volume of a deal with another volume challenged: every check reads.
	#[benchmark]
	fn commit() {
		frame_system::Pallet::<T>::set_block_number(10u32.into());
		let (publisher, provider) = live_deal::<T>(1);
		uniform_commitment::<T>(1, &volume(0), 1);
		file_challenge::<T>(1, &publisher, &volume(0));

		#[extrinsic_call]
		_(RawOrigin::Signed(provider), 1, volume(1), [7; 32], 1, 10);

		assert!(Commitments::<T>::contains_key(1, volume(1)));
	}

	/// Every due queue searched but the last is full.
	#[benchmark]
	fn challenge() {
		frame_system::Pallet::<T>::set_block_number(10u32.into());
		let (publisher, _) = live_deal::<T>(1);
		uniform_commitment::<T>(1, &volume(0), 1);
		let now = frame_system::Pallet::<T>::block_number();
		let mut at = now.saturating_add(T::ChallengeDeadline::get()).saturating_add(One::one());
		let full: BoundedVec<DealId, T::MaxDuePerBlock> = BoundedVec::truncate_from(
			(0..T::MaxDuePerBlock::get()).map(|i| 1_000 + u64::from(i)).collect(),
		);
		for _ in 0..DUE_SEARCH - 1 {
			Due::<T>::insert(at, full.clone());
			at = at.saturating_add(One::one());
		}

		#[extrinsic_call]
		_(RawOrigin::Signed(publisher), 1, volume(0));

		assert_eq!(Challenges::<T>::get(1).map(|c| c.due_at), Some(at));
	}

	/// `k` proofs of paths of `d` siblings, every one verified, the last one wrong: the
	/// provider is slashed.
	#[benchmark]
	fn answer(d: Linear<0, 31>) {
		frame_system::Pallet::<T>::set_block_number(10u32.into());
		let (publisher, provider) = live_deal::<T>(1);
		let (chunk, path) = uniform_commitment::<T>(1, &volume(0), d);
		file_challenge::<T>(1, &publisher, &volume(0));
		seed_indices::<T>(1);
		let k = T::ChunksPerChallenge::get() as usize;
		let mut proofs: Vec<ChunkProof> = (0..k)
			.map(|_| ChunkProof {
				chunk: BoundedVec::truncate_from(chunk.clone()),
				path: BoundedVec::truncate_from(path.clone()),
			})
			.collect();
		if let Some(last) = proofs.last_mut() {
			last.chunk[0] ^= 1;
		}
		let proofs: BoundedVec<_, T::ChunksPerChallenge> = BoundedVec::truncate_from(proofs);

		#[extrinsic_call]
		_(RawOrigin::Signed(provider), 1, proofs);

		assert!(!Challenges::<T>::contains_key(1));
	}

	#[benchmark]
	fn expire() {
		frame_system::Pallet::<T>::set_block_number(10u32.into());
		let (publisher, provider) = live_deal::<T>(1);
		uniform_commitment::<T>(1, &volume(0), 1);
		file_challenge::<T>(1, &publisher, &volume(0));
		let deadline = Challenges::<T>::get(1).expect("challenged").deadline;
		frame_system::Pallet::<T>::set_block_number(deadline.saturating_add(One::one()));

		#[extrinsic_call]
		_(RawOrigin::Signed(provider), 1);

		assert!(!Challenges::<T>::contains_key(1));
	}

	/// `n` challenges expire, each slashing its provider.
	#[benchmark]
	fn on_initialize(n: Linear<0, { T::MaxDuePerBlock::get() }>) {
		frame_system::Pallet::<T>::set_block_number(10u32.into());
		let mut due_at: Option<BlockNumberFor<T>> = None;
		for id in 0..u64::from(n) {
			let (publisher, _) = live_deal::<T>(id);
			uniform_commitment::<T>(id, &volume(0), 1);
			file_challenge::<T>(id, &publisher, &volume(0));
			due_at = Challenges::<T>::get(id).map(|c| c.due_at);
		}
		let now = due_at.unwrap_or_else(|| 100u32.into());
		frame_system::Pallet::<T>::set_block_number(now);

		#[block]
		{
			StorageProofs::<T>::on_initialize(now);
		}

		assert_eq!(Challenges::<T>::iter().count(), 0);
	}

	impl_benchmark_test_suite!(StorageProofs, crate::mock::new_test_ext(), crate::mock::Test);
}
