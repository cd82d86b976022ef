//! Prometheus metrics of the agent, served on `/metrics`, and the health served on `/healthz`.

use prometheus_client::{
	collector::Collector,
	encoding::{text::encode, DescriptorEncoder, EncodeLabelSet, EncodeMetric},
	metrics::{
		counter::{ConstCounter, Counter},
		family::Family,
		gauge::{ConstGauge, Gauge},
		histogram::Histogram,
	},
	registry::Registry,
};
use std::{
	collections::BTreeMap,
	sync::{
		atomic::{AtomicU64, Ordering},
		Arc, Mutex,
	},
	time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

/// Label of one kind of thing.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
	/// The kind.
	pub kind: String,
}

/// Label of an action and how it ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
	/// What was done.
	pub action: String,
	/// `ok` or `error`.
	pub outcome: String,
}

/// The agent's metrics.
pub struct Metrics {
	registry: Registry,
	/// Open deals of the provider by state.
	pub deals: Family<Kind, Gauge>,
	/// The last finalized block reconciled.
	pub finalized_block: Gauge,
	/// Seconds one reconcile round took.
	pub reconcile_seconds: Histogram,
	/// Actions taken, by outcome.
	pub actions: Family<Outcome, Counter>,
	/// Usage billed in finalized reports, by resource, in the chain's units.
	pub usage_reported: Family<Kind, Counter>,
	/// Errors by where they happened.
	pub errors: Family<Kind, Counter>,
	/// Manifest deliveries by outcome.
	pub manifests: Family<Kind, Counter>,
	/// Image offers and refused chunks, by outcome.
	pub images: Family<Kind, Counter>,
	/// Bytes of delivered images stored.
	pub image_bytes: Counter,
	/// Usage samples that could not read a source, by what went unmetered.
	pub metering_failures: Family<Kind, Counter>,
	/// 1 while usage of this kind cannot be metered (a failure within the health window).
	metering_degraded: Family<Kind, Gauge>,
	/// Which metering sources fail, for `/healthz` and the log.
	pub metering: MeteringHealth,
	/// The HTTP gateway's per-deal figures.
	pub gateway: crate::gateway::GatewayMetrics,
	/// When the provider's attestation expires (Unix seconds, the chain's clock); 0 without one.
	pub attestation_expires_at: Gauge,
	/// Storage-proof events by kind: snapshots taken or failed, committed snapshots missing.
	pub storage_proofs: Family<Kind, Counter>,
	/// Seconds a snapshot of a deal's volumes took (on podman its pods are paused meanwhile).
	pub storage_snapshot_seconds: Histogram,
	/// Seconds since the epoch of the last reconcile round that read both chain and cluster.
	last_healthy: AtomicU64,
}

impl Default for Metrics {
	fn default() -> Self {
		let mut registry = Registry::with_prefix("podchain_agent");
		let deals = Family::<Kind, Gauge>::default();
		registry.register("deals", "Open deals of this provider by state", deals.clone());
		let finalized_block = Gauge::default();
		registry.register(
			"finalized_block",
			"Last finalized block reconciled",
			finalized_block.clone(),
		);
		// Fine below 250 ms, where a healthy round falls, so quantiles read from it mean
		// something.
		let buckets = [
			0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.125, 0.15, 0.2, 0.25, 0.5, 1.0,
			2.5, 5.0, 10.0, 30.0,
		];
		let reconcile_seconds = Histogram::new(buckets.into_iter());
		registry.register(
			"reconcile_seconds",
			"Time of one reconcile round (chain read, cluster read, actions)",
			reconcile_seconds.clone(),
		);
		let actions = Family::<Outcome, Counter>::default();
		registry.register("actions", "Actions taken, by outcome", actions.clone());
		let usage_reported = Family::<Kind, Counter>::default();
		registry.register(
			"usage_reported",
			"Usage billed by finalized reports (millicore-seconds, MiB-seconds, GiB-seconds, bytes)",
			usage_reported.clone(),
		);
		let errors = Family::<Kind, Counter>::default();
		registry.register("errors", "Errors by where they happened", errors.clone());
		let manifests = Family::<Kind, Counter>::default();
		registry.register("manifests", "Manifest deliveries by outcome", manifests.clone());
		let images = Family::<Kind, Counter>::default();
		registry.register(
			"images",
			"Delivered images: offered, refused (offers), chunk_refused, staged, stage_failed",
			images.clone(),
		);
		let image_bytes = Counter::default();
		registry.register("image_bytes", "Bytes of delivered images stored", image_bytes.clone());
		let metering_failures = Family::<Kind, Counter>::default();
		registry.register(
			"metering_failures",
			"Usage samples that could not read a source (containers: CPU and memory; storage), by what went unmetered",
			metering_failures.clone(),
		);
		let metering_degraded = Family::<Kind, Gauge>::default();
		registry.register(
			"metering_degraded",
			"1 while usage of this kind cannot be metered (and so is not billed)",
			metering_degraded.clone(),
		);
		for what in METERED {
			metering_degraded.get_or_create(&kind(what)).set(0);
		}
		let gateway = crate::gateway::GatewayMetrics::default();
		gateway.register(&mut registry);
		let attestation_expires_at = Gauge::default();
		registry.register(
			"attestation_expires_at_seconds",
			"When the provider's TEE attestation expires (Unix seconds, chain clock; 0 without one), when the agent attests",
			attestation_expires_at.clone(),
		);
		let storage_proofs = Family::<Kind, Counter>::default();
		registry.register(
			"storage_proofs",
			"Storage-proof events: snapshot_taken, snapshot_failed, snapshot_missing (a challenge that cannot be answered)",
			storage_proofs.clone(),
		);
		let storage_snapshot_seconds =
			Histogram::new([0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0].into_iter());
		registry.register(
			"storage_snapshot_seconds",
			"Time a snapshot of a deal's volumes took (on podman the deal's pods are paused meanwhile)",
			storage_snapshot_seconds.clone(),
		);
		Self {
			registry,
			deals,
			finalized_block,
			reconcile_seconds,
			actions,
			usage_reported,
			errors,
			manifests,
			images,
			image_bytes,
			metering_failures,
			metering_degraded,
			metering: MeteringHealth::default(),
			gateway,
			attestation_expires_at,
			storage_proofs,
			storage_snapshot_seconds,
			last_healthy: AtomicU64::new(0),
		}
	}
}

fn now_secs() -> u64 {
	SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A label value.
pub fn kind(kind: &str) -> Kind {
	Kind { kind: kind.to_owned() }
}

impl Metrics {
	/// Counts an error at `place`.
	pub fn error(&self, place: &str) {
		self.errors.get_or_create(&kind(place)).inc();
	}

	/// Counts an action's outcome.
	pub fn action(&self, action: &str, ok: bool) {
		let outcome = if ok { "ok" } else { "error" };
		self.actions
			.get_or_create(&Outcome { action: action.to_owned(), outcome: outcome.to_owned() })
			.inc();
	}

	/// Records that a round read both the chain and the cluster.
	pub fn healthy_now(&self) {
		self.last_healthy.store(now_secs(), Ordering::Relaxed);
	}

	/// Whether a round read both the chain and the cluster within `max_age_secs`.
	pub fn is_healthy(&self, max_age_secs: u64) -> bool {
		let last = self.last_healthy.load(Ordering::Relaxed);
		last != 0 && now_secs().saturating_sub(last) <= max_age_secs
	}

	/// What cannot be metered now, as `(what, error)`: the degradation `/healthz` reports.
	pub fn metering_degraded(&self) -> Vec<(&'static str, String)> {
		let failing = self.metering.failing(Instant::now());
		for what in METERED {
			let degraded = failing.iter().any(|(w, _)| *w == what);
			self.metering_degraded.get_or_create(&kind(what)).set(i64::from(degraded));
		}
		failing
	}

	/// Serves `count`, the requests the podman backend sent, as
	/// `podchain_agent_podman_requests_total`.
	pub fn count_podman_requests(&mut self, count: Arc<AtomicU64>) {
		self.registry.register_collector(Box::new(PodmanRequests(count)));
	}

	/// Serves `followed()`, whether the podman backend follows podman's events, as
	/// `podchain_agent_podman_events_followed` (1 or 0): while it is 0 the backend reads
	/// podman's listings again whenever they are 500 ms old, not only after a change.
	pub fn podman_events_followed(&mut self, followed: impl Fn() -> bool + Send + Sync + 'static) {
		self.registry.register_collector(Box::new(EventsFollowed(Box::new(followed))));
	}

	/// The metrics in Prometheus' text format.
	pub fn encode(&self) -> String {
		self.metering_degraded();
		let mut text = String::new();
		// Writing to a String cannot fail.
		let _ = encode(&mut text, &self.registry);
		text
	}
}

/// The podman backend's request count, read at each scrape.
#[derive(Debug)]
struct PodmanRequests(Arc<AtomicU64>);

impl Collector for PodmanRequests {
	fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
		let counter = ConstCounter::new(self.0.load(Ordering::Relaxed));
		let metric = encoder.encode_descriptor(
			"podman_requests",
			"Requests sent to the podman API",
			None,
			counter.metric_type(),
		)?;
		counter.encode(metric)
	}
}

/// Whether the podman backend follows podman's events, read at each scrape.
struct EventsFollowed(Box<dyn Fn() -> bool + Send + Sync>);

impl std::fmt::Debug for EventsFollowed {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		f.debug_tuple("EventsFollowed").field(&(self.0)()).finish()
	}
}

impl Collector for EventsFollowed {
	fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
		let gauge = ConstGauge::new(i64::from((self.0)()));
		let metric = encoder.encode_descriptor(
			"podman_events_followed",
			"Whether the podman backend follows podman's events (1), or reads its listings every 500 ms (0)",
			None,
			gauge.metric_type(),
		)?;
		gauge.encode(metric)
	}
}

/// What the agent meters, as [`podchain_cluster::Metered::as_str`] names it.
const METERED: [&str; 2] = ["containers", "storage"];

/// How loudly to log a metering failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loudness {
	/// First seen, or not logged loudly for [`MeteringHealth::RELOG`]: warn (transient) or
	/// error (needs the provider).
	Loud,
	/// Logged loudly a moment ago: debug.
	Quiet,
}

/// Which metering sources fail, across deals: a source is failing while a sample of any deal
/// failed to read it within [`MeteringHealth::window`], so a deal whose sample works does not
/// hide another's that does not.
#[derive(Debug)]
pub struct MeteringHealth {
	window: Mutex<Duration>,
	sources: Mutex<BTreeMap<&'static str, SourceState>>,
}

#[derive(Debug)]
struct SourceState {
	failed_at: Instant,
	error: String,
	logged_at: Instant,
}

impl Default for MeteringHealth {
	fn default() -> Self {
		MeteringHealth { window: Mutex::new(Duration::from_secs(60)), sources: Mutex::default() }
	}
}

impl MeteringHealth {
	/// A source failing is logged loudly again after this long.
	pub const RELOG: Duration = Duration::from_secs(300);

	/// Sets how long after its last failure a source counts as failing (a few sample
	/// intervals: the next samples must get the chance to fail again).
	pub fn set_window(&self, window: Duration) {
		*self.window.lock().unwrap_or_else(|p| p.into_inner()) = window;
	}

	fn window(&self) -> Duration {
		*self.window.lock().unwrap_or_else(|p| p.into_inner())
	}

	/// Records that `what` could not be read at `now`; says how loudly to log it.
	pub fn failed(&self, what: &'static str, error: &str, now: Instant) -> Loudness {
		let window = self.window();
		let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
		match sources.get_mut(what) {
			Some(state)
				if now.saturating_duration_since(state.failed_at) <= window
					&& now.saturating_duration_since(state.logged_at) < Self::RELOG
					&& state.error == error =>
			{
				state.failed_at = now;
				Loudness::Quiet
			}
			_ => {
				sources.insert(
					what,
					SourceState { failed_at: now, error: error.to_owned(), logged_at: now },
				);
				Loudness::Loud
			}
		}
	}

	/// Records that `what` was read at `now`; `true` if that ends a failure (no failure within
	/// the window), to log the recovery.
	pub fn succeeded(&self, what: &'static str, now: Instant) -> bool {
		let window = self.window();
		let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
		let recovered = sources
			.get(what)
			.is_some_and(|state| now.saturating_duration_since(state.failed_at) > window);
		if recovered {
			sources.remove(what);
		}
		recovered
	}

	/// The sources failing at `now`, with their last error.
	pub fn failing(&self, now: Instant) -> Vec<(&'static str, String)> {
		let window = self.window();
		let sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
		sources
			.iter()
			.filter(|(_, state)| now.saturating_duration_since(state.failed_at) <= window)
			.map(|(what, state)| (*what, state.error.clone()))
			.collect()
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn metering_failures_are_loud_then_quiet_then_loud_again() {
		let health = MeteringHealth::default();
		let t0 = Instant::now();
		let at = |secs| t0 + Duration::from_secs(secs);
		assert!(health.failing(t0).is_empty());
		assert_eq!(health.failed("containers", "no metrics API", t0), Loudness::Loud);
		assert_eq!(health.failed("containers", "no metrics API", at(5)), Loudness::Quiet);
		// Another deal samples fine meanwhile: still failing, not recovered.
		assert!(!health.succeeded("containers", at(6)));
		assert_eq!(health.failing(at(6)), vec![("containers", "no metrics API".to_owned())]);
		// A different error is news; so is the same one five minutes on.
		assert_eq!(health.failed("containers", "timeout", at(10)), Loudness::Loud);
		assert_eq!(health.failed("containers", "timeout", at(20)), Loudness::Quiet);
		let mut t = 20;
		while t < 300 {
			t += 5;
			health.failed("containers", "timeout", at(t));
		}
		assert_eq!(health.failed("containers", "timeout", at(315)), Loudness::Loud);
		// Storage is a source of its own.
		assert!(health.failing(at(315)).iter().all(|(what, _)| *what == "containers"));
		// No failure for a window, then a success: recovered, once.
		assert!(health.failing(at(400)).is_empty(), "past the window");
		assert!(health.succeeded("containers", at(400)));
		assert!(!health.succeeded("containers", at(401)));
		assert_eq!(health.failed("containers", "timeout", at(402)), Loudness::Loud);
	}

	#[test]
	fn metering_degradation_is_a_metric() {
		let metrics = Metrics::default();
		let text = metrics.encode();
		assert!(text.contains("podchain_agent_metering_degraded{kind=\"containers\"} 0"), "{text}");
		metrics.metering.failed("containers", "no metrics API", Instant::now());
		metrics.metering_failures.get_or_create(&kind("containers")).inc();
		let text = metrics.encode();
		assert!(text.contains("podchain_agent_metering_degraded{kind=\"containers\"} 1"), "{text}");
		assert!(text.contains("podchain_agent_metering_degraded{kind=\"storage\"} 0"), "{text}");
		assert!(
			text.contains("podchain_agent_metering_failures_total{kind=\"containers\"} 1"),
			"{text}"
		);
		metrics.metering.set_window(Duration::ZERO);
		std::thread::sleep(Duration::from_millis(5));
		assert!(metrics
			.encode()
			.contains("podchain_agent_metering_degraded{kind=\"containers\"} 0"));
	}

	#[test]
	fn podman_requests_are_read_at_each_scrape() {
		let mut metrics = Metrics::default();
		let count = Arc::new(AtomicU64::new(3));
		metrics.count_podman_requests(count.clone());
		let text = metrics.encode();
		assert!(text.contains("# TYPE podchain_agent_podman_requests counter"), "{text}");
		assert!(text.contains("podchain_agent_podman_requests_total 3"), "{text}");
		count.fetch_add(2, Ordering::Relaxed);
		assert!(metrics.encode().contains("podchain_agent_podman_requests_total 5"));
	}

	#[test]
	fn podmans_event_watch_is_read_at_each_scrape() {
		let mut metrics = Metrics::default();
		let followed = Arc::new(std::sync::atomic::AtomicBool::new(false));
		let read = followed.clone();
		metrics.podman_events_followed(move || read.load(Ordering::Relaxed));
		let text = metrics.encode();
		assert!(text.contains("# TYPE podchain_agent_podman_events_followed gauge"), "{text}");
		assert!(text.contains("podchain_agent_podman_events_followed 0"), "{text}");
		followed.store(true, Ordering::Relaxed);
		assert!(metrics.encode().contains("podchain_agent_podman_events_followed 1"));
	}

	#[test]
	fn metrics_are_exposed_with_the_prefix() {
		let metrics = Metrics::default();
		metrics.action("accept", true);
		metrics.error("chain");
		metrics.deals.get_or_create(&kind("active")).set(3);
		let text = metrics.encode();
		assert!(
			text.contains("podchain_agent_actions_total{action=\"accept\",outcome=\"ok\"} 1"),
			"{text}"
		);
		assert!(text.contains("podchain_agent_errors_total{kind=\"chain\"} 1"), "{text}");
		assert!(text.contains("podchain_agent_deals{kind=\"active\"} 3"), "{text}");
		assert!(!metrics.is_healthy(60));
		metrics.healthy_now();
		assert!(metrics.is_healthy(60));
	}
}
