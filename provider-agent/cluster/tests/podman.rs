//! The podman backend against the real podman on this machine: real containers, real limits.
//!
//! Each test runs its own podman service on its own store (a state directory under /tmp), so
//! tests run in parallel without sharing pods, volumes or ports. Stores do not share images,
//! so each imports the busybox test image with `scripts/build-test-image.sh` (about 1 s).
//!
//! Needs root, podman 4.3, runc, catatonit and busybox-static: `scripts/setup.sh`, or
//! `scripts/build-test-image.sh` which installs what is missing. No podman is a failure, not
//! a skip.

use std::{
	net::SocketAddr,
	path::{Path, PathBuf},
	process::Command,
	sync::atomic::{AtomicBool, AtomicU32, Ordering},
	time::{Duration, Instant},
};

use podchain_cluster::{
	objects::{self, BuildOptions, DealSpec, Reserved},
	podman::{PodmanBackend, PodmanOptions, PodmanPaths},
	Backend, ClusterError, DealObjects, DealStatus, Deployed, Sampled,
};
use podchain_manifest::Manifest;
use tokio::{
	io::{AsyncReadExt, AsyncWriteExt},
	net::TcpStream,
};

const IMAGE: &str = "localhost/podchain-demo:latest";
/// The port the test deals serve on, in their own network namespaces.
const PORT: u16 = 8080;

/// A network pool of its own for each service of this process: podman allocates subnets
/// knowing only its own networks and the bridges already up, so two services creating
/// networks at once from one pool could pick the same subnet.
fn network_pool() -> String {
	static NEXT: AtomicU32 = AtomicU32::new(0);
	let n = NEXT.fetch_add(1, Ordering::SeqCst) % 16;
	format!("10.91.{}.0/20", n * 16)
}

fn options(dir: &Path) -> PodmanOptions {
	let mut options = PodmanOptions::new(dir);
	options.network_pool = network_pool();
	options
}

/// One test's podman service and store, cleaned up when dropped.
struct Harness {
	backend: PodmanBackend,
	paths: PodmanPaths,
	dir: tempfile::TempDir,
	/// The network pool of its service.
	pool: String,
}

impl Harness {
	async fn start() -> Harness {
		require_podman();
		let dir = tempfile::Builder::new()
			.prefix("podchain-podman-")
			.tempdir_in("/tmp")
			.expect("a state directory under /tmp");
		let started = Instant::now();
		let backend =
			PodmanBackend::start(options(dir.path())).await.expect("podman service starts");
		eprintln!("podman service answered after {:?}", started.elapsed());
		let paths = backend.paths().expect("the backend configured its service").clone();
		let conf = std::fs::read_to_string(&paths.containers_conf).expect("configured");
		let pool = conf
			.split("\"base\" = \"")
			.nth(1)
			.and_then(|rest| rest.split('"').next())
			.expect("a network pool in containers.conf")
			.to_owned();
		build_image(dir.path());
		Harness { backend, paths, dir, pool }
	}

	/// Restarts the service on the same state directory, as a restarted agent does.
	async fn restart(&mut self) {
		self.backend.shutdown().await;
		let err = self.backend.deployed().await.unwrap_err();
		assert!(err.is_transient(), "a stopped service is unavailable: {err}");
		let mut options = options(self.dir.path());
		options.network_pool = self.pool.clone();
		self.backend = PodmanBackend::start(options).await.expect("podman service starts again");
	}

	/// Runs the podman CLI on this store.
	fn podman(&self, args: &[&str]) -> String {
		let output =
			Command::new("podman").args(args).envs(self.paths.env()).output().expect("podman runs");
		assert!(
			output.status.success(),
			"podman {args:?}: {}",
			String::from_utf8_lossy(&output.stderr)
		);
		String::from_utf8_lossy(&output.stdout).trim().to_owned()
	}

	/// Whether the podman CLI on this store succeeds.
	fn podman_succeeds(&self, args: &[&str]) -> bool {
		Command::new("podman")
			.args(args)
			.envs(self.paths.env())
			.output()
			.expect("podman runs")
			.status
			.success()
	}

	/// The address `deal`'s first pod serves [`PORT`] on.
	async fn address(&self, deal: u64) -> SocketAddr {
		let endpoints = self.backend.endpoints(deal, PORT).await.expect("endpoints");
		*endpoints.first().unwrap_or_else(|| panic!("deal {deal} has no endpoint"))
	}

	/// Status and body of `GET path` from `deal`, as the gateway reaches it.
	async fn get(&self, deal: u64, path: &str) -> std::io::Result<(u16, String)> {
		match self.backend.endpoints(deal, PORT).await {
			Ok(endpoints) if !endpoints.is_empty() => get(endpoints[0], path).await,
			other => Err(std::io::Error::other(format!("no endpoint: {other:?}"))),
		}
	}

	/// Waits up to 10 s for `GET path` from `deal` to answer 200, returning the body.
	async fn wait_for_200(&self, deal: u64, path: &str) -> String {
		let deadline = Instant::now() + Duration::from_secs(10);
		loop {
			match self.get(deal, path).await {
				Ok((200, body)) => return body,
				other if Instant::now() > deadline => panic!("no 200 from deal {deal}: {other:?}"),
				_ => tokio::time::sleep(Duration::from_millis(50)).await,
			}
		}
	}

	/// `{{format}}` of a container's inspection.
	fn inspect(&self, container: &str, format: &str) -> String {
		self.podman(&["container", "inspect", "--format", format, container])
	}
}

impl Drop for Harness {
	/// Removes whatever a failed test left (pods keep running without the service), unmounts
	/// the store's overlay mounts so the directory can go, and leaves the rest to `TempDir`.
	fn drop(&mut self) {
		let env = self.paths.env();
		let run = |args: &[&str]| {
			let _ = Command::new("podman").args(args).envs(env).output();
		};
		run(&["pod", "rm", "--all", "--force", "--time", "0"]);
		run(&["volume", "rm", "--all", "--force"]);
		run(&["network", "prune", "--force"]);
		podchain_testkit::unmount_below(self.dir.path());
	}
}

fn require_podman() {
	let found = Command::new("podman").arg("--version").output();
	match found {
		Ok(out) if out.status.success() => {}
		_ => panic!(
			"podman is not installed: run scripts/setup.sh (or scripts/build-test-image.sh) as \
			 root to install podman, runc, catatonit and busybox-static; these tests need them"
		),
	}
}

/// Imports the test image into the store of `state_dir`.
fn build_image(state_dir: &Path) {
	let started = Instant::now();
	podchain_testkit::build_test_image_into(state_dir);
	eprintln!("test image ready after {:?}", started.elapsed());
}

/// A deal serving HTTP on [`PORT`] from its volume: the volume keeps `born` from its first
/// start, and each start writes `index.html` from the environment (a secret included).
/// `command` replaces that program.
fn deal(deal: u64, greeting: &str, command: Option<&[&str]>) -> DealObjects {
	build(deal, greeting, command, false)
}

/// [`deal`], scaling to zero after a minute idle.
fn sleepy_deal(deal: u64, greeting: &str) -> DealObjects {
	build(deal, greeting, None, true)
}

fn build(deal: u64, greeting: &str, command: Option<&[&str]>, sleepy: bool) -> DealObjects {
	let script = format!(
		"echo hello; echo oops >&2; \
			 [ -f /data/born ] || cat /proc/sys/kernel/random/uuid > /data/born; \
			 echo \"$GREETING $TOKEN\" > /data/index.html; \
			 exec httpd -f -p {PORT} -h /data"
	);
	let command = match command {
		Some(command) => serde_json::json!(command),
		None => serde_json::json!(["sh", "-c", script]),
	};
	let mut manifest = serde_json::json!({
		"version": "podchain/v1",
		"containers": [{
			"name": "web",
			"image": IMAGE,
			"command": command,
			"env": { "GREETING": greeting, "TOKEN": { "secret": "api", "key": "token" } },
			"resources": { "cpu": "250m", "memory": "64Mi" },
			"mounts": [{ "volume": "data", "path": "/data" }],
			"ports": [{ "port": PORT }],
		}],
		"volumes": [{ "name": "data", "size": "64Mi" }],
		"secrets": [{ "name": "api", "data": { "token": "s3cret" } }],
		"expose": [{ "http": { "port": PORT } }],
	});
	if sleepy {
		manifest["replicas"] = serde_json::json!({ "min": 0, "max": 1, "idle": "1m" });
	}
	let manifest = Manifest::from_json(&manifest.to_string()).expect("manifest parses");
	let spec = DealSpec {
		deal,
		provider: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY".into(),
		publisher: "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty".into(),
		manifest_hash: manifest.hash(),
		manifest,
		reserved: Reserved { cpu_millicores: 250, memory_mib: 64, storage_gib: 1, gpus: 0 },
		http_host: None,
		images: Default::default(),
	};
	objects::build(&spec, &BuildOptions::default()).expect("objects build")
}

/// Status and body of `GET path` at `address`, or the connection error.
async fn get(address: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
	let connect = TcpStream::connect(address);
	let mut stream = tokio::time::timeout(Duration::from_secs(2), connect)
		.await
		.map_err(|_| std::io::Error::other("connect timed out"))??;
	stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: deal\r\n\r\n").as_bytes()).await?;
	let mut response = String::new();
	stream.read_to_string(&mut response).await?;
	let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
	let body =
		response.split_once("\r\n\r\n").map(|(_, b)| b.trim().to_owned()).unwrap_or_default();
	Ok((status, body))
}

/// Applies `objects` while reading the deal's status every 20 ms, as a publisher's CLI does
/// while it waits; returns the statuses seen, none of which may be a failure.
async fn apply_watching(backend: &PodmanBackend, objects: &DealObjects) -> Vec<DealStatus> {
	let done = AtomicBool::new(false);
	let watch = async {
		let mut seen: Vec<DealStatus> = Vec::new();
		while !done.load(Ordering::SeqCst) {
			let status = backend.status(objects.deal).await.expect("status");
			if seen.last() != Some(&status) {
				seen.push(status);
			}
			tokio::time::sleep(Duration::from_millis(20)).await;
		}
		seen
	};
	let apply = async {
		let result = backend.apply(objects).await;
		done.store(true, Ordering::SeqCst);
		result
	};
	let (result, mut seen) = tokio::join!(apply, watch);
	result.expect("apply");
	seen.push(backend.status(objects.deal).await.expect("status"));
	assert!(!seen.iter().any(DealStatus::is_terminal), "a failure while it came up: {seen:?}");
	seen
}

/// The samples of a sample that read every source.
fn sampled(sampled: Sampled) -> Vec<(String, podchain_cluster::Sample)> {
	assert_eq!(sampled.failures, vec![], "every source read");
	sampled.samples
}

fn web(deal: u64) -> String {
	format!("podchain-deal-{deal}-pod-0-web")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_runs_updates_and_goes() {
	let h = Harness::start().await;
	let id = 9001;
	let first = deal(id, "hello", None);
	assert_eq!(h.backend.deployed().await.expect("deployed"), vec![]);
	assert_eq!(h.backend.status(id).await.expect("status"), DealStatus::Absent);

	// Apply: the pod serves HTTP on the deal's own network, with its limits and the secret
	// inlined. While it comes up the deal is starting, never failed.
	let started = Instant::now();
	let seen = apply_watching(&h.backend, &first).await;
	assert!(seen.iter().any(|s| matches!(s, DealStatus::Starting { .. })), "{seen:?}");
	assert!(h.backend.rolled_out(id, first.manifest_hash).await.expect("rollout"));
	eprintln!("first apply took {:?}", started.elapsed());
	assert_eq!(h.wait_for_200(id, "/").await, "hello s3cret");
	eprintln!("HTTP 200 after {:?}", started.elapsed());
	assert_eq!(h.backend.status(id).await.expect("status"), DealStatus::Running);
	let hash = first.manifest_hash;
	assert_eq!(
		h.backend.deployed().await.expect("deployed"),
		vec![Deployed { deal: id, manifest_hash: hash }]
	);
	assert_eq!(
		h.inspect(&web(id), "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}}"),
		"250000000 67108864"
	);
	let network = format!("podchain-deal-{id}");
	let bridge = h.podman(&["network", "inspect", "--format", "{{.NetworkInterface}}", &network]);
	assert!(bridge.starts_with(podchain_cluster::podman::BRIDGE_PREFIX), "{bridge}");
	let address = h.address(id).await;
	assert!(!address.ip().is_loopback(), "{address}");
	let container = h.inspect(&web(id), "{{.Id}}");

	// Applying again changes nothing.
	let started = Instant::now();
	h.backend.apply(&first).await.expect("apply again");
	eprintln!("idempotent apply took {:?}", started.elapsed());
	assert_eq!(h.inspect(&web(id), "{{.Id}}"), container);

	// Samples: cumulative CPU, memory in use, the volume's bytes, later and later.
	let key = format!("podchain-deal-{id}-pod-0/web");
	let one = sampled(h.backend.sample(id).await);
	let mut served = 0;
	for _ in 0..20 {
		served += h.wait_for_200(id, "/").await.len();
	}
	// Past the age of the backend's view of podman, which answers samples taken within it.
	tokio::time::sleep(Duration::from_millis(600)).await;
	let two = sampled(h.backend.sample(id).await);
	let net = format!("podchain-deal-{id}-pod-0/<network>");
	let keys = |samples: &[(String, podchain_cluster::Sample)]| {
		samples.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()
	};
	let volumes = podchain_cluster::kube::VOLUMES_SOURCE.to_owned();
	assert_eq!(keys(&one), [volumes.clone(), net.clone(), key.clone()]);
	assert_eq!(keys(&two), [volumes.clone(), net.clone(), key.clone()]);
	let ((_, n1), (_, s1)) = (&one[1], &one[2]);
	let ((_, v2), (_, n2), (_, s2)) = (&two[0], &two[1], &two[2]);
	assert!(s1.cpu_nanos > 0 && s2.cpu_nanos >= s1.cpu_nanos, "{s1:?} {s2:?}");
	assert!(s1.memory_bytes > 0 && s2.memory_bytes > 0, "{s1:?} {s2:?}");
	assert!(s2.at_millis > s1.at_millis, "{s1:?} {s2:?}");
	assert!(v2.storage_bytes > 0, "the volume holds two files: {v2:?}");
	assert_eq!(s2.egress_bytes, 0, "egress is the pod's, not its containers'");
	// The pod's network counts what it sent: 20 answers, their headers and TCP's own bytes.
	let sent = n2.egress_bytes - n1.egress_bytes;
	eprintln!("20 answers of {served} body bytes: {sent} bytes sent");
	assert!(sent > u64::try_from(served).expect("fits") + 20 * 100, "{n1:?} {n2:?}");
	assert!(sent < 20 * 2_000, "{n1:?} {n2:?}");

	// Logs: stdout and stderr, timed, capped, filtered by time.
	let logs = h.backend.logs(id, 0, 100).await.expect("logs");
	let texts: Vec<(&str, bool)> = logs.iter().map(|l| (l.text.as_str(), l.stderr)).collect();
	assert!(texts.contains(&("hello", false)) && texts.contains(&("oops", true)), "{logs:?}");
	assert!(logs.iter().all(|l| l.container == key));
	let now_ms = u64::try_from(
		std::time::SystemTime::now()
			.duration_since(std::time::UNIX_EPOCH)
			.expect("after 1970")
			.as_millis(),
	)
	.expect("fits");
	assert!(logs.iter().all(|l| l.timestamp_ms + 120_000 > now_ms && l.timestamp_ms <= now_ms));
	assert_eq!(h.backend.logs(id, 0, 1).await.expect("logs").len(), 1);
	assert_eq!(h.backend.logs(id, now_ms + 60_000, 100).await.expect("logs"), vec![]);

	// A new manifest replaces the pod and keeps the volume's data.
	let born = h.wait_for_200(id, "/born").await;
	let second = deal(id, "bye", None);
	assert_ne!(second.manifest_hash, hash);
	let started = Instant::now();
	let seen = apply_watching(&h.backend, &second).await;
	eprintln!("update took {:?}: {seen:?}", started.elapsed());
	assert!(seen.iter().any(|s| matches!(s, DealStatus::Updating { .. })), "{seen:?}");
	assert!(h.backend.rolled_out(id, second.manifest_hash).await.expect("rollout"));
	assert!(!h.backend.rolled_out(id, hash).await.expect("rollout"), "the old manifest is gone");
	assert_eq!(h.wait_for_200(id, "/").await, "bye s3cret");
	assert_eq!(h.wait_for_200(id, "/born").await, born, "the volume survived the update");
	assert_ne!(h.inspect(&web(id), "{{.Id}}"), container, "the pod was replaced");
	assert_eq!(
		h.backend.deployed().await.expect("deployed"),
		vec![Deployed { deal: id, manifest_hash: second.manifest_hash }]
	);

	// Remove: pods and volumes gone, nothing served; removing again is fine.
	let started = Instant::now();
	h.backend.remove(id).await.expect("remove");
	eprintln!("remove took {:?}", started.elapsed());
	assert_eq!(h.backend.status(id).await.expect("status"), DealStatus::Absent);
	assert_eq!(h.backend.deployed().await.expect("deployed"), vec![]);
	assert_eq!(h.podman(&["pod", "ps", "-q"]), "");
	assert_eq!(h.podman(&["volume", "ls", "-q"]), "", "the deal's volumes are gone");
	assert!(!h.podman(&["network", "ls", "-q"]).contains(&network), "the network is gone");
	assert_eq!(h.backend.endpoints(id, PORT).await.expect("endpoints"), vec![]);
	// (The address may now lead elsewhere, through the host's default route.)
	let after = get(address, "/").await;
	assert!(!matches!(&after, Ok((200, _))), "nothing of the deal answers any more: {after:?}");
	h.backend.remove(id).await.expect("removing again succeeds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_deals_come_up_beside_a_running_one_without_a_failed_status() {
	// The case: a second deploy on a machine already running a deal was reported as
	// failed while its pod was between its infra and its app container.
	let h = Harness::start().await;
	let (first, second, third) = (9011, 9012, 9013);
	let running = deal(first, "first", None);
	apply_watching(&h.backend, &running).await;
	assert_eq!(h.wait_for_200(first, "/").await, "first s3cret");
	let (two, three) = (deal(second, "second", None), deal(third, "third", None));
	let started = Instant::now();
	let (seen_two, seen_three) =
		tokio::join!(apply_watching(&h.backend, &two), apply_watching(&h.backend, &three));
	eprintln!("two more deals in {:?}: {seen_two:?} {seen_three:?}", started.elapsed());
	for (deal, greeting) in [(second, "second"), (third, "third")] {
		assert_eq!(h.wait_for_200(deal, "/").await, format!("{greeting} s3cret"));
		assert_eq!(h.backend.status(deal).await.expect("status"), DealStatus::Running);
	}
	assert_eq!(h.backend.status(first).await.expect("status"), DealStatus::Running);
	assert_eq!(h.wait_for_200(first, "/").await, "first s3cret", "the first served throughout");
	for id in [first, second, third] {
		h.backend.remove(id).await.expect("remove");
	}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_outlive_an_agent_restart() {
	let mut h = Harness::start().await;
	let id = 9002;
	let objects = deal(id, "still here", None);
	h.backend.apply(&objects).await.expect("apply");
	h.wait_for_200(id, "/").await;
	let container = h.inspect(&web(id), "{{.Id}}");

	let started = Instant::now();
	h.restart().await;
	eprintln!("service restart took {:?}", started.elapsed());
	assert_eq!(h.wait_for_200(id, "/").await, "still here s3cret", "served throughout");
	assert_eq!(
		h.backend.deployed().await.expect("deployed"),
		vec![Deployed { deal: id, manifest_hash: objects.manifest_hash }]
	);
	assert_eq!(h.backend.status(id).await.expect("status"), DealStatus::Running);
	h.backend.apply(&objects).await.expect("apply after restart");
	assert_eq!(h.inspect(&web(id), "{{.Id}}"), container, "the running pod was kept");
	let samples = sampled(h.backend.sample(id).await);
	assert_eq!(samples.len(), 3, "the container, its pod's network, the volumes: {samples:?}");
	h.backend.remove(id).await.expect("remove");
	assert_eq!(h.backend.status(id).await.expect("status"), DealStatus::Absent);
}

/// The backend follows podman's events: while nothing happens, its questions cost podman
/// nothing; what happens behind its back (a container stopped, then started again) shows as
/// soon as podman announces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podmans_events_keep_the_view_and_announce_changes_behind_its_back() {
	let h = Harness::start().await;
	let id = 9004;
	apply_watching(&h.backend, &deal(id, "evented", None)).await;
	h.wait_for_200(id, "/").await;
	let deadline = Instant::now() + Duration::from_secs(10);
	while !h.backend.follows_events() {
		assert!(Instant::now() < deadline, "the backend does not follow podman's events");
		tokio::time::sleep(Duration::from_millis(50)).await;
	}
	// Past the settling time after the apply's last events.
	tokio::time::sleep(Duration::from_secs(1)).await;
	assert_eq!(h.backend.status(id).await.expect("status"), DealStatus::Running);

	let requests = h.backend.requests();
	let before = requests.load(Ordering::SeqCst);
	for _ in 0..15 {
		tokio::time::sleep(Duration::from_millis(100)).await;
		assert_eq!(h.backend.status(id).await.expect("status"), DealStatus::Running);
	}
	let asked = requests.load(Ordering::SeqCst) - before;
	// Reading podman every 500 ms would have taken 6 requests; only the watch's background
	// relist (pods and containers, every 20 s) may fall in the 1.5 s.
	assert!(asked <= 2, "{asked} requests for 15 answers over 1.5 s");

	let started = Instant::now();
	h.podman(&["stop", "--time", "0", &web(id)]);
	let stopped_after = started.elapsed();
	let deadline = Instant::now() + Duration::from_secs(5);
	let status = loop {
		let status = h.backend.status(id).await.expect("status");
		if status != DealStatus::Running {
			break status;
		}
		assert!(Instant::now() < deadline, "the stopped container still reads as running");
		tokio::time::sleep(Duration::from_millis(10)).await;
	};
	eprintln!(
		"podman stop took {stopped_after:?}; the backend saw it {:?} after the stop began: {status:?}",
		started.elapsed()
	);

	h.podman(&["start", &web(id)]);
	let deadline = Instant::now() + Duration::from_secs(10);
	while h.backend.status(id).await.expect("status") != DealStatus::Running {
		assert!(Instant::now() < deadline, "the restarted container never read as running");
		tokio::time::sleep(Duration::from_millis(10)).await;
	}
	assert_eq!(h.wait_for_200(id, "/").await, "evented s3cret");
	h.backend.remove(id).await.expect("remove");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_deals_are_refused_and_reported() {
	let h = Harness::start().await;
	let id = 9003;

	// A command that does not exist: podman creates the container but cannot start it.
	let broken = deal(id, "x", Some(&["/no/such/program"]));
	let err = h.backend.apply(&broken).await.unwrap_err();
	assert!(matches!(&err, ClusterError::Refused(m) if m.contains("/no/such/program")), "{err}");
	let status = h.backend.status(id).await.expect("status");
	assert!(matches!(&status, DealStatus::Failed { .. }), "{status:?}");
	// Applying again clears the residue first, and fails the same way.
	let err = h.backend.apply(&broken).await.unwrap_err();
	assert!(matches!(err, ClusterError::Refused(_)), "{err}");

	// A container that exits with an error is reported with its code.
	let crashing = deal(id, "x", Some(&["sh", "-c", "echo dying >&2; exit 3"]));
	h.backend.apply(&crashing).await.expect("podman starts it");
	let deadline = Instant::now() + Duration::from_secs(10);
	loop {
		match h.backend.status(id).await.expect("status") {
			DealStatus::Failed { reason } if reason.contains("code 3") => break,
			other if Instant::now() > deadline => panic!("never reported as failed: {other:?}"),
			_ => tokio::time::sleep(Duration::from_millis(100)).await,
		}
	}
	let logs = h.backend.logs(id, 0, 10).await.expect("logs");
	assert!(logs.iter().any(|l| l.text == "dying" && l.stderr), "{logs:?}");

	// An image that is not there: podman tries to pull it, and a registry that cannot be
	// reached may be back later. The failed play leaves a pod with no containers behind.
	let mut missing = deal(id, "x", None);
	let pod = missing.deployment.spec.as_mut().and_then(|s| s.template.spec.as_mut()).expect("pod");
	pod.containers[0].image = Some("localhost/podchain-missing:latest".into());
	let err = h.backend.apply(&missing).await.unwrap_err();
	assert!(err.is_transient() && err.to_string().contains("podchain-missing"), "{err}");
	let status = h.backend.status(id).await.expect("status");
	assert!(
		matches!(&status, DealStatus::Degraded { reason, .. } if reason.contains("podchain-missing")),
		"{status:?}"
	);
	// ... and the deal is deployed with no known manifest, so the agent applies it again.
	assert_eq!(
		h.backend.deployed().await.expect("deployed"),
		vec![Deployed { deal: id, manifest_hash: podchain_cluster::UNKNOWN_MANIFEST }]
	);

	h.backend.remove(id).await.expect("remove");
	assert_eq!(h.backend.status(id).await.expect("status"), DealStatus::Absent);
	assert_eq!(h.podman(&["pod", "ps", "-q"]), "");
	assert_eq!(h.podman(&["volume", "ls", "-q"]), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deals_reach_neither_each_other_nor_the_host() {
	let h = Harness::start().await;
	let (a, b) = (9021, 9022);
	for (id, greeting) in [(a, "a"), (b, "b")] {
		h.backend.apply(&deal(id, greeting, None)).await.expect("apply");
	}
	// The host (the agent's gateway) reaches both.
	assert_eq!(h.wait_for_200(a, "/").await, "a s3cret");
	assert_eq!(h.wait_for_200(b, "/").await, "b s3cret");

	// Host services: one on loopback only (a node's RPC in tests), one on every address (a
	// node's RPC with --rpc-external). Both answer the host.
	let loopback = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
	let everywhere = std::net::TcpListener::bind("0.0.0.0:0").expect("bind");
	let (loopback_port, everywhere_port) = (
		loopback.local_addr().expect("bound").port(),
		everywhere.local_addr().expect("bound").port(),
	);
	let network = format!("podchain-deal-{a}");
	let gateway = h.podman(&[
		"network",
		"inspect",
		"--format",
		"{{range .Subnets}}{{.Gateway}}{{end}}",
		&network,
	]);
	assert!(!gateway.is_empty(), "deal {a}'s network has a gateway address");
	let b_address = h.address(b).await;

	// From inside deal a: nc exits non-zero when it cannot connect.
	let reaches = |host: &str, port: u16| {
		let probe = format!("echo | nc -w 2 {host} {port}");
		h.podman_succeeds(&["exec", &web(a), "sh", "-c", &probe])
	};
	// The probe itself works: deal a reaches its own pod.
	assert!(reaches("127.0.0.1", PORT), "a reaches itself");
	assert!(!reaches("127.0.0.1", loopback_port), "the host's loopback is not the pod's");
	assert!(!reaches(&gateway, loopback_port), "loopback services stay on loopback");
	assert!(!reaches(&gateway, everywhere_port), "the firewall closes the host to deals");
	assert!(!reaches(&b_address.ip().to_string(), PORT), "deal b is isolated from deal a");
	// ... while the host reaches the service deal a could not.
	assert!(std::net::TcpStream::connect(("127.0.0.1", everywhere_port)).is_ok());
	drop((loopback, everywhere));
	for id in [a, b] {
		h.backend.remove(id).await.expect("remove");
	}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_sleeps_keeping_its_data_and_wakes_on_demand() {
	let h = Harness::start().await;
	let id = 9031;
	let objects = sleepy_deal(id, "awake");
	h.backend.apply(&objects).await.expect("apply: it starts awake");
	let born = h.wait_for_200(id, "/born").await;

	h.backend.set_awake(id, false).await.expect("stop");
	h.backend.set_awake(id, false).await.expect("stopping twice is fine");
	assert_eq!(h.backend.status(id).await.expect("status"), DealStatus::Idle);
	assert_eq!(h.backend.endpoints(id, PORT).await.expect("endpoints"), vec![]);
	// Idle: no container to bill, its volumes still there and billed.
	let samples = sampled(h.backend.sample(id).await);
	let keys: Vec<&str> = samples.iter().map(|(k, _)| k.as_str()).collect();
	assert_eq!(keys, [podchain_cluster::kube::VOLUMES_SOURCE], "{samples:?}");
	assert!(samples[0].1.storage_bytes > 0 && samples[0].1.cpu_nanos == 0);
	// A stopped deal is what it should be: applying it again leaves it stopped.
	h.backend.apply(&objects).await.expect("apply while idle");
	assert!(h.backend.rolled_out(id, objects.manifest_hash).await.expect("rollout"));
	assert_eq!(h.backend.deployed().await.expect("deployed").len(), 1);

	// Awake again: the same data, answering within the cold-start budget.
	let started = Instant::now();
	h.backend.set_awake(id, true).await.expect("start");
	assert_eq!(h.wait_for_200(id, "/born").await, born, "the volume kept its data");
	let cold = started.elapsed();
	eprintln!("cold start to the first answer: {cold:?}");
	assert_eq!(h.backend.status(id).await.expect("status"), DealStatus::Running);
	h.backend.remove(id).await.expect("remove");
}

/// An OCI archive on disk, handed to the backend as the agent's image store hands it (the
/// store writes the archive naming the image as asked; here the file's own index names it,
/// and podman keeps both names).
struct ArchiveFile {
	path: PathBuf,
	written: std::sync::atomic::AtomicU32,
}

impl podchain_cluster::ImageArchive for ArchiveFile {
	fn write_archive(&self, ref_name: &str, out: &mut dyn std::io::Write) -> std::io::Result<()> {
		self.written.fetch_add(1, Ordering::SeqCst);
		// Re-labels the index with `ref_name`, as the store does, copying every other entry.
		let mut archive = tar::Archive::new(std::fs::File::open(&self.path)?);
		let mut builder = tar::Builder::new(out);
		for entry in archive.entries()? {
			let mut entry = entry?;
			let path = entry.path()?.into_owned();
			let mut header = entry.header().clone();
			if path == Path::new("index.json") {
				let mut text = String::new();
				std::io::Read::read_to_string(&mut entry, &mut text)?;
				let mut index: serde_json::Value = serde_json::from_str(&text)?;
				index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] =
					ref_name.into();
				let bytes = serde_json::to_vec(&index)?;
				header.set_size(bytes.len() as u64);
				header.set_cksum();
				builder.append(&header, bytes.as_slice())?;
			} else {
				builder.append(&header, &mut entry)?;
			}
		}
		builder.finish()
	}
}

/// Writes the busybox web image serving `page` as an OCI archive, as a publisher builds it.
fn publisher_archive(dir: &Path, page: &str) -> PathBuf {
	let path = dir.join(format!("{}.oci.tar", page.replace(' ', "-")));
	podchain_testkit::build_test_archive(&path, page, 0, "localhost/team/web:podman-test");
	path
}

/// The manifest digest in an OCI archive's index.
fn archive_digest(path: &Path) -> [u8; 32] {
	let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
	for entry in archive.entries().unwrap() {
		let mut entry = entry.unwrap();
		if entry.path().unwrap() == Path::new("index.json") {
			let index: serde_json::Value = serde_json::from_reader(&mut entry).unwrap();
			let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
			return podchain_manifest::parse_digest(&digest).unwrap();
		}
	}
	panic!("no index.json in {}", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_images_load_once_under_the_deals_name_and_go_with_it() {
	use podchain_manifest::{DeliveredImage, Image};
	let harness = Harness::start().await;
	let backend = &harness.backend;
	assert!(backend.runs_delivered_images());
	let page = "delivered page";
	let archive = std::sync::Arc::new(ArchiveFile {
		path: publisher_archive(harness.dir.path(), page),
		written: AtomicU32::new(0),
	});
	let image = DeliveredImage { name: "team/web".into(), digest: archive_digest(&archive.path) };

	// Deal 71 and deal 7 run the same image, each under its own name; it loads once per name
	// and not again when staged again.
	let reference = backend.stage_image(71, &image, archive.clone()).await.expect("staged");
	let hex = &image.digest_text()[7..];
	assert_eq!(reference, format!("localhost/podchain-deal-71/team/web:{hex}"));
	assert_eq!(backend.stage_image(71, &image, archive.clone()).await.unwrap(), reference);
	assert_eq!(archive.written.load(Ordering::SeqCst), 1, "staged once");
	let other = backend.stage_image(7, &image, archive.clone()).await.expect("staged for 7");
	assert_eq!(archive.written.load(Ordering::SeqCst), 2);

	// The deal runs it: the pod serves the archive's page.
	let manifest = Manifest::from_json(
		&serde_json::json!({
			"version": "podchain/v1",
			"containers": [{
				"name": "web",
				"image": { "name": "team/web", "digest": image.digest_text() },
				"command": ["httpd", "-f", "-p", PORT.to_string(), "-h", "/www"],
				"resources": { "cpu": "100m", "memory": "32Mi" },
				"ports": [{ "port": PORT }],
			}],
			"expose": [{ "http": { "port": PORT } }],
		})
		.to_string(),
	)
	.expect("manifest");
	assert!(matches!(manifest.containers[0].image, Image::Delivered(_)));
	let spec = |manifest: Manifest, deal: u64, images| DealSpec {
		deal,
		provider: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY".into(),
		publisher: "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty".into(),
		manifest_hash: manifest.hash(),
		reserved: Reserved { cpu_millicores: 100, memory_mib: 32, storage_gib: 0, gpus: 0 },
		manifest,
		http_host: None,
		images,
	};
	// Without the image staged, nothing can be built.
	let unstaged =
		objects::build(&spec(manifest.clone(), 71, Default::default()), &BuildOptions::default());
	assert!(matches!(unstaged, Err(objects::BuildError::ImageNotStaged { .. })), "{unstaged:?}");
	let staged = [(image.digest, reference.clone())].into();
	let objects =
		objects::build(&spec(manifest.clone(), 71, staged), &BuildOptions::default()).unwrap();
	apply_watching(backend, &objects).await;
	assert_eq!(harness.wait_for_200(71, "/").await, page);
	let names = harness.podman(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
	assert!(names.contains(&reference) && names.contains(&other), "{names}");

	// An update to another image drops the first one's name once the new pods run.
	let second = std::sync::Arc::new(ArchiveFile {
		path: publisher_archive(harness.dir.path(), "second page"),
		written: AtomicU32::new(0),
	});
	let next = DeliveredImage { name: "team/web".into(), digest: archive_digest(&second.path) };
	let next_reference = backend.stage_image(71, &next, second).await.expect("staged");
	let mut updated = manifest.clone();
	updated.containers[0].image = Image::Delivered(next.clone());
	let staged = [(next.digest, next_reference.clone())].into();
	let objects = objects::build(&spec(updated, 71, staged), &BuildOptions::default()).unwrap();
	apply_watching(backend, &objects).await;
	assert_eq!(harness.wait_for_200(71, "/").await, "second page");
	let names = harness.podman(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
	assert!(names.contains(&next_reference) && !names.contains(&reference), "{names}");
	let reference = next_reference;

	// Deal 7 going takes its name only; deal 71 keeps running its image.
	backend.remove(7).await.expect("remove 7");
	let names = harness.podman(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
	assert!(names.contains(&reference) && !names.contains(&other), "{names}");
	assert_eq!(harness.wait_for_200(71, "/").await, "second page");
	backend.remove(71).await.expect("remove 71");
	let names = harness.podman(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
	assert!(!names.contains("podchain-deal-"), "{names}");

	// A cut archive is refused and leaves nothing under the deal's name.
	struct Cut;
	impl podchain_cluster::ImageArchive for Cut {
		fn write_archive(&self, _: &str, out: &mut dyn std::io::Write) -> std::io::Result<()> {
			out.write_all(&[0u8; 4096])?;
			Err(std::io::Error::other("the store's blob vanished"))
		}
	}
	let failed = backend.stage_image(72, &image, std::sync::Arc::new(Cut)).await;
	assert!(failed.is_err(), "{failed:?}");
	let names = harness.podman(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
	assert!(!names.contains("podchain-deal-72"), "{names}");
}
