//! A deal's objects as the YAML podman 4.3's `play/kube` runs.
//!
//! Documents are JSON (valid YAML) separated by `---`: the claims, then the Deployment
//! (podman runs `replicas` pods named `<deployment>-pod-<i>`). Rewritten for podman:
//!
//! - Kubernetes-only kinds are left out: Namespace, ResourceQuota, LimitRange, NetworkPolicy,
//!   Service, Ingress (podman would skip them anyway), and Secret (see below).
//! - Names are host-global in podman (no namespaces): the Deployment is `podchain-deal-<deal>`,
//!   and every pod volume and claim is `d<deal>-<name>`, else two deals' `emptyDir`s of the
//!   same name would be one shared volume.
//! - Pods join the deal's own network (the play's `network` parameter, see `network.rs`), never
//!   the host's: `hostNetwork` is cleared. Container ports are dropped: nothing is published on
//!   the host (a `hostPort` would bypass the gateway); the gateway reaches the pods' addresses.
//! - Secret values are inlined as env `value`s: podman 4.3.1 stores a Secret document as an
//!   opaque podman secret that `secretKeyRef` then fails to read ("not valid JSON"), and
//!   mounts secret volumes as base64 text. Secret volumes are refused for the same reason.
//! - `imagePullPolicy: IfNotPresent`: a local image runs without a registry.
//! - Only `persistentVolumeClaim` and `emptyDir` volumes are accepted: nothing of the host.
//! - Resource limits are kept: podman applies `limits.cpu` (CFS quota) and `limits.memory`
//!   (not `ephemeral-storage`).
//!   So are `runAsUser`/`runAsGroup`, dropped capabilities and `allowPrivilegeEscalation`.
//!   `fsGroup` is not applied: a new volume takes the owner of the image's directory it is
//!   mounted on, or the container's user if the image has no such directory.
//! - podman keeps the template's labels on the pods and containers, and the Deployment's
//!   annotations on the containers only; so the deal, provider, manager, replica count and
//!   manifest hash are (also) template labels, which a pod listing returns.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, EnvVar, Secret, Volume};

use super::{deployment_name, volume_prefix, REPLICAS_LABEL};
use crate::{
	objects::{manifest_hash_hex, DEAL_LABEL, MANAGED_BY_LABEL, MANAGER, MANIFEST_HASH_ANNOTATION},
	ClusterError, DealId, DealObjects,
};

/// A deal's documents, ready to play.
#[derive(Clone, Debug)]
pub(crate) struct Rendered {
	/// The deal.
	pub deal: DealId,
	/// Lowercase hex of the manifest hash, as labelled on the pods.
	pub hash: String,
	/// Pods the Deployment runs.
	pub replicas: u32,
	/// Claims by (prefixed) name, as JSON.
	claims: BTreeMap<String, String>,
	/// The Deployment, as JSON.
	deployment: String,
}

impl Rendered {
	/// The YAML body for `play/kube`, without the claims whose volumes already exist (podman
	/// refuses to create a volume twice, and their data must survive a manifest update).
	pub fn yaml(&self, existing_volumes: &BTreeSet<String>) -> String {
		let mut documents: Vec<&str> = self
			.claims
			.iter()
			.filter(|(name, _)| !existing_volumes.contains(*name))
			.map(|(_, json)| json.as_str())
			.collect();
		documents.push(&self.deployment);
		documents.join("\n---\n")
	}
}

/// Renders `objects` for podman; refuses objects podman cannot run faithfully.
pub(crate) fn render(objects: &DealObjects) -> Result<Rendered, ClusterError> {
	let deal = objects.deal;
	let hash = manifest_hash_hex(&objects.manifest_hash);
	let prefix = volume_prefix(deal);
	let mut deployment = objects.deployment.clone();
	let replicas = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
	let replicas =
		u32::try_from(replicas).map_err(|_| refused(deal, format!("{replicas} replicas")))?;

	// Labels every pod carries: the Deployment's own, then ours.
	let mut labels = deployment.metadata.labels.clone().unwrap_or_default();
	labels.insert(DEAL_LABEL.to_owned(), deal.to_string());
	labels.insert(MANAGED_BY_LABEL.to_owned(), MANAGER.to_owned());
	labels.insert(MANIFEST_HASH_ANNOTATION.to_owned(), hash.clone());
	labels.insert(REPLICAS_LABEL.to_owned(), replicas.to_string());

	let meta = &mut deployment.metadata;
	meta.name = Some(deployment_name(deal));
	meta.namespace = None;
	meta.annotations
		.get_or_insert_with(BTreeMap::new)
		.insert(MANIFEST_HASH_ANNOTATION.to_owned(), hash.clone());
	let spec = deployment.spec.get_or_insert_with(Default::default);
	spec.replicas = i32::try_from(replicas).ok();
	let template = spec.template.metadata.get_or_insert_with(Default::default);
	template.labels.get_or_insert_with(BTreeMap::new).extend(labels.clone());
	template.namespace = None;
	let pod = spec.template.spec.as_mut().ok_or_else(|| refused(deal, "no pod spec".into()))?;
	pod.host_network = None;
	// Containers are killed at once when podman stops them for its own reasons (an infra
	// container gone), as the backend's own stops and removals do: never a 10 s wait with the
	// deal half down.
	pod.termination_grace_period_seconds = Some(0);
	let containers = pod.containers.iter_mut().chain(pod.init_containers.iter_mut().flatten());
	for container in containers {
		rewrite_container(container, &objects.secrets, &prefix)
			.map_err(|e| refused(deal, format!("container {}: {e}", container.name)))?;
	}
	for volume in pod.volumes.iter_mut().flatten() {
		rewrite_volume(volume, &prefix).map_err(|e| refused(deal, e))?;
	}

	let mut claims = BTreeMap::new();
	for claim in &objects.volumes {
		let mut claim = claim.clone();
		let name = format!("{prefix}{}", claim.metadata.name.as_deref().unwrap_or_default());
		claim.metadata.name = Some(name.clone());
		claim.metadata.namespace = None;
		let claim_labels = claim.metadata.labels.get_or_insert_with(BTreeMap::new);
		claim_labels.insert(DEAL_LABEL.to_owned(), deal.to_string());
		claim_labels.insert(MANAGED_BY_LABEL.to_owned(), MANAGER.to_owned());
		claims.insert(name, to_json(deal, &claim)?);
	}
	Ok(Rendered { deal, hash, replicas, claims, deployment: to_json(deal, &deployment)? })
}

fn refused(deal: DealId, why: String) -> ClusterError {
	ClusterError::Refused(format!("deal {deal} cannot run on podman: {why}"))
}

fn to_json(deal: DealId, value: &impl serde::Serialize) -> Result<String, ClusterError> {
	serde_json::to_string(value)
		.map_err(|e| ClusterError::Other(format!("deal {deal}: encoding an object: {e}")))
}

fn rewrite_container(
	container: &mut Container,
	secrets: &[Secret],
	prefix: &str,
) -> Result<(), String> {
	container.image_pull_policy = Some("IfNotPresent".to_owned());
	// Published ports would open the host to the deal: the gateway reaches the pod itself.
	container.ports = None;
	for mount in container.volume_mounts.iter_mut().flatten() {
		mount.name = format!("{prefix}{}", mount.name);
	}
	// Variables from `envFrom` come first so that `env` overrides them, as in Kubernetes.
	let mut env = Vec::new();
	let mut env_from = Vec::new();
	for source in container.env_from.take().into_iter().flatten() {
		let Some(secret_ref) = &source.secret_ref else {
			env_from.push(source);
			continue;
		};
		let optional = secret_ref.optional.unwrap_or(false);
		let Some(secret) =
			secrets.iter().find(|s| s.metadata.name.as_deref() == Some(secret_ref.name.as_str()))
		else {
			if optional {
				continue;
			}
			return Err(format!("secret {} is missing", secret_ref.name));
		};
		let prefix = source.prefix.as_deref().unwrap_or_default();
		for key in secret_keys(secret) {
			let value = secret_value(secret, &key)?;
			env.push(plain(format!("{prefix}{key}"), value.unwrap_or_default()));
		}
	}
	for var in container.env.take().into_iter().flatten() {
		let Some(selector) = var.value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref()) else {
			env.push(var);
			continue;
		};
		let secret =
			secrets.iter().find(|s| s.metadata.name.as_deref() == Some(selector.name.as_str()));
		let value = match secret {
			Some(secret) => secret_value(secret, &selector.key)?,
			None => None,
		};
		match value {
			Some(value) => env.push(plain(var.name, value)),
			None if selector.optional.unwrap_or(false) => {}
			None => {
				return Err(format!("secret key {}/{} is missing", selector.name, selector.key))
			}
		}
	}
	container.env = (!env.is_empty()).then_some(env);
	container.env_from = (!env_from.is_empty()).then_some(env_from);
	Ok(())
}

fn plain(name: String, value: String) -> EnvVar {
	EnvVar { name, value: Some(value), value_from: None }
}

/// Keys of a Secret (`data` and `stringData`).
fn secret_keys(secret: &Secret) -> BTreeSet<String> {
	let data = secret.data.iter().flatten().map(|(k, _)| k.clone());
	data.chain(secret.string_data.iter().flatten().map(|(k, _)| k.clone())).collect()
}

/// A Secret's value as text; `stringData` wins over `data`, as in Kubernetes.
fn secret_value(secret: &Secret, key: &str) -> Result<Option<String>, String> {
	if let Some(value) = secret.string_data.as_ref().and_then(|d| d.get(key)) {
		return Ok(Some(value.clone()));
	}
	match secret.data.as_ref().and_then(|d| d.get(key)) {
		Some(bytes) => String::from_utf8(bytes.0.clone()).map(Some).map_err(|_| {
			let name = secret.metadata.name.as_deref().unwrap_or_default();
			format!("secret key {name}/{key} is not UTF-8 text: podman env values are text")
		}),
		None => Ok(None),
	}
}

fn rewrite_volume(volume: &mut Volume, prefix: &str) -> Result<(), String> {
	if let Some(claim) = &mut volume.persistent_volume_claim {
		claim.claim_name = format!("{prefix}{}", claim.claim_name);
	} else if volume.secret.is_some() {
		// podman 4.3.1 mounts the base64 text, not the values (and panics without `optional`).
		return Err(format!("volume {}: secret volumes do not work on podman 4.3", volume.name));
	} else if volume.empty_dir.is_none() {
		return Err(format!(
			"volume {}: only persistentVolumeClaim and emptyDir volumes run on podman",
			volume.name
		));
	}
	volume.name = format!("{prefix}{}", volume.name);
	Ok(())
}
