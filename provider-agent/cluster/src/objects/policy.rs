//! The deal's namespace and the fences around it: quota, limit range, network policy.

use super::{
	names::Common, BuildOptions, TcpServiceType, LIMIT_RANGE_NAME, NETWORK_POLICY_NAME, POD_SURGE,
	QUOTA_NAME,
};
use super::{DealSpec, Manifest, DEAL_LABEL};
use k8s_openapi::{
	api::{
		core::v1::{
			LimitRange, LimitRangeItem, LimitRangeSpec, Namespace, ResourceQuota, ResourceQuotaSpec,
		},
		networking::v1::{
			IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule,
			NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
		},
	},
	apimachinery::pkg::{
		api::resource::Quantity,
		apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta},
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

/// The quota: exactly what the deal reserved on chain (requests and limits alike, since
/// containers' requests are their limits), a claim per manifest volume, and room for
/// `replicas.max` pods plus [`POD_SURGE`].
pub(super) fn quota(common: &Common, spec: &DealSpec, options: &BuildOptions) -> ResourceQuota {
	let reserved = &spec.reserved;
	let manifest = &spec.manifest;
	let cpu = Cpu::from_millis(reserved.cpu_millicores).to_string();
	let memory = format!("{}Mi", reserved.memory_mib);
	let mut hard = BTreeMap::from([
		("requests.cpu".to_owned(), quantity(cpu.clone())),
		("limits.cpu".to_owned(), quantity(cpu)),
		("requests.memory".to_owned(), quantity(memory.clone())),
		("limits.memory".to_owned(), quantity(memory)),
		("requests.storage".to_owned(), quantity(format!("{}Gi", reserved.storage_gib))),
		("persistentvolumeclaims".to_owned(), quantity(manifest.volumes.len().to_string())),
		("pods".to_owned(), quantity(manifest.replicas.max.saturating_add(POD_SURGE).to_string())),
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

/// Per-container defaults and maxima: the largest container of the manifest, so that no
/// container, with or without limits of its own, can take more than the manifest allows one
/// container. Claims are capped at the largest volume.
pub(super) fn limit_range(common: &Common, manifest: &Manifest) -> LimitRange {
	let cpu = manifest.containers.iter().map(|c| c.resources.cpu).max().unwrap_or_default();
	let memory = manifest.containers.iter().map(|c| c.resources.memory).max().unwrap_or_default();
	let container = BTreeMap::from([
		("cpu".to_owned(), quantity(cpu.to_string())),
		("memory".to_owned(), bytes(memory)),
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
/// Egress goes to the deal's own pods, to pods of namespaces that are not deals' (the cluster
/// DNS, the provider's services), and to any address but
/// [`BuildOptions::egress_denied_cidrs`] (the internet). The first two are spelled out because
/// some network plugins (Cilium) never match pod addresses against `ipBlock`; with them, other
/// tenants' pods are unreachable by egress too, and with the others, the tenants' ingress rules
/// refuse the traffic.
pub(super) fn network_policy(
	common: &Common,
	manifest: &Manifest,
	options: &BuildOptions,
) -> NetworkPolicy {
	let same_namespace =
		NetworkPolicyPeer { pod_selector: Some(LabelSelector::default()), ..Default::default() };
	let ingress_controller = NetworkPolicyPeer {
		namespace_selector: Some(LabelSelector {
			match_labels: Some(BTreeMap::from([(
				NAMESPACE_NAME_LABEL.to_owned(),
				options.ingress_namespace.clone(),
			)])),
			..LabelSelector::default()
		}),
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
			ports: Some(
				tcp.iter()
					.map(|port| NetworkPolicyPort {
						port: Some(IntOrString::Int(i32::from(*port))),
						protocol: Some("TCP".into()),
						end_port: None,
					})
					.collect(),
			),
		});
	}
	let not_a_deal = NetworkPolicyPeer {
		namespace_selector: Some(LabelSelector {
			match_expressions: Some(vec![LabelSelectorRequirement {
				key: DEAL_LABEL.into(),
				operator: "DoesNotExist".into(),
				values: None,
			}]),
			match_labels: None,
		}),
		..Default::default()
	};
	let mut to = vec![same_namespace, not_a_deal];
	to.extend(anywhere(&options.egress_denied_cidrs));
	let egress = vec![NetworkPolicyEgressRule { to: Some(to), ports: None }];
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
