//! deployed, status and logs.

use super::{list, metadata_list, mock, run};
use crate::{objects::manifest_hash_hex, Backend, ClusterError, DealStatus, Deployed};
use http::Method;
use serde_json::{json, Value};

pub(super) const NS: &str = "/api/v1/namespaces/podchain-deal-7";
pub(super) const SELECTOR: &str =
	"podchain.io/deal-id=7,app.kubernetes.io/managed-by=podchain-agent";

fn namespace_meta(deal: u64, hash: &str, terminating: bool) -> Value {
	let mut meta = json!({
		"name": format!("podchain-deal-{deal}"),
		"labels": {"podchain.io/deal-id": deal.to_string(), "app.kubernetes.io/managed-by": "podchain-agent"},
		"annotations": {"podchain.io/manifest-hash": hash},
	});
	if hash.is_empty() {
		meta["annotations"] = json!({});
	}
	if terminating {
		meta["deletionTimestamp"] = json!("2024-05-01T10:00:00Z");
	}
	json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": meta})
}

#[tokio::test]
async fn deployed_reads_deal_and_hash_from_namespaces() {
	let hash = [7u8; 32];
	let hex = manifest_hash_hex(&hash);
	let (backend, server) = mock();
	let deployed = run!(backend, server, |b| b.deployed(), move |mut server| async move {
		let exchange = server.expect(Method::GET, "/api/v1/namespaces").await;
		exchange.assert_query(&[(
			"labelSelector",
			"app.kubernetes.io/managed-by=podchain-agent,podchain.io/deal-id",
		)]);
		let mut list = metadata_list(&[]);
		list["items"] = json!([
			namespace_meta(7, &hex, false),
			namespace_meta(8, &hex, true),
			namespace_meta(9, "not-hex", false),
			namespace_meta(3, &hex.to_uppercase(), false),
			// Applied in part: no hash yet.
			namespace_meta(5, "", false),
		]);
		exchange.reply(200, list);
		server
	},)
	.expect("listed");
	assert_eq!(
		deployed,
		[
			Deployed { deal: 3, manifest_hash: hash },
			Deployed { deal: 5, manifest_hash: crate::UNKNOWN_MANIFEST },
			Deployed { deal: 7, manifest_hash: hash }
		]
	);
}

fn namespace(phase: &str) -> Value {
	json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "podchain-deal-7"}, "status": {"phase": phase}})
}

/// The hash of the manifest the fixtures' Deployment runs, and of an older one.
const NEW: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const OLD: &str = "1111111111111111111111111111111111111111111111111111111111111111";

/// A Deployment of 2 replicas of the manifest [`NEW`] at `revision`, its status with
/// `replicas` pods of which `updated` are of the current template and `ready` ready.
fn rollout(revision: u32, replicas: i32, updated: i32, ready: i32, conditions: Value) -> Value {
	json!({
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": {
			"name": "app", "namespace": "podchain-deal-7", "generation": 2,
			"annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
		},
		"spec": {
			"replicas": 2, "selector": {"matchLabels": {"podchain.io/deal-id": "7"}},
			"template": {"metadata": {"annotations": {"podchain.io/manifest-hash": NEW}}},
		},
		"status": {
			"observedGeneration": 2, "replicas": replicas, "updatedReplicas": updated,
			"readyReplicas": ready, "conditions": conditions,
		},
	})
}

fn deployment(ready: i32, conditions: Value) -> Value {
	rollout(1, 2, 2, ready, conditions)
}

/// A pod of the manifest [`NEW`], ready unless `waiting`.
fn pod(name: &str, waiting: Option<(&str, &str)>) -> Value {
	pod_of(name, NEW, waiting)
}

fn pod_of(name: &str, hash: &str, waiting: Option<(&str, &str)>) -> Value {
	let state = match waiting {
		Some((reason, message)) => json!({"waiting": {"reason": reason, "message": message}}),
		None => json!({"running": {"startedAt": "2024-05-01T10:00:00Z"}}),
	};
	let last_state = match waiting {
		Some(("CrashLoopBackOff", _)) => json!({"terminated": {"exitCode": 1, "reason": "Error"}}),
		_ => json!({}),
	};
	let ready = if waiting.is_none() { "True" } else { "False" };
	json!({
		"apiVersion": "v1", "kind": "Pod",
		"metadata": {
			"name": name, "namespace": "podchain-deal-7",
			"annotations": {"podchain.io/manifest-hash": hash},
		},
		"spec": {"containers": [{"name": "httpd", "image": "busybox"}, {"name": "side", "image": "busybox"}]},
		"status": {
			"phase": "Running",
			"conditions": [{"type": "Ready", "status": ready}],
			"containerStatuses": [{
				"name": "httpd", "image": "busybox", "imageID": "", "ready": waiting.is_none(),
				"restartCount": 3, "state": state, "lastState": last_state,
			}],
		},
	})
}

/// A pod of the manifest [`NEW`] that no node can take.
fn unschedulable(name: &str) -> Value {
	let mut pod = pod(name, None);
	pod["status"] = json!({
		"phase": "Pending",
		"conditions": [{
			"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
			"message": "0/1 nodes are available: 1 Insufficient cpu.",
		}],
	});
	pod
}

/// status with the namespace, the Deployment and the pods answered as given (`None`: 404).
async fn status_with(
	namespace: Option<Value>,
	deployment: Option<Value>,
	pods: Vec<Value>,
) -> Result<DealStatus, ClusterError> {
	let (backend, server) = mock();
	run!(backend, server, |b| b.status(7), |mut server| async move {
		let get = server.expect(Method::GET, NS).await;
		let Some(namespace) = namespace else {
			get.reply_status(404, "NotFound", "namespaces \"podchain-deal-7\" not found");
			return server;
		};
		let terminating = namespace["status"]["phase"] == "Terminating";
		get.reply(200, namespace);
		if terminating {
			return server;
		}
		let get = server
			.expect(Method::GET, "/apis/apps/v1/namespaces/podchain-deal-7/deployments/app")
			.await;
		let Some(deployment) = deployment else {
			get.reply_status(404, "NotFound", "deployments.apps \"app\" not found");
			return server;
		};
		get.reply(200, deployment);
		let exchange = server.expect(Method::GET, &format!("{NS}/pods")).await;
		exchange.assert_query(&[("labelSelector", SELECTOR)]);
		exchange.reply(200, list("Pod", pods));
		server
	},)
}

async fn status_of(deployment: Value, pods: Vec<Value>) -> DealStatus {
	status_with(Some(namespace("Active")), Some(deployment), pods).await.expect("status")
}

#[tokio::test]
async fn status_follows_the_deployment_and_its_pods() {
	assert_eq!(status_with(None, None, vec![]).await.expect("status"), DealStatus::Absent);
	assert_eq!(
		status_with(Some(namespace("Terminating")), None, vec![]).await.expect("status"),
		DealStatus::Absent
	);
	assert_eq!(
		status_with(Some(namespace("Active")), None, vec![]).await.expect("status"),
		DealStatus::Starting { ready: 0, wanted: 0 }
	);
	let running = vec![pod("app-a", None), pod("app-b", None)];
	assert_eq!(status_of(deployment(2, json!([])), running).await, DealStatus::Running);
	let creating = vec![pod("app-a", None), pod("app-b", Some(("ContainerCreating", "")))];
	assert_eq!(
		status_of(deployment(1, json!([])), creating).await,
		DealStatus::Starting { ready: 1, wanted: 2 }
	);
	let crashing =
		vec![pod("app-a", None), pod("app-b", Some(("CrashLoopBackOff", "back-off 40s")))];
	assert_eq!(
		status_of(deployment(1, json!([])), crashing).await,
		DealStatus::Failed {
			reason: "app-b/httpd: CrashLoopBackOff: back-off 40s (last exit 1: Error)".into()
		}
	);
	let no_image = vec![pod("app-a", Some(("ImagePullBackOff", "not found")))];
	assert!(status_of(deployment(0, json!([])), no_image).await.is_terminal());
	// A first failed pull is retried by the kubelet.
	let first_pull = vec![pod("app-a", Some(("ErrImagePull", "i/o timeout"))), pod("app-b", None)];
	assert_eq!(
		status_of(deployment(1, json!([])), first_pull).await,
		DealStatus::Degraded {
			ready: 1,
			wanted: 2,
			reason: "app-a/httpd: ErrImagePull: i/o timeout".into()
		}
	);
	let pending = vec![pod("app-a", None), unschedulable("app-b")];
	assert_eq!(
		status_of(deployment(1, json!([])), pending).await,
		DealStatus::Degraded {
			ready: 1,
			wanted: 2,
			reason: "app-b: Unschedulable: 0/1 nodes are available: 1 Insufficient cpu.".into()
		}
	);
	let deadline = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"app-5d\" has timed out progressing."}]);
	assert_eq!(
		status_of(deployment(0, deadline), vec![]).await,
		DealStatus::Failed {
			reason: "ProgressDeadlineExceeded: ReplicaSet \"app-5d\" has timed out progressing."
				.into()
		}
	);
}

/// A `ReplicaFailure` condition with `message`.
fn replica_failure(message: &str) -> Value {
	json!([{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": message}])
}

#[tokio::test]
async fn a_quota_refused_rollout_is_updating_not_failed() {
	// The case: the new pod is refused while the old one terminates and still counts
	// against the quota. The old pod is being deleted; its new replacement is not there yet.
	let quota = "pods \"app-7c9f-x2\" is forbidden: exceeded quota: reserved, requested: requests.cpu=100m, used: requests.cpu=100m, limited: requests.cpu=100m";
	let mut terminating = pod_of("app-old", OLD, Some(("CrashLoopBackOff", "back-off")));
	terminating["metadata"]["deletionTimestamp"] = json!("2024-05-01T10:00:00Z");
	let status = status_of(rollout(2, 1, 1, 0, replica_failure(quota)), vec![terminating]).await;
	assert_eq!(
		status,
		DealStatus::Degraded { ready: 0, wanted: 2, reason: format!("FailedCreate: {quota}") }
	);
	assert!(!status.is_terminal());

	// Old pods still serving while the new ones come: updating, whatever the old ones do.
	let pods = vec![
		pod_of("app-old-a", OLD, None),
		pod_of("app-old-b", OLD, Some(("CrashLoopBackOff", "back-off"))),
		pod("app-new-a", None),
		pod("app-new-b", Some(("ContainerCreating", ""))),
	];
	assert_eq!(
		status_of(rollout(2, 3, 2, 2, json!([])), pods).await,
		DealStatus::Updating { ready: 1, wanted: 2 }
	);
	// Every replica updated and ready but an old one still counted: not done yet.
	let pods = vec![pod_of("app-old-a", OLD, None), pod("app-new-a", None), pod("app-new-b", None)];
	assert_eq!(
		status_of(rollout(2, 3, 2, 3, json!([])), pods).await,
		DealStatus::Updating { ready: 2, wanted: 2 }
	);
	// Done.
	let pods = vec![pod("app-new-a", None), pod("app-new-b", None)];
	assert_eq!(status_of(rollout(2, 2, 2, 2, json!([])), pods).await, DealStatus::Running);
}

#[tokio::test]
async fn a_new_namespace_not_ready_yet_is_starting_not_failed() {
	for message in [
		"pods \"app-5d-x\" is forbidden: status unknown for quota: reserved, resource: requests.cpu",
		"pods \"app-5d-x\" is forbidden: error looking up service account podchain-deal-7/default: serviceaccount \"default\" not found",
	] {
		let status = status_of(deployment(0, replica_failure(message)), vec![]).await;
		assert_eq!(
			status,
			DealStatus::Degraded { ready: 0, wanted: 2, reason: format!("FailedCreate: {message}") }
		);
	}
	// A pod spec that admission refuses will never pass.
	let refused = "pods \"app-5d-x\" is forbidden: violates PodSecurity \"restricted:latest\": runAsNonRoot != true";
	assert_eq!(
		status_of(deployment(0, replica_failure(refused)), vec![]).await,
		DealStatus::Failed { reason: format!("FailedCreate: {refused}") }
	);
}

#[tokio::test]
async fn reasons_are_capped() {
	let long = "x".repeat(5000);
	let status = status_of(deployment(0, replica_failure(&long)), vec![]).await;
	let DealStatus::Degraded { reason, .. } = status else { panic!("{status:?}") };
	assert!(reason.len() <= 1024 + " [cut]".len(), "{}", reason.len());
	assert!(reason.ends_with(" [cut]"));
}

/// rolled_out with the Deployment answered as given (`None`: 404).
async fn rolled_out_with(deployment: Option<Value>, hash: &str) -> Result<bool, ClusterError> {
	let hash = crate::objects::manifest_hash_from_hex(hash).expect("hex");
	let (backend, server) = mock();
	run!(backend, server, |b| b.rolled_out(7, hash), |mut server| async move {
		let get = server
			.expect(Method::GET, "/apis/apps/v1/namespaces/podchain-deal-7/deployments/app")
			.await;
		match deployment {
			Some(deployment) => get.reply(200, deployment),
			None => get.reply_status(404, "NotFound", "deployments.apps \"app\" not found"),
		}
		server
	},)
}

#[tokio::test]
async fn rolled_out_waits_for_every_new_replica_ready() {
	let done = rollout(2, 2, 2, 2, json!([]));
	assert!(rolled_out_with(Some(done.clone()), NEW).await.expect("read"));
	// The template is of another manifest (the apply has not reached the Deployment).
	assert!(!rolled_out_with(Some(done.clone()), OLD).await.expect("read"));
	// The controller has not seen the new template yet.
	let mut unobserved = done.clone();
	unobserved["status"]["observedGeneration"] = json!(1);
	assert!(!rolled_out_with(Some(unobserved), NEW).await.expect("read"));
	// New pods not all ready; an old one still there; a new one missing.
	assert!(!rolled_out_with(Some(rollout(2, 2, 2, 1, json!([]))), NEW).await.expect("read"));
	assert!(!rolled_out_with(Some(rollout(2, 3, 2, 3, json!([]))), NEW).await.expect("read"));
	assert!(!rolled_out_with(Some(rollout(2, 2, 1, 2, json!([]))), NEW).await.expect("read"));
	// No Deployment: not rolled out; an outage is an error, not a no.
	assert!(!rolled_out_with(None, NEW).await.expect("read"));
	let (backend, server) = mock();
	let hash = crate::objects::manifest_hash_from_hex(NEW).expect("hex");
	let result = run!(backend, server, |b| b.rolled_out(7, hash), |mut server| async move {
		server
			.expect(Method::GET, "/apis/apps/v1/namespaces/podchain-deal-7/deployments/app")
			.await
			.reply_status(503, "ServiceUnavailable", "etcd leader changed");
		server
	},);
	assert!(matches!(result, Err(ClusterError::Unavailable(_))), "{result:?}");
}

#[tokio::test]
async fn logs_merge_containers_from_since() {
	let (backend, server) = mock();
	// 10:00:00.500: the API is asked from 10:00:00, earlier lines are dropped here.
	let since = 1_714_557_600_500u64;
	let lines = run!(
		backend,
		server,
		|b| b.logs(7, since, 10),
		|mut server| async move {
			let exchange = server.expect(Method::GET, &format!("{NS}/pods")).await;
			exchange.assert_query(&[("labelSelector", SELECTOR)]);
			exchange.reply(200, list("Pod", vec![pod("app-a", None)]));
			let exchange = server.expect(Method::GET, &format!("{NS}/pods/app-a/log")).await;
			exchange.assert_query(&[
				("container", "httpd"),
				("limitBytes", "4096"),
				("sinceTime", "2024-05-01T10:00:00Z"),
				("timestamps", "true"),
			]);
			let body = "2024-05-01T10:00:00.100Z too early\n2024-05-01T10:00:01.000000001Z started\n2024-05-01T10:00:03Z GET / \u{fffd}\n";
			let mut bytes = body.as_bytes().to_vec();
			bytes.extend_from_slice(b"2024-05-01T10:00:04Z raw \xff byte\n");
			exchange.reply_bytes(200, bytes);
			// The sidecar has not started: skipped, not an error.
			server
				.expect(Method::GET, &format!("{NS}/pods/app-a/log"))
				.await
				.reply_status(400, "BadRequest", "container \"side\" in pod \"app-a\" is waiting to start");
			server
		},
	)
	.expect("logs");
	let got: Vec<(&str, u64, &str)> =
		lines.iter().map(|l| (l.container.as_str(), l.timestamp_ms, l.text.as_str())).collect();
	assert_eq!(
		got,
		[
			("app-a/httpd", since + 500, "started"),
			("app-a/httpd", since + 2_500, "GET / \u{fffd}"),
			("app-a/httpd", since + 3_500, "raw \u{fffd} byte"),
		]
	);
}
