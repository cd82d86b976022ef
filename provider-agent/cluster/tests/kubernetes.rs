//! The Kubernetes backend against a real cluster: runs only when `KUBECONFIG` is set
//! (otherwise it says it was skipped and passes).
//!
//! It deploys the manifest crate's `web` fixture as a deal with a fresh id, with the image from
//! `PODCHAIN_TEST_IMAGE` (default `busybox:1.36`; the image needs `sh` and busybox `httpd`)
//! serving on port 8080 as the non-root user Pod Security requires, then: waits up to 120 s for
//! it to run, applies it again (nothing may change), samples it (the cluster needs
//! metrics-server; set `PODCHAIN_TEST_SKIP_METRICS=1` on one without), reads its logs, removes
//! it and waits for its namespace to go. The deal is removed even if a step fails.
//!
//! The kubeconfig's user needs the agent's permissions (see the crate's README or report).

use k8s_openapi::api::{
	apps::v1::Deployment,
	core::v1::{Namespace, Pod},
};
use kube::api::{Api, ListParams};
use podchain_cluster::{
	kube::{KubeBackend, KubeOptions, VOLUMES_SOURCE},
	objects::{build, namespace_name, BuildOptions, DealSpec, DEPLOYMENT_NAME},
	Backend, DealId, DealStatus, Deployed,
};
use podchain_manifest::Manifest;
use std::{
	path::PathBuf,
	sync::Arc,
	time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

const READY_LINE: &str = "podchain-test-ready";

fn spec(deal: DealId) -> DealSpec {
	let path =
		PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../client/manifest/fixtures/web.yaml");
	let mut manifest = Manifest::from_path(&path).expect("web fixture");
	let image = std::env::var("PODCHAIN_TEST_IMAGE").unwrap_or_else(|_| "busybox:1.36".into());
	let web = &mut manifest.containers[0];
	web.image = image;
	web.command = ["sh", "-c", &format!("echo {READY_LINE}; exec httpd -f -v -p 8080 -h /tmp")]
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
	}
}

/// Polls `check` every 2 s until it returns `Some`, or panics after `limit` with `what`.
async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
	F: FnMut() -> Fut,
	Fut: std::future::Future<Output = Option<T>>,
{
	let start = Instant::now();
	loop {
		if let Some(value) = check().await {
			return value;
		}
		assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
		tokio::time::sleep(Duration::from_secs(2)).await;
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
	if let Err(err) = outcome {
		std::panic::resume_unwind(err.into_panic());
	}
}

async fn lifecycle(backend: Arc<KubeBackend>, deal: DealId) {
	let client = kube::Client::try_default().await.expect("client");
	let spec = spec(deal);
	let objects = build(&spec, &BuildOptions::default()).expect("objects");
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

	if std::env::var_os("PODCHAIN_TEST_SKIP_METRICS").is_some() {
		println!("sampling skipped (PODCHAIN_TEST_SKIP_METRICS)");
	} else {
		let samples = wait_for("metrics of the pod", Duration::from_secs(120), || async {
			match backend.sample(deal).await {
				Ok(samples) if samples.iter().any(|(s, _)| s.ends_with("/httpd")) => Some(samples),
				Ok(_) => None,
				Err(err) => {
					println!("sample: {err} (is metrics-server installed?)");
					None
				}
			}
		})
		.await;
		println!("samples: {samples:?}");
		let (_, web) = samples.iter().find(|(s, _)| s.ends_with("/httpd")).expect("httpd");
		assert!(web.memory_bytes > 0 && web.at_millis > 0, "{web:?}");
		assert!(!samples.iter().any(|(s, _)| s == VOLUMES_SOURCE), "web has no volumes");
	}

	let lines = wait_for("the first log line", Duration::from_secs(60), || async {
		let lines = backend.logs(deal, 0, 100).await.expect("logs");
		lines.iter().any(|l| l.text == READY_LINE).then_some(lines)
	})
	.await;
	let ready = lines.iter().find(|l| l.text == READY_LINE).expect("ready line");
	assert!(ready.container.ends_with("/httpd") && ready.timestamp_ms > 0, "{ready:?}");
	let later = backend.logs(deal, ready.timestamp_ms + 1, 100).await.expect("logs");
	assert!(later.iter().all(|l| l.timestamp_ms > ready.timestamp_ms), "{later:?}");

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
