//! deployed, status, sample and logs.

use super::{list, metadata_list, mock, run, ApiServer};
use crate::{
	kube::{KubeBackend, VOLUMES_SOURCE},
	objects::manifest_hash_hex,
	Backend, ClusterError, DealStatus, Deployed, Sample,
};
use http::Method;
use serde_json::{json, Value};

const NS: &str = "/api/v1/namespaces/podchain-deal-7";
const SELECTOR: &str = "podchain.io/deal-id=7,app.kubernetes.io/managed-by=podchain-agent";
const METRICS: &str = "/apis/metrics.k8s.io/v1beta1/namespaces/podchain-deal-7/pods";

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

fn deployment(ready: i32, conditions: Value) -> Value {
	json!({
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": {"name": "app", "namespace": "podchain-deal-7", "generation": 2},
		"spec": {"replicas": 2, "selector": {"matchLabels": {"podchain.io/deal-id": "7"}}, "template": {}},
		"status": {
			"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "readyReplicas": ready,
			"conditions": conditions,
		},
	})
}

fn pod(name: &str, waiting: Option<(&str, &str)>) -> Value {
	let state = match waiting {
		Some((reason, message)) => json!({"waiting": {"reason": reason, "message": message}}),
		None => json!({"running": {"startedAt": "2024-05-01T10:00:00Z"}}),
	};
	let last_state = match waiting {
		Some(("CrashLoopBackOff", _)) => json!({"terminated": {"exitCode": 1, "reason": "Error"}}),
		_ => json!({}),
	};
	json!({
		"apiVersion": "v1", "kind": "Pod",
		"metadata": {"name": name, "namespace": "podchain-deal-7"},
		"spec": {"containers": [{"name": "httpd", "image": "busybox"}, {"name": "side", "image": "busybox"}]},
		"status": {"phase": "Running", "containerStatuses": [{
			"name": "httpd", "image": "busybox", "imageID": "", "ready": waiting.is_none(),
			"restartCount": 3, "state": state, "lastState": last_state,
		}]},
	})
}

/// status with the namespace, the Deployment and the pods answered as given (`None`: 404;
/// pods `None`: not asked).
async fn status_with(
	namespace: Option<Value>,
	deployment: Option<Value>,
	pods: Option<Vec<Value>>,
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
		if let Some(pods) = pods {
			let exchange = server.expect(Method::GET, &format!("{NS}/pods")).await;
			exchange.assert_query(&[("labelSelector", SELECTOR)]);
			exchange.reply(200, list("Pod", pods));
		}
		server
	},)
}

#[tokio::test]
async fn status_follows_the_deployment_and_its_pods() {
	let active = || Some(namespace("Active"));
	assert_eq!(status_with(None, None, None).await.expect("status"), DealStatus::Absent);
	assert_eq!(
		status_with(Some(namespace("Terminating")), None, None).await.expect("status"),
		DealStatus::Absent
	);
	assert_eq!(
		status_with(active(), None, None).await.expect("status"),
		DealStatus::Starting { ready: 0, wanted: 0 }
	);
	let running = status_with(
		active(),
		Some(deployment(2, json!([]))),
		Some(vec![pod("app-a", None), pod("app-b", None)]),
	);
	assert_eq!(running.await.expect("status"), DealStatus::Running);
	let creating = vec![pod("app-a", None), pod("app-b", Some(("ContainerCreating", "")))];
	assert_eq!(
		status_with(active(), Some(deployment(1, json!([]))), Some(creating))
			.await
			.expect("status"),
		DealStatus::Starting { ready: 1, wanted: 2 }
	);
	let crashing =
		vec![pod("app-a", None), pod("app-b", Some(("CrashLoopBackOff", "back-off 40s")))];
	assert_eq!(
		status_with(active(), Some(deployment(1, json!([]))), Some(crashing))
			.await
			.expect("status"),
		DealStatus::Failed {
			reason: "app-b/httpd: CrashLoopBackOff: back-off 40s (last exit 1: Error)".into()
		}
	);
	let quota = json!([{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "exceeded quota: reserved"}]);
	assert_eq!(
		status_with(active(), Some(deployment(0, quota)), None).await.expect("status"),
		DealStatus::Failed { reason: "FailedCreate: exceeded quota: reserved".into() }
	);
}

fn pod_metrics(timestamp: &str, cpu: &str, memory: &str) -> Value {
	json!({
		"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {},
		"items": [{
			"metadata": {"name": "app-a", "namespace": "podchain-deal-7"},
			"timestamp": timestamp, "window": "30s",
			"containers": [
				{"name": "httpd", "usage": {"cpu": cpu, "memory": memory}},
				{"name": "side", "usage": {"cpu": "0", "memory": "0"}},
			],
		}],
	})
}

fn claim(name: &str, capacity: Option<&str>, request: &str) -> Value {
	let mut claim = json!({
		"apiVersion": "v1", "kind": "PersistentVolumeClaim",
		"metadata": {"name": name, "namespace": "podchain-deal-7"},
		"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": request}}},
	});
	if let Some(capacity) = capacity {
		claim["status"] = json!({"phase": "Bound", "capacity": {"storage": capacity}});
	}
	claim
}

/// One sample call: the metrics answered with `metrics`, the claims with `claims`.
async fn sample(
	backend: KubeBackend,
	server: ApiServer,
	metrics: Value,
	claims: Vec<Value>,
) -> (KubeBackend, ApiServer, Result<Vec<(String, Sample)>, ClusterError>) {
	let script = tokio::spawn(async move {
		let mut server = server;
		server.expect(Method::GET, METRICS).await.reply(200, metrics);
		let exchange = server.expect(Method::GET, &format!("{NS}/persistentvolumeclaims")).await;
		exchange.assert_query(&[("labelSelector", SELECTOR)]);
		exchange.reply(200, list("PersistentVolumeClaim", claims));
		server
	});
	let result = backend.sample(7).await;
	let server = match script.await {
		Ok(server) => server,
		Err(err) => std::panic::resume_unwind(err.into_panic()),
	};
	(backend, server, result)
}

#[tokio::test]
async fn sample_integrates_cpu_over_metrics_windows() {
	let (backend, server) = mock();
	let t0 = 1_714_557_600_000u64; // 2024-05-01T10:00:00Z
	let claims = || vec![claim("vol-data", Some("1Gi"), "1Gi"), claim("vol-cache", None, "500Mi")];
	let metrics = pod_metrics("2024-05-01T10:00:00Z", "250m", "1234Ki");
	let (backend, server, first) = sample(backend, server, metrics.clone(), claims()).await;
	let first = first.expect("sampled");
	let sources: Vec<&str> = first.iter().map(|(s, _)| s.as_str()).collect();
	assert_eq!(sources, ["app-a/httpd", "app-a/side", VOLUMES_SOURCE]);
	// 250m over the 30 s window.
	assert_eq!(
		first[0].1,
		Sample {
			at_millis: t0,
			cpu_nanos: 7_500_000_000,
			memory_bytes: 1234 * 1024,
			storage_bytes: 0,
			egress_bytes: 0
		}
	);
	assert_eq!(first[1].1.cpu_nanos, 0);
	assert_eq!(first[2].1.storage_bytes, (1 << 30) + (500 << 20));

	// The same metrics window again: nothing added.
	let (backend, server, second) = sample(backend, server, metrics, claims()).await;
	assert_eq!(second.expect("sampled")[0].1, first[0].1);

	// 15 s later, at 12345678n (about 12m): grows by the rate over 15 s.
	let later = pod_metrics("2024-05-01T10:00:15Z", "12345678n", "2Mi");
	let (backend, server, third) = sample(backend, server, later, vec![]).await;
	let third = third.expect("sampled");
	assert_eq!(third.len(), 2, "no claims, no volumes source");
	assert_eq!(third[0].1.at_millis, t0 + 15_000);
	assert_eq!(third[0].1.cpu_nanos, 7_500_000_000 + 185_185_170);
	assert_eq!(third[0].1.memory_bytes, 2 << 20);
	drop(backend);
	drop(server);
}

#[tokio::test]
async fn sample_errors() {
	// No metrics API (metrics-server missing): transient, the agent must not act on it.
	let (backend, server) = mock();
	let result = run!(backend, server, |b| b.sample(7), |mut server| async move {
		server.expect(Method::GET, METRICS).await.reply_status(
			404,
			"NotFound",
			"the server could not find the requested resource",
		);
		server
	},);
	assert!(matches!(result, Err(ClusterError::Unavailable(_))), "{result:?}");
	// A PodMetrics that does not parse.
	let (backend, server) = mock();
	let result = run!(backend, server, |b| b.sample(7), |mut server| async move {
		server.expect(Method::GET, METRICS).await.reply(200, pod_metrics("yesterday", "1", "1"));
		server
	},);
	assert!(
		matches!(result, Err(ClusterError::Other(ref m)) if m.contains("timestamp")),
		"{result:?}"
	);
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
