//! Reading a deal's volume for a storage proof: a short-lived pod mounts the claim read-only
//! (see `objects/snapshot.rs`) and the agent reads a `tar` archive of it through `exec`.
//!
//! One volume at a time: the namespace's `snapshot` quota allows one such pod. A leftover pod
//! (an agent killed mid-read) is deleted first; the pod is deleted after every read, and
//! goes by itself at its deadline if the agent never comes back. The archive counts only if
//! `tar` exited successfully: a cut connection or a failed read is an error, never a
//! truncated archive taken for the volume.

use super::{apply::deal_selector, KubeBackend};
use crate::{
	objects::{
		claim_name, namespace_name, snapshot_pod, snapshot_pod_name, BuildOptions,
		SNAPSHOT_MOUNT_PATH, SNAPSHOT_QUOTA_NAME,
	},
	ClusterError, DealId,
};
use ::kube::api::{Api, AttachParams, DeleteParams, ListParams, PostParams};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, ResourceQuota};
use std::{
	future::Future,
	pin::Pin,
	time::{Duration, Instant},
};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The archive of a volume, as `tar` writes it in the storage-proof pod.
pub type VolumeArchive = Pin<Box<dyn AsyncRead + Send>>;

/// What [`KubeBackend::read_volume`] read.
#[derive(Debug)]
pub struct VolumeRead<T> {
	/// What the consumer made of the archive.
	pub consumed: T,
	/// Whether the archive was the whole volume: `tar` exited successfully.
	pub complete: Result<(), ClusterError>,
}

/// How long a storage-proof pod may take to start (its image pulled on first use).
pub const SNAPSHOT_POD_START: Duration = Duration::from_secs(180);
/// How long to wait for `tar`'s exit status once its archive is read.
const EXIT_STATUS_WAIT: Duration = Duration::from_secs(30);
/// Most bytes of `tar`'s error output kept for the error.
const STDERR_KEPT: usize = 2048;

impl KubeBackend {
	/// The manifest names of `deal`'s volumes, from its claims.
	pub async fn volume_names(&self, deal: DealId) -> Result<Vec<String>, ClusterError> {
		let claims: Api<PersistentVolumeClaim> =
			Api::namespaced(self.client.clone(), &namespace_name(deal));
		let listed = self
			.call(
				"list claims",
				claims.list_metadata(&ListParams::default().labels(&deal_selector(deal))),
			)
			.await?;
		let mut names: Vec<String> = listed
			.items
			.iter()
			.filter_map(|claim| claim.metadata.name.as_deref())
			.filter_map(|name| name.strip_prefix(claim_name("").as_str()))
			.map(str::to_owned)
			.collect();
		names.sort();
		Ok(names)
	}

	/// Has `consume` read a `tar` archive of manifest volume `volume` of `deal` (paths relative
	/// to the volume's root, `./` first), from a storage-proof pod built with `options`; its
	/// result, and whether `tar` exited successfully (an error otherwise: nothing was read).
	/// The pod is deleted in every case.
	pub async fn read_volume<T, F, Fut>(
		&self,
		deal: DealId,
		volume: &str,
		options: &BuildOptions,
		consume: F,
	) -> Result<VolumeRead<T>, ClusterError>
	where
		F: FnOnce(VolumeArchive) -> Fut,
		Fut: Future<Output = T>,
	{
		let namespace = namespace_name(deal);
		let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
		let name = snapshot_pod_name(volume);
		let pod = self.snapshot_pod_for(deal, volume, options).await?;
		self.delete_pod(&pods, &name).await?;
		self.call("create the storage-proof pod", pods.create(&PostParams::default(), &pod))
			.await
			.map_err(|e| explain_refusal(e, options))?;
		let read = self.read_in(&pods, &name, consume).await;
		if let Err(e) = self.delete_pod(&pods, &name).await {
			tracing::warn!(deal, pod = %name, error = %e, "cannot delete the storage-proof pod; it goes at its deadline");
		}
		read
	}

	/// The pod for `volume` of `deal`: on the node of a running pod of the deal that mounts
	/// the claim, with the CPU and memory of the deal's `snapshot` quota.
	async fn snapshot_pod_for(
		&self,
		deal: DealId,
		volume: &str,
		options: &BuildOptions,
	) -> Result<Pod, ClusterError> {
		let namespace = namespace_name(deal);
		let quotas: Api<ResourceQuota> = Api::namespaced(self.client.clone(), &namespace);
		let quota = self
			.call_allowing("read the snapshot quota", quotas.get(SNAPSHOT_QUOTA_NAME), &[404])
			.await?
			.ok_or_else(|| {
				ClusterError::Refused(format!(
					"namespace {namespace} has no `{SNAPSHOT_QUOTA_NAME}` quota (deployed by an \
					 older agent): its volumes can be read once its objects are applied again"
				))
			})?;
		let hard = quota.spec.and_then(|s| s.hard).unwrap_or_default();
		let (Some(cpu), Some(memory)) = (hard.get("limits.cpu"), hard.get("limits.memory")) else {
			return Err(ClusterError::Refused(format!(
				"quota {SNAPSHOT_QUOTA_NAME} of {namespace} limits no CPU or memory"
			)));
		};
		let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
		let listed = self
			.call("list pods", pods.list(&ListParams::default().labels(&deal_selector(deal))))
			.await?;
		let claim = claim_name(volume);
		let node = listed.items.iter().find_map(|pod| {
			let spec = pod.spec.as_ref()?;
			let running = pod.status.as_ref()?.phase.as_deref() == Some("Running");
			let mounts =
				spec.volumes.iter().flatten().any(|v| {
					v.persistent_volume_claim.as_ref().is_some_and(|c| c.claim_name == claim)
				});
			(running && mounts && pod.metadata.deletion_timestamp.is_none())
				.then(|| spec.node_name.clone())
				.flatten()
		});
		Ok(snapshot_pod(deal, volume, node.as_deref(), cpu.clone(), memory.clone(), options))
	}

	/// Waits for pod `name` to run, then has `consume` read `tar`'s archive of the volume.
	async fn read_in<T, F, Fut>(
		&self,
		pods: &Api<Pod>,
		name: &str,
		consume: F,
	) -> Result<VolumeRead<T>, ClusterError>
	where
		F: FnOnce(VolumeArchive) -> Fut,
		Fut: Future<Output = T>,
	{
		self.wait_running(pods, name).await?;
		let command = ["tar", "-c", "-f", "-", "-C", SNAPSHOT_MOUNT_PATH, "."];
		let params = AttachParams {
			stdin: false,
			stdout: true,
			stderr: true,
			max_stdout_buf_size: Some(1 << 20),
			..AttachParams::default()
		};
		let mut process = self.call("exec tar", pods.exec(name, command, &params)).await?;
		let (Some(stdout), Some(mut stderr), Some(status)) =
			(process.stdout(), process.stderr(), process.take_status())
		else {
			return Err(ClusterError::Other("exec without its streams".into()));
		};
		// Drained beside the archive: a full stderr pipe would stall tar.
		let errors = tokio::spawn(async move {
			let mut kept = Vec::new();
			let mut buffer = [0u8; 1024];
			while let Ok(read) = stderr.read(&mut buffer).await {
				if read == 0 {
					break;
				}
				let room = STDERR_KEPT.saturating_sub(kept.len());
				kept.extend_from_slice(&buffer[..read.min(room)]);
			}
			String::from_utf8_lossy(&kept).trim().to_owned()
		});
		let consumed = consume(Box::pin(stdout)).await;
		let status = tokio::time::timeout(EXIT_STATUS_WAIT, status).await.ok().flatten();
		process.abort();
		let errors = errors.await.unwrap_or_default();
		let complete = match status {
			Some(status) if status.status.as_deref() == Some("Success") => Ok(()),
			Some(status) => Err(ClusterError::Other(format!(
				"tar in the storage-proof pod failed: {}{}",
				status.message.unwrap_or_default(),
				if errors.is_empty() { String::new() } else { format!(" ({errors})") }
			))),
			None => Err(ClusterError::Unavailable(format!(
				"reading the volume was cut short: no exit status from tar{}",
				if errors.is_empty() { String::new() } else { format!(" ({errors})") }
			))),
		};
		Ok(VolumeRead { consumed, complete })
	}

	/// Waits for pod `name` to run; fails early on what will not pass by itself.
	async fn wait_running(&self, pods: &Api<Pod>, name: &str) -> Result<(), ClusterError> {
		let started = Instant::now();
		let mut last = String::from("not created yet");
		while started.elapsed() < SNAPSHOT_POD_START {
			if let Some(pod) =
				self.call_allowing("read the storage-proof pod", pods.get(name), &[404]).await?
			{
				let status = pod.status.unwrap_or_default();
				match status.phase.as_deref() {
					Some("Running") => return Ok(()),
					Some(phase @ ("Succeeded" | "Failed")) => {
						let why = status.message.or(status.reason).unwrap_or_default();
						return Err(ClusterError::Other(format!(
							"the storage-proof pod ended ({phase}) before it was read: {why}"
						)));
					}
					phase => last = phase.unwrap_or("Pending").to_owned(),
				}
				let waiting = status
					.container_statuses
					.iter()
					.flatten()
					.filter_map(|c| c.state.as_ref()?.waiting.as_ref())
					.find(|w| {
						matches!(
							w.reason.as_deref(),
							Some("ImagePullBackOff" | "ErrImagePull" | "InvalidImageName")
								| Some("CreateContainerConfigError" | "CreateContainerError")
						)
					});
				if let Some(waiting) = waiting {
					return Err(ClusterError::Other(format!(
						"the storage-proof pod cannot start: {}: {}",
						waiting.reason.as_deref().unwrap_or_default(),
						waiting.message.as_deref().unwrap_or_default()
					)));
				}
				if let Some(condition) = status.conditions.iter().flatten().find(|c| {
					c.type_ == "PodScheduled" && c.status == "False" && c.message.is_some()
				}) {
					last = format!("unscheduled: {}", condition.message.as_deref().unwrap_or(""));
				}
			}
			tokio::time::sleep(Duration::from_millis(500)).await;
		}
		Err(ClusterError::Unavailable(format!(
			"the storage-proof pod did not start within {SNAPSHOT_POD_START:?} ({last})"
		)))
	}

	/// Deletes pod `name` at once and waits until it is gone (the `snapshot` quota holds one).
	async fn delete_pod(&self, pods: &Api<Pod>, name: &str) -> Result<(), ClusterError> {
		let now = DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::background() };
		let deleted = self
			.call_allowing("delete the storage-proof pod", pods.delete(name, &now), &[404])
			.await?;
		if deleted.is_none() {
			return Ok(());
		}
		let started = Instant::now();
		while started.elapsed() < self.options.request_timeout {
			let pod =
				self.call_allowing("read the storage-proof pod", pods.get(name), &[404]).await?;
			if pod.is_none() {
				return Ok(());
			}
			tokio::time::sleep(Duration::from_millis(250)).await;
		}
		Err(ClusterError::Unavailable(format!("storage-proof pod {name} is not gone yet")))
	}
}

/// A refusal of the storage-proof pod, with what the provider has to do about it.
fn explain_refusal(error: ClusterError, options: &BuildOptions) -> ClusterError {
	match error {
		ClusterError::Refused(message) if message.contains("PriorityClass") => {
			ClusterError::Refused(format!(
				"{message}: create it from provider-agent/deploy/kubernetes/priorityclass.yaml"
			))
		}
		ClusterError::Refused(message) if message.contains("forbidden") => {
			ClusterError::Refused(format!(
				"{message} (the storage-proof pod: image {}, user {})",
				options.snapshot.image, options.run_as_user
			))
		}
		other => other,
	}
}
