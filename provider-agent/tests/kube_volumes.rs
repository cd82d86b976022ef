//! The storage prover's Kubernetes source against a mock API server on 127.0.0.1: a real HTTP
//! server that keeps the pods it is sent, answers `exec` with a WebSocket speaking the
//! `v4.channel.k8s.io` protocol, and streams the archive of a real `tar` run over a directory
//! standing in for the claim. The snapshot must be the one podman's path takes of the same
//! files; a failed or cut-short `tar` must leave no snapshot; the pod must be gone after
//! every read.

use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::{body::Bytes, body::Incoming, service::service_fn, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use podchain_agent::storage_proofs::{
	snapshot::{SnapshotError, SnapshotStore},
	source::{KubeVolumes, VolumeSource},
};
use podchain_cluster::{
	kube::{KubeBackend, KubeOptions},
	objects::BuildOptions,
};
use serde_json::{json, Value};
use std::{
	collections::BTreeMap,
	path::{Path, PathBuf},
	sync::{Arc, Mutex},
	time::Duration,
};
use tokio_tungstenite::tungstenite::{handshake::derive_accept_key, protocol::Role, Message};

const NS: &str = "/api/v1/namespaces/podchain-deal-7";
const LIMIT: u64 = 1 << 30;

/// How `tar` ends in the mock pod.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TarEnd {
	Success,
	Failure,
	/// The connection drops after half the archive, with no exit status.
	Cut,
}

/// What the mock API server does and saw.
struct Cluster {
	volume: PathBuf,
	tar_end: TarEnd,
	has_snapshot_quota: bool,
	priority_class_exists: bool,
	/// Pods created by the agent, by name.
	pods: BTreeMap<String, Value>,
	/// Requests seen: method and path (query included for `exec`).
	requests: Vec<String>,
	/// Pods created over the test.
	created: Vec<Value>,
}

type Shared = Arc<Mutex<Cluster>>;

fn reply(status: u16, body: Value) -> Response<Full<Bytes>> {
	let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
	*response.status_mut() = StatusCode::from_u16(status).expect("status");
	response.headers_mut().insert("content-type", "application/json".parse().expect("header"));
	response
}

fn not_found(what: &str) -> Response<Full<Bytes>> {
	reply(
		404,
		json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
			"message": format!("{what} not found"), "code": 404}),
	)
}

/// The deal's own pod: running on node-a with claim `vol-data`.
fn deal_pod() -> Value {
	json!({
		"metadata": {"name": "app-1", "namespace": "podchain-deal-7",
			"labels": {"podchain.io/deal-id": "7"}},
		"spec": {"nodeName": "node-a", "containers": [{"name": "web", "image": "busybox"}],
			"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "vol-data"}}]},
		"status": {"phase": "Running"},
	})
}

async fn handle(cluster: Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
	let method = request.method().to_string();
	let path = request.uri().path().to_owned();
	let query = request.uri().query().unwrap_or_default().to_owned();
	cluster.lock().unwrap().requests.push(format!("{method} {path}"));
	let pod_path = format!("{NS}/pods/snapshot-data");
	match (method.as_str(), path.as_str()) {
		("GET", p) if p == format!("{NS}/persistentvolumeclaims") => reply(
			200,
			json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
				"metadata": {}, "items": [
					{"metadata": {"name": "vol-data"}}, {"metadata": {"name": "vol-logs"}}]}),
		),
		("GET", p) if p == format!("{NS}/resourcequotas/snapshot") => {
			if !cluster.lock().unwrap().has_snapshot_quota {
				return not_found("resourcequotas \"snapshot\"");
			}
			reply(
				200,
				json!({"metadata": {"name": "snapshot"}, "spec": {"hard": {
					"limits.cpu": "100m", "requests.cpu": "100m",
					"limits.memory": "64Mi", "requests.memory": "64Mi", "pods": "1"}}}),
			)
		}
		("GET", p) if p == format!("{NS}/pods") => {
			assert!(query.contains("podchain.io%2Fdeal-id%3D7"), "{query}");
			reply(200, json!({"metadata": {}, "items": [deal_pod()]}))
		}
		("POST", p) if p == format!("{NS}/pods") => {
			let body = request.into_body().collect().await.expect("body").to_bytes();
			let pod: Value = serde_json::from_slice(&body).expect("a pod");
			let mut cluster = cluster.lock().unwrap();
			if !cluster.priority_class_exists {
				return reply(
					403,
					json!({"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403,
						"message": "pods \"snapshot-data\" is forbidden: no PriorityClass with name podchain-snapshot was found"}),
				);
			}
			let name = pod["metadata"]["name"].as_str().expect("name").to_owned();
			assert!(!cluster.pods.contains_key(&name), "a second pod while one exists");
			cluster.created.push(pod.clone());
			cluster.pods.insert(name, pod.clone());
			reply(201, pod)
		}
		("DELETE", p) if p == pod_path => {
			let body = request.into_body().collect().await.expect("body").to_bytes();
			let options: Value = serde_json::from_slice(&body).expect("delete options");
			assert_eq!(options["gracePeriodSeconds"], 0, "deleted at once: {options}");
			match cluster.lock().unwrap().pods.remove("snapshot-data") {
				Some(pod) => reply(200, pod),
				None => not_found("pods \"snapshot-data\""),
			}
		}
		("GET", p) if p == pod_path => match cluster.lock().unwrap().pods.get("snapshot-data") {
			Some(pod) => {
				let mut pod = pod.clone();
				pod["status"] = json!({"phase": "Running"});
				reply(200, pod)
			}
			None => not_found("pods \"snapshot-data\""),
		},
		("GET", p) if p == format!("{pod_path}/exec") => exec(cluster, request, &query),
		_ => panic!("unexpected request {method} {path}?{query}"),
	}
}

/// Upgrades to a WebSocket and plays `tar` over the volume directory.
fn exec(cluster: Shared, request: Request<Incoming>, query: &str) -> Response<Full<Bytes>> {
	let command: Vec<&str> =
		query.split('&').filter_map(|kv| kv.strip_prefix("command=")).collect();
	assert_eq!(command, ["tar", "-c", "-f", "-", "-C", "%2Fvolume", "."], "{query}");
	let key = request.headers()["sec-websocket-key"].as_bytes().to_vec();
	let protocols = request.headers()["sec-websocket-protocol"].to_str().expect("protocols");
	assert!(protocols.contains("v4.channel.k8s.io"), "{protocols}");
	let (volume, end) = {
		let cluster = cluster.lock().unwrap();
		(cluster.volume.clone(), cluster.tar_end)
	};
	tokio::spawn(async move {
		let upgraded = hyper::upgrade::on(request).await.expect("upgraded");
		let mut socket = tokio_tungstenite::WebSocketStream::from_raw_socket(
			TokioIo::new(upgraded),
			Role::Server,
			None,
		)
		.await;
		let archive = tar_of(&volume);
		let sent = if end == TarEnd::Cut { &archive[..archive.len() / 2] } else { &archive[..] };
		for chunk in sent.chunks(64 << 10) {
			let mut frame = vec![1u8];
			frame.extend_from_slice(chunk);
			socket.send(Message::Binary(frame.into())).await.expect("stdout");
		}
		let status = match end {
			TarEnd::Success => Some(json!({"metadata": {}, "status": "Success"})),
			TarEnd::Failure => {
				let mut stderr = vec![2u8];
				stderr.extend_from_slice(b"tar: ./secret: Permission denied\n");
				socket.send(Message::Binary(stderr.into())).await.expect("stderr");
				Some(json!({"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
					"message": "command terminated with non-zero exit code: exit status 1"}))
			}
			TarEnd::Cut => None,
		};
		if let Some(status) = status {
			let mut frame = vec![3u8];
			frame.extend_from_slice(status.to_string().as_bytes());
			socket.send(Message::Binary(frame.into())).await.expect("status");
		}
		let _ = socket.close(None).await;
		while socket.next().await.is_some() {}
	});
	let mut response = Response::new(Full::new(Bytes::new()));
	*response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
	let headers = response.headers_mut();
	headers.insert("connection", "Upgrade".parse().expect("header"));
	headers.insert("upgrade", "websocket".parse().expect("header"));
	headers.insert("sec-websocket-accept", derive_accept_key(&key).parse().expect("header"));
	headers.insert("sec-websocket-protocol", "v4.channel.k8s.io".parse().expect("header"));
	response
}

/// The archive a real `tar` makes of `dir`, as in the storage-proof pod.
fn tar_of(dir: &Path) -> Vec<u8> {
	let out = std::process::Command::new("tar")
		.args(["-c", "-f", "-", "-C"])
		.arg(dir)
		.arg(".")
		.output()
		.expect("tar runs");
	assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
	out.stdout
}

/// A mock API server for `cluster` and a backend talking to it.
async fn serve(cluster: Shared) -> KubeBackend {
	let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
	let addr = listener.local_addr().expect("addr");
	tokio::spawn(async move {
		while let Ok((stream, _)) = listener.accept().await {
			let cluster = cluster.clone();
			let service = service_fn(move |request| {
				let cluster = cluster.clone();
				async move { Ok::<_, std::convert::Infallible>(handle(cluster, request).await) }
			});
			tokio::spawn(
				hyper::server::conn::http1::Builder::new()
					.serve_connection(TokioIo::new(stream), service)
					.with_upgrades(),
			);
		}
	});
	let url = format!("http://{addr}").parse().expect("url");
	let client = kube::Client::try_from(kube::Config::new(url)).expect("client");
	KubeBackend::new(
		client,
		KubeOptions { request_timeout: Duration::from_secs(5), ..KubeOptions::default() },
	)
}

/// A volume with directories, a large file, an empty one, a link and a hard link.
fn volume(dir: &Path) {
	std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
	std::fs::write(dir.join("a.txt"), b"hello").unwrap();
	let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
	std::fs::write(dir.join("sub/big.bin"), big).unwrap();
	std::fs::write(dir.join("sub/deeper/empty"), b"").unwrap();
	std::os::unix::fs::symlink("a.txt", dir.join("link")).unwrap();
	std::fs::hard_link(dir.join("a.txt"), dir.join("sub/hard")).unwrap();
}

fn cluster(volume: &Path, tar_end: TarEnd) -> Shared {
	Arc::new(Mutex::new(Cluster {
		volume: volume.to_owned(),
		tar_end,
		has_snapshot_quota: true,
		priority_class_exists: true,
		pods: BTreeMap::new(),
		requests: Vec::new(),
		created: Vec::new(),
	}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_read_through_the_storage_proof_pod_is_the_snapshot_podman_would_take() {
	let (source, out, reference) =
		(tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
	volume(source.path());
	let cluster = cluster(source.path(), TarEnd::Success);
	// A pod left over by an agent killed mid-read: deleted before the new one.
	cluster.lock().unwrap().pods.insert("snapshot-data".into(), json!({"metadata": {}}));
	let kube = Arc::new(serve(cluster.clone()).await);
	let volumes = KubeVolumes { kube, options: BuildOptions::default() };
	assert_eq!(volumes.volumes(7).await.expect("volumes"), ["data", "logs"]);

	let store = SnapshotStore::new(out.path());
	let taken = volumes.snapshot(7, &["data".into()], &store, LIMIT).await.expect("taken");
	let [(name, taken)] = taken.as_slice() else { panic!("{taken:?}") };
	assert_eq!(name, "data");
	let info = taken.as_ref().expect("snapshot");
	let expected =
		SnapshotStore::new(reference.path()).take(7, b"data", source.path(), LIMIT).unwrap();
	assert_eq!(*info, expected, "the same files, the same snapshot");
	assert!(store.has(7, b"data", &info.root));
	assert!(info.size > 300_000, "{info:?}");

	let cluster = cluster.lock().unwrap();
	assert!(cluster.pods.is_empty(), "the storage-proof pod is deleted after the read");
	let [pod] = cluster.created.as_slice() else { panic!("one pod created") };
	assert_eq!(pod["spec"]["nodeName"], "node-a", "on the node of the deal's pod");
	assert_eq!(pod["spec"]["priorityClassName"], "podchain-snapshot");
	let resources = &pod["spec"]["containers"][0]["resources"]["limits"];
	assert_eq!((&resources["cpu"], &resources["memory"]), (&json!("100m"), &json!("64Mi")));
	let order: Vec<&str> = cluster.requests.iter().map(String::as_str).collect();
	let pod_path = format!("{NS}/pods/snapshot-data");
	assert_eq!(
		order[1..],
		[
			format!("GET {NS}/resourcequotas/snapshot"),
			format!("GET {NS}/pods"),
			format!("DELETE {pod_path}"),
			format!("GET {pod_path}"),
			format!("POST {NS}/pods"),
			format!("GET {pod_path}"),
			format!("GET {pod_path}/exec"),
			format!("DELETE {pod_path}"),
			format!("GET {pod_path}"),
		]
	);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_or_cut_short_read_leaves_no_snapshot_and_no_pod() {
	for end in [TarEnd::Failure, TarEnd::Cut] {
		let (source, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
		volume(source.path());
		let cluster = cluster(source.path(), end);
		let kube = Arc::new(serve(cluster.clone()).await);
		let volumes = KubeVolumes { kube, options: BuildOptions::default() };
		let store = SnapshotStore::new(out.path());
		let taken = volumes.snapshot(7, &["data".into()], &store, LIMIT).await.expect("taken");
		let [(_, taken)] = taken.as_slice() else { panic!("{taken:?}") };
		match (end, taken) {
			(TarEnd::Failure, Err(SnapshotError::Source(message))) => {
				assert!(message.contains("Permission denied"), "{message}")
			}
			(TarEnd::Cut, Err(_)) => {}
			_ => panic!("a read that is not the whole volume was taken: {taken:?}"),
		}
		assert!(store.volumes(7).iter().all(|v| {
			std::fs::read_dir(store.volume_dir(7, v))
				.map(|entries| {
					entries.flatten().all(|e| !e.file_name().to_string_lossy().ends_with(".snap"))
				})
				.unwrap_or(true)
		}));
		assert!(cluster.lock().unwrap().pods.is_empty(), "the pod is deleted");
	}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_not_set_up_for_storage_proofs_says_what_to_do() {
	let (source, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
	volume(source.path());
	let store = SnapshotStore::new(out.path());

	let cluster = cluster(source.path(), TarEnd::Success);
	cluster.lock().unwrap().priority_class_exists = false;
	let kube = Arc::new(serve(cluster.clone()).await);
	let volumes = KubeVolumes { kube, options: BuildOptions::default() };
	let taken = volumes.snapshot(7, &["data".into()], &store, LIMIT).await.expect("taken");
	let message = format!("{:?}", taken[0].1);
	assert!(message.contains("priorityclass.yaml"), "{message}");

	let cluster = self::cluster(source.path(), TarEnd::Success);
	cluster.lock().unwrap().has_snapshot_quota = false;
	let kube = Arc::new(serve(cluster.clone()).await);
	let volumes = KubeVolumes { kube, options: BuildOptions::default() };
	let taken = volumes.snapshot(7, &["data".into()], &store, LIMIT).await.expect("taken");
	let message = format!("{:?}", taken[0].1);
	assert!(message.contains("no `snapshot` quota"), "{message}");
	assert!(cluster.lock().unwrap().created.is_empty(), "no pod outside a quota");
}
