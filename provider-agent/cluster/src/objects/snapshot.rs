//! The storage-proof pod: a short-lived pod in a deal's namespace that mounts one of its claims
//! read-only, so that the agent can read the volume (`tar` through `exec`) and snapshot it.
//!
//! It passes the namespace's Pod Security `restricted` level as the deal's own pods do, and runs
//! as the same user ([`BuildOptions::run_as_user`]), so it reads what the deal's containers
//! wrote. Its CPU and memory fall under the `snapshot` quota (by its priority class,
//! [`SNAPSHOT_PRIORITY_CLASS`]), not under what the deal reserved. It carries no deal label: the
//! deal's status and usage never see it, so the publisher is not billed for it.

use super::{
	claim_name, namespace_name,
	policy::bytes,
	workload::{restricted_container, restricted_pod},
	BuildOptions, MANAGED_BY_LABEL, MANAGER,
};
use crate::DealId;
use k8s_openapi::{
	api::core::v1::{
		Container, PersistentVolumeClaimVolumeSource, Pod, PodSpec, ResourceRequirements,
		SecurityContext, Volume, VolumeMount,
	},
	apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::ObjectMeta},
};
use podchain_manifest::{ByteSize, Cpu, Manifest};
use std::collections::BTreeMap;

/// PriorityClass of the storage-proof pod; `provider-agent/deploy/kubernetes/priorityclass.yaml`
/// creates it.
pub const SNAPSHOT_PRIORITY_CLASS: &str = "podchain-snapshot";
/// Label of the storage-proof pod: the deal whose volume it reads.
pub const SNAPSHOT_OF_LABEL: &str = "podchain.io/snapshot-of";
/// Ephemeral storage of the storage-proof pod (its log; its root filesystem is read-only).
pub const SNAPSHOT_EPHEMERAL_STORAGE: ByteSize = ByteSize::from_bytes(16 << 20);
/// Where the pod mounts the claim.
pub const SNAPSHOT_MOUNT_PATH: &str = "/volume";

/// The provider's choices for the storage-proof pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotPodOptions {
	/// Image with `sleep` and `tar` (busybox's or GNU's) on its `PATH`.
	pub image: String,
	/// Its CPU, at most that of the deal's largest container (the namespace's LimitRange).
	pub cpu: Cpu,
	/// Its memory, at most that of the deal's largest container.
	pub memory: ByteSize,
	/// Seconds the pod lives at most: it goes even if the agent never deletes it.
	pub deadline_seconds: u32,
}

impl Default for SnapshotPodOptions {
	fn default() -> Self {
		SnapshotPodOptions {
			image: "docker.io/library/busybox:1.36".into(),
			cpu: Cpu::from_millis(100),
			memory: ByteSize::from_bytes(64 << 20),
			deadline_seconds: 3600,
		}
	}
}

/// The storage-proof pod's CPU and memory for a deal running `manifest`: the options', capped
/// at the deal's largest container, which the namespace's LimitRange allows any container.
pub fn snapshot_resources(manifest: &Manifest, options: &BuildOptions) -> (Cpu, ByteSize) {
	let cpu = manifest.containers.iter().map(|c| c.resources.cpu).max().unwrap_or_default();
	let memory = manifest.containers.iter().map(|c| c.resources.memory).max().unwrap_or_default();
	(options.snapshot.cpu.min(cpu), options.snapshot.memory.min(memory))
}

/// Name of the storage-proof pod reading manifest volume `volume`.
pub fn snapshot_pod_name(volume: &str) -> String {
	format!("snapshot-{volume}")
}

/// The pod reading manifest volume `volume` of `deal`, with the CPU and memory of the
/// namespace's `snapshot` quota, on `node` if given (a `ReadWriteOnce` claim in use by the
/// deal's pods can only be mounted on their node).
pub fn snapshot_pod(
	deal: DealId,
	volume: &str,
	node: Option<&str>,
	cpu: Quantity,
	memory: Quantity,
	options: &BuildOptions,
) -> Pod {
	let resources = BTreeMap::from([
		("cpu".to_owned(), cpu),
		("memory".to_owned(), memory),
		("ephemeral-storage".to_owned(), bytes(SNAPSHOT_EPHEMERAL_STORAGE)),
	]);
	let deadline = options.snapshot.deadline_seconds;
	let container = Container {
		name: "read".into(),
		image: Some(options.snapshot.image.clone()),
		// Something to `exec` into: the reading itself is the agent's `tar` call.
		command: Some(vec!["sleep".into(), deadline.to_string()]),
		volume_mounts: Some(vec![VolumeMount {
			name: "volume".into(),
			mount_path: SNAPSHOT_MOUNT_PATH.into(),
			read_only: Some(true),
			..VolumeMount::default()
		}]),
		resources: Some(ResourceRequirements {
			requests: Some(resources.clone()),
			limits: Some(resources),
			..ResourceRequirements::default()
		}),
		security_context: Some(SecurityContext {
			read_only_root_filesystem: Some(true),
			..restricted_container()
		}),
		..Container::default()
	};
	Pod {
		metadata: ObjectMeta {
			name: Some(snapshot_pod_name(volume)),
			namespace: Some(namespace_name(deal)),
			labels: Some(BTreeMap::from([
				(MANAGED_BY_LABEL.to_owned(), MANAGER.to_owned()),
				(SNAPSHOT_OF_LABEL.to_owned(), deal.to_string()),
			])),
			..ObjectMeta::default()
		},
		spec: Some(PodSpec {
			containers: vec![container],
			volumes: Some(vec![Volume {
				name: "volume".into(),
				persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
					claim_name: claim_name(volume),
					read_only: Some(true),
				}),
				..Volume::default()
			}]),
			node_name: node.map(str::to_owned),
			priority_class_name: Some(SNAPSHOT_PRIORITY_CLASS.into()),
			restart_policy: Some("Never".into()),
			active_deadline_seconds: Some(i64::from(deadline)),
			termination_grace_period_seconds: Some(1),
			automount_service_account_token: Some(false),
			enable_service_links: Some(false),
			// No `fsGroup`: it would have the kubelet change the volume's ownership.
			security_context: Some(restricted_pod(options.run_as_user)),
			..PodSpec::default()
		}),
		..Pod::default()
	}
}
