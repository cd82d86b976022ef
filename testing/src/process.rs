//! Child processes, ports and waiting.

use std::{
	fs,
	io::{Read, Write},
	net::TcpStream,
	path::{Path, PathBuf},
	process::{Child, Command, Stdio},
	time::{Duration, Instant},
};

/// The repository's root.
pub fn repo_root() -> PathBuf {
	// Found at run time (cargo runs a test with the manifest dir of its package set), not
	// compile time: checkouts sharing one target dir may run a test binary another built.
	let built_in = || Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
	let Some(start) = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from) else {
		return built_in();
	};
	start
		.ancestors()
		.find(|dir| dir.join("Cargo.lock").is_file())
		.map(Path::to_path_buf)
		.unwrap_or_else(built_in)
}

/// The binary `name` of this workspace: `$env` if set, else the one built beside the running
/// test (`target/<profile>/<name>`).
pub fn binary(name: &str, env: &str) -> PathBuf {
	if let Some(path) = std::env::var_os(env) {
		return path.into();
	}
	let exe = std::env::current_exe().expect("the test's path");
	let dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps");
	let path = dir.join(name);
	assert!(
		path.exists(),
		"{} is missing: run `cargo test --release --workspace` (which builds it) or set {env}",
		path.display()
	);
	path
}

/// A TCP port on 127.0.0.1 that is free now.
pub fn free_port() -> u16 {
	let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
	listener.local_addr().expect("its address").port()
}

/// A child process, killed when dropped, its output appended to a log file.
pub struct Proc {
	/// The process.
	pub child: Child,
	log: PathBuf,
}

impl Proc {
	/// Starts `command` with stdout and stderr going to `log`.
	pub fn spawn(mut command: Command, log: PathBuf) -> Proc {
		let out = fs::OpenOptions::new().create(true).append(true).open(&log).expect("log file");
		command.stdout(out.try_clone().expect("log file")).stderr(out).stdin(Stdio::null());
		let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
		Proc { child, log }
	}

	/// The last lines of its log.
	pub fn tail(&self) -> String {
		tail(&self.log, 40)
	}

	/// Kills it (SIGKILL) and reaps it.
	pub fn kill(&mut self) {
		let _ = self.child.kill();
		let _ = self.child.wait();
	}
}

impl Drop for Proc {
	fn drop(&mut self) {
		self.kill();
	}
}

/// The last `lines` lines of the file at `path`.
pub fn tail(path: &Path, lines: usize) -> String {
	let text = fs::read_to_string(path).unwrap_or_default();
	let all: Vec<&str> = text.lines().collect();
	format!("--- {} ---\n{}", path.display(), all[all.len().saturating_sub(lines)..].join("\n"))
}

/// Polls `check` every half second until it gives a value; panics after `timeout` with `what`
/// and `context()` (a log tail, say).
pub async fn wait_for<T, F, Fut>(
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

/// `GET path` on 127.0.0.1:`port` (HTTP/1.0): the status and the body, or `None` if nothing
/// answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
	http_get_host(port, "127.0.0.1", path)
}

/// `GET path` on 127.0.0.1:`port` for `host` (a deal's name through the agent's gateway).
pub fn http_get_host(port: u16, host: &str, path: &str) -> Option<(u16, String)> {
	http_get_at(std::net::SocketAddr::from(([127, 0, 0, 1], port)), host, path)
}

/// `GET path` for `host` at `address` (a pod's address on its deal's network, say).
pub fn http_get_at(address: std::net::SocketAddr, host: &str, path: &str) -> Option<(u16, String)> {
	let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(3)).ok()?;
	stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
	write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
	let mut response = String::new();
	stream.read_to_string(&mut response).ok()?;
	let status = response.split(' ').nth(1)?.parse().ok()?;
	let body = response.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
	Some((status, body))
}

/// Unmounts everything mounted under `root` (a podman store's overlays), deepest first, so that
/// the directory can be removed.
pub fn unmount_below(root: &Path) {
	let root = root.to_string_lossy().into_owned();
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
