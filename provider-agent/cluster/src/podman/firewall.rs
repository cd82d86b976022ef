//! The host firewall rule that keeps deals' pods from opening connections to the host.
//!
//! A pod on a deal's bridge reaches the host at the bridge's gateway address, and with it every
//! host service listening on all addresses (a node's RPC with `--rpc-external`, SSH, the
//! provider's own tools). One rule in the `INPUT` chain rejects new connections arriving from
//! any deal bridge (interfaces `pcd*`, see `network.rs`); answers to connections the host
//! opened (the agent's gateway calling a pod) are established, not new, and pass. Traffic a pod
//! sends to the internet is forwarded, not input, and is unaffected.
//!
//! The rule is installed with `iptables` (nf_tables or legacy, whichever the host uses, as
//! podman's CNI plugins do) when the backend starts, once: it is checked first and left in
//! place when the agent stops, since tenants outlive the agent.

use std::path::Path;

use tokio::process::Command;

use super::network::BRIDGE_PREFIX;
use crate::ClusterError;

/// The rule, after the chain name.
fn rule() -> Vec<String> {
	[
		"-i",
		&format!("{BRIDGE_PREFIX}+"),
		"-m",
		"conntrack",
		"--ctstate",
		"NEW,INVALID",
		"-m",
		"comment",
		"--comment",
		"podchain: deals may not open connections to the host",
		"-j",
		"REJECT",
	]
	.iter()
	.map(|s| s.to_string())
	.collect()
}

/// Makes sure the rule is in the host's `INPUT` chain, inserting it first if it is missing.
pub(crate) async fn guard_host(iptables: &Path) -> Result<(), ClusterError> {
	let run = |op: &'static str| {
		let mut command = Command::new(iptables);
		command.args(["-w", "10", op, "INPUT"]).args(rule());
		command
	};
	let failed = |e: String| {
		ClusterError::Other(format!(
			"host firewall ({}): {e}; deals' pods could reach host services on non-loopback \
			 addresses without it (install iptables and run the agent as root, or turn the \
			 podman firewall off knowingly)",
			iptables.display()
		))
	};
	let check = run("-C").output().await.map_err(|e| failed(e.to_string()))?;
	if check.status.success() {
		return Ok(());
	}
	// `-C` exits 1 for a missing rule; anything else (no permission, no module) is an error.
	if check.status.code() != Some(1) {
		return Err(failed(String::from_utf8_lossy(&check.stderr).trim().to_owned()));
	}
	let insert = run("-I").output().await.map_err(|e| failed(e.to_string()))?;
	if !insert.status.success() {
		return Err(failed(String::from_utf8_lossy(&insert.stderr).trim().to_owned()));
	}
	tracing::info!(interfaces = %format!("{BRIDGE_PREFIX}+"), "host firewall rule installed for deal networks");
	Ok(())
}
