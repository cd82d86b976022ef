//! The kubelet's Summary API (`GET /stats/summary`, `k8s.io/kubelet/pkg/apis/stats/v1alpha1`),
//! read through the API server's node proxy, and a deal's usage in it.
//!
//! Per container: CPU time from `cpu.usageCoreNanoSeconds`, the cumulative counter of the
//! container's cgroup (at `cpu.time`); memory from `memory.workingSetBytes`; ephemeral storage
//! from `rootfs.usedBytes` + `logs.usedBytes`. Per pod: egress from `network` (the pod's network
//! namespace, shared by its containers), the sum of `interfaces[].txBytes`, or the default
//! interface's `txBytes` without a list; and, in `volume[]`, the used bytes of each volume with
//! a `pvcRef` (the deal's claims).
//!
//! The keys are chosen so that the agent's meter neither loses nor doubles a counter: it counts
//! all of a new key's counters as usage, and reads a drop under the same key as a restart.
//! - A container is `<pod>/<container>@<startTime, ms>`. A restarted container is a new cgroup
//!   whose counters start again from 0, and a new `startTime` makes it a new key: its whole
//!   counter is new usage even when it has already passed the old container's last reading,
//!   where a drop would not show. A pod replaced by another has a new name, so new keys too.
//! - A pod's network is `<pod>/<network>` ([`NETWORK`]), apart from its containers: its
//!   counters belong to the pod's sandbox and outlive container restarts, so under a
//!   container's key a restart would count them again.
//!
//! A container whose CPU counter is not reported yet (it has just started) is left out rather
//! than read as 0: a 0 would look like a restart and count the next reading twice.

use crate::{ClusterError, Sample};
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

/// The name after `<pod>/` of a pod's network source: not a container name (those are DNS
/// labels).
pub const NETWORK: &str = "<network>";

/// One node's Summary: what its kubelet reports of every pod on it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Summary {
	#[serde(default, deserialize_with = "nullable")]
	pods: Vec<PodStats>,
}

/// A deal's usage on one node, read from its [`Summary`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeUsage {
	/// Readings of the deal's containers and pod networks, sorted by key (see the module docs).
	pub samples: Vec<(String, Sample)>,
	/// The deal's claims mounted on the node, by name, with their used bytes (`None` where the
	/// volume does not report them: some storage drivers do not).
	pub claims: BTreeMap<String, Option<u64>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodStats {
	pod_ref: PodRef,
	#[serde(default, deserialize_with = "nullable")]
	containers: Vec<ContainerStats>,
	#[serde(default)]
	network: Option<NetworkStats>,
	#[serde(default, rename = "volume", deserialize_with = "nullable")]
	volumes: Vec<VolumeStats>,
}

#[derive(Clone, Debug, Deserialize)]
struct PodRef {
	name: String,
	namespace: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerStats {
	name: String,
	#[serde(default)]
	start_time: Option<String>,
	#[serde(default)]
	cpu: Option<CpuStats>,
	#[serde(default)]
	memory: Option<MemoryStats>,
	#[serde(default)]
	rootfs: Option<FsStats>,
	#[serde(default)]
	logs: Option<FsStats>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CpuStats {
	#[serde(default)]
	time: Option<String>,
	#[serde(default)]
	usage_core_nano_seconds: Option<u64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MemoryStats {
	#[serde(default)]
	working_set_bytes: Option<u64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FsStats {
	#[serde(default)]
	used_bytes: Option<u64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NetworkStats {
	#[serde(default)]
	time: Option<String>,
	/// The default interface's, inlined.
	#[serde(default)]
	tx_bytes: Option<u64>,
	/// Every interface, the default one included.
	#[serde(default, deserialize_with = "nullable")]
	interfaces: Vec<InterfaceStats>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InterfaceStats {
	#[serde(default)]
	tx_bytes: Option<u64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VolumeStats {
	#[serde(default)]
	used_bytes: Option<u64>,
	#[serde(default)]
	pvc_ref: Option<PodRef>,
}

/// Go writes an empty slice as `null`.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
	D: Deserializer<'de>,
	T: Default + Deserialize<'de>,
{
	Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Milliseconds since the epoch of an RFC 3339 time.
fn millis(text: &str) -> Option<u64> {
	let timestamp: Timestamp = text.parse().ok()?;
	u64::try_from(timestamp.as_millisecond()).ok()
}

impl Summary {
	/// Parses a Summary response. A body of another shape is an error (a kubelet too old or a
	/// proxy's error page), never readings of 0.
	pub fn parse(body: &str) -> Result<Self, ClusterError> {
		serde_json::from_str(body)
			.map_err(|e| ClusterError::Other(format!("not a kubelet stats summary: {e}")))
	}

	/// The usage of the pods of `namespace` (one deal's), ignoring every other pod of the node.
	/// A reading of the deal's that does not parse fails the whole node: a reading left out
	/// silently would go unbilled unnoticed.
	pub fn usage(&self, namespace: &str) -> Result<NodeUsage, ClusterError> {
		let mut usage = NodeUsage::default();
		for pod in self.pods.iter().filter(|p| p.pod_ref.namespace == namespace) {
			let name = &pod.pod_ref.name;
			for container in &pod.containers {
				if let Some(sample) = container_sample(name, container)? {
					usage.samples.push(sample);
				}
			}
			if let Some(sample) = network_sample(name, pod.network.as_ref())? {
				usage.samples.push(sample);
			}
			for volume in &pod.volumes {
				let Some(claim) = volume.pvc_ref.as_ref().filter(|c| c.namespace == namespace)
				else {
					continue;
				};
				// A claim shared by pods reports the same filesystem on each: count it once.
				let used = usage.claims.entry(claim.name.clone()).or_default();
				*used = (*used).max(volume.used_bytes);
			}
		}
		usage.samples.sort_by(|a, b| a.0.cmp(&b.0));
		Ok(usage)
	}
}

/// The reading of one container, keyed `<pod>/<container>@<start>`; `None` before its CPU
/// counter is reported.
fn container_sample(
	pod: &str,
	container: &ContainerStats,
) -> Result<Option<(String, Sample)>, ClusterError> {
	let bad = |what: &str| {
		ClusterError::Other(format!("stats of container {pod}/{}: {what}", container.name))
	};
	let Some((Some(time), Some(cpu_nanos))) =
		container.cpu.as_ref().map(|c| (c.time.as_deref(), c.usage_core_nano_seconds))
	else {
		return Ok(None);
	};
	let at_millis = millis(time).ok_or_else(|| bad("bad cpu time"))?;
	// Without its start the key could not tell a restart: the counter would be misread.
	let start = container.start_time.as_deref().ok_or_else(|| bad("no startTime"))?;
	let start = millis(start).ok_or_else(|| bad("bad startTime"))?;
	let used = |fs: &Option<FsStats>| fs.as_ref().and_then(|f| f.used_bytes).unwrap_or(0);
	let sample = Sample {
		at_millis,
		cpu_nanos,
		memory_bytes: container.memory.as_ref().and_then(|m| m.working_set_bytes).unwrap_or(0),
		storage_bytes: used(&container.rootfs).saturating_add(used(&container.logs)),
		egress_bytes: 0,
	};
	Ok(Some((format!("{pod}/{}@{start}", container.name), sample)))
}

/// The reading of a pod's network, keyed `<pod>/<network>`; `None` if it reports no egress.
fn network_sample(
	pod: &str,
	network: Option<&NetworkStats>,
) -> Result<Option<(String, Sample)>, ClusterError> {
	let Some(network) = network else { return Ok(None) };
	let listed: Vec<u64> = network.interfaces.iter().filter_map(|i| i.tx_bytes).collect();
	let egress_bytes = if listed.is_empty() {
		network.tx_bytes
	} else {
		Some(listed.into_iter().fold(0u64, u64::saturating_add))
	};
	let (Some(egress_bytes), Some(time)) = (egress_bytes, network.time.as_deref()) else {
		return Ok(None);
	};
	let at_millis = millis(time)
		.ok_or_else(|| ClusterError::Other(format!("network stats of pod {pod}: bad time")))?;
	let sample = Sample { at_millis, egress_bytes, ..Sample::default() };
	Ok(Some((format!("{pod}/{NETWORK}"), sample)))
}

#[cfg(test)]
mod tests {
	use super::*;

	const NODE_A: [&str; 4] = [
		include_str!("tests/summary/node-a-0.json"),
		include_str!("tests/summary/node-a-1.json"),
		include_str!("tests/summary/node-a-2.json"),
		include_str!("tests/summary/node-a-3.json"),
	];
	const DEAL: &str = "podchain-deal-7";
	const POD: &str = "app-7d4b9c8f6d-x2k4p";

	fn usage(body: &str) -> NodeUsage {
		Summary::parse(body).expect("parses").usage(DEAL).expect("the deal's usage")
	}

	fn keys(usage: &NodeUsage) -> Vec<&str> {
		usage.samples.iter().map(|(k, _)| k.as_str()).collect()
	}

	#[test]
	fn reads_the_deals_containers_network_and_claims_only() {
		let usage = usage(NODE_A[0]);
		// The node also runs deal 8's pod and a system pod: neither is read.
		assert_eq!(
			keys(&usage),
			[
				"app-7d4b9c8f6d-x2k4p/<network>",
				"app-7d4b9c8f6d-x2k4p/httpd@1714554000000",
				"app-7d4b9c8f6d-x2k4p/side@1714554000000",
			]
		);
		let httpd = usage.samples[1].1;
		assert_eq!(
			httpd,
			Sample {
				at_millis: 1_714_557_600_000,
				cpu_nanos: 120_000_000_000,
				memory_bytes: 50 << 20,
				storage_bytes: 4096 + 8192,
				egress_bytes: 0,
			}
		);
		// eth0 and net1: both interfaces' egress, not the default one's alone.
		let network = usage.samples[0].1;
		assert_eq!(
			network,
			Sample {
				at_millis: 1_714_557_600_000,
				egress_bytes: 1_000_000 + 24_000,
				..Default::default()
			}
		);
		assert_eq!(usage.claims, BTreeMap::from([("vol-data".to_owned(), Some(100 << 20))]));
		let other = Summary::parse(NODE_A[0]).expect("parses").usage("podchain-deal-8").expect("8");
		assert!(keys(&other).iter().all(|k| k.starts_with("app-5f6c7b9d44-qq8zn/")), "{other:?}");
		assert_eq!(other.claims, BTreeMap::from([("vol-db".to_owned(), Some(7 << 30))]));
	}

	#[test]
	fn a_restarted_container_is_a_new_key_and_the_pods_network_is_not() {
		let before = usage(NODE_A[1]);
		let after = usage(NODE_A[2]);
		assert_eq!(
			keys(&before),
			[
				format!("{POD}/<network>"),
				format!("{POD}/httpd@1714554000000"),
				format!("{POD}/side@1714554000000"),
			]
		);
		// httpd restarted at 10:00:15 and side at 10:00:12: new keys. The pod's sandbox, and
		// its network counters, stayed.
		assert_eq!(
			keys(&after),
			[
				format!("{POD}/<network>"),
				format!("{POD}/httpd@1714557615000"),
				format!("{POD}/side@1714557612000"),
			]
		);
		assert!(after.samples[0].1.egress_bytes > before.samples[0].1.egress_bytes);
		assert!(after.samples[1].1.cpu_nanos < before.samples[1].1.cpu_nanos);
		// side's new counter already passed the old one's: only its new key shows the restart.
		assert!(after.samples[2].1.cpu_nanos > before.samples[2].1.cpu_nanos);
	}

	#[test]
	fn egress_falls_back_to_the_default_interface_and_unread_counters_are_left_out() {
		let body = r#"{"node": {"nodeName": "n"}, "pods": [{
			"podRef": {"name": "p", "namespace": "ns", "uid": "u"},
			"startTime": "2024-05-01T09:00:00Z",
			"containers": [
				{"name": "new", "startTime": "2024-05-01T10:00:00Z",
				 "memory": {"time": "2024-05-01T10:00:00Z", "workingSetBytes": 1}},
				{"name": "old", "startTime": "2024-05-01T09:00:00Z",
				 "cpu": {"time": "2024-05-01T10:00:00Z", "usageCoreNanoSeconds": 5}}
			],
			"network": {"time": "2024-05-01T10:00:00Z", "name": "eth0", "rxBytes": 9, "txBytes": 77},
			"volume": [{"name": "tmp", "usedBytes": 5}, {"name": "data", "pvcRef": {"name": "c", "namespace": "ns"}}]
		}]}"#;
		let usage = Summary::parse(body).expect("parses").usage("ns").expect("usage");
		assert_eq!(keys(&usage), ["p/<network>", "p/old@1714554000000"]);
		assert_eq!(usage.samples[0].1.egress_bytes, 77);
		assert_eq!(
			usage.samples[1].1,
			Sample { at_millis: 1_714_557_600_000, cpu_nanos: 5, ..Default::default() }
		);
		// A volume without a claim is not storage of the deal's claims; a claim without
		// usedBytes is known, its usage is not.
		assert_eq!(usage.claims, BTreeMap::from([("c".to_owned(), None)]));
	}

	#[test]
	fn empty_lists_written_as_null_are_empty() {
		let body = r#"{"node": {"nodeName": "n"}, "pods": [{"podRef": {"name": "p", "namespace": "ns"},
			"containers": null, "network": {"time": "2024-05-01T10:00:00Z", "interfaces": null}}]}"#;
		assert_eq!(
			Summary::parse(body).expect("parses").usage("ns").expect("usage"),
			NodeUsage::default()
		);
		let none = Summary::parse(r#"{"node": {}, "pods": null}"#).expect("parses");
		assert_eq!(none.usage("ns").expect("usage"), NodeUsage::default());
	}

	#[test]
	fn malformed_summaries_are_errors() {
		for body in [
			"",
			"<html>502 Bad Gateway</html>",
			r#"{"pods": {}}"#,
			r#"{"pods": [{"containers": []}]}"#,
			r#"{"pods": [{"podRef": {"name": "p", "namespace": "x"}, "containers": [{"name": "c", "cpu": {"usageCoreNanoSeconds": -1}}]}]}"#,
		] {
			assert!(matches!(Summary::parse(body), Err(ClusterError::Other(_))), "{body}");
		}
		// The deal's readings must make sense; another tenant's are not looked at.
		let bad_time = r#"{"pods": [{"podRef": {"name": "p", "namespace": "ns"}, "containers": [
			{"name": "c", "startTime": "2024-05-01T09:00:00Z", "cpu": {"time": "yesterday", "usageCoreNanoSeconds": 1}}]}]}"#;
		let no_start = r#"{"pods": [{"podRef": {"name": "p", "namespace": "ns"}, "containers": [
			{"name": "c", "cpu": {"time": "2024-05-01T09:00:00Z", "usageCoreNanoSeconds": 1}}]}]}"#;
		for (body, error) in [(bad_time, "bad cpu time"), (no_start, "no startTime")] {
			let summary = Summary::parse(body).expect("parses");
			let err = summary.usage("ns").expect_err("malformed").to_string();
			assert!(err.contains("p/c") && err.contains(error), "{err}");
			assert_eq!(summary.usage("other").expect("not read"), NodeUsage::default());
		}
	}
}
