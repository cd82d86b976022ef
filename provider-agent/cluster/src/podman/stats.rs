//! Usage readings from podman's one-shot stats and disk usage.
//!
//! - CPU: `CPUNano`, cumulative ns (cgroup `cpuacct.usage`). It restarts from 0 when the
//!   container restarts; the agent's meter reads a drop as a restart.
//! - Memory: `MemUsage`, a gauge (page cache included).
//! - Storage: each running container's own layer (`RWSize` of `system/df`), and the deal's
//!   volumes as a source of their own ([`VOLUMES_SOURCE`], as on Kubernetes): volumes are shared
//!   by the deal's containers, and they are kept (and billed) while a deal that scales to zero
//!   is stopped.
//! - Egress: the bytes the pod's network namespace sent (on the deal's own network, see
//!   `network.rs`), read from the namespace's own `/proc/<pid>/net/dev` through its infra
//!   container's process: the transmit bytes of every interface but `lo`. Not podman's
//!   `NetOutput`: podman 4.3 reads the host's end of the veth, where the pod's sent bytes are
//!   *received* bytes (its `NetInput`), a swap later versions fix; the namespace's own count
//!   means the same on every version. Every container of a pod shares that namespace, so it
//!   is read once per pod, as a source of its own (`<pod>/<network>`): summing the containers
//!   would count it once per container, and pinning it to one app container would move it (and
//!   count it again) when that container is gone. It restarts from 0 with the pod.
//! - Time: `SystemNano`, the wall clock of the reading.

use std::collections::BTreeMap;

use super::model::{Container, ContainerStats, DiskUsage, Pod};
use crate::{kube::VOLUMES_SOURCE, Sample};

/// The source name of a pod's network counters.
pub(crate) fn network_source(pod: &str) -> String {
	format!("{pod}/<network>")
}

/// The `pods` whose network is read: those with an infra container and running app
/// `containers`.
pub(crate) fn serving_pods<'a>(pods: &'a [Pod], containers: &[Container]) -> Vec<&'a Pod> {
	pods.iter()
		.filter(|pod| !pod.infra_id.is_empty())
		.filter(|pod| containers.iter().any(|c| c.pod_name == pod.name))
		.collect()
}

/// The bytes sent by a network namespace, from its `/proc/<pid>/net/dev`: the transmit bytes
/// of every interface but the loopback. `None` if the text is not that file's.
pub(crate) fn sent_bytes(net_dev: &str) -> Option<u64> {
	let mut total = 0u64;
	let mut interfaces = 0;
	// Two header lines, then `<name>: <8 receive counters> <8 transmit counters>`.
	for line in net_dev.lines().skip(2) {
		let (name, counters) = line.split_once(':')?;
		let counters: Vec<u64> =
			counters.split_whitespace().map(str::parse).collect::<Result<_, _>>().ok()?;
		let transmitted = *counters.get(8)?;
		interfaces += 1;
		if name.trim() != "lo" {
			total = total.saturating_add(transmitted);
		}
	}
	(interfaces > 0).then_some(total)
}

/// A size podman reports (`-1` when unknown) in bytes.
fn bytes(size: i64) -> u64 {
	u64::try_from(size).unwrap_or(0)
}

/// Each container's own layer in bytes, by container id.
pub(crate) fn layers(df: &DiskUsage) -> BTreeMap<String, u64> {
	df.containers.iter().map(|c| (c.container_id.clone(), bytes(c.rw_size))).collect()
}

/// The deal's volumes (names starting with `volume_prefix`) as one reading at `at_millis`.
pub(crate) fn volumes_sample(
	df: &DiskUsage,
	volume_prefix: &str,
	at_millis: u64,
) -> (String, Sample) {
	let volumes = df
		.volumes
		.iter()
		.filter(|v| v.volume_name.starts_with(volume_prefix))
		.fold(0u64, |sum, v| sum.saturating_add(bytes(v.size)));
	(VOLUMES_SOURCE.to_owned(), Sample { at_millis, storage_bytes: volumes, ..Sample::default() })
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
				// Counted once per pod, by `network_samples`.
				egress_bytes: 0,
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
	fn egress_is_read_once_per_pod_and_never_from_container_stats() {
		let pod = |name: &str, infra: &str| Pod {
			name: name.to_owned(),
			infra_id: infra.to_owned(),
			..Default::default()
		};
		let pods = [pod("p0", "i0"), pod("p1", "i1"), pod("idle", "i2")];
		let containers = [
			container("a", "p0", "web"),
			container("b", "p0", "sidecar"),
			container("c", "p1", "web"),
		];
		let serving = serving_pods(&pods, &containers);
		assert_eq!(serving.iter().map(|p| p.infra_id.as_str()).collect::<Vec<_>>(), ["i0", "i1"]);
		let stat = |id: &str, out: u64| ContainerStats {
			container_id: id.to_owned(),
			system_nano: 5_000_000_000,
			net_output: out,
			..Default::default()
		};
		let stats = [stat("a", 700), stat("b", 700), stat("c", 90)];
		let by_container = samples(&containers, &stats, &BTreeMap::new());
		assert!(by_container.iter().all(|(_, s)| s.egress_bytes == 0), "{by_container:?}");
	}

	/// A pod's `/proc/<pid>/net/dev` after a 2 MB download through the gateway, on this
	/// machine; podman 4.3's stats said `NetInput` 4009294, `NetOutput` 9696 for it.
	const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     512       4    0    0    0     0          0         0      512       4    0    0    0     0       0          0
  eth0:    9696     135    0    0    0     0          0         0  4009294     131    0    0    0     0       0          0
";

	#[test]
	fn sent_bytes_are_the_namespaces_transmit_bytes_but_loopback() {
		assert_eq!(sent_bytes(NET_DEV), Some(4_009_294));
		assert_eq!(sent_bytes("not /proc/net/dev"), None);
		assert_eq!(sent_bytes(""), None);
		assert_eq!(sent_bytes(&NET_DEV.replace("4009294", "x")), None);
	}

	#[test]
	fn volumes_are_one_source_of_the_deals_volumes_only() {
		let df: DiskUsage = serde_json::from_str(
			r#"{"Containers":[{"ContainerID":"a","RWSize":10},{"ContainerID":"b","RWSize":-1}],
			"Volumes":[{"VolumeName":"d7-data","Size":1000},{"VolumeName":"d7-tmp","Size":24},
			{"VolumeName":"d70-data","Size":5000},{"VolumeName":"other","Size":7}]}"#,
		)
		.expect("parses");
		let layers = layers(&df);
		assert_eq!((layers["a"], layers["b"]), (10, 0));
		let (source, sample) = volumes_sample(&df, "d7-", 42);
		assert_eq!(source, VOLUMES_SOURCE);
		assert_eq!(sample, Sample { at_millis: 42, storage_bytes: 1024, ..Sample::default() });
	}
}
