//! Usage samples of a deal from the kubelets' Summary API (see [`summary`](super::summary)),
//! read through the API server: `GET /api/v1/nodes/{node}/proxy/stats/summary` for each node
//! that runs one of the deal's pods.
//!
//! Each node is read on its own: one that cannot be read is a [`MeteringFailure`] for what it
//! runs, and the other nodes' readings are kept. Storage, under [`VOLUMES_SOURCE`], is the used
//! bytes of each of the deal's claims, counted once however many pods mount it; the claims are
//! listed apart from the pods, so storage is metered when the containers are not, except for a
//! claim whose usage is on a node that could not be read (see [`storage`]).
//!
//! A node's Summary lists every pod on it, of every deal, so one read serves every deal sampled
//! within [`KubeOptions::summary_max_age`](super::KubeOptions::summary_max_age): the agent
//! samples its deals one after another, and without that each would read the same nodes again.

use super::{
	apply::deal_selector,
	quantity,
	summary::{NodeUsage, Summary},
	KubeBackend,
};
use crate::{
	objects::namespace_name, ClusterError, DealId, Metered, MeteringFailure, Sample, Sampled,
};
use ::kube::api::{Api, ListParams};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use std::{
	collections::{BTreeMap, BTreeSet, HashMap},
	sync::{Arc, Mutex},
	time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

/// The source under which [`Backend::sample`](crate::Backend::sample) reports a deal's
/// storage: its claims (volumes are shared by the pods, so they belong to no container).
pub const VOLUMES_SOURCE: &str = "<volumes>";

/// Nodes read at once for one deal.
const CONCURRENT_NODES: usize = 4;

/// The RBAC rule the agent needs to read the Summary API through the API server.
const RBAC_HINT: &str = "the agent's ClusterRole needs the rule `apiGroups: [\"\"], \
	resources: [nodes/proxy], verbs: [get]` (see provider-agent/deploy/kubernetes/rbac.yaml)";

/// Summaries read lately, by node.
#[derive(Debug, Default)]
pub(super) struct SummaryCache(Mutex<HashMap<String, (Instant, Arc<Summary>)>>);

impl SummaryCache {
	/// `node`'s Summary if it was read less than `max_age` ago.
	fn get(&self, node: &str, max_age: Duration) -> Option<Arc<Summary>> {
		// A poisoned lock only means another sample panicked mid-update: entries are whole.
		let cache = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
		let (read_at, summary) = cache.get(node)?;
		(read_at.elapsed() < max_age).then(|| summary.clone())
	}

	/// Keeps `summary` of `node`, dropping entries too old to be used again.
	fn put(&self, node: &str, summary: Arc<Summary>, max_age: Duration) {
		if max_age.is_zero() {
			return;
		}
		let mut cache = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
		cache.retain(|_, (read_at, _)| read_at.elapsed() < max_age);
		cache.insert(node.to_owned(), (Instant::now(), summary));
	}
}

/// Where the deal's pods run: the nodes, and the claims mounted by the pods of each.
#[derive(Debug, Default)]
struct Placement {
	claims_by_node: BTreeMap<String, BTreeSet<String>>,
}

impl Placement {
	fn of(pods: &[Pod]) -> Self {
		let mut placement = Placement::default();
		for spec in pods.iter().filter_map(|p| p.spec.as_ref()) {
			// A pod not scheduled yet runs nowhere and mounts nothing.
			let Some(node) = spec.node_name.as_ref() else { continue };
			let claims = placement.claims_by_node.entry(node.clone()).or_default();
			let volumes = spec.volumes.iter().flatten();
			claims.extend(
				volumes
					.filter_map(|v| Some(v.persistent_volume_claim.as_ref()?.claim_name.clone())),
			);
		}
		placement
	}
}

/// Claims whose used bytes could not be read, each with why and whether that may pass on its
/// own.
#[derive(Debug, Default)]
struct Unread {
	/// Any claim no node reported, when the pods could not be listed: it may be mounted anywhere.
	all: Option<(String, bool)>,
	/// Claims mounted on nodes that were not read.
	claims: BTreeMap<String, (String, bool)>,
}

/// A sample of each of the deal's containers and pod networks (sorted by key), then its
/// storage under [`VOLUMES_SOURCE`] if it has claims.
pub(super) async fn sample(backend: &KubeBackend, deal: DealId) -> Sampled {
	let namespace = namespace_name(deal);
	let mut sampled = Sampled::default();
	let mut used = BTreeMap::<String, Option<u64>>::new();
	// Claims whose usage may be on a node that was not read, and why.
	let mut unread = Unread::default();
	let pods: Api<Pod> = Api::namespaced(backend.client.clone(), &namespace);
	let listed = backend
		.call("list pods", pods.list(&ListParams::default().labels(&deal_selector(deal))))
		.await;
	match listed {
		Ok(list) => {
			let placement = Placement::of(&list.items);
			let namespace = namespace.as_str();
			let nodes: Vec<String> = placement.claims_by_node.keys().cloned().collect();
			let read = futures::stream::iter(nodes)
				.map(|node| async move {
					let usage = node_usage(backend, &node, namespace).await;
					(node, usage)
				})
				.buffered(CONCURRENT_NODES)
				.collect::<Vec<_>>()
				.await;
			for (node, result) in read {
				match result {
					Ok(usage) => {
						sampled.samples.extend(usage.samples);
						for (claim, bytes) in usage.claims {
							let slot = used.entry(claim).or_default();
							*slot = (*slot).max(bytes);
						}
					}
					Err(e) => {
						let reason = format!("it is mounted on node {node}, which was not read");
						for claim in placement.claims_by_node.get(&node).into_iter().flatten() {
							unread.claims.insert(claim.clone(), (reason.clone(), e.is_transient()));
						}
						sampled.failures.push(MeteringFailure::new(Metered::Containers, &e));
					}
				}
			}
			sampled.samples.sort_by(|a, b| a.0.cmp(&b.0));
		}
		Err(e) => {
			unread.all = Some(("the deal's pods were not listed".to_owned(), e.is_transient()));
			sampled.failures.push(MeteringFailure::new(Metered::Containers, &e));
		}
	}
	match storage(backend, deal, &used, &unread).await {
		Ok(Some(sample)) => sampled.samples.push((VOLUMES_SOURCE.to_owned(), sample)),
		Ok(None) => {}
		Err(failure) => sampled.failures.push(failure),
	}
	sampled
}

/// The deal's usage on `node`.
async fn node_usage(
	backend: &KubeBackend,
	node: &str,
	namespace: &str,
) -> Result<NodeUsage, ClusterError> {
	node_summary(backend, node)
		.await?
		.usage(namespace)
		.map_err(|e| ClusterError::Other(format!("node {node}: {e}")))
}

/// The Summary of `node`, read lately or now.
async fn node_summary(backend: &KubeBackend, node: &str) -> Result<Arc<Summary>, ClusterError> {
	let max_age = backend.options.summary_max_age;
	if let Some(summary) = backend.summaries.get(node, max_age) {
		return Ok(summary);
	}
	let what = format!("read the kubelet stats of node {node}");
	let request = ::kube::core::Request::new("/api/v1/nodes")
		.get_subresource("proxy/stats/summary", node)
		.map_err(|e| ClusterError::Other(format!("{what}: {e}")))?;
	let body = match backend.timed(&what, backend.client.request_text(request)).await? {
		Ok(body) => body,
		// RBAC without `nodes/proxy`: nothing to wait for, the operator must grant it.
		Err(::kube::Error::Api(status)) if status.code == 403 => {
			return Err(ClusterError::Other(format!(
				"{what}: forbidden ({}); {RBAC_HINT}",
				status.message
			)))
		}
		Err(e) => return Err(super::error::map(&what, e)),
	};
	let summary =
		Arc::new(Summary::parse(&body).map_err(|e| ClusterError::Other(format!("{what}: {e}")))?);
	backend.summaries.put(node, summary.clone(), max_age);
	Ok(summary)
}

/// The deal's storage now: each claim's used bytes as its volume reports them; `None` if it has
/// no claims. A claim that no pod reports, being mounted by none (its pods scaled to zero or not
/// scheduled) or on a volume that does not report usage, counts as its provisioned capacity, the
/// most it can hold. A claim mounted on a node that could not be read (or by pods that could
/// not be listed) is not guessed at: the sample leaves storage out, and the agent's meter spans
/// the gap with the next reading.
async fn storage(
	backend: &KubeBackend,
	deal: DealId,
	used: &BTreeMap<String, Option<u64>>,
	unread: &Unread,
) -> Result<Option<Sample>, MeteringFailure> {
	let claims: Api<PersistentVolumeClaim> =
		Api::namespaced(backend.client.clone(), &namespace_name(deal));
	let claims = backend
		.call("list claims", claims.list(&ListParams::default().labels(&deal_selector(deal))))
		.await
		.map_err(|e| MeteringFailure::new(Metered::Storage, &e))?;
	if claims.items.is_empty() {
		return Ok(None);
	}
	let mut storage_bytes = 0u64;
	for claim in &claims.items {
		let name = claim.metadata.name.as_deref().unwrap_or_default();
		let bytes = match used.get(name) {
			Some(Some(bytes)) => *bytes,
			Some(None) => capacity(claim),
			None => match unread.all.as_ref().or_else(|| unread.claims.get(name)) {
				Some((reason, transient)) => {
					return Err(MeteringFailure {
						what: Metered::Storage,
						error: format!("used bytes of claim {name}: {reason}"),
						transient: *transient,
					})
				}
				None => capacity(claim),
			},
		};
		storage_bytes = storage_bytes.saturating_add(bytes);
	}
	let at_millis = SystemTime::now()
		.duration_since(UNIX_EPOCH)
		.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
	Ok(Some(Sample { at_millis, storage_bytes, ..Sample::default() }))
}

/// A claim's provisioned capacity, or its request while it is not bound yet.
fn capacity(claim: &PersistentVolumeClaim) -> u64 {
	let provisioned = claim.status.as_ref().and_then(|s| s.capacity.as_ref());
	let requested = claim.spec.as_ref().and_then(|s| s.resources.as_ref()?.requests.as_ref());
	provisioned
		.and_then(|c| c.get("storage"))
		.or_else(|| requested.and_then(|r| r.get("storage")))
		.and_then(|q| quantity::units(&q.0))
		.unwrap_or(0)
}
