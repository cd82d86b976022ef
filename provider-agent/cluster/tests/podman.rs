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
	path::{Path, PathBuf},
	process::Command,
	sync::atomic::{AtomicBool, Ordering},
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

/// One test's podman service and store, cleaned up when dropped.
struct Harness {
	backend: PodmanBackend,
	paths: PodmanPaths,
	dir: tempfile::TempDir,
}

impl Harness {
	async fn start() -> Harness {
		require_podman();
		let dir = tempfile::Builder::new()
			.prefix("podchain-podman-")
			.tempdir_in("/tmp")
			.expect("a state directory under /tmp");
		let started = Instant::now();
		let backend = PodmanBackend::start(PodmanOptions::new(dir.path()))
			.await
			.expect("podman service starts");
		eprintln!("podman service answered after {:?}", started.elapsed());
		let paths = backend.paths().expect("the backend configured its service").clone();
		build_image(dir.path());
		Harness { backend, paths, dir }
	}

	/// Restarts the service on the same state directory, as a restarted agent does.
	async fn restart(&mut self) {
		self.backend.shutdown().await;
		let err = self.backend.deployed().await.unwrap_err();
		assert!(err.is_transient(), "a stopped service is unavailable: {err}");
		self.backend = PodmanBackend::start(PodmanOptions::new(self.dir.path()))
			.await
			.expect("podman service starts again");
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

fn repo_root() -> PathBuf {
	Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Imports the test image into the store of `state_dir`.
fn build_image(state_dir: &Path) {
	let started = Instant::now();
	let output = Command::new("bash")
		.arg(repo_root().join("scripts/build-test-image.sh"))
		.env("PODCHAIN_PODMAN_DIR", state_dir)
		.env("SKIP_APT", "1")
		.output()
		.expect("bash runs");
	assert!(
		output.status.success(),
		"scripts/build-test-image.sh failed (run scripts/setup.sh?): {}",
		String::from_utf8_lossy(&output.stderr)
	);
	eprintln!("test image ready after {:?}", started.elapsed());
}

/// A port nothing listens on now.
fn free_port() -> u16 {
	let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
	listener.local_addr().expect("bound").port()
}

/// A deal serving HTTP on 127.0.0.1:`port` from its volume: the volume keeps `born` from its
/// first start, and each start writes `index.html` from the environment (a secret included).
/// `command` replaces that program.
fn deal(deal: u64, port: u16, greeting: &str, command: Option<&[&str]>) -> DealObjects {
	let script = format!(
		"echo hello; echo oops >&2; \
			 [ -f /data/born ] || cat /proc/sys/kernel/random/uuid > /data/born; \
			 echo \"$GREETING $TOKEN\" > /data/index.html; \
			 exec httpd -f -p 127.0.0.1:{port} -h /data"
	);
	let command = match command {
		Some(command) => serde_json::json!(command),
		None => serde_json::json!(["sh", "-c", script]),
	};
	let manifest = serde_json::json!({
		"version": "podchain/v1",
		"containers": [{
			"name": "web",
			"image": IMAGE,
			"command": command,
			"env": { "GREETING": greeting, "TOKEN": { "secret": "api", "key": "token" } },
			"resources": { "cpu": "250m", "memory": "64Mi" },
			"mounts": [{ "volume": "data", "path": "/data" }],
		}],
		"volumes": [{ "name": "data", "size": "64Mi" }],
		"secrets": [{ "name": "api", "data": { "token": "s3cret" } }],
	});
	let manifest = Manifest::from_json(&manifest.to_string()).expect("manifest parses");
	let spec = DealSpec {
		deal,
		provider: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY".into(),
		publisher: "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty".into(),
		manifest_hash: manifest.hash(),
		manifest,
		reserved: Reserved { cpu_millicores: 250, memory_mib: 64, storage_gib: 1, gpus: 0 },
		http_host: None,
	};
	objects::build(&spec, &BuildOptions::default()).expect("objects build")
}

/// Status and body of `GET path` on 127.0.0.1:`port`, or the connection error.
async fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
	let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
	stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).await?;
	let mut response = String::new();
	stream.read_to_string(&mut response).await?;
	let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
	let body =
		response.split_once("\r\n\r\n").map(|(_, b)| b.trim().to_owned()).unwrap_or_default();
	Ok((status, body))
}

/// Waits up to 10 s for `GET path` to answer 200, returning the body.
async fn wait_for_200(port: u16, path: &str) -> String {
	let deadline = Instant::now() + Duration::from_secs(10);
	loop {
		match get(port, path).await {
			Ok((200, body)) => return body,
			other if Instant::now() > deadline => panic!("no 200 on port {port}: {other:?}"),
			_ => tokio::time::sleep(Duration::from_millis(50)).await,
		}
	}
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
	let (id, port) = (9001, free_port());
	let first = deal(id, port, "hello", None);
	assert_eq!(h.backend.deployed().await.expect("deployed"), vec![]);
	assert_eq!(h.backend.status(id).await.expect("status"), DealStatus::Absent);

	// Apply: the pod serves HTTP on the host, with its limits and the secret inlined. While
	// it comes up the deal is starting, never failed.
	let started = Instant::now();
	let seen = apply_watching(&h.backend, &first).await;
	assert!(seen.iter().any(|s| matches!(s, DealStatus::Starting { .. })), "{seen:?}");
	assert!(h.backend.rolled_out(id, first.manifest_hash).await.expect("rollout"));
	eprintln!("first apply took {:?}", started.elapsed());
	assert_eq!(wait_for_200(port, "/").await, "hello s3cret");
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
	assert_eq!(h.inspect(&web(id), "{{.HostConfig.NetworkMode}}"), "host");
	let container = h.inspect(&web(id), "{{.Id}}");

	// Applying again changes nothing.
	let started = Instant::now();
	h.backend.apply(&first).await.expect("apply again");
	eprintln!("idempotent apply took {:?}", started.elapsed());
	assert_eq!(h.inspect(&web(id), "{{.Id}}"), container);

	// Samples: cumulative CPU, memory in use, the volume's bytes, later and later.
	let key = format!("podchain-deal-{id}-pod-0/web");
	let one = sampled(h.backend.sample(id).await);
	for _ in 0..20 {
		wait_for_200(port, "/").await;
	}
	tokio::time::sleep(Duration::from_millis(200)).await;
	let two = sampled(h.backend.sample(id).await);
	assert_eq!((one.len(), two.len()), (1, 1), "{one:?} {two:?}");
	let ((k1, s1), (k2, s2)) = (&one[0], &two[0]);
	assert_eq!((k1, k2), (&key, &key));
	assert!(s1.cpu_nanos > 0 && s2.cpu_nanos >= s1.cpu_nanos, "{s1:?} {s2:?}");
	assert!(s1.memory_bytes > 0 && s2.memory_bytes > 0, "{s1:?} {s2:?}");
	assert!(s2.at_millis > s1.at_millis, "{s1:?} {s2:?}");
	assert!(s2.storage_bytes > 0, "the volume holds two files: {s2:?}");
	assert_eq!(s2.egress_bytes, 0, "host networking counts nothing");

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
	let born = wait_for_200(port, "/born").await;
	let second = deal(id, port, "bye", None);
	assert_ne!(second.manifest_hash, hash);
	let started = Instant::now();
	let seen = apply_watching(&h.backend, &second).await;
	eprintln!("update took {:?}: {seen:?}", started.elapsed());
	assert!(seen.iter().any(|s| matches!(s, DealStatus::Updating { .. })), "{seen:?}");
	assert!(h.backend.rolled_out(id, second.manifest_hash).await.expect("rollout"));
	assert!(!h.backend.rolled_out(id, hash).await.expect("rollout"), "the old manifest is gone");
	assert_eq!(wait_for_200(port, "/").await, "bye s3cret");
	assert_eq!(wait_for_200(port, "/born").await, born, "the volume survived the update");
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
	assert!(get(port, "/").await.is_err(), "nothing listens any more");
	h.backend.remove(id).await.expect("removing again succeeds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_deals_come_up_beside_a_running_one_without_a_failed_status() {
	// The case: a second deploy on a machine already running a deal was reported as
	// failed while its pod was between its infra and its app container.
	let h = Harness::start().await;
	let (first, second, third) = (9011, 9012, 9013);
	let ports = [free_port(), free_port(), free_port()];
	let running = deal(first, ports[0], "first", None);
	apply_watching(&h.backend, &running).await;
	assert_eq!(wait_for_200(ports[0], "/").await, "first s3cret");
	let (two, three) =
		(deal(second, ports[1], "second", None), deal(third, ports[2], "third", None));
	let started = Instant::now();
	let (seen_two, seen_three) =
		tokio::join!(apply_watching(&h.backend, &two), apply_watching(&h.backend, &three));
	eprintln!("two more deals in {:?}: {seen_two:?} {seen_three:?}", started.elapsed());
	for (deal, port, greeting) in [(second, ports[1], "second"), (third, ports[2], "third")] {
		assert_eq!(wait_for_200(port, "/").await, format!("{greeting} s3cret"));
		assert_eq!(h.backend.status(deal).await.expect("status"), DealStatus::Running);
	}
	assert_eq!(h.backend.status(first).await.expect("status"), DealStatus::Running);
	assert_eq!(wait_for_200(ports[0], "/").await, "first s3cret", "the first served throughout");
	for id in [first, second, third] {
		h.backend.remove(id).await.expect("remove");
	}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_outlive_an_agent_restart() {
	let mut h = Harness::start().await;
	let (id, port) = (9002, free_port());
	let objects = deal(id, port, "still here", None);
	h.backend.apply(&objects).await.expect("apply");
	wait_for_200(port, "/").await;
	let container = h.inspect(&web(id), "{{.Id}}");

	let started = Instant::now();
	h.restart().await;
	eprintln!("service restart took {:?}", started.elapsed());
	assert_eq!(wait_for_200(port, "/").await, "still here s3cret", "served throughout");
	assert_eq!(
		h.backend.deployed().await.expect("deployed"),
		vec![Deployed { deal: id, manifest_hash: objects.manifest_hash }]
	);
	assert_eq!(h.backend.status(id).await.expect("status"), DealStatus::Running);
	h.backend.apply(&objects).await.expect("apply after restart");
	assert_eq!(h.inspect(&web(id), "{{.Id}}"), container, "the running pod was kept");
	assert_eq!(sampled(h.backend.sample(id).await).len(), 1);
	h.backend.remove(id).await.expect("remove");
	assert_eq!(h.backend.status(id).await.expect("status"), DealStatus::Absent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_deals_are_refused_and_reported() {
	let h = Harness::start().await;
	let id = 9003;

	// A command that does not exist: podman creates the container but cannot start it.
	let broken = deal(id, free_port(), "x", Some(&["/no/such/program"]));
	let err = h.backend.apply(&broken).await.unwrap_err();
	assert!(matches!(&err, ClusterError::Refused(m) if m.contains("/no/such/program")), "{err}");
	let status = h.backend.status(id).await.expect("status");
	assert!(matches!(&status, DealStatus::Failed { .. }), "{status:?}");
	// Applying again clears the residue first, and fails the same way.
	let err = h.backend.apply(&broken).await.unwrap_err();
	assert!(matches!(err, ClusterError::Refused(_)), "{err}");

	// A container that exits with an error is reported with its code.
	let crashing = deal(id, free_port(), "x", Some(&["sh", "-c", "echo dying >&2; exit 3"]));
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
	let mut missing = deal(id, free_port(), "x", None);
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
