//! Prometheus metrics of the agent, served on `/metrics`, and the health served on `/healthz`.

use prometheus_client::{
	encoding::{text::encode, EncodeLabelSet},
	metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
	registry::Registry,
};
use std::{
	sync::atomic::{AtomicU64, Ordering},
	time::{SystemTime, UNIX_EPOCH},
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
		let buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
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
		Self {
			registry,
			deals,
			finalized_block,
			reconcile_seconds,
			actions,
			usage_reported,
			errors,
			manifests,
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

	/// The metrics in Prometheus' text format.
	pub fn encode(&self) -> String {
		let mut text = String::new();
		// Writing to a String cannot fail.
		let _ = encode(&mut text, &self.registry);
		text
	}
}

#[cfg(test)]
mod tests {
	use super::*;

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
