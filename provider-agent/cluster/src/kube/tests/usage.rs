//! sample: the kubelets' Summary API through the API server's node proxy, and the claims.

use super::{
	list, mock, mock_with,
	observe::{NS, SELECTOR},
	run, ApiServer,
};
use crate::{
	kube::{KubeOptions, VOLUMES_SOURCE},
	Backend, Metered, MeteringFailure, Sampled,
};
use http::Method;
use serde_json::{json, Value};
use std::{collections::BTreeMap, time::Duration};

const NODE_A: &str = include_str!("summary/node-a-0.json");
const NODE_B: &str = include_str!("summary/node-b.json");
/// The deal's pods: one on each node, one not scheduled yet.
const ON_A: &str = "app-7d4b9c8f6d-x2k4p";
const ON_B: &str = "app-7d4b9c8f6d-m9z7w";
const PENDING: &str = "app-7d4b9c8f6d-p5v6q";
const MIB: u64 = 1 << 20;

fn summary_path(node: &str) -> String {
	format!("/api/v1/nodes/{node}/proxy/stats/summary")
}

/// A pod of deal 7 on `node` (none: not scheduled) mounting `claims`.
fn pod(name: &str, node: Option<&str>, claims: &[&str]) -> Value {
	let volumes: Vec<Value> = claims
		.iter()
		.map(|c| json!({"name": c, "persistentVolumeClaim": {"claimName": c}}))
		.collect();
	json!({
		"apiVersion": "v1", "kind": "Pod",
		"metadata": {"name": name, "namespace": "podchain-deal-7"},
		"spec": {
			"nodeName": node,
			"containers": [{"name": "httpd", "image": "busybox"}, {"name": "side", "image": "busybox"}],
			"volumes": volumes,
		},
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

/// vol-data (1 GiB) on the pod on node-a, vol-cache (500 MiB) on the pod on node-b, vol-spare
/// (2 GiB, not bound yet) on no pod.
fn claims() -> Vec<Value> {
	vec![
		claim("vol-data", Some("1Gi"), "1Gi"),
		claim("vol-cache", Some("500Mi"), "500Mi"),
		claim("vol-spare", None, "2Gi"),
	]
}

/// How the mock answers a node's Summary.
enum Reply {
	Body(&'static str),
	Status(u16, &'static str, &'static str),
}

async fn expect_pods(server: &mut ApiServer, pods: Vec<Value>) {
	let exchange = server.expect(Method::GET, &format!("{NS}/pods")).await;
	exchange.assert_query(&[("labelSelector", SELECTOR)]);
	exchange.reply(200, list("Pod", pods));
}

/// Answers one Summary request per node of `replies`, in whatever order they come (the nodes
/// are read concurrently); any other request fails the test.
async fn expect_summaries(server: &mut ApiServer, replies: Vec<(&str, Reply)>) {
	let mut replies: BTreeMap<String, Reply> =
		replies.into_iter().map(|(node, reply)| (summary_path(node), reply)).collect();
	while !replies.is_empty() {
		let exchange = server.next().await;
		assert_eq!(exchange.method, Method::GET, "{}", exchange.path);
		let Some(reply) = replies.remove(&exchange.path) else {
			panic!("unexpected request {} (left: {:?})", exchange.path, replies.keys());
		};
		assert!(exchange.query.is_empty(), "{:?}", exchange.query);
		match reply {
			Reply::Body(body) => exchange.reply_bytes(200, body.as_bytes().to_vec()),
			Reply::Status(code, reason, message) => exchange.reply_status(code, reason, message),
		}
	}
}

async fn expect_claims(server: &mut ApiServer, claims: Vec<Value>) {
	let exchange = server.expect(Method::GET, &format!("{NS}/persistentvolumeclaims")).await;
	exchange.assert_query(&[("labelSelector", SELECTOR)]);
	exchange.reply(200, list("PersistentVolumeClaim", claims));
}

fn keys(sampled: &Sampled) -> Vec<&str> {
	sampled.samples.iter().map(|(k, _)| k.as_str()).collect()
}

fn failure(sampled: &Sampled, what: Metered) -> &MeteringFailure {
	let mut of = sampled.failures.iter().filter(|f| f.what == what);
	let failure = of.next().unwrap_or_else(|| panic!("no {what:?} failure: {sampled:?}"));
	assert!(of.next().is_none(), "{:?}", sampled.failures);
	failure
}

#[tokio::test]
async fn sample_reads_the_summary_of_each_node_that_runs_the_deal() {
	let (backend, server) = mock();
	let sampled = run!(backend, server, |b| b.sample(7), |mut server| async move {
		let pods = vec![
			pod(ON_A, Some("node-a"), &["vol-data"]),
			pod(ON_B, Some("node-b"), &["vol-cache"]),
			pod(PENDING, None, &["vol-data"]),
		];
		expect_pods(&mut server, pods).await;
		expect_summaries(
			&mut server,
			vec![("node-a", Reply::Body(NODE_A)), ("node-b", Reply::Body(NODE_B))],
		)
		.await;
		expect_claims(&mut server, claims()).await;
		server
	},);
	assert_eq!(sampled.failures, []);
	// Node a also runs deal 8's pod and kube-proxy: only the deal's own pods are taken.
	assert_eq!(
		keys(&sampled),
		[
			"app-7d4b9c8f6d-m9z7w/<network>",
			"app-7d4b9c8f6d-m9z7w/httpd@1714554000000",
			"app-7d4b9c8f6d-m9z7w/side@1714554000000",
			"app-7d4b9c8f6d-x2k4p/<network>",
			"app-7d4b9c8f6d-x2k4p/httpd@1714554000000",
			"app-7d4b9c8f6d-x2k4p/side@1714554000000",
			VOLUMES_SOURCE,
		]
	);
	let sample = |key: &str| sampled.samples.iter().find(|(k, _)| k == key).expect(key).1;
	assert_eq!(sample("app-7d4b9c8f6d-m9z7w/<network>").egress_bytes, 300_000);
	assert_eq!(sample("app-7d4b9c8f6d-x2k4p/httpd@1714554000000").cpu_nanos, 120_000_000_000);
	assert_eq!(sample("app-7d4b9c8f6d-m9z7w/httpd@1714554000000").memory_bytes, 20 * MIB);
	// Used bytes where a volume reports them (100 MiB, 20 MiB); vol-spare is mounted nowhere:
	// its requested 2 GiB.
	assert_eq!(sample(VOLUMES_SOURCE).storage_bytes, 100 * MIB + 20 * MIB + 2048 * MIB);
}

#[tokio::test]
async fn a_node_that_cannot_be_read_leaves_the_other_nodes_readings() {
	// Node b's kubelet does not answer: its pod goes unmetered, node a's is read. Node b's pod
	// mounts no claim here, so storage is still known.
	let (backend, server) = mock();
	let sampled = run!(backend, server, |b| b.sample(7), |mut server| async move {
		let pods = vec![pod(ON_A, Some("node-a"), &["vol-data"]), pod(ON_B, Some("node-b"), &[])];
		expect_pods(&mut server, pods).await;
		let unreachable = Reply::Status(
			503,
			"ServiceUnavailable",
			"error trying to reach service: dial tcp 10.0.0.12:10250: connect: connection refused",
		);
		expect_summaries(
			&mut server,
			vec![("node-a", Reply::Body(NODE_A)), ("node-b", unreachable)],
		)
		.await;
		expect_claims(&mut server, claims()).await;
		server
	},);
	let containers = failure(&sampled, Metered::Containers);
	assert!(containers.transient, "{containers:?}");
	assert!(containers.error.contains("node node-b"), "{}", containers.error);
	assert!(sampled.failures.iter().all(|f| f.what == Metered::Containers), "{sampled:?}");
	assert_eq!(
		keys(&sampled),
		[
			"app-7d4b9c8f6d-x2k4p/<network>",
			"app-7d4b9c8f6d-x2k4p/httpd@1714554000000",
			"app-7d4b9c8f6d-x2k4p/side@1714554000000",
			VOLUMES_SOURCE,
		]
	);
	let (_, storage) = sampled.samples.last().expect("storage");
	assert_eq!(storage.storage_bytes, 100 * MIB + 500 * MIB + 2048 * MIB);

	// A claim mounted on the node not read is not guessed at: storage is left out this time.
	// A Summary that does not parse is a failure that needs attention, not an outage.
	let (backend, server) = mock();
	let sampled = run!(backend, server, |b| b.sample(7), |mut server| async move {
		let pods = vec![
			pod(ON_A, Some("node-a"), &["vol-data"]),
			pod(ON_B, Some("node-b"), &["vol-cache"]),
		];
		expect_pods(&mut server, pods).await;
		let garbage = Reply::Body("<html><body>502 Bad Gateway</body></html>");
		expect_summaries(&mut server, vec![("node-a", Reply::Body(NODE_A)), ("node-b", garbage)])
			.await;
		expect_claims(&mut server, claims()).await;
		server
	},);
	let containers = failure(&sampled, Metered::Containers);
	assert!(!containers.transient, "{containers:?}");
	assert!(containers.error.contains("not a kubelet stats summary"), "{}", containers.error);
	let storage = failure(&sampled, Metered::Storage);
	assert!(!storage.transient, "{storage:?}");
	assert!(storage.error.contains("vol-cache") && storage.error.contains("node-b"), "{storage:?}");
	assert_eq!(keys(&sampled).len(), 3, "node a's pod only: {sampled:?}");
}

#[tokio::test]
async fn without_nodes_proxy_permission_the_failure_names_the_rule_to_add() {
	let (backend, server) = mock();
	let sampled = run!(backend, server, |b| b.sample(7), |mut server| async move {
		let pods = vec![pod(ON_A, Some("node-a"), &["vol-data"]), pod(ON_B, Some("node-b"), &[])];
		expect_pods(&mut server, pods).await;
		let forbidden = || {
			Reply::Status(
				403,
				"Forbidden",
				"nodes \"node-x\" is forbidden: User \"system:serviceaccount:podchain-system:podchain-agent\" cannot get resource \"nodes/proxy\" in API group \"\" at the cluster scope",
			)
		};
		expect_summaries(&mut server, vec![("node-a", forbidden()), ("node-b", forbidden())]).await;
		expect_claims(&mut server, claims()).await;
		server
	},);
	assert_eq!(keys(&sampled), Vec::<&str>::new());
	let containers: Vec<&MeteringFailure> =
		sampled.failures.iter().filter(|f| f.what == Metered::Containers).collect();
	assert_eq!(containers.len(), 2, "one per node: {sampled:?}");
	for failure in containers {
		assert!(!failure.transient, "a missing permission does not pass: {failure:?}");
		assert!(
			failure.error.contains("resources: [nodes/proxy], verbs: [get]")
				&& failure.error.contains("ClusterRole")
				&& failure.error.contains("cannot get resource"),
			"{}",
			failure.error
		);
	}
	// vol-data is on node a, which was not read: not guessed at.
	assert!(!failure(&sampled, Metered::Storage).transient);
}

#[tokio::test]
async fn pods_that_cannot_be_listed_leave_storage_unknown() {
	let (backend, server) = mock();
	let sampled = run!(backend, server, |b| b.sample(7), |mut server| async move {
		server.expect(Method::GET, &format!("{NS}/pods")).await.reply_status(
			500,
			"InternalError",
			"etcdserver: request timed out",
		);
		expect_claims(&mut server, claims()).await;
		server
	},);
	assert!(sampled.samples.is_empty(), "{sampled:?}");
	assert!(failure(&sampled, Metered::Containers).transient);
	let storage = failure(&sampled, Metered::Storage);
	assert!(storage.transient && storage.error.contains("not listed"), "{storage:?}");

	// A deal without claims has no storage to know: only the containers fail.
	let (backend, server) = mock();
	let sampled = run!(backend, server, |b| b.sample(7), |mut server| async move {
		server.expect(Method::GET, &format!("{NS}/pods")).await.reply_status(
			500,
			"InternalError",
			"etcdserver: request timed out",
		);
		expect_claims(&mut server, vec![]).await;
		server
	},);
	assert_eq!(sampled.failures.len(), 1, "{sampled:?}");
	assert_eq!(sampled.failures[0].what, Metered::Containers);
}

#[tokio::test]
async fn the_claims_are_read_apart_from_the_containers() {
	let (backend, server) = mock();
	let sampled = run!(backend, server, |b| b.sample(7), |mut server| async move {
		expect_pods(&mut server, vec![pod(ON_A, Some("node-a"), &["vol-data"])]).await;
		expect_summaries(&mut server, vec![("node-a", Reply::Body(NODE_A))]).await;
		server.expect(Method::GET, &format!("{NS}/persistentvolumeclaims")).await.reply_status(
			403,
			"Forbidden",
			"cannot list persistentvolumeclaims",
		);
		server
	},);
	assert_eq!(keys(&sampled).len(), 3, "{sampled:?}");
	let storage = failure(&sampled, Metered::Storage);
	assert!(!storage.transient, "{storage:?}");
	assert_eq!(sampled.failures.len(), 1);
}

#[tokio::test]
async fn one_read_of_a_node_serves_the_deals_sampled_after_it() {
	let options =
		KubeOptions { summary_max_age: Duration::from_secs(60), ..KubeOptions::default() };
	let (backend, server) = mock_with(options);
	let (seven, eight) = run!(
		backend,
		server,
		|b| async { (b.sample(7).await, b.sample(8).await) },
		|mut server| async move {
			expect_pods(&mut server, vec![pod(ON_A, Some("node-a"), &[])]).await;
			expect_summaries(&mut server, vec![("node-a", Reply::Body(NODE_A))]).await;
			expect_claims(&mut server, vec![]).await;
			// Deal 8 runs on node a too: no second read of it.
			let ns8 = "/api/v1/namespaces/podchain-deal-8";
			let selector8 = "podchain.io/deal-id=8,app.kubernetes.io/managed-by=podchain-agent";
			let exchange = server.expect(Method::GET, &format!("{ns8}/pods")).await;
			exchange.assert_query(&[("labelSelector", selector8)]);
			let mut theirs = pod("app-5f6c7b9d44-qq8zn", Some("node-a"), &[]);
			theirs["metadata"]["namespace"] = json!("podchain-deal-8");
			exchange.reply(200, list("Pod", vec![theirs]));
			let exchange =
				server.expect(Method::GET, &format!("{ns8}/persistentvolumeclaims")).await;
			exchange.reply(200, list("PersistentVolumeClaim", vec![]));
			server
		},
	);
	assert_eq!(seven.failures, []);
	assert_eq!(eight.failures, []);
	assert_eq!(keys(&seven).len(), 3);
	assert_eq!(
		keys(&eight),
		["app-5f6c7b9d44-qq8zn/<network>", "app-5f6c7b9d44-qq8zn/db@1714478402000"]
	);
}
