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
use podchain_manifest::DeliveredImage;

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
	/// Bytes sent since the pod's network namespace was made: set on a pod's own
	/// `<pod>/<network>` source, 0 on its containers' (they share the namespace).
	pub egress_bytes: u64,
}

/// What a backend meters, each read from its own source so that one failing does not stop
/// the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metered {
	/// CPU and memory of the containers, and pods' egress (Kubernetes: the kubelets' Summary
	/// API; podman: its stats).
	Containers,
	/// Storage (Kubernetes: the deal's volume claims; podman: its disk usage).
	Storage,
}

impl Metered {
	/// A short name, for logs and metric labels.
	pub fn as_str(self) -> &'static str {
		match self {
			Metered::Containers => "containers",
			Metered::Storage => "storage",
		}
	}
}

/// A source of usage that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeteringFailure {
	/// What was not metered.
	pub what: Metered,
	/// Why.
	pub error: String,
	/// Whether it may pass on its own (an outage) rather than need the provider's attention
	/// (the agent not allowed to read the kubelets' stats, say).
	pub transient: bool,
}

impl MeteringFailure {
	/// `what` could not be read because of `error`.
	pub fn new(what: Metered, error: &ClusterError) -> Self {
		MeteringFailure { what, error: error.to_string(), transient: error.is_transient() }
	}
}

/// What one [`Backend::sample`] read, and what it could not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sampled {
	/// Readings, keyed by a name stable across samples: a container's (`<pod>/<container>`
	/// on podman, `<pod>/<container>@<start>` on Kubernetes), a pod's network
	/// (`<pod>/<network>`), or [`kube::VOLUMES_SOURCE`].
	pub samples: Vec<(String, Sample)>,
	/// The sources that could not be read: the deal's usage of those goes unmetered for
	/// this sample, which the agent reports loudly.
	pub failures: Vec<MeteringFailure>,
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
///
/// Only [`DealStatus::Failed`] is terminal: the pods will not run without a change (a new
/// manifest, an image that exists). Every other state may pass on its own, and a client
/// waiting for a deal waits through them: [`DealStatus::Starting`] and
/// [`DealStatus::Updating`] are the normal way to [`DealStatus::Running`];
/// [`DealStatus::Degraded`] says why it is slower than that (a quota refusal while the old pods
/// terminate, a namespace not initialized yet, a container restarting, an image pull retried).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DealStatus {
	/// Nothing of the deal is in the cluster.
	Absent,
	/// The deal's first pods are coming up: `ready` of `wanted` replicas are running and ready.
	Starting {
		/// Ready replicas.
		ready: u32,
		/// Replicas asked for.
		wanted: u32,
	},
	/// The deal's pods are being replaced by those of a new manifest: `ready` of `wanted`
	/// replicas run the new manifest and are ready.
	Updating {
		/// Ready replicas of the new manifest.
		ready: u32,
		/// Replicas asked for.
		wanted: u32,
	},
	/// Not all replicas are ready, for a reason the cluster gave that may pass on its own.
	Degraded {
		/// Ready replicas (of the manifest being rolled out, during an update).
		ready: u32,
		/// Replicas asked for.
		wanted: u32,
		/// What the cluster reported.
		reason: String,
	},
	/// All replicas are running and ready.
	Running,
	/// A deal that scales to zero, stopped while idle: the next request through the gateway
	/// starts it. Its volumes and network stay.
	Idle,
	/// The pods failed and will not run as they are (image missing, crash loop, a start
	/// podman refused, a rollout past its deadline); `reason` says why.
	Failed {
		/// What the cluster reported.
		reason: String,
	},
}

impl DealStatus {
	/// Whether the deal's pods will not run without a change.
	pub fn is_terminal(&self) -> bool {
		matches!(self, DealStatus::Failed { .. })
	}
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

	/// Whether every pod `deal` wants runs the manifest `manifest_hash` and is ready, with no
	/// pod of another manifest left serving: the rollout of that manifest is complete. What
	/// the agent waits for before acknowledging a manifest update on chain.
	async fn rolled_out(&self, deal: DealId, manifest_hash: [u8; 32])
		-> Result<bool, ClusterError>;

	/// Where the agent reaches `deal`'s pods on `port`, the gateway's upstreams: on podman each
	/// running pod's address on the deal's own network, on Kubernetes the deal's Service for
	/// that port. Empty when nothing of the deal serves.
	async fn endpoints(
		&self,
		deal: DealId,
		port: u16,
	) -> Result<Vec<std::net::SocketAddr>, ClusterError>;

	/// Starts (`awake`) or stops `deal`'s pods, keeping everything else (volumes, network,
	/// manifest): how a deal scales to zero and back. Idempotent.
	async fn set_awake(&self, deal: DealId, awake: bool) -> Result<(), ClusterError>;

	/// A usage reading of each of `deal`'s containers and pods' networks, keyed as
	/// [`Sampled::samples`] says, and the sources that could not be read. Each [`Metered`] source
	/// is read on its own where the backend can: storage is still read when the containers'
	/// CPU and memory cannot be.
	async fn sample(&self, deal: DealId) -> Sampled;

	/// Up to `max_lines` log lines of `deal`'s containers written at or after `since_ms`,
	/// oldest first.
	async fn logs(
		&self,
		deal: DealId,
		since_ms: u64,
		max_lines: u32,
	) -> Result<Vec<LogLine>, ClusterError>;
	/// Whether the backend runs images that publishers deliver (see [`Backend::stage_image`]).
	fn runs_delivered_images(&self) -> bool {
		false
	}

	/// Makes a delivered image available to `deal`'s pods and returns the reference they run
	/// it by ([`objects::DealSpec::images`]). Idempotent: an image already staged is not
	/// staged again.
	async fn stage_image(
		&self,
		deal: DealId,
		image: &DeliveredImage,
		archive: std::sync::Arc<dyn ImageArchive>,
	) -> Result<String, ClusterError> {
		let _ = (deal, archive);
		Err(ClusterError::Refused(format!(
			"this cluster does not run images delivered by publishers ({}@{})",
			image.name,
			image.digest_text()
		)))
	}
}

/// A delivered image the agent holds, written out as an OCI archive (`oci-layout`,
/// `index.json`, `blobs/`) for a backend that loads images from one.
pub trait ImageArchive: Send + Sync {
	/// Writes the archive, its index naming the image `ref_name`.
	fn write_archive(&self, ref_name: &str, out: &mut dyn std::io::Write) -> std::io::Result<()>;
}
