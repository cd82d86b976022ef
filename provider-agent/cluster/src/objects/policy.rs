//! The deal's namespace and the fences around it: quota, limit range, network policy.

use super::{
	names::Common, BuildOptions, TcpServiceType, LIMIT_RANGE_NAME, NETWORK_POLICY_NAME,
	POD_QUOTA_NAME, POD_SURGE, QUOTA_NAME, SNAPSHOT_EPHEMERAL_STORAGE, SNAPSHOT_PRIORITY_CLASS,
	SNAPSHOT_QUOTA_NAME,
};
use super::{DealSpec, Manifest};
use k8s_openapi::{
	api::{
		core::v1::{
			LimitRange, LimitRangeItem, LimitRangeSpec, Namespace, ResourceQuota,
			ResourceQuotaSpec, ScopeSelector, ScopedResourceSelectorRequirement,
		},
		networking::v1::{
			IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule,
			NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
		},
	},
	apimachinery::pkg::{
		api::resource::Quantity,
		apis::meta::v1::{LabelSelector, ObjectMeta},
		util::intstr::IntOrString,
	},
};
use podchain_manifest::{ByteSize, Cpu, Exposure};
use std::collections::BTreeMap;

/// Label naming a namespace after itself, set by Kubernetes on every namespace.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

pub(super) fn quantity(text: impl Into<String>) -> Quantity {
	Quantity(text.into())
}

/// The namespace, with Pod Security `restricted` enforced, warned and audited at the latest
/// version, so the API server itself refuses a pod that could escape its limits.
pub(super) fn namespace(common: &Common) -> Namespace {
	let mut labels = common.labels.clone();
	for mode in ["enforce", "warn", "audit"] {
		labels.insert(format!("pod-security.kubernetes.io/{mode}"), "restricted".into());
		labels.insert(format!("pod-security.kubernetes.io/{mode}-version"), "latest".into());
	}
	Namespace {
		metadata: ObjectMeta {
			name: Some(common.namespace.clone()),
			labels: Some(labels),
			annotations: Some(common.annotations.clone()),
			..ObjectMeta::default()
		},
		..Namespace::default()
	}
}

/// The quota of everything but pods' CPU and memory: what the deal reserved on chain in
/// storage and GPUs, a claim per manifest volume, [`BuildOptions::ephemeral_storage`] for every
/// container of `replicas.max` pods plus [`POD_SURGE`] (and the storage-proof pod's
/// [`SNAPSHOT_EPHEMERAL_STORAGE`]), and its exposures. Unscoped: a scoped quota can only count
/// pods, CPU and memory.
pub(super) fn quota(common: &Common, spec: &DealSpec, options: &BuildOptions) -> ResourceQuota {
	let reserved = &spec.reserved;
	let manifest = &spec.manifest;
	let pods = manifest.replicas.max.saturating_add(POD_SURGE);
	let containers = u64::try_from(manifest.containers.len()).unwrap_or(u64::MAX);
	let ephemeral = bytes(ByteSize::from_bytes(
		options
			.ephemeral_storage
			.bytes()
			.saturating_mul(containers)
			.saturating_mul(pods.into())
			.saturating_add(SNAPSHOT_EPHEMERAL_STORAGE.bytes()),
	));
	let mut hard = BTreeMap::from([
		("requests.storage".to_owned(), quantity(format!("{}Gi", reserved.storage_gib))),
		("requests.ephemeral-storage".to_owned(), ephemeral.clone()),
		("limits.ephemeral-storage".to_owned(), ephemeral),
		("persistentvolumeclaims".to_owned(), quantity(manifest.volumes.len().to_string())),
	]);
	// Extended resources are only limited where the quota names them: name the GPU even at 0.
	if let Some(gpu) = &options.gpu_resource {
		hard.insert(format!("requests.{gpu}"), quantity(reserved.gpus.to_string()));
	}
	let tcp = tcp_ports(manifest).len().to_string();
	let (public, other) = match options.tcp_service_type {
		TcpServiceType::NodePort => ("services.nodeports", "services.loadbalancers"),
		TcpServiceType::LoadBalancer => ("services.loadbalancers", "services.nodeports"),
	};
	hard.insert(public.into(), quantity(tcp));
	hard.insert(other.into(), quantity("0"));
	ResourceQuota {
		metadata: common.meta(QUOTA_NAME),
		spec: Some(ResourceQuotaSpec { hard: Some(hard), ..ResourceQuotaSpec::default() }),
		..ResourceQuota::default()
	}
}

/// The quota of the deal's own pods, every pod but the storage-proof pod: exactly the CPU and
/// memory the deal reserved on chain (requests and limits alike, since containers' requests
/// are their limits), and room for `replicas.max` pods plus [`POD_SURGE`].
pub(super) fn pod_quota(common: &Common, spec: &DealSpec) -> ResourceQuota {
	let reserved = &spec.reserved;
	let cpu = Cpu::from_millis(reserved.cpu_millicores).to_string();
	let memory = format!("{}Mi", reserved.memory_mib);
	let pods = spec.manifest.replicas.max.saturating_add(POD_SURGE);
	let hard = BTreeMap::from([
		("requests.cpu".to_owned(), quantity(cpu.clone())),
		("limits.cpu".to_owned(), quantity(cpu)),
		("requests.memory".to_owned(), quantity(memory.clone())),
		("limits.memory".to_owned(), quantity(memory)),
		("pods".to_owned(), quantity(pods.to_string())),
	]);
	scoped_quota(common, POD_QUOTA_NAME, "NotIn", hard)
}

/// The quota of the storage-proof pod ([`super::snapshot_pod`]): one pod of
/// [`super::snapshot_resources`], and nothing for any other pod that names its priority class.
pub(super) fn snapshot_quota(
	common: &Common,
	manifest: &Manifest,
	options: &BuildOptions,
) -> ResourceQuota {
	let (cpu, memory) = super::snapshot_resources(manifest, options);
	let hard = BTreeMap::from([
		("requests.cpu".to_owned(), quantity(cpu.to_string())),
		("limits.cpu".to_owned(), quantity(cpu.to_string())),
		("requests.memory".to_owned(), bytes(memory)),
		("limits.memory".to_owned(), bytes(memory)),
		("pods".to_owned(), quantity("1")),
	]);
	scoped_quota(common, SNAPSHOT_QUOTA_NAME, "In", hard)
}

/// A quota on the pods whose priority class is (`In`) or is not (`NotIn`, which a pod without
/// one is) [`SNAPSHOT_PRIORITY_CLASS`].
fn scoped_quota(
	common: &Common,
	name: &str,
	operator: &str,
	hard: BTreeMap<String, Quantity>,
) -> ResourceQuota {
	let selector = ScopeSelector {
		match_expressions: Some(vec![ScopedResourceSelectorRequirement {
			scope_name: "PriorityClass".into(),
			operator: operator.into(),
			values: Some(vec![SNAPSHOT_PRIORITY_CLASS.into()]),
		}]),
	};
	ResourceQuota {
		metadata: common.meta(name),
		spec: Some(ResourceQuotaSpec {
			hard: Some(hard),
			scope_selector: Some(selector),
			..ResourceQuotaSpec::default()
		}),
		..ResourceQuota::default()
	}
}

/// Per-container defaults and maxima: the largest container of the manifest, so that no
/// container, with or without limits of its own, can take more than the manifest allows one
/// container. Ephemeral storage is [`BuildOptions::ephemeral_storage`], which every container
/// gets. Claims are capped at the largest volume.
pub(super) fn limit_range(
	common: &Common,
	manifest: &Manifest,
	options: &BuildOptions,
) -> LimitRange {
	let cpu = manifest.containers.iter().map(|c| c.resources.cpu).max().unwrap_or_default();
	let memory = manifest.containers.iter().map(|c| c.resources.memory).max().unwrap_or_default();
	let container = BTreeMap::from([
		("cpu".to_owned(), quantity(cpu.to_string())),
		("memory".to_owned(), bytes(memory)),
		("ephemeral-storage".to_owned(), bytes(options.ephemeral_storage)),
	]);
	let mut limits = vec![LimitRangeItem {
		type_: "Container".into(),
		max: Some(container.clone()),
		default: Some(container.clone()),
		default_request: Some(container),
		..LimitRangeItem::default()
	}];
	if let Some(size) = manifest.volumes.iter().map(|v| v.size).max() {
		limits.push(LimitRangeItem {
			type_: "PersistentVolumeClaim".into(),
			max: Some(BTreeMap::from([("storage".to_owned(), bytes(size))])),
			..LimitRangeItem::default()
		});
	}
	LimitRange { metadata: common.meta(LIMIT_RANGE_NAME), spec: Some(LimitRangeSpec { limits }) }
}

/// The TCP ports exposed publicly, each once.
fn tcp_ports(manifest: &Manifest) -> Vec<u16> {
	let mut ports: Vec<u16> = manifest
		.expose
		.iter()
		.filter_map(|e| match e {
			Exposure::Tcp { port } => Some(*port),
			Exposure::Http { .. } => None,
		})
		.collect();
	ports.sort_unstable();
	ports.dedup();
	ports
}

/// The network policy of the deal's pods.
///
/// Ingress is denied except from the deal's own pods, from the ingress controller's namespace,
/// and, on exposed TCP ports only, from any source (node port and load balancer traffic comes
/// from outside, possibly through a node's address). That is what isolates tenants from each
/// other: every tenant namespace refuses foreign traffic itself.
///
/// Egress is denied except to:
/// - the deal's own pods;
/// - the cluster DNS pods ([`BuildOptions::dns_namespace`], [`BuildOptions::dns_pod_labels`]),
///   on port 53, UDP and TCP (traffic to the DNS Service address is matched after the Service
///   is translated to a pod, as with every network plugin enforcing policies);
/// - any IPv4 or IPv6 address outside [`BuildOptions::egress_denied_cidrs`]: the internet.
///
/// Nothing else of the cluster is reachable: not the provider's services (the agent,
/// monitoring, admin ports), not nodes, not Service addresses. Cluster-internal destinations
/// are allowed by pod selectors only, because some network plugins (Cilium) never match pod
/// addresses against `ipBlock`: only a selector reliably allows a pod such as the DNS. With
/// those plugins the internet rule reaches no pod anyway; with the others, its `except` ranges
/// (the pod, Service and node networks of usual clusters, and the cloud metadata service) keep
/// it from reaching any. Other tenants' pods are refused both by this policy and by their own
/// ingress rules. A node-local DNS cache on a link-local address is not reachable: deals use
/// the cluster DNS pods.
pub(super) fn network_policy(
	common: &Common,
	manifest: &Manifest,
	options: &BuildOptions,
) -> NetworkPolicy {
	let same_namespace =
		NetworkPolicyPeer { pod_selector: Some(LabelSelector::default()), ..Default::default() };
	let ingress_controller = NetworkPolicyPeer {
		namespace_selector: Some(named_namespace(&options.ingress_namespace)),
		..Default::default()
	};
	let mut ingress = vec![NetworkPolicyIngressRule {
		from: Some(vec![same_namespace.clone(), ingress_controller]),
		ports: None,
	}];
	let tcp = tcp_ports(manifest);
	if !tcp.is_empty() {
		ingress.push(NetworkPolicyIngressRule {
			from: None,
			ports: Some(tcp.iter().map(|port| policy_port("TCP", *port)).collect()),
		});
	}
	let dns = NetworkPolicyPeer {
		namespace_selector: Some(named_namespace(&options.dns_namespace)),
		pod_selector: Some(LabelSelector {
			match_labels: Some(options.dns_pod_labels.clone()),
			..LabelSelector::default()
		}),
		..Default::default()
	};
	let egress = vec![
		NetworkPolicyEgressRule { to: Some(vec![same_namespace]), ports: None },
		NetworkPolicyEgressRule {
			to: Some(vec![dns]),
			ports: Some(vec![policy_port("UDP", 53), policy_port("TCP", 53)]),
		},
		NetworkPolicyEgressRule { to: Some(anywhere(&options.egress_denied_cidrs)), ports: None },
	];
	NetworkPolicy {
		metadata: common.meta(NETWORK_POLICY_NAME),
		spec: Some(NetworkPolicySpec {
			pod_selector: Some(LabelSelector::default()),
			policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
			ingress: Some(ingress),
			egress: Some(egress),
		}),
	}
}

/// Selects the namespace called `name`.
fn named_namespace(name: &str) -> LabelSelector {
	LabelSelector {
		match_labels: Some(BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), name.to_owned())])),
		..LabelSelector::default()
	}
}

fn policy_port(protocol: &str, port: u16) -> NetworkPolicyPort {
	NetworkPolicyPort {
		port: Some(IntOrString::Int(i32::from(port))),
		protocol: Some(protocol.into()),
		end_port: None,
	}
}

/// Every IPv4 and IPv6 address except `denied` (CIDRs; those with a `:` are IPv6).
fn anywhere(denied: &[String]) -> Vec<NetworkPolicyPeer> {
	[("0.0.0.0/0", false), ("::/0", true)]
		.into_iter()
		.map(|(cidr, v6)| {
			let except: Vec<String> =
				denied.iter().filter(|c| c.contains(':') == v6).cloned().collect();
			NetworkPolicyPeer {
				ip_block: Some(IPBlock {
					cidr: cidr.into(),
					except: (!except.is_empty()).then_some(except),
				}),
				..Default::default()
			}
		})
		.collect()
}

/// A byte quantity as Kubernetes reads it (kept here so every object renders sizes alike).
pub(super) fn bytes(size: ByteSize) -> Quantity {
	quantity(size.to_string())
}
