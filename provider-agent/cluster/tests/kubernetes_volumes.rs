//! Reading a deal's volume for a storage proof on a real cluster: runs only when `KUBECONFIG`
//! is set (otherwise it says it was skipped and passes).
//!
//! It deploys a deal whose only container (image `PODCHAIN_TEST_IMAGE`, default
//! `busybox:1.36`) writes a small tree into its `ReadWriteOnce` volume, one file of it readable
//! by its owner alone, and reserves exactly what that container needs, so the deal's quota is
//! full. Then it reads the volume through the storage-proof pod (image
//! `PODCHAIN_TEST_SNAPSHOT_IMAGE`, default busybox) and checks:
//! - the pod passes the namespace's Pod Security `restricted` level and starts although the
//!   deal's quota is full (it counts under the `snapshot` quota, and the deal's quota does not
//!   move), on the node that has the claim;
//! - the archive holds the files the deal wrote, the owner-only one included;
//! - the pod is gone afterwards and the deal's own pod was not touched;
//! - a second read works at once (the quota is free again);
//! - after a manifest update (the pods recreated: the quota has no room for a rolling update)
//!   the volume still reads, with what the new pod wrote beside the old files.
//!
//! The cluster needs the PriorityClass of `provider-agent/deploy/kubernetes/priorityclass.yaml`
//! (the test creates it when missing, if its user may) and a default StorageClass. The
//! kubeconfig's user needs the agent's permissions (`rbac.yaml`).

use k8s_openapi::api::{core::v1::Pod, scheduling::v1::PriorityClass};
use kube::api::{Api, ListParams, PostParams};
use podchain_cluster::{
	kube::{KubeBackend, KubeOptions},
	objects::{
		build, namespace_name, BuildOptions, DealSpec, SnapshotPodOptions, POD_QUOTA_NAME,
		SNAPSHOT_PRIORITY_CLASS, SNAPSHOT_QUOTA_NAME,
	},
	Backend, DealId, DealStatus,
};
mod common;

use common::wait_for;
use podchain_manifest::Manifest;
use std::{
	collections::BTreeMap,
	io::Read,
	sync::Arc,
	time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tokio::io::AsyncReadExt;

fn env_or(name: &str, default: &str) -> String {
	std::env::var(name).unwrap_or_else(|_| default.into())
}

/// The deal writing `version`'s files into its volume, then idling.
fn spec(deal: DealId, version: u32) -> DealSpec {
	let script = format!(
		"mkdir -p /data/sub && echo greeting-{deal} > /data/greeting && chmod 600 /data/greeting \
		 && head -c 300000 /dev/urandom > /data/sub/blob && echo v{version} > /data/v{version} \
		 && ln -sf greeting /data/link && echo ready && exec sleep 86400"
	);
	let manifest = serde_json::json!({
		"version": "podchain/v1",
		"containers": [{
			"name": "writer",
			"image": env_or("PODCHAIN_TEST_IMAGE", "busybox:1.36"),
			"command": ["sh", "-c", script],
			"resources": { "cpu": "100m", "memory": "64Mi" },
			"mounts": [{ "volume": "data", "path": "/data" }],
		}],
		"volumes": [{ "name": "data", "size": "1Gi" }],
	});
	let manifest = Manifest::from_json(&manifest.to_string()).expect("manifest parses");
	DealSpec {
		deal,
		provider: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY".into(),
		publisher: "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty".into(),
		manifest_hash: manifest.hash(),
		// Exactly what the manifest needs: the deal's quota is full once it runs.
		reserved: manifest.resources().expect("totals").into(),
		manifest,
		http_host: None,
		images: Default::default(),
	}
}

fn options() -> BuildOptions {
	BuildOptions {
		snapshot: SnapshotPodOptions {
			image: env_or("PODCHAIN_TEST_SNAPSHOT_IMAGE", "busybox:1.36"),
			..SnapshotPodOptions::default()
		},
		..BuildOptions::default()
	}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_is_read_by_the_storage_proof_pod_on_a_real_cluster() {
	if std::env::var_os("KUBECONFIG").is_none() {
		eprintln!("skipped: KUBECONFIG is not set, no cluster to test against");
		return;
	}
	let secs = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
	let deal: DealId = 4_100_000_000 + secs % 1_000_000;
	let backend = Arc::new(
		KubeBackend::from_kubeconfig(None, KubeOptions::default()).await.expect("kubeconfig"),
	);
	let outcome = tokio::spawn(read_volumes(backend.clone(), deal)).await;
	if let Err(err) = backend.remove(deal).await {
		eprintln!("cleanup of deal {deal} failed: {err}");
	}
	if let Err(err) = outcome {
		std::panic::resume_unwind(err.into_panic());
	}
}

async fn ensure_priority_class(client: &kube::Client) {
	let classes: Api<PriorityClass> = Api::all(client.clone());
	if classes.get_opt(SNAPSHOT_PRIORITY_CLASS).await.expect("priority classes").is_some() {
		return;
	}
	// As provider-agent/deploy/kubernetes/priorityclass.yaml.
	let class: PriorityClass = serde_json::from_value(serde_json::json!({
		"apiVersion": "scheduling.k8s.io/v1",
		"kind": "PriorityClass",
		"metadata": { "name": SNAPSHOT_PRIORITY_CLASS },
		"value": 0,
		"preemptionPolicy": "Never",
		"globalDefault": false,
		"description": "podchain storage-proof pods: read a deal's volume, never preempt",
	}))
	.expect("a PriorityClass");
	match classes.create(&PostParams::default(), &class).await {
		Ok(_) => println!("created PriorityClass {SNAPSHOT_PRIORITY_CLASS}"),
		Err(kube::Error::Api(status)) if status.code == 409 => {}
		Err(err) => panic!(
			"PriorityClass {SNAPSHOT_PRIORITY_CLASS} is missing and cannot be created ({err}): \
			 apply provider-agent/deploy/kubernetes/priorityclass.yaml"
		),
	}
}

async fn read_volumes(backend: Arc<KubeBackend>, deal: DealId) {
	let client = kube::Client::try_default().await.expect("client");
	ensure_priority_class(&client).await;
	let namespace = namespace_name(deal);
	let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
	println!("deal {deal} in namespace {namespace}");

	let first = build(&spec(deal, 1), &options()).expect("objects");
	backend.apply(&first).await.expect("apply");
	let deal_pod = running_pod(&backend, &pods, deal, "v1").await;

	let files = read(&backend, &client, deal).await;
	assert_eq!(files["greeting"], format!("greeting-{deal}\n").into_bytes());
	assert_eq!(files["sub/blob"].len(), 300_000);
	assert_eq!(files["v1"], b"v1\n");
	assert_eq!(files["link"], b"-> greeting");
	assert!(pods.get_opt("snapshot-data").await.expect("pod").is_none(), "the pod is gone");
	let pod_now = pods.get(&deal_pod).await.expect("the deal's pod");
	let restarts: i32 = pod_now
		.status
		.and_then(|s| s.container_statuses)
		.unwrap_or_default()
		.iter()
		.map(|c| c.restart_count)
		.sum();
	assert_eq!(restarts, 0, "the deal's pod was disturbed");
	assert_eq!(backend.status(deal).await.expect("status"), DealStatus::Running);

	// At once again: the quota is free, the old pod gone.
	let again = read(&backend, &client, deal).await;
	assert_eq!(again["greeting"], files["greeting"]);
	assert_eq!(again["sub/blob"], files["sub/blob"]);

	// A new manifest: its pod replaces the old one (no room to roll), and the claim stays.
	let second = build(&spec(deal, 2), &options()).expect("objects");
	backend.apply(&second).await.expect("apply the update");
	wait_for("the update to roll out", Duration::from_secs(180), || async {
		backend.rolled_out(deal, second.manifest_hash).await.expect("rolled out").then_some(())
	})
	.await;
	running_pod(&backend, &pods, deal, "v2").await;
	let after = read(&backend, &client, deal).await;
	assert_eq!(after["v1"], b"v1\n", "the volume outlives the pods");
	assert_eq!(after["v2"], b"v2\n");
}

/// Waits for the deal to run a pod that logged `ready` after writing `version`; its name.
async fn running_pod(
	backend: &KubeBackend,
	pods: &Api<Pod>,
	deal: DealId,
	version: &str,
) -> String {
	wait_for(&format!("the deal to run {version}"), Duration::from_secs(180), || async {
		match backend.status(deal).await.expect("status") {
			DealStatus::Running => {}
			DealStatus::Failed { reason } => panic!("the deal failed: {reason}"),
			other => {
				println!("status: {other:?}");
				return None;
			}
		}
		let selector = format!("podchain.io/deal-id={deal}");
		let list = pods.list(&ListParams::default().labels(&selector)).await.expect("pods");
		for pod in list.items {
			if pod.metadata.deletion_timestamp.is_some() {
				continue;
			}
			let name = pod.metadata.name.clone().unwrap_or_default();
			let logs = pods.logs(&name, &Default::default()).await.unwrap_or_default();
			if logs.contains("ready") {
				return Some(name);
			}
		}
		None
	})
	.await
}

/// Reads the deal's volume `data` through the storage-proof pod: its files (a link as
/// `-> target`). While the pod runs, the quotas must show it under `snapshot` alone.
async fn read(
	backend: &KubeBackend,
	client: &kube::Client,
	deal: DealId,
) -> BTreeMap<String, Vec<u8>> {
	let namespace = namespace_name(deal);
	let quotas: Api<k8s_openapi::api::core::v1::ResourceQuota> =
		Api::namespaced(client.clone(), &namespace);
	let started = Instant::now();
	let read = backend
		.read_volume(deal, "data", &options(), |mut archive| async move {
			// The quota controller counts the running pod within a few seconds.
			wait_for("the snapshot quota to count the pod", Duration::from_secs(60), || async {
				let quota = quotas.get(SNAPSHOT_QUOTA_NAME).await.expect("snapshot quota");
				let used = quota.status?.used?;
				(used.get("pods")?.0 == "1").then_some(())
			})
			.await;
			let pods_quota = quotas.get(POD_QUOTA_NAME).await.expect("pods quota");
			let used = pods_quota.status.and_then(|s| s.used).unwrap_or_default();
			assert_eq!(used.get("pods").map(|q| q.0.as_str()), Some("1"), "{used:?}");
			assert_eq!(used.get("requests.cpu").map(|q| q.0.as_str()), Some("100m"), "{used:?}");
			let mut bytes = Vec::new();
			archive.read_to_end(&mut bytes).await.expect("the archive");
			bytes
		})
		.await
		.expect("the storage-proof pod ran");
	read.complete.expect("tar read the whole volume");
	println!("read {} archive bytes in {:?}", read.consumed.len(), started.elapsed());
	let mut files = BTreeMap::new();
	let mut archive = tar::Archive::new(&read.consumed[..]);
	for entry in archive.entries().expect("a tar archive") {
		let mut entry = entry.expect("an entry");
		let path =
			entry.path().expect("path").to_string_lossy().trim_start_matches("./").to_owned();
		let kind = entry.header().entry_type();
		if kind.is_file() {
			let mut contents = Vec::new();
			entry.read_to_end(&mut contents).expect("contents");
			files.insert(path, contents);
		} else if kind.is_symlink() {
			let target = entry.link_name().expect("target").expect("a target");
			files.insert(path, format!("-> {}", target.display()).into_bytes());
		}
	}
	files
}
