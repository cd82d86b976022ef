//! Applying a deal's objects, pruning what it no longer has, and removing it.

use super::{rollout, KubeBackend};
use crate::{
	objects::{
		manifest_hash_hex, namespace_name, DEAL_LABEL, MANAGED_BY_LABEL, MANAGER,
		MANIFEST_HASH_ANNOTATION,
	},
	ClusterError, DealId, DealObjects,
};
use ::kube::{
	api::{Api, DeleteParams, ListParams, Patch, PatchParams},
	Resource, ResourceExt,
};
use k8s_openapi::{
	api::{
		core::v1::{Namespace, PersistentVolumeClaim, Secret, Service},
		networking::v1::Ingress,
	},
	NamespaceResourceScope,
};
use serde::{de::DeserializeOwned, Serialize};
use std::fmt::Debug;

/// The label selector of a deal's objects.
pub(super) fn deal_selector(deal: DealId) -> String {
	format!("{DEAL_LABEL}={deal},{MANAGED_BY_LABEL}={MANAGER}")
}

fn apply_params() -> PatchParams {
	PatchParams::apply(MANAGER).force()
}

/// Field manager of the namespace's manifest-hash annotation alone. Owned apart from the rest
/// so that applying the namespace first (without it) leaves the hash of what last ran in full.
pub(super) const HASH_MANAGER: &str = "podchain-agent-manifest-hash";

/// Applies every object, namespace first (everything else lives in it) and Deployment last
/// (its pods need the secrets and claims), then prunes, and only then records the manifest's
/// hash on the namespace: an apply cut short (an outage, the agent killed) leaves the old
/// hash, or none, so the next round applies again instead of taking the deal as deployed.
pub(super) async fn apply(
	backend: &KubeBackend,
	objects: &DealObjects,
) -> Result<(), ClusterError> {
	let namespace = objects.namespace.name_any();
	if namespace != namespace_name(objects.deal) {
		return Err(ClusterError::Other(format!(
			"deal {} has namespace {namespace:?}, not {:?}",
			objects.deal,
			namespace_name(objects.deal)
		)));
	}
	let namespaces: Api<Namespace> = Api::all(backend.client.clone());
	let mut without_hash = objects.namespace.clone();
	if let Some(annotations) = without_hash.metadata.annotations.as_mut() {
		annotations.remove(MANIFEST_HASH_ANNOTATION);
	}
	let applied = backend
		.call(
			"apply namespace",
			namespaces.patch(&namespace, &apply_params(), &Patch::Apply(&without_hash)),
		)
		.await?;
	if applied.metadata.deletion_timestamp.is_some() {
		// Nothing can be created in it until it is gone.
		return Err(ClusterError::Unavailable(format!("namespace {namespace} is being deleted")));
	}
	// The pods' quota first: a namespace of an older agent, whose `reserved` quota also held
	// CPU and memory, never goes without a limit on them.
	let pod_quota = apply_one(backend, &namespace, &objects.pod_quota).await?;
	let quota = apply_one(backend, &namespace, &objects.quota).await?;
	apply_one(backend, &namespace, &objects.snapshot_quota).await?;
	apply_one(backend, &namespace, &objects.limit_range).await?;
	apply_one(backend, &namespace, &objects.network_policy).await?;
	for secret in &objects.secrets {
		apply_one(backend, &namespace, secret).await?;
	}
	for claim in &objects.volumes {
		apply_one(backend, &namespace, claim).await?;
	}
	for service in &objects.services {
		apply_one(backend, &namespace, service).await?;
	}
	if let Some(ingress) = &objects.ingress {
		apply_one(backend, &namespace, ingress).await?;
	}
	// How it replaces its pods on a change depends on the room the quotas have now.
	let mut deployment = objects.deployment.clone();
	if let Some(spec) = deployment.spec.as_mut() {
		spec.strategy = Some(rollout::strategy(&[pod_quota, quota], &objects.deployment));
	}
	apply_one(backend, &namespace, &deployment).await?;

	// After the Deployment, so that no new pod refers to what is pruned.
	let deal = objects.deal;
	prune::<Ingress>(backend, &namespace, deal, objects.ingress.iter().map(|o| o.name_any()))
		.await?;
	prune::<Service>(backend, &namespace, deal, objects.services.iter().map(|o| o.name_any()))
		.await?;
	prune::<Secret>(backend, &namespace, deal, objects.secrets.iter().map(|o| o.name_any()))
		.await?;
	prune::<PersistentVolumeClaim>(
		backend,
		&namespace,
		deal,
		objects.volumes.iter().map(|o| o.name_any()),
	)
	.await?;

	let hash = serde_json::json!({
		"apiVersion": "v1",
		"kind": "Namespace",
		"metadata": {
			"name": namespace,
			"annotations": { MANIFEST_HASH_ANNOTATION: manifest_hash_hex(&objects.manifest_hash) },
		},
	});
	let params = PatchParams::apply(HASH_MANAGER).force();
	backend
		.call(
			"record the manifest hash",
			namespaces.patch(&namespace, &params, &Patch::Apply(&hash)),
		)
		.await?;
	Ok(())
}

/// Server-side applies one object of the deal's namespace; returns it as the API server
/// stored it (status included).
async fn apply_one<K>(backend: &KubeBackend, namespace: &str, object: &K) -> Result<K, ClusterError>
where
	K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
		+ Clone
		+ Debug
		+ DeserializeOwned
		+ Serialize,
{
	let name = object.name_any();
	let api: Api<K> = Api::namespaced(backend.client.clone(), namespace);
	let what = format!("apply {} {name}", K::kind(&()));
	backend.call(&what, api.patch(&name, &apply_params(), &Patch::Apply(object))).await
}

/// Deletes the deal's objects of kind `K` whose names are not in `keep`: what a new manifest
/// dropped (an exposure, a secret, a volume).
async fn prune<K>(
	backend: &KubeBackend,
	namespace: &str,
	deal: DealId,
	keep: impl Iterator<Item = String>,
) -> Result<(), ClusterError>
where
	K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
		+ Clone
		+ Debug
		+ DeserializeOwned,
{
	let keep: Vec<String> = keep.collect();
	let api: Api<K> = Api::namespaced(backend.client.clone(), namespace);
	let kind = K::kind(&());
	// Metadata only: no need to download the secrets' values to learn their names.
	let listed = backend
		.call(
			&format!("list {kind}"),
			api.list_metadata(&ListParams::default().labels(&deal_selector(deal))),
		)
		.await?;
	for object in listed.items {
		let name = object.name_any();
		if keep.contains(&name) {
			continue;
		}
		tracing::info!(%kind, %name, "pruning an object the deal no longer has");
		backend
			.call_allowing(
				&format!("delete {kind} {name}"),
				api.delete(&name, &DeleteParams::background()),
				&[404],
			)
			.await?;
	}
	Ok(())
}

/// Deletes the deal's namespace; Kubernetes deletes everything in it. A namespace already gone
/// (404) or already being deleted (409) is success.
pub(super) async fn remove(backend: &KubeBackend, deal: DealId) -> Result<(), ClusterError> {
	let namespaces: Api<Namespace> = Api::all(backend.client.clone());
	let name = namespace_name(deal);
	backend
		.call_allowing(
			"delete namespace",
			namespaces.delete(&name, &DeleteParams::background()),
			&[404, 409],
		)
		.await?;
	Ok(())
}
