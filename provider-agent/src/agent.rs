//! The running agent: follows finalized blocks and, at each, reconciles the cluster with the
//! chain, settles and sends usage reports; meanwhile it samples usage and serves publishers.
//!
//! Nothing here tears a tenant down unless the finalized chain says so: when the chain or the
//! cluster cannot be read, a round does nothing and the next one tries again.

use crate::{
	chain::{self, Snapshot},
	gateway::{Gateway, Route},
	images::Images,
	manifests::{SpecContext, Vault},
	metrics::{kind, Metrics},
	plan::{self, ChainState, Hash, PlanInput},
	store::Store,
};
use podchain_chain::{tx::Submitter, AccountId, Node};
use podchain_cluster::{objects, Backend};
use std::{
	collections::{BTreeMap, BTreeSet, HashMap},
	sync::{Arc, Mutex, RwLock},
	time::{Duration, Instant},
};
use tokio::sync::Notify;

/// Settings of the reconcile loop.
#[derive(Clone, Debug)]
pub struct Settings {
	/// WebSocket RPC URL of the node.
	pub rpc_url: String,
	/// Blocks between usage reports.
	pub report_every_blocks: u32,
	/// Blocks after acceptance to wait for a manifest.
	pub manifest_timeout_blocks: u32,
	/// Accept pending deals automatically.
	pub auto_accept: bool,
	/// Interval between usage samples.
	pub sample_interval: Duration,
}

/// Everything the agent's tasks share.
pub struct Agent {
	/// Settings.
	pub settings: Settings,
	/// Signs the provider's transactions.
	pub submitter: Submitter,
	/// The provider account.
	pub provider: AccountId,
	/// Where pods run.
	pub backend: Arc<dyn Backend>,
	/// Crash-safe state.
	pub store: Arc<Store>,
	/// Manifests held.
	pub vault: Vault,
	/// Images publishers delivered, when the backend runs them.
	pub images: Option<Images>,
	/// What deal specs are built with.
	pub specs: SpecContext,
	/// Metrics.
	pub metrics: Arc<Metrics>,
	/// The chain at the last finalized block read.
	pub snapshot: RwLock<Option<Arc<Snapshot>>>,
	/// Chain actions sent and maybe not final yet, with the last block they can land in: not
	/// sent again before then.
	pub(crate) sent: Arc<Mutex<BTreeMap<ActionKey, u32>>>,
	/// Block of the last usage report sent.
	pub(crate) last_report: Mutex<Option<u32>>,
	/// Whether the sampler has sampled every billable deal once since the agent started. No
	/// report is sent before: a report spans every block since the last one, the agent's
	/// downtime included, so it must carry the usage of that downtime, which only a sample
	/// taken after the restart holds (a later report spans a few blocks, and its usage is
	/// capped to them).
	pub(crate) sampled_since_start: std::sync::atomic::AtomicBool,
	/// Half probe window of the last SLA heartbeat sent.
	pub(crate) last_heartbeat: Mutex<Option<u32>>,
	/// SLA deals whose pods passed their health check, with the manifest they passed with.
	pub(crate) sla_passed: Mutex<BTreeMap<u64, Hash>>,
	/// Pending deals whose acceptance succeeded in a best block, not yet final: they deploy
	/// without waiting for finality.
	pub(crate) accepted_in_best: Arc<Mutex<BTreeSet<u64>>>,
	/// Raised when there is something to act on before the next finalized block: a manifest
	/// stored (accept or deploy its deal), an acceptance in a best block (deploy it).
	pub(crate) wake: Arc<Notify>,
	/// The HTTP gateway to deals' named hosts, when the agent serves names.
	pub gateway: Option<Arc<Gateway>>,
	/// The HTTP port of each named deal's held manifest, by its hash: read from the manifest
	/// once, not every round.
	pub(crate) route_ports: Mutex<BTreeMap<u64, (Hash, Option<HttpService>)>>,
}

/// A chain action, to remember that it was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ActionKey {
	Accept(u64),
	Acknowledge(u64),
	Close(u64),
}

impl Agent {
	pub(crate) fn sent_handle(&self) -> Arc<Mutex<BTreeMap<ActionKey, u32>>> {
		self.sent.clone()
	}

	/// The latest snapshot.
	pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
		self.snapshot.read().ok().and_then(|s| s.clone())
	}

	/// Follows finalized blocks until the task is dropped, reconnecting with backoff whenever
	/// the node is unreachable.
	pub async fn follow(self: Arc<Self>) {
		let mut backoff = Backoff::default();
		loop {
			let node = match podchain_chain::connect(&self.settings.rpc_url).await {
				Ok(node) => node,
				Err(e) => {
					self.metrics.error("chain");
					let wait = backoff.next();
					tracing::warn!(error = %e, retry_in = ?wait, "node unreachable");
					tokio::time::sleep(wait).await;
					continue;
				}
			};
			match self.store.is_same_chain(&node.api.genesis_hash().0) {
				Ok(true) => {}
				Ok(false) => {
					self.metrics.error("wrong_chain");
					tracing::error!(
						url = %self.settings.rpc_url,
						"the node serves another chain than the one this agent's state belongs to; not acting"
					);
					tokio::time::sleep(Duration::from_secs(60)).await;
					continue;
				}
				Err(e) => {
					self.metrics.error("store");
					tracing::error!(error = %e, "cannot read the agent's store");
					tokio::time::sleep(backoff.next()).await;
					continue;
				}
			}
			tracing::info!(url = %self.settings.rpc_url, "connected to the node");
			let mut blocks = match node.api.stream_blocks().await {
				Ok(blocks) => blocks,
				Err(e) => {
					self.metrics.error("chain");
					tracing::warn!(error = %e, "cannot follow finalized blocks");
					tokio::time::sleep(backoff.next()).await;
					continue;
				}
			};
			loop {
				let block = tokio::select! {
					block = blocks.next() => block,
					() = self.wake.notified() => {
						self.act_between_blocks(&node).await;
						continue;
					}
				};
				let Some(block) = block else { break };
				let at = match block {
					Ok(block) => block.at().await,
					Err(e) => {
						tracing::warn!(error = %e, "finalized block stream failed");
						break;
					}
				};
				match at {
					Ok(at) => {
						backoff = Backoff::default();
						self.round(&node, &at).await;
					}
					Err(e) => {
						self.metrics.error("chain");
						tracing::warn!(error = %e, "cannot read a finalized block");
					}
				}
			}
			self.metrics.error("chain");
			let wait = backoff.next();
			tracing::warn!(retry_in = ?wait, "lost the node; reconnecting");
			tokio::time::sleep(wait).await;
		}
	}

	/// Plans and acts again on the last finalized snapshot when [`Agent::wake`] is raised: a
	/// pending deal whose manifest arrived is accepted, one whose acceptance is in a best block
	/// deployed, an active one given its manifest deployed, without waiting for the next block.
	/// Runs between rounds, never beside one, so actions are not carried out twice.
	async fn act_between_blocks(&self, node: &Node) {
		let Some(snapshot) = self.snapshot() else { return };
		if let Err(e) = self.reconcile(node, &snapshot).await {
			self.metrics.error("cluster");
			tracing::warn!(error = %e, "cluster unreachable: waiting for the next round");
		}
	}

	/// One round at a finalized block: read, plan, act, bill.
	async fn round(&self, node: &Node, at: &podchain_chain::AtBlock) {
		let started = Instant::now();
		// A syncing node's finalized view lags the network; one behind what was already seen
		// (restored, or another node behind a balancer) lacks deals that exist. Either would
		// make running deals look gone.
		match node.rpc.system_health().await {
			Ok(health) if health.is_syncing => {
				tracing::info!("the node is syncing: waiting");
				return;
			}
			Ok(_) => {}
			Err(e) => {
				self.metrics.error("chain");
				tracing::warn!(error = %e, "cannot read the node's health");
				return;
			}
		}
		let number = u32::try_from(at.block_number()).unwrap_or(u32::MAX);
		let health_read = started.elapsed();
		match self.store.advance_to(number) {
			Ok(true) => {}
			Ok(false) => {
				self.metrics.error("chain_behind");
				tracing::warn!(
					block = number,
					"the node's finalized block is behind one already acted on: skipping"
				);
				return;
			}
			Err(e) => {
				self.metrics.error("store");
				tracing::error!(error = %e, "cannot read the agent's store");
				return;
			}
		}
		let stored = started.elapsed();
		let with_names = self.specs.ingress_domain.is_some();
		let snapshot = match chain::snapshot(node, at, &self.provider, with_names).await {
			Ok(snapshot) => Arc::new(snapshot),
			Err(e) => {
				self.metrics.error("chain");
				tracing::warn!(error = %e, "cannot read the provider's deals");
				return;
			}
		};
		self.record_snapshot(&snapshot);
		let chain_read = started.elapsed();
		match self.reconcile(node, &snapshot).await {
			Ok(running) => {
				self.metrics.healthy_now();
				self.heartbeat(node, &snapshot, &running).await;
			}
			Err(e) => {
				self.metrics.error("cluster");
				tracing::warn!(error = %e, block = snapshot.number, "cluster unreachable: nothing changed this round");
			}
		}
		let reconciled = started.elapsed();
		self.bill(node, &snapshot).await;
		let elapsed = started.elapsed();
		self.metrics.reconcile_seconds.observe(elapsed.as_secs_f64());
		tracing::debug!(
			block = number,
			deals = snapshot.deals.len(),
			health_ms = health_read.as_millis(),
			store_ms = (stored - health_read).as_millis(),
			deals_ms = (chain_read - stored).as_millis(),
			cluster_ms = (reconciled - chain_read).as_millis(),
			bill_ms = (elapsed - reconciled).as_millis(),
			"round done"
		);
	}

	fn record_snapshot(&self, snapshot: &Arc<Snapshot>) {
		if let Ok(mut slot) = self.snapshot.write() {
			*slot = Some(snapshot.clone());
		}
		self.metrics.finalized_block.set(i64::from(snapshot.number));
		let mut counts =
			BTreeMap::from([("pending", 0), ("active", 0), ("out_of_funds", 0), ("closing", 0)]);
		for deal in snapshot.deals.values() {
			let state = match deal.chain.state {
				ChainState::Pending => "pending",
				ChainState::Active { .. } => "active",
				ChainState::OutOfFunds { .. } => "out_of_funds",
				ChainState::Closing => "closing",
			};
			*counts.entry(state).or_default() += 1;
		}
		for (state, count) in counts {
			self.metrics.deals.get_or_create(&kind(state)).set(count);
		}
		let now = snapshot.number;
		if let Ok(mut sent) = self.sent.lock() {
			sent.retain(|_, valid_until| *valid_until >= now);
		}
	}

	/// Brings the cluster and the agent's state in line with `snapshot`. Fails, doing
	/// nothing, when the cluster cannot be read. Returns the deals found deployed with the
	/// manifest the chain names.
	async fn reconcile(
		&self,
		node: &Node,
		snapshot: &Snapshot,
	) -> Result<BTreeSet<u64>, podchain_cluster::ClusterError> {
		self.update_routes(snapshot);
		let deployed = self.backend.deployed().await?;
		let running = deployed
			.iter()
			.filter(|d| {
				snapshot
					.deals
					.get(&d.deal)
					.is_some_and(|view| d.manifest_hash == view.chain.manifest_hash)
			})
			.map(|d| d.deal)
			.collect();
		let stored = match self.store.deals() {
			Ok(stored) => stored.into_iter().collect(),
			Err(e) => {
				self.metrics.error("store");
				tracing::error!(error = %e, "cannot read the agent's store");
				return Ok(running);
			}
		};
		// An acceptance final (or gone) no longer needs remembering.
		let accepted_in_best = match self.accepted_in_best.lock() {
			Ok(mut accepted) => {
				accepted.retain(|id| {
					snapshot.deals.get(id).is_some_and(|d| d.chain.state == ChainState::Pending)
				});
				accepted.clone()
			}
			Err(_) => BTreeSet::new(),
		};
		let mut input = PlanInput {
			now: snapshot.number,
			accepted_in_best,
			deals: snapshot.deals.values().map(|d| d.chain.clone()).collect(),
			// A manifest counts as held once its delivered images are all in too.
			manifests: self.vault.runnable(|deal, digest| {
				self.images.as_ref().is_some_and(|images| images.has(deal, digest))
			}),
			deployed: deployed.into_iter().map(|d| (d.deal, d.manifest_hash)).collect(),
			rolled_out: BTreeSet::new(),
			stored,
			auto_accept: self.settings.auto_accept,
			manifest_timeout_blocks: self.settings.manifest_timeout_blocks,
		};
		// An update is acknowledged only once its pods are ready: read the rollouts of the
		// updates applied (a few deals at most; a read that fails waits for the next round).
		for (id, hash) in plan::awaiting_rollout(&input) {
			match self.backend.rolled_out(id, hash).await {
				Ok(true) => {
					input.rolled_out.insert(id);
				}
				Ok(false) => tracing::debug!(deal = id, "update applied, its rollout not done"),
				Err(e) => {
					self.metrics.error("cluster");
					tracing::warn!(deal = id, error = %e, "cannot read the update's rollout");
				}
			}
		}
		for action in plan::plan(&input) {
			self.execute(node, snapshot, action).await;
		}
		Ok(running)
	}
}

impl Agent {
	/// Points the gateway at the named deals of `snapshot` whose manifests the agent holds. A
	/// deal whose pods are not up yet is routed all the same: the gateway answers 503 for it
	/// until they are, and serves it the moment they are.
	fn update_routes(&self, snapshot: &Snapshot) {
		let Some(gateway) = &self.gateway else { return };
		let held = self.vault.hashes();
		let Ok(mut ports) = self.route_ports.lock() else { return };
		ports.retain(|id, (hash, _)| held.get(id) == Some(hash));
		let mut routes = HashMap::new();
		for deal in snapshot.deals.values().filter(|d| d.name.is_some()) {
			let id = deal.chain.id;
			let Some(hash) = held.get(&id) else { continue };
			let port = match ports.get(&id) {
				Some((_, port)) => *port,
				None => {
					let port = self.http_port(deal, *hash);
					ports.insert(id, (*hash, port));
					port
				}
			};
			let host = self.specs.host(deal);
			if let (Some(host), Some(service)) = (host, port) {
				routes.insert(host, Route { deal: id, port: service.port, idle: service.idle });
			}
		}
		gateway.set_routes(routes);
	}

	/// How `deal`'s held manifest `hash` serves its registered name.
	fn http_port(&self, deal: &chain::DealView, hash: Hash) -> Option<HttpService> {
		let manifest = match self.vault.get(deal.chain.id) {
			Ok(Some((held, manifest))) if held == hash => manifest,
			Ok(_) => return None,
			Err(e) => {
				self.metrics.error("store");
				tracing::error!(deal = deal.chain.id, error = %e, "cannot read the deal's manifest");
				return None;
			}
		};
		let idle = manifest.replicas.idle_seconds.map(|s| Duration::from_secs(s.into()));
		match objects::http_port(&self.specs.spec_unstaged(deal, manifest, hash)) {
			Ok(port) => port.map(|port| HttpService { port, idle }),
			Err(e) => {
				tracing::warn!(deal = deal.chain.id, error = %e, "the deal's name cannot be served");
				None
			}
		}
	}
}

/// How a deal's name is served: its HTTP port, and its idle time if it scales to zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HttpService {
	port: u16,
	idle: Option<Duration>,
}

/// Exponential backoff from 1 s to 30 s.
#[derive(Debug)]
struct Backoff(Duration);

impl Default for Backoff {
	fn default() -> Self {
		Self(Duration::from_secs(1))
	}
}

impl Backoff {
	fn next(&mut self) -> Duration {
		let wait = self.0;
		self.0 = (self.0 * 2).min(Duration::from_secs(30));
		wait
	}
}
