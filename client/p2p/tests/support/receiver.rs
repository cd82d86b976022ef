//! The application side of `/podchain/image/1` for the tests and the benchmark: the test's
//! stand-in for the provider agent. It knows deals (publisher and pinned image manifest
//! digest), answers offers with what its directory holds, appends chunks only at the end of
//! a blob's partial file, checks each blob's SHA-256 on completion and then renames it.
//!
//! Its image manifest format is the test's own: one line per blob, `<hex sha256> <size>`.
//! Faults can be switched on to play a busy provider or one whose plan lags its store.

#![allow(dead_code)]

use std::{
	collections::HashMap,
	fs,
	io::{Read, Write},
	path::{Path, PathBuf},
	sync::{
		atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
		Arc, Mutex,
	},
};

use podchain_p2p::{
	image::sha256, BlobState, ImageReader, ImageReject, InboundImageChunk, InboundImageOffer,
	InboundRequest, Keypair, Multiaddr, P2pConfig, P2pNode, PeerId,
};
use sha2::{Digest, Sha256};

/// A deal as the receiver's chain view has it.
#[derive(Clone, Copy, Debug)]
pub struct DealView {
	/// The deal's publisher.
	pub publisher: [u8; 32],
	/// The image manifest digest its manifest pins.
	pub pinned: [u8; 32],
}

/// Fault switches and counters, shared by restarts of the receiver.
#[derive(Debug, Default)]
pub struct Faults {
	/// Refuse this many next chunks as busy.
	pub busy_chunks: AtomicU32,
	/// Answer offers as if no partial blob were held (a plan lagging the store).
	pub understate_plan: AtomicBool,
	/// Chunks stored.
	pub chunks: AtomicU64,
	/// Chunks stored at offset 0 (a resumed blob is not started again).
	pub chunks_at_zero: AtomicU64,
	/// Offset mismatches answered.
	pub offset_mismatches: AtomicU32,
	/// Requests of any kind the application received.
	pub requests: AtomicU64,
}

/// The receiver's blob store: `<dir>/<hex>` complete, `<dir>/<hex>.partial` in progress.
pub struct Store {
	dir: PathBuf,
	deals: HashMap<u64, DealView>,
	/// The blobs (digest, size) of the image each deal offered.
	images: Mutex<HashMap<u64, Vec<(u64, [u8; 32])>>>,
	/// A running hash per partial blob, rebuilt from its file after a restart.
	partials: Mutex<HashMap<[u8; 32], Arc<Mutex<Option<Sha256>>>>>,
	pub faults: Arc<Faults>,
}

impl Store {
	pub fn new(dir: &Path, deals: HashMap<u64, DealView>, faults: Arc<Faults>) -> Self {
		Self {
			dir: dir.to_owned(),
			deals,
			images: Mutex::default(),
			partials: Mutex::default(),
			faults,
		}
	}

	fn complete_path(&self, digest: &[u8; 32]) -> PathBuf {
		self.dir.join(hex::encode(digest))
	}

	fn partial_path(&self, digest: &[u8; 32]) -> PathBuf {
		self.dir.join(format!("{}.partial", hex::encode(digest)))
	}

	/// Bytes held of a blob.
	pub fn have(&self, digest: &[u8; 32], size: u64) -> u64 {
		if self.complete_path(digest).exists() {
			return size;
		}
		fs::metadata(self.partial_path(digest)).map(|m| m.len()).unwrap_or(0)
	}

	pub fn offer(&self, request: &InboundImageOffer) -> Result<Vec<BlobState>, ImageReject> {
		let offer = request.offer();
		let deal = self.deals.get(&offer.deal_id).ok_or(ImageReject::UnknownDeal)?;
		let manifest = request.open_checked(&deal.publisher)?;
		if offer.manifest_digest != deal.pinned {
			return Err(ImageReject::NotPinned);
		}
		let blobs = parse_manifest(&manifest)?;
		let understate = self.faults.understate_plan.load(Ordering::SeqCst);
		let plan = blobs
			.iter()
			.map(|&(size, digest)| {
				let have = self.have(&digest, size);
				let have = if understate && have < size { 0 } else { have };
				BlobState { digest, size, have }
			})
			.collect();
		self.images.lock().unwrap().insert(offer.deal_id, blobs);
		Ok(plan)
	}

	pub fn chunk(&self, request: &InboundImageChunk) -> Result<u64, ImageReject> {
		let chunk = request.chunk();
		let deal = self.deals.get(&chunk.deal_id).ok_or(ImageReject::UnknownDeal)?;
		let bytes = request.open_checked(&deal.publisher)?;
		let size = self
			.images
			.lock()
			.unwrap()
			.get(&chunk.deal_id)
			.and_then(|blobs| blobs.iter().find(|(_, d)| *d == chunk.digest).map(|(s, _)| *s))
			.ok_or(ImageReject::NotPinned)?;
		let busy = self.faults.busy_chunks.load(Ordering::SeqCst);
		if busy > 0 {
			self.faults.busy_chunks.store(busy - 1, Ordering::SeqCst);
			return Err(ImageReject::Busy);
		}
		let hasher = self.partials.lock().unwrap().entry(chunk.digest).or_default().clone();
		// One writer per blob; other blobs proceed in parallel.
		let mut hasher = hasher.lock().unwrap();
		let have = self.have(&chunk.digest, size);
		if have == size {
			return Ok(size);
		}
		if chunk.offset != have {
			self.faults.offset_mismatches.fetch_add(1, Ordering::SeqCst);
			return Err(ImageReject::OffsetMismatch { expected: have });
		}
		if have + bytes.len() as u64 > size {
			return Err(ImageReject::SizeMismatch);
		}
		let partial = self.partial_path(&chunk.digest);
		let internal = |e: std::io::Error| ImageReject::Internal(e.to_string());
		let state = match hasher.as_mut() {
			Some(state) => state,
			None => {
				// After a restart: hash what the partial file holds.
				let mut state = Sha256::new();
				if have > 0 {
					let mut file = fs::File::open(&partial).map_err(internal)?;
					let mut buf = vec![0; 1 << 20];
					loop {
						let n = file.read(&mut buf).map_err(internal)?;
						if n == 0 {
							break;
						}
						state.update(&buf[..n]);
					}
				}
				hasher.insert(state)
			}
		};
		let mut file =
			fs::OpenOptions::new().create(true).append(true).open(&partial).map_err(internal)?;
		file.write_all(&bytes).map_err(internal)?;
		state.update(&bytes);
		self.faults.chunks.fetch_add(1, Ordering::SeqCst);
		if chunk.offset == 0 {
			self.faults.chunks_at_zero.fetch_add(1, Ordering::SeqCst);
		}
		let have = have + bytes.len() as u64;
		if have == size {
			let digest: [u8; 32] = hasher.take().expect("set above").finalize().into();
			if digest != chunk.digest {
				fs::remove_file(&partial).map_err(internal)?;
				return Err(ImageReject::DigestMismatch);
			}
			fs::rename(&partial, self.complete_path(&chunk.digest)).map_err(internal)?;
		}
		Ok(have)
	}
}

/// Parses the test's image manifest: `<hex sha256> <size>` per line.
pub fn parse_manifest(manifest: &[u8]) -> Result<Vec<(u64, [u8; 32])>, ImageReject> {
	let corrupt = |what: &str| ImageReject::Corrupt(what.into());
	let text = std::str::from_utf8(manifest).map_err(|_| corrupt("not UTF-8"))?;
	text.lines()
		.map(|line| {
			let (digest, size) = line.split_once(' ').ok_or_else(|| corrupt("no size"))?;
			let digest: [u8; 32] = hex::decode(digest)
				.ok()
				.and_then(|d| d.try_into().ok())
				.ok_or_else(|| corrupt("bad digest"))?;
			Ok((size.parse().map_err(|_| corrupt("bad size"))?, digest))
		})
		.collect()
}

/// A provider node answering image requests from a [`Store`].
pub struct Receiver {
	pub node: P2pNode,
	pub peer: PeerId,
	pub addr: Multiaddr,
}

impl Receiver {
	/// Starts a serving node with `keypair` on `addr`, handing requests to `store`.
	pub async fn start(keypair: Keypair, addr: Multiaddr, store: Arc<Store>) -> Self {
		Self::start_with(keypair, addr, store, P2pConfig::default()).await
	}

	pub async fn start_with(
		keypair: Keypair,
		addr: Multiaddr,
		store: Arc<Store>,
		config: P2pConfig,
	) -> Self {
		let peer = keypair.public().to_peer_id();
		let config = P2pConfig { listen_addrs: vec![addr], serve: true, ..config };
		let mut node = P2pNode::spawn(keypair, config).await.unwrap();
		let addr = node.handle().listen_addrs()[0].clone();
		let mut inbound = node.take_inbound().unwrap();
		tokio::spawn(async move {
			while let Some(request) = inbound.recv().await {
				store.faults.requests.fetch_add(1, Ordering::SeqCst);
				let store = store.clone();
				// Decrypting, writing and hashing: on a blocking thread, like the agent.
				tokio::task::spawn_blocking(move || match request {
					InboundRequest::ImageOffer(offer) => match store.offer(&offer) {
						Ok(plan) => offer.respond(plan),
						Err(reason) => offer.reject(reason),
					},
					InboundRequest::ImageChunk(chunk) => match store.chunk(&chunk) {
						Ok(have) => chunk.stored(have),
						Err(reason) => chunk.reject(reason),
					},
					InboundRequest::Manifest(m) => {
						m.reject(podchain_p2p::RejectReason::Internal("images only".into()))
					}
					InboundRequest::Logs(l) => {
						l.reject(podchain_p2p::RejectReason::Internal("images only".into()))
					}
				});
			}
		});
		Self { node, peer, addr }
	}
}

/// An image held in memory: blobs and the manifest listing them.
pub struct MemoryImage {
	pub manifest: Vec<u8>,
	pub blobs: HashMap<[u8; 32], Vec<u8>>,
}

impl MemoryImage {
	pub fn new(blobs: Vec<Vec<u8>>) -> Self {
		let mut manifest = String::new();
		let mut map = HashMap::new();
		for blob in blobs {
			let digest = sha256(&blob);
			manifest.push_str(&format!("{} {}\n", hex::encode(digest), blob.len()));
			map.insert(digest, blob);
		}
		Self { manifest: manifest.into_bytes(), blobs: map }
	}

	pub fn total(&self) -> u64 {
		self.blobs.values().map(|b| b.len() as u64).sum()
	}
}

impl ImageReader for MemoryImage {
	fn manifest_digest(&self) -> [u8; 32] {
		sha256(&self.manifest)
	}

	fn manifest_bytes(&self) -> Vec<u8> {
		self.manifest.clone()
	}

	fn read(&self, digest: &[u8; 32], offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
		let blob = self.blobs.get(digest).ok_or_else(|| std::io::Error::other("no such blob"))?;
		let start = (offset as usize).min(blob.len());
		let n = buf.len().min(blob.len() - start);
		buf[..n].copy_from_slice(&blob[start..start + n]);
		Ok(n)
	}
}

/// Deterministic pseudo-random bytes (xorshift), cheap enough for hundreds of MB.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
	let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
	let mut out = Vec::with_capacity(len + 8);
	while out.len() < len {
		state ^= state << 13;
		state ^= state >> 7;
		state ^= state << 17;
		out.extend_from_slice(&state.to_le_bytes());
	}
	out.truncate(len);
	out
}
