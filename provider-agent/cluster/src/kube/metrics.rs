//! Usage samples from the metrics API, and the integrator that turns its CPU rates into the
//! cumulative CPU time a [`Sample`] carries.
//!
//! The metrics API (`metrics.k8s.io/v1beta1` PodMetrics) reports, per container, the CPU rate
//! averaged over a `window` ending at `timestamp`, and the memory working set at `timestamp`.
//! [`CpuCounters`] keeps, per container, a CPU time counter: the first reading adds
//! `rate × window`; each later one adds `rate × (timestamp − previous timestamp)`, the rate of
//! the newest window standing for the whole stretch since the last reading. A reading of the
//! same window again (the metrics API refreshes every 15 to 60 s; the agent may sample more
//! often) adds nothing, and its sample carries the same `at_millis`, which the agent's meter
//! also ignores. A pod replaced by a new one is a new source with a new counter.

use super::{apply::deal_selector, quantity, KubeBackend};
use crate::{
	objects::namespace_name, ClusterError, DealId, Metered, MeteringFailure, Sample, Sampled,
};
use ::kube::{
	api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams},
	ResourceExt,
};
use k8s_openapi::{api::core::v1::PersistentVolumeClaim, jiff::Timestamp};
use serde::Deserialize;
use std::{
	collections::{BTreeMap, HashMap},
	sync::Mutex,
	time::{SystemTime, UNIX_EPOCH},
};

/// The source under which [`Backend::sample`](crate::Backend::sample) reports a deal's
/// storage: the provisioned capacity of all its claims (volumes are shared by the pods, so they
/// belong to no container).
pub const VOLUMES_SOURCE: &str = "<volumes>";

/// A PodMetrics object's fields beside its metadata.
#[derive(Deserialize)]
struct PodMetrics {
	timestamp: String,
	/// Absent in some implementations: the first reading then counts no CPU time.
	#[serde(default)]
	window: Option<String>,
	#[serde(default)]
	containers: Vec<ContainerMetrics>,
}

#[derive(Deserialize)]
struct ContainerMetrics {
	name: String,
	#[serde(default)]
	usage: BTreeMap<String, String>,
}

/// The CPU time counter of one container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counter {
	/// `timestamp` of the last reading, in milliseconds since the epoch.
	at_millis: u64,
	/// CPU time so far, in nanoseconds.
	cpu_nanos: u64,
}

/// Cumulative CPU time per deal and container, integrated from the metrics API's rates.
#[derive(Debug, Default)]
pub(super) struct CpuCounters(Mutex<HashMap<DealId, HashMap<String, Counter>>>);

/// One container's reading, ready to integrate.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Reading {
	source: String,
	at_millis: u64,
	window_millis: u64,
	nanocores: u128,
	memory_bytes: u64,
}

impl CpuCounters {
	/// Integrates `readings` of `deal` and returns each one's cumulative CPU time. Containers
	/// not in `readings` are forgotten: their pods are gone.
	fn integrate(&self, deal: DealId, readings: &[Reading]) -> Vec<u64> {
		// A poisoned lock only means another sample panicked mid-update: the counters are
		// still plain numbers, so carry on with them.
		let mut deals = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
		let previous = deals.remove(&deal).unwrap_or_default();
		let mut next = HashMap::with_capacity(readings.len());
		let totals = readings
			.iter()
			.map(|r| {
				let counter = match previous.get(&r.source) {
					None => {
						Counter { at_millis: r.at_millis, cpu_nanos: cpu_nanos(r, r.window_millis) }
					}
					Some(c) if r.at_millis > c.at_millis => Counter {
						at_millis: r.at_millis,
						cpu_nanos: c
							.cpu_nanos
							.saturating_add(cpu_nanos(r, r.at_millis - c.at_millis)),
					},
					Some(c) => *c,
				};
				next.insert(r.source.clone(), counter);
				counter.cpu_nanos
			})
			.collect();
		if !next.is_empty() {
			deals.insert(deal, next);
		}
		totals
	}

	/// Drops `deal`'s counters.
	pub(super) fn forget(&self, deal: DealId) {
		self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&deal);
	}
}

/// CPU nanoseconds used at `reading`'s rate over `millis`.
fn cpu_nanos(reading: &Reading, millis: u64) -> u64 {
	let nanos = reading.nanocores.saturating_mul(u128::from(millis)) / 1000;
	u64::try_from(nanos).unwrap_or(u64::MAX)
}

fn millis_of(text: &str) -> Option<u64> {
	let timestamp: Timestamp = text.parse().ok()?;
	u64::try_from(timestamp.as_millisecond()).ok()
}

/// The readings of one PodMetrics object.
fn readings(pod: DynamicObject) -> Result<Vec<Reading>, ClusterError> {
	let name = pod.name_any();
	let bad = |what: &str| ClusterError::Other(format!("PodMetrics {name}: {what}"));
	let metrics: PodMetrics =
		serde_json::from_value(pod.data).map_err(|e| bad(&format!("unexpected shape: {e}")))?;
	let at_millis = millis_of(&metrics.timestamp).ok_or_else(|| bad("bad timestamp"))?;
	let window_millis = match metrics.window.as_deref() {
		None => 0,
		Some(window) => quantity::duration_nanos(window)
			.map(|n| u64::try_from(n / 1_000_000).unwrap_or(u64::MAX))
			.ok_or_else(|| bad("bad window"))?,
	};
	metrics
		.containers
		.into_iter()
		.map(|c| {
			let usage = |key: &str| c.usage.get(key).map(String::as_str).unwrap_or("0");
			Ok(Reading {
				source: format!("{name}/{}", c.name),
				at_millis,
				window_millis,
				nanocores: quantity::nanos(usage("cpu")).ok_or_else(|| bad("bad cpu"))?,
				memory_bytes: quantity::units(usage("memory")).ok_or_else(|| bad("bad memory"))?,
			})
		})
		.collect()
}

/// The API resource of PodMetrics.
fn pod_metrics() -> ApiResource {
	ApiResource::from_gvk_with_plural(
		&GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "PodMetrics"),
		"pods",
	)
}

/// A sample of each of the deal's containers (by `<pod>/<container>`, sorted), then its
/// storage under [`VOLUMES_SOURCE`] if it has claims. The two are read apart: storage is
/// metered even when the metrics API cannot be read.
pub(super) async fn sample(backend: &KubeBackend, deal: DealId) -> Sampled {
	let mut sampled = Sampled::default();
	match containers(backend, deal).await {
		Ok(samples) => sampled.samples = samples,
		Err(e) => sampled.failures.push(MeteringFailure::new(Metered::Containers, &e)),
	}
	match storage(backend, deal).await {
		Ok(Some(sample)) => sampled.samples.push((VOLUMES_SOURCE.to_owned(), sample)),
		Ok(None) => {}
		Err(e) => sampled.failures.push(MeteringFailure::new(Metered::Storage, &e)),
	}
	sampled
}

/// The containers' CPU and memory, from the metrics API.
async fn containers(
	backend: &KubeBackend,
	deal: DealId,
) -> Result<Vec<(String, Sample)>, ClusterError> {
	let namespace = namespace_name(deal);
	let api: Api<DynamicObject> =
		Api::namespaced_with(backend.client.clone(), &namespace, &pod_metrics());
	// Every pod of the namespace is the deal's: no selector, which metrics-server would only
	// apply to pods it has already scraped anyway.
	let what = "list pod metrics";
	let listed = match backend.timed(what, api.list(&ListParams::default())).await? {
		Ok(listed) => listed,
		// The API group is not served at all: nothing to wait for.
		Err(::kube::Error::Api(status)) if status.code == 404 => {
			return Err(ClusterError::Refused(format!(
				"{what}: the metrics API (metrics.k8s.io/v1beta1) is not served by this cluster; \
				 install metrics-server to meter CPU and memory ({})",
				status.message
			)))
		}
		Err(e) => return Err(super::error::map(what, e)),
	};
	let mut all = Vec::new();
	for pod in listed.items {
		all.extend(readings(pod)?);
	}
	all.sort_by(|a, b| a.source.cmp(&b.source));
	let cpu = backend.cpu.integrate(deal, &all);
	Ok(all
		.into_iter()
		.zip(cpu)
		.map(|(r, cpu_nanos)| {
			let sample = Sample {
				at_millis: r.at_millis,
				cpu_nanos,
				memory_bytes: r.memory_bytes,
				storage_bytes: 0,
				egress_bytes: 0,
			};
			(r.source, sample)
		})
		.collect())
}

/// The provisioned capacity of the deal's claims, now; `None` if it has none.
async fn storage(backend: &KubeBackend, deal: DealId) -> Result<Option<Sample>, ClusterError> {
	let claims: Api<PersistentVolumeClaim> =
		Api::namespaced(backend.client.clone(), &namespace_name(deal));
	let claims = backend
		.call("list claims", claims.list(&ListParams::default().labels(&deal_selector(deal))))
		.await?;
	if claims.items.is_empty() {
		return Ok(None);
	}
	let storage_bytes =
		claims.items.iter().map(capacity).fold(0u64, |sum, bytes| sum.saturating_add(bytes));
	let at_millis = SystemTime::now()
		.duration_since(UNIX_EPOCH)
		.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
	Ok(Some(Sample { at_millis, storage_bytes, ..Sample::default() }))
}

/// A claim's provisioned capacity, or its request while it is not bound yet.
fn capacity(claim: &PersistentVolumeClaim) -> u64 {
	let provisioned = claim.status.as_ref().and_then(|s| s.capacity.as_ref());
	let requested = claim.spec.as_ref().and_then(|s| s.resources.as_ref()?.requests.as_ref());
	provisioned
		.and_then(|c| c.get("storage"))
		.or_else(|| requested.and_then(|r| r.get("storage")))
		.and_then(|q| quantity::units(&q.0))
		.unwrap_or(0)
}

#[cfg(test)]
mod tests {
	use super::*;

	fn reading(source: &str, at_millis: u64, nanocores: u128) -> Reading {
		Reading {
			source: source.into(),
			at_millis,
			window_millis: 30_000,
			nanocores,
			memory_bytes: 1,
		}
	}

	#[test]
	fn integrates_rates_over_time() {
		let counters = CpuCounters::default();
		// 250m over the first 30 s window: 7.5 s of CPU.
		assert_eq!(counters.integrate(1, &[reading("p/c", 100_000, 250_000_000)]), [7_500_000_000]);
		// The same window again: nothing more.
		assert_eq!(counters.integrate(1, &[reading("p/c", 100_000, 250_000_000)]), [7_500_000_000]);
		// 15 s later at 1 core: 15 s more.
		assert_eq!(
			counters.integrate(1, &[reading("p/c", 115_000, 1_000_000_000)]),
			[22_500_000_000]
		);
		// An older window (out of order): nothing.
		assert_eq!(
			counters.integrate(1, &[reading("p/c", 110_000, 1_000_000_000)]),
			[22_500_000_000]
		);
		// Deals are separate; a new pod starts from its own window.
		assert_eq!(counters.integrate(2, &[reading("p/c", 115_000, 1_000_000)]), [30_000_000]);
		// A pod gone is forgotten; if the name came back it would start over.
		assert_eq!(counters.integrate(1, &[reading("q/c", 115_000, 0)]), [0]);
		assert_eq!(counters.integrate(1, &[reading("p/c", 130_000, 1_000_000)]), [30_000_000]);
		counters.forget(1);
		assert_eq!(counters.integrate(1, &[reading("p/c", 130_000, 1_000_000)]), [30_000_000]);
	}
}
