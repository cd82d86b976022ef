//! A dev node on loopback.

use crate::process::{binary, free_port, tail, wait_for, Proc};
use podchain_chain::Node;
use std::{path::PathBuf, process::Command, time::Duration};

/// A `podchain-node --dev` process with its state in a directory of its own, so that it can
/// be stopped and started again on the same chain.
pub struct DevNode {
	/// The process, while running.
	pub proc: Option<Proc>,
	dir: PathBuf,
	rpc_port: u16,
	p2p_port: u16,
}

impl DevNode {
	/// Starts a dev node keeping its state in `dir`, and waits until it answers RPC.
	pub async fn start(dir: PathBuf) -> (DevNode, Node) {
		let mut node = DevNode { proc: None, dir, rpc_port: free_port(), p2p_port: free_port() };
		let client = node.restart().await;
		(node, client)
	}

	/// Its WebSocket RPC URL.
	pub fn url(&self) -> String {
		format!("ws://127.0.0.1:{}", self.rpc_port)
	}

	/// Its RPC port on 127.0.0.1 (WebSocket and HTTP).
	pub fn rpc_port(&self) -> u16 {
		self.rpc_port
	}

	/// Its libp2p port on 127.0.0.1.
	pub fn p2p_port(&self) -> u16 {
		self.p2p_port
	}

	/// Kills it (SIGKILL).
	pub fn kill(&mut self) {
		if let Some(mut proc) = self.proc.take() {
			proc.kill();
		}
	}

	/// Starts it (again, on the same state and ports) and connects.
	pub async fn restart(&mut self) -> Node {
		self.kill();
		let mut command = Command::new(binary("podchain-node", "PODCHAIN_NODE"));
		command.args([
			"--dev",
			"--base-path",
			&self.dir.join("chain").to_string_lossy(),
			"--no-mdns",
			"--no-telemetry",
			"--no-prometheus",
			"--listen-addr",
			&format!("/ip4/127.0.0.1/tcp/{}", self.p2p_port),
			"--rpc-port",
			&self.rpc_port.to_string(),
		]);
		let log = self.dir.join("node.log");
		self.proc = Some(Proc::spawn(command, log.clone()));
		let url = self.url();
		wait_for(
			"the node's RPC",
			Duration::from_secs(120),
			|| tail(&log, 40),
			|| {
				let url = url.clone();
				async move { podchain_chain::connect(&url).await.ok() }
			},
		)
		.await
	}
}
