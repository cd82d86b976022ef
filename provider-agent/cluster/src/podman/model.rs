//! The parts of podman 4.3's JSON answers the backend reads. Every field has a default, and
//! `null` reads as the default, so a field podman leaves out never fails a whole listing.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// Reads `null` as `T::default()`.
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
	Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Labels of an object.
pub(crate) type Labels = BTreeMap<String, String>;

/// An entry of `GET /libpod/pods/json`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct Pod {
	#[serde(deserialize_with = "nullable")]
	pub id: String,
	#[serde(deserialize_with = "nullable")]
	pub name: String,
	/// `Created`, `Running`, `Degraded`, `Stopped`, `Exited`, `Paused`, `Dead`, `Error`.
	#[serde(deserialize_with = "nullable")]
	pub status: String,
	#[serde(deserialize_with = "nullable")]
	pub labels: Labels,
	/// When the pod was created (RFC 3339).
	#[serde(deserialize_with = "nullable")]
	pub created: String,
	/// The pod's infra container, which holds its network namespace.
	#[serde(deserialize_with = "nullable")]
	pub infra_id: String,
	/// Names of the networks the pod is attached to.
	#[serde(deserialize_with = "nullable")]
	pub networks: Vec<String>,
}

/// An entry of `GET /libpod/containers/json`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct Container {
	#[serde(deserialize_with = "nullable")]
	pub id: String,
	/// `<pod>-<container>` for containers of a played pod.
	#[serde(deserialize_with = "nullable")]
	pub names: Vec<String>,
	#[serde(deserialize_with = "nullable")]
	pub pod_name: String,
	/// `created`, `running`, `stopping`, `exited`, `stopped`, `paused`...
	#[serde(deserialize_with = "nullable")]
	pub state: String,
	#[serde(deserialize_with = "nullable")]
	pub exit_code: i64,
	#[serde(deserialize_with = "nullable")]
	pub is_infra: bool,
	/// Its process on this machine (0 when it does not run): an infra container's holds the
	/// pod's network namespace.
	#[serde(deserialize_with = "nullable")]
	pub pid: i64,
	#[serde(deserialize_with = "nullable")]
	pub labels: Labels,
}

impl Container {
	/// `<pod>/<container>`: the container's name in the manifest, after its pod's name.
	pub fn key(&self) -> String {
		let full = self.names.first().map(String::as_str).unwrap_or(self.id.as_str());
		let short = full
			.strip_prefix(self.pod_name.as_str())
			.and_then(|rest| rest.strip_prefix('-'))
			.filter(|short| !short.is_empty())
			.unwrap_or(full);
		format!("{}/{short}", self.pod_name)
	}
}

/// The answer of `POST /libpod/play/kube`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct PlayReport {
	#[serde(deserialize_with = "nullable")]
	pub pods: Vec<PlayedPod>,
}

/// A pod of a [`PlayReport`].
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct PlayedPod {
	#[serde(rename = "ID", deserialize_with = "nullable")]
	pub id: String,
	/// Containers created but not started (a command not found...): the play still answers 200.
	#[serde(deserialize_with = "nullable")]
	pub container_errors: Vec<String>,
}

/// The part of `GET /libpod/containers/{id}/json` that says where a container is reachable.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct ContainerInspect {
	#[serde(deserialize_with = "nullable")]
	pub network_settings: NetworkSettings,
	#[serde(deserialize_with = "nullable")]
	pub state: ContainerState,
}

/// A container's process.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct ContainerState {
	/// Its process id on this machine (0 when it does not run).
	#[serde(deserialize_with = "nullable")]
	pub pid: i64,
}

/// A container's networks, by name.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct NetworkSettings {
	#[serde(deserialize_with = "nullable")]
	pub networks: BTreeMap<String, NetworkAttachment>,
}

/// A container's attachment to one network.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct NetworkAttachment {
	/// Its IPv4 address there.
	#[serde(rename = "IPAddress", deserialize_with = "nullable")]
	pub ip_address: String,
}

/// An entry of `GET /libpod/volumes/json`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct Volume {
	#[serde(deserialize_with = "nullable")]
	pub name: String,
	#[serde(deserialize_with = "nullable")]
	pub labels: Labels,
	/// Where its files are on this machine (the `local` driver).
	#[serde(deserialize_with = "nullable")]
	pub mountpoint: String,
}

/// An entry of `GET /libpod/secrets/json`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct Secret {
	#[serde(deserialize_with = "nullable")]
	pub spec: SecretSpec,
}

/// The spec of a [`Secret`].
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct SecretSpec {
	#[serde(deserialize_with = "nullable")]
	pub name: String,
}

/// The answer of `GET /libpod/containers/stats?stream=false`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct StatsReport {
	/// Set (to `{}`: the message is lost) when any container asked for is unknown.
	pub error: Option<serde_json::Value>,
	#[serde(deserialize_with = "nullable")]
	pub stats: Vec<ContainerStats>,
}

/// One container's reading in a [`StatsReport`].
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct ContainerStats {
	#[serde(rename = "ContainerID", deserialize_with = "nullable")]
	pub container_id: String,
	/// Cumulative CPU time (user + system) in ns; restarts from 0 with the container.
	#[serde(rename = "CPUNano", deserialize_with = "nullable")]
	pub cpu_nano: u64,
	/// Wall-clock time of the reading, ns since the epoch.
	#[serde(deserialize_with = "nullable")]
	pub system_nano: u64,
	/// Memory in use now (page cache included).
	#[serde(deserialize_with = "nullable")]
	pub mem_usage: u64,
	/// Network bytes podman counts for the container: podman 4.3 reads them from the host's end
	/// of the pod's veth, so this is what the pod *received*. Not used: egress is read from the
	/// pod's own namespace (see `stats.rs`).
	#[serde(deserialize_with = "nullable")]
	pub net_output: u64,
}

/// The answer of `GET /libpod/system/df`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct DiskUsage {
	#[serde(deserialize_with = "nullable")]
	pub volumes: Vec<VolumeUsage>,
	#[serde(deserialize_with = "nullable")]
	pub containers: Vec<ContainerUsage>,
}

/// A volume of [`DiskUsage`].
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct VolumeUsage {
	#[serde(deserialize_with = "nullable")]
	pub volume_name: String,
	#[serde(deserialize_with = "nullable")]
	pub size: i64,
}

/// A container of [`DiskUsage`].
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct ContainerUsage {
	#[serde(rename = "ContainerID", deserialize_with = "nullable")]
	pub container_id: String,
	/// Bytes written to the container's own layer.
	#[serde(rename = "RWSize", deserialize_with = "nullable")]
	pub rw_size: i64,
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn pod_listing_as_podman_4_3_writes_it() {
		let json = r#"[{"Cgroup":"/libpod_parent","Containers":[{"Id":"63cef9","Names":"podchain-deal-42-web","Status":"running"},
  {"Id":"a92767","Names":"ebf13b98ff89-infra","Status":"running"}],
  "Created":"2026-11-21T08:35:27.148714043Z","Id":"ebf13b98","InfraId":"a92767",
  "Name":"podchain-deal-42","Namespace":"","Networks":[],"Status":"Running",
  "Labels":{"podchain.io/deal-id":"42","podchain.io/provider":"local"}},
  {"Id":"x","Name":"bare","Status":"Created","Labels":null}]"#;
		let pods: Vec<Pod> = serde_json::from_str(json).expect("parses");
		assert_eq!(pods[0].name, "podchain-deal-42");
		assert_eq!(pods[0].status, "Running");
		assert_eq!(pods[0].labels["podchain.io/deal-id"], "42");
		assert!(pods[1].labels.is_empty());
		assert_eq!(pods[0].created, "2026-11-21T08:35:27.148714043Z");
	}

	#[test]
	fn container_keys_drop_the_pod_prefix() {
		let json = r#"[{"Id":"96629e","Names":["podchain-deal-7-pod-0-web"],"PodName":"podchain-deal-7-pod-0",
  "State":"running","ExitCode":0,"IsInfra":false,"Labels":{"podchain.io/deal-id":"7"},"Mounts":["/data"],
  "Pid":28862,"StartedAt":1795251387,"Exited":false,"ExitedAt":-62135596800,"Ports":null,"Size":null},
  {"Id":"abc","Names":["lonely"],"PodName":"","State":"exited","ExitCode":137}]"#;
		let containers: Vec<Container> = serde_json::from_str(json).expect("parses");
		assert_eq!(containers[0].key(), "podchain-deal-7-pod-0/web");
		assert_eq!((containers[0].pid, containers[1].pid), (28862, 0));
		assert_eq!(containers[1].key(), "/lonely");
		assert_eq!(containers[1].exit_code, 137);
	}

	#[test]
	fn play_report_with_container_errors() {
		let json = r#"{"Pods":[{"ID":"360de5","Containers":["0ee88d"],"InitContainers":null,"Logs":null,
  "ContainerErrors":["starting container 0ee88d: runc: exec: \"/nonexistent\": no such file"]}],
  "Volumes":null,"StopReport":null,"RmReport":null,"Secrets":null}"#;
		let report: PlayReport = serde_json::from_str(json).expect("parses");
		assert_eq!(report.pods[0].id, "360de5");
		assert_eq!(report.pods[0].container_errors.len(), 1);
		let ok: PlayReport =
			serde_json::from_str(r#"{"Pods":[{"ID":"e","ContainerErrors":null}]}"#)
				.expect("parses");
		assert!(ok.pods[0].container_errors.is_empty());
	}

	#[test]
	fn disk_usage_and_secrets() {
		let json = r#"{"Images":[],"Containers":[{"ContainerID":"96629e","Image":"7787","Command":[],
  "LocalVolumes":2,"Size":1984247,"RWSize":12,"Created":"2026-11-21T08:56:27Z","Status":"running",
  "Names":"podchain-deal-7-pod-0-web"}],
  "Volumes":[{"VolumeName":"d43-data","Links":1,"Size":5242880,"ReclaimableSize":0}]}"#;
		let df: DiskUsage = serde_json::from_str(json).expect("parses");
		assert_eq!(df.volumes[0].volume_name, "d43-data");
		assert_eq!(df.volumes[0].size, 5_242_880);
		assert_eq!(df.containers[0].rw_size, 12);

		let json = r#"[{"ID":"2ca45e","CreatedAt":"2026-11-21T08:58:20Z","Spec":{"Name":"d8-x",
  "Driver":{"Name":"file","Options":{}},"Labels":null}}]"#;
		let secrets: Vec<Secret> = serde_json::from_str(json).expect("parses");
		assert_eq!(secrets[0].spec.name, "d8-x");
	}
}
