//! A provider: its account registered on chain and its agent on the podman backend.

use crate::process::{binary, free_port, http_get, repo_root, tail, unmount_below, wait_for, Proc};
use podchain_chain::{
	runtime::{self, runtime_types as types},
	tx::Submitter,
	AccountKey, Node,
};
use std::{
	fs,
	path::{Path, PathBuf},
	process::Command,
	time::Duration,
};

/// Stake a test provider bonds: 100 POD.
pub const PROVIDER_STAKE: u128 = 100_000_000_000_000;

/// The agent's data directory, with the podman store its tenants run from. Dropping it removes
/// what is left running there and the podman service a killed agent left behind.
pub struct AgentDir {
	dir: tempfile::TempDir,
}

impl AgentDir {
	/// A fresh directory under /tmp (podman's paths must stay short).
	pub fn new() -> Self {
		let dir = tempfile::Builder::new()
			.prefix("podchain-agent-")
			.tempdir_in("/tmp")
			.expect("a directory");
		Self { dir }
	}

	/// Its path.
	pub fn path(&self) -> &Path {
		self.dir.path()
	}

	fn podman_env(&self) -> [(&'static str, PathBuf); 2] {
		let state = self.path().join("podman");
		[
			("CONTAINERS_CONF", state.join("containers.conf")),
			("CONTAINERS_STORAGE_CONF", state.join("storage.conf")),
		]
	}

	/// The address on its deal's network, port 8080, of the first deal pod in the agent store
	/// at `dir` (an [`AgentDir::path`]), if one runs; never fails.
	pub fn first_deal_address_in(dir: &Path) -> Option<std::net::SocketAddr> {
		let state = dir.join("podman");
		let podman = |args: &[&str]| {
			let out = Command::new("podman")
				.args(args)
				.env("CONTAINERS_CONF", state.join("containers.conf"))
				.env("CONTAINERS_STORAGE_CONF", state.join("storage.conf"))
				.output()
				.ok()?;
			out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
		};
		let pods =
			podman(&["pod", "ps", "--filter", "status=running", "--format", "{{.InfraId}}"])?;
		let infra = pods.lines().next()?.to_owned();
		let format = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}";
		let ip = podman(&["container", "inspect", "--format", format, &infra])?;
		Some(std::net::SocketAddr::new(ip.parse().ok()?, 8080))
	}

	/// The address `deal`'s first pod has on its deal's network, port 8080.
	pub fn deal_address(&self, deal: u64) -> Option<std::net::SocketAddr> {
		let pod = format!("podchain-deal-{deal}-pod-0");
		let infra = self.podman(&["pod", "inspect", "--format", "{{.InfraContainerID}}", &pod]);
		let format = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}";
		let ip = self.podman(&["container", "inspect", "--format", format, &infra]);
		Some(std::net::SocketAddr::new(ip.trim().parse().ok()?, 8080))
	}

	/// Runs the podman CLI on the agent's store; its stdout.
	pub fn podman(&self, args: &[&str]) -> String {
		let out = Command::new("podman")
			.args(args)
			.envs(self.podman_env())
			.output()
			.expect("podman runs");
		String::from_utf8_lossy(&out.stdout).trim().to_owned()
	}

	/// Whether the podman CLI succeeds on the agent's store (`podman exec` of a probe, say).
	pub fn podman_succeeds(&self, args: &[&str]) -> bool {
		Command::new("podman")
			.args(args)
			.envs(self.podman_env())
			.output()
			.expect("podman runs")
			.status
			.success()
	}

	/// Builds the demo image (`localhost/podchain-demo:latest`) into the agent's store. The
	/// agent must have started once (it writes the store's configuration).
	pub fn build_test_image(&self) {
		build_test_image_into(&self.path().join("podman"));
	}

	/// CPU time of the deal container running the demo image, in millicore-seconds, by
	/// podman's count.
	pub fn tenant_cpu_millicore_seconds(&self) -> u128 {
		let listed = self.podman(&["ps", "--no-trunc", "--format", "{{.ID}} {{.Image}}"]);
		let id = listed
			.lines()
			.find(|l| l.contains("podchain-demo"))
			.and_then(|l| l.split(' ').next())
			.unwrap_or_else(|| panic!("no tenant container in:\n{listed}"))
			.to_owned();
		let nanos =
			self.podman(&["stats", "--no-stream", "--no-reset", "--format", "{{.CPUNano}}", &id]);
		let nanos: u128 =
			nanos.trim().parse().unwrap_or_else(|_| panic!("podman stats CPUNano: {nanos:?}"));
		nanos / 1_000_000
	}
}

/// Builds the demo image (`localhost/podchain-demo:latest`) into the podman store whose
/// configuration the podman backend wrote under `state_dir`.
pub fn build_test_image_into(state_dir: &Path) {
	run_build_test_image(&[("PODCHAIN_PODMAN_DIR", state_dir.as_os_str())]);
}

/// Builds the busybox web image serving `page` (with `filler_mib` MiB of random filler) as a
/// publisher would, and saves it as an OCI archive at `path`; `image` names it in the host's
/// podman store meanwhile.
pub fn build_test_archive(path: &Path, page: &str, filler_mib: u32, image: &str) {
	let filler = filler_mib.to_string();
	run_build_test_image(&[
		("ARCHIVE", path.as_os_str()),
		("PAGE", page.as_ref()),
		("FILLER_MIB", filler.as_ref()),
		("IMAGE", image.as_ref()),
	]);
}

/// Runs `scripts/build-test-image.sh` with `env`, never installing packages.
fn run_build_test_image(env: &[(&str, &std::ffi::OsStr)]) {
	let built = Command::new("bash")
		.arg(repo_root().join("scripts/build-test-image.sh"))
		.envs(env.iter().copied())
		.env("SKIP_APT", "1")
		.output()
		.expect("bash runs");
	assert!(
		built.status.success(),
		"scripts/build-test-image.sh failed (run scripts/setup.sh?): {}",
		String::from_utf8_lossy(&built.stderr)
	);
}

impl Default for AgentDir {
	fn default() -> Self {
		Self::new()
	}
}

impl Drop for AgentDir {
	fn drop(&mut self) {
		self.podman(&["pod", "rm", "--all", "--force", "--time", "0"]);
		self.podman(&["volume", "rm", "--all", "--force"]);
		self.podman(&["network", "prune", "--force"]);
		let root = self.path().to_string_lossy().into_owned();
		let socket = format!("unix://{root}/podman/podman.sock");
		let _ = Command::new("pkill")
			.args(["-f", &format!("podman system service .*{socket}")])
			.output();
		unmount_below(self.path());
	}
}

/// The `podchain-agent` binary run against a node, on loopback ports of its own.
pub struct AgentProcess {
	/// The process, while running.
	pub proc: Option<Proc>,
	args: Vec<String>,
	log: PathBuf,
	/// Port of `/healthz` and `/metrics`.
	pub http_port: u16,
	/// Port of its libp2p listener.
	pub p2p_port: u16,
	/// Port of its HTTP gateway, serving deals' names as `<name>.localhost`.
	pub gateway_port: u16,
}

/// A network pool of its own for each agent: podman allocates subnets knowing only its own
/// service's networks and the bridges already up, so two agents' services creating networks
/// at once from one pool could pick the same subnet. A /20 (64 deals) per agent, varied by
/// process so that test binaries of concurrent runs do not meet either.
pub fn network_pool() -> String {
	static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
	let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 16;
	format!("10.{}.{}.0/20", 92 + std::process::id() % 32, n * 16)
}

impl AgentProcess {
	/// An agent for the provider whose secret is `secret`, keeping its state in `dir` and its
	/// key file and log in `work`; sampling every second, reporting every 3 blocks.
	pub fn new(rpc_url: &str, secret: &str, dir: &AgentDir, work: &Path) -> Self {
		let key_file = work.join("provider.key");
		fs::write(&key_file, format!("{secret}\n")).expect("key file");
		{
			use std::os::unix::fs::PermissionsExt;
			fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).expect("chmod");
		}
		let (p2p_port, http_port, gateway_port) = (free_port(), free_port(), free_port());
		let args = [
			"--rpc-url",
			rpc_url,
			"--key-file",
			&key_file.to_string_lossy(),
			"--data-dir",
			&dir.path().to_string_lossy(),
			"--p2p-listen",
			&format!("/ip4/127.0.0.1/tcp/{p2p_port}"),
			"--http-listen",
			&format!("127.0.0.1:{http_port}"),
			"--sample-seconds",
			"1",
			"--report-every-blocks",
			"3",
			"--ingress-domain",
			"localhost",
			"--gateway-listen",
			&format!("127.0.0.1:{gateway_port}"),
			"--podman-network-pool",
			&network_pool(),
		]
		.map(String::from)
		.to_vec();
		Self { proc: None, args, log: work.join("agent.log"), http_port, p2p_port, gateway_port }
	}

	/// Sets `flag` (`--sample-seconds`, say) to `value` for its next start.
	pub fn set(&mut self, flag: &str, value: &str) {
		match self.args.iter().position(|a| a == flag) {
			Some(at) => self.args[at + 1] = value.to_owned(),
			None => self.args.extend([flag.to_owned(), value.to_owned()]),
		}
	}

	fn command() -> Command {
		Command::new(binary("podchain-agent", "PODCHAIN_AGENT_BIN"))
	}

	/// Adds settings (flags) to every later run of the agent.
	pub fn add_args(&mut self, args: &[&str]) {
		self.args.extend(args.iter().map(|a| a.to_string()));
	}

	/// Runs `podchain-agent <subcommand>` with the agent's settings, to its end.
	pub fn run_subcommand(&self, subcommand: &str) -> std::process::Output {
		Self::command().args(&self.args).arg(subcommand).output().expect("the agent runs")
	}

	/// Its libp2p peer id (`podchain-agent peer-id`).
	pub fn peer_id(&self) -> String {
		let out = Self::command().args(&self.args).arg("peer-id").output().expect("the agent runs");
		assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
		String::from_utf8_lossy(&out.stdout).trim().to_owned()
	}

	/// Its libp2p address.
	pub fn p2p_addr(&self) -> String {
		format!("/ip4/127.0.0.1/tcp/{}", self.p2p_port)
	}

	/// Starts it.
	pub fn start(&mut self) {
		let mut command = Self::command();
		command.args(&self.args).env("PODCHAIN_AGENT_LOG", "info,podchain_agent=debug");
		self.proc = Some(Proc::spawn(command, self.log.clone()));
	}

	/// Kills it (SIGKILL).
	pub fn kill(&mut self) {
		if let Some(mut proc) = self.proc.take() {
			proc.kill();
		}
	}

	/// The last lines of its log.
	pub fn tail(&self) -> String {
		tail(&self.log, 60)
	}

	/// Waits until `/healthz` answers 200 (it read the chain and the cluster).
	pub async fn healthy(&self) {
		let port = self.http_port;
		wait_for(
			"the agent's /healthz",
			Duration::from_secs(90),
			|| self.tail(),
			|| async move { http_get(port, "/healthz").filter(|(status, _)| *status == 200) },
		)
		.await;
	}

	/// Registers `provider` on chain with this agent's endpoint, 2 CPUs, 2 GiB, 10 GiB of
	/// storage in DE, CPU at `cpu_price` planck per millicore-second, and bonds
	/// [`PROVIDER_STAKE`].
	pub async fn register(&self, node: &Node, provider: &AccountKey, cpu_price: u128) {
		use types::{pallet_registry::types as reg, podchain_primitives as prim};
		let bytes = |text: &str| {
			types::bounded_collections::bounded_vec::BoundedVec(text.as_bytes().to_vec())
		};
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
				cpu_per_millicore_second: cpu_price,
				memory_per_mib_second: 1_000,
				storage_per_gib_second: 1_000,
				gpu_per_second: 0,
				egress_per_byte: 1,
			},
			rent_discount: types::sp_arithmetic::per_things::Percent(10),
			region: reg::RegionInput { country: *b"DE", location: None },
			endpoint: reg::EndpointInput {
				peer_id: bytes(&self.peer_id()),
				multiaddrs: types::bounded_collections::bounded_vec::BoundedVec(vec![bytes(
					&self.p2p_addr(),
				)]),
			},
			// The agent's gateway, serving deals under `localhost` (its `--ingress-domain`).
			gateway_url: bytes(&format!("http://127.0.0.1:{}", self.gateway_port)),
			ingress_domain: bytes("localhost"),
		};
		let submitter = Submitter::new(provider.clone());
		submitter
			.submit_and_finalize(node, &runtime::tx().registry().register_provider(registration))
			.await
			.expect("the provider registers");
		// The dev chain's requirement for the whole capacity is 10 + 2 x 10 + 2 x 1 + 10 x 0.1
		// = 33 POD; bond more so tests never hit it.
		submitter
			.submit_and_finalize(node, &runtime::tx().provider_staking().bond(PROVIDER_STAKE))
			.await
			.expect("the provider bonds stake");
	}
}
