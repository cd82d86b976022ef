//! Storage proofs: the agent snapshots each volume of its SLA deals once per commitment
//! period, keeps the snapshot, commits its Merkle root on chain, and answers the publishers'
//! challenges with the chunks asked for and their paths.
//!
//! - [`snapshot`]: the snapshot format and the store of snapshots in the data directory;
//! - [`plan`]: what to do about a volume or a challenge, from the finalized chain and the disk.
//!
//! The prover runs beside the reconcile loop ([`Prover::run`]): after each finalized round it
//! reads the open challenges of the provider's deals (and of ended deals it still holds
//! snapshots of) and answers those whose chunks are known; every few blocks it checks which
//! volumes are due a new commitment and takes them, through the backend's [`VolumeSource`]
//! ([`source`]: paused pods on podman, a read-only pod on Kubernetes).
//!
//! What the provider vouches for is the snapshot, not the live volume: the answer is read from
//! the snapshot on disk, so an agent that lost or altered it fails the challenge (and is
//! slashed), whatever the live volume holds. Everything survives restarts: snapshots and the
//! commitment in flight are on disk, the rest is read from the chain.

pub mod plan;
pub mod snapshot;
pub mod source;
mod stream;

use crate::{agent::Agent, chain::Snapshot, metrics::kind, plan::ChainState, state};
use plan::{needs_answer, plan_volume, snapshots_to_keep, Committed, VolumeFacts};
use podchain_chain::{
	runtime::{self, runtime_types as types},
	AtBlock, ChainError, Node,
};
use snapshot::{Pending, SnapshotError, SnapshotInfo, SnapshotStore};
use source::VolumeSource;
use std::{
	collections::{BTreeMap, BTreeSet},
	sync::{
		atomic::{AtomicBool, Ordering},
		Arc, Mutex,
	},
	time::{Duration, Instant},
};
use types::bounded_collections::bounded_vec::BoundedVec;

/// Blocks between two checks of which volumes are due a commitment.
pub const CHECK_EVERY_BLOCKS: u32 = 5;

/// Most bytes of one volume's snapshot for a deal reserving `storage_gib` GiB: the storage
/// and room for the entries' headers (64 MiB, and 1/16 more). What a volume holds beyond it (a
/// sparse file's holes count in full) is refused rather than filling the provider's disk.
pub fn snapshot_limit(storage_gib: u32) -> u64 {
	let storage = u64::from(storage_gib) << 30;
	storage.saturating_add(storage / 16).saturating_add(64 << 20)
}

type ChainChallenge =
	types::pallet_storage_proofs::types::Challenge<podchain_chain::AccountId, u128, u32>;

/// The storage prover of one agent.
pub struct Prover {
	agent: Arc<Agent>,
	volumes: Arc<dyn VolumeSource>,
	store: SnapshotStore,
	/// Answers sent: by deal, the challenge's filing block and the answer's last valid block.
	answered: Arc<Mutex<BTreeMap<u64, (u32, u32)>>>,
	/// Block of the last check of due commitments.
	last_check: Mutex<Option<u32>>,
	/// A check of due commitments (snapshots, which may take long) runs in the background:
	/// challenges are answered meanwhile.
	committing: AtomicBool,
}

impl Prover {
	/// A prover for `agent`'s deals, reading their volumes from `volumes` and keeping
	/// snapshots in `store`.
	pub fn new(agent: Arc<Agent>, volumes: Arc<dyn VolumeSource>, store: SnapshotStore) -> Self {
		Self {
			agent,
			volumes,
			store,
			answered: Arc::default(),
			last_check: Mutex::default(),
			committing: AtomicBool::new(false),
		}
	}

	/// Acts after each finalized round of the agent, until the task is dropped.
	pub async fn run(self: Arc<Self>) {
		let mut node: Option<Node> = None;
		let mut last_round = None;
		loop {
			tokio::time::sleep(Duration::from_millis(500)).await;
			let Some(snapshot) = self.agent.snapshot() else { continue };
			if last_round == Some(snapshot.number) {
				continue;
			}
			let connected = match &node {
				Some(node) => node.clone(),
				None => match podchain_chain::connect(&self.agent.settings.rpc_url).await {
					Ok(connected) => {
						node = Some(connected.clone());
						connected
					}
					Err(e) => {
						self.agent.metrics.error("storage_proofs_chain");
						tracing::warn!(error = %e, "storage proofs: node unreachable");
						continue;
					}
				},
			};
			match self.step(&connected, &snapshot).await {
				Ok(()) => last_round = Some(snapshot.number),
				Err(e) => {
					self.agent.metrics.error("storage_proofs_chain");
					tracing::warn!(error = %e, "storage proofs: cannot read the chain");
					node = None;
				}
			}
		}
	}

	/// One pass at the latest finalized block: answer challenges, and start a check of the
	/// commitments due unless one runs.
	async fn step(self: &Arc<Self>, node: &Node, snapshot: &Snapshot) -> Result<(), ChainError> {
		let at = node.finalized().await?;
		let now = u32::try_from(at.block_number()).unwrap_or(u32::MAX);
		// Running SLA deals, with the most bytes a snapshot of one of their volumes may have.
		let running: BTreeMap<u64, u64> = snapshot
			.deals
			.values()
			.filter(|d| d.sla.is_some())
			.filter(|d| {
				matches!(d.chain.state, ChainState::Active { .. } | ChainState::OutOfFunds { .. })
			})
			.map(|d| (d.chain.id, snapshot_limit(d.reserved.storage_gib)))
			.collect();
		// Ended deals may still have a challenge open: ask for every deal with snapshots too.
		let known: BTreeSet<u64> = running.keys().copied().chain(self.store.deals()).collect();
		let known: Vec<u64> = known.into_iter().collect();
		let challenges = read_challenges(node, &at, &known).await?;
		for (deal, challenge) in &challenges {
			self.answer(node, &at, now, *deal, challenge).await;
		}
		let check_due = self
			.last_check
			.lock()
			.map(|last| last.is_none_or(|l| now >= l.saturating_add(CHECK_EVERY_BLOCKS)))
			.unwrap_or(true);
		if check_due && !self.committing.swap(true, Ordering::SeqCst) {
			if let Ok(mut last) = self.last_check.lock() {
				*last = Some(now);
			}
			let period = at
				.constants()
				.entry(runtime::constants().storage_proofs().commitment_period())
				.map_err(ChainError::rpc)?;
			// Deals neither running nor challenged: nothing of theirs can be asked for again.
			for deal in self.store.deals() {
				if !running.contains_key(&deal) && !challenges.contains_key(&deal) {
					match self.store.remove_deal(deal) {
						Ok(()) => {
							tracing::info!(deal, "storage proofs: deal over, snapshots removed")
						}
						Err(e) => {
							tracing::warn!(deal, error = %e, "storage proofs: cannot remove snapshots")
						}
					}
				}
			}
			let (prover, node) = (self.clone(), node.clone());
			tokio::spawn(async move {
				if let Err(e) = prover.commit_round(&node, now, period, &running, &challenges).await
				{
					prover.agent.metrics.error("storage_proofs_chain");
					tracing::warn!(error = %e, "storage proofs: cannot read the chain");
				}
				prover.committing.store(false, Ordering::SeqCst);
			});
		}
		Ok(())
	}

	/// Snapshots and commits the volumes of `running` deals that are due.
	async fn commit_round(
		&self,
		node: &Node,
		now: u32,
		period: u32,
		running: &BTreeMap<u64, u64>,
		challenges: &BTreeMap<u64, ChainChallenge>,
	) -> Result<(), ChainError> {
		let at = node.finalized().await?;
		for (deal, limit) in running {
			self.commit_due(node, &at, now, period, *deal, *limit, challenges.get(deal)).await?;
		}
		Ok(())
	}

	/// Answers `deal`'s open challenge once its chunks are known, from the snapshot on disk.
	async fn answer(
		&self,
		node: &Node,
		at: &AtBlock,
		now: u32,
		deal: u64,
		challenge: &ChainChallenge,
	) {
		let sent = self.answered.lock().ok().and_then(|a| a.get(&deal).copied());
		if !needs_answer(now, challenge.issued_at, sent) || now > challenge.deadline {
			return;
		}
		let view = match at
			.runtime_apis()
			.call(runtime::runtime_apis().storage_proofs_api().challenge(deal))
			.await
		{
			Ok(Some(view)) => view,
			Ok(None) => return,
			Err(e) => {
				self.agent.metrics.error("storage_proofs_chain");
				tracing::warn!(deal, error = %e, "storage proofs: cannot read the challenge");
				return;
			}
		};
		let Some(indices) = view.indices else {
			tracing::debug!(deal, "challenged; its chunks are drawn from the next block");
			return;
		};
		let volume = challenge.volume.0.clone();
		let (store, root, size) = (self.store.clone(), challenge.root, challenge.size);
		let read =
			tokio::task::spawn_blocking(move || store.prove(deal, &volume, &root, size, &indices))
				.await
				.unwrap_or_else(|e| {
					Err(SnapshotError::Missing(format!("the reading task failed: {e}")))
				});
		let proofs = match read {
			Ok(proofs) => proofs,
			Err(e) => {
				self.agent.metrics.storage_proofs.get_or_create(&kind("snapshot_missing")).inc();
				tracing::error!(
					deal,
					volume = %String::from_utf8_lossy(&challenge.volume.0),
					error = %e,
					"storage challenge: the committed snapshot cannot be read; the challenge will fail"
				);
				return;
			}
		};
		let proofs = proofs
			.into_iter()
			.map(|(chunk, path)| types::pallet_storage_proofs::types::ChunkProof {
				chunk: BoundedVec(chunk),
				path: BoundedVec(path),
			})
			.collect();
		let call = runtime::tx().storage_proofs().answer(deal, BoundedVec(proofs));
		let answered = self.answered.clone();
		let issued_at = challenge.issued_at;
		let sent = self
			.agent
			.submitter
			.submit(node, &call, |_, valid_until| {
				if let Ok(mut answered) = answered.lock() {
					answered.insert(deal, (issued_at, valid_until));
				}
				Ok::<(), std::convert::Infallible>(())
			})
			.await;
		match sent {
			Ok(Ok(_)) => {
				self.agent.metrics.action("storage_answer", true);
				tracing::info!(deal, issued_at, "storage challenge answered");
			}
			Ok(Err(never)) => match never {},
			Err(e) => {
				self.agent.metrics.action("storage_answer", false);
				tracing::warn!(deal, error = %e, "cannot send a storage challenge's answer");
			}
		}
	}

	/// Snapshots (of at most `limit` bytes each) and commits the volumes of running deal
	/// `deal` that are due.
	async fn commit_due(
		&self,
		node: &Node,
		at: &AtBlock,
		now: u32,
		period: u32,
		deal: u64,
		limit: u64,
		challenge: Option<&ChainChallenge>,
	) -> Result<(), ChainError> {
		// Snapshots are of a deal running as deployed: never one half way through a start or
		// a rollout (its volumes may not hold what its containers write at start yet).
		match self.agent.backend.status(deal).await {
			Ok(podchain_cluster::DealStatus::Running | podchain_cluster::DealStatus::Idle) => {}
			Ok(_) => return Ok(()),
			Err(e) => {
				self.agent.metrics.error("storage_proofs_cluster");
				tracing::warn!(deal, error = %e, "storage proofs: cannot read the deal's status");
				return Ok(());
			}
		}
		let volumes = match self.volumes.volumes(deal).await {
			Ok(volumes) => volumes,
			Err(e) => {
				self.agent.metrics.error("storage_proofs_cluster");
				tracing::warn!(deal, error = %e, "storage proofs: cannot list the deal's volumes");
				return Ok(());
			}
		};
		if volumes.is_empty() {
			return Ok(());
		}
		let names: Vec<Vec<u8>> = volumes.iter().map(|v| v.clone().into_bytes()).collect();
		let committed = read_commitments(node, at, deal, &names).await?;
		let mut due = Vec::new();
		for (volume, name) in volumes.iter().zip(&names) {
			let challenged_root = challenge.filter(|c| c.volume.0 == *name).map(|c| c.root);
			let facts = VolumeFacts {
				committed: committed.get(name).copied(),
				challenged: challenged_root.is_some(),
				pending: self.store.pending(deal, name),
			};
			let plan = plan_volume(now, period, &facts);
			if plan.clear_pending {
				if let Err(e) = self.store.set_pending(deal, name, None) {
					tracing::warn!(deal, error = %e, "storage proofs: cannot update the disk");
				}
			}
			let pending = if plan.clear_pending { None } else { facts.pending };
			let keep = snapshots_to_keep(
				facts.committed.map(|c| c.root),
				pending.as_ref(),
				challenged_root,
			);
			if let Err(e) = self.store.keep_only(deal, name, &keep) {
				tracing::warn!(deal, error = %e, "storage proofs: cannot remove old snapshots");
			}
			if plan.snapshot {
				due.push(volume.clone());
			}
		}
		if due.is_empty() {
			return Ok(());
		}
		for (name, info) in self.take_snapshots(deal, &due, limit).await {
			self.send_commitment(node, deal, name, info).await;
		}
		Ok(())
	}

	/// Takes snapshots of `volumes` of `deal`, each of at most `limit` bytes.
	async fn take_snapshots(
		&self,
		deal: u64,
		volumes: &[String],
		limit: u64,
	) -> Vec<(Vec<u8>, SnapshotInfo)> {
		let started = Instant::now();
		let taken = match self.volumes.snapshot(deal, volumes, &self.store, limit).await {
			Ok(taken) => taken,
			Err(e) => {
				self.agent.metrics.storage_proofs.get_or_create(&kind("snapshot_failed")).inc();
				tracing::warn!(deal, error = %e, "storage proofs: cannot snapshot the deal's volumes");
				return Vec::new();
			}
		};
		let took = started.elapsed();
		self.agent.metrics.storage_snapshot_seconds.observe(took.as_secs_f64());
		let mut infos = Vec::new();
		for (name, taken) in taken {
			match taken {
				Ok(info) => {
					self.agent.metrics.storage_proofs.get_or_create(&kind("snapshot_taken")).inc();
					tracing::info!(
						deal,
						volume = %name,
						bytes = info.size,
						chunks = info.chunk_count,
						took_ms = took.as_millis(),
						"volume snapshot taken"
					);
					infos.push((name.into_bytes(), info));
				}
				Err(e) => {
					self.agent.metrics.storage_proofs.get_or_create(&kind("snapshot_failed")).inc();
					tracing::warn!(deal, volume = %name, error = %e, "cannot snapshot a volume");
				}
			}
		}
		infos
	}

	/// Commits snapshot `info` of `volume`, recording it on disk as in flight before sending.
	async fn send_commitment(&self, node: &Node, deal: u64, volume: Vec<u8>, info: SnapshotInfo) {
		let call = runtime::tx().storage_proofs().commit(
			deal,
			BoundedVec(volume.clone()),
			info.root,
			info.chunk_count,
			info.size,
		);
		let store = self.store.clone();
		let sent = self
			.agent
			.submitter
			.submit(node, &call, |_, valid_until| {
				store.set_pending(deal, &volume, Some(&Pending { snapshot: info, valid_until }))
			})
			.await;
		match sent {
			Ok(Ok(_)) => {
				self.agent.metrics.action("storage_commit", true);
				tracing::info!(deal, volume = %String::from_utf8_lossy(&volume), "volume snapshot committed");
			}
			Ok(Err(e)) => {
				self.agent.metrics.action("storage_commit", false);
				tracing::warn!(deal, error = %e, "cannot record a commitment on disk: not sent");
			}
			Err(e) => {
				self.agent.metrics.action("storage_commit", false);
				tracing::warn!(deal, error = %e, "cannot send a volume commitment");
			}
		}
	}
}

/// The open challenges of `deals` at `at`, in one request.
async fn read_challenges(
	node: &Node,
	at: &AtBlock,
	deals: &[u64],
) -> Result<BTreeMap<u64, ChainChallenge>, ChainError> {
	if deals.is_empty() {
		return Ok(BTreeMap::new());
	}
	let address = runtime::storage().storage_proofs().challenges();
	let entry = at.storage().entry(address.clone()).map_err(ChainError::rpc)?;
	let keys = deals
		.iter()
		.map(|deal| entry.fetch_key((*deal,)).map_err(ChainError::rpc))
		.collect::<Result<Vec<_>, _>>()?;
	let values = state::raw_values(node, at, &keys).await?;
	let values = state::decode_values(at, &address, values)?;
	Ok(deals.iter().zip(values).filter_map(|(deal, challenge)| Some((*deal, challenge?))).collect())
}

/// The latest commitments of `volumes` of `deal` at `at`, in one request.
async fn read_commitments(
	node: &Node,
	at: &AtBlock,
	deal: u64,
	volumes: &[Vec<u8>],
) -> Result<BTreeMap<Vec<u8>, Committed>, ChainError> {
	let address = runtime::storage().storage_proofs().commitments();
	let entry = at.storage().entry(address.clone()).map_err(ChainError::rpc)?;
	let keys = volumes
		.iter()
		.map(|volume| entry.fetch_key((deal, BoundedVec(volume.clone()))).map_err(ChainError::rpc))
		.collect::<Result<Vec<_>, _>>()?;
	let values = state::raw_values(node, at, &keys).await?;
	let values = state::decode_values(at, &address, values)?;
	Ok(volumes
		.iter()
		.zip(values)
		.filter_map(|(volume, c)| {
			let c = c?;
			Some((volume.clone(), Committed { root: c.root, at: c.at }))
		})
		.collect())
}
