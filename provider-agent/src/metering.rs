//! Turning samples of a deal's containers into billable usage.
//!
//! A backend samples cumulative counters (CPU time, egress bytes) and current levels (memory,
//! storage). [`Meter`] integrates them over time in fine units (nanoseconds of CPU,
//! byte-milliseconds) so nothing is lost to rounding; [`Meter::take`] hands out whole billing
//! units and keeps the remainders for the next report.
//!
//! GPUs are billed as allocated, not as used: a deal's pods hold their devices whether they
//! compute or not, so [`Meter::hold_gpus`] integrates the GPUs the deal holds (its reserved
//! GPUs while its pods run, none while they do not) over time.

pub use podchain_cluster::Sample;
use serde::{Deserialize, Serialize};

/// Bytes in a MiB.
const MIB: u128 = 1 << 20;
/// Bytes in a GiB.
const GIB: u128 = 1 << 30;
/// Nanoseconds of CPU time in a millicore-second.
const NANOS_PER_MILLICORE_SECOND: u128 = 1_000_000;
/// Sources (containers) a meter remembers the last sample of; a deal has at most 16
/// containers in each of at most 100 replicas, plus pods being replaced.
const MAX_SOURCES: usize = 2048;
/// Milliseconds in a second.
const MILLIS_PER_SECOND: u128 = 1_000;

/// Usage in the chain's billing units (what a usage report carries).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
	/// CPU millicore-seconds.
	pub cpu_millicore_seconds: u64,
	/// Memory MiB-seconds.
	pub memory_mib_seconds: u64,
	/// Storage GiB-seconds.
	pub storage_gib_seconds: u64,
	/// GPU-seconds (GPUs held, not used). Absent from what an older agent stored: none.
	#[serde(default)]
	pub gpu_seconds: u64,
	/// Egress bytes.
	pub egress_bytes: u64,
}

/// The integral of one deal's samples since its last report, in fine units.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meter {
	/// CPU nanoseconds.
	cpu_nanos: u128,
	/// Memory byte-milliseconds.
	memory_byte_millis: u128,
	/// Storage byte-milliseconds.
	storage_byte_millis: u128,
	/// Egress bytes.
	egress_bytes: u128,
	/// The last sample of each source (container), to difference the next against.
	last: Vec<(String, Sample)>,
	/// GPU-milliseconds held.
	#[serde(default)]
	gpu_millis: u128,
	/// When GPUs were last accounted for, and how many the deal held then.
	#[serde(default)]
	gpus_held: Option<(u64, u32)>,
}

impl Meter {
	/// Adds the stretch between `source`'s previous sample and `sample`. A new source's
	/// counters count from its start (the CPU it used before the first sample is usage too);
	/// its levels need a second sample to span any time. A counter that went down means the
	/// container restarted: its new value is all new usage.
	pub fn record(&mut self, source: &str, sample: Sample) {
		let Some(slot) = self.last.iter_mut().find(|(s, _)| s == source) else {
			self.cpu_nanos += u128::from(sample.cpu_nanos);
			self.egress_bytes += u128::from(sample.egress_bytes);
			self.last.push((source.to_owned(), sample));
			// Replaced pods leave sources behind: forget the stalest beyond the bound. A source
			// missing from one sample keeps its baseline (forgetting it would count its whole
			// counter again when it is back).
			if self.last.len() > MAX_SOURCES {
				if let Some(stalest) = self
					.last
					.iter()
					.enumerate()
					.min_by_key(|(_, (_, s))| s.at_millis)
					.map(|(i, _)| i)
				{
					self.last.remove(stalest);
				}
			}
			return;
		};
		let previous = slot.1;
		if sample.at_millis <= previous.at_millis {
			return; // Out of order or repeated: nothing elapsed.
		}
		let elapsed = u128::from(sample.at_millis - previous.at_millis);
		let grown = |now: u64, before: u64| u128::from(now.checked_sub(before).unwrap_or(now));
		// Levels are integrated with the trapezoid rule: the mean of both ends over the stretch.
		let level = |a: u64, b: u64| (u128::from(a) + u128::from(b)) * elapsed / 2;
		self.cpu_nanos += grown(sample.cpu_nanos, previous.cpu_nanos);
		self.egress_bytes += grown(sample.egress_bytes, previous.egress_bytes);
		self.memory_byte_millis += level(previous.memory_bytes, sample.memory_bytes);
		self.storage_byte_millis += level(previous.storage_bytes, sample.storage_bytes);
		slot.1 = sample;
	}

	/// Adds the GPUs held since the previous call: `gpus` is how many the deal holds at
	/// `at_millis`. Held GPUs are a level, integrated like memory; the first call only sets
	/// where to count from, and a call no later than the previous one adds nothing.
	pub fn hold_gpus(&mut self, at_millis: u64, gpus: u32) {
		if let Some((before, held)) = self.gpus_held {
			if at_millis <= before {
				return;
			}
			let elapsed = u128::from(at_millis - before);
			self.gpu_millis += (u128::from(held) + u128::from(gpus)) * elapsed / 2;
		}
		self.gpus_held = Some((at_millis, gpus));
	}

	/// Forgets a source that is gone (a container removed), keeping what it used.
	pub fn forget(&mut self, source: &str) {
		self.last.retain(|(s, _)| s != source);
	}

	/// The whole billing units accumulated so far, not yet taken.
	pub fn pending(&self) -> Usage {
		let clamp = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
		Usage {
			cpu_millicore_seconds: clamp(self.cpu_nanos / NANOS_PER_MILLICORE_SECOND),
			memory_mib_seconds: clamp(self.memory_byte_millis / (MIB * MILLIS_PER_SECOND)),
			storage_gib_seconds: clamp(self.storage_byte_millis / (GIB * MILLIS_PER_SECOND)),
			gpu_seconds: clamp(self.gpu_millis / MILLIS_PER_SECOND),
			egress_bytes: clamp(self.egress_bytes),
		}
	}

	/// Removes `usage` (at most what is pending) from the integral, as billed. Remainders below
	/// one unit stay for the next report.
	pub fn take(&mut self, usage: &Usage) {
		let pending = self.pending();
		let take = |field: &mut u128, units: u64, pending: u64, unit: u128| {
			*field -= u128::from(units.min(pending)) * unit;
		};
		take(
			&mut self.cpu_nanos,
			usage.cpu_millicore_seconds,
			pending.cpu_millicore_seconds,
			NANOS_PER_MILLICORE_SECOND,
		);
		take(
			&mut self.memory_byte_millis,
			usage.memory_mib_seconds,
			pending.memory_mib_seconds,
			MIB * MILLIS_PER_SECOND,
		);
		take(
			&mut self.storage_byte_millis,
			usage.storage_gib_seconds,
			pending.storage_gib_seconds,
			GIB * MILLIS_PER_SECOND,
		);
		take(&mut self.gpu_millis, usage.gpu_seconds, pending.gpu_seconds, MILLIS_PER_SECOND);
		take(&mut self.egress_bytes, usage.egress_bytes, pending.egress_bytes, 1);
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	fn sample(at_secs: u64, cpu_secs: f64, memory_mib: u64, egress: u64) -> Sample {
		Sample {
			at_millis: at_secs * 1000,
			cpu_nanos: (cpu_secs * 1e9) as u64,
			memory_bytes: memory_mib << 20,
			storage_bytes: 2 << 30,
			egress_bytes: egress,
		}
	}

	#[test]
	fn half_a_core_for_ten_seconds_is_5000_millicore_seconds() {
		let mut meter = Meter::default();
		meter.record("web", sample(100, 1.0, 64, 0));
		meter.record("web", sample(105, 3.5, 64, 1_000));
		meter.record("web", sample(110, 6.0, 64, 3_000));
		let usage = meter.pending();
		// 5 s of CPU over the 10 s, plus the 1 s used before the first sample.
		assert_eq!(usage.cpu_millicore_seconds, 6_000);
		assert_eq!(usage.memory_mib_seconds, 640);
		assert_eq!(usage.storage_gib_seconds, 20);
		assert_eq!(usage.egress_bytes, 3_000);
	}

	#[test]
	fn levels_integrate_as_trapezoids() {
		let mut meter = Meter::default();
		meter.record("web", sample(0, 0.0, 0, 0));
		meter.record("web", sample(10, 0.0, 100, 0));
		// Memory rose linearly from 0 to 100 MiB over 10 s: 500 MiB-seconds.
		assert_eq!(meter.pending().memory_mib_seconds, 500);
	}

	#[test]
	fn a_restarted_container_counts_from_zero() {
		let mut meter = Meter::default();
		meter.record("web", sample(0, 10.0, 1, 5_000));
		meter.record("web", sample(5, 12.0, 1, 6_000));
		// Restart: counters fell to small values.
		meter.record("web", sample(10, 1.0, 1, 100));
		assert_eq!(meter.pending().cpu_millicore_seconds, 13_000);
		assert_eq!(meter.pending().egress_bytes, 6_100);
	}

	#[test]
	fn sources_add_up_and_stale_samples_are_ignored() {
		let mut meter = Meter::default();
		for source in ["a", "b"] {
			meter.record(source, sample(0, 0.0, 10, 0));
			meter.record(source, sample(4, 1.0, 10, 0));
		}
		meter.record("a", sample(4, 9.0, 10, 0));
		meter.record("a", sample(3, 9.0, 10, 0));
		assert_eq!(meter.pending().cpu_millicore_seconds, 2_000, "repeats add nothing");
		assert_eq!(meter.pending().memory_mib_seconds, 80);
	}

	#[test]
	fn taking_keeps_remainders_and_never_goes_negative() {
		let mut meter = Meter::default();
		meter.record("web", sample(0, 0.0, 1, 0));
		meter.record("web", sample(1, 0.0015, 1, 7)); // 1.5 millicore-seconds
		let billed = meter.pending();
		assert_eq!(billed.cpu_millicore_seconds, 1);
		meter.take(&billed);
		assert_eq!(meter.pending(), Usage::default());
		meter.record("web", sample(2, 0.003, 1, 7)); // another 1.5
		assert_eq!(meter.pending().cpu_millicore_seconds, 2, "the earlier half is kept");
		// Taking more than pending (a report capped differently) takes only what is there.
		meter.take(&Usage { cpu_millicore_seconds: 99, ..Default::default() });
		assert_eq!(meter.pending().cpu_millicore_seconds, 0);
	}

	#[test]
	fn gpus_are_billed_as_held_over_time() {
		let mut meter = Meter::default();
		meter.hold_gpus(10_000, 2);
		assert_eq!(meter.pending().gpu_seconds, 0, "one reading spans no time");
		meter.hold_gpus(16_000, 2);
		assert_eq!(meter.pending().gpu_seconds, 12, "2 GPUs for 6 s");
		// Repeated or out of order: nothing elapsed.
		meter.hold_gpus(16_000, 2);
		meter.hold_gpus(12_000, 2);
		assert_eq!(meter.pending().gpu_seconds, 12);
		// The pods stopped somewhere in the next 4 s (2 GPU-seconds on average), then stay
		// stopped: nothing more, however long.
		meter.hold_gpus(20_000, 0);
		meter.hold_gpus(3_620_000, 0);
		assert_eq!(meter.pending().gpu_seconds, 16);
		meter.take(&Usage { gpu_seconds: 16, ..Default::default() });
		assert_eq!(meter.pending(), Usage::default());
		// A deal without GPUs holds none.
		let mut none = Meter::default();
		none.hold_gpus(0, 0);
		none.hold_gpus(60_000, 0);
		assert_eq!(none.pending().gpu_seconds, 0);
	}

	#[test]
	fn a_meter_stored_before_gpus_were_billed_still_loads() {
		let mut meter = Meter::default();
		meter.record("web", sample(0, 1.0, 1, 0));
		let mut stored: serde_json::Value = serde_json::to_value(&meter).expect("json");
		let fields = stored.as_object_mut().expect("object");
		fields.remove("gpu_millis");
		fields.remove("gpus_held");
		let loaded: Meter = serde_json::from_value(stored).expect("loads");
		assert_eq!(loaded, meter);
		let usage: Usage = serde_json::from_str(
			r#"{"cpu_millicore_seconds":1,"memory_mib_seconds":2,"storage_gib_seconds":3,"egress_bytes":4}"#,
		)
		.expect("an older usage loads");
		assert_eq!(usage.gpu_seconds, 0);
	}

	/// Recorded kubelet Summary API responses of one node, 10 s apart: deal 7's pod has
	/// containers httpd and side; between the second and the third, both restart (side's new
	/// counter already past its old one), the pod and its network stay. Deal 8's pod and a
	/// system pod run on the same node.
	const SUMMARIES: [&str; 4] = [
		include_str!("../cluster/src/kube/tests/summary/node-a-0.json"),
		include_str!("../cluster/src/kube/tests/summary/node-a-1.json"),
		include_str!("../cluster/src/kube/tests/summary/node-a-2.json"),
		include_str!("../cluster/src/kube/tests/summary/node-a-3.json"),
	];

	fn samples_of(summary: &str) -> Vec<(String, Sample)> {
		let summary = podchain_cluster::kube::Summary::parse(summary).expect("a summary");
		summary.usage("podchain-deal-7").expect("deal 7's usage").samples
	}

	#[test]
	fn restarted_kubernetes_containers_are_neither_lost_nor_doubled() {
		let mut meter = Meter::default();
		for summary in SUMMARIES {
			for (source, sample) in samples_of(summary) {
				meter.record(&source, sample);
			}
		}
		let usage = meter.pending();
		// CPU: each container's counter up to its last reading, for each of its lives: httpd
		// 125 s then 3 s, side 2.1 s then 4.3 s (what a container used between its last reading
		// and its restart is gone with its counter).
		assert_eq!(usage.cpu_millicore_seconds, 125_000 + 3_000 + 2_100 + 4_300);
		// Memory over the stretches each life was read twice: httpd 50 to 52 MiB then 30 to
		// 40 MiB, side 10 then 12 MiB, 10 s each.
		assert_eq!(usage.memory_mib_seconds, 510 + 350 + 100 + 120);
		// Egress: the pod's counter (eth0 and net1), never reset, counted once.
		assert_eq!(usage.egress_bytes, 2_000_000 + 24_000);

		// The keys matter. With the pod's egress on its first container (as podman's stats
		// have it) and containers keyed by `<pod>/<container>` alone, side's restart goes unseen
		// (its counter grew) and 2.1 s are lost; keyed by their start, httpd's restart counts
		// the pod's egress again, all that its first life had counted (1.5 MB + 24 kB).
		let by_name = moved_egress(|source| source.split('@').next().unwrap_or_default().into());
		assert_eq!(usage.cpu_millicore_seconds - by_name.cpu_millicore_seconds, 2_100);
		let by_start = moved_egress(str::to_owned);
		assert_eq!(by_start.cpu_millicore_seconds, usage.cpu_millicore_seconds);
		assert_eq!(by_start.egress_bytes, usage.egress_bytes + 1_500_000 + 24_000);
	}

	/// The usage of [`SUMMARIES`] with each pod's egress moved onto its first container and the
	/// containers keyed by `key`.
	fn moved_egress(key: fn(&str) -> String) -> Usage {
		let mut meter = Meter::default();
		for summary in SUMMARIES {
			let (network, mut containers): (Vec<_>, Vec<_>) = samples_of(summary)
				.into_iter()
				.partition(|(source, _)| source.ends_with(podchain_cluster::kube::NETWORK));
			containers[0].1.egress_bytes = network[0].1.egress_bytes;
			for (source, sample) in containers {
				meter.record(&key(&source), sample);
			}
		}
		meter.pending()
	}
}
