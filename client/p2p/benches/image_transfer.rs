//! Throughput of `/podchain/image/1` over loopback: a 200 MB image (a config and four
//! layers of random bytes) pushed between two nodes in this process, the receiving side
//! writing blobs to a temp dir and hashing them (`tests/support/receiver.rs`). Prints MB/s of
//! a cold push, the time of a second push (every blob skipped), the cost of sealing and
//! opening alone, and whether the goal of 50 MB/s is met.
//!
//! Run: `cargo bench --workspace --bench image_transfer`.

#[path = "../tests/support/receiver.rs"]
mod receiver;

use std::{
	collections::HashMap,
	sync::Arc,
	time::{Duration, Instant},
};

use podchain_p2p::{
	image::IMAGE_CHUNK_SIZE, seal::OpeningKey, ImageChunk, ImageReader, Keypair, P2pConfig,
	P2pNode, PublisherSigner,
};
use receiver::{noise, DealView, Faults, MemoryImage, Receiver, Store};
use schnorrkel::{ExpansionMode, MiniSecretKey};

const DEAL: u64 = 1;
const LAYERS: usize = 4;
const LAYER_BYTES: usize = 50_000_000;
const GOAL_MB_PER_S: f64 = 50.0;

fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
	bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

fn main() {
	let runtime = tokio::runtime::Builder::new_multi_thread()
		.worker_threads(2)
		.enable_all()
		.build()
		.expect("tokio runtime");
	runtime.block_on(run());
}

async fn run() {
	let publisher =
		MiniSecretKey::from_bytes(&[1; 32]).unwrap().expand_to_keypair(ExpansionMode::Ed25519);
	let mut blobs = vec![br#"{"architecture":"amd64","os":"linux"}"#.to_vec()];
	blobs.extend((0..LAYERS).map(|i| noise(i as u64 + 1, LAYER_BYTES)));
	let image = Arc::new(MemoryImage::new(blobs));
	let total = image.total();

	let provider = Keypair::generate_ed25519();
	let provider_peer = provider.public().to_peer_id();
	sealing_cost(&publisher, &provider, &image);

	let dir = tempfile::tempdir().expect("temp dir");
	let view = DealView { publisher: publisher.public(), pinned: image.manifest_digest() };
	let store = Arc::new(Store::new(
		dir.path(),
		HashMap::from([(DEAL, view)]),
		Arc::new(Faults::default()),
	));
	let local = "/ip4/127.0.0.1/tcp/0".parse().unwrap();
	let receiver = Receiver::start(provider, local, store.clone()).await;
	let client = P2pNode::spawn(Keypair::generate_ed25519(), P2pConfig::default()).await.unwrap();
	let signer = Arc::new(publisher);

	println!(
		"image: {} MB in {} blobs, chunks of {} MiB",
		total / 1_000_000,
		LAYERS + 1,
		IMAGE_CHUNK_SIZE >> 20
	);
	let mut pushes = Vec::new();
	for _ in 0..2 {
		let started = Instant::now();
		let report = client
			.handle()
			.push_image(
				receiver.peer,
				[receiver.addr.clone()],
				signer.clone(),
				DEAL,
				image.clone(),
				|_| {},
			)
			.await
			.expect("push");
		pushes.push((report, started.elapsed()));
	}
	let (cold, cold_time) = &pushes[0];
	assert_eq!(cold.sent_bytes, total);
	let cold_rate = mb_per_s(total, *cold_time);
	println!(
		"cold push: {} MB in {:.2} s: {cold_rate:.1} MB/s",
		total / 1_000_000,
		cold_time.as_secs_f64()
	);
	let (warm, warm_time) = &pushes[1];
	assert_eq!((warm.sent_bytes, warm.blobs_skipped), (0, LAYERS + 1));
	println!(
		"second push (all {} blobs skipped): {:.1} ms",
		LAYERS + 1,
		warm_time.as_secs_f64() * 1e3
	);
	for (digest, blob) in &image.blobs {
		assert_eq!(store.have(digest, blob.len() as u64), blob.len() as u64);
	}
	assert_eq!(provider_peer, receiver.peer);
	single_layer(&signer, &client).await;
	println!(
		"goal: >= {GOAL_MB_PER_S} MB/s over loopback for a 200 MB image: {cold_rate:.1} MB/s, {}",
		if cold_rate >= GOAL_MB_PER_S { "met" } else { "MISSED" }
	);
}

/// One 100 MB layer: a single blob's chunks go one after the other, so this shows what
/// preparing the next chunk during the round trip gives.
async fn single_layer(signer: &Arc<schnorrkel::Keypair>, client: &P2pNode) {
	let image = Arc::new(MemoryImage::new(vec![noise(99, 2 * LAYER_BYTES)]));
	let dir = tempfile::tempdir().expect("temp dir");
	let view = DealView { publisher: signer.public(), pinned: image.manifest_digest() };
	let store = Arc::new(Store::new(
		dir.path(),
		HashMap::from([(DEAL, view)]),
		Arc::new(Faults::default()),
	));
	let local = "/ip4/127.0.0.1/tcp/0".parse().unwrap();
	let receiver = Receiver::start(Keypair::generate_ed25519(), local, store).await;
	let started = Instant::now();
	let report = client
		.handle()
		.push_image(
			receiver.peer,
			[receiver.addr.clone()],
			signer.clone(),
			DEAL,
			image.clone(),
			|_| {},
		)
		.await
		.expect("push");
	assert_eq!(report.sent_bytes, image.total());
	println!(
		"one {} MB layer: {:.1} MB/s",
		image.total() / 1_000_000,
		mb_per_s(image.total(), started.elapsed())
	);
}

/// Sealing and signing, then verifying and opening, chunks on one thread: the crypto's share
/// of a push.
fn sealing_cost(publisher: &schnorrkel::Keypair, provider: &Keypair, image: &MemoryImage) {
	let peer = provider.public().to_peer_id();
	let opening = OpeningKey::from_keypair(provider).unwrap();
	let provider_key = podchain_p2p::seal::ed25519_public_of(&peer).unwrap();
	let (digest, blob) = image.blobs.iter().max_by_key(|(_, b)| b.len()).unwrap();
	let chunks: Vec<&[u8]> = blob.chunks(IMAGE_CHUNK_SIZE).take(8).collect();
	let bytes: u64 = chunks.iter().map(|c| c.len() as u64).sum();
	let started = Instant::now();
	let sealed: Vec<ImageChunk> = chunks
		.iter()
		.enumerate()
		.map(|(i, c)| {
			let offset = (i * IMAGE_CHUNK_SIZE) as u64;
			ImageChunk::new(publisher, &peer, DEAL, *digest, offset, c).unwrap()
		})
		.collect();
	let seal_rate = mb_per_s(bytes, started.elapsed());
	let started = Instant::now();
	for chunk in &sealed {
		chunk.verify_signature(&provider_key).unwrap();
		chunk.open_checked(&opening, &publisher.public()).unwrap();
	}
	let open_rate = mb_per_s(bytes, started.elapsed());
	println!("one thread: seal + sign {seal_rate:.0} MB/s, verify + open {open_rate:.0} MB/s");
}
