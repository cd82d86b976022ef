//! The Kubernetes backend against a real cluster: runs only when `KUBECONFIG` is set
//! (otherwise it says it was skipped and passes).
//!
//! It deploys the manifest crate's `web` fixture as a deal with a fresh id, with the image from
//! `PODCHAIN_TEST_IMAGE` (default `busybox:1.36`; the image needs `sh`, busybox `httpd` and
//! `wget`) serving on port 8080 as the non-root user Pod Security requires, then: waits up to
//! 120 s for it to run, applies it again (nothing may change), samples it twice from the
//! kubelet's Summary API (its container burns CPU in the background, up to its 100m limit: the
//! CPU counter must be cumulative and grow; memory and storage must be reported), reads its
//! logs; then updates the manifest (the reservation is exactly one pod, so the pods are
//! recreated rather than refused by the quota) and checks, every 2 s of the rollout, that
//! the status never reports a failure, that the rollout completes, and that the new pod serves
//! the new content to a client pod in a namespace of the test's own (the one the deal's
//! NetworkPolicy lets in, standing in for the ingress controller's), and that the new pod's
//! network counter shows the bytes it sent; then rolls it to a manifest that scales to zero,
//! scales it to zero (status `Idle`, no pods, no container samples) and back (it serves
//! again), as the agent's gateway does; finally removes the deal
//! and waits for its namespace to go. The deal and the client namespace are removed even if a
//! step fails.
//!
//! The kubeconfig's user needs the agent's permissions (`provider-agent/deploy/kubernetes/
//! rbac.yaml`: `get` on `nodes/proxy` among them), plus creating namespaces and pods and
//! reading pod logs in the client namespace.

use k8s_openapi::api::{
	apps::v1::Deployment,
	core::v1::{Namespace, Pod},
};
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use podchain_cluster::{
	kube::{KubeBackend, KubeOptions, NETWORK, VOLUMES_SOURCE},
	objects::{build, http_service_name, namespace_name, BuildOptions, DealSpec, DEPLOYMENT_NAME},
	Backend, DealId, DealStatus, Deployed,
};
mod common;

use common::wait_for;
use podchain_manifest::{Manifest, Replicas};
use std::{
	path::PathBuf,
	sync::Arc,
	time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

const READY_LINE: &str = "podchain-test-ready";

fn image() -> String {
	std::env::var("PODCHAIN_TEST_IMAGE").unwrap_or_else(|_| "busybox:1.36".into())
}

/// The namespace of the test's client pods: the deal's NetworkPolicy lets it in, as it does
/// the ingress controller's.
fn client_namespace(deal: DealId) -> String {
	format!("podchain-test-client-{deal}")
}

fn options(deal: DealId) -> BuildOptions {
	BuildOptions { ingress_namespace: client_namespace(deal), ..BuildOptions::default() }
}

/// The web deal serving `content` at `/` (version 1 serves an empty directory listing).
fn spec(deal: DealId) -> DealSpec {
	spec_serving(deal, None)
}

fn spec_serving(deal: DealId, content: Option<&str>) -> DealSpec {
	spec_with(deal, content, Replicas::fixed(1, 1))
}

fn spec_with(deal: DealId, content: Option<&str>, replicas: Replicas) -> DealSpec {
	let path =
		PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../client/manifest/fixtures/web.yaml");
	let mut manifest = Manifest::from_path(&path).expect("web fixture");
	manifest.replicas = replicas;
	let web = &mut manifest.containers[0];
	web.image = podchain_manifest::Image::Reference(image());
	let page = content.map(|c| format!("echo {c} > /tmp/index.html; ")).unwrap_or_default();
	// A busy loop beside the server, held to the container's CPU limit: CPU time that grows.
	let busy = "(while :; do :; done) & ";
	web.command =
		["sh", "-c", &format!("echo {READY_LINE}; {page}{busy}exec httpd -f -v -p 8080 -h /tmp")]
			.map(String::from)
			.to_vec();
	let totals = manifest.resources().expect("totals");
	DealSpec {
		deal,
		provider: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY".into(),
		publisher: "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty".into(),
		manifest_hash: manifest.hash(),
		manifest,
		reserved: totals.into(),
		http_host: Some(format!("podchain-test-{deal}.example.invalid")),
		images: Default::default(),
	}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_runs_and_goes_on_a_real_cluster() {
	if std::env::var_os("KUBECONFIG").is_none() {
		eprintln!("skipped: KUBECONFIG is not set, no cluster to test against");
		return;
	}
	let secs = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
	let deal: DealId = 4_000_000_000 + secs % 1_000_000;
	let backend = Arc::new(
		KubeBackend::from_kubeconfig(None, KubeOptions::default()).await.expect("kubeconfig"),
	);
	let outcome = tokio::spawn(lifecycle(backend.clone(), deal)).await;
	// Whatever happened, leave nothing behind.
	if let Err(err) = backend.remove(deal).await {
		eprintln!("cleanup of deal {deal} failed: {err}");
	}
	if let Ok(client) = kube::Client::try_default().await {
		let namespaces: Api<Namespace> = Api::all(client);
		let _ = namespaces.delete(&client_namespace(deal), &DeleteParams::background()).await;
	}
	if let Err(err) = outcome {
		std::panic::resume_unwind(err.into_panic());
	}
}

async fn lifecycle(backend: Arc<KubeBackend>, deal: DealId) {
	let client = kube::Client::try_default().await.expect("client");
	let spec = spec(deal);
	let objects = build(&spec, &options(deal)).expect("objects");
	let namespace = namespace_name(deal);
	println!("deal {deal} in namespace {namespace}");

	backend.apply(&objects).await.expect("apply");
	let deployed = backend.deployed().await.expect("deployed");
	assert!(
		deployed.contains(&Deployed { deal, manifest_hash: spec.manifest_hash }),
		"{deployed:?}"
	);

	wait_for("the deal to run", Duration::from_secs(120), || async {
		match backend.status(deal).await.expect("status") {
			DealStatus::Running => Some(()),
			DealStatus::Failed { reason } => panic!("the deal failed: {reason}"),
			other => {
				println!("status: {other:?}");
				None
			}
		}
	})
	.await;

	// Applying the same objects again changes nothing: same generation, same pods.
	let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
	let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
	let pod_names = || async {
		let list = pods.list(&ListParams::default()).await.expect("pods");
		let mut names: Vec<String> =
			list.items.into_iter().filter_map(|p| p.metadata.name).collect();
		names.sort();
		names
	};
	let generation = || async {
		deployments.get(DEPLOYMENT_NAME).await.expect("deployment").metadata.generation
	};
	let (generation_before, pods_before) = (generation().await, pod_names().await);
	backend.apply(&objects).await.expect("apply again");
	tokio::time::sleep(Duration::from_secs(3)).await;
	assert_eq!(generation().await, generation_before, "a second apply changed the Deployment");
	assert_eq!(pod_names().await, pods_before, "a second apply replaced pods");
	assert_eq!(backend.status(deal).await.expect("status"), DealStatus::Running);

	cpu_is_cumulative(&backend, deal).await;

	let lines = wait_for("the first log line", Duration::from_secs(60), || async {
		let lines = backend.logs(deal, 0, 100).await.expect("logs");
		lines.iter().any(|l| l.text == READY_LINE).then_some(lines)
	})
	.await;
	let ready = lines.iter().find(|l| l.text == READY_LINE).expect("ready line");
	assert!(ready.container.ends_with("/httpd") && ready.timestamp_ms > 0, "{ready:?}");
	let later = backend.logs(deal, ready.timestamp_ms + 1, 100).await.expect("logs");
	assert!(later.iter().all(|l| l.timestamp_ms > ready.timestamp_ms), "{later:?}");

	update(&backend, &client, deal).await;
	sleeps_and_wakes(&backend, &client, deal).await;

	backend.remove(deal).await.expect("remove");
	assert_eq!(backend.status(deal).await.expect("status"), DealStatus::Absent);
	backend.remove(deal).await.expect("remove again");
	let namespaces: Api<Namespace> = Api::all(client);
	wait_for("the namespace to go", Duration::from_secs(120), || async {
		namespaces.get_opt(&namespace).await.expect("namespace").is_none().then_some(())
	})
	.await;
	let deployed = backend.deployed().await.expect("deployed");
	assert!(!deployed.iter().any(|d| d.deal == deal), "{deployed:?}");
}

/// Rolls the deal to a manifest serving new content, reading the status every second: it may
/// be updating or degraded, never failed, until the rollout completes; then a client pod gets
/// the new content through the deal's Service.
async fn update(backend: &KubeBackend, client: &kube::Client, deal: DealId) {
	const CONTENT: &str = "podchain-version-2";
	let spec = spec_serving(deal, Some(CONTENT));
	let objects = build(&spec, &options(deal)).expect("objects");
	let namespace = namespace_name(deal);
	let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
	let started = Instant::now();
	backend.apply(&objects).await.expect("apply the update");
	let strategy = deployments.get(DEPLOYMENT_NAME).await.expect("deployment").spec;
	let strategy = strategy.and_then(|s| s.strategy).and_then(|s| s.type_);
	assert_eq!(strategy.as_deref(), Some("Recreate"), "a full reservation recreates its pods");
	let deployed = backend.deployed().await.expect("deployed");
	assert!(
		deployed.contains(&Deployed { deal, manifest_hash: spec.manifest_hash }),
		"{deployed:?}"
	);
	let seen = std::sync::Mutex::new(Vec::<DealStatus>::new());
	wait_for("the update to roll out", Duration::from_secs(180), || async {
		let status = backend.status(deal).await.expect("status");
		{
			let mut seen = seen.lock().expect("lock");
			assert!(
				!status.is_terminal(),
				"the update reported a failure: {status:?} (before: {seen:?})"
			);
			if seen.last() != Some(&status) {
				println!("update: {:.1}s {status:?}", started.elapsed().as_secs_f64());
				seen.push(status.clone());
			}
		}
		let done = backend.rolled_out(deal, spec.manifest_hash).await.expect("rollout");
		(done && status == DealStatus::Running).then_some(())
	})
	.await;
	println!("update rolled out after {:?}: {:?}", started.elapsed(), seen.lock().expect("lock"));
	assert!(
		!backend.rolled_out(deal, spec_serving(deal, None).manifest_hash).await.expect("rollout"),
		"the old manifest is not what runs"
	);

	// The new pod serves the new content, through the deal's Service.
	let body = fetch_from_client(
		client,
		deal,
		"fetch-update",
		&format!("http://{}.{namespace}:8080/index.html", http_service_name(8080)),
	)
	.await;
	assert_eq!(body.trim(), CONTENT);

	// What it sent shows in its pod's network counter, once the kubelet has read it.
	let pod = single_pod(client, deal).await;
	let network = format!("{pod}/{NETWORK}");
	let egress =
		wait_for("the response in the egress counter", Duration::from_secs(90), || async {
			let sampled = backend.sample(deal).await;
			assert_eq!(sampled.failures, [], "{sampled:?}");
			let (_, sample) = sampled.samples.into_iter().find(|(s, _)| *s == network)?;
			(sample.egress_bytes > 0).then_some(sample.egress_bytes)
		})
		.await;
	println!("egress of {pod}: {egress} bytes");
}

/// Rolls the deal to a manifest that scales to zero, then does what the agent's gateway does
/// on an idle deal and on the next request: scales it to zero (status `Idle`, no pod, nothing
/// sampled but the Service still resolving) and back (`Running`, serving again).
async fn sleeps_and_wakes(backend: &KubeBackend, client: &kube::Client, deal: DealId) {
	const CONTENT: &str = "podchain-version-3";
	let spec = spec_with(deal, Some(CONTENT), Replicas { min: 0, max: 1, idle_seconds: Some(60) });
	backend.apply(&build(&spec, &options(deal)).expect("objects")).await.expect("apply");
	wait_for("the scale-to-zero manifest to roll out", Duration::from_secs(180), || async {
		let status = backend.status(deal).await.expect("status");
		assert!(!status.is_terminal(), "{status:?}");
		let done = backend.rolled_out(deal, spec.manifest_hash).await.expect("rollout");
		(done && status == DealStatus::Running).then_some(())
	})
	.await;
	let service = backend.endpoints(deal, 8080).await.expect("endpoints");
	assert_eq!(service.len(), 1, "the HTTP Service's cluster address: {service:?}");

	let started = Instant::now();
	backend.set_awake(deal, false).await.expect("scale to zero");
	let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace_name(deal));
	wait_for("the deal to sleep", Duration::from_secs(120), || async {
		let status = backend.status(deal).await.expect("status");
		assert!(!status.is_terminal(), "{status:?}");
		let left = pods.list(&ListParams::default()).await.expect("pods").items.len();
		(status == DealStatus::Idle && left == 0).then_some(())
	})
	.await;
	println!("asleep after {:?}", started.elapsed());
	assert_eq!(backend.endpoints(deal, 8080).await.expect("endpoints"), service);
	wait_for("no container in the samples", Duration::from_secs(90), || async {
		let sampled = backend.sample(deal).await;
		assert_eq!(sampled.failures, [], "{sampled:?}");
		(!sampled.samples.iter().any(|(s, _)| s.contains("/httpd@"))).then_some(())
	})
	.await;

	let started = Instant::now();
	backend.set_awake(deal, true).await.expect("wake");
	wait_for("the deal to wake", Duration::from_secs(120), || async {
		(backend.status(deal).await.expect("status") == DealStatus::Running).then_some(())
	})
	.await;
	println!("awake after {:?}", started.elapsed());
	let url =
		format!("http://{}.{}:8080/index.html", http_service_name(8080), namespace_name(deal));
	assert_eq!(fetch_from_client(client, deal, "fetch-woken", &url).await.trim(), CONTENT);
}

/// The name of the deal's only pod.
async fn single_pod(client: &kube::Client, deal: DealId) -> String {
	let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace_name(deal));
	let running = ListParams::default().fields("status.phase=Running");
	let mut names: Vec<String> = pods
		.list(&running)
		.await
		.expect("pods")
		.items
		.into_iter()
		.filter(|p| p.metadata.deletion_timestamp.is_none())
		.filter_map(|p| p.metadata.name)
		.collect();
	assert_eq!(names.len(), 1, "one replica: {names:?}");
	names.remove(0)
}

/// Samples the deal until the kubelet has read its container twice: the CPU counter is
/// cumulative (it grows with the busy loop, at most by the 100m limit), and memory and storage
/// (its log, at least) are reported. The deal has no claims, so no volumes source.
async fn cpu_is_cumulative(backend: &KubeBackend, deal: DealId) {
	let httpd = || async {
		let sampled = backend.sample(deal).await;
		assert_eq!(sampled.failures, [], "the sample must read everything: {sampled:?}");
		assert!(!sampled.samples.iter().any(|(s, _)| s == VOLUMES_SOURCE), "no claims");
		let mut httpd = sampled.samples.into_iter().filter(|(s, _)| s.contains("/httpd@"));
		let first = httpd.next();
		assert!(httpd.next().is_none(), "one container of one pod");
		first
	};
	let (key, first) = wait_for("the pod's stats", Duration::from_secs(120), httpd).await;
	println!("first sample of {key}: {first:?}");
	assert!(first.cpu_nanos > 0 && first.memory_bytes > 0 && first.at_millis > 0, "{first:?}");
	assert!(first.storage_bytes > 0, "its log at least: {first:?}");
	let second = wait_for("a later reading", Duration::from_secs(90), || async {
		httpd().await.filter(|(_, s)| s.at_millis > first.at_millis)
	})
	.await;
	println!("second sample of {}: {:?}", second.0, second.1);
	assert_eq!(second.0, key, "the same container, not restarted");
	let (grown, elapsed) =
		(second.1.cpu_nanos - first.cpu_nanos, second.1.at_millis - first.at_millis);
	assert!(second.1.cpu_nanos > first.cpu_nanos, "the busy loop used CPU: {second:?}");
	// 100m: at most 0.1 ms of CPU per ms, with slack for readings taken at different moments.
	assert!(grown <= elapsed * 100_000 * 3 / 2 + 500_000_000, "{grown} ns in {elapsed} ms");
}

/// GETs `url` from a pod in the test's client namespace (retrying for up to 60 s inside the
/// pod) and returns what it printed.
async fn fetch_from_client(client: &kube::Client, deal: DealId, name: &str, url: &str) -> String {
	let namespace = client_namespace(deal);
	let namespaces: Api<Namespace> = Api::all(client.clone());
	let ns: Namespace = serde_json::from_value(serde_json::json!({
		"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace},
	}))
	.expect("namespace");
	match namespaces.create(&PostParams::default(), &ns).await {
		Ok(_) => {}
		Err(kube::Error::Api(status)) if status.code == 409 => {}
		Err(err) => panic!("create the client namespace: {err}"),
	}
	let script =
		format!("for i in $(seq 60); do wget -q -T 2 -O - {url} && exit 0; sleep 1; done; exit 1");
	let pod: Pod = serde_json::from_value(serde_json::json!({
		"apiVersion": "v1", "kind": "Pod",
		"metadata": {"name": name, "namespace": namespace},
		"spec": {
			"restartPolicy": "Never",
			"automountServiceAccountToken": false,
			"securityContext": {
				"runAsNonRoot": true, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"},
			},
			"containers": [{
				"name": "fetch", "image": image(), "command": ["sh", "-c", script],
				"securityContext": {
					"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
				},
			}],
		},
	}))
	.expect("pod");
	let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
	pods.create(&PostParams::default(), &pod).await.expect("create the client pod");
	let phase = wait_for("the client pod to finish", Duration::from_secs(120), || async {
		let pod = pods.get(name).await.expect("client pod");
		let phase = pod.status.and_then(|s| s.phase).unwrap_or_default();
		matches!(phase.as_str(), "Succeeded" | "Failed").then_some(phase)
	})
	.await;
	let log = pods.logs(name, &LogParams::default()).await.expect("client log");
	assert_eq!(phase, "Succeeded", "the client could not fetch {url}: {log}");
	log
}
