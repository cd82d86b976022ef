//! # podchain cluster
//!
//! Where a provider's agent runs deals' pods. The agent builds one set of Kubernetes objects
//! per deal ([`DealObjects`], from [`objects::build`]) and hands it to a [`Backend`]:
//!
//! - [`kube`]: a Kubernetes cluster through kube-rs, the production path;
//! - [`podman`]: podman on one machine through its REST API (`play/kube`), the same objects
//!   rendered as YAML, so real containers run with the same limits.
//!
//! Backends are idempotent: applying the same deal twice changes nothing, removing a deal
//! that is not there succeeds. Their errors say whether a retry can help
//! ([`ClusterError::is_transient`]): the agent never tears a tenant down because a backend was
//! unreachable.

pub mod kube;
pub mod objects;
pub mod podman;

pub use objects::{DealObjects, DealSpec};

use async_trait::async_trait;

/// Identifier of a deal on chain.
pub type DealId = u64;

/// One reading of one container of a deal (see the agent's metering).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sample {
	/// When it was taken, in milliseconds since the Unix epoch.
	pub at_millis: u64,
	/// CPU time used since the container started, in nanoseconds.
	pub cpu_nanos: u64,
	/// Memory in use now, in bytes.
	pub memory_bytes: u64,
	/// Storage in use (or provisioned) now, in bytes.
	pub storage_bytes: u64,
	/// Bytes sent since the container started (0 where the backend cannot tell).
	pub egress_bytes: u64,
}

/// The manifest hash of a deal whose objects exist but were never fully applied: it matches
/// no manifest, so the agent applies the deal again (or removes it if the deal is gone).
pub const UNKNOWN_MANIFEST: [u8; 32] = [0; 32];

/// A deal found running in the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployed {
	/// The deal.
	pub deal: DealId,
	/// blake2-256 of the manifest its objects were built from.
	pub manifest_hash: [u8; 32],
}

/// How a deal's pods are doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DealStatus {
	/// Nothing of the deal is in the cluster.
	Absent,
	/// Objects exist; `ready` of `wanted` replicas are running and ready.
	Starting {
		/// Ready replicas.
		ready: u32,
		/// Replicas asked for.
		wanted: u32,
	},
	/// All replicas are running and ready.
	Running,
	/// The pods failed (image missing, crash loop...); `reason` says why.
	Failed {
		/// What the cluster reported.
		reason: String,
	},
}

/// One line of a container's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
	/// The container (`<pod>/<container>`).
	pub container: String,
	/// When it was written, in milliseconds since the Unix epoch.
	pub timestamp_ms: u64,
	/// Written to stderr rather than stdout.
	pub stderr: bool,
	/// The text, without its line break.
	pub text: String,
}

/// What went wrong in a backend.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
	/// The cluster or podman service could not be reached, or answered with a server error:
	/// retry later, never tear anything down because of it.
	#[error("cluster unavailable: {0}")]
	Unavailable(String),
	/// The cluster refused the deal's objects (invalid for it, quota, admission): retrying the
	/// same objects will not help.
	#[error("cluster refused the deal's objects: {0}")]
	Refused(String),
	/// Anything else (a response that did not parse, a local I/O error).
	#[error("{0}")]
	Other(String),
}

impl ClusterError {
	/// Whether retrying later may succeed.
	pub fn is_transient(&self) -> bool {
		matches!(self, ClusterError::Unavailable(_))
	}
}

/// A place that runs deals' pods.
#[async_trait]
pub trait Backend: Send + Sync {
	/// Makes the cluster run `objects`, creating what is missing and updating what changed
	/// (a new manifest rolls the pods). Idempotent.
	async fn apply(&self, objects: &DealObjects) -> Result<(), ClusterError>;

	/// Removes everything of `deal` (pods, services, volumes, secrets). Succeeds if nothing is
	/// there.
	async fn remove(&self, deal: DealId) -> Result<(), ClusterError>;

	/// The deals that have objects in the cluster, as labelled by [`objects`].
	async fn deployed(&self) -> Result<Vec<Deployed>, ClusterError>;

	/// How `deal`'s pods are doing.
	async fn status(&self, deal: DealId) -> Result<DealStatus, ClusterError>;

	/// A usage reading of each of `deal`'s containers, keyed by a name stable across samples
	/// (`<pod>/<container>`).
	async fn sample(&self, deal: DealId) -> Result<Vec<(String, Sample)>, ClusterError>;

	/// Up to `max_lines` log lines of `deal`'s containers written at or after `since_ms`,
	/// oldest first.
	async fn logs(
		&self,
		deal: DealId,
		since_ms: u64,
		max_lines: u32,
	) -> Result<Vec<LogLine>, ClusterError>;
}
