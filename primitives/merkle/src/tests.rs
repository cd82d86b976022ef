use super::*;
use proptest::prelude::*;

fn hex(hash: &Hash) -> String {
	hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// `len` bytes of a fixed pattern.
fn pattern(len: usize) -> Vec<u8> {
	(0..len).map(|i| (i % 251) as u8).collect()
}

// Vectors computed independently of this crate (Python's hashlib.blake2b, digest_size=32,
// following the format in the crate docs), so a change of format cannot go unnoticed.
#[test]
fn roots_match_known_vectors() {
	let root = |data: &[u8]| hex(&MerkleTree::from_data(data).unwrap().root());
	assert_eq!(root(&[]), "569ed9e4a5463896190447e6ffe37c394c4d77ce470aa29ad762e0286b896832");
	assert_eq!(root(b"abc"), "87fa8b9bdbcf758a7c8a8ca805c44c562c3a5ac9066b46cac26d0fa08c7084d6");
	assert_eq!(
		root(&pattern(3 * CHUNK_SIZE + 100)),
		"e2610c7c6345333eff5e83a4e1b51d999488cdb2eb5225512eda7a3d6e152268"
	);
	assert_eq!(
		root(&pattern(5 * CHUNK_SIZE)),
		"aaa9b598bf3c2216aaeeb86e6ec92fedded6da54efe3767d7a4df864c5fbdaae"
	);
}

#[test]
fn challenge_indices_match_known_vectors() {
	let seed: Hash = core::array::from_fn(|i| i as u8);
	let indices = challenge_indices(&seed, 42, b"data", &[7; 32], 1000, 8);
	assert_eq!(indices, vec![854, 98, 169, 540, 507, 892, 362, 494]);
}

#[test]
fn challenge_indices_depend_on_every_input() {
	let seed = [1; 32];
	let base = challenge_indices(&seed, 1, b"data", &[2; 32], 1 << 20, 8);
	assert_eq!(base.len(), 8);
	assert!(base.iter().all(|i| *i < 1 << 20));
	assert_ne!(base, challenge_indices(&[3; 32], 1, b"data", &[2; 32], 1 << 20, 8));
	assert_ne!(base, challenge_indices(&seed, 2, b"data", &[2; 32], 1 << 20, 8));
	assert_ne!(base, challenge_indices(&seed, 1, b"datb", &[2; 32], 1 << 20, 8));
	assert_ne!(base, challenge_indices(&seed, 1, b"data", &[4; 32], 1 << 20, 8));
	assert!(challenge_indices(&seed, 1, b"data", &[2; 32], 0, 8).is_empty());
	assert_eq!(challenge_indices(&seed, 1, b"data", &[2; 32], 1, 4), vec![0; 4]);
}

#[test]
fn the_tree_pairs_neighbours_and_promotes_the_odd_last_node() {
	let data = pattern(3 * CHUNK_SIZE + 1);
	let leaves: Vec<Hash> = data.chunks(CHUNK_SIZE).map(leaf_hash).collect();
	assert_eq!(leaves.len(), 4);
	let tree = MerkleTree::from_data(&data[..3 * CHUNK_SIZE]).unwrap();
	// Three chunks: the third is promoted, not paired with itself.
	let expected = node_hash(&node_hash(&leaves[0], &leaves[1]), &leaves[2]);
	assert_eq!(tree.root(), expected);
	assert_eq!(tree.proof(2).unwrap(), vec![node_hash(&leaves[0], &leaves[1])]);
	assert_eq!(tree.proof(0).unwrap(), vec![leaves[1], leaves[2]]);
	assert_eq!(path_len(3, 2), Some(1));
	assert_eq!(path_len(3, 0), Some(2));
	assert_eq!(path_len(3, 3), None);
	assert_eq!(path_len(1, 0), Some(0));
}

#[test]
fn chunk_counts_and_lengths() {
	assert_eq!(chunk_count(0), Some(1));
	assert_eq!(chunk_count(1), Some(1));
	assert_eq!(chunk_count(CHUNK_SIZE as u64), Some(1));
	assert_eq!(chunk_count(CHUNK_SIZE as u64 + 1), Some(2));
	assert_eq!(chunk_count(u64::from(u32::MAX) * CHUNK_SIZE as u64), Some(u32::MAX));
	assert_eq!(chunk_count(u64::from(u32::MAX) * CHUNK_SIZE as u64 + 1), None);
	assert_eq!(chunk_len(0, 0), Some(0));
	assert_eq!(chunk_len(0, 1), None);
	assert_eq!(chunk_len(CHUNK_SIZE as u64 + 5, 0), Some(CHUNK_SIZE));
	assert_eq!(chunk_len(CHUNK_SIZE as u64 + 5, 1), Some(5));
	assert_eq!(chunk_len(2 * CHUNK_SIZE as u64, 1), Some(CHUNK_SIZE));
}

#[test]
fn a_leaf_is_never_an_inner_node() {
	let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
	let mut joined = Vec::from(a);
	joined.extend_from_slice(&b);
	// The 64 bytes of two leaf hashes, presented as a chunk, do not hash to their parent.
	assert_ne!(leaf_hash(&joined), node_hash(&a, &b));
}

#[test]
fn an_empty_stream_has_one_empty_chunk() {
	let tree = MerkleTree::from_data(&[]).unwrap();
	assert_eq!(tree.chunk_count(), 1);
	assert_eq!(tree.root(), leaf_hash(&[]));
	assert!(verify(&tree.root(), 1, 0, &[], &tree.proof(0).unwrap()));
	assert_eq!(MerkleTree::from_leaves(Vec::new()).unwrap(), tree);
}

/// Every chunk of `data` verifies, and every tampering fails.
fn check_all(data: &[u8]) {
	let tree = MerkleTree::from_data(data).unwrap();
	let root = tree.root();
	let count = tree.chunk_count();
	assert_eq!(Some(count), chunk_count(data.len() as u64));
	let chunks: Vec<&[u8]> =
		if data.is_empty() { vec![&[][..]] } else { data.chunks(CHUNK_SIZE).collect() };
	for (index, chunk) in chunks.iter().enumerate() {
		let index = index as u32;
		let path = tree.proof(index).unwrap();
		assert_eq!(Some(path.len() as u32), path_len(count, index));
		assert!(verify(&root, count, index, chunk, &path), "chunk {index} of {count}");

		// Any flipped byte of the chunk.
		for at in [0, chunk.len() / 2, chunk.len().saturating_sub(1)] {
			if chunk.is_empty() {
				break;
			}
			let mut altered = chunk.to_vec();
			altered[at] ^= 0x01;
			assert!(!verify(&root, count, index, &altered, &path));
		}
		// A byte cut off or added (the length is committed).
		if !chunk.is_empty() {
			assert!(!verify(&root, count, index, &chunk[..chunk.len() - 1], &path));
		}
		let mut longer = chunk.to_vec();
		longer.push(0);
		assert!(!verify(&root, count, index, &longer, &path));
		// Another index, another count, another root.
		if count > 1 {
			assert!(!verify(&root, count, (index + 1) % count, chunk, &path));
		}
		assert!(!verify(&root, count, count, chunk, &path));
		// A count whose tree has another shape at this index.
		if path_len(count + 1, index) != path_len(count, index) {
			assert!(!verify(&root, count + 1, index, chunk, &path));
		}
		let mut other_root = root;
		other_root[0] ^= 1;
		assert!(!verify(&other_root, count, index, chunk, &path));
		// Any sibling altered, dropped, or one added.
		for at in 0..path.len() {
			let mut altered = path.clone();
			altered[at][31] ^= 0x80;
			assert!(!verify(&root, count, index, chunk, &altered));
		}
		if !path.is_empty() {
			assert!(!verify(&root, count, index, chunk, &path[..path.len() - 1]));
		}
		let mut padded = path.clone();
		padded.push([0; 32]);
		assert!(!verify(&root, count, index, chunk, &padded));
	}
}

#[test]
fn every_chunk_verifies_and_every_tampering_fails() {
	for len in [
		0,
		1,
		CHUNK_SIZE - 1,
		CHUNK_SIZE,
		CHUNK_SIZE + 1,
		3 * CHUNK_SIZE,
		5 * CHUNK_SIZE + 7,
		8 * CHUNK_SIZE,
		13 * CHUNK_SIZE + 1,
	] {
		check_all(&pattern(len));
	}
}

#[test]
fn a_chunk_of_another_stream_fails() {
	let a = pattern(4 * CHUNK_SIZE);
	let mut b = a.clone();
	b[CHUNK_SIZE + 3] ^= 0xff;
	let (ta, tb) = (MerkleTree::from_data(&a).unwrap(), MerkleTree::from_data(&b).unwrap());
	let chunk = &b[CHUNK_SIZE..2 * CHUNK_SIZE];
	assert!(verify(&tb.root(), 4, 1, chunk, &tb.proof(1).unwrap()));
	assert!(!verify(&ta.root(), 4, 1, chunk, &tb.proof(1).unwrap()));
	assert!(!verify(&ta.root(), 4, 1, chunk, &ta.proof(1).unwrap()));
}

#[test]
fn a_chunk_longer_than_chunk_size_never_verifies() {
	let data = pattern(CHUNK_SIZE + 1);
	let root = leaf_hash(&data);
	// Even a "tree" of one leaf over the oversized chunk.
	assert!(!verify(&root, 1, 0, &data, &[]));
}

proptest! {
	#![proptest_config(ProptestConfig::with_cases(48))]

	#[test]
	fn proofs_verify_and_tampering_fails(
		chunks in 1usize..40,
		tail in 0usize..CHUNK_SIZE,
		seed in any::<u8>(),
		pick in any::<u32>(),
		flip in any::<usize>(),
	) {
		let len = (chunks - 1) * CHUNK_SIZE + tail.max(1);
		// Bytes that depend on their chunk too, so no two chunks are alike.
		let data: Vec<u8> = (0..len)
			.map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ ((i / CHUNK_SIZE) as u8).wrapping_mul(101))
			.collect();
		let tree = MerkleTree::from_data(&data).unwrap();
		let count = tree.chunk_count();
		let index = pick % count;
		let start = index as usize * CHUNK_SIZE;
		let chunk = &data[start..(start + CHUNK_SIZE).min(len)];
		let path = tree.proof(index).unwrap();
		prop_assert!(verify(&tree.root(), count, index, chunk, &path));
		let mut altered = chunk.to_vec();
		altered[flip % chunk.len()] ^= 0x10;
		prop_assert!(!verify(&tree.root(), count, index, &altered, &path));
		if count > 1 {
			let other = (index + 1 + pick % (count - 1)) % count;
			prop_assert!(!verify(&tree.root(), count, other, chunk, &path));
		}
	}
}
