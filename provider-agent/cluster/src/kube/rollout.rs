//! How a deal's Deployment replaces its pods on a new manifest: a strategy that fits the quota.
//!
//! The namespace's quota is exactly what the deal reserved, so a rolling update, which starts
//! new pods before the old ones are gone, only fits when the reservation has room for the new
//! pods beside the current ones. Terminating pods count against the quota until they are gone
//! (up to their grace period), and the Deployment controller does not wait for them: a rollout
//! with no room has its new pods refused (`exceeded quota`) and retried with backoff, which is
//! slower than replacing the pods outright and looks like a failure while it lasts.
//!
//! So, from the deal's quotas as the apply just wrote them (`reserved-pods` for CPU, memory
//! and pods, `reserved` for ephemeral storage and GPUs; their `spec.hard`, and `status.used`,
//! the pods running now):
//!
//! - **room for a whole new set** (`used + replicas × new pod ≤ hard` for every resource
//!   either quota limits): `RollingUpdate` with `maxSurge: 100%`, `maxUnavailable: 0`. The old pods
//!   serve until the new ones are ready: no downtime. That bound holds even if every old pod
//!   is still terminating while all new ones start;
//! - **otherwise**, or when the quota's usage is not known (a new namespace, a quota whose
//!   status the controller has not recomputed for its current limits): `Recreate`. The old
//!   pods are stopped and gone before the new ones are created, so the new ones fit; the deal
//!   is down for the old pods' shutdown and the new ones' start.
//!
//! The alternative, a quota with room for one surge pod that the deal is not billed for, would
//! hand out capacity the provider did not reserve for the deal; podchain does not do it.

use super::quantity;
use k8s_openapi::{
	api::{
		apps::v1::{Deployment, DeploymentStrategy, RollingUpdateDeployment},
		core::v1::ResourceQuota,
	},
	apimachinery::pkg::{api::resource::Quantity, util::intstr::IntOrString},
};
use std::collections::BTreeMap;

/// Replaces the pods outright: old ones gone first.
pub(crate) fn recreate() -> DeploymentStrategy {
	DeploymentStrategy { type_: Some("Recreate".into()), rolling_update: None }
}

/// Starts every new pod beside the old ones, then retires the old.
fn surge() -> DeploymentStrategy {
	DeploymentStrategy {
		type_: Some("RollingUpdate".into()),
		rolling_update: Some(RollingUpdateDeployment {
			max_surge: Some(IntOrString::String("100%".into())),
			max_unavailable: Some(IntOrString::Int(0)),
		}),
	}
}

/// The strategy for `deployment` under `quotas` (as the API server returned them on apply).
pub(super) fn strategy(quotas: &[ResourceQuota], deployment: &Deployment) -> DeploymentStrategy {
	if quotas.iter().all(|quota| has_room(quota, deployment)) {
		surge()
	} else {
		recreate()
	}
}

/// Whether the quota has room for a whole new set of the Deployment's pods beside what it
/// counts now.
fn has_room(quota: &ResourceQuota, deployment: &Deployment) -> bool {
	let Some(hard) = quota.spec.as_ref().and_then(|s| s.hard.as_ref()) else {
		return false; // no quota: not one of ours, do the safe thing
	};
	let status = quota.status.as_ref();
	let (Some(counted), Some(used)) =
		(status.and_then(|s| s.hard.as_ref()), status.and_then(|s| s.used.as_ref()))
	else {
		return false; // usage not computed yet
	};
	if counted != hard {
		return false; // usage computed for other limits: stale
	}
	let replicas = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
	let Ok(replicas) = u128::try_from(replicas) else { return false };
	let Some(pod) = pod_usage(deployment) else { return false };
	hard.iter().all(|(resource, limit)| {
		let need = pod.get(resource.as_str()).copied().unwrap_or(0);
		if need == 0 {
			return true;
		}
		let (Some(limit), Some(used)) = (
			quantity::nanos(&limit.0),
			used.get(resource).map_or(Some(0), |q| quantity::nanos(&q.0)),
		) else {
			return false;
		};
		need.checked_mul(replicas)
			.and_then(|new| new.checked_add(used))
			.is_some_and(|total| total <= limit)
	})
}

/// What one pod of the Deployment's template counts against a quota, by quota resource name
/// (`pods`, `requests.cpu` and its alias `cpu`, `limits.memory`...), in billionths; `None` if
/// a quantity does not parse.
fn pod_usage(deployment: &Deployment) -> Option<BTreeMap<String, u128>> {
	let pod = deployment.spec.as_ref()?.template.spec.as_ref()?;
	let mut usage = BTreeMap::from([("pods".to_owned(), 1_000_000_000u128)]);
	let mut add = |key: String, quantity: &Quantity| -> Option<()> {
		let value = quantity::nanos(&quantity.0)?;
		let entry = usage.entry(key).or_insert(0);
		*entry = entry.checked_add(value)?;
		Some(())
	};
	for container in pod.containers.iter().chain(pod.init_containers.iter().flatten()) {
		let Some(resources) = &container.resources else { continue };
		for (name, quantity) in resources.requests.iter().flatten() {
			add(format!("requests.{name}"), quantity)?;
			if matches!(name.as_str(), "cpu" | "memory" | "ephemeral-storage") {
				add(name.clone(), quantity)?;
			}
		}
		for (name, quantity) in resources.limits.iter().flatten() {
			add(format!("limits.{name}"), quantity)?;
		}
	}
	Some(usage)
}

#[cfg(test)]
mod tests {
	use super::*;
	use serde_json::json;

	/// The strategy under `quota` alone.
	fn strategy(quota: &ResourceQuota, deployment: &Deployment) -> DeploymentStrategy {
		super::strategy(std::slice::from_ref(quota), deployment)
	}

	/// A Deployment of `replicas` pods of one container asking `cpu` and `memory` (requests
	/// equal to limits).
	fn deployment(replicas: i32, cpu: &str, memory: &str) -> Deployment {
		serde_json::from_value(json!({
			"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"},
			"spec": {
				"replicas": replicas, "selector": {},
				"template": {"spec": {"containers": [{
					"name": "web",
					"resources": {
						"requests": {"cpu": cpu, "memory": memory},
						"limits": {"cpu": cpu, "memory": memory},
					},
				}]}},
			},
		}))
		.expect("a Deployment")
	}

	/// A quota of `cpu` and `memory` and 3 pods, its status as the controller computed it
	/// (`used`: `None` if not yet).
	fn quota(cpu: &str, memory: &str, used: Option<(&str, &str, &str)>) -> ResourceQuota {
		let hard = json!({
			"requests.cpu": cpu, "limits.cpu": cpu,
			"requests.memory": memory, "limits.memory": memory, "pods": "3",
		});
		let mut quota = json!({
			"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "reserved"},
			"spec": {"hard": hard},
		});
		if let Some((cpu, memory, pods)) = used {
			quota["status"] = json!({
				"hard": hard,
				"used": {
					"requests.cpu": cpu, "limits.cpu": cpu,
					"requests.memory": memory, "limits.memory": memory, "pods": pods,
				},
			});
		}
		serde_json::from_value(quota).expect("a ResourceQuota")
	}

	fn kind(strategy: &DeploymentStrategy) -> &str {
		strategy.type_.as_deref().unwrap_or("")
	}

	#[test]
	fn a_full_reservation_recreates() {
		// The deal: one pod of 100m, quota 100m, the pod running.
		let strategy = strategy(
			&quota("100m", "64Mi", Some(("100m", "64Mi", "1"))),
			&deployment(1, "100m", "64Mi"),
		);
		assert_eq!(strategy, recreate());
		assert_eq!(serde_json::to_value(&strategy).expect("json"), json!({"type": "Recreate"}));
	}

	#[test]
	fn room_for_a_new_set_rolls_without_downtime() {
		// Reserved for 2 pods, 1 running: a new one fits beside it.
		let s = strategy(
			&quota("200m", "128Mi", Some(("100m", "64Mi", "1"))),
			&deployment(1, "100m", "64Mi"),
		);
		assert_eq!(kind(&s), "RollingUpdate");
		assert_eq!(
			serde_json::to_value(&s).expect("json"),
			json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "100%", "maxUnavailable": 0}})
		);
		// Nothing running yet (a first deploy): room.
		let s = strategy(
			&quota("200m", "128Mi", Some(("0", "0", "0"))),
			&deployment(2, "100m", "64Mi"),
		);
		assert_eq!(kind(&s), "RollingUpdate");
	}

	#[test]
	fn any_resource_short_recreates() {
		// CPU fits, memory does not.
		let q = quota("400m", "128Mi", Some(("100m", "64Mi", "1")));
		assert_eq!(strategy(&q, &deployment(1, "100m", "100Mi")), recreate());
		// A bigger new pod than the old: 100m used + 2 × 160m > 400m (150m would just fit).
		let q = quota("400m", "1Gi", Some(("100m", "64Mi", "1")));
		assert_eq!(strategy(&q, &deployment(2, "160m", "64Mi")), recreate());
		assert_eq!(kind(&strategy(&q, &deployment(2, "150m", "64Mi"))), "RollingUpdate");
		// Pods: 2 running of 3 allowed, 2 more wanted.
		let q = quota("4", "4Gi", Some(("200m", "128Mi", "2")));
		assert_eq!(strategy(&q, &deployment(2, "100m", "64Mi")), recreate());
	}

	#[test]
	fn unknown_usage_recreates() {
		let d = deployment(1, "100m", "64Mi");
		assert_eq!(strategy(&quota("1", "1Gi", None), &d), recreate(), "not computed yet");
		// Computed for other limits (the quota just changed).
		let mut stale = quota("1", "1Gi", Some(("0", "0", "0")));
		if let Some(status) = stale.status.as_mut() {
			status.hard.as_mut().expect("hard").insert("pods".into(), Quantity("2".into()));
		}
		assert_eq!(strategy(&stale, &d), recreate());
		// A quantity that does not parse.
		let odd = quota("1", "1Gi", Some(("lots", "0", "0")));
		assert_eq!(strategy(&odd, &d), recreate());
		assert_eq!(strategy(&ResourceQuota::default(), &d), recreate(), "no quota");
	}

	#[test]
	fn every_quota_must_have_room() {
		// CPU, memory and pods fit; the other quota's ephemeral storage does not.
		let pods = quota("400m", "1Gi", Some(("100m", "64Mi", "1")));
		let storage: ResourceQuota = serde_json::from_value(json!({
			"metadata": {"name": "reserved"},
			"spec": {"hard": {"requests.ephemeral-storage": "2Gi"}},
			"status": {"hard": {"requests.ephemeral-storage": "2Gi"},
				"used": {"requests.ephemeral-storage": "1Gi"}},
		}))
		.expect("a ResourceQuota");
		let mut d = deployment(1, "100m", "64Mi");
		assert_eq!(kind(&super::strategy(&[pods.clone(), storage.clone()], &d)), "RollingUpdate");
		let container = &mut d.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers[0];
		let resources = container.resources.as_mut().unwrap();
		resources
			.requests
			.as_mut()
			.unwrap()
			.insert("ephemeral-storage".into(), Quantity("2Gi".into()));
		assert_eq!(kind(&strategy(&pods, &d)), "RollingUpdate");
		assert_eq!(super::strategy(&[pods, storage], &d), recreate());
	}
}
