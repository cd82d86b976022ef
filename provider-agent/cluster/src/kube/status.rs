//! Which deals are in the cluster, and how their pods are doing.

use super::{apply::deal_selector, KubeBackend};
use crate::{
	objects::{
		manifest_hash_from_hex, manifest_hash_hex, namespace_name, DEAL_LABEL, DEPLOYMENT_NAME,
		IDLE_SECONDS_LABEL, MANAGED_BY_LABEL, MANAGER, MANIFEST_HASH_ANNOTATION,
	},
	ClusterError, DealId, DealStatus, Deployed, UNKNOWN_MANIFEST,
};
use ::kube::{
	api::{Api, ListParams},
	ResourceExt,
};
use k8s_openapi::api::{
	apps::v1::Deployment,
	core::v1::{Namespace, Pod},
};

/// Waiting reasons that mean a container will not start without a change: an image that
/// cannot be pulled (after the kubelet's first retries), a crash loop, a configuration the
/// kubelet cannot apply.
const FAILED_REASONS: [&str; 4] =
	["CrashLoopBackOff", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError"];

/// Waiting reasons that the kubelet retries and that often pass: a first failed pull (a
/// registry blip), a container runtime error creating the container.
const DEGRADED_REASONS: [&str; 2] = ["ErrImagePull", "CreateContainerError"];

/// Parts of a `ReplicaFailure` message that mean the pod spec itself is refused, which no
/// retry changes (Pod Security admission, an invalid pod). Any other replica failure (a quota
/// refusal while old pods terminate, quota usage not computed yet in a new namespace, the
/// `default` ServiceAccount not created yet) is retried by the ReplicaSet controller and
/// reported as degraded; if it lasts, the rollout's progress deadline makes it a failure.
const PERMANENT_REPLICA_FAILURES: [&str; 2] = ["violates PodSecurity", " is invalid"];

/// Longest reason reported, in bytes: a status answer stays small whatever the cluster says.
const MAX_REASON_BYTES: usize = 1024;

/// Annotation of the Deployment controller: the revision of the pod template.
const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// The deals with a namespace in the cluster that is not being deleted. A namespace whose
/// labels or hash annotation do not parse is skipped with a warning: it was not made by this
/// agent, or was edited by hand.
pub(super) async fn deployed(backend: &KubeBackend) -> Result<Vec<Deployed>, ClusterError> {
	let namespaces: Api<Namespace> = Api::all(backend.client.clone());
	let selector = format!("{MANAGED_BY_LABEL}={MANAGER},{DEAL_LABEL}");
	let listed = backend
		.call("list namespaces", namespaces.list_metadata(&ListParams::default().labels(&selector)))
		.await?;
	let mut deals = Vec::new();
	for namespace in listed.items {
		if namespace.metadata.deletion_timestamp.is_some() {
			continue;
		}
		let name = namespace.name_any();
		let deal = namespace.labels().get(DEAL_LABEL).and_then(|d| d.parse::<DealId>().ok());
		let hash = namespace
			.annotations()
			.get(MANIFEST_HASH_ANNOTATION)
			.and_then(|h| manifest_hash_from_hex(h));
		let hash_text = namespace.annotations().get(MANIFEST_HASH_ANNOTATION);
		match (deal, hash, hash_text) {
			(Some(deal), Some(manifest_hash), _) if name == namespace_name(deal) => {
				deals.push(Deployed { deal, manifest_hash })
			}
			// An apply that never finished: deployed, running nothing known, so that the agent
			// applies it again (or removes it, if the deal is gone).
			(Some(deal), None, None) if name == namespace_name(deal) => {
				deals.push(Deployed { deal, manifest_hash: UNKNOWN_MANIFEST })
			}
			_ => tracing::warn!(%name, "namespace with podchain labels but no valid deal or hash"),
		}
	}
	deals.sort_by_key(|d| d.deal);
	Ok(deals)
}

/// How the deal's pods are doing. A deal whose namespace exists but has no Deployment yet (an
/// apply cut short, or not yet run) is starting, with 0 replicas wanted.
pub(super) async fn status(
	backend: &KubeBackend,
	deal: DealId,
) -> Result<DealStatus, ClusterError> {
	let name = namespace_name(deal);
	let namespaces: Api<Namespace> = Api::all(backend.client.clone());
	let Some(namespace) = backend.call("get namespace", namespaces.get_opt(&name)).await? else {
		return Ok(DealStatus::Absent);
	};
	let terminating =
		namespace.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
	if terminating || namespace.metadata.deletion_timestamp.is_some() {
		return Ok(DealStatus::Absent);
	}
	let deployments: Api<Deployment> = Api::namespaced(backend.client.clone(), &name);
	let Some(deployment) =
		backend.call("get deployment", deployments.get_opt(DEPLOYMENT_NAME)).await?
	else {
		return Ok(DealStatus::Starting { ready: 0, wanted: 0 });
	};
	let pods: Api<Pod> = Api::namespaced(backend.client.clone(), &name);
	let pods = backend
		.call("list pods", pods.list(&ListParams::default().labels(&deal_selector(deal))))
		.await?;
	Ok(classify(&deployment, &pods.items))
}

/// Whether the Deployment's pods scale to zero (the gateway scales it to 0 while idle).
fn scales_to_zero(deployment: &Deployment) -> bool {
	let template = deployment.spec.as_ref().and_then(|s| s.template.metadata.as_ref());
	template.and_then(|m| m.labels.as_ref()).is_some_and(|l| l.contains_key(IDLE_SECONDS_LABEL))
}

/// Whether the deal's Deployment has rolled out the manifest `hash` completely: its pod
/// template carries the hash, the controller has seen that template, every wanted replica is
/// of it and ready, and no replica of an older template is left.
pub(super) async fn rolled_out(
	backend: &KubeBackend,
	deal: DealId,
	hash: &[u8; 32],
) -> Result<bool, ClusterError> {
	let deployments: Api<Deployment> =
		Api::namespaced(backend.client.clone(), &namespace_name(deal));
	let Some(deployment) =
		backend.call("get deployment", deployments.get_opt(DEPLOYMENT_NAME)).await?
	else {
		return Ok(false);
	};
	Ok(template_hash(&deployment).as_deref() == Some(manifest_hash_hex(hash).as_str())
		&& complete(&deployment))
}

/// The manifest hash the Deployment's pod template carries.
fn template_hash(deployment: &Deployment) -> Option<String> {
	deployment
		.spec
		.as_ref()?
		.template
		.metadata
		.as_ref()?
		.annotations
		.as_ref()?
		.get(MANIFEST_HASH_ANNOTATION)
		.cloned()
}

fn to_u32(n: Option<i32>) -> u32 {
	n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
}

/// Replicas the Deployment asks for.
fn wanted(deployment: &Deployment) -> u32 {
	to_u32(Some(deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)))
}

/// The rollout of the current template is complete (as `kubectl rollout status` judges it):
/// the controller observed the current generation, all wanted replicas are updated and ready,
/// and no replica of an older template remains (terminating pods are not counted: they are
/// going and no longer serve through the Service).
fn complete(deployment: &Deployment) -> bool {
	let wanted = wanted(deployment);
	let status = deployment.status.clone().unwrap_or_default();
	let observed =
		status.observed_generation.unwrap_or(0) >= deployment.metadata.generation.unwrap_or(0);
	let updated = to_u32(status.updated_replicas);
	observed
		&& updated >= wanted
		&& to_u32(status.replicas) <= updated
		&& to_u32(status.ready_replicas) >= wanted
}

/// How a deal with this Deployment and these pods is doing. Pods of an older template, and
/// pods being deleted, say nothing about the manifest being run: they are on their way out.
pub(super) fn classify(deployment: &Deployment, pods: &[Pod]) -> DealStatus {
	let wanted = wanted(deployment);
	if wanted == 0 && scales_to_zero(deployment) && pods.is_empty() {
		return DealStatus::Idle;
	}
	let hash = template_hash(deployment);
	let current: Vec<&Pod> = pods
		.iter()
		.filter(|p| p.metadata.deletion_timestamp.is_none())
		.filter(|p| p.annotations().get(MANIFEST_HASH_ANNOTATION) == hash.as_ref())
		.collect();
	let conditions =
		deployment.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
	let condition = |type_: &str| conditions.iter().find(|c| c.type_ == type_);
	let explain = |reason: Option<&str>, fallback: &str, message: Option<&str>| {
		let reason = reason.unwrap_or(fallback);
		cap(match message.filter(|m| !m.is_empty()) {
			Some(message) => format!("{reason}: {message}"),
			None => reason.to_owned(),
		})
	};

	// Terminal: the rollout is past its deadline, a pod of this manifest cannot start, or the
	// pod spec is refused outright.
	if let Some(c) =
		condition("Progressing").filter(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
	{
		return DealStatus::Failed {
			reason: explain(c.reason.as_deref(), "Progressing", c.message.as_deref()),
		};
	}
	if let Some(reason) = current.iter().find_map(|p| waiting(p, &FAILED_REASONS)) {
		return DealStatus::Failed { reason };
	}
	let replica_failure = condition("ReplicaFailure").filter(|c| c.status == "True").map(|c| {
		(
			explain(c.reason.as_deref(), "ReplicaFailure", c.message.as_deref()),
			c.message.as_deref().unwrap_or_default(),
		)
	});
	if let Some((reason, message)) = &replica_failure {
		if PERMANENT_REPLICA_FAILURES.iter().any(|p| message.contains(p)) {
			return DealStatus::Failed { reason: reason.clone() };
		}
	}

	if complete(deployment) {
		return DealStatus::Running;
	}
	let ready = u32::try_from(current.iter().filter(|p| is_ready(p)).count())
		.unwrap_or(u32::MAX)
		.min(wanted);
	// Transient, with a reason: the ReplicaSet controller or the kubelet retries.
	let degraded = replica_failure
		.map(|(reason, _)| reason)
		.or_else(|| current.iter().find_map(|p| waiting(p, &DEGRADED_REASONS)))
		.or_else(|| current.iter().find_map(|p| unschedulable(p)));
	if let Some(reason) = degraded {
		return DealStatus::Degraded { ready, wanted, reason };
	}
	let revision = deployment
		.annotations()
		.get(REVISION_ANNOTATION)
		.and_then(|r| r.parse::<u64>().ok())
		.unwrap_or(1);
	if revision > 1 {
		DealStatus::Updating { ready, wanted }
	} else {
		DealStatus::Starting { ready, wanted }
	}
}

/// Whether the pod's `Ready` condition is true.
fn is_ready(pod: &Pod) -> bool {
	pod.status
		.as_ref()
		.and_then(|s| s.conditions.as_ref())
		.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Why the pod cannot be scheduled (no node has room, say), if that is what holds it.
fn unschedulable(pod: &Pod) -> Option<String> {
	let conditions = pod.status.as_ref()?.conditions.as_ref()?;
	let c = conditions.iter().find(|c| {
		c.type_ == "PodScheduled"
			&& c.status == "False"
			&& c.reason.as_deref() == Some("Unschedulable")
	})?;
	let mut text = format!("{}: Unschedulable", pod.name_any());
	if let Some(message) = c.message.as_deref().filter(|m| !m.is_empty()) {
		text.push_str(": ");
		text.push_str(message);
	}
	Some(cap(text))
}

/// `text` cut to [`MAX_REASON_BYTES`] on a character boundary.
fn cap(mut text: String) -> String {
	if text.len() > MAX_REASON_BYTES {
		let mut cut = MAX_REASON_BYTES;
		while !text.is_char_boundary(cut) {
			cut -= 1;
		}
		text.truncate(cut);
		text.push_str(" [cut]");
	}
	text
}

/// The first container of `pod` waiting for one of `reasons`, as
/// `<pod>/<container>: <reason>: <message> (last exit <code>: <reason>)`.
fn waiting(pod: &Pod, reasons: &[&str]) -> Option<String> {
	let status = pod.status.as_ref()?;
	let statuses =
		status.init_container_statuses.iter().chain(&status.container_statuses).flatten();
	statuses.into_iter().find_map(|c| {
		let waiting = c.state.as_ref()?.waiting.as_ref()?;
		let reason = waiting.reason.as_deref()?;
		reasons.contains(&reason).then(|| {
			let mut text = format!("{}/{}: {reason}", pod.name_any(), c.name);
			if let Some(message) = waiting.message.as_deref().filter(|m| !m.is_empty()) {
				text.push_str(": ");
				text.push_str(message);
			}
			if let Some(last) = c.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
				text.push_str(&format!(" (last exit {}", last.exit_code));
				if let Some(reason) = &last.reason {
					text.push_str(&format!(": {reason}"));
				}
				text.push(')');
			}
			cap(text)
		})
	})
}
