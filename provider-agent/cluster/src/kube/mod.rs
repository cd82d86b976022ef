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
//! - [`Backend::sample`] reads the metrics API (`metrics.k8s.io`, served by metrics-server),
//!   not Prometheus: it needs nothing else installed and no query language. The metrics API
//!   gives CPU as a rate over a window; the backend integrates it into the cumulative CPU time a
//!   [`Sample`](crate::Sample) carries: a reading of the same metrics window twice adds
//!   nothing. Storage is the deal's claims'
//!   capacity, reported under the source [`VOLUMES_SOURCE`], read apart from the metrics API
//!   so that storage is metered when CPU and memory cannot be. A metrics API that is not
//!   served (404: no metrics-server) is a [`ClusterError::Refused`] naming the fix, not an
//!   outage to wait out. Egress is always 0: the metrics
//!   API has no network counters, and the kubelet's summary API, which has them, needs the
//!   `nodes/proxy` permission, which reaches every kubelet's API and so nearly amounts to
//!   cluster-admin.
//! - [`Backend::logs`] reads each container's log with timestamps.
//!
//! Errors: no answer, a server error (5xx), 401, 404, 408, 409 or 429 are
//! [`ClusterError::Unavailable`]; other refusals (4xx: invalid, forbidden, over quota) are
//! [`ClusterError::Refused`]; an answer that does not parse is [`ClusterError::Other`].

mod apply;
mod error;
mod logs;
mod metrics;
mod quantity;
mod rollout;
mod status;
#[cfg(test)]
mod tests;

pub use metrics::VOLUMES_SOURCE;

use crate::{Backend, ClusterError, DealId, DealObjects, DealStatus, Deployed, LogLine, Sampled};
use ::kube::{config::KubeConfigOptions, Client, Config};
use async_trait::async_trait;
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
}

impl Default for KubeOptions {
	fn default() -> Self {
		KubeOptions { request_timeout: Duration::from_secs(30), log_limit_bytes: 1 << 20 }
	}
}

/// Runs deals on a Kubernetes cluster. One per agent (share it behind an `Arc`): it keeps the
/// CPU counters that [`Backend::sample`] integrates.
pub struct KubeBackend {
	client: Client,
	options: KubeOptions,
	/// Cumulative CPU time of each deal's containers, integrated from the metrics API's rates.
	cpu: metrics::CpuCounters,
}

impl KubeBackend {
	/// A backend using `client`.
	pub fn new(client: Client, options: KubeOptions) -> Self {
		KubeBackend { client, options, cpu: metrics::CpuCounters::default() }
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
	#[tracing::instrument(skip_all, fields(deal = objects.deal))]
	async fn apply(&self, objects: &DealObjects) -> Result<(), ClusterError> {
		apply::apply(self, objects).await
	}

	#[tracing::instrument(skip(self))]
	async fn remove(&self, deal: DealId) -> Result<(), ClusterError> {
		apply::remove(self, deal).await?;
		self.cpu.forget(deal);
		Ok(())
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
	async fn sample(&self, deal: DealId) -> Sampled {
		metrics::sample(self, deal).await
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
