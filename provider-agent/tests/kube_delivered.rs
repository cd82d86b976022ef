//! Images publishers deliver, on a real cluster: runs only when `KUBECONFIG` is set (otherwise
//! it says it was skipped and passes), and needs the nodes to reach this machine's registry:
//!
//! - `PODCHAIN_TEST_REGISTRY_LISTEN`: the address the test's registry listens on, one the
//!   cluster's nodes reach (e.g. `0.0.0.0:5055` on a host the nodes route to);
//! - `PODCHAIN_TEST_REGISTRY_HOST`: that registry's `host:port` as the nodes' containerd
//!   resolves it, configured for plain HTTP (docs/provider-guide.md, "Images publishers
//!   deliver", has the `hosts.toml`).
//!
//! Without them it says what is missing and passes. With them it builds two versions of the
//! busybox web image as OCI archives, delivers them to an agent image store for a fresh deal,
//! serves them through the agent's registry, and on the cluster: runs the deal on version one
//! (the pod's image is the pinned digest from the deal's repository, pulled from the
//! registry, and the deal is running and ready), rolls it to version two (the status never
//! reports a failure; the new pod runs the second digest), and removes it.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use podchain_agent::{images::Images, registry};
use podchain_cluster::{
	kube::{DeliveredImages, KubeBackend, KubeOptions},
	objects::{build, namespace_name, BuildOptions, DealSpec},
	Backend, DealId, DealStatus, ImageArchive,
};
use podchain_image::{local::LocalImage, store::BlobStore};
use podchain_manifest::{DeliveredImage, Image, Manifest};
use std::{
	sync::Arc,
	time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

mod support;

use support::{archive, deliver, LIMITS};

/// The name the archives' images get in the host's podman store while built.
const IMAGE: &str = "localhost/team/web:cluster-test";

/// No archive is needed on Kubernetes: the nodes pull from the registry.
struct NoArchive;

impl ImageArchive for NoArchive {
	fn write_archive(&self, _: &str, _: &mut dyn std::io::Write) -> std::io::Result<()> {
		Err(std::io::Error::other("not used on Kubernetes"))
	}
}

async fn spec(backend: &KubeBackend, deal: DealId, image: &LocalImage) -> DealSpec {
	let yaml = "version: podchain/v1\ncontainers:\n  - name: web\n    image: {archive: x}\n    \
	            command: [httpd, -f, -p, \"8080\", -h, /www]\n    ports: [{port: 8080}]\n    \
	            resources: {cpu: 100m, memory: 32Mi}\nexpose:\n  - http: {port: 8080}\n";
	let mut manifest = Manifest::from_yaml(yaml).expect("manifest");
	let delivered = DeliveredImage { name: "team/web".into(), digest: image.manifest_digest() };
	manifest.containers[0].image = Image::Delivered(delivered.clone());
	let reference =
		backend.stage_image(deal, &delivered, Arc::new(NoArchive)).await.expect("staged");
	let totals = manifest.resources().expect("totals");
	DealSpec {
		deal,
		provider: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY".into(),
		publisher: "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty".into(),
		manifest_hash: manifest.hash(),
		manifest,
		reserved: totals.into(),
		http_host: None,
		images: [(delivered.digest, reference)].into(),
	}
}

async fn wait_status(
	backend: &KubeBackend,
	deal: DealId,
	what: &str,
	done: impl Fn(&DealStatus) -> bool,
) {
	let started = Instant::now();
	loop {
		let status = backend.status(deal).await.expect("status");
		if let DealStatus::Failed { reason } = &status {
			panic!("the deal failed while waiting for {what}: {reason}");
		}
		if done(&status) {
			return;
		}
		assert!(
			started.elapsed() < Duration::from_secs(180),
			"timed out waiting for {what}: {status:?}"
		);
		tokio::time::sleep(Duration::from_secs(2)).await;
	}
}

/// The image ids (`sha256:` digests of what the nodes pulled) of the deal's running pods.
async fn running_image_ids(client: &kube::Client, deal: DealId) -> Vec<String> {
	let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace_name(deal));
	let list = pods.list(&ListParams::default()).await.expect("pods");
	list.items
		.iter()
		.filter(|p| p.metadata.deletion_timestamp.is_none())
		.flat_map(|p| p.status.iter().flat_map(|s| s.container_statuses.iter().flatten()))
		.filter(|c| c.ready)
		.map(|c| c.image_id.clone())
		.collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_runs_images_publishers_deliver() {
	if std::env::var_os("KUBECONFIG").is_none() {
		eprintln!("skipped: KUBECONFIG is not set, no cluster to test against");
		return;
	}
	let (Ok(listen), Ok(host)) = (
		std::env::var("PODCHAIN_TEST_REGISTRY_LISTEN"),
		std::env::var("PODCHAIN_TEST_REGISTRY_HOST"),
	) else {
		eprintln!(
			"skipped: set PODCHAIN_TEST_REGISTRY_LISTEN (an address of this machine the nodes \
			 reach) and PODCHAIN_TEST_REGISTRY_HOST (how the nodes' containerd names it, plain \
			 HTTP) to test delivered images on this cluster"
		);
		return;
	};
	let work = tempfile::Builder::new().prefix("podchain-kube-images-").tempdir_in("/tmp").unwrap();
	let one = archive(work.path(), "one.oci.tar", "cluster one", IMAGE);
	let two = archive(work.path(), "two.oci.tar", "cluster two", IMAGE);
	let secs = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
	let deal: DealId = 4_100_000_000 + secs % 1_000_000;
	let dir = work.path().join("images");
	{
		let store = BlobStore::open(&dir, LIMITS).unwrap();
		deliver(&store, deal, &one);
		deliver(&store, deal, &two);
	}
	let key: [u8; 32] = rand_key();
	let images = Images::open(&dir, LIMITS).unwrap();
	let pinned = vec![one.manifest_digest(), two.manifest_digest()];
	let pulls = images.pulls(move |d| if d == deal { pinned.clone() } else { Vec::new() });
	let (_, server) = registry::serve(
		listen.parse().expect("PODCHAIN_TEST_REGISTRY_LISTEN"),
		key,
		Arc::new(pulls),
	)
	.await
	.expect("the registry listens");
	let options = KubeOptions {
		delivered_images: Some(DeliveredImages { host, key }),
		..KubeOptions::default()
	};
	let backend = Arc::new(KubeBackend::from_kubeconfig(None, options).await.expect("kubeconfig"));
	let outcome = tokio::spawn(lifecycle(backend.clone(), deal, one, two)).await;
	if let Err(err) = backend.remove(deal).await {
		eprintln!("cleanup of deal {deal} failed: {err}");
	}
	server.abort();
	if let Err(err) = outcome {
		std::panic::resume_unwind(err.into_panic());
	}
}

async fn lifecycle(backend: Arc<KubeBackend>, deal: DealId, one: LocalImage, two: LocalImage) {
	let client = kube::Client::try_default().await.expect("client");
	let first = spec(&backend, deal, &one).await;
	println!("deal {deal} runs {}", first.images.values().next().unwrap());
	backend.apply(&build(&first, &BuildOptions::default()).expect("objects")).await.expect("apply");
	wait_status(&backend, deal, "the deal to run", |s| *s == DealStatus::Running).await;
	let ids = running_image_ids(&client, deal).await;
	let digest_one = podchain_manifest::digest_text(&one.manifest_digest());
	assert!(!ids.is_empty() && ids.iter().all(|id| id.ends_with(&digest_one)), "{ids:?}");

	let second = spec(&backend, deal, &two).await;
	backend
		.apply(&build(&second, &BuildOptions::default()).expect("objects"))
		.await
		.expect("update");
	let started = Instant::now();
	loop {
		if backend.rolled_out(deal, second.manifest_hash).await.expect("rolled out") {
			break;
		}
		if let DealStatus::Failed { reason } = backend.status(deal).await.expect("status") {
			panic!("the update failed: {reason}");
		}
		assert!(started.elapsed() < Duration::from_secs(180), "the update did not roll out");
		tokio::time::sleep(Duration::from_secs(2)).await;
	}
	let digest_two = podchain_manifest::digest_text(&two.manifest_digest());
	let ids = running_image_ids(&client, deal).await;
	assert!(!ids.is_empty() && ids.iter().all(|id| id.ends_with(&digest_two)), "{ids:?}");
	backend.remove(deal).await.expect("remove");
}

fn rand_key() -> [u8; 32] {
	let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
	podchain_manifest::blake2_256(
		&[b"kube-delivered-test".as_slice(), &nanos.to_le_bytes()].concat(),
	)
}
