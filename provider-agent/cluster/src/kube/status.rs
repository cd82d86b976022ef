//! Which deals are in the cluster, and how their pods are doing.

use super::{apply::deal_selector, KubeBackend};
use crate::{
	objects::{
		manifest_hash_from_hex, namespace_name, DEAL_LABEL, DEPLOYMENT_NAME, MANAGED_BY_LABEL,
		MANAGER, MANIFEST_HASH_ANNOTATION,
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

/// Waiting reasons that mean a container will not start without a change: a missing or
/// unpullable image, a crash loop, a configuration the kubelet cannot apply.
const FAILED_REASONS: [&str; 6] = [
	"CrashLoopBackOff",
	"ImagePullBackOff",
	"ErrImagePull",
	"InvalidImageName",
	"CreateContainerConfigError",
	"CreateContainerError",
];

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
/// apply cut short) is starting, with 0 replicas wanted.
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
	if let Some(reason) = deployment_failure(&deployment) {
		return Ok(DealStatus::Failed { reason });
	}
	let pods: Api<Pod> = Api::namespaced(backend.client.clone(), &name);
	let pods = backend
		.call("list pods", pods.list(&ListParams::default().labels(&deal_selector(deal))))
		.await?;
	if let Some(reason) = pods.items.iter().find_map(pod_failure) {
		return Ok(DealStatus::Failed { reason });
	}
	Ok(rollout(&deployment))
}

/// Running once the current generation is rolled out and every wanted replica is ready.
fn rollout(deployment: &Deployment) -> DealStatus {
	let to_u32 = |n: Option<i32>| n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
	let wanted = to_u32(Some(deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)));
	let status = deployment.status.clone().unwrap_or_default();
	let ready = to_u32(status.ready_replicas);
	let updated = to_u32(status.updated_replicas);
	let observed =
		status.observed_generation.unwrap_or(0) >= deployment.metadata.generation.unwrap_or(0);
	if observed && ready >= wanted && updated >= wanted {
		DealStatus::Running
	} else {
		DealStatus::Starting { ready: ready.min(wanted), wanted }
	}
}

/// A Deployment condition that means its pods cannot be created or rolled out: a replica
/// failure (such as a quota or admission refusal) or a rollout past its deadline.
fn deployment_failure(deployment: &Deployment) -> Option<String> {
	let conditions = deployment.status.as_ref()?.conditions.as_ref()?;
	conditions.iter().find_map(|c| {
		let failed = match c.type_.as_str() {
			"ReplicaFailure" => c.status == "True",
			"Progressing" => c.reason.as_deref() == Some("ProgressDeadlineExceeded"),
			_ => false,
		};
		failed.then(|| {
			let reason = c.reason.as_deref().unwrap_or(c.type_.as_str());
			match c.message.as_deref() {
				Some(message) => format!("{reason}: {message}"),
				None => reason.to_owned(),
			}
		})
	})
}

/// The first container of `pod` waiting for one of [`FAILED_REASONS`], as
/// `<pod>/<container>: <reason>: <message> (last exit <code>: <reason>)`.
fn pod_failure(pod: &Pod) -> Option<String> {
	let status = pod.status.as_ref()?;
	let statuses =
		status.init_container_statuses.iter().chain(&status.container_statuses).flatten();
	statuses.into_iter().find_map(|c| {
		let waiting = c.state.as_ref()?.waiting.as_ref()?;
		let reason = waiting.reason.as_deref()?;
		FAILED_REASONS.contains(&reason).then(|| {
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
			text
		})
	})
}
