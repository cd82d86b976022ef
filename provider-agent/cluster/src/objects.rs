//! The Kubernetes objects of one deal, built from its manifest and its terms on chain.
//!
//! [`build`] turns a [`DealSpec`] into a [`DealObjects`]: everything a deal runs lives in its own
//! namespace `podchain-deal-<id>`, and every object carries the deal and provider labels, the
//! `app.kubernetes.io/managed-by: podchain-agent` label and the manifest hash annotation, so a
//! backend can find, compare and prune a deal's objects by label alone.
//!
//! | object | name | what |
//! | --- | --- | --- |
//! | Namespace | `podchain-deal-<id>` | Pod Security `restricted` (enforce, warn, audit) |
//! | ResourceQuota | `reserved-pods` | pods but the storage-proof pod: the CPU and memory reserved on chain, `replicas.max + 1` pods |
//! | ResourceQuota | `reserved` | the storage and GPUs reserved on chain, ephemeral storage for `replicas.max + 1` pods, the claims and exposures |
//! | ResourceQuota | `snapshot` | the storage-proof pod (priority class `podchain-snapshot`): one small pod |
//! | LimitRange | `containers` | per-container default and max from the manifest (ephemeral storage from the options) |
//! | NetworkPolicy | `isolate` | ingress from the namespace, the ingress controller, and to exposed TCP ports; egress to the namespace, the cluster DNS (port 53) and public addresses only |
//! | Secret | `secret-<name>` | one per manifest secret |
//! | PersistentVolumeClaim | `vol-<name>` | one per manifest volume, `ReadWriteOnce` |
//! | Deployment | `app` | `replicas.min` pods (`replicas.max` for a deal that scales to zero, until idle), requests = limits (ephemeral storage included), restricted security context |
//! | Service | `http-<port>` / `tcp-<port>` | ClusterIP per HTTP port; NodePort (or LoadBalancer) per TCP port |
//! | Ingress | `http` | the deal's registered host to its HTTP port |
//!
//! Kubernetes-specific consequences for publishers: containers run as a non-root user
//! ([`BuildOptions::run_as_user`], 65534 by default) with no capabilities, because the
//! `restricted` Pod Security level requires it, so images must work as non-root (listen on ports
//! above 1023, write only where that user may). Replicas share `ReadWriteOnce` volumes, so a
//! deal with volumes and several replicas has them scheduled on one node.
//!
//! Each container gets [`BuildOptions::ephemeral_storage`] (1 GiB by default) of node-local
//! disk (its writable layer, logs and `emptyDir`s), as request and limit alike: the manifest has
//! no field for it. A container writing more is evicted, rather than filling the node's disk and
//! getting other tenants' pods evicted. Images must write larger data to a volume.
//!
//! The storage prover reads a volume through a short-lived pod of its own in the deal's
//! namespace ([`snapshot_pod`]): its CPU and memory are outside what the deal reserved, so the
//! namespace's quota is split in three. Scoped quotas count only pods, CPU and memory, hence
//! `reserved` for the rest. The pod's priority class, [`SNAPSHOT_PRIORITY_CLASS`], is what
//! tells the quotas apart; the `snapshot` quota holds whatever pod names it to one small pod.
//!
//! Deals' pods reach, by egress, only their own namespace, the cluster DNS
//! ([`BuildOptions::dns_namespace`], port 53) and addresses outside
//! [`BuildOptions::egress_denied_cidrs`] (private, shared, link-local ranges by default): no
//! other pod, node or Service of the cluster, so the provider's own services (the agent,
//! monitoring, admin ports) are out of a tenant's reach. A provider whose cluster uses pod,
//! Service or node addresses outside the default ranges must add them there.

use crate::DealId;
use k8s_openapi::api::{
	apps::v1::Deployment,
	core::v1::{LimitRange, Namespace, PersistentVolumeClaim, ResourceQuota, Secret, Service},
	networking::v1::{Ingress, NetworkPolicy},
};
use podchain_manifest::{ByteSize, Manifest, ResourceTotals};
use std::collections::BTreeMap;

mod names;
mod network;
mod policy;
mod snapshot;
#[cfg(test)]
pub(crate) mod tests;
mod workload;

pub use names::{
	claim_name, http_service_name, manifest_hash_from_hex, manifest_hash_hex, namespace_name,
	secret_name, tcp_service_name, DEPLOYMENT_NAME, INGRESS_NAME, LIMIT_RANGE_NAME,
	MANAGED_BY_LABEL, NAMESPACE_PREFIX, NETWORK_POLICY_NAME, POD_QUOTA_NAME, QUOTA_NAME,
	SNAPSHOT_QUOTA_NAME,
};
pub use snapshot::{
	snapshot_pod, snapshot_pod_name, snapshot_resources, SnapshotPodOptions,
	SNAPSHOT_EPHEMERAL_STORAGE, SNAPSHOT_MOUNT_PATH, SNAPSHOT_OF_LABEL, SNAPSHOT_PRIORITY_CLASS,
};

/// Label carrying the deal id on every object of a deal.
pub const DEAL_LABEL: &str = "podchain.io/deal-id";
/// Label carrying the provider's account (SS58) on every object of a deal.
pub const PROVIDER_LABEL: &str = "podchain.io/provider";
/// Annotation carrying the hex blake2-256 of the manifest the objects were built from.
pub const MANIFEST_HASH_ANNOTATION: &str = "podchain.io/manifest-hash";
/// Label of the pods of a deal that scales to zero: the seconds without a request after which
/// the agent's gateway stops them.
pub const IDLE_SECONDS_LABEL: &str = "podchain.io/idle-seconds";
/// `app.kubernetes.io/managed-by` value, and the field manager of server-side apply.
pub const MANAGER: &str = "podchain-agent";

/// What a deal asks the cluster to run: its manifest and its terms on chain.
#[derive(Clone, Debug)]
pub struct DealSpec {
	/// The deal.
	pub deal: DealId,
	/// The provider's account, SS58.
	pub provider: String,
	/// The publisher's account, SS58.
	pub publisher: String,
	/// The manifest, checked against the hash on chain.
	pub manifest: Manifest,
	/// blake2-256 of the manifest's canonical form (the deal's `manifest_hash`).
	pub manifest_hash: [u8; 32],
	/// Resources the deal reserved on chain: the namespace's quota.
	pub reserved: Reserved,
	/// Full HTTP host name for an HTTP exposure (the deal's registered name under the
	/// provider's domain), if any.
	pub http_host: Option<String>,
	/// The reference each image the publisher delivered runs by, by the digest the manifest
	/// pins ([`Backend::stage_image`](crate::Backend::stage_image)).
	pub images: BTreeMap<[u8; 32], String>,
}

/// Resources reserved on chain, in the chain's units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reserved {
	/// CPU millicores.
	pub cpu_millicores: u32,
	/// Memory MiB.
	pub memory_mib: u32,
	/// Storage GiB.
	pub storage_gib: u32,
	/// GPUs.
	pub gpus: u32,
}

impl From<ResourceTotals> for Reserved {
	/// Exactly what a manifest needs.
	fn from(totals: ResourceTotals) -> Self {
		Reserved {
			cpu_millicores: totals.cpu_millicores,
			memory_mib: totals.memory_mib,
			storage_gib: totals.storage_gib,
			gpus: totals.gpus,
		}
	}
}

/// One deal's objects. A backend applies the kinds it supports. `Debug` leaves out the objects
/// themselves: secrets carry the tenant's values.
#[derive(Clone)]
pub struct DealObjects {
	/// The deal.
	pub deal: DealId,
	/// blake2-256 of the manifest they were built from.
	pub manifest_hash: [u8; 32],
	/// The deal's namespace (`podchain-deal-<id>`), with Pod Security `restricted` labels.
	pub namespace: Namespace,
	/// Quota of the deal's pods: the CPU and memory reserved (applied before [`Self::quota`]).
	pub pod_quota: ResourceQuota,
	/// Quota of the other reserved resources (storage, GPUs, ephemeral storage, exposures).
	pub quota: ResourceQuota,
	/// Quota of the storage-proof pod.
	pub snapshot_quota: ResourceQuota,
	/// Default and maximum container resources.
	pub limit_range: LimitRange,
	/// Traffic only from inside the namespace and from the ingress controller (and to exposed
	/// TCP ports); out only to the namespace, the cluster DNS and public addresses.
	pub network_policy: NetworkPolicy,
	/// The manifest's secrets.
	pub secrets: Vec<Secret>,
	/// One claim per manifest volume.
	pub volumes: Vec<PersistentVolumeClaim>,
	/// The pods.
	pub deployment: Deployment,
	/// Services for exposed ports.
	pub services: Vec<Service>,
	/// Ingress for an HTTP exposure with a host.
	pub ingress: Option<Ingress>,
}

impl std::fmt::Debug for DealObjects {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		f.debug_struct("DealObjects")
			.field("deal", &self.deal)
			.field("manifest_hash", &manifest_hash_hex(&self.manifest_hash))
			.field("secrets", &self.secrets.len())
			.field("volumes", &self.volumes.len())
			.field("services", &self.services.len())
			.field("ingress", &self.ingress.is_some())
			.finish_non_exhaustive()
	}
}

/// The container port a deal's registered host is served from, if it has a host and an HTTP
/// exposure for it (see `network.rs` for which exposures qualify): what the agent's gateway
/// routes the host to.
pub fn http_port(spec: &DealSpec) -> Result<Option<u16>, BuildError> {
	Ok(network::http_route(spec)?.map(|route| route.port))
}

/// Pods the quota allows beyond `replicas.max`: room for a pod that is still terminating while
/// its replacement starts. CPU and memory get no such room (the quota is what the deal
/// reserved), which is why rollouts recreate the pods unless the reservation itself has room
/// for the new ones beside the old (the Kubernetes backend's `rollout.rs`).
pub const POD_SURGE: u32 = 1;

/// How a TCP exposure is published.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TcpServiceType {
	/// A port from the cluster's node port range on every node. Works on any cluster, bare
	/// metal included, and costs nothing; the public port is allocated by the cluster and is
	/// not the container port.
	#[default]
	NodePort,
	/// An external load balancer per exposed port: needs a cloud provider or MetalLB, and each
	/// one may cost the provider an address.
	LoadBalancer,
}

impl TcpServiceType {
	/// The Service `type`.
	pub fn as_str(self) -> &'static str {
		match self {
			TcpServiceType::NodePort => "NodePort",
			TcpServiceType::LoadBalancer => "LoadBalancer",
		}
	}
}

/// The provider's choices in building deals' objects. [`Default`] suits a cluster with
/// ingress-nginx and the NVIDIA device plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildOptions {
	/// `ingressClassName` of HTTP ingresses.
	pub ingress_class: String,
	/// Namespace of the ingress controller, the only foreign namespace allowed to reach a
	/// deal's pods.
	pub ingress_namespace: String,
	/// User (and group) the containers run as. The manifest has no user: Pod Security
	/// `restricted` requires a non-root one.
	pub run_as_user: i64,
	/// Extended resource name of a GPU (`nvidia.com/gpu`); `None` on a cluster without GPUs,
	/// where a manifest asking for one cannot be built.
	pub gpu_resource: Option<String>,
	/// StorageClass of the volumes; `None` uses the cluster's default class.
	pub storage_class: Option<String>,
	/// How TCP exposures are published.
	pub tcp_service_type: TcpServiceType,
	/// Node-local disk (writable layer, logs, `emptyDir`) of each container, its request and
	/// limit alike; the manifest has no field for it. The quota allows it for every container
	/// of `replicas.max` pods plus [`POD_SURGE`].
	pub ephemeral_storage: ByteSize,
	/// Namespace of the cluster DNS, the only cluster pods besides their own that deals' pods
	/// may reach (on port 53, UDP and TCP).
	pub dns_namespace: String,
	/// Labels of the cluster DNS pods in [`BuildOptions::dns_namespace`].
	pub dns_pod_labels: BTreeMap<String, String>,
	/// Addresses deals' pods may not reach by egress (CIDRs; those with a `:` are IPv6): the
	/// cluster's pod, Service and node networks, which must all be listed here, and the cloud
	/// metadata service, whose node credentials would otherwise be one request away. Every
	/// other address (the internet) is allowed.
	pub egress_denied_cidrs: Vec<String>,
	/// The pod that reads a volume for a storage proof.
	pub snapshot: SnapshotPodOptions,
}

/// [`BuildOptions::egress_denied_cidrs`] by default: the private (RFC 1918), shared (RFC 6598,
/// used by some clusters for pods or Services) and link-local (cloud metadata) IPv4 ranges;
/// unique-local and link-local IPv6, and the AWS IPv6 metadata address.
pub const DEFAULT_EGRESS_DENIED_CIDRS: [&str; 8] = [
	"10.0.0.0/8",
	"172.16.0.0/12",
	"192.168.0.0/16",
	"100.64.0.0/10",
	"169.254.0.0/16",
	"fc00::/7",
	"fe80::/10",
	"fd00:ec2::254/128",
];

impl Default for BuildOptions {
	fn default() -> Self {
		BuildOptions {
			ingress_class: "nginx".into(),
			ingress_namespace: "ingress-nginx".into(),
			run_as_user: 65534,
			gpu_resource: Some("nvidia.com/gpu".into()),
			storage_class: None,
			tcp_service_type: TcpServiceType::NodePort,
			ephemeral_storage: ByteSize::from_bytes(1 << 30),
			dns_namespace: "kube-system".into(),
			dns_pod_labels: BTreeMap::from([("k8s-app".into(), "kube-dns".into())]),
			egress_denied_cidrs: DEFAULT_EGRESS_DENIED_CIDRS.map(String::from).to_vec(),
			snapshot: SnapshotPodOptions::default(),
		}
	}
}

/// Why a deal's objects could not be built: something a valid manifest allows but this
/// cluster or Kubernetes cannot run as asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
	/// A container asks for GPUs and [`BuildOptions::gpu_resource`] is `None`.
	#[error("container {container} asks for GPUs and this cluster has no GPU resource configured")]
	NoGpuResource {
		/// The container.
		container: String,
	},
	/// A value that must be a Kubernetes label value is not one.
	#[error("{what} {value:?} is not a valid Kubernetes label value")]
	InvalidLabelValue {
		/// What the value is.
		what: &'static str,
		/// The value.
		value: String,
	},
	/// The deal's HTTP host is not a DNS name.
	#[error("HTTP host {0:?} is not a valid DNS name")]
	InvalidHost(String),
	/// Two HTTP exposures send the same host to different ports; an ingress rule has one
	/// backend per path, and manifests have no paths.
	#[error("HTTP host {host} is exposed on ports {first} and {second}; one host serves one port")]
	ConflictingHttpPorts {
		/// The host.
		host: String,
		/// One port.
		first: u16,
		/// Another port.
		second: u16,
	},
	/// The manifest needs more than the deal reserved: its pods would never fit the quota.
	#[error("the manifest needs {needed} {resource} but the deal reserved {reserved}")]
	ExceedsReservation {
		/// `cpu millicores`, `memory MiB`, `storage GiB` or `gpus`.
		resource: &'static str,
		/// What the manifest needs.
		needed: u32,
		/// What the deal reserved.
		reserved: u32,
	},
	/// A container runs an image the publisher delivers that was not staged in the cluster.
	#[error("container {container} runs a delivered image that is not staged: {image}")]
	ImageNotStaged {
		/// The container.
		container: String,
		/// The image, `name@sha256:...`.
		image: String,
	},
	/// A container's image is still a file on the publisher's machine (a received manifest
	/// never is).
	#[error("container {0} names a local archive, not an image")]
	UnresolvedImage(String),
	/// The manifest's resource totals overflow (a parsed manifest never does).
	#[error("the manifest's {0} total overflows")]
	Overflow(&'static str),
}

/// Builds a deal's objects. Deterministic: the same spec and options give the same objects,
/// so applying them again changes nothing.
///
/// The Deployment runs `replicas.min` pods; the quota allows `replicas.max` (plus
/// [`POD_SURGE`]), so the agent may scale within that range later by applying a different
/// replica count.
pub fn build(spec: &DealSpec, options: &BuildOptions) -> Result<DealObjects, BuildError> {
	check_reservation(spec)?;
	let common = names::Common::new(spec)?;
	let http_route = network::http_route(spec)?;
	Ok(DealObjects {
		deal: spec.deal,
		manifest_hash: spec.manifest_hash,
		namespace: policy::namespace(&common),
		pod_quota: policy::pod_quota(&common, spec),
		quota: policy::quota(&common, spec, options),
		snapshot_quota: policy::snapshot_quota(&common, &spec.manifest, options),
		limit_range: policy::limit_range(&common, &spec.manifest, options),
		network_policy: policy::network_policy(&common, &spec.manifest, options),
		secrets: workload::secrets(&common, &spec.manifest),
		volumes: workload::claims(&common, &spec.manifest, options),
		deployment: workload::deployment(&common, &spec.manifest, &spec.images, options)?,
		services: network::services(&common, &spec.manifest, options),
		ingress: network::ingress(&common, &http_route, options),
	})
}

/// Refuses a manifest that cannot fit what the deal reserved: better a clear error now than
/// pods the quota turns away.
fn check_reservation(spec: &DealSpec) -> Result<(), BuildError> {
	let needed = spec.manifest.resources().map_err(|e| BuildError::Overflow(e.resource))?;
	let reserved = &spec.reserved;
	for (resource, needed, reserved) in [
		("cpu millicores", needed.cpu_millicores, reserved.cpu_millicores),
		("memory MiB", needed.memory_mib, reserved.memory_mib),
		("storage GiB", needed.storage_gib, reserved.storage_gib),
		("gpus", needed.gpus, reserved.gpus),
	] {
		if needed > reserved {
			return Err(BuildError::ExceedsReservation { resource, needed, reserved });
		}
	}
	Ok(())
}
