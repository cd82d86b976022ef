//! The publisher's side of `/podchain/image/1`: pushing a deal's image to its provider with
//! skip, resume, resync and retries. Driven by [`P2pHandle::push_image`].

use std::{
	collections::HashMap,
	sync::Arc,
	time::{Duration, Instant},
};

use futures::{future::BoxFuture, stream::FuturesUnordered, StreamExt};
use libp2p::{Multiaddr, PeerId};

use crate::{
	auth::PublisherSigner,
	error::P2pError,
	image::{
		digest_text, BlobState, ImageChunk, ImageOffer, ImageReject, ImageRequest, ImageResponse,
		IMAGE_CHUNK_SIZE, MAX_IMAGE_BLOBS,
	},
	node::P2pHandle,
};

/// How many blobs a push sends at once (one chunk in flight each).
pub const PUSH_PARALLEL_BLOBS: usize = 3;

/// How many failures in a row (timeouts, dropped connections, busy answers) a push survives;
/// a stored chunk resets the count.
pub const PUSH_MAX_RETRIES: u32 = 8;

/// The first wait after a failure; each further failure in a row doubles it, up to
/// [`PUSH_MAX_BACKOFF`].
pub const PUSH_BACKOFF: Duration = Duration::from_millis(250);

/// The longest wait between two attempts.
pub const PUSH_MAX_BACKOFF: Duration = Duration::from_secs(4);

/// How many answers in a row may leave a blob where it was (offset resyncs, acknowledgements
/// that hold no more bytes) before the provider is deemed to be misbehaving.
const MAX_STALLS_PER_BLOB: u32 = 16;

/// The image a publisher pushes: its manifest and the blobs the manifest lists. Implemented
/// by the application over its image files.
pub trait ImageReader: Send + Sync {
	/// SHA-256 of [`ImageReader::manifest_bytes`]: what the deal's manifest pins.
	fn manifest_digest(&self) -> [u8; 32];
	/// The image manifest's bytes.
	fn manifest_bytes(&self) -> Vec<u8>;
	/// Reads bytes of blob `digest` from `offset` into `buf`, returning how many (fewer than
	/// `buf.len()` only at the end of the blob or when the source reads in pieces). May block:
	/// the push calls it on a blocking thread.
	fn read(&self, digest: &[u8; 32], offset: u64, buf: &mut [u8]) -> std::io::Result<usize>;
}

/// Where a push stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PushProgress {
	/// Bytes of all the image's blobs.
	pub total: u64,
	/// Bytes the provider holds now beyond what it held before the push.
	pub sent: u64,
	/// Bytes the provider held before the push (complete blobs and partial ones).
	pub skipped: u64,
	/// The blob that just progressed; `None` after the plan.
	pub blob: Option<[u8; 32]>,
}

/// What a finished push did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushReport {
	/// Bytes of all the image's blobs.
	pub total_bytes: u64,
	/// Bytes the provider stored during the push (resent ones counted again).
	pub sent_bytes: u64,
	/// Bytes the provider held before the push.
	pub skipped_bytes: u64,
	/// Blobs the provider held complete before the push.
	pub blobs_skipped: usize,
	/// Times the push waited and offered again after a failure.
	pub retries: u32,
	/// How long the push took.
	pub elapsed: Duration,
}

/// A failure while sending blobs: either retried by offering again, or the end of the push.
enum Failure {
	Transient(P2pError),
	Fatal(P2pError),
}

/// A blob being sent: where its next chunk starts.
struct Sending {
	digest: [u8; 32],
	size: u64,
	offset: u64,
	stalls: u32,
	/// The chunk after the one in flight, read and sealed meanwhile.
	next: Option<Prepared>,
}

/// A chunk being read, sealed and signed on a blocking thread.
struct Prepared {
	offset: u64,
	len: u64,
	chunk: tokio::task::JoinHandle<Result<ImageChunk, P2pError>>,
}

/// One chunk's round trip.
struct ChunkOutcome {
	/// The blob's index in `sending`.
	index: usize,
	offset: u64,
	len: u64,
	answer: Result<ImageResponse, P2pError>,
	/// The blob's following chunk, prepared while this one travelled.
	next: Option<Prepared>,
}

pub(crate) struct Push<S: ?Sized> {
	pub(crate) handle: P2pHandle,
	pub(crate) peer: PeerId,
	pub(crate) addrs: Vec<Multiaddr>,
	pub(crate) signer: Arc<S>,
	pub(crate) deal_id: u64,
	pub(crate) image: Arc<dyn ImageReader>,
	pub(crate) progress: PushProgress,
	/// The bytes the provider holds of each blob, as it last said.
	pub(crate) held: HashMap<[u8; 32], u64>,
	pub(crate) sent_bytes: u64,
	/// Failures since the last stored chunk.
	pub(crate) failures: u32,
	pub(crate) retries: u32,
}

impl<S> Push<S>
where
	S: PublisherSigner + Send + Sync + ?Sized + 'static,
{
	pub(crate) async fn run(
		mut self,
		manifest_digest: [u8; 32],
		manifest: Vec<u8>,
		progress: &mut (impl FnMut(PushProgress) + Send),
		started: Instant,
	) -> Result<PushReport, P2pError> {
		let mut first_plan: Option<usize> = None;
		loop {
			let offer = ImageOffer::new(
				&*self.signer,
				&self.peer,
				self.deal_id,
				manifest_digest,
				&manifest,
			)?;
			let answer =
				self.handle.send_image(self.peer, self.addrs.clone(), ImageRequest::Offer(offer));
			let plan = match self.settle(answer.await) {
				Ok(ImageResponse::Plan(plan)) => plan,
				Ok(ImageResponse::Reject(reason)) => {
					return Err(P2pError::ImageRejected { peer: self.peer, reason })
				}
				Ok(ImageResponse::Stored { .. }) => {
					return Err(self.protocol("answered an offer without a plan"))
				}
				Err(failure) => {
					self.fail(failure).await?;
					continue;
				}
			};
			self.check_plan(&plan)?;
			if first_plan.is_none() {
				self.progress.total = plan.iter().map(|b| b.size).sum();
				self.progress.skipped = plan.iter().map(|b| b.have).sum();
				first_plan = Some(plan.iter().filter(|b| b.have == b.size).count());
			}
			// Bytes stored whose acknowledgement was lost (the chunk was abandoned, or the
			// connection dropped before the answer) were sent too.
			for blob in &plan {
				let before = self.held.get(&blob.digest).copied().unwrap_or(blob.have);
				self.sent_bytes += blob.have.saturating_sub(before);
			}
			self.held = plan.iter().map(|b| (b.digest, b.have)).collect();
			self.update_sent(None);
			progress(self.progress);

			match self.send_blobs(&plan, progress).await {
				Ok(()) => break,
				Err(failure) => self.fail(failure).await?,
			}
		}
		Ok(PushReport {
			total_bytes: self.progress.total,
			sent_bytes: self.sent_bytes,
			skipped_bytes: self.progress.skipped,
			blobs_skipped: first_plan.unwrap_or(0),
			retries: self.retries,
			elapsed: started.elapsed(),
		})
	}

	/// Sends every incomplete blob of `plan`, [`PUSH_PARALLEL_BLOBS`] at a time.
	async fn send_blobs(
		&mut self,
		plan: &[BlobState],
		progress: &mut (impl FnMut(PushProgress) + Send),
	) -> Result<(), Failure> {
		let mut waiting = plan.iter().filter(|b| b.have < b.size);
		let mut sending: Vec<Sending> = Vec::new();
		let mut in_flight: FuturesUnordered<BoxFuture<'static, ChunkOutcome>> =
			FuturesUnordered::new();
		loop {
			while in_flight.len() < PUSH_PARALLEL_BLOBS {
				let Some(blob) = waiting.next() else { break };
				sending.push(Sending {
					digest: blob.digest,
					size: blob.size,
					offset: blob.have,
					stalls: 0,
					next: None,
				});
				let index = sending.len() - 1;
				in_flight.push(self.chunk(index, &mut sending[index]));
			}
			// Dropping `in_flight` on a failure abandons the other chunks: the offer that
			// follows learns what the provider holds.
			let Some(ChunkOutcome { index, offset, len, answer, next }) = in_flight.next().await
			else {
				return Ok(());
			};
			let blob = &mut sending[index];
			blob.next = next;
			match self.settle(answer)? {
				ImageResponse::Stored { have } => {
					if have > blob.size {
						return Err(Failure::Fatal(
							self.protocol("holds more than the blob's size"),
						));
					}
					let stored = have.saturating_sub(offset).min(len);
					self.sent_bytes += stored;
					blob.stalls = if have > offset { 0 } else { blob.stalls + 1 };
					blob.offset = have;
					if have > offset {
						self.failures = 0;
					}
				}
				ImageResponse::Reject(ImageReject::OffsetMismatch { expected }) => {
					if expected > blob.size {
						return Err(Failure::Fatal(
							self.protocol("expects an offset past the blob"),
						));
					}
					tracing::debug!(blob = %digest_text(&blob.digest), offset, expected, "resync");
					blob.stalls += 1;
					blob.offset = expected;
				}
				ImageResponse::Reject(reason) => {
					return Err(Failure::Fatal(P2pError::ImageRejected { peer: self.peer, reason }))
				}
				ImageResponse::Plan(_) => {
					return Err(Failure::Fatal(self.protocol("answered a chunk with a plan")))
				}
			}
			if blob.stalls > MAX_STALLS_PER_BLOB {
				return Err(Failure::Fatal(self.protocol("does not take the blob's bytes")));
			}
			let (digest, have, complete) = (blob.digest, blob.offset, blob.offset == blob.size);
			self.held.insert(digest, have);
			self.update_sent(Some(digest));
			progress(self.progress);
			if !complete {
				in_flight.push(self.chunk(index, &mut sending[index]));
			}
		}
	}

	/// Sends the chunk of `blob` at its offset (prepared earlier, or now), and prepares the
	/// following one while it travels: reading and sealing overlap the round trip.
	fn chunk(&self, index: usize, blob: &mut Sending) -> BoxFuture<'static, ChunkOutcome> {
		let (handle, peer, addrs) = (self.handle.clone(), self.peer, self.addrs.clone());
		let offset = blob.offset;
		let current = match blob.next.take() {
			Some(prepared) if prepared.offset == offset => prepared,
			// After a resync the prepared chunk is at the wrong place: dropped (its thread
			// finishes and the result is discarded).
			_ => self.prepare(blob, offset),
		};
		let after = offset + current.len;
		let next = (after < blob.size).then(|| self.prepare(blob, after));
		Box::pin(async move {
			let Prepared { len, chunk, .. } = current;
			let built = chunk
				.await
				.unwrap_or_else(|e| Err(P2pError::ImageRead(format!("reading task failed: {e}"))));
			let answer = match built {
				Ok(chunk) => handle.send_image(peer, addrs, ImageRequest::Chunk(chunk)).await,
				Err(e) => Err(e),
			};
			ChunkOutcome { index, offset, len, answer, next }
		})
	}

	/// Starts reading, sealing and signing the chunk of `blob` at `offset` on a blocking
	/// thread.
	fn prepare(&self, blob: &Sending, offset: u64) -> Prepared {
		let (signer, image, deal_id, peer) =
			(self.signer.clone(), self.image.clone(), self.deal_id, self.peer);
		let digest = blob.digest;
		let len = blob.size.saturating_sub(offset).min(IMAGE_CHUNK_SIZE as u64);
		let chunk = tokio::task::spawn_blocking(move || {
			let mut bytes = vec![0; len as usize];
			read_exact(&*image, &digest, offset, &mut bytes)?;
			ImageChunk::new(&*signer, &peer, deal_id, digest, offset, &bytes)
		});
		Prepared { offset, len, chunk }
	}

	/// Sorts an answer: refusals and network failures into transient and fatal ones.
	fn settle(&self, answer: Result<ImageResponse, P2pError>) -> Result<ImageResponse, Failure> {
		match answer {
			Ok(ImageResponse::Reject(reason)) if reason.is_transient() => {
				Err(Failure::Transient(P2pError::ImageRejected { peer: self.peer, reason }))
			}
			Ok(response) => Ok(response),
			Err(
				e @ (P2pError::Timeout { .. }
				| P2pError::Unreachable { .. }
				| P2pError::Protocol { .. }),
			) => Err(Failure::Transient(e)),
			Err(e) => Err(Failure::Fatal(e)),
		}
	}

	/// Ends the push on a fatal failure or too many in a row; otherwise waits before the
	/// next offer.
	async fn fail(&mut self, failure: Failure) -> Result<(), P2pError> {
		let error = match failure {
			Failure::Fatal(error) => return Err(error),
			Failure::Transient(error) => error,
		};
		self.failures += 1;
		if self.failures > PUSH_MAX_RETRIES {
			return Err(error);
		}
		self.retries += 1;
		let backoff = PUSH_BACKOFF.saturating_mul(1 << (self.failures - 1).min(16));
		let backoff = backoff.min(PUSH_MAX_BACKOFF);
		tracing::info!(peer = %self.peer, %error, ?backoff, "image push interrupted; resuming");
		tokio::time::sleep(backoff).await;
		Ok(())
	}

	/// Refuses a plan the push cannot follow: too many blobs, or more held than the size.
	fn check_plan(&self, plan: &[BlobState]) -> Result<(), P2pError> {
		if plan.len() > MAX_IMAGE_BLOBS {
			return Err(self.protocol("sent a plan with too many blobs"));
		}
		if plan.iter().any(|b| b.have > b.size) {
			return Err(self.protocol("sent a plan holding more than a blob's size"));
		}
		Ok(())
	}

	fn update_sent(&mut self, blob: Option<[u8; 32]>) {
		let held: u64 = self.held.values().sum();
		self.progress.sent = held.saturating_sub(self.progress.skipped);
		self.progress.blob = blob;
	}

	fn protocol(&self, what: &str) -> P2pError {
		P2pError::Protocol { peer: self.peer, reason: format!("the provider {what}") }
	}
}

/// Fills `buf` from the blob, failing if it ends first.
fn read_exact(
	image: &dyn ImageReader,
	digest: &[u8; 32],
	offset: u64,
	buf: &mut [u8],
) -> Result<(), P2pError> {
	let mut filled = 0;
	while filled < buf.len() {
		let read = image
			.read(digest, offset + filled as u64, &mut buf[filled..])
			.map_err(|e| P2pError::ImageRead(format!("blob {}: {e}", digest_text(digest))))?;
		if read == 0 {
			return Err(P2pError::ImageRead(format!(
				"blob {} ends at {} bytes, before its size in the manifest",
				digest_text(digest),
				offset + filled as u64
			)));
		}
		filled += read;
	}
	Ok(())
}
