//! Usage readings from podman's one-shot stats and disk usage.
//!
//! - CPU: `CPUNano`, cumulative ns (cgroup `cpuacct.usage`). It restarts from 0 when the
//!   container restarts; the agent's meter reads a drop as a restart.
//! - Memory: `MemUsage`, a gauge (page cache included).
//! - Storage: the container's own layer (`RWSize` of `system/df`), plus, on the deal's first
//!   container only, the deal's volumes: volumes are shared by the deal's containers and the
//!   meter sums containers, so counting them once keeps the sum right.
//! - Egress: `NetOutput`, which is always 0 with host networking (no network namespace of its
//!   own, so no counters); per-deal egress on podman needs another mechanism.
//! - Time: `SystemNano`, the wall clock of the reading.

use std::collections::BTreeMap;

use super::model::{Container, ContainerStats, DiskUsage};
use crate::Sample;

/// Storage in bytes by container id: each container's own layer, plus, on `first`, the volumes
/// whose names start with `volume_prefix` (the deal's).
pub(crate) fn storage(df: &DiskUsage, volume_prefix: &str, first: &str) -> BTreeMap<String, u64> {
	let bytes = |size: i64| u64::try_from(size).unwrap_or(0);
	let mut by_container: BTreeMap<String, u64> =
		df.containers.iter().map(|c| (c.container_id.clone(), bytes(c.rw_size))).collect();
	let volumes: u64 = df
		.volumes
		.iter()
		.filter(|v| v.volume_name.starts_with(volume_prefix))
		.fold(0, |sum, v| sum.saturating_add(bytes(v.size)));
	let slot = by_container.entry(first.to_owned()).or_default();
	*slot = slot.saturating_add(volumes);
	by_container
}

/// The deal's readings, keyed `<pod>/<container>`, from its `containers` and their `stats`.
pub(crate) fn samples(
	containers: &[Container],
	stats: &[ContainerStats],
	storage: &BTreeMap<String, u64>,
) -> Vec<(String, Sample)> {
	let mut samples: Vec<(String, Sample)> = stats
		.iter()
		.filter_map(|s| {
			let container = containers.iter().find(|c| c.id == s.container_id)?;
			let sample = Sample {
				at_millis: s.system_nano / 1_000_000,
				cpu_nanos: s.cpu_nano,
				memory_bytes: s.mem_usage,
				storage_bytes: storage.get(&container.id).copied().unwrap_or(0),
				egress_bytes: s.net_output,
			};
			Some((container.key(), sample))
		})
		.collect();
	samples.sort_by(|a, b| a.0.cmp(&b.0));
	samples
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::podman::model::StatsReport;

	/// The shape podman 4.3.1 answered on this machine (see docs/notes/podman-4.3-api.md).
	const STATS: &str = r#"{"Error":null,"Stats":[{"AvgCPU":50.27,"ContainerID":"d60d","Name":"burn-pod-0-cpu",
 "PerCPU":[1156778237,1339290394],"CPU":50.27,"CPUNano":2496068631,"CPUSystemNano":135945961,
 "SystemNano":1795250160445290069,"MemUsage":20348928,"MemLimit":134217728,"MemPerc":15.16,
 "NetInput":0,"NetOutput":0,"BlockInput":0,"BlockOutput":0,"PIDs":1,
 "UpTime":2496068631,"Duration":2496068631}]}"#;

	fn container(id: &str, pod: &str, name: &str) -> Container {
		Container {
			id: id.to_owned(),
			names: vec![format!("{pod}-{name}")],
			pod_name: pod.to_owned(),
			state: "running".to_owned(),
			..Default::default()
		}
	}

	#[test]
	fn readings_from_real_stats() {
		let report: StatsReport = serde_json::from_str(STATS).expect("parses");
		assert!(report.error.is_none());
		let containers = [container("d60d", "burn-pod-0", "cpu")];
		let storage = BTreeMap::from([("d60d".to_owned(), 4096)]);
		let samples = samples(&containers, &report.stats, &storage);
		assert_eq!(
			samples,
			vec![(
				"burn-pod-0/cpu".to_owned(),
				Sample {
					at_millis: 1_795_250_160_445,
					cpu_nanos: 2_496_068_631,
					memory_bytes: 20_348_928,
					storage_bytes: 4096,
					egress_bytes: 0,
				}
			)]
		);
	}

	#[test]
	fn an_unknown_container_empties_the_batch() {
		// podman 4.3.1 answers 200 with an empty error object and no stats at all.
		let report: StatsReport =
			serde_json::from_str(r#"{"Error":{},"Stats":null}"#).expect("parses");
		assert!(report.error.is_some());
		assert!(report.stats.is_empty());
	}

	#[test]
	fn stats_of_containers_not_listed_are_dropped() {
		let report: StatsReport = serde_json::from_str(STATS).expect("parses");
		let samples = samples(&[container("other", "p", "c")], &report.stats, &BTreeMap::new());
		assert!(samples.is_empty());
	}

	#[test]
	fn volumes_count_once_on_the_first_container() {
		let df: DiskUsage = serde_json::from_str(
			r#"{"Containers":[{"ContainerID":"a","RWSize":10},{"ContainerID":"b","RWSize":-1}],
			"Volumes":[{"VolumeName":"d7-data","Size":1000},{"VolumeName":"d7-tmp","Size":24},
			{"VolumeName":"d70-data","Size":5000},{"VolumeName":"other","Size":7}]}"#,
		)
		.expect("parses");
		let storage = storage(&df, "d7-", "a");
		assert_eq!(storage["a"], 1034);
		assert_eq!(storage["b"], 0);
	}
}
