//! End to end: a real dev node, the real `podchain-agent` binary with its podman backend, and
//! a publisher speaking the real libp2p protocol.
//!
//! A metered deal is created; the agent accepts it; the manifest goes over libp2p, sealed to
//! the agent; its container answers on 127.0.0.1 and burns CPU; finalized `report_usage`
//! batches bill it and the provider's balance rises. The agent is killed (SIGKILL) and kept
//! down for a while, then restarted: the tenant keeps running throughout, and the usage of the
//! downtime is billed once (the bill stays close to the CPU limit over the whole span, which
//! losing the downtime would break, and the chain refuses any period billed twice). Closing the
//! deal removes the container and settles the last usage.
//!
//! Needs podman, runc, catatonit and busybox-static (`scripts/setup.sh`), root, and the node
//! binary built by the same `cargo test --release` run (or `PODCHAIN_NODE`).

use podchain_chain::{
	deals::{self, BillingMode, CloseReason, DeploymentState},
	runtime::{self, runtime_types as types},
	tx::Submitter,
	AccountKey, Node,
};
use podchain_manifest::Manifest;
use podchain_p2p::{
	protocol::ManifestRequest, Keypair, Multiaddr, P2pConfig, P2pNode, PeerId, PublisherSigner,
};
use std::{
	fs,
	io::{Read, Write},
	net::TcpStream,
	path::{Path, PathBuf},
	process::{Child, Command, Stdio},
	time::{Duration, Instant},
};

const POD: u128 = 1_000_000_000_000;
/// Price per millicore-second: the container's CPU must outweigh the provider's fees.
const CPU_PRICE: u128 = 100_000_000;
/// How long the agent stays killed.
const AGENT_DOWN_SECS: u64 = 20;
/// The container's CPU limit, which its busy loop uses in full.
const CPU_MILLICORES: u32 = 200;

fn repo_root() -> PathBuf {
	Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The node binary: `PODCHAIN_NODE`, else the one beside this test's own build.
fn node_binary() -> PathBuf {
	if let Ok(path) = std::env::var("PODCHAIN_NODE") {
		return path.into();
	}
	let exe = std::env::current_exe().expect("test path");
	let dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps");
	let node = dir.join("podchain-node");
	assert!(
		node.exists(),
		"{} is missing: run `cargo test --release --workspace` (which builds the node) or set PODCHAIN_NODE",
		node.display()
	);
	node
}

fn free_port() -> u16 {
	std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process killed when dropped, its output in a log file.
struct Proc {
	child: Child,
	log: PathBuf,
}

impl Proc {
	fn spawn(mut command: Command, log: PathBuf) -> Proc {
		let out = fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
		command.stdout(out.try_clone().unwrap()).stderr(out).stdin(Stdio::null());
		let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
		Proc { child, log }
	}

	fn tail(&self) -> String {
		let text = fs::read_to_string(&self.log).unwrap_or_default();
		let lines: Vec<&str> = text.lines().collect();
		lines[lines.len().saturating_sub(40)..].join("\n")
	}

	fn kill(&mut self) {
		let _ = self.child.kill();
		let _ = self.child.wait();
	}
}

impl Drop for Proc {
	fn drop(&mut self) {
		self.kill();
	}
}

/// Polls `check` until it gives a value, failing after `timeout` with `what` and `context()`.
async fn wait_for<T, F, Fut>(
	what: &str,
	timeout: Duration,
	context: impl Fn() -> String,
	mut check: F,
) -> T
where
	F: FnMut() -> Fut,
	Fut: std::future::Future<Output = Option<T>>,
{
	let deadline = Instant::now() + timeout;
	loop {
		if let Some(value) = check().await {
			return value;
		}
		if Instant::now() > deadline {
			panic!("timed out after {timeout:?} waiting for {what}\n{}", context());
		}
		tokio::time::sleep(Duration::from_millis(500)).await;
	}
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
	let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
	stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
	write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
	let mut response = String::new();
	stream.read_to_string(&mut response).ok()?;
	let status = response.split(' ').nth(1)?.parse().ok()?;
	let body = response.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
	Some((status, body))
}

/// The publisher's key as the p2p protocol's signer.
struct Publisher(AccountKey);

impl PublisherSigner for Publisher {
	fn public(&self) -> [u8; 32] {
		self.0.public()
	}
	fn sign(&self, message: &[u8]) -> [u8; 64] {
		self.0.sign(message)
	}
}

/// The agent's files, and the podman store it runs tenants from.
struct AgentDir {
	dir: tempfile::TempDir,
}

impl AgentDir {
	fn path(&self) -> &Path {
		self.dir.path()
	}

	fn podman_env(&self) -> [(&'static str, PathBuf); 2] {
		let state = self.path().join("podman");
		[
			("CONTAINERS_CONF", state.join("containers.conf")),
			("CONTAINERS_STORAGE_CONF", state.join("storage.conf")),
		]
	}

	fn podman(&self, args: &[&str]) -> String {
		let out = Command::new("podman").args(args).envs(self.podman_env()).output().unwrap();
		String::from_utf8_lossy(&out.stdout).trim().to_owned()
	}
}

impl Drop for AgentDir {
	/// Removes what a failed run left running and unmounts the store so the directory goes.
	fn drop(&mut self) {
		self.podman(&["pod", "rm", "--all", "--force", "--time", "0"]);
		self.podman(&["volume", "rm", "--all", "--force"]);
		let root = self.path().to_string_lossy().into_owned();
		// The podman service a killed agent left behind.
		let socket = format!("unix://{root}/podman/podman.sock");
		let _ = Command::new("pkill")
			.args(["-f", &format!("podman system service .*{socket}")])
			.output();
		let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
		let mut mounts: Vec<&str> = mountinfo
			.lines()
			.filter_map(|l| l.split(' ').nth(4))
			.filter(|m| m.starts_with(&root))
			.collect();
		mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
		for mount in mounts {
			let _ = Command::new("umount").arg(mount).output();
		}
	}
}

struct Agent {
	proc: Option<Proc>,
	args: Vec<String>,
	log: PathBuf,
	http_port: u16,
}

impl Agent {
	fn start(&mut self) {
		let mut command = Command::new(env!("CARGO_BIN_EXE_podchain-agent"));
		command.args(&self.args).env("PODCHAIN_AGENT_LOG", "info,podchain_agent=debug");
		self.proc = Some(Proc::spawn(command, self.log.clone()));
	}

	fn tail(&self) -> String {
		let text = fs::read_to_string(&self.log).unwrap_or_default();
		let lines: Vec<&str> = text.lines().collect();
		format!("--- agent log ---\n{}", lines[lines.len().saturating_sub(60)..].join("\n"))
	}

	async fn healthy(&self) {
		let port = self.http_port;
		wait_for(
			"the agent's /healthz",
			Duration::from_secs(90),
			|| self.tail(),
			|| async move { http_get(port, "/healthz").filter(|(status, _)| *status == 200) },
		)
		.await;
	}
}

async fn deal(node: &Node, id: u64) -> Option<deals::Deal> {
	deals::deal(&node.finalized().await.ok()?, id).await.ok()?
}

/// Waits until deal `id` is billed past `block`.
async fn billed_past(node: &Node, agent: &Agent, id: u64, block: u32, what: &str, secs: u64) {
	let check = || {
		let node = node.clone();
		async move { deal(&node, id).await.filter(|d| d.settled_until > block) }
	};
	wait_for(what, Duration::from_secs(secs), || agent.tail(), check).await;
}

async fn free_balance(node: &Node, who: &AccountKey) -> u128 {
	let at = node.finalized().await.unwrap();
	let account = at
		.storage()
		.fetch(runtime::storage().system().account(), (who.account_id(),))
		.await
		.unwrap()
		.decode()
		.unwrap();
	account.data.free
}

fn bytes(text: &str) -> types::bounded_collections::bounded_vec::BoundedVec<u8> {
	types::bounded_collections::bounded_vec::BoundedVec(text.as_bytes().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_runs_is_billed_survives_an_agent_restart_and_ends() {
	let started = Instant::now();
	let work = tempfile::Builder::new().prefix("podchain-e2e-").tempdir_in("/tmp").unwrap();

	// The chain.
	let (rpc_port, node_p2p_port) = (free_port(), free_port());
	let chain_dir = work.path().join("chain");
	let start_node = || {
		let mut command = Command::new(node_binary());
		command.args([
			"--dev",
			"--base-path",
			&chain_dir.to_string_lossy(),
			"--no-mdns",
			"--no-telemetry",
			"--no-prometheus",
			"--listen-addr",
			&format!("/ip4/127.0.0.1/tcp/{node_p2p_port}"),
			"--rpc-port",
			&rpc_port.to_string(),
		]);
		Proc::spawn(command, work.path().join("node.log"))
	};
	let url = format!("ws://127.0.0.1:{rpc_port}");
	let connect = |proc: &Proc| {
		let tail = proc.tail();
		let url = url.clone();
		async move {
			wait_for(
				"the node's RPC",
				Duration::from_secs(120),
				|| tail.clone(),
				|| {
					let url = url.clone();
					async move { podchain_chain::connect(&url).await.ok() }
				},
			)
			.await
		}
	};
	let mut node_proc = start_node();
	let node = connect(&node_proc).await;
	eprintln!("node up after {:?}", started.elapsed());

	// The provider's agent: key, identity, registration.
	let provider = AccountKey::from_secret("//Charlie").unwrap();
	let publisher = AccountKey::from_secret("//Dave").unwrap();
	let agent_dir = AgentDir {
		dir: tempfile::Builder::new().prefix("podchain-agent-").tempdir_in("/tmp").unwrap(),
	};
	let key_file = work.path().join("provider.key");
	fs::write(&key_file, "//Charlie\n").unwrap();
	{
		use std::os::unix::fs::PermissionsExt;
		fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).unwrap();
	}
	let p2p_port = free_port();
	let http_port = free_port();
	let args: Vec<String> = [
		"--rpc-url",
		&url,
		"--key-file",
		&key_file.to_string_lossy(),
		"--data-dir",
		&agent_dir.path().to_string_lossy(),
		"--p2p-listen",
		&format!("/ip4/127.0.0.1/tcp/{p2p_port}"),
		"--http-listen",
		&format!("127.0.0.1:{http_port}"),
		"--sample-seconds",
		"1",
		"--report-every-blocks",
		"3",
	]
	.map(String::from)
	.to_vec();
	let peer_id = Command::new(env!("CARGO_BIN_EXE_podchain-agent"))
		.args(&args)
		.arg("peer-id")
		.output()
		.unwrap();
	assert!(peer_id.status.success(), "{}", String::from_utf8_lossy(&peer_id.stderr));
	let peer_id = String::from_utf8(peer_id.stdout).unwrap().trim().to_owned();
	let peer: PeerId = peer_id.parse().unwrap();
	let agent_addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{p2p_port}").parse().unwrap();

	let provider_tx = Submitter::new(provider.clone());
	let publisher_tx = Submitter::new(publisher.clone());
	use types::{pallet_registry::types as reg, podchain_primitives as prim};
	let registration = reg::Registration {
		capacity: reg::CapacityInput {
			resources: prim::Resources {
				cpu_millicores: 2000,
				memory_mib: 2048,
				storage_gib: 10,
				gpus: 0,
			},
			gpu_model: bytes(""),
		},
		prices: prim::Prices {
			cpu_per_millicore_second: CPU_PRICE,
			memory_per_mib_second: 1_000,
			storage_per_gib_second: 1_000,
			gpu_per_second: 0,
			egress_per_byte: 1,
		},
		rent_discount: types::sp_arithmetic::per_things::Percent(10),
		region: reg::RegionInput { country: *b"DE", location: None },
		endpoint: reg::EndpointInput {
			peer_id: bytes(&peer_id),
			multiaddrs: types::bounded_collections::bounded_vec::BoundedVec(vec![bytes(
				&agent_addr.to_string(),
			)]),
		},
		health_url: bytes(&format!("http://127.0.0.1:{http_port}/healthz")),
		attestation: None,
	};
	provider_tx
		.submit_and_finalize(&node, &runtime::tx().registry().register_provider(registration))
		.await
		.expect("provider registers");

	let mut agent = Agent { proc: None, args, log: work.path().join("agent.log"), http_port };
	agent.start();
	agent.healthy().await;
	eprintln!("agent healthy after {:?}", started.elapsed());
	// The demo image, into the agent's own podman store.
	let image = Command::new("bash")
		.arg(repo_root().join("scripts/build-test-image.sh"))
		.env("PODCHAIN_PODMAN_DIR", agent_dir.path().join("podman"))
		.env("SKIP_APT", "1")
		.output()
		.unwrap();
	assert!(
		image.status.success(),
		"build-test-image.sh: {}",
		String::from_utf8_lossy(&image.stderr)
	);

	// The publisher's deal: a web server that also burns its whole CPU limit.
	let web_port = free_port();
	let yaml = format!(
		"version: podchain/v1\nname: web\ncontainers:\n  - name: web\n    image: localhost/podchain-demo:latest\n    \
		 command: [sh, -c, \"httpd -p 127.0.0.1:{web_port} -h /www; while :; do :; done\"]\n    \
		 resources: {{ cpu: {CPU_MILLICORES}m, memory: 32Mi }}\n"
	);
	let manifest = Manifest::from_yaml(&yaml).unwrap();
	let needs = manifest.resources().unwrap();
	let resources = prim::Resources {
		cpu_millicores: needs.cpu_millicores,
		memory_mib: needs.memory_mib,
		storage_gib: needs.storage_gib,
		gpus: needs.gpus,
	};
	let create = runtime::tx().market().create_deployment(
		provider.account_id(),
		manifest.hash(),
		resources,
		BillingMode::Metered,
		None,
		100 * POD,
	);
	let events = publisher_tx.submit_and_finalize(&node, &create).await.expect("deal created");
	let created = events
		.find_first::<runtime::market::events::DeploymentCreated>()
		.unwrap()
		.expect("DeploymentCreated");
	let id = created.id;
	eprintln!("deal {id} created after {:?}", started.elapsed());

	// The agent accepts it.
	let accepted_at = wait_for(
		"the agent to accept the deal",
		Duration::from_secs(60),
		|| agent.tail(),
		|| {
			let node = node.clone();
			async move {
				match deal(&node, id).await?.state {
					DeploymentState::Active { accepted_at } => Some(accepted_at),
					_ => None,
				}
			}
		},
	)
	.await;
	let provider_before = free_balance(&node, &provider).await;

	// A stranger's delivery is refused; the publisher's is stored and acknowledged.
	let client = P2pNode::spawn(Keypair::generate_ed25519(), P2pConfig::default()).await.unwrap();
	let handle = client.handle();
	let canonical = manifest.canonical_bytes();
	let stranger = Publisher(AccountKey::from_secret("//Eve").unwrap());
	let refused = handle
		.deliver_manifest(
			peer,
			[agent_addr.clone()],
			ManifestRequest::new(&stranger, &peer, id, &canonical).unwrap(),
		)
		.await;
	assert!(
		matches!(
			refused,
			Err(podchain_p2p::P2pError::Rejected {
				reason: podchain_p2p::protocol::RejectReason::NotPublisher,
				..
			})
		),
		"a stranger's manifest is refused: {refused:?}"
	);
	let ack = handle
		.deliver_manifest(
			peer,
			[agent_addr.clone()],
			ManifestRequest::new(&Publisher(publisher.clone()), &peer, id, &canonical).unwrap(),
		)
		.await
		.expect("the publisher's manifest is acknowledged");
	assert_eq!(ack.manifest_hash, manifest.hash());

	// It runs and answers on 127.0.0.1.
	wait_for(
		"the container to answer",
		Duration::from_secs(60),
		|| agent.tail(),
		|| async move { http_get(web_port, "/").filter(|(_, body)| body.contains("podchain-demo ok")) },
	)
	.await;
	eprintln!("tenant answers after {:?}", started.elapsed());
	let running_from = node.finalized().await.unwrap().block_number() as u32;

	// Usage is billed in finalized reports, and the provider earns more than its fees.
	wait_for(
		"a finalized usage report",
		Duration::from_secs(60),
		|| agent.tail(),
		|| {
			let node = node.clone();
			async move {
				deal(&node, id)
					.await
					.filter(|d| d.settled_until > accepted_at + 3 && d.charged.cpu > 0)
			}
		},
	)
	.await;
	wait_for(
		"the provider's balance to rise",
		Duration::from_secs(60),
		|| agent.tail(),
		|| {
			let node = node.clone();
			let provider = provider.clone();
			async move { (free_balance(&node, &provider).await > provider_before).then_some(()) }
		},
	)
	.await;

	// Kill the agent and keep it down: the tenant keeps running.
	agent.proc.as_mut().unwrap().kill();
	// A report sent just before the kill may still land; nothing after it.
	tokio::time::sleep(Duration::from_secs(5)).await;
	let down_from = deal(&node, id).await.unwrap().settled_until;
	tokio::time::sleep(Duration::from_secs(AGENT_DOWN_SECS - 5)).await;
	assert!(http_get(web_port, "/").is_some(), "the tenant runs while the agent is down");
	assert_eq!(
		deal(&node, id).await.unwrap().settled_until,
		down_from,
		"nothing billed while down"
	);
	agent.start();
	agent.healthy().await;
	let restarted_at = node.finalized().await.unwrap().block_number() as u32;
	billed_past(&node, &agent, id, restarted_at, "billing to cover the downtime", 60).await;

	// The node goes down and comes back: the tenant keeps running, the agent reconnects and
	// billing resumes.
	let used_before_outage = container_cpu_millicore_seconds(&agent_dir);
	node_proc.child.kill().unwrap();
	node_proc.child.wait().unwrap();
	tokio::time::sleep(Duration::from_secs(5)).await;
	assert!(http_get(web_port, "/").is_some(), "the tenant runs while the node is down");
	node_proc = start_node();
	let node = connect(&node_proc).await;
	// No blocks came meanwhile: the chain bills by blocks, so this usage is not billable.
	let used_in_outage = container_cpu_millicore_seconds(&agent_dir) - used_before_outage;
	let back_at = node.finalized().await.unwrap().block_number() as u32;
	// A report sent just before the node died left with its pool: the agent waits for that
	// transaction's mortality (64 blocks) before reporting the same usage again.
	billed_past(&node, &agent, id, back_at, "billing after the node's return", 150).await;
	eprintln!("agent reconnected and billed after the node's return: {:?}", started.elapsed());

	// The CPU the tenant used so far, by podman's own count.
	let used_before_close = container_cpu_millicore_seconds(&agent_dir);

	// Closing: the container goes, the last usage is reported, the deal ends.
	publisher_tx
		.submit_and_finalize(
			&node,
			&runtime::tx().market().close_deployment(id, CloseReason::PublisherRequest),
		)
		.await
		.expect("deal closed");
	// The deal leaves storage once its usage is reported up to the close.
	wait_for(
		"the deal's last report",
		Duration::from_secs(90),
		|| agent.tail(),
		|| {
			let node = node.clone();
			async move {
				let at = node.finalized().await.ok()?;
				deals::deal(&at, id).await.ok()?.is_none().then_some(())
			}
		},
	)
	.await;
	let (final_settled, final_cpu) = settled_totals(&node, id).await;
	wait_for(
		"the container to be gone",
		Duration::from_secs(30),
		|| agent.tail(),
		|| async move { http_get(web_port, "/").is_none().then_some(()) },
	)
	.await;
	assert_eq!(agent_dir.podman(&["ps", "--all", "--quiet"]), "", "no container left");

	// Billed CPU covers what the tenant used, by podman's count before the close, but for the
	// node's outage (no blocks, so nothing billable), and up to the limit over the blocks it
	// ran. Losing the agent's downtime would cost about a quarter. Never above the limit over
	// the whole deal.
	let billed = final_cpu / CPU_PRICE;
	let limit_over = |from: u32| u128::from(CPU_MILLICORES) * u128::from(final_settled - from);
	let billable = (used_before_close - used_in_outage).min(limit_over(running_from));
	eprintln!(
		"billed {billed} millicore-seconds of {billable} billable ({:.1}%); podman counted \
		 {used_before_close} before the close, {used_in_outage} in the node's outage; total {:?}",
		billed as f64 * 100.0 / billable.max(1) as f64,
		started.elapsed()
	);
	assert!(billed <= limit_over(accepted_at), "never above the limit");
	assert!(billed * 100 >= billable * 90, "usage was lost: {billed} of {billable}");

	let metrics = http_get(http_port, "/metrics").unwrap().1;
	assert!(
		metrics.contains("podchain_agent_usage_reported_total{kind=\"cpu_millicore_seconds\"}"),
		"{metrics}"
	);
	drop(client);
}

/// CPU time of the tenant's container, by podman's stats.
fn container_cpu_millicore_seconds(dir: &AgentDir) -> u128 {
	let listed = dir.podman(&["ps", "--no-trunc", "--format", "{{.ID}} {{.Image}}"]);
	let id = listed
		.lines()
		.find(|l| l.contains("podchain-demo"))
		.and_then(|l| l.split(' ').next())
		.unwrap_or_else(|| panic!("no tenant container in:\n{listed}"))
		.to_owned();
	let nanos =
		dir.podman(&["stats", "--no-stream", "--no-reset", "--format", "{{.CPUNano}}", &id]);
	let nanos: u128 =
		nanos.trim().parse().unwrap_or_else(|_| panic!("podman stats CPUNano: {nanos:?}"));
	nanos / 1_000_000
}

/// The last block a deal was settled to and its total CPU charge, from its `Settled` events.
async fn settled_totals(node: &Node, id: u64) -> (u32, u128) {
	let at = node.finalized().await.unwrap();
	let mut number = at.block_number();
	let (mut settled, mut cpu) = (0u32, 0u128);
	// Walk back from the head: the test's chain is short.
	while number > 0 {
		let block = node.api.at_block(number).await.unwrap();
		for settled_event in
			block.events().fetch().await.unwrap().find::<runtime::market::events::Settled>()
		{
			let event = settled_event.unwrap();
			if event.id == id {
				settled = settled.max(event.period_end);
				cpu += event.charges.cpu;
			}
		}
		number -= 1;
	}
	(settled, cpu)
}
