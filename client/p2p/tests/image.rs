//! `/podchain/image/1` between two real libp2p nodes on 127.0.0.1: a publisher pushing and a
//! provider whose application side (`support/receiver.rs`) stores blobs in a temp dir.

#[path = "support/receiver.rs"]
mod receiver;

use std::{
	collections::HashMap,
	sync::{atomic::Ordering, Arc},
	time::Duration,
};

use podchain_p2p::{
	auth,
	image::{sha256, IMAGE_CHUNK_SIZE, MAX_IMAGE_CHUNK_SIZE, MAX_IMAGE_REQUEST_BYTES},
	seal, ImageChunk, ImageOffer, ImageReject, ImageRequest, ImageResponse, Keypair, Multiaddr,
	P2pConfig, P2pError, P2pHandle, P2pNode, PublisherSigner,
};
use receiver::{noise, DealView, Faults, MemoryImage, Receiver, Store};
use schnorrkel::{ExpansionMode, MiniSecretKey};

const DEAL: u64 = 7;
/// A second deal of the same publisher, pinning the same image.
const OTHER_DEAL: u64 = 8;

fn sr25519(seed: u8) -> schnorrkel::Keypair {
	MiniSecretKey::from_bytes(&[seed; 32]).unwrap().expand_to_keypair(ExpansionMode::Ed25519)
}

fn local() -> Multiaddr {
	"/ip4/127.0.0.1/tcp/0".parse().unwrap()
}

/// A config blob and two layers spanning several chunks, the second ending mid-chunk.
fn image() -> Arc<MemoryImage> {
	Arc::new(MemoryImage::new(vec![
		br#"{"architecture":"amd64","os":"linux"}"#.to_vec(),
		noise(1, 8 * IMAGE_CHUNK_SIZE + 1000),
		noise(2, 13 * IMAGE_CHUNK_SIZE / 2),
	]))
}

struct Setup {
	store: Arc<Store>,
	receiver: Receiver,
	client: P2pNode,
	image: Arc<MemoryImage>,
	_dir: tempfile::TempDir,
}

impl Setup {
	async fn new() -> Self {
		Self::with_key(Keypair::generate_ed25519()).await
	}

	async fn with_key(keypair: Keypair) -> Self {
		let dir = tempfile::tempdir().unwrap();
		let image = image();
		let view = DealView { publisher: sr25519(1).public(), pinned: image.manifest_digest() };
		let deals = HashMap::from([(DEAL, view), (OTHER_DEAL, view)]);
		let store = Arc::new(Store::new(dir.path(), deals, Arc::new(Faults::default())));
		let receiver = Receiver::start(keypair, local(), store.clone()).await;
		let config = P2pConfig { request_timeout: Duration::from_secs(5), ..Default::default() };
		let client = P2pNode::spawn(Keypair::generate_ed25519(), config).await.unwrap();
		Self { store, receiver, client, image, _dir: dir }
	}

	fn handle(&self) -> P2pHandle {
		self.client.handle()
	}

	async fn push(
		&self,
		signer: schnorrkel::Keypair,
		deal: u64,
	) -> Result<podchain_p2p::PushReport, P2pError> {
		let mut last = None;
		let report = self
			.handle()
			.push_image(
				self.receiver.peer,
				[self.receiver.addr.clone()],
				Arc::new(signer),
				deal,
				self.image.clone(),
				|p| {
					if let Some(last) = last {
						let podchain_p2p::PushProgress { total, skipped, .. } = last;
						assert_eq!((p.total, p.skipped), (total, skipped));
					}
					assert!(p.sent + p.skipped <= p.total);
					last = Some(p);
				},
			)
			.await;
		if let (Ok(_), Some(last)) = (&report, last) {
			assert_eq!(last.sent + last.skipped, last.total, "progress ends complete");
		}
		report
	}

	/// Every blob is complete in the store, under its digest, with the right bytes.
	fn assert_stored(&self) {
		for (digest, blob) in &self.image.blobs {
			assert_eq!(self.store.have(digest, blob.len() as u64), blob.len() as u64);
			let path = self._dir.path().join(hex::encode(digest));
			assert_eq!(sha256(&std::fs::read(path).unwrap()), *digest);
		}
	}

	fn chunk(&self, signer: &schnorrkel::Keypair, deal: u64, offset: u64) -> ImageChunk {
		let (digest, blob) = self.layer();
		let end = (offset as usize + IMAGE_CHUNK_SIZE).min(blob.len());
		let bytes = &blob[offset as usize..end];
		ImageChunk::new(signer, &self.receiver.peer, deal, digest, offset, bytes).unwrap()
	}

	/// The largest blob.
	fn layer(&self) -> ([u8; 32], &Vec<u8>) {
		let (digest, blob) = self.image.blobs.iter().max_by_key(|(_, b)| b.len()).unwrap();
		(*digest, blob)
	}

	async fn send(&self, request: ImageRequest) -> Result<ImageResponse, P2pError> {
		self.handle().send_image(self.receiver.peer, [self.receiver.addr.clone()], request).await
	}

	async fn offer(&self, signer: &schnorrkel::Keypair, deal: u64) -> ImageResponse {
		let image = &self.image;
		let offer = ImageOffer::new(
			signer,
			&self.receiver.peer,
			deal,
			image.manifest_digest(),
			&image.manifest,
		)
		.unwrap();
		self.send(ImageRequest::Offer(offer)).await.unwrap()
	}
}

use podchain_p2p::ImageReader;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_push_then_all_skipped() {
	let setup = Setup::new().await;
	let total = setup.image.total();
	let report = setup.push(sr25519(1), DEAL).await.unwrap();
	assert_eq!(report.total_bytes, total);
	assert_eq!(report.sent_bytes, total);
	assert_eq!((report.skipped_bytes, report.blobs_skipped, report.retries), (0, 0, 0));
	setup.assert_stored();
	// 1 chunk for the config, 9 and 7 for the layers.
	assert_eq!(setup.store.faults.chunks.load(Ordering::SeqCst), 17);

	// Again, and for another deal of the same image: nothing is sent.
	for deal in [DEAL, OTHER_DEAL] {
		let report = setup.push(sr25519(1), deal).await.unwrap();
		assert_eq!((report.sent_bytes, report.skipped_bytes), (0, total));
		assert_eq!((report.blobs_skipped, report.retries), (3, 0));
	}
	assert_eq!(setup.store.faults.chunks.load(Ordering::SeqCst), 17);
}

/// The provider goes down mid-transfer and comes back on the same key and port: the push
/// waits, offers again and resumes each blob where the provider's copy ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_the_provider_restarts() {
	let keypair = Keypair::generate_ed25519();
	let setup = Setup::with_key(keypair.clone()).await;
	let Setup { store, receiver, client, image, _dir } = setup;
	let (peer, addr) = (receiver.peer, receiver.addr.clone());
	let handle = client.handle();
	let push = tokio::spawn({
		let image = image.clone();
		async move { handle.push_image(peer, [addr], Arc::new(sr25519(1)), DEAL, image, |_| {}).await }
	});
	while store.faults.chunks.load(Ordering::SeqCst) < 2 {
		tokio::time::sleep(Duration::from_millis(5)).await;
	}
	let addr = receiver.addr.clone();
	receiver.node.shutdown().await;
	let stored_before = store.faults.chunks.load(Ordering::SeqCst);
	assert!(stored_before < 17, "the push must not be over yet");
	tokio::time::sleep(Duration::from_millis(600)).await;
	let receiver = Receiver::start(keypair, addr.clone(), store.clone()).await;
	assert_eq!(receiver.addr, addr);

	let report = push.await.unwrap().unwrap();
	assert!(report.retries >= 1, "{report:?}");
	assert_eq!(report.skipped_bytes, 0);
	// No blob was started over: resumed, not restarted.
	assert_eq!(store.faults.chunks_at_zero.load(Ordering::SeqCst), 3);
	assert!(report.sent_bytes <= image.total() + 3 * IMAGE_CHUNK_SIZE as u64);
	let stored = Setup { store, receiver, client, image, _dir };
	stored.assert_stored();
}

/// A busy provider: the push backs off and resumes, counting the retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_a_busy_provider() {
	let setup = Setup::new().await;
	setup.store.faults.busy_chunks.store(1, Ordering::SeqCst);
	let report = setup.push(sr25519(1), DEAL).await.unwrap();
	assert_eq!(report.retries, 1);
	// Chunks abandoned in flight may be stored without the push hearing of it.
	assert!(report.sent_bytes <= setup.image.total());
	assert_eq!(setup.store.faults.chunks_at_zero.load(Ordering::SeqCst), 3);
	setup.assert_stored();

	// Busy for longer than the retries last: the push gives up, naming the last refusal.
	let setup = Setup::new().await;
	setup.store.faults.busy_chunks.store(1000, Ordering::SeqCst);
	let error = setup.push(sr25519(1), DEAL).await.unwrap_err();
	assert!(matches!(error, P2pError::ImageRejected { reason: ImageReject::Busy, .. }), "{error}");
}

/// The plan says a partial blob is empty; the provider's store knows better and names the
/// offset, where the push continues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resyncs_on_offset_mismatch() {
	let setup = Setup::new().await;
	let (digest, blob) = setup.layer();
	let partial = setup._dir.path().join(format!("{}.partial", hex::encode(digest)));
	std::fs::write(partial, &blob[..IMAGE_CHUNK_SIZE + 5]).unwrap();
	setup.store.faults.understate_plan.store(true, Ordering::SeqCst);
	let report = setup.push(sr25519(1), DEAL).await.unwrap();
	assert_eq!(setup.store.faults.offset_mismatches.load(Ordering::SeqCst), 1);
	assert_eq!(report.retries, 0);
	assert_eq!(report.sent_bytes, setup.image.total() - IMAGE_CHUNK_SIZE as u64 - 5);
	setup.assert_stored();
}

/// Someone else's key: their offer, their chunks and their push are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_are_not_the_publisher() {
	let setup = Setup::new().await;
	let stranger = sr25519(9);
	assert_eq!(
		setup.offer(&stranger, DEAL).await,
		ImageResponse::Reject(ImageReject::NotPublisher)
	);
	// The publisher's offer first, so the blob is known to the deal.
	assert!(matches!(setup.offer(&sr25519(1), DEAL).await, ImageResponse::Plan(_)));
	let chunk = setup.chunk(&stranger, DEAL, 0);
	assert_eq!(
		setup.send(ImageRequest::Chunk(chunk)).await.unwrap(),
		ImageResponse::Reject(ImageReject::NotPublisher)
	);
	let error = setup.push(stranger, DEAL).await.unwrap_err();
	assert!(
		matches!(error, P2pError::ImageRejected { reason: ImageReject::NotPublisher, .. }),
		"{error}"
	);
	// An unknown deal, and a blob the deal's image does not list.
	assert_eq!(setup.offer(&sr25519(1), 99).await, ImageResponse::Reject(ImageReject::UnknownDeal));
	let foreign =
		ImageChunk::new(&sr25519(1), &setup.receiver.peer, DEAL, [5; 32], 0, b"x").unwrap();
	assert_eq!(
		setup.send(ImageRequest::Chunk(foreign)).await.unwrap(),
		ImageResponse::Reject(ImageReject::NotPinned)
	);
	// An image the deal does not pin.
	let other = MemoryImage::new(vec![b"another image".to_vec()]);
	let offer = ImageOffer::new(
		&sr25519(1),
		&setup.receiver.peer,
		DEAL,
		other.manifest_digest(),
		&other.manifest,
	)
	.unwrap();
	assert_eq!(
		setup.send(ImageRequest::Offer(offer)).await.unwrap(),
		ImageResponse::Reject(ImageReject::NotPinned)
	);
	assert_eq!(setup.store.faults.chunks.load(Ordering::SeqCst), 0);
}

/// A signed chunk moved to another deal, offset, blob or provider fails its signature before
/// the application sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moved_chunks_fail_the_signature() {
	let setup = Setup::new().await;
	let publisher = sr25519(1);
	for deal in [DEAL, OTHER_DEAL] {
		assert!(matches!(setup.offer(&publisher, deal).await, ImageResponse::Plan(_)));
	}
	let requests_before = setup.store.faults.requests.load(Ordering::SeqCst);
	let chunk = setup.chunk(&publisher, DEAL, 0);
	let moves: [fn(&mut ImageChunk); 4] = [
		|c| c.deal_id = OTHER_DEAL,
		|c| c.offset = IMAGE_CHUNK_SIZE as u64,
		|c| c.digest = sha256(br#"{"architecture":"amd64","os":"linux"}"#),
		|c| c.sealed.ciphertext[10] ^= 0x40,
	];
	for change in moves {
		let mut moved = chunk.clone();
		change(&mut moved);
		assert_eq!(
			setup.send(ImageRequest::Chunk(moved)).await.unwrap(),
			ImageResponse::Reject(ImageReject::BadSignature)
		);
	}
	// Signed for another provider.
	let elsewhere = Keypair::generate_ed25519().public().to_peer_id();
	let (digest, blob) = setup.layer();
	let misdirected =
		ImageChunk::new(&publisher, &elsewhere, DEAL, digest, 0, &blob[..1000]).unwrap();
	assert_eq!(
		setup.send(ImageRequest::Chunk(misdirected)).await.unwrap(),
		ImageResponse::Reject(ImageReject::BadSignature)
	);
	assert_eq!(setup.store.faults.requests.load(Ordering::SeqCst), requests_before);
	// The chunk where it belongs is stored.
	let length = chunk.sealed.ciphertext.len() - seal::TAG_LEN;
	assert_eq!(
		setup.send(ImageRequest::Chunk(chunk)).await.unwrap(),
		ImageResponse::Stored { have: length as u64 }
	);
}

/// A ciphertext the publisher signed but that does not open: tampered, or sealed for another
/// deal than the one it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_ciphertext_is_undecryptable() {
	let setup = Setup::new().await;
	let publisher = sr25519(1);
	assert!(matches!(setup.offer(&publisher, DEAL).await, ImageResponse::Plan(_)));
	let provider_key = seal::ed25519_public_of(&setup.receiver.peer).unwrap();
	let resign = |chunk: &mut ImageChunk| {
		let message = auth::image_chunk_message(
			chunk.deal_id,
			&chunk.publisher,
			&provider_key,
			&chunk.digest,
			chunk.offset,
			&chunk.sealed.digest(),
		);
		chunk.signature = PublisherSigner::sign(&publisher, &message);
	};
	let mut tampered = setup.chunk(&publisher, DEAL, 0);
	tampered.sealed.ciphertext[100] ^= 1;
	resign(&mut tampered);
	let mut other_deal = setup.chunk(&publisher, OTHER_DEAL, 0);
	other_deal.deal_id = DEAL;
	resign(&mut other_deal);
	for chunk in [tampered, other_deal] {
		assert_eq!(
			setup.send(ImageRequest::Chunk(chunk)).await.unwrap(),
			ImageResponse::Reject(ImageReject::Undecryptable)
		);
	}
	assert_eq!(setup.store.faults.chunks.load(Ordering::SeqCst), 0);
}

/// A request over the codec's limit is dropped unread: no answer, nothing reaches the
/// application, and the node keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_chunks_are_refused_by_the_codec() {
	let setup = Setup::new().await;
	let publisher = sr25519(1);
	assert!(matches!(setup.offer(&publisher, DEAL).await, ImageResponse::Plan(_)));
	let (digest, _) = setup.layer();
	let provider_key = seal::ed25519_public_of(&setup.receiver.peer).unwrap();
	// Signed by the publisher, but with more bytes than a chunk may carry.
	let oversized = |len: usize| {
		let bytes = vec![7; len];
		assert!(matches!(
			ImageChunk::new(&publisher, &setup.receiver.peer, DEAL, digest, 0, &bytes),
			Err(P2pError::TooLarge { .. })
		));
		let sealed = seal::seal(&setup.receiver.peer, DEAL, publisher.public(), &bytes).unwrap();
		let message = auth::image_chunk_message(
			DEAL,
			&publisher.public(),
			&provider_key,
			&digest,
			0,
			&sealed.digest(),
		);
		let signature = PublisherSigner::sign(&publisher, &message);
		let publisher = publisher.public();
		ImageChunk { deal_id: DEAL, publisher, digest, offset: 0, sealed, signature }
	};
	// Within the codec's slack: refused when opened.
	assert_eq!(
		setup.send(ImageRequest::Chunk(oversized(MAX_IMAGE_CHUNK_SIZE + 1))).await.unwrap(),
		ImageResponse::Reject(ImageReject::TooLarge)
	);
	let requests_before = setup.store.faults.requests.load(Ordering::SeqCst);
	// Past the codec's limit: never decoded.
	let chunk = oversized(MAX_IMAGE_REQUEST_BYTES as usize);
	let error = setup.send(ImageRequest::Chunk(chunk)).await.unwrap_err();
	assert!(matches!(error, P2pError::Protocol { .. } | P2pError::Timeout { .. }), "{error}");
	assert_eq!(setup.store.faults.requests.load(Ordering::SeqCst), requests_before);
	let report = setup.push(publisher, DEAL).await.unwrap();
	assert_eq!(report.sent_bytes, setup.image.total());
	setup.assert_stored();
}

/// A publisher flooding chunks at a provider whose application is slow: what does not fit the
/// bounded queue (and the bounded signature checks) is refused as busy at once, and queued
/// requests are refused when the application does not answer in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_refused_as_busy() {
	let keypair = Keypair::generate_ed25519();
	let provider = keypair.public().to_peer_id();
	let config = P2pConfig {
		listen_addrs: vec![local()],
		serve: true,
		inbound_queue: 2,
		request_timeout: Duration::from_secs(2),
		..Default::default()
	};
	let mut node = P2pNode::spawn(keypair, config).await.unwrap();
	// Taken and never read: the application is stuck.
	let _inbound = node.take_inbound().unwrap();
	let addr = node.handle().listen_addrs()[0].clone();
	let client = P2pNode::spawn(Keypair::generate_ed25519(), P2pConfig::default()).await.unwrap();
	let publisher = sr25519(1);
	let bytes = noise(3, IMAGE_CHUNK_SIZE);
	let digest = sha256(&bytes);
	let answers = futures::future::join_all((0..12).map(|i| {
		let chunk = ImageChunk::new(&publisher, &provider, DEAL, digest, i, &bytes).unwrap();
		let handle = client.handle();
		let addr = addr.clone();
		async move { handle.send_image(provider, [addr], ImageRequest::Chunk(chunk)).await }
	}))
	.await;
	let busy = ImageResponse::Reject(ImageReject::Busy);
	let busy_count = answers.iter().filter(|a| matches!(a, Ok(r) if *r == busy)).count();
	// Queued ones end at the request timeout: refused, or the stream closed first.
	let unanswered = answers
		.iter()
		.filter(|a| {
			matches!(
				a,
				Ok(ImageResponse::Reject(ImageReject::Internal(_)))
					| Err(P2pError::Protocol { .. })
			)
		})
		.count();
	assert!(busy_count >= 10, "{answers:?}");
	assert_eq!(busy_count + unanswered, 12, "{answers:?}");
}
