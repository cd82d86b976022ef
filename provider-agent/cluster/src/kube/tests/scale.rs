//! Scale to zero on Kubernetes: the Deployment's scale subresource, and an idle deal's status.

use super::{mock, run};
use crate::{kube::status::classify, Backend, ClusterError, DealStatus};
use http::Method;
use k8s_openapi::api::apps::v1::Deployment;
use serde_json::json;

const SCALE: &str = "/apis/apps/v1/namespaces/podchain-deal-7/deployments/app/scale";

fn scale(replicas: u8) -> serde_json::Value {
	json!({
		"apiVersion": "autoscaling/v1", "kind": "Scale",
		"metadata": {"name": "app", "namespace": "podchain-deal-7"},
		"spec": {"replicas": replicas}, "status": {"replicas": replicas},
	})
}

#[tokio::test]
async fn sleeping_and_waking_patch_the_deployments_scale() {
	for (awake, replicas) in [(false, 0u8), (true, 1)] {
		let (backend, server) = mock();
		let result = run!(backend, server, |b| b.set_awake(7, awake), |mut server| async move {
			let patch = server.expect(Method::PATCH, SCALE).await;
			assert_eq!(patch.json(), json!({"spec": {"replicas": replicas}}));
			patch.reply(200, scale(replicas));
			server
		});
		result.expect("scaled");
	}
}

#[tokio::test]
async fn a_deal_without_a_deployment_cannot_be_woken() {
	let (backend, server) = mock();
	let result = run!(backend, server, |b| b.set_awake(7, true), |mut server| async move {
		server.expect(Method::PATCH, SCALE).await.reply_status(404, "NotFound", "not found");
		server
	});
	assert!(matches!(result, Err(ClusterError::Refused(_))), "{result:?}");
}

#[test]
fn a_deployment_scaled_to_zero_is_idle_only_if_it_scales_to_zero() {
	let deployment = |idle: bool| -> Deployment {
		let mut labels = json!({"podchain.io/deal-id": "7"});
		if idle {
			labels["podchain.io/idle-seconds"] = json!("300");
		}
		serde_json::from_value(json!({
			"metadata": {"name": "app", "namespace": "podchain-deal-7", "generation": 2},
			"spec": {
				"replicas": 0,
				"selector": {"matchLabels": {"podchain.io/deal-id": "7"}},
				"template": {"metadata": {"labels": labels}, "spec": {"containers": []}},
			},
			"status": {"observedGeneration": 2},
		}))
		.expect("a Deployment")
	};
	assert_eq!(classify(&deployment(true), &[]), DealStatus::Idle);
	assert_ne!(classify(&deployment(false), &[]), DealStatus::Idle);
}
