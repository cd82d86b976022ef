//! Each deal's own network: a podman bridge created with the deal and removed with it.
//!
//! - **Isolation between deals.** Every deal network is created with podman's `isolate`
//!   option: the CNI firewall plugin drops traffic between bridges that carry it, so a deal's
//!   pods cannot open connections to another deal's pods.
//! - **Isolation from the host.** A pod's `127.0.0.1` is its own network namespace's, so the
//!   host's loopback services (node RPC, the agent, the podman socket) are out of reach. The
//!   host's other addresses, reachable through the bridge's gateway address, are closed by one
//!   firewall rule (see `firewall.rs`) matching every deal bridge by its name prefix,
//!   [`BRIDGE_PREFIX`].
//! - **Reaching the deal.** The agent's gateway connects to the pods' addresses on the bridge
//!   ([`PodmanBackend::pod_addresses`]); the host may open connections into a deal network,
//!   only the opposite way is closed. Nothing is published on host ports.
//! - **Addresses.** podman allocates each network a subnet from the pool the project
//!   configuration names (`default_subnet_pools`, see `service.rs`).

use std::{
	hash::{Hash, Hasher},
	net::IpAddr,
	path::Path,
};

use hyper::{body::Bytes, Method, StatusCode};

use super::{
	api::{encode, LIBPOD},
	model::{ContainerInspect, Pod},
	PodmanBackend,
};
use crate::{
	objects::{DEAL_LABEL, MANAGED_BY_LABEL, MANAGER},
	ClusterError, DealId,
};

/// Prefix of every deal bridge's interface name: the host firewall rule matches it (`pcd+`).
pub const BRIDGE_PREFIX: &str = "pcd";
/// Longest network interface name Linux takes (`IFNAMSIZ` less its NUL).
const MAX_INTERFACE_NAME: usize = 15;

/// Name of a deal's network (podman names are host-global, like the pods').
pub(crate) fn network_name(deal: DealId) -> String {
	format!("podchain-deal-{deal}")
}

/// The bridge interface of `deal`'s network for the service on `socket`. Interface names are
/// host-wide and podman only avoids the names of its own networks and of bridges already up,
/// so two services (two agents, or tests in parallel) naming bridges by deal alone could pick
/// the same one: the name also hashes the service's socket.
pub(crate) fn bridge_name(socket: &Path, deal: DealId) -> String {
	let mut hasher = std::collections::hash_map::DefaultHasher::new();
	socket.hash(&mut hasher);
	deal.hash(&mut hasher);
	let digits = MAX_INTERFACE_NAME - BRIDGE_PREFIX.len();
	let hash = format!("{:016x}", hasher.finish());
	format!("{BRIDGE_PREFIX}{}", &hash[..digits])
}

impl PodmanBackend {
	/// Creates `deal`'s network unless it exists.
	pub(super) async fn ensure_network(&self, deal: DealId) -> Result<(), ClusterError> {
		let body = serde_json::json!({
			"name": network_name(deal),
			"driver": "bridge",
			"network_interface": bridge_name(self.api.socket(), deal),
			"options": { "isolate": "true" },
			"labels": { DEAL_LABEL: deal.to_string(), MANAGED_BY_LABEL: MANAGER },
		});
		let body = Bytes::from(body.to_string());
		let path = format!("{LIBPOD}/networks/create");
		let reply = self.api.send(Method::POST, &path, Some(("application/json", body))).await?;
		match reply.status {
			s if s.is_success() || s == StatusCode::CONFLICT => Ok(()),
			_ => Err(reply.error("create network")),
		}
	}

	/// Removes `deal`'s network (after its pods: podman refuses to remove a network in use
	/// without `force`, and `force` would remove the pods' containers half-way).
	pub(super) async fn remove_network(&self, deal: DealId) -> Result<(), ClusterError> {
		let path = format!("{LIBPOD}/networks/{}", encode(&network_name(deal)));
		self.delete(path, "delete network").await
	}

	/// The addresses of `pods` (running ones) on `deal`'s network, from their infra containers.
	pub(super) async fn pod_addresses(
		&self,
		deal: DealId,
		pods: &[Pod],
	) -> Result<Vec<IpAddr>, ClusterError> {
		let network = network_name(deal);
		let mut addresses = Vec::new();
		let running = pods.iter().filter(|p| matches!(p.status.as_str(), "Running" | "Degraded"));
		for pod in running.filter(|p| !p.infra_id.is_empty()) {
			let path = format!("{LIBPOD}/containers/{}/json", encode(&pod.infra_id));
			let reply = self.api.send(Method::GET, &path, None).await?;
			if reply.status == StatusCode::NOT_FOUND {
				continue; // Removed since it was listed.
			}
			if !reply.status.is_success() {
				return Err(reply.error("inspect container"));
			}
			let inspect: ContainerInspect = reply.json("inspect container")?;
			let address = inspect
				.network_settings
				.networks
				.get(&network)
				.and_then(|n| n.ip_address.parse::<IpAddr>().ok());
			addresses.extend(address);
		}
		Ok(addresses)
	}
}

/// The bytes the network namespace of process `pid` (a pod's infra container) sent, from its
/// own `/proc/<pid>/net/dev` (see `stats.rs`); `None` if it does not run (any more).
pub(super) async fn sent_by(pid: i64) -> Result<Option<u64>, ClusterError> {
	let file = format!("/proc/{pid}/net/dev");
	let Ok(text) = tokio::fs::read_to_string(&file).await else {
		return Ok(None); // Exited since it was listed.
	};
	super::stats::sent_bytes(&text)
		.map(Some)
		.ok_or_else(|| ClusterError::Other(format!("{file}: not a network device table")))
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn bridge_names_fit_linux_and_the_firewall_prefix() {
		let a = bridge_name(Path::new("/var/lib/podchain/podman.sock"), 7);
		assert_eq!(a.len(), MAX_INTERFACE_NAME);
		assert!(a.starts_with(BRIDGE_PREFIX));
		assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
		assert_eq!(a, bridge_name(Path::new("/var/lib/podchain/podman.sock"), 7), "stable");
		assert_ne!(a, bridge_name(Path::new("/var/lib/podchain/podman.sock"), 8));
		assert_ne!(a, bridge_name(Path::new("/tmp/other/podman.sock"), 7));
	}
}
