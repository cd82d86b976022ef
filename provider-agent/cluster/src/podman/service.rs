//! The agent's own `podman system service`, with a project configuration that touches nothing
//! in /etc or /var/lib/containers.

use std::{
	path::{Path, PathBuf},
	process::Stdio,
	time::{Duration, Instant},
};

use tokio::process::{Child, Command};

use super::api::Api;
use crate::ClusterError;

/// Longest a unix socket path may be (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;
/// How long a SIGTERMed service may take to exit before it is killed (it takes ~1.3 s).
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Default [`PodmanOptions::network_pool`].
pub const DEFAULT_NETWORK_POOL: &str = "10.90.0.0/16";
/// Prefix length of each deal network's subnet.
const DEAL_SUBNET_PREFIX: u8 = 26;

/// Where and how the podman service runs.
#[derive(Clone, Debug)]
pub struct PodmanOptions {
	/// Directory of the configuration, the image and volume store, the socket and the log.
	/// Keep it per agent and stable: podman pins its paths in its database on first use.
	pub state_dir: PathBuf,
	/// Directory of podman's run-time state (`runroot`, `tmp_dir`); `<state_dir>/run` if unset.
	/// In production put it on a tmpfs (e.g. under `/run/podchain`) so that a reboot clears it,
	/// as podman expects. Keep it stable too.
	pub run_dir: Option<PathBuf>,
	/// The podman program.
	pub podman: PathBuf,
	/// How long to wait for the service to answer.
	pub ready_timeout: Duration,
	/// IPv4 pool the deals' networks take their subnets from, one /26 (62 pods) each: a /16
	/// holds 1,024 deals. Pick one no host route uses.
	pub network_pool: String,
	/// Install the host firewall rule that keeps deals' pods from opening connections to the
	/// host (see `firewall.rs`). Needs root and `iptables`; off only where something else
	/// guards the host.
	pub firewall: bool,
	/// The `iptables` program.
	pub iptables: PathBuf,
}

impl PodmanOptions {
	/// Options for `state_dir` with the defaults: `podman` from `PATH`, a 10 s start.
	pub fn new(state_dir: impl Into<PathBuf>) -> Self {
		PodmanOptions {
			state_dir: state_dir.into(),
			run_dir: None,
			podman: PathBuf::from("podman"),
			ready_timeout: Duration::from_secs(10),
			network_pool: DEFAULT_NETWORK_POOL.to_owned(),
			firewall: true,
			iptables: PathBuf::from("iptables"),
		}
	}
}

/// The files of a configured state directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodmanPaths {
	/// `containers.conf`, for `CONTAINERS_CONF`.
	pub containers_conf: PathBuf,
	/// `storage.conf`, for `CONTAINERS_STORAGE_CONF`.
	pub storage_conf: PathBuf,
	/// The service's socket.
	pub socket: PathBuf,
	/// The service's output.
	pub log: PathBuf,
}

impl PodmanPaths {
	/// The environment that points the podman CLI at this store (as the service is), e.g. to
	/// import an image into it.
	pub fn env(&self) -> [(&'static str, &Path); 2] {
		[
			("CONTAINERS_CONF", self.containers_conf.as_path()),
			("CONTAINERS_STORAGE_CONF", self.storage_conf.as_path()),
		]
	}
}

/// Writes the configuration of `options` (only where it changed) and returns its paths.
pub(crate) async fn configure(options: &PodmanOptions) -> Result<PodmanPaths, ClusterError> {
	let state = absolute_dir(&options.state_dir).await?;
	let run = match &options.run_dir {
		Some(dir) => absolute_dir(dir).await?,
		None => absolute_dir(&state.join("run")).await?,
	};
	let paths = PodmanPaths {
		containers_conf: state.join("containers.conf"),
		storage_conf: state.join("storage.conf"),
		socket: state.join("podman.sock"),
		log: state.join("podman-service.log"),
	};
	if paths.socket.as_os_str().len() > MAX_SOCKET_PATH {
		return Err(ClusterError::Other(format!(
			"podman socket path {} is longer than {MAX_SOCKET_PATH} bytes: use a shorter state_dir",
			paths.socket.display()
		)));
	}
	let pool = network_pool(&options.network_pool)?;
	let containers_conf = format!(
		r#"# Written by podchain's agent; rewritten at each start.
[containers]
# Pinned: setrlimit above the host's limits is refused, and tenants get the same everywhere.
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
# The logs API reads k8s-file logs; cap each container's log file so tenants cannot fill the disk.
log_driver = "k8s-file"
log_size_max = 10485760

[engine]
runtime = "runc"
# No systemd needed.
cgroup_manager = "cgroupfs"
events_logger = "file"
# Away from the host-wide /run/libpod. Pinned in podman's database on first use.
tmp_dir = {tmp}

[network]
# Deals' networks (and play/kube's podman-default-kube-network) are written here.
network_config_dir = {networks}
# Each deal's network takes a /{deal_prefix} from this pool.
default_subnet_pools = [{{ "base" = "{pool}", "size" = {deal_prefix} }}]
"#,
		deal_prefix = DEAL_SUBNET_PREFIX,
		tmp = toml_path(&run.join("libpod"))?,
		networks = toml_path(&state.join("networks"))?,
	);
	let storage_conf = format!(
		"# Written by podchain's agent; rewritten at each start.\n[storage]\ndriver = \"overlay\"\n\
		 graphroot = {graph}\nrunroot = {run}\n",
		graph = toml_path(&state.join("storage"))?,
		run = toml_path(&run.join("storage"))?,
	);
	write_if_changed(&paths.containers_conf, &containers_conf).await?;
	write_if_changed(&paths.storage_conf, &storage_conf).await?;
	Ok(paths)
}

/// A running service the backend started.
#[derive(Debug)]
pub(crate) struct Service {
	child: Child,
}

impl Service {
	/// Starts `podman system service` on `paths.socket` and waits until it answers. If a
	/// service already answers there (left by an agent that crashed), returns `None`: it is
	/// used as it is.
	pub async fn start(
		options: &PodmanOptions,
		paths: &PodmanPaths,
		api: &Api,
	) -> Result<Option<Service>, ClusterError> {
		if api.ping().await.is_ok() {
			tracing::warn!(socket = %paths.socket.display(), "a podman service already answers: using it");
			return Ok(None);
		}
		// A socket left by a killed service; podman would replace it anyway.
		let _ = tokio::fs::remove_file(&paths.socket).await;
		let log = std::fs::OpenOptions::new()
			.create(true)
			.append(true)
			.open(&paths.log)
			.map_err(|e| local(&paths.log, e))?;
		let log_err = log.try_clone().map_err(|e| local(&paths.log, e))?;
		let started = Instant::now();
		let mut child = Command::new(&options.podman)
			.args(["system", "service", "--time=0"])
			.arg(format!("unix://{}", paths.socket.display()))
			.envs(paths.env())
			// The service runs for long and may outlive the agent: it gets none of its secrets.
			.env_remove("PODCHAIN_AGENT_KEY")
			.stdin(Stdio::null())
			.stdout(log)
			.stderr(log_err)
			// Pods keep running without the service (conmon is their parent).
			.kill_on_drop(true)
			.spawn()
			.map_err(|e| {
				ClusterError::Other(format!(
					"starting {} system service: {e} (is podman installed? see scripts/setup.sh)",
					options.podman.display()
				))
			})?;
		loop {
			if api.ping().await.is_ok() {
				tracing::info!(
					socket = %paths.socket.display(),
					millis = started.elapsed().as_millis(),
					"podman service ready"
				);
				return Ok(Some(Service { child }));
			}
			let exited = child.try_wait().map_err(|e| ClusterError::Other(e.to_string()))?;
			if exited.is_some() || started.elapsed() > options.ready_timeout {
				let _ = child.kill().await;
				let why = match exited {
					Some(status) => format!("exited ({status})"),
					None => format!("did not answer within {:?}", options.ready_timeout),
				};
				return Err(ClusterError::Unavailable(format!(
					"podman system service {why}; see {}: {}",
					paths.log.display(),
					log_tail(&paths.log).await
				)));
			}
			tokio::time::sleep(Duration::from_millis(25)).await;
		}
	}

	/// SIGTERMs the service and waits for it to exit (killing it if it does not in time).
	pub async fn stop(mut self) {
		if let Some(pid) = self.child.id().and_then(|pid| libc::pid_t::try_from(pid).ok()) {
			// SAFETY: `kill` has no memory effects; `pid` is our child, not yet reaped (its
			// `Child` is alive), so the id cannot have been reused.
			unsafe {
				libc::kill(pid, libc::SIGTERM);
			}
		}
		if tokio::time::timeout(STOP_GRACE, self.child.wait()).await.is_err() {
			tracing::warn!("podman service ignored SIGTERM; killing it");
			let _ = self.child.kill().await;
		}
	}
}

/// `pool` checked: an IPv4 network (`a.b.c.d/n`, host bits zero) with room for deal subnets.
fn network_pool(pool: &str) -> Result<String, ClusterError> {
	let bad = |why: &str| {
		ClusterError::Other(format!(
			"network pool {pool:?}: {why} (expected e.g. {DEFAULT_NETWORK_POOL})"
		))
	};
	let (address, prefix) = pool.split_once('/').ok_or_else(|| bad("no prefix length"))?;
	let address: std::net::Ipv4Addr = address.parse().map_err(|_| bad("not an IPv4 address"))?;
	let prefix: u8 = prefix.parse().map_err(|_| bad("not a prefix length"))?;
	if !(8..=DEAL_SUBNET_PREFIX).contains(&prefix) {
		return Err(bad(&format!("the prefix length must be 8 to {DEAL_SUBNET_PREFIX}")));
	}
	if u32::from(address) & (u32::MAX >> prefix) != 0 {
		return Err(bad("host bits are set"));
	}
	Ok(format!("{address}/{prefix}"))
}

/// `dir`, created if needed, as an absolute path.
async fn absolute_dir(dir: &Path) -> Result<PathBuf, ClusterError> {
	tokio::fs::create_dir_all(dir).await.map_err(|e| local(dir, e))?;
	tokio::fs::canonicalize(dir).await.map_err(|e| local(dir, e))
}

/// `path` as a TOML basic string.
fn toml_path(path: &Path) -> Result<String, ClusterError> {
	let text =
		path.to_str().filter(|t| !t.chars().any(|c| c.is_control() || c == '"' || c == '\\'));
	match text {
		Some(text) => Ok(format!("\"{text}\"")),
		None => Err(ClusterError::Other(format!(
			"podman state path {} must be UTF-8 without quotes, backslashes or control characters",
			path.display()
		))),
	}
}

async fn write_if_changed(path: &Path, content: &str) -> Result<(), ClusterError> {
	if tokio::fs::read_to_string(path).await.ok().as_deref() == Some(content) {
		return Ok(());
	}
	tokio::fs::write(path, content).await.map_err(|e| local(path, e))
}

/// The last lines of the service's log, for an error message.
async fn log_tail(path: &Path) -> String {
	let text = tokio::fs::read_to_string(path).await.unwrap_or_default();
	let lines: Vec<&str> = text.lines().rev().take(5).collect();
	lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

fn local(path: &Path, e: std::io::Error) -> ClusterError {
	ClusterError::Other(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
	use super::*;

	#[tokio::test]
	async fn configuration_under_the_state_dir() {
		let dir = tempfile::tempdir().expect("temp dir");
		let options = PodmanOptions::new(dir.path().join("state"));
		let paths = configure(&options).await.expect("configured");
		let state = std::fs::canonicalize(dir.path().join("state")).expect("exists");
		assert_eq!(paths.socket, state.join("podman.sock"));
		let containers = std::fs::read_to_string(&paths.containers_conf).expect("written");
		let storage = std::fs::read_to_string(&paths.storage_conf).expect("written");
		let s = state.display();
		assert!(containers.contains(&format!("tmp_dir = \"{s}/run/libpod\"")), "{containers}");
		assert!(containers.contains(&format!("network_config_dir = \"{s}/networks\"")));
		assert!(containers.contains("runtime = \"runc\""));
		assert!(containers.contains("cgroup_manager = \"cgroupfs\""));
		assert!(containers.contains("\"nofile=1024:1024\", \"nproc=1024:1024\""));
		assert!(
			containers
				.contains(r#"default_subnet_pools = [{ "base" = "10.90.0.0/16", "size" = 26 }]"#),
			"{containers}"
		);
		assert!(storage.contains(&format!("graphroot = \"{s}/storage\"")), "{storage}");
		assert!(storage.contains(&format!("runroot = \"{s}/run/storage\"")));

		// Stable: a second start writes the same files, untouched.
		let modified = std::fs::metadata(&paths.storage_conf).and_then(|m| m.modified()).ok();
		assert_eq!(configure(&options).await.expect("configured"), paths);
		let again = std::fs::metadata(&paths.storage_conf).and_then(|m| m.modified()).ok();
		assert_eq!(modified, again);
	}

	#[tokio::test]
	async fn unusable_paths_are_refused() {
		let dir = tempfile::tempdir().expect("temp dir");
		let quoted = PodmanOptions::new(dir.path().join("a\"b"));
		assert!(configure(&quoted).await.is_err());
		let long = PodmanOptions::new(dir.path().join("x".repeat(120)));
		let err = configure(&long).await.unwrap_err();
		assert!(err.to_string().contains("longer than"), "{err}");
	}

	#[test]
	fn network_pools_are_checked() {
		assert_eq!(network_pool("10.90.0.0/16").unwrap(), "10.90.0.0/16");
		assert_eq!(network_pool("172.30.0.0/24").unwrap(), "172.30.0.0/24");
		for bad in ["10.90.0.0", "10.90.0.1/16", "10.90.0.0/27", "10.90.0.0/4", "fd00::/64", "x/16"]
		{
			assert!(network_pool(bad).is_err(), "{bad} accepted");
		}
	}

	#[tokio::test]
	async fn a_missing_podman_program_is_a_clear_error() {
		let dir = tempfile::tempdir().expect("temp dir");
		let mut options = PodmanOptions::new(dir.path());
		options.podman = dir.path().join("no-such-podman");
		let paths = configure(&options).await.expect("configured");
		let err =
			Service::start(&options, &paths, &Api::new(paths.socket.clone())).await.unwrap_err();
		assert!(err.to_string().contains("scripts/setup.sh"), "{err}");
	}
}
