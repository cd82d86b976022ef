//! Publishers' own images, end to end on a real dev node, agent and podman: built on the
//! publisher's side as OCI archives (from Debian's busybox-static), pinned into the manifest by
//! `podchain deploy`, pushed over libp2p, loaded into the agent's podman store and served.

use podchain_chain::AccountKey;
use podchain_image::local::LocalImage;
use podchain_p2p::{
	image::ImageReject, push::ImageReader, P2pConfig, P2pError, P2pNode, PeerId, PublisherSigner,
};
use podchain_testkit::{http_get, http_get_host, wait_for, AgentDir, AgentProcess, DevNode};
use serde_json::Value;
use std::{
	path::{Path, PathBuf},
	process::{Command, Stdio},
	sync::Arc,
	time::{Duration, Instant},
};

/// Runs `podchain` with `args` against `rpc` and key file `key`: exit code, stdout, stderr.
fn podchain(rpc: &str, key: &Path, args: &[&str]) -> (i32, String, String) {
	let out = Command::new(env!("CARGO_BIN_EXE_podchain"))
		.args(["--rpc", rpc, "--key-file", &key.to_string_lossy()])
		.args(args)
		.output()
		.expect("podchain runs");
	let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
	(out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// Runs a command that must succeed with `--json`; its document.
fn json(rpc: &str, key: &Path, args: &[&str]) -> Value {
	let mut all = vec!["--json"];
	all.extend_from_slice(args);
	let (code, stdout, stderr) = podchain(rpc, key, &all);
	assert_eq!(code, 0, "podchain {args:?} failed:\n{stderr}");
	serde_json::from_str(&stdout)
		.unwrap_or_else(|e| panic!("podchain {args:?}: not JSON ({e}):\n{stdout}"))
}

/// Builds the busybox web image serving `page` (plus `filler_mib` MiB of random bytes) as an
/// OCI archive at `dir/file`, as a publisher would: its base layer is the same on every build.
fn archive(dir: &Path, file: &str, page: &str, filler_mib: u32) -> PathBuf {
	let path = dir.join(file);
	let image = format!("localhost/team/web:{}", file.replace('.', "-"));
	podchain_testkit::build_test_archive(&path, page, filler_mib, &image);
	path
}

/// A web server on port 8080 exposed over HTTP, running the image in `archive` (relative to
/// the manifest's directory).
fn manifest(dir: &Path, file: &str, image: &str) -> PathBuf {
	let path = dir.join(file);
	let yaml = format!(
		"version: podchain/v1\ncontainers:\n  - name: web\n    image: {image}\n    \
		 command: [httpd, -f, -p, \"8080\", -h, /www]\n    ports: [{{ port: 8080 }}]\n    \
		 resources: {{ cpu: 100m, memory: 32Mi }}\nexpose:\n  - http: {{ port: 8080 }}\n"
	);
	std::fs::write(&path, yaml).unwrap();
	path
}

/// What `GET /` for `<name>.localhost` answers through the agent's gateway.
async fn served(name: &str, agent: &AgentProcess) -> String {
	let (port, host) = (agent.gateway_port, format!("{name}.localhost"));
	wait_for(
		"the deal to answer through the gateway",
		Duration::from_secs(10),
		|| agent.tail(),
		|| {
			let host = host.clone();
			async move { http_get_host(port, &host, "/").filter(|(s, _)| *s == 200).map(|(_, b)| b) }
		},
	)
	.await
}

/// The names of the images in the agent's podman store under `localhost/podchain-deal-*`.
fn delivered_names(agent_dir: &AgentDir) -> Vec<String> {
	agent_dir
		.podman(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
		.lines()
		.filter(|l| l.starts_with("localhost/podchain-deal-"))
		.map(str::to_owned)
		.collect()
}

struct Reader(LocalImage);

impl ImageReader for Reader {
	fn manifest_digest(&self) -> [u8; 32] {
		self.0.manifest_digest()
	}
	fn manifest_bytes(&self) -> Vec<u8> {
		self.0.manifest_bytes().to_vec()
	}
	fn read(&self, digest: &[u8; 32], offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
		self.0.read(digest, offset, buf)
	}
}

struct Key(AccountKey);

impl PublisherSigner for Key {
	fn public(&self) -> [u8; 32] {
		self.0.public()
	}
	fn sign(&self, message: &[u8]) -> [u8; 64] {
		self.0.sign(message)
	}
}

/// Sets up a dev node, a provider agent on podman (with no image of its own) and the
/// publisher //Dave's key file.
async fn market(work: &Path) -> (DevNode, String, AgentDir, AgentProcess, PathBuf) {
	let (dev_node, node) = DevNode::start(work.to_owned()).await;
	let rpc = dev_node.url();
	let provider = AccountKey::from_secret("//Charlie").unwrap();
	let agent_dir = AgentDir::new();
	let mut agent = AgentProcess::new(&rpc, "//Charlie", &agent_dir, work);
	agent.register(&node, &provider, 1_000_000).await;
	agent.start();
	agent.healthy().await;
	let key = work.join("dave.key");
	json(&rpc, &key, &["account", "import", "//Dave"]);
	(dev_node, rpc, agent_dir, agent, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_deliver_their_own_images() {
	let started = Instant::now();
	let work = tempfile::Builder::new().prefix("podchain-images-").tempdir_in("/tmp").unwrap();
	let (_node, rpc, agent_dir, agent, key) = market(work.path()).await;
	let one = archive(work.path(), "one.oci.tar", "delivered one", 0);
	archive(work.path(), "two.oci.tar", "delivered two", 0);
	eprintln!("node, agent and archives ready after {:?}", started.elapsed());

	// Bad archives are named before anything is created or locked.
	let free_before = json(&rpc, &key, &["account", "show"])["free"].clone();
	let cut = work.path().join("cut.oci.tar");
	let bytes = std::fs::read(&one).unwrap();
	std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
	let (code, _, stderr) = podchain(
		&rpc,
		&key,
		&["deploy", &manifest(work.path(), "cut.yaml", "{archive: cut.oci.tar}").to_string_lossy()],
	);
	assert_eq!(code, 2, "{stderr}");
	assert!(stderr.contains("cut.oci.tar"), "the error names the archive: {stderr}");
	let flipped = work.path().join("flipped.oci.tar");
	let mut bad = bytes.clone();
	// The middle of the archive is inside the base layer's bytes.
	let middle = bad.len() / 3;
	bad[middle] ^= 0xff;
	std::fs::write(&flipped, &bad).unwrap();
	let (code, _, stderr) = podchain(
		&rpc,
		&key,
		&[
			"deploy",
			&manifest(work.path(), "flipped.yaml", "{archive: flipped.oci.tar}").to_string_lossy(),
		],
	);
	assert_eq!(code, 2, "{stderr}");
	assert!(stderr.contains("flipped.oci.tar"), "{stderr}");
	let (code, _, stderr) = podchain(
		&rpc,
		&key,
		&[
			"deploy",
			&manifest(work.path(), "missing.yaml", "{archive: missing.oci.tar}").to_string_lossy(),
		],
	);
	assert_eq!(code, 2, "{stderr}");
	assert_eq!(json(&rpc, &key, &["account", "show"])["free"], free_before, "nothing was paid");

	// The first deal: the whole image travels.
	let first = manifest(work.path(), "one.yaml", "{archive: one.oci.tar, name: team/web}");
	let deployed = json(&rpc, &key, &["deploy", &first.to_string_lossy(), "--for", "1h"]);
	let id1 = deployed["id"].as_u64().unwrap();
	let image = &deployed["images"][0];
	assert_eq!(image["name"], "team/web");
	let total = image["total_bytes"].as_u64().unwrap();
	assert!(total > 1_000_000, "{deployed}");
	assert_eq!(image["skipped_bytes"], 0, "{deployed}");
	assert!(image["sent_bytes"].as_u64().unwrap() >= total, "{deployed}");
	eprintln!("deal {id1} runs its own image after {:?}: {image}", started.elapsed());
	json(&rpc, &key, &["name", "register", "one", &id1.to_string()]);
	assert_eq!(served("one", &agent).await, "delivered one\n");
	let digest1 = image["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
	let name1 = format!("localhost/podchain-deal-{id1}/team/web:{digest1}");
	assert_eq!(
		delivered_names(&agent_dir),
		vec![name1.clone()],
		"loaded under the deal's own name"
	);

	// The second deal shares the base layer: only the new layer and config travel.
	let second = manifest(work.path(), "two.yaml", "{archive: two.oci.tar}");
	let deployed = json(&rpc, &key, &["deploy", &second.to_string_lossy(), "--for", "1h"]);
	let id2 = deployed["id"].as_u64().unwrap();
	let image = &deployed["images"][0];
	assert_eq!(image["name"], "team/web", "the archive's own name: {deployed}");
	let (sent, skipped) =
		(image["sent_bytes"].as_u64().unwrap(), image["skipped_bytes"].as_u64().unwrap());
	assert!(skipped > 1_000_000 && sent < 100_000, "only what is new travels: {deployed}");
	assert_eq!(image["blobs_skipped"], 1, "{deployed}");
	json(&rpc, &key, &["name", "register", "two", &id2.to_string()]);
	assert_eq!(served("two", &agent).await, "delivered two\n");
	eprintln!("deal {id2} sent {sent} B, skipped {skipped} B");

	// An update to a third image of the same base: only its new layer travels, and the deal
	// rolls to it once it is in.
	archive(work.path(), "three.oci.tar", "delivered three", 0);
	let third = manifest(work.path(), "three.yaml", "{archive: three.oci.tar}");
	let (code, _, stderr) =
		podchain(&rpc, &key, &["update", &id2.to_string(), &third.to_string_lossy()]);
	assert_eq!(code, 0, "{stderr}");
	assert!(stderr.contains("already held"), "the update pushed the image: {stderr}");
	assert_eq!(served("two", &agent).await, "delivered three\n");

	// No manifest can run another deal's image: by its name it is refused before anything
	// is paid, and a stranger cannot push images to a deal that is not theirs.
	let (code, _, stderr) = podchain(
		&rpc,
		&key,
		&["deploy", &manifest(work.path(), "steal.yaml", &name1).to_string_lossy()],
	);
	assert_eq!(code, 2, "{stderr}");
	assert!(stderr.contains("reserves for delivered images"), "{stderr}");
	let client = P2pNode::spawn(podchain_p2p::Keypair::generate_ed25519(), P2pConfig::default())
		.await
		.unwrap();
	let peer: PeerId = agent.peer_id().parse().unwrap();
	let stranger = Arc::new(Key(AccountKey::from_secret("//Eve").unwrap()));
	let reader: Arc<dyn ImageReader> = Arc::new(Reader(LocalImage::open(&one).unwrap()));
	let pushed = client
		.handle()
		.push_image(peer, [agent.p2p_addr().parse().unwrap()], stranger, id1, reader, |_| {})
		.await;
	assert!(
		matches!(&pushed, Err(P2pError::ImageRejected { reason: ImageReject::NotPublisher, .. })),
		"{pushed:?}"
	);
	client.shutdown().await;

	// Closing the first deal removes its name; the second keeps running its image.
	json(&rpc, &key, &["close", &id1.to_string()]);
	wait_for(
		"deal 1's image name to go",
		Duration::from_secs(60),
		|| agent.tail(),
		|| async { (!delivered_names(&agent_dir).contains(&name1)).then_some(()) },
	)
	.await;
	// The second deal keeps one name: its update's (the name of the image it ran before went
	// once the new pods ran).
	assert_eq!(delivered_names(&agent_dir).len(), 1, "{:?}", delivered_names(&agent_dir));
	assert_eq!(served("two", &agent).await, "delivered three\n");
	let metrics = http_get(agent.http_port, "/metrics").map(|(_, b)| b).unwrap_or_default();
	assert!(metrics.contains("podchain_agent_images_total{kind=\"offered\"} 3"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_image_transfer_resumes() {
	let work = tempfile::Builder::new().prefix("podchain-resume-").tempdir_in("/tmp").unwrap();
	let (_node, rpc, _agent_dir, mut agent, key) = market(work.path()).await;
	archive(work.path(), "big.oci.tar", "big", 96);
	let big = manifest(work.path(), "big.yaml", "{archive: big.oci.tar}");

	let deploy = Command::new(env!("CARGO_BIN_EXE_podchain"))
		.args(["--rpc", &rpc, "--key-file", &key.to_string_lossy(), "--json", "deploy"])
		.arg(&big)
		.args(["--for", "1h", "--timeout", "300"])
		.stdout(Stdio::piped())
		.stderr(Stdio::piped())
		.spawn()
		.expect("podchain runs");

	// Kill the agent once part of the image is in, and start it again.
	let port = agent.http_port;
	let stored = wait_for(
		"the first 16 MiB of the image to arrive",
		Duration::from_secs(120),
		|| agent.tail(),
		|| async move {
			let metrics = http_get(port, "/metrics")?.1;
			let line =
				metrics.lines().find(|l| l.starts_with("podchain_agent_image_bytes_total "))?;
			let bytes: u64 = line.rsplit(' ').next()?.parse().ok()?;
			(bytes > 16 << 20).then_some(bytes)
		},
	)
	.await;
	agent.kill();
	eprintln!("killed the agent with {stored} bytes stored");
	tokio::time::sleep(Duration::from_secs(1)).await;
	agent.start();

	let out = deploy.wait_with_output().expect("podchain ends");
	let stderr = String::from_utf8_lossy(&out.stderr);
	assert!(
		out.status.success(),
		"the deploy survives the agent's restart:\n{stderr}\n{}",
		agent.tail()
	);
	let deployed: Value = serde_json::from_slice(&out.stdout).unwrap();
	let image = &deployed["images"][0];
	let (total, sent, retries) = (
		image["total_bytes"].as_u64().unwrap(),
		image["sent_bytes"].as_u64().unwrap(),
		image["retries"].as_u64().unwrap(),
	);
	eprintln!("resumed: {image}");
	assert!(retries >= 1, "the push resumed: {image}");
	// Resumed where the agent's copy ended, not from the start: at most what was in flight
	// when it died is sent twice.
	assert!(sent < total + (16 << 20), "{image}");
	let id = deployed["id"].as_u64().unwrap();
	json(&rpc, &key, &["name", "register", "big", &id.to_string()]);
	assert_eq!(served("big", &agent).await, "big\n");
}
