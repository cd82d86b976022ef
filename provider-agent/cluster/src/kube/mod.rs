//! The Kubernetes backend: deals' objects applied to a cluster with kube-rs.
//!
//! - [`Backend::apply`] server-side applies a deal's objects as the field manager
//!   `podchain-agent` (forcing conflicts: the agent owns these objects), namespace first and
//!   Deployment last, then deletes the deal's Secrets, claims, Services and Ingresses that are
//!   no longer wanted (found by label).
//!   The Deployment's strategy is chosen from the quota the apply returns (see `rollout.rs`):
//!   a rolling update with no downtime when the reservation has room for the new pods beside
//!   the old, `Recreate` otherwise, so that new pods are never refused by the quota.
//! - [`Backend::remove`] deletes the namespace; Kubernetes collects everything in it.
//! - [`Backend::deployed`] and [`Backend::status`] read namespaces, the Deployment and its pods.
//!   Only what will not pass on its own is [`DealStatus::Failed`]: a rollout past its progress
//!   deadline, a pod of the current manifest in a crash loop or unable to pull its image, a pod
//!   spec refused by admission. A quota refusal while old pods terminate, quota usage not yet
//!   computed or the `default` ServiceAccount not yet created in a new namespace, an
//!   unschedulable pod or a first failed pull are [`DealStatus::Degraded`], with the cluster's
//!   reason; pods of an older manifest, and pods being deleted, are not judged at all.
//! - [`Backend::rolled_out`] reads the Deployment: its template carries the manifest's hash and
//!   the rollout is complete (observed, every replica updated and ready, no old one left).
//! - [`Backend::sample`] reads the kubelets' Summary API through the API server
//!   (`/api/v1/nodes/{node}/proxy/stats/summary`, for each node that runs one of the deal's
//!   pods; see `usage.rs` and `summary.rs`): cumulative counters, not rates, so nothing is
//!   estimated and no counter is kept between samples (a node's Summary serves the deals
//!   sampled right after, see [`KubeOptions::summary_max_age`]). Per container: CPU time
//!   (`usageCoreNanoSeconds`), memory working set, ephemeral storage (rootfs and logs); per pod:
//!   egress (`txBytes` of its network namespace); per claim: used bytes (the provisioned
//!   capacity where no volume reports them), under the source [`VOLUMES_SOURCE`]. Sources are
//!   keyed so that a restarted container, a replaced pod or a pod's network counters are
//!   neither lost nor counted twice by the agent's meter. A node that cannot be read is a
//!   [`MeteringFailure`](crate::MeteringFailure) for what it runs, the other nodes' readings are
//!   kept; a 403 (RBAC without `get` on `nodes/proxy`) is not transient and names the rule to
//!   add. That permission is not read-only: it opens the kubelets' whole API, exec included
//!   (its WebSocket upgrade is a GET), so the agent's token weighs as much as an admin's.
//! - [`Backend::logs`] reads each container's log with timestamps.
//! - [`KubeBackend::read_volume`] reads a deal's volume for a storage proof: a `tar` archive,
//!   through `exec`, from a short-lived read-only pod of the agent's (see `snapshot.rs`).
//!
//! Errors: no answer, a server error (5xx), 401, 404, 408, 409 or 429 are
//! [`ClusterError::Unavailable`]; other refusals (4xx: invalid, forbidden, over quota) are
//! [`ClusterError::Refused`]; an answer that does not parse is [`ClusterError::Other`].

mod apply;
mod endpoints;
mod error;
mod images;
mod logs;
mod quantity;
mod rollout;
mod snapshot;
mod status;
mod summary;
#[cfg(test)]
mod tests;
mod usage;

pub use snapshot::{VolumeArchive, VolumeRead, SNAPSHOT_POD_START};
pub use summary::{NodeUsage, Summary, NETWORK};
pub use usage::VOLUMES_SOURCE;

pub use images::{deal_of_repository, repository, DeliveredImages};

use crate::{
	Backend, ClusterError, DealId, DealObjects, DealStatus, Deployed, ImageArchive, LogLine,
	Sampled,
};
use ::kube::{config::KubeConfigOptions, Client, Config};
use async_trait::async_trait;
use podchain_manifest::DeliveredImage;
use std::sync::Arc;
use std::{future::Future, path::Path, time::Duration};

/// Tunables of [`KubeBackend`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeOptions {
	/// Longest wait for one API request before the call fails as
	/// [`ClusterError::Unavailable`].
	pub request_timeout: Duration,
	/// Most bytes of one container's log read by one [`Backend::logs`] call; lines past it are
	/// left for the next call.
	pub log_limit_bytes: u32,
	/// How long a node's Summary, read for one deal's sample, serves the samples of the other
	/// deals on that node (zero: each sample reads its nodes again). Keep it below the agent's
	/// sample interval.
	pub summary_max_age: Duration,
	/// Where the nodes pull images publishers deliver from; `None`: such deals are refused.
	pub delivered_images: Option<DeliveredImages>,
}

impl Default for KubeOptions {
	fn default() -> Self {
		KubeOptions {
			request_timeout: Duration::from_secs(30),
			log_limit_bytes: 1 << 20,
			summary_max_age: Duration::from_secs(2),
			delivered_images: None,
		}
	}
}

/// Runs deals on a Kubernetes cluster. One per agent (share it behind an `Arc`): its samples of
/// the deals on one node share that node's Summary.
pub struct KubeBackend {
	client: Client,
	options: KubeOptions,
	/// The nodes' Summaries read lately.
	summaries: usage::SummaryCache,
}

impl KubeBackend {
	/// A backend using `client`.
	pub fn new(client: Client, options: KubeOptions) -> Self {
		KubeBackend { client, options, summaries: usage::SummaryCache::default() }
	}

	/// A backend for the cluster of the kubeconfig at `path`, or, without a path, the usual
	/// places: `KUBECONFIG`, `~/.kube/config`, then the pod's service account when the agent
	/// runs in the cluster.
	pub async fn from_kubeconfig(
		path: Option<&Path>,
		options: KubeOptions,
	) -> Result<Self, ClusterError> {
		let config = match path {
			Some(path) => {
				let kubeconfig = ::kube::config::Kubeconfig::read_from(path).map_err(|e| {
					ClusterError::Other(format!("kubeconfig {}: {e}", path.display()))
				})?;
				Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
					.await
					.map_err(|e| {
						ClusterError::Other(format!("kubeconfig {}: {e}", path.display()))
					})?
			}
			None => Config::infer()
				.await
				.map_err(|e| ClusterError::Other(format!("no Kubernetes configuration: {e}")))?,
		};
		let client = Client::try_from(config)
			.map_err(|e| ClusterError::Other(format!("Kubernetes client: {e}")))?;
		Ok(Self::new(client, options))
	}

	/// Runs one API request under the request timeout, mapping its error.
	async fn call<T>(
		&self,
		what: &str,
		request: impl Future<Output = Result<T, ::kube::Error>>,
	) -> Result<T, ClusterError> {
		self.timed(what, request).await?.map_err(|err| error::map(what, err))
	}

	/// As [`Self::call`], but an API error with one of the `allowed` status codes is `None`
	/// (a 404 on delete, say).
	async fn call_allowing<T>(
		&self,
		what: &str,
		request: impl Future<Output = Result<T, ::kube::Error>>,
		allowed: &[u16],
	) -> Result<Option<T>, ClusterError> {
		match self.timed(what, request).await? {
			Ok(value) => Ok(Some(value)),
			Err(::kube::Error::Api(status)) if allowed.contains(&status.code) => Ok(None),
			Err(err) => Err(error::map(what, err)),
		}
	}

	/// `request`'s own result, or [`ClusterError::Unavailable`] if it took too long.
	async fn timed<T>(
		&self,
		what: &str,
		request: impl Future<Output = Result<T, ::kube::Error>>,
	) -> Result<Result<T, ::kube::Error>, ClusterError> {
		let timeout = self.options.request_timeout;
		tokio::time::timeout(timeout, request)
			.await
			.map_err(|_| ClusterError::Unavailable(format!("{what}: no answer within {timeout:?}")))
	}
}

#[async_trait]
impl Backend for KubeBackend {
	fn runs_delivered_images(&self) -> bool {
		self.options.delivered_images.is_some()
	}

	/// The nodes pull the image from the agent's registry: nothing to do in the cluster.
	async fn stage_image(
		&self,
		deal: DealId,
		image: &DeliveredImage,
		_archive: Arc<dyn ImageArchive>,
	) -> Result<String, ClusterError> {
		match &self.options.delivered_images {
			Some(images) => Ok(images.reference(deal, image)),
			None => Err(ClusterError::Refused(
				"this cluster is not set up for images delivered by publishers".into(),
			)),
		}
	}

	#[tracing::instrument(skip_all, fields(deal = objects.deal))]
	async fn apply(&self, objects: &DealObjects) -> Result<(), ClusterError> {
		apply::apply(self, objects).await
	}

	#[tracing::instrument(skip(self))]
	async fn remove(&self, deal: DealId) -> Result<(), ClusterError> {
		apply::remove(self, deal).await
	}

	#[tracing::instrument(skip(self))]
	async fn deployed(&self) -> Result<Vec<Deployed>, ClusterError> {
		status::deployed(self).await
	}

	#[tracing::instrument(skip(self))]
	async fn status(&self, deal: DealId) -> Result<DealStatus, ClusterError> {
		status::status(self, deal).await
	}

	#[tracing::instrument(skip(self, manifest_hash))]
	async fn rolled_out(
		&self,
		deal: DealId,
		manifest_hash: [u8; 32],
	) -> Result<bool, ClusterError> {
		status::rolled_out(self, deal, &manifest_hash).await
	}

	#[tracing::instrument(skip(self))]
	async fn endpoints(
		&self,
		deal: DealId,
		port: u16,
	) -> Result<Vec<std::net::SocketAddr>, ClusterError> {
		endpoints::endpoints(self, deal, port).await
	}

	#[tracing::instrument(skip(self))]
	async fn set_awake(&self, deal: DealId, awake: bool) -> Result<(), ClusterError> {
		// The scale subresource: only the replica count changes; the next apply (a new
		// manifest) starts the deal again at its starting count.
		let deployments: ::kube::Api<k8s_openapi::api::apps::v1::Deployment> =
			::kube::Api::namespaced(self.client.clone(), &crate::objects::namespace_name(deal));
		let patch = serde_json::json!({ "spec": { "replicas": u8::from(awake) } });
		let params = ::kube::api::PatchParams::default();
		let patch = ::kube::api::Patch::Merge(&patch);
		let scaled = deployments.patch_scale(crate::objects::DEPLOYMENT_NAME, &params, &patch);
		match self.call_allowing("scale deployment", scaled, &[404]).await? {
			Some(_) => Ok(()),
			None => Err(ClusterError::Refused(format!("deal {deal} has no Deployment to scale"))),
		}
	}

	#[tracing::instrument(skip(self))]
	async fn sample(&self, deal: DealId) -> Sampled {
		usage::sample(self, deal).await
	}

	#[tracing::instrument(skip(self))]
	async fn logs(
		&self,
		deal: DealId,
		since_ms: u64,
		max_lines: u32,
	) -> Result<Vec<LogLine>, ClusterError> {
		logs::logs(self, deal, since_ms, max_lines).await
	}
}
