//! The gateway's per-deal figures, on the agent's `/metrics` and in the deal's status.

use prometheus_client::{
	encoding::EncodeLabelSet,
	metrics::{counter::Counter, family::Family, histogram::Histogram},
	registry::Registry,
};

/// Label of a deal.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DealLabel {
	/// The deal id.
	pub deal: String,
}

/// Label of a deal's responses of one status class.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DealClass {
	/// The deal id.
	pub deal: String,
	/// `1xx` to `5xx`.
	pub class: String,
}

/// Label of a deal's bytes in one direction.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DealDirection {
	/// The deal id.
	pub deal: String,
	/// `in` (requests, to the deal) or `out` (responses, from it).
	pub direction: String,
}

type HistogramFamily = Family<DealLabel, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
	let buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
	Histogram::new(buckets.into_iter())
}

fn cold_start_histogram() -> Histogram {
	Histogram::new([0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0].into_iter())
}

/// The gateway's metrics, labelled by deal.
#[derive(Clone)]
pub struct GatewayMetrics {
	/// Responses by deal and status class (the gateway's own answers included: 502, 503, 504).
	pub requests: Family<DealClass, Counter>,
	/// Seconds from a request's arrival to its response's headers.
	pub latency: HistogramFamily,
	/// Body bytes by deal and direction.
	pub bytes: Family<DealDirection, Counter>,
	/// Seconds from a request to an idle (scaled to zero) deal to its response's headers.
	pub cold_start: HistogramFamily,
}

impl Default for GatewayMetrics {
	fn default() -> Self {
		GatewayMetrics {
			requests: Family::default(),
			latency: Family::new_with_constructor(latency_histogram),
			bytes: Family::default(),
			cold_start: Family::new_with_constructor(cold_start_histogram),
		}
	}
}

impl GatewayMetrics {
	/// Registers the metrics in `registry` (under `gateway_`).
	pub fn register(&self, registry: &mut Registry) {
		let registry = registry.sub_registry_with_prefix("gateway");
		registry.register(
			"requests",
			"HTTP responses through the gateway by deal and status class",
			self.requests.clone(),
		);
		registry.register(
			"request_seconds",
			"Seconds from a request's arrival to its response's headers, by deal",
			self.latency.clone(),
		);
		registry.register(
			"body_bytes",
			"Body bytes through the gateway by deal and direction (in: requests, out: responses)",
			self.bytes.clone(),
		);
		registry.register(
			"cold_start_seconds",
			"Seconds from a request to a deal scaled to zero to its response's headers",
			self.cold_start.clone(),
		);
	}

	/// The counter of `deal`'s bytes in `direction`.
	pub(crate) fn bytes(&self, deal: u64, direction: &str) -> Counter {
		let label = DealDirection { deal: deal.to_string(), direction: direction.to_owned() };
		self.bytes.get_or_create(&label).clone()
	}

	/// Records a response of `status` to `deal` after `seconds`.
	pub(crate) fn responded(&self, deal: u64, status: u16, seconds: f64) {
		let class = format!("{}xx", (status / 100).clamp(1, 5));
		self.requests.get_or_create(&DealClass { deal: deal.to_string(), class }).inc();
		self.latency.get_or_create(&DealLabel { deal: deal.to_string() }).observe(seconds);
	}

	/// Records a request that started an idle `deal` and had its answer after `seconds`.
	pub(crate) fn cold_started(&self, deal: u64, seconds: f64) {
		self.cold_start.get_or_create(&DealLabel { deal: deal.to_string() }).observe(seconds);
	}

	/// `deal`'s figures so far (creating its series at 0 if it has none).
	pub fn figures(&self, deal: u64) -> DealFigures {
		let id = deal.to_string();
		let count = |class: &str| {
			let label = DealClass { deal: id.clone(), class: class.to_owned() };
			self.requests.get_or_create(&label).get()
		};
		let bytes = |direction: &str| {
			let label = DealDirection { deal: id.clone(), direction: direction.to_owned() };
			self.bytes.get_or_create(&label).get()
		};
		DealFigures {
			responses: [count("1xx"), count("2xx"), count("3xx"), count("4xx"), count("5xx")],
			bytes_in: bytes("in"),
			bytes_out: bytes("out"),
		}
	}

	/// Drops the series of a deal no longer served.
	pub(crate) fn forget(&self, deal: u64) {
		let id = deal.to_string();
		for class in ["1xx", "2xx", "3xx", "4xx", "5xx"] {
			self.requests.remove(&DealClass { deal: id.clone(), class: class.to_owned() });
		}
		for direction in ["in", "out"] {
			self.bytes.remove(&DealDirection { deal: id.clone(), direction: direction.to_owned() });
		}
		self.latency.remove(&DealLabel { deal: id.clone() });
		self.cold_start.remove(&DealLabel { deal: id });
	}
}

/// A deal's gateway traffic so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DealFigures {
	/// Responses by status class, 1xx to 5xx.
	pub responses: [u64; 5],
	/// Request body bytes.
	pub bytes_in: u64,
	/// Response body bytes.
	pub bytes_out: u64,
}
