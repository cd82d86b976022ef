//! A deal's volumes as files on this machine, and freezing the deal's pods while they are
//! read: what the agent's storage proofs snapshot.
//!
//! podman 4.3's REST API has no volume export (`/libpod/volumes/{name}/export` came later), so
//! a consistent copy is taken by pausing the deal's running pods (the cgroup freezer: no
//! process of the deal runs, so no write lands half-way through the copy), reading the
//! volume's mountpoint (`/libpod/volumes/json` gives it for the `local` driver), and
//! unpausing them.

use std::path::PathBuf;

use hyper::{Method, StatusCode};

use super::{
	api::{encode, LIBPOD},
	model::Volume,
	volume_prefix, PodmanBackend,
};
use crate::{objects::DEAL_LABEL, ClusterError, DealId};

/// Prefix of the podman volume of a manifest volume's claim (`vol-<name>`).
const CLAIM_PREFIX: &str = "vol-";

/// One of a deal's volumes on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeMount {
	/// The volume's name in the deal's manifest.
	pub name: String,
	/// podman's name for it.
	pub podman_name: String,
	/// Where its files are.
	pub mountpoint: PathBuf,
}

/// The manifest's name of podman volume `podman_name` of `deal`: the deal's prefix and the
/// claim's prefix taken off.
pub(crate) fn manifest_name(deal: DealId, podman_name: &str) -> String {
	let name = podman_name.strip_prefix(&volume_prefix(deal)).unwrap_or(podman_name);
	name.strip_prefix(CLAIM_PREFIX).unwrap_or(name).to_owned()
}

impl PodmanBackend {
	/// The deal's persistent volumes (its manifest's claims, `d<deal>-vol-<name>`) with their
	/// mountpoints, by manifest name.
	pub async fn volume_mounts(&self, deal: DealId) -> Result<Vec<VolumeMount>, ClusterError> {
		let volumes: Vec<Volume> =
			self.api.get(&format!("{LIBPOD}/volumes/json"), "list volumes").await?;
		// Claims only: an `emptyDir` is scratch space, not data the provider keeps.
		let claim_prefix = format!("{}{CLAIM_PREFIX}", volume_prefix(deal));
		let mut mounts: Vec<VolumeMount> = volumes
			.into_iter()
			.filter(|v| v.name.starts_with(&claim_prefix) && !v.mountpoint.is_empty())
			.map(|v| VolumeMount {
				name: manifest_name(deal, &v.name),
				mountpoint: PathBuf::from(&v.mountpoint),
				podman_name: v.name,
			})
			.collect();
		mounts.sort_by(|a, b| a.name.cmp(&b.name));
		mounts.dedup_by(|a, b| a.name == b.name);
		Ok(mounts)
	}

	/// Freezes the deal's running pods; the names of those paused, for
	/// [`PodmanBackend::unpause_pods`]. Pods not running (stopped, idle) are left alone:
	/// nothing writes there.
	pub async fn pause_deal(&self, deal: DealId) -> Result<Vec<String>, ClusterError> {
		let _changing = self.views.changing();
		let pods = self.pods(deal).await?;
		let label = deal.to_string();
		// The listing is filtered by label already; a pod of another deal is never frozen.
		let running = pods.iter().filter(|p| {
			p.labels.get(DEAL_LABEL) == Some(&label)
				&& matches!(p.status.as_str(), "Running" | "Degraded")
		});
		let mut paused = Vec::new();
		for pod in running {
			let path = format!("{LIBPOD}/pods/{}/pause", encode(&pod.name));
			let reply = self.api.send(Method::POST, &path, None).await?;
			match reply.status {
				s if s.is_success() || s == StatusCode::NOT_MODIFIED => {
					paused.push(pod.name.clone())
				}
				StatusCode::NOT_FOUND => {}
				_ => {
					// Leave nothing frozen behind a failure.
					let _ = self.unpause_pods(&paused).await;
					return Err(reply.error("pause pod"));
				}
			}
		}
		Ok(paused)
	}

	/// Thaws `pods` (paused by [`PodmanBackend::pause_deal`]); a pod gone meanwhile is fine.
	pub async fn unpause_pods(&self, pods: &[String]) -> Result<(), ClusterError> {
		let _changing = self.views.changing();
		let mut first_error = None;
		for name in pods {
			let path = format!("{LIBPOD}/pods/{}/unpause", encode(name));
			match self.api.send(Method::POST, &path, None).await {
				Ok(reply)
					if reply.status.is_success()
						|| reply.status == StatusCode::NOT_MODIFIED
						|| reply.status == StatusCode::NOT_FOUND => {}
				Ok(reply) => {
					first_error.get_or_insert(reply.error("unpause pod"));
				}
				Err(e) => {
					first_error.get_or_insert(e);
				}
			}
		}
		first_error.map_or(Ok(()), Err)
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::podman::fake::FakePodman;
	use serde_json::json;

	#[tokio::test]
	async fn a_deals_claims_are_found_and_its_running_pods_paused_and_thawed() {
		let dir = tempfile::tempdir().expect("temp dir");
		let socket = dir.path().join("podman.sock");
		let fake = FakePodman::serve(&socket);
		fake.run_deal(7, &"ab".repeat(32));
		fake.run_deal(70, &"ab".repeat(32));
		fake.state.lock().expect("lock").volumes = vec![
			json!({"Name": "d7-vol-data", "Mountpoint": "/var/lib/v/d7-vol-data/_data", "Labels": {}}),
			json!({"Name": "d7-vol-cache", "Mountpoint": "/var/lib/v/d7-vol-cache/_data", "Labels": null}),
			json!({"Name": "d7-scratch", "Mountpoint": "/var/lib/v/d7-scratch/_data", "Labels": {}}),
			json!({"Name": "d70-vol-data", "Mountpoint": "/var/lib/v/d70-vol-data/_data", "Labels": {}}),
		];
		let backend = PodmanBackend::connect(&socket).await.expect("the fake answers");
		let mounts = backend.volume_mounts(7).await.expect("listed");
		assert_eq!(
			mounts,
			vec![
				VolumeMount {
					name: "cache".into(),
					podman_name: "d7-vol-cache".into(),
					mountpoint: "/var/lib/v/d7-vol-cache/_data".into(),
				},
				VolumeMount {
					name: "data".into(),
					podman_name: "d7-vol-data".into(),
					mountpoint: "/var/lib/v/d7-vol-data/_data".into(),
				},
			]
		);

		let paused = backend.pause_deal(7).await.expect("paused");
		assert_eq!(paused, vec!["podchain-deal-7-pod-0".to_owned()]);
		let status = |name: &str| {
			let state = fake.state.lock().expect("lock");
			state.pods.iter().find(|p| p["Name"] == name).map(|p| p["Status"].clone())
		};
		assert_eq!(status("podchain-deal-7-pod-0"), Some(json!("Paused")));
		assert_eq!(status("podchain-deal-70-pod-0"), Some(json!("Running")), "another deal");
		// A paused deal is still the deal deployed: nothing replays it meanwhile.
		assert_eq!(crate::Backend::deployed(&backend).await.expect("listed").len(), 2);
		backend.unpause_pods(&paused).await.expect("thawed");
		assert_eq!(status("podchain-deal-7-pod-0"), Some(json!("Running")));
		// A pod gone meanwhile is fine.
		backend.unpause_pods(&["podchain-deal-9-pod-0".to_owned()]).await.expect("gone is fine");
	}

	#[test]
	fn manifest_names_drop_the_deals_and_the_claims_prefixes() {
		assert_eq!(manifest_name(7, "d7-vol-data"), "data");
		assert_eq!(manifest_name(7, "d7-cache"), "cache");
		assert_eq!(manifest_name(7, "d70-vol-data"), "d70-vol-data");
		assert_eq!(manifest_name(7, "other"), "other");
	}
}
