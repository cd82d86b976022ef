//! Tests of the storage-proofs pallet: the honest flow, and what a publisher, a provider and a
//! stranger could try.

use crate::{mock::*, *};
use frame_support::{
	assert_noop, assert_ok,
	traits::{ConstU32, Hooks},
	BoundedVec,
};
use podchain_merkle::MerkleTree;

fn name(s: &str) -> VolumeName {
	BoundedVec::truncate_from(s.as_bytes().to_vec())
}

/// `len` bytes that differ in every chunk and between seeds.
fn data(seed: u8, len: usize) -> Vec<u8> {
	(0..len)
		.map(|i| (i as u8).wrapping_mul(13) ^ ((i / CHUNK_SIZE) as u8).wrapping_mul(97) ^ seed)
		.collect()
}

fn tree(data: &[u8]) -> MerkleTree {
	MerkleTree::from_data(data).unwrap()
}

/// Commits `data` as `volume` of `deal` (by its provider).
fn commit(deal: DealId, provider: AccountId, volume: &str, data: &[u8]) -> MerkleTree {
	let tree = tree(data);
	assert_ok!(StorageProofs::commit(
		RuntimeOrigin::signed(provider),
		deal,
		name(volume),
		tree.root(),
		tree.chunk_count(),
		data.len() as u64,
	));
	tree
}

/// Proofs of chunks `indices` of `data`.
fn proofs_of(data: &[u8], indices: &[u32]) -> BoundedVec<ChunkProof, ConstU32<CHUNKS>> {
	let tree = tree(data);
	let proofs: Vec<_> = indices
		.iter()
		.map(|index| {
			let start = *index as usize * CHUNK_SIZE;
			let end = (start + CHUNK_SIZE).min(data.len());
			ChunkProof {
				chunk: BoundedVec::truncate_from(data[start..end].to_vec()),
				path: BoundedVec::truncate_from(tree.proof(*index).unwrap()),
			}
		})
		.collect();
	BoundedVec::truncate_from(proofs)
}

/// The indices the open challenge of `deal` asks for (panics before they are known).
fn indices(deal: DealId) -> Vec<u32> {
	StorageProofs::challenge_view(deal).unwrap().indices.expect("indices known")
}

fn challenge(deal: DealId, volume: &str) {
	assert_ok!(StorageProofs::challenge(RuntimeOrigin::signed(PUBLISHER), deal, name(volume)));
}

/// Moves to the first block the open challenge of `deal` can be answered in.
fn to_answerable(deal: DealId) {
	let issued_at = Challenges::<Test>::get(deal).unwrap().issued_at;
	run_to_block(issued_at + 2);
}

fn events() -> Vec<Event<Test>> {
	System::events()
		.into_iter()
		.filter_map(|r| match r.event {
			RuntimeEvent::StorageProofs(e) => Some(e),
			_ => None,
		})
		.collect()
}

fn failed(deal: DealId, volume: &str, reason: Failure) -> Event<Test> {
	Event::ChallengeFailed {
		deal,
		volume: name(volume),
		reason,
		slashed: PENALTY,
		compensated: PENALTY,
	}
}

const SIZE: usize = 9 * CHUNK_SIZE + 123;

#[test]
fn an_honest_provider_passes_with_the_data() {
	build_and_execute(|| {
		let volume = data(1, SIZE);
		let tree = commit(DEAL, PROVIDER, "db", &volume);
		assert_eq!(
			Commitments::<Test>::get(DEAL, name("db")).unwrap(),
			Commitment { root: tree.root(), chunk_count: 10, size: SIZE as u64, at: 1 }
		);
		challenge(DEAL, "db");
		to_answerable(DEAL);
		let asked = indices(DEAL);
		assert_eq!(asked.len(), CHUNKS as usize);
		assert!(asked.iter().all(|i| *i < 10));
		assert_ok!(StorageProofs::answer(
			RuntimeOrigin::signed(PROVIDER),
			DEAL,
			proofs_of(&volume, &asked)
		));
		assert!(events().contains(&Event::ChallengePassed { deal: DEAL, volume: name("db") }));
		assert!(Challenges::<Test>::get(DEAL).is_none());
		assert!(slashes().is_empty());
		// Its expiry finds nothing to fail.
		run_to_block(30);
		assert!(slashes().is_empty());
	});
}

#[test]
fn the_short_last_chunk_and_a_single_chunk_volume_verify() {
	build_and_execute(|| {
		let volume = data(2, 100);
		commit(DEAL, PROVIDER, "tiny", &volume);
		challenge(DEAL, "tiny");
		to_answerable(DEAL);
		assert_eq!(indices(DEAL), vec![0; CHUNKS as usize]);
		assert_ok!(StorageProofs::answer(
			RuntimeOrigin::signed(PROVIDER),
			DEAL,
			proofs_of(&volume, &indices(DEAL))
		));
		assert!(slashes().is_empty());
	});
}

#[test]
fn a_provider_that_lost_or_altered_data_is_slashed_to_the_publisher() {
	build_and_execute(|| {
		let volume = data(1, SIZE);
		commit(DEAL, PROVIDER, "db", &volume);
		challenge(DEAL, "db");
		to_answerable(DEAL);
		let asked = indices(DEAL);
		// Every chunk altered: whatever is asked, the answer is wrong.
		let altered: Vec<u8> = volume.iter().map(|b| b ^ 0x40).collect();
		assert_ok!(StorageProofs::answer(
			RuntimeOrigin::signed(PROVIDER),
			DEAL,
			proofs_of(&altered, &asked)
		));
		assert!(events().contains(&failed(DEAL, "db", Failure::WrongProof)));
		assert_eq!(slashes(), vec![(PROVIDER, PENALTY, PUBLISHER, PENALTY, slashes()[0].4)]);
		assert_eq!(stake_of(PROVIDER), 10_000 - PENALTY);
	});
}

#[test]
fn one_wrong_chunk_of_k_fails_the_answer() {
	build_and_execute(|| {
		let volume = data(1, SIZE);
		commit(DEAL, PROVIDER, "db", &volume);
		challenge(DEAL, "db");
		to_answerable(DEAL);
		let mut proofs = proofs_of(&volume, &indices(DEAL));
		let last = proofs.last_mut().unwrap();
		last.chunk[0] ^= 1;
		assert_ok!(StorageProofs::answer(RuntimeOrigin::signed(PROVIDER), DEAL, proofs));
		assert_eq!(slashes().len(), 1);
	});
}

#[test]
fn answering_with_the_root_fails() {
	build_and_execute(|| {
		let volume = data(1, SIZE);
		let tree = commit(DEAL, PROVIDER, "db", &volume);
		challenge(DEAL, "db");
		to_answerable(DEAL);
		// What passed the old challenges: the public root, here as every chunk, no path.
		let proofs: Vec<_> = (0..CHUNKS)
			.map(|_| ChunkProof {
				chunk: BoundedVec::truncate_from(tree.root().to_vec()),
				path: BoundedVec::default(),
			})
			.collect();
		assert_ok!(StorageProofs::answer(
			RuntimeOrigin::signed(PROVIDER),
			DEAL,
			BoundedVec::truncate_from(proofs)
		));
		assert!(events().contains(&failed(DEAL, "db", Failure::WrongProof)));
		// Nor does the root with the paths, which are public once revealed.
		run_to_block(1 + CHALLENGE_PERIOD);
		challenge(DEAL, "db");
		to_answerable(DEAL);
		let honest = proofs_of(&volume, &indices(DEAL));
		let forged: Vec<_> = honest
			.iter()
			.map(|p| ChunkProof {
				chunk: BoundedVec::truncate_from(tree.root().to_vec()),
				path: p.path.clone(),
			})
			.collect();
		assert_ok!(StorageProofs::answer(
			RuntimeOrigin::signed(PROVIDER),
			DEAL,
			BoundedVec::truncate_from(forged)
		));
		assert_eq!(slashes().len(), 2);
	});
}

#[test]
fn chunks_of_another_volume_fail() {
	build_and_execute(|| {
		let (logs, db) = (data(3, SIZE), data(1, SIZE));
		commit(DEAL, PROVIDER, "db", &db);
		commit(DEAL, PROVIDER, "logs", &logs);
		challenge(DEAL, "db");
		to_answerable(DEAL);
		// Valid proofs of the same positions, of the provider's other volume.
		assert_ok!(StorageProofs::answer(
			RuntimeOrigin::signed(PROVIDER),
			DEAL,
			proofs_of(&logs, &indices(DEAL))
		));
		assert!(events().contains(&failed(DEAL, "db", Failure::WrongProof)));
	});
}

#[test]
fn valid_proofs_of_other_indices_fail() {
	build_and_execute(|| {
		let volume = data(1, SIZE);
		commit(DEAL, PROVIDER, "db", &volume);
		challenge(DEAL, "db");
		to_answerable(DEAL);
		// The chunks the provider would rather show (say, the only ones it kept).
		let shifted: Vec<u32> = indices(DEAL).iter().map(|i| (i + 1) % 10).collect();
		assert_ok!(StorageProofs::answer(
			RuntimeOrigin::signed(PROVIDER),
			DEAL,
			proofs_of(&volume, &shifted)
		));
		assert_eq!(slashes().len(), 1);
	});
}

#[test]
fn a_padded_last_chunk_fails() {
	build_and_execute(|| {
		let volume = data(1, CHUNK_SIZE + 10);
		commit(DEAL, PROVIDER, "db", &volume);
		// A padded copy of the short last chunk, with the tree that has it padded.
		let mut padded = volume.clone();
		padded.resize(2 * CHUNK_SIZE, 0);
		// Challenge until the last chunk is asked for (each round answered honestly).
		for round in 0..8 {
			challenge(DEAL, "db");
			to_answerable(DEAL);
			let asked = indices(DEAL);
			if asked.contains(&1) {
				assert_ok!(StorageProofs::answer(
					RuntimeOrigin::signed(PROVIDER),
					DEAL,
					proofs_of(&padded, &asked)
				));
				assert!(events().contains(&failed(DEAL, "db", Failure::WrongProof)));
				return;
			}
			assert_ok!(StorageProofs::answer(
				RuntimeOrigin::signed(PROVIDER),
				DEAL,
				proofs_of(&volume, &asked)
			));
			run_to_block((round + 1) * CHALLENGE_PERIOD + 1);
		}
		panic!("no challenge asked for the last chunk");
	});
}

#[test]
fn the_indices_are_unknown_when_the_challenge_is_filed() {
	build_and_execute(|| {
		let volume = data(1, SIZE);
		commit(DEAL, PROVIDER, "db", &volume);
		run_to_block(3);
		challenge(DEAL, "db");
		// Neither in its block nor in the next (whose hash seeds them) can anyone know them.
		assert_eq!(StorageProofs::challenge_view(DEAL).unwrap().indices, None);
		assert_noop!(
			StorageProofs::answer(
				RuntimeOrigin::signed(PROVIDER),
				DEAL,
				proofs_of(&volume, &[0; CHUNKS as usize])
			),
			Error::<Test>::IndicesNotReady
		);
		run_to_block(4);
		assert_eq!(StorageProofs::challenge_view(DEAL).unwrap().indices, None);
		run_to_block(5);
		let asked = indices(DEAL);
		// They are what the merkle crate derives from block 4's hash: the agent computes the same.
		let seed: [u8; 32] = frame_system::Pallet::<Test>::block_hash(4).into();
		let root = tree(&volume).root();
		assert_eq!(
			asked,
			podchain_merkle::challenge_indices(&seed, DEAL, b"db", &root, 10, CHUNKS)
		);
	});
}

#[test]
fn a_publisher_cannot_challenge_before_a_commitment() {
	build_and_execute(|| {
		assert_noop!(
			StorageProofs::challenge(RuntimeOrigin::signed(PUBLISHER), DEAL, name("db")),
			Error::<Test>::NoCommitment
		);
		commit(DEAL, PROVIDER, "db", &data(1, SIZE));
		assert_noop!(
			StorageProofs::challenge(RuntimeOrigin::signed(PUBLISHER), DEAL, name("logs")),
			Error::<Test>::NoCommitment
		);
	});
}

#[test]
fn a_publisher_cannot_grind_challenges() {
	build_and_execute(|| {
		let volume = data(1, SIZE);
		commit(DEAL, PROVIDER, "db", &volume);
		commit(DEAL, PROVIDER, "logs", &data(2, SIZE));
		challenge(DEAL, "db");
		// Not a second challenge while one is open, on any volume.
		for volume in ["db", "logs"] {
			assert_noop!(
				StorageProofs::challenge(RuntimeOrigin::signed(PUBLISHER), DEAL, name(volume)),
				Error::<Test>::ChallengeOpen
			);
		}
		to_answerable(DEAL);
		assert_ok!(StorageProofs::answer(
			RuntimeOrigin::signed(PROVIDER),
			DEAL,
			proofs_of(&volume, &indices(DEAL))
		));
		// Nor, once answered, before the challenge period has passed: the publisher cannot
		// redraw indices until some land on a chunk the provider happens to miss.
		run_to_block(CHALLENGE_PERIOD);
		assert_noop!(
			StorageProofs::challenge(RuntimeOrigin::signed(PUBLISHER), DEAL, name("logs")),
			Error::<Test>::ChallengeTooSoon
		);
		run_to_block(1 + CHALLENGE_PERIOD);
		challenge(DEAL, "logs");
		// Challenging deal 7 does not limit deal 8's publisher (the same account here).
		commit(OTHER_DEAL, OTHER_PROVIDER, "db", &volume);
		challenge(OTHER_DEAL, "db");
	});
}

#[test]
fn a_challenge_right_after_a_commitment_names_it_and_passes() {
	build_and_execute(|| {
		commit(DEAL, PROVIDER, "db", &data(1, SIZE));
		run_to_block(1 + COMMITMENT_PERIOD);
		let newer = data(9, SIZE + 5000);
		let tree = commit(DEAL, PROVIDER, "db", &newer);
		challenge(DEAL, "db");
		let open = Challenges::<Test>::get(DEAL).unwrap();
		assert_eq!((open.root, open.chunk_count), (tree.root(), 11));
		to_answerable(DEAL);
		assert_ok!(StorageProofs::answer(
			RuntimeOrigin::signed(PROVIDER),
			DEAL,
			proofs_of(&newer, &indices(DEAL))
		));
		assert!(slashes().is_empty());
	});
}

#[test]
fn a_provider_cannot_commit_a_new_root_to_dodge_an_open_challenge() {
	build_and_execute(|| {
		let old = data(1, SIZE);
		let old_root = commit(DEAL, PROVIDER, "db", &old).root();
		commit(DEAL, PROVIDER, "logs", &data(2, SIZE));
		run_to_block(1 + COMMITMENT_PERIOD);
		challenge(DEAL, "db");
		let fresh = data(5, SIZE);
		let fresh_tree = tree(&fresh);
		assert_noop!(
			StorageProofs::commit(
				RuntimeOrigin::signed(PROVIDER),
				DEAL,
				name("db"),
				fresh_tree.root(),
				fresh_tree.chunk_count(),
				SIZE as u64
			),
			Error::<Test>::ChallengeOpen
		);
		// Another volume of the deal may be committed meanwhile.
		commit(DEAL, PROVIDER, "logs", &data(3, SIZE));
		assert_eq!(Challenges::<Test>::get(DEAL).unwrap().root, old_root);
		// Proofs of the data it holds now, not the committed snapshot, fail.
		to_answerable(DEAL);
		assert_ok!(StorageProofs::answer(
			RuntimeOrigin::signed(PROVIDER),
			DEAL,
			proofs_of(&fresh, &indices(DEAL))
		));
		assert_eq!(slashes().len(), 1);
		// Decided: the volume takes commitments again.
		commit(DEAL, PROVIDER, "db", &fresh);
	});
}

#[test]
fn a_challenge_is_answered_once() {
	build_and_execute(|| {
		let volume = data(1, SIZE);
		commit(DEAL, PROVIDER, "db", &volume);
		challenge(DEAL, "db");
		to_answerable(DEAL);
		let altered: Vec<u8> = volume.iter().map(|b| b ^ 1).collect();
		assert_ok!(StorageProofs::answer(
			RuntimeOrigin::signed(PROVIDER),
			DEAL,
			proofs_of(&altered, &indices(DEAL))
		));
		// A failed verification is final: no second try with the right data, no second slash.
		assert_noop!(
			StorageProofs::answer(
				RuntimeOrigin::signed(PROVIDER),
				DEAL,
				proofs_of(&volume, &[0; CHUNKS as usize])
			),
			Error::<Test>::NoChallenge
		);
		run_to_block(40);
		assert_eq!(slashes().len(), 1);
	});
}

#[test]
fn a_malformed_answer_is_refused_and_decides_nothing() {
	build_and_execute(|| {
		let volume = data(1, SIZE);
		commit(DEAL, PROVIDER, "db", &volume);
		challenge(DEAL, "db");
		to_answerable(DEAL);
		let asked = indices(DEAL);
		assert_noop!(
			StorageProofs::answer(
				RuntimeOrigin::signed(PROVIDER),
				DEAL,
				proofs_of(&volume, &asked[..asked.len() - 1])
			),
			Error::<Test>::WrongProofCount
		);
		assert_ok!(StorageProofs::answer(
			RuntimeOrigin::signed(PROVIDER),
			DEAL,
			proofs_of(&volume, &asked)
		));
		assert!(slashes().is_empty());
	});
}

#[test]
fn a_late_answer_is_refused_and_the_hook_fails_the_challenge() {
	build_and_execute(|| {
		let volume = data(1, SIZE);
		commit(DEAL, PROVIDER, "db", &volume);
		challenge(DEAL, "db");
		let open = Challenges::<Test>::get(DEAL).unwrap();
		assert_eq!(open.deadline, 1 + CHALLENGE_DEADLINE);
		run_to_block(open.deadline);
		let asked = indices(DEAL);
		// Nobody may expire it while it can still be answered.
		assert_noop!(
			StorageProofs::expire(RuntimeOrigin::signed(STRANGER), DEAL),
			Error::<Test>::ChallengeNotExpired
		);
		run_to_block(open.deadline + 1);
		// The hook failed it at its expiry, first thing in the block.
		assert!(events().contains(&failed(DEAL, "db", Failure::NoAnswer)));
		assert_noop!(
			StorageProofs::answer(
				RuntimeOrigin::signed(PROVIDER),
				DEAL,
				proofs_of(&volume, &asked)
			),
			Error::<Test>::NoChallenge
		);
		assert_eq!(slashes().len(), 1);
	});
}

#[test]
fn anyone_may_expire_a_challenge_past_its_deadline_once() {
	build_and_execute(|| {
		commit(DEAL, PROVIDER, "db", &data(1, SIZE));
		challenge(DEAL, "db");
		let open = Challenges::<Test>::get(DEAL).unwrap();
		// Past the deadline but before the hook ran (a block built without it, say).
		System::set_block_number(open.deadline + 1);
		assert_noop!(
			StorageProofs::answer(RuntimeOrigin::signed(PROVIDER), DEAL, BoundedVec::default()),
			Error::<Test>::ChallengeExpired
		);
		assert_ok!(StorageProofs::expire(RuntimeOrigin::signed(STRANGER), DEAL));
		assert_noop!(
			StorageProofs::expire(RuntimeOrigin::signed(STRANGER), DEAL),
			Error::<Test>::NoChallenge
		);
		// The hook's item finds nothing left.
		StorageProofs::on_initialize(open.due_at);
		assert_eq!(slashes().len(), 1);
	});
}

#[test]
fn strangers_cannot_commit_challenge_or_answer() {
	build_and_execute(|| {
		let volume = data(1, SIZE);
		let t = tree(&volume);
		for who in [STRANGER, PUBLISHER, OTHER_PROVIDER] {
			assert_noop!(
				StorageProofs::commit(
					RuntimeOrigin::signed(who),
					DEAL,
					name("db"),
					t.root(),
					t.chunk_count(),
					SIZE as u64
				),
				Error::<Test>::NotDealProvider
			);
		}
		commit(DEAL, PROVIDER, "db", &volume);
		for who in [STRANGER, PROVIDER, OTHER_PROVIDER] {
			assert_noop!(
				StorageProofs::challenge(RuntimeOrigin::signed(who), DEAL, name("db")),
				Error::<Test>::NotPublisher
			);
		}
		challenge(DEAL, "db");
		to_answerable(DEAL);
		for who in [STRANGER, PUBLISHER, OTHER_PROVIDER] {
			assert_noop!(
				StorageProofs::answer(
					RuntimeOrigin::signed(who),
					DEAL,
					proofs_of(&volume, &indices(DEAL))
				),
				Error::<Test>::NotDealProvider
			);
		}
		// Unknown deals, for everyone.
		assert_noop!(
			StorageProofs::commit(
				RuntimeOrigin::signed(PROVIDER),
				99,
				name("db"),
				t.root(),
				10,
				SIZE as u64
			),
			Error::<Test>::UnknownDeal
		);
		assert_noop!(
			StorageProofs::challenge(RuntimeOrigin::signed(PUBLISHER), 99, name("db")),
			Error::<Test>::UnknownDeal
		);
		assert_noop!(
			StorageProofs::answer(RuntimeOrigin::signed(PROVIDER), 99, BoundedVec::default()),
			Error::<Test>::NoChallenge
		);
		assert!(slashes().is_empty());
	});
}

#[test]
fn commitments_are_checked_and_rate_limited() {
	build_and_execute(|| {
		let volume = data(1, SIZE);
		let t = tree(&volume);
		for (count, size) in
			[(9, SIZE as u64), (11, SIZE as u64), (0, 0), (2, 0), (u32::MAX, u64::MAX)]
		{
			assert_noop!(
				StorageProofs::commit(
					RuntimeOrigin::signed(PROVIDER),
					DEAL,
					name("db"),
					t.root(),
					count,
					size
				),
				Error::<Test>::InconsistentSize
			);
		}
		commit(DEAL, PROVIDER, "db", &volume);
		run_to_block(COMMITMENT_PERIOD);
		assert_noop!(
			StorageProofs::commit(
				RuntimeOrigin::signed(PROVIDER),
				DEAL,
				name("db"),
				t.root(),
				t.chunk_count(),
				SIZE as u64
			),
			Error::<Test>::CommitTooSoon
		);
		run_to_block(1 + COMMITMENT_PERIOD);
		commit(DEAL, PROVIDER, "db", &data(2, 10));
		commit(DEAL, PROVIDER, "logs", &volume);
		assert_noop!(
			StorageProofs::commit(
				RuntimeOrigin::signed(PROVIDER),
				DEAL,
				name("third"),
				t.root(),
				t.chunk_count(),
				SIZE as u64
			),
			Error::<Test>::TooManyVolumes
		);
		assert_eq!(LiveDeals::<Test>::get(DEAL).unwrap().volumes, 2);
	});
}

#[test]
fn a_challenge_open_when_the_deal_ends_stays_answerable_until_its_deadline() {
	build_and_execute(|| {
		let volume = data(1, SIZE);
		commit(DEAL, PROVIDER, "db", &volume);
		commit(DEAL, PROVIDER, "logs", &volume);
		commit(OTHER_DEAL, OTHER_PROVIDER, "db", &volume);
		challenge(DEAL, "db");
		challenge(OTHER_DEAL, "db");
		end_deal(DEAL);
		end_deal(OTHER_DEAL);
		// Commitments of ended deals are gone; nothing new is accepted.
		assert_eq!(Commitments::<Test>::iter().count(), 0);
		assert!(LiveDeals::<Test>::get(DEAL).is_none());
		assert_noop!(
			StorageProofs::commit(RuntimeOrigin::signed(PROVIDER), DEAL, name("db"), [0; 32], 1, 1),
			Error::<Test>::UnknownDeal
		);
		// The honest provider still answers and passes; the other does not answer and pays.
		to_answerable(DEAL);
		assert_ok!(StorageProofs::answer(
			RuntimeOrigin::signed(PROVIDER),
			DEAL,
			proofs_of(&volume, &indices(DEAL))
		));
		run_to_block(40);
		assert_eq!(slashes().len(), 1);
		assert_eq!(slashes()[0].0, OTHER_PROVIDER);
		assert_eq!(Challenges::<Test>::iter().count(), 0);
	});
}

#[test]
fn ending_a_deal_twice_or_an_unknown_deal_is_harmless() {
	build_and_execute(|| {
		commit(DEAL, PROVIDER, "db", &data(1, SIZE));
		end_deal(DEAL);
		end_deal(DEAL);
		end_deal(99);
		assert_eq!(LiveDeals::<Test>::iter().count(), 1);
	});
}

#[test]
fn expiries_that_do_not_fit_spill_to_later_blocks_and_are_all_failed() {
	new_test_ext().execute_with(|| {
		let volume = data(1, SIZE);
		for id in 0..5 {
			start_deal(id, PUBLISHER, PROVIDER);
			commit(id, PROVIDER, "db", &volume);
		}
		for id in 0..5 {
			challenge(id, "db");
		}
		let due: Vec<_> = (0..5).map(|id| Challenges::<Test>::get(id).unwrap().due_at).collect();
		let first = 1 + CHALLENGE_DEADLINE + 1;
		assert_eq!(due, vec![first, first, first + 1, first + 1, first + 2]);
		StorageProofs::do_try_state().unwrap();
		run_to_block(first + 2);
		assert_eq!(slashes().len(), 5);
		assert_eq!(Challenges::<Test>::iter().count(), 0);
		StorageProofs::do_try_state().unwrap();
	});
}

#[test]
fn a_challenge_is_refused_when_no_due_queue_has_room() {
	build_and_execute(|| {
		commit(DEAL, PROVIDER, "db", &data(1, SIZE));
		let first = 1 + CHALLENGE_DEADLINE + 1;
		let full: BoundedVec<DealId, ConstU32<MAX_DUE>> =
			BoundedVec::truncate_from(vec![1_000; MAX_DUE as usize]);
		for at in first..first + u64::from(DUE_SEARCH) {
			Due::<Test>::insert(at, full.clone());
		}
		assert_noop!(
			StorageProofs::challenge(RuntimeOrigin::signed(PUBLISHER), DEAL, name("db")),
			Error::<Test>::Busy
		);
		for at in first..first + u64::from(DUE_SEARCH) {
			Due::<Test>::remove(at);
		}
	});
}

#[test]
fn the_penalty_is_what_the_deal_carried_when_challenged() {
	build_and_execute(|| {
		commit(DEAL, PROVIDER, "db", &data(1, SIZE));
		challenge(DEAL, "db");
		// The SLA side changes its bound afterwards: the challenge keeps its own.
		SLA_DEALS.with(|d| d.borrow_mut().insert(DEAL, (PUBLISHER, PROVIDER, 1_000_000)));
		run_to_block(1 + CHALLENGE_DEADLINE + 1);
		assert_eq!(slashes()[0].1, PENALTY);
	});
}

#[test]
fn answer_weight_grows_with_the_deepest_path() {
	use crate::weights::WeightInfo;
	let shallow = <() as WeightInfo>::answer(0);
	let deep = <() as WeightInfo>::answer(32);
	assert!(deep.ref_time() > shallow.ref_time());
	let proof = |depth: usize| ChunkProof {
		chunk: BoundedVec::default(),
		path: BoundedVec::truncate_from(vec![[0; 32]; depth]),
	};
	assert_eq!(StorageProofs::deepest(&[proof(3), proof(7), proof(1)]), 7);
	assert_eq!(StorageProofs::deepest(&[]), 0);
}

/// What verifying a worst-case answer costs natively: k chunks, 31-sibling paths.
#[test]
fn verifying_a_deep_answer_is_cheap() {
	let chunk = vec![0xab; CHUNK_SIZE];
	let mut path = Vec::new();
	let mut hash = podchain_merkle::leaf_hash(&chunk);
	for _ in 0..31 {
		path.push(hash);
		hash = podchain_merkle::node_hash(&hash, &hash);
	}
	let started = std::time::Instant::now();
	let rounds = 100;
	for _ in 0..rounds {
		for index in 0..CHUNKS {
			assert!(podchain_merkle::verify(&hash, 1 << 31, index * 12345, &chunk, &path));
		}
	}
	let per_answer = started.elapsed() / rounds;
	println!("native verification of {CHUNKS} chunks at depth 31: {per_answer:?} per answer");
	assert!(per_answer < std::time::Duration::from_millis(50));
}

#[test]
fn a_challenge_holds_its_penalty_from_the_deals_bill_bounded_budget() {
	build_and_execute(|| {
		let volume = data(1, SIZE);
		commit(DEAL, PROVIDER, "db", &volume);
		// The publisher paid little since the last settlement: a failure costs that, no more.
		set_budget(DEAL, 30);
		challenge(DEAL, "db");
		assert_eq!(Challenges::<Test>::get(DEAL).unwrap().penalty, 30);
		assert_eq!(held_and_spent(DEAL), (30, 0));
		to_answerable(DEAL);
		let altered: Vec<u8> = volume.iter().map(|b| b ^ 0x40).collect();
		assert_ok!(StorageProofs::answer(
			RuntimeOrigin::signed(PROVIDER),
			DEAL,
			proofs_of(&altered, &indices(DEAL))
		));
		assert_eq!(slashes(), vec![(PROVIDER, 30, PUBLISHER, 30, slashes()[0].4)]);
		assert_eq!(stake_of(PROVIDER), 10_000 - 30);
		// Spent, not returned: the next challenge finds the budget empty.
		assert_eq!(held_and_spent(DEAL), (0, 30));
		run_to_block(frame_system::Pallet::<Test>::block_number() + CHALLENGE_PERIOD);
		challenge(DEAL, "db");
		assert_eq!(Challenges::<Test>::get(DEAL).unwrap().penalty, 0);
	});
}

#[test]
fn a_passed_or_expired_challenge_ends_its_hold() {
	build_and_execute(|| {
		let volume = data(1, SIZE);
		commit(DEAL, PROVIDER, "db", &volume);
		set_budget(DEAL, 1_000);
		challenge(DEAL, "db");
		assert_eq!(held_and_spent(DEAL), (PENALTY, 0));
		to_answerable(DEAL);
		assert_ok!(StorageProofs::answer(
			RuntimeOrigin::signed(PROVIDER),
			DEAL,
			proofs_of(&volume, &indices(DEAL))
		));
		// Passed: the hold returns to the budget, nothing spent.
		assert_eq!(held_and_spent(DEAL), (0, 0));
		run_to_block(frame_system::Pallet::<Test>::block_number() + CHALLENGE_PERIOD);
		challenge(DEAL, "db");
		assert_eq!(held_and_spent(DEAL), (PENALTY, 0));
		let deadline = Challenges::<Test>::get(DEAL).unwrap().deadline;
		run_to_block(deadline + 2);
		assert!(events().contains(&failed(DEAL, "db", Failure::NoAnswer)));
		// Expired: what was slashed to the publisher is spent.
		assert_eq!(held_and_spent(DEAL), (0, PENALTY));
	});
}
