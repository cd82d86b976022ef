//! The libp2p node: TCP (and DNS names) with Noise and Yamux, running the manifest, logs and
//! image request-response protocols in a tokio task. [`P2pHandle`] sends requests (and pushes
//! whole images, see [`P2pHandle::push_image`]); a serving node hands authenticated inbound
//! requests to the application over a channel.

use std::{
	collections::HashMap,
	sync::{Arc, Mutex},
	time::{Duration, Instant},
};

use futures::{future::BoxFuture, stream::FuturesUnordered, Stream, StreamExt};
use libp2p::{
	connection_limits::{self, ConnectionLimits},
	identity::Keypair,
	multiaddr::Protocol,
	noise,
	request_response::{
		self, cbor, Message, OutboundFailure, OutboundRequestId, ProtocolSupport, ResponseChannel,
	},
	swarm::{DialError, NetworkBehaviour, SwarmEvent},
	tcp, yamux, Multiaddr, PeerId, Swarm, SwarmBuilder,
};
use tokio::sync::{mpsc, oneshot};

use crate::{
	auth::{self, PublisherSigner, ReplayGuard},
	error::{AuthError, P2pError},
	image::{
		BlobState, ImageChunk, ImageOffer, ImageReject, ImageRequest, ImageResponse,
		IMAGE_PROTOCOL, MAX_IMAGE_BLOBS, MAX_IMAGE_MANIFEST_SIZE, MAX_IMAGE_REQUEST_BYTES,
		MAX_IMAGE_RESPONSE_BYTES,
	},
	protocol::{
		LogChunk, LogsQuery, LogsRequest, LogsResponse, ManifestAck, ManifestRequest,
		ManifestResponse, RejectReason, LOGS_PROTOCOL, MANIFEST_PROTOCOL, MAX_LOGS_RESPONSE_BYTES,
		MAX_MANIFEST_REQUEST_BYTES, MAX_MANIFEST_SIZE, MAX_SMALL_MESSAGE_BYTES,
	},
	push::{ImageReader, PushProgress, PushReport},
	seal::{self, OpeningKey},
};

/// Settings of a [`P2pNode`].
#[derive(Clone, Debug)]
pub struct P2pConfig {
	/// Addresses to listen on, e.g. `/ip4/0.0.0.0/tcp/30500`; none for a client-only node.
	pub listen_addrs: Vec<Multiaddr>,
	/// Whether to accept inbound requests (the agent) or only send them (the CLI).
	pub serve: bool,
	/// Limit on one request, dialling included.
	pub request_timeout: Duration,
	/// How long an unused connection stays open (so that following logs reuses it).
	pub idle_connection_timeout: Duration,
	/// Inbound requests waiting for the application; more are refused as busy.
	pub inbound_queue: usize,
	/// How far a log request's timestamp may be from local time.
	pub max_clock_skew: Duration,
	/// How many recent log requests are remembered to refuse replays; when full, the oldest
	/// are forgotten.
	pub replay_capacity: usize,
	/// How many recent log requests of one publisher key are remembered, so that requests
	/// signed with throwaway keys cannot take the whole replay memory.
	pub replay_per_publisher: usize,
	/// Limit on established connections, inbound and outbound together.
	pub max_connections: u32,
	/// Limit on established connections with one peer.
	pub max_connections_per_peer: u32,
	/// Limit on inbound connections still in their handshake.
	pub max_pending_incoming: u32,
	/// Limit on concurrent request streams per connection, per protocol (each may buffer up
	/// to the protocol's request size).
	pub max_concurrent_streams: usize,
}

impl Default for P2pConfig {
	fn default() -> Self {
		Self {
			listen_addrs: Vec::new(),
			serve: false,
			request_timeout: Duration::from_secs(30),
			idle_connection_timeout: Duration::from_secs(60),
			inbound_queue: 64,
			max_clock_skew: Duration::from_secs(60),
			replay_capacity: 100_000,
			replay_per_publisher: auth::DEFAULT_REPLAY_PER_PUBLISHER,
			max_connections: 256,
			max_connections_per_peer: 4,
			max_pending_incoming: 64,
			max_concurrent_streams: 16,
		}
	}
}

/// A running node. It stops when [`P2pNode::shutdown`] is called or the `P2pNode` is dropped;
/// handles then fail with [`P2pError::Shutdown`].
pub struct P2pNode {
	handle: P2pHandle,
	inbound: Option<mpsc::Receiver<InboundRequest>>,
	stop: oneshot::Sender<()>,
	task: tokio::task::JoinHandle<()>,
}

impl P2pNode {
	/// Starts a node with `keypair` (ed25519) on the current tokio runtime, and returns once it
	/// listens on every address of `config.listen_addrs`.
	pub async fn spawn(keypair: Keypair, config: P2pConfig) -> Result<Self, P2pError> {
		let opening = Arc::new(OpeningKey::from_keypair(&keypair)?);
		let local_peer_id = keypair.public().to_peer_id();
		let provider_key = seal::ed25519_public_of(&local_peer_id)?;
		let mut swarm = build_swarm(keypair, &config)?;

		let mut listeners = Vec::new();
		for addr in &config.listen_addrs {
			let id = swarm
				.listen_on(addr.clone())
				.map_err(|e| P2pError::Address { addr: addr.to_string(), reason: e.to_string() })?;
			listeners.push((id, addr));
		}
		// Wait for the first address of each listener, so `listen_addrs` tells real ports.
		let mut listening = Vec::new();
		while !listeners.is_empty() {
			let event = tokio::time::timeout(Duration::from_secs(10), swarm.select_next_some())
				.await
				.map_err(|_| P2pError::Transport("listener did not start".into()))?;
			match event {
				SwarmEvent::NewListenAddr { listener_id, address } => {
					listeners.retain(|(id, _)| *id != listener_id);
					listening.push(address);
				}
				SwarmEvent::ListenerClosed { listener_id, reason, .. } => {
					if let Some((_, addr)) = listeners.iter().find(|(id, _)| *id == listener_id) {
						let reason = reason.err().map_or("closed".into(), |e| e.to_string());
						return Err(P2pError::Address { addr: addr.to_string(), reason });
					}
				}
				other => tracing::trace!(?other, "event while starting"),
			}
		}
		tracing::info!(peer = %local_peer_id, addrs = ?listening, "p2p node started");

		let listen_addrs = Arc::new(Mutex::new(listening));
		let (commands_tx, commands) = mpsc::channel(64);
		let (inbound_tx, inbound) = if config.serve {
			let (tx, rx) = mpsc::channel(config.inbound_queue.max(1));
			(Some(tx), Some(rx))
		} else {
			(None, None)
		};
		let (stop, stopped) = oneshot::channel();
		let event_loop = EventLoop {
			swarm,
			commands,
			stopped,
			inbound: inbound_tx,
			pending_manifest: HashMap::new(),
			pending_logs: HashMap::new(),
			pending_image: HashMap::new(),
			dial_errors: HashMap::new(),
			answers: FuturesUnordered::new(),
			checks: FuturesUnordered::new(),
			max_checks: config.inbound_queue.max(1),
			listen_addrs: listen_addrs.clone(),
			opening,
			provider_key,
			replay: ReplayGuard::new(
				config.max_clock_skew,
				config.replay_capacity,
				config.replay_per_publisher,
			),
			request_timeout: config.request_timeout,
		};
		let task = tokio::spawn(event_loop.run());
		let handle = P2pHandle {
			commands: commands_tx,
			local_peer_id,
			listen_addrs,
			request_timeout: config.request_timeout,
		};
		Ok(Self { handle, inbound, stop, task })
	}

	/// A handle for sending requests; clones share the node.
	pub fn handle(&self) -> P2pHandle {
		self.handle.clone()
	}

	/// The inbound requests of a serving node (`config.serve`); `None` for a client-only node
	/// or once taken.
	pub fn take_inbound(&mut self) -> Option<mpsc::Receiver<InboundRequest>> {
		self.inbound.take()
	}

	/// Stops the node: closes its connections and listeners and waits for its task to end.
	pub async fn shutdown(self) {
		let _ = self.stop.send(());
		if let Err(e) = self.task.await {
			tracing::warn!(error = %e, "p2p task ended abnormally");
		}
	}
}

/// Clonable access to a running [`P2pNode`].
#[derive(Clone, Debug)]
pub struct P2pHandle {
	commands: mpsc::Sender<Command>,
	local_peer_id: PeerId,
	listen_addrs: Arc<Mutex<Vec<Multiaddr>>>,
	request_timeout: Duration,
}

impl P2pHandle {
	/// This node's peer id.
	pub fn local_peer_id(&self) -> PeerId {
		self.local_peer_id
	}

	/// The addresses the node listens on now.
	pub fn listen_addrs(&self) -> Vec<Multiaddr> {
		self.listen_addrs.lock().map(|a| a.clone()).unwrap_or_default()
	}

	/// Delivers a manifest to provider `peer`, dialling it at `addrs` if not connected (the
	/// multiaddrs from the registry; a `/p2p/` suffix must name `peer`). A refusal is
	/// [`P2pError::Rejected`].
	pub async fn deliver_manifest(
		&self,
		peer: PeerId,
		addrs: impl IntoIterator<Item = Multiaddr>,
		request: ManifestRequest,
	) -> Result<ManifestAck, P2pError> {
		// The provider would drop an oversized request without an answer; say why up front.
		let size = request.sealed.ciphertext.len();
		let limit = MAX_MANIFEST_SIZE + seal::TAG_LEN;
		if size > limit {
			return Err(P2pError::TooLarge { size, limit });
		}
		let addrs = dial_addrs(peer, addrs)?;
		let response =
			self.request(peer, |reply| Command::Manifest { peer, addrs, request, reply }).await?;
		match response {
			ManifestResponse::Ack(ack) => Ok(ack),
			ManifestResponse::Reject(reason) => Err(P2pError::Rejected { peer, reason }),
		}
	}

	/// Reads a chunk of a deal's logs from provider `peer`. To follow, ask again with
	/// [`LogsQuery::cursor`] set to [`LogChunk::next_cursor`] (a new, freshly signed request).
	pub async fn fetch_logs(
		&self,
		peer: PeerId,
		addrs: impl IntoIterator<Item = Multiaddr>,
		request: LogsRequest,
	) -> Result<LogChunk, P2pError> {
		let addrs = dial_addrs(peer, addrs)?;
		let response =
			self.request(peer, |reply| Command::Logs { peer, addrs, request, reply }).await?;
		match response {
			LogsResponse::Chunk(chunk) => Ok(chunk),
			LogsResponse::Reject(reason) => Err(P2pError::Rejected { peer, reason }),
		}
	}

	/// Follows a deal's logs: polls `peer` with freshly signed requests starting from `query`,
	/// yields each chunk that has lines, waits `poll_interval` whenever there is nothing new,
	/// and ends after a [`LogChunk::complete`] chunk or the first error.
	pub fn follow_logs<S>(
		&self,
		signer: Arc<S>,
		peer: PeerId,
		addrs: Vec<Multiaddr>,
		deal_id: u64,
		query: LogsQuery,
		poll_interval: Duration,
	) -> impl Stream<Item = Result<LogChunk, P2pError>> + Send + 'static
	where
		S: PublisherSigner + Send + Sync + ?Sized + 'static,
	{
		let state = Some((self.clone(), query));
		futures::stream::unfold(state, move |state| {
			let (signer, addrs) = (signer.clone(), addrs.clone());
			async move {
				let (handle, mut query) = state?;
				loop {
					let fetched = match LogsRequest::new(&*signer, &peer, deal_id, query.clone()) {
						Ok(request) => handle.fetch_logs(peer, addrs.clone(), request).await,
						Err(e) => Err(e),
					};
					let chunk = match fetched {
						Ok(chunk) => chunk,
						Err(e) => return Some((Err(e), None)),
					};
					query.cursor = Some(chunk.next_cursor);
					query.tail = None;
					if chunk.complete {
						return Some((Ok(chunk), None));
					}
					if !chunk.lines.is_empty() {
						return Some((Ok(chunk), Some((handle, query))));
					}
					tokio::time::sleep(poll_interval).await;
				}
			}
		})
	}

	/// Sends one request of `/podchain/image/1` as is and returns the provider's answer
	/// (refusals included). [`P2pHandle::push_image`] is built on it. Nothing is checked here:
	/// a request over [`MAX_IMAGE_REQUEST_BYTES`] is dropped by the provider unanswered.
	pub async fn send_image(
		&self,
		peer: PeerId,
		addrs: impl IntoIterator<Item = Multiaddr>,
		request: ImageRequest,
	) -> Result<ImageResponse, P2pError> {
		let addrs = dial_addrs(peer, addrs)?;
		self.request(peer, |reply| Command::Image { peer, addrs, request, reply }).await
	}

	/// Pushes the image a deal pins to provider `peer` (dialled at `addrs` as for
	/// [`P2pHandle::deliver_manifest`]): offers it, skips the blobs the provider holds,
	/// resumes partial ones where they end, and sends the rest in sealed, signed chunks of
	/// [`IMAGE_CHUNK_SIZE`](crate::image::IMAGE_CHUNK_SIZE), [`PUSH_PARALLEL_BLOBS`](crate::push::PUSH_PARALLEL_BLOBS) blobs at a time (each blob's chunks in
	/// order). `progress` is called after the plan and after every stored chunk.
	///
	/// A chunk that times out, a dropped connection or a busy provider make it wait (backing
	/// off from [`PUSH_BACKOFF`](crate::push::PUSH_BACKOFF)), offer again and resume from what the provider then holds; it
	/// gives up after [`PUSH_MAX_RETRIES`](crate::push::PUSH_MAX_RETRIES) failures in a row without a stored chunk. A refusal
	/// that asking again cannot fix ends the push as [`P2pError::ImageRejected`]. The request
	/// timeout applies to each chunk, not to the whole push.
	pub async fn push_image<S>(
		&self,
		peer: PeerId,
		addrs: impl IntoIterator<Item = Multiaddr>,
		signer: Arc<S>,
		deal_id: u64,
		image: Arc<dyn ImageReader>,
		mut progress: impl FnMut(PushProgress) + Send,
	) -> Result<PushReport, P2pError>
	where
		S: PublisherSigner + Send + Sync + ?Sized + 'static,
	{
		let started = Instant::now();
		let addrs = dial_addrs(peer, addrs)?;
		let manifest = image.manifest_bytes();
		if manifest.len() > MAX_IMAGE_MANIFEST_SIZE {
			return Err(P2pError::TooLarge {
				size: manifest.len(),
				limit: MAX_IMAGE_MANIFEST_SIZE,
			});
		}
		let manifest_digest = image.manifest_digest();
		let push = crate::push::Push {
			handle: self.clone(),
			peer,
			addrs,
			signer,
			deal_id,
			image,
			progress: PushProgress { total: 0, sent: 0, skipped: 0, blob: None },
			held: HashMap::new(),
			sent_bytes: 0,
			failures: 0,
			retries: 0,
		};
		push.run(manifest_digest, manifest, &mut progress, started).await
	}

	async fn request<R>(
		&self,
		peer: PeerId,
		command: impl FnOnce(Reply<R>) -> Command,
	) -> Result<R, P2pError> {
		let (reply, response) = oneshot::channel();
		self.commands.send(command(reply)).await.map_err(|_| P2pError::Shutdown)?;
		// Bounds the whole exchange, dialling included (libp2p's own timeout starts later).
		match tokio::time::timeout(self.request_timeout, response).await {
			Ok(Ok(result)) => result,
			Ok(Err(_)) => Err(P2pError::Shutdown),
			Err(_) => Err(P2pError::Timeout { peer }),
		}
	}
}

/// Drops a `/p2p/` suffix naming `peer`; refuses one naming another peer.
fn dial_addrs(
	peer: PeerId,
	addrs: impl IntoIterator<Item = Multiaddr>,
) -> Result<Vec<Multiaddr>, P2pError> {
	addrs
		.into_iter()
		.map(|mut addr| match addr.iter().last() {
			Some(Protocol::P2p(named)) if named != peer => Err(P2pError::Address {
				addr: addr.to_string(),
				reason: format!("names peer {named}, not {peer}"),
			}),
			Some(Protocol::P2p(_)) => {
				addr.pop();
				Ok(addr)
			}
			_ => Ok(addr),
		})
		.collect()
}

/// An authenticated request for the application to answer. Dropping it unanswered answers
/// [`RejectReason::Internal`].
#[derive(Debug)]
pub enum InboundRequest {
	/// A manifest delivery, signed by its `publisher`.
	Manifest(InboundManifest),
	/// A log request, signed by its `publisher`, fresh and not a replay.
	Logs(InboundLogs),
	/// An image offer, signed by its `publisher`.
	ImageOffer(InboundImageOffer),
	/// A chunk of an image's blob, signed by its `publisher`.
	ImageChunk(InboundImageChunk),
}

/// An image offer whose signature verified. The application checks that the deal exists,
/// that the signer is its publisher and that the deal pins the image: see
/// [`InboundImageOffer::open_checked`]. Decrypting costs CPU: call it off the async threads.
#[derive(Debug)]
pub struct InboundImageOffer {
	peer: PeerId,
	offer: ImageOffer,
	opening: Arc<OpeningKey>,
	responder: oneshot::Sender<ImageResponse>,
}

impl InboundImageOffer {
	/// The sending peer.
	pub fn peer(&self) -> PeerId {
		self.peer
	}

	/// The offer (signature already verified).
	pub fn offer(&self) -> &ImageOffer {
		&self.offer
	}

	/// Checks the signer against the deal's publisher and returns the image manifest's bytes,
	/// which hash to [`ImageOffer::manifest_digest`] (see [`ImageOffer::open_checked`]).
	pub fn open_checked(&self, deal_publisher: &[u8; 32]) -> Result<Vec<u8>, ImageReject> {
		self.offer.open_checked(&self.opening, deal_publisher)
	}

	/// Answers with the image's blobs and what is held of each (at most
	/// [`MAX_IMAGE_BLOBS`]).
	pub fn respond(self, plan: Vec<BlobState>) {
		let _ = self.responder.send(ImageResponse::Plan(plan));
	}

	/// Refuses the offer.
	pub fn reject(self, reason: ImageReject) {
		let _ = self.responder.send(ImageResponse::Reject(reason));
	}
}

/// A chunk whose signature verified. The application checks that the deal exists and that
/// the signer is its publisher ([`InboundImageChunk::open_checked`], off the async threads),
/// then hands the bytes to its store, which checks the blob, the offset and the digest.
#[derive(Debug)]
pub struct InboundImageChunk {
	peer: PeerId,
	chunk: ImageChunk,
	opening: Arc<OpeningKey>,
	responder: oneshot::Sender<ImageResponse>,
}

impl InboundImageChunk {
	/// The sending peer.
	pub fn peer(&self) -> PeerId {
		self.peer
	}

	/// The chunk (signature already verified).
	pub fn chunk(&self) -> &ImageChunk {
		&self.chunk
	}

	/// Checks the signer against the deal's publisher and decrypts the bytes (see
	/// [`ImageChunk::open_checked`]).
	pub fn open_checked(&self, deal_publisher: &[u8; 32]) -> Result<Vec<u8>, ImageReject> {
		self.chunk.open_checked(&self.opening, deal_publisher)
	}

	/// Answers with the bytes of the blob now held.
	pub fn stored(self, have: u64) {
		let _ = self.responder.send(ImageResponse::Stored { have });
	}

	/// Refuses the chunk.
	pub fn reject(self, reason: ImageReject) {
		let _ = self.responder.send(ImageResponse::Reject(reason));
	}
}

/// A manifest delivery whose signature verified. The application still checks that the deal
/// exists and that the signer is its publisher: see [`InboundManifest::open_checked`].
#[derive(Debug)]
pub struct InboundManifest {
	peer: PeerId,
	request: ManifestRequest,
	opening: Arc<OpeningKey>,
	responder: oneshot::Sender<ManifestResponse>,
}

impl InboundManifest {
	/// The sending peer.
	pub fn peer(&self) -> PeerId {
		self.peer
	}

	/// The request (signature already verified).
	pub fn request(&self) -> &ManifestRequest {
		&self.request
	}

	/// Checks the request against the deal on chain and decrypts the manifest (see
	/// [`ManifestRequest::open_checked`]).
	pub fn open_checked(
		&self,
		deal_publisher: &[u8; 32],
		manifest_hash: &[u8; 32],
	) -> Result<Vec<u8>, RejectReason> {
		self.request.open_checked(&self.opening, deal_publisher, manifest_hash)
	}

	/// Acknowledges the stored manifest.
	pub fn ack(self, manifest_hash: [u8; 32]) {
		let _ = self.responder.send(ManifestResponse::Ack(ManifestAck { manifest_hash }));
	}

	/// Refuses the manifest.
	pub fn reject(self, reason: RejectReason) {
		let _ = self.responder.send(ManifestResponse::Reject(reason));
	}
}

/// A log request whose signature verified, fresh and not replayed. The application still
/// checks that the deal exists and that [`LogsRequest::publisher`] is its publisher.
#[derive(Debug)]
pub struct InboundLogs {
	peer: PeerId,
	request: LogsRequest,
	responder: oneshot::Sender<LogsResponse>,
}

impl InboundLogs {
	/// The sending peer.
	pub fn peer(&self) -> PeerId {
		self.peer
	}

	/// The request (authenticated).
	pub fn request(&self) -> &LogsRequest {
		&self.request
	}

	/// What is asked for.
	pub fn query(&self) -> &LogsQuery {
		&self.request.query
	}

	/// Answers with log lines; keep the chunk below
	/// [`MAX_LOGS_RESPONSE_BYTES`].
	pub fn respond(self, chunk: LogChunk) {
		let _ = self.responder.send(LogsResponse::Chunk(chunk));
	}

	/// Refuses the request.
	pub fn reject(self, reason: RejectReason) {
		let _ = self.responder.send(LogsResponse::Reject(reason));
	}
}

type Reply<R> = oneshot::Sender<Result<R, P2pError>>;

#[derive(Debug)]
enum Command {
	Manifest {
		peer: PeerId,
		addrs: Vec<Multiaddr>,
		request: ManifestRequest,
		reply: Reply<ManifestResponse>,
	},
	Logs {
		peer: PeerId,
		addrs: Vec<Multiaddr>,
		request: LogsRequest,
		reply: Reply<LogsResponse>,
	},
	Image {
		peer: PeerId,
		addrs: Vec<Multiaddr>,
		request: ImageRequest,
		reply: Reply<ImageResponse>,
	},
}

/// An application's answer, ready to be written back.
enum Answer {
	Manifest(ResponseChannel<ManifestResponse>, ManifestResponse),
	Logs(ResponseChannel<LogsResponse>, LogsResponse),
	Image(ResponseChannel<ImageResponse>, ImageResponse),
}

/// An image request whose signature was checked off the event loop (hashing a chunk's
/// ciphertext takes milliseconds).
struct CheckedImage {
	peer: PeerId,
	channel: ResponseChannel<ImageResponse>,
	checked: Result<ImageRequest, ImageReject>,
}

#[derive(NetworkBehaviour)]
struct Behaviour {
	/// First, so that refused connections never reach the protocols.
	limits: connection_limits::Behaviour,
	manifest: cbor::Behaviour<ManifestRequest, ManifestResponse>,
	logs: cbor::Behaviour<LogsRequest, LogsResponse>,
	image: cbor::Behaviour<ImageRequest, ImageResponse>,
}

fn build_swarm(keypair: Keypair, config: &P2pConfig) -> Result<Swarm<Behaviour>, P2pError> {
	let support = if config.serve { ProtocolSupport::Full } else { ProtocolSupport::Outbound };
	let rr_config = request_response::Config::default()
		.with_request_timeout(config.request_timeout)
		.with_max_concurrent_streams(config.max_concurrent_streams.max(1));
	let limits = ConnectionLimits::default()
		.with_max_established(Some(config.max_connections))
		.with_max_established_per_peer(Some(config.max_connections_per_peer))
		.with_max_pending_incoming(Some(config.max_pending_incoming));
	let manifest_codec = cbor::codec::Codec::default()
		.set_request_size_maximum(MAX_MANIFEST_REQUEST_BYTES)
		.set_response_size_maximum(MAX_SMALL_MESSAGE_BYTES);
	let logs_codec = cbor::codec::Codec::default()
		.set_request_size_maximum(MAX_SMALL_MESSAGE_BYTES)
		.set_response_size_maximum(MAX_LOGS_RESPONSE_BYTES);
	let image_codec = cbor::codec::Codec::default()
		.set_request_size_maximum(MAX_IMAGE_REQUEST_BYTES)
		.set_response_size_maximum(MAX_IMAGE_RESPONSE_BYTES);
	let behaviour = Behaviour {
		limits: connection_limits::Behaviour::new(limits),
		manifest: request_response::Behaviour::with_codec(
			manifest_codec,
			[(MANIFEST_PROTOCOL, support.clone())],
			rr_config.clone(),
		),
		logs: request_response::Behaviour::with_codec(
			logs_codec,
			[(LOGS_PROTOCOL, support.clone())],
			rr_config.clone(),
		),
		image: request_response::Behaviour::with_codec(
			image_codec,
			[(IMAGE_PROTOCOL, support)],
			rr_config,
		),
	};
	let idle = config.idle_connection_timeout;
	Ok(SwarmBuilder::with_existing_identity(keypair)
		.with_tokio()
		.with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
		.map_err(|e| P2pError::Transport(e.to_string()))?
		.with_dns()
		.map_err(|e| P2pError::Transport(e.to_string()))?
		.with_behaviour(|_| behaviour)
		.map_err(|e| P2pError::Transport(e.to_string()))?
		.with_swarm_config(|c| c.with_idle_connection_timeout(idle))
		.build())
}

struct EventLoop {
	swarm: Swarm<Behaviour>,
	commands: mpsc::Receiver<Command>,
	stopped: oneshot::Receiver<()>,
	inbound: Option<mpsc::Sender<InboundRequest>>,
	pending_manifest: HashMap<OutboundRequestId, Reply<ManifestResponse>>,
	pending_logs: HashMap<OutboundRequestId, Reply<LogsResponse>>,
	pending_image: HashMap<OutboundRequestId, Reply<ImageResponse>>,
	/// Last dial error per peer, to say why a request found its provider unreachable.
	dial_errors: HashMap<PeerId, String>,
	answers: FuturesUnordered<BoxFuture<'static, Answer>>,
	/// Image requests whose signatures are being checked; at most `max_checks`, more are
	/// refused as busy.
	checks: FuturesUnordered<BoxFuture<'static, CheckedImage>>,
	max_checks: usize,
	listen_addrs: Arc<Mutex<Vec<Multiaddr>>>,
	opening: Arc<OpeningKey>,
	provider_key: [u8; 32],
	replay: ReplayGuard,
	request_timeout: Duration,
}

impl EventLoop {
	async fn run(mut self) {
		loop {
			tokio::select! {
				_ = &mut self.stopped => break,
				command = self.commands.recv() => match command {
					Some(command) => self.on_command(command),
					None => break,
				},
				event = self.swarm.select_next_some() => self.on_swarm_event(event),
				Some(answer) = self.answers.next(), if !self.answers.is_empty() => {
					self.on_answer(answer)
				}
				Some(checked) = self.checks.next(), if !self.checks.is_empty() => {
					self.on_image_checked(checked)
				}
			}
		}
		tracing::debug!("p2p node stopped");
	}

	fn on_command(&mut self, command: Command) {
		// Forget requests whose caller gave up (timed out) in the meantime.
		self.pending_manifest.retain(|_, reply| !reply.is_closed());
		self.pending_logs.retain(|_, reply| !reply.is_closed());
		self.pending_image.retain(|_, reply| !reply.is_closed());
		let behaviour = self.swarm.behaviour_mut();
		match command {
			Command::Manifest { peer, addrs, request, reply } => {
				tracing::debug!(%peer, deal = request.deal_id, "sending manifest");
				let id = behaviour.manifest.send_request_with_addresses(&peer, request, addrs);
				self.pending_manifest.insert(id, reply);
			}
			Command::Logs { peer, addrs, request, reply } => {
				tracing::debug!(%peer, deal = request.deal_id, "requesting logs");
				let id = behaviour.logs.send_request_with_addresses(&peer, request, addrs);
				self.pending_logs.insert(id, reply);
			}
			Command::Image { peer, addrs, request, reply } => {
				let id = behaviour.image.send_request_with_addresses(&peer, request, addrs);
				self.pending_image.insert(id, reply);
			}
		}
	}

	fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
		match event {
			SwarmEvent::Behaviour(BehaviourEvent::Manifest(event)) => {
				if let Some((peer, request, channel)) =
					on_rr_event(event, &mut self.pending_manifest, &mut self.dial_errors)
				{
					self.on_manifest_request(peer, request, channel);
				}
			}
			SwarmEvent::Behaviour(BehaviourEvent::Logs(event)) => {
				if let Some((peer, request, channel)) =
					on_rr_event(event, &mut self.pending_logs, &mut self.dial_errors)
				{
					self.on_logs_request(peer, request, channel);
				}
			}
			SwarmEvent::Behaviour(BehaviourEvent::Image(event)) => {
				if let Some((peer, request, channel)) =
					on_rr_event(event, &mut self.pending_image, &mut self.dial_errors)
				{
					self.on_image_request(peer, request, channel);
				}
			}
			SwarmEvent::OutgoingConnectionError { peer_id: Some(peer), error, .. } => {
				// Kept until the failed request reads it; bounded in case none does.
				if self.dial_errors.len() >= 1024 {
					self.dial_errors.clear();
				}
				self.dial_errors.insert(peer, dial_reason(&error));
			}
			SwarmEvent::NewListenAddr { address, .. } => {
				if let Ok(mut addrs) = self.listen_addrs.lock() {
					if !addrs.contains(&address) {
						addrs.push(address);
					}
				}
			}
			SwarmEvent::ExpiredListenAddr { address, .. } => {
				if let Ok(mut addrs) = self.listen_addrs.lock() {
					addrs.retain(|a| *a != address);
				}
			}
			SwarmEvent::ListenerError { error, .. } => {
				tracing::warn!(%error, "p2p listener error");
			}
			other => tracing::trace!(?other, "swarm event"),
		}
	}

	fn on_manifest_request(
		&mut self,
		peer: PeerId,
		request: ManifestRequest,
		channel: ResponseChannel<ManifestResponse>,
	) {
		let deal = request.deal_id;
		if let Err(error) = request.verify_signature(&self.provider_key) {
			tracing::debug!(%peer, deal, %error, "refusing manifest");
			self.send_manifest(channel, ManifestResponse::Reject(error.into()));
			return;
		}
		let (responder, answer) = oneshot::channel();
		let opening = self.opening.clone();
		let inbound =
			InboundRequest::Manifest(InboundManifest { peer, request, opening, responder });
		match self.hand_over(inbound) {
			Ok(()) => self.await_answer(answer, ManifestResponse::Reject, move |r| {
				Answer::Manifest(channel, r)
			}),
			Err(reason) => self.send_manifest(channel, ManifestResponse::Reject(reason)),
		}
	}

	fn on_logs_request(
		&mut self,
		peer: PeerId,
		request: LogsRequest,
		channel: ResponseChannel<LogsResponse>,
	) {
		let deal = request.deal_id;
		// Signature first, so that nobody spends another publisher's replay memory. Anyone
		// can still sign with a fresh key: the guard bounds what each key may take.
		let checked = request.verify_signature(&self.provider_key).and_then(|()| {
			self.replay.check(
				&request.publisher,
				&request.nonce,
				request.timestamp_ms,
				auth::now_ms(),
			)
		});
		if let Err(error) = checked {
			tracing::debug!(%peer, deal, %error, "refusing log request");
			self.send_logs(channel, LogsResponse::Reject(error.into()));
			return;
		}
		let (responder, answer) = oneshot::channel();
		match self.hand_over(InboundRequest::Logs(InboundLogs { peer, request, responder })) {
			Ok(()) => {
				self.await_answer(answer, LogsResponse::Reject, move |r| Answer::Logs(channel, r))
			}
			Err(reason) => self.send_logs(channel, LogsResponse::Reject(reason)),
		}
	}

	fn on_image_request(
		&mut self,
		peer: PeerId,
		request: ImageRequest,
		channel: ResponseChannel<ImageResponse>,
	) {
		if self.inbound.is_none() {
			let reason = ImageReject::Internal("not serving".into());
			self.send_image(channel, ImageResponse::Reject(reason));
			return;
		}
		// Each check holds a decoded request (up to a chunk): bounded like the inbound queue.
		if self.checks.len() >= self.max_checks {
			self.send_image(channel, ImageResponse::Reject(ImageReject::Busy));
			return;
		}
		let provider_key = self.provider_key;
		self.checks.push(Box::pin(async move {
			let checked = tokio::task::spawn_blocking(move || {
				let verified = match &request {
					ImageRequest::Offer(offer) => offer.verify_signature(&provider_key),
					ImageRequest::Chunk(chunk) => chunk.verify_signature(&provider_key),
				};
				verified.map(|()| request).map_err(|e: AuthError| ImageReject::from(e))
			})
			.await
			.unwrap_or_else(|e| Err(ImageReject::Internal(format!("signature check: {e}"))));
			CheckedImage { peer, channel, checked }
		}));
	}

	fn on_image_checked(&mut self, CheckedImage { peer, channel, checked }: CheckedImage) {
		let request = match checked {
			Ok(request) => request,
			Err(reason) => {
				tracing::debug!(%peer, %reason, "refusing image request");
				self.send_image(channel, ImageResponse::Reject(reason));
				return;
			}
		};
		let (responder, answer) = oneshot::channel();
		let opening = self.opening.clone();
		let inbound = match request {
			ImageRequest::Offer(offer) => {
				InboundRequest::ImageOffer(InboundImageOffer { peer, offer, opening, responder })
			}
			ImageRequest::Chunk(chunk) => {
				InboundRequest::ImageChunk(InboundImageChunk { peer, chunk, opening, responder })
			}
		};
		match self.hand_over(inbound) {
			Ok(()) => self.await_answer(
				answer,
				|reason| ImageResponse::Reject(reason.into()),
				move |r| Answer::Image(channel, r),
			),
			Err(reason) => self.send_image(channel, ImageResponse::Reject(reason.into())),
		}
	}

	/// Queues a request for the application, without ever blocking the swarm.
	fn hand_over(&self, request: InboundRequest) -> Result<(), RejectReason> {
		let Some(inbound) = &self.inbound else {
			return Err(RejectReason::Internal("not serving".into()));
		};
		inbound.try_send(request).map_err(|e| match e {
			mpsc::error::TrySendError::Full(_) => RejectReason::Busy,
			mpsc::error::TrySendError::Closed(_) => RejectReason::Internal("shutting down".into()),
		})
	}

	/// Waits (outside the loop) for the application's answer, or refuses after the timeout.
	fn await_answer<R: Send + 'static>(
		&mut self,
		answer: oneshot::Receiver<R>,
		reject: fn(RejectReason) -> R,
		wrap: impl FnOnce(R) -> Answer + Send + 'static,
	) {
		let timeout = self.request_timeout;
		self.answers.push(Box::pin(async move {
			let response = match tokio::time::timeout(timeout, answer).await {
				Ok(Ok(response)) => response,
				Ok(Err(_)) => reject(RejectReason::Internal("request dropped".into())),
				Err(_) => reject(RejectReason::Internal("no answer in time".into())),
			};
			wrap(response)
		}));
	}

	fn on_answer(&mut self, answer: Answer) {
		match answer {
			Answer::Manifest(channel, response) => self.send_manifest(channel, response),
			Answer::Logs(channel, LogsResponse::Chunk(chunk))
				if chunk.encoded_len_estimate() as u64 > MAX_LOGS_RESPONSE_BYTES - 1024 =>
			{
				tracing::warn!(lines = chunk.lines.len(), "log chunk too large to send");
				let reason = RejectReason::Internal("log chunk too large".into());
				self.send_logs(channel, LogsResponse::Reject(reason));
			}
			Answer::Logs(channel, response) => self.send_logs(channel, response),
			Answer::Image(channel, ImageResponse::Plan(plan)) if plan.len() > MAX_IMAGE_BLOBS => {
				let reason = ImageReject::Corrupt(format!(
					"the image has {} blobs, more than {MAX_IMAGE_BLOBS}",
					plan.len()
				));
				self.send_image(channel, ImageResponse::Reject(reason));
			}
			Answer::Image(channel, response) => self.send_image(channel, response),
		}
	}

	fn send_manifest(&mut self, channel: ResponseChannel<ManifestResponse>, r: ManifestResponse) {
		// Fails only if the requester is gone (timeout, closed connection): nothing to do.
		let _ = self.swarm.behaviour_mut().manifest.send_response(channel, r);
	}

	fn send_logs(&mut self, channel: ResponseChannel<LogsResponse>, r: LogsResponse) {
		let _ = self.swarm.behaviour_mut().logs.send_response(channel, r);
	}

	fn send_image(&mut self, channel: ResponseChannel<ImageResponse>, r: ImageResponse) {
		let _ = self.swarm.behaviour_mut().image.send_response(channel, r);
	}
}

/// Settles outbound requests from one protocol's events; returns an inbound request.
fn on_rr_event<Req, Resp>(
	event: request_response::Event<Req, Resp>,
	pending: &mut HashMap<OutboundRequestId, Reply<Resp>>,
	dial_errors: &mut HashMap<PeerId, String>,
) -> Option<(PeerId, Req, ResponseChannel<Resp>)> {
	match event {
		request_response::Event::Message { peer, message, .. } => match message {
			Message::Request { request, channel, .. } => Some((peer, request, channel)),
			Message::Response { request_id, response } => {
				if let Some(reply) = pending.remove(&request_id) {
					let _ = reply.send(Ok(response));
				}
				None
			}
		},
		request_response::Event::OutboundFailure { peer, request_id, error, .. } => {
			tracing::debug!(%peer, %error, "request failed");
			if let Some(reply) = pending.remove(&request_id) {
				let _ = reply.send(Err(outbound_error(peer, error, dial_errors)));
			}
			None
		}
		request_response::Event::InboundFailure { peer, error, .. } => {
			tracing::debug!(%peer, %error, "inbound request failed");
			None
		}
		request_response::Event::ResponseSent { .. } => None,
	}
}

/// A one-line reason for a failed dial: per address, the innermost error ("Connection
/// refused"), instead of libp2p's nested multi-line report.
fn dial_reason(error: &DialError) -> String {
	let DialError::Transport(attempts) = error else { return error.to_string() };
	let reasons: Vec<String> = attempts
		.iter()
		.map(|(addr, error)| {
			let mut cause: &dyn std::error::Error = error;
			while let Some(source) = cause.source() {
				cause = source;
			}
			format!("{addr}: {cause}")
		})
		.collect();
	reasons.join("; ")
}

fn outbound_error(
	peer: PeerId,
	error: OutboundFailure,
	dial_errors: &mut HashMap<PeerId, String>,
) -> P2pError {
	let protocol = |reason: &str| P2pError::Protocol { peer, reason: reason.into() };
	match error {
		OutboundFailure::DialFailure => P2pError::Unreachable {
			peer,
			reason: dial_errors.remove(&peer).unwrap_or_else(|| "dial failed".into()),
		},
		OutboundFailure::Timeout => P2pError::Timeout { peer },
		OutboundFailure::ConnectionClosed => protocol("connection closed before the answer"),
		OutboundFailure::UnsupportedProtocols => protocol("peer does not serve the protocol"),
		OutboundFailure::Io(e) => P2pError::Protocol { peer, reason: e.to_string() },
	}
}
