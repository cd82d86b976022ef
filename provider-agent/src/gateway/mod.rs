//! The agent's HTTP gateway: `Host: <name>.<domain>` reaches the deal that holds the name.
//!
//! A reverse proxy on hyper: the agent tells it which host names route to which deal and port
//! ([`Gateway::set_routes`], after each reconcile round, for deals running their current
//! manifest), and it asks the backend where the deal's pods are ([`Backend::endpoints`]:
//! podman pods' addresses on the deal's network, a Kubernetes Service) and forwards.
//!
//! - **Routing.** By the request's host (its `Host` header, or the authority of an absolute
//!   URI), lowercase, without port or trailing dot. A host no deal holds gets 404 with a plain
//!   body, a routed deal with nothing serving 503.
//! - **Streaming.** Bodies stream both ways, never buffered whole; connections to clients and
//!   to pods are kept alive (pods' in a pool per address).
//! - **WebSocket.** An `Upgrade` request is forwarded with its upgrade headers; on `101` the two
//!   upgraded connections are spliced.
//! - **Fairness.** Each deal has at most [`GatewaySettings::max_in_flight_per_deal`] requests
//!   in flight (an upgraded connection counts as one while open); beyond it the gateway answers
//!   503 at once, never queueing behind a slow tenant. Each request runs in its own task, with
//!   a connect timeout and a timeout to the response's headers (502 and 504), so one tenant's
//!   slow backend holds only its own slots.
//! - **Metrics.** Responses by status class, latency to headers and body bytes in and out, per
//!   deal ([`GatewayMetrics`]).
//! - **Scale to zero.** A deal whose manifest says `replicas: {min: 0, max: 1, idle}` is
//!   stopped ([`Backend::set_awake`]) once `idle` passes with no request in flight or made; the
//!   next request is held while the gateway starts it and waits until its port accepts
//!   connections, then forwarded (its time is `cold_start_seconds`). A stop and a request never
//!   cross: the stop marks the deal asleep first and gives up if a request got in meanwhile,
//!   and a request that finds the deal asleep waits for the stop to finish and starts it.

mod body;
pub mod metrics;
mod proxy;
mod scale;

pub use metrics::{DealFigures, GatewayMetrics};

use std::{
	collections::HashMap,
	net::SocketAddr,
	sync::{
		atomic::{AtomicBool, AtomicUsize, Ordering},
		Arc, Mutex, RwLock,
	},
	time::{Duration, Instant},
};

use http_body_util::combinators::BoxBody;
use hyper::body::Bytes;
use hyper_util::{
	client::legacy::{connect::HttpConnector, Client},
	rt::TokioExecutor,
};
use podchain_cluster::Backend;
use tokio::{net::TcpListener, sync::Semaphore};

/// The body type of everything the gateway sends.
pub(crate) type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// How the gateway behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewaySettings {
	/// Most requests in flight to one deal.
	pub max_in_flight_per_deal: usize,
	/// Longest wait for a connection to a pod.
	pub connect_timeout: Duration,
	/// Longest wait for a pod's response headers.
	pub response_timeout: Duration,
	/// Longest a client may take to send a request's headers.
	pub header_read_timeout: Duration,
	/// How long the pods' addresses of a deal are reused before they are asked again (a
	/// connection refused asks at once).
	pub endpoint_ttl: Duration,
	/// Longest a request waits for an idle deal to start.
	pub wake_timeout: Duration,
	/// How often idle deals are looked for.
	pub idle_check: Duration,
	/// Whether deals that scale to zero are stopped when idle. Only where every request to a
	/// named deal comes through this gateway: a request that bypasses it (a Kubernetes
	/// Ingress) could neither keep a deal awake nor wake it.
	pub stop_idle_deals: bool,
}

impl Default for GatewaySettings {
	fn default() -> Self {
		GatewaySettings {
			max_in_flight_per_deal: 256,
			connect_timeout: Duration::from_secs(5),
			response_timeout: Duration::from_secs(60),
			header_read_timeout: Duration::from_secs(30),
			endpoint_ttl: Duration::from_secs(5),
			wake_timeout: Duration::from_secs(30),
			idle_check: Duration::from_secs(1),
			stop_idle_deals: true,
		}
	}
}

/// Where requests for one host go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Route {
	/// The deal holding the host's name.
	pub deal: u64,
	/// The container port of its HTTP exposure.
	pub port: u16,
	/// For a deal that scales to zero, how long it may go without a request before it stops.
	pub idle: Option<Duration>,
}

/// One deal's state in the gateway.
struct DealGate {
	/// Slots for requests in flight.
	permits: Arc<Semaphore>,
	/// The pods' addresses and when they were read.
	endpoints: tokio::sync::Mutex<Option<(Instant, u16, Vec<SocketAddr>)>>,
	/// Round-robin position among the addresses.
	next: AtomicUsize,
	/// When a request last came or ended.
	last_active: Mutex<Instant>,
	/// Stopped while idle (or being stopped): the next request starts it.
	asleep: AtomicBool,
	/// Held while the deal is started or stopped, so that those never overlap.
	scaling: tokio::sync::Mutex<()>,
	/// Its idle time, if it scales to zero.
	idle: Mutex<Option<Duration>>,
	/// Most requests in flight, to tell how many are.
	capacity: usize,
}

impl DealGate {
	/// Requests in flight now.
	fn in_flight(&self) -> usize {
		self.capacity.saturating_sub(self.permits.available_permits())
	}

	/// Notes activity now.
	fn touch(&self) {
		if let Ok(mut last) = self.last_active.lock() {
			*last = Instant::now();
		}
	}
}

/// The gateway. Share it behind an `Arc`.
pub struct Gateway {
	settings: GatewaySettings,
	backend: Arc<dyn Backend>,
	routes: RwLock<HashMap<String, Route>>,
	deals: Mutex<HashMap<u64, Arc<DealGate>>>,
	client: Client<HttpConnector, ProxyBody>,
	metrics: GatewayMetrics,
	/// Where [`Gateway::serve`] listens, once it does.
	listening: Mutex<Option<SocketAddr>>,
}

impl Gateway {
	/// A gateway to `backend`'s deals, counting into `metrics`.
	pub fn new(
		settings: GatewaySettings,
		backend: Arc<dyn Backend>,
		metrics: GatewayMetrics,
	) -> Arc<Self> {
		let mut connector = HttpConnector::new();
		connector.set_connect_timeout(Some(settings.connect_timeout));
		connector.set_nodelay(true);
		let client = Client::builder(TokioExecutor::new())
			.pool_idle_timeout(Duration::from_secs(30))
			.pool_max_idle_per_host(64)
			.build(connector);
		Arc::new(Gateway {
			settings,
			backend,
			routes: RwLock::new(HashMap::new()),
			deals: Mutex::new(HashMap::new()),
			client,
			metrics,
			listening: Mutex::new(None),
		})
	}

	/// Replaces the routing table: host name (lowercase, no port) to route. Deals no longer
	/// routed lose their state and metric series.
	pub fn set_routes(&self, routes: HashMap<String, Route>) {
		let routed: std::collections::BTreeSet<u64> = routes.values().map(|r| r.deal).collect();
		// Every routed deal gets its state and its idle time now: one that scales to zero
		// counts its idle time from the moment it is routed even if no request ever comes, and
		// one whose new manifest no longer scales to zero stops being stopped.
		for route in routes.values() {
			let gate = self.gate(route.deal);
			let mut idle = gate.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
			*idle = route.idle.filter(|_| self.settings.stop_idle_deals);
		}
		if let Ok(mut table) = self.routes.write() {
			*table = routes;
		}
		if let Ok(mut deals) = self.deals.lock() {
			deals.retain(|deal, _| {
				let keep = routed.contains(deal);
				if !keep {
					self.metrics.forget(*deal);
				}
				keep
			});
		}
	}

	/// The route of `host`, if a deal holds it.
	pub fn route(&self, host: &str) -> Option<Route> {
		self.routes.read().ok()?.get(host).copied()
	}

	/// Whether a host routes to `deal`.
	pub fn serves(&self, deal: u64) -> bool {
		self.routes.read().is_ok_and(|routes| routes.values().any(|r| r.deal == deal))
	}

	/// The address the gateway serves on, once it does.
	pub fn local_addr(&self) -> Option<SocketAddr> {
		self.listening.lock().ok().and_then(|addr| *addr)
	}

	/// `deal`'s traffic so far.
	pub fn figures(&self, deal: u64) -> DealFigures {
		self.metrics.figures(deal)
	}

	/// The gateway state of `deal`, created on first use.
	fn gate(&self, deal: u64) -> Arc<DealGate> {
		let mut deals = self.deals.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
		deals
			.entry(deal)
			.or_insert_with(|| {
				Arc::new(DealGate {
					permits: Arc::new(Semaphore::new(self.settings.max_in_flight_per_deal)),
					endpoints: tokio::sync::Mutex::new(None),
					next: AtomicUsize::new(0),
					last_active: Mutex::new(Instant::now()),
					asleep: AtomicBool::new(false),
					scaling: tokio::sync::Mutex::new(()),
					idle: Mutex::new(None),
					capacity: self.settings.max_in_flight_per_deal,
				})
			})
			.clone()
	}

	/// One address serving `route`, from the cached addresses or the backend.
	async fn endpoint(&self, gate: &DealGate, route: Route) -> Result<Option<SocketAddr>, String> {
		let mut cached = gate.endpoints.lock().await;
		let fresh = cached.as_ref().is_some_and(|(at, port, addresses)| {
			*port == route.port
				&& !addresses.is_empty()
				&& at.elapsed() < self.settings.endpoint_ttl
		});
		if !fresh {
			let addresses =
				self.backend.endpoints(route.deal, route.port).await.map_err(|e| e.to_string())?;
			*cached = Some((Instant::now(), route.port, addresses));
		}
		let addresses = cached.as_ref().map(|(_, _, a)| a.as_slice()).unwrap_or_default();
		if addresses.is_empty() {
			return Ok(None);
		}
		let i = gate.next.fetch_add(1, Ordering::Relaxed) % addresses.len();
		Ok(Some(addresses[i]))
	}

	/// Forgets `deal`'s addresses: one of them refused a connection.
	async fn stale(&self, gate: &DealGate) {
		*gate.endpoints.lock().await = None;
	}

	/// Serves the gateway on `listener` until the task is dropped (and stops idle deals
	/// meanwhile).
	pub fn serve(self: &Arc<Self>, listener: TcpListener) -> tokio::task::JoinHandle<()> {
		if let (Ok(addr), Ok(mut listening)) = (listener.local_addr(), self.listening.lock()) {
			*listening = Some(addr);
		}
		let gateway = self.clone();
		tokio::spawn(async move {
			let _stopper = scale::AbortOnDrop(tokio::spawn(gateway.clone().stop_idle_deals()));
			loop {
				let Ok((stream, remote)) = listener.accept().await else {
					// Out of file descriptors, usually: let some close before trying again.
					tokio::time::sleep(Duration::from_millis(100)).await;
					continue;
				};
				let _ = stream.set_nodelay(true);
				tokio::spawn(gateway.clone().connection(stream, remote));
			}
		})
	}

	/// Serves one client connection (keep-alive, upgrades).
	async fn connection(self: Arc<Self>, stream: tokio::net::TcpStream, remote: SocketAddr) {
		let header_read_timeout = self.settings.header_read_timeout;
		let service = hyper::service::service_fn(move |request| {
			let gateway = self.clone();
			async move { Ok::<_, std::convert::Infallible>(gateway.handle(request, remote).await) }
		});
		let served = hyper::server::conn::http1::Builder::new()
			.timer(hyper_util::rt::TokioTimer::new())
			.header_read_timeout(header_read_timeout)
			.serve_connection(hyper_util::rt::TokioIo::new(stream), service)
			.with_upgrades()
			.await;
		if let Err(e) = served {
			tracing::debug!(%remote, error = %e, "gateway connection ended");
		}
	}
}

/// `host` as routes are keyed: lowercase, without port or trailing dot.
pub fn normalize_host(host: &str) -> String {
	let host = host.trim();
	let without_port = match host.rsplit_once(':') {
		// A port follows a name or a bracketed IPv6 address, never a bare IPv6 address.
		Some((name, port))
			if !port.is_empty()
				&& port.bytes().all(|b| b.is_ascii_digit())
				&& (!name.contains(':') || name.ends_with(']')) =>
		{
			name
		}
		_ => host,
	};
	without_port.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests;
