//! Scale to zero: stopping idle deals and starting them again for a request.

use std::{
	net::SocketAddr,
	sync::{atomic::Ordering, Arc},
	time::{Duration, Instant},
};

use super::{DealGate, Gateway, Route};

/// How long a start may take to accept connections before it is asked again. Asking a running
/// pod to start changes nothing, so asking often costs nothing; a pod whose start lost the
/// race with its stop's cleanup (podman tears the new network down) is running again after
/// one more start.
const RESTART_AFTER: Duration = Duration::from_millis(500);

/// Aborts a task when dropped (a detached `JoinHandle` would let it run on).
pub(super) struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
	fn drop(&mut self) {
		self.0.abort();
	}
}

impl Gateway {
	/// Starts `route`'s deal if it is asleep or has no pod serving, and waits until one of its
	/// pods accepts connections on the route's port. Returns whether it had to start it.
	pub(super) async fn wake(&self, gate: &DealGate, route: Route) -> Result<bool, String> {
		let _scaling = gate.scaling.lock().await;
		let asleep = gate.asleep.load(Ordering::SeqCst);
		if !asleep && self.ready_address(route).await.is_some() {
			return Ok(false); // Another request woke it meanwhile.
		}
		tracing::info!(deal = route.deal, "starting an idle deal for a request");
		let deadline = Instant::now() + self.settings.wake_timeout;
		// A start that does not come up is asked again: starting a running pod changes
		// nothing, and one that lost a race with its own stop's cleanup starts this time.
		let mut next_start = Instant::now();
		loop {
			if Instant::now() >= next_start {
				self.backend.set_awake(route.deal, true).await.map_err(|e| e.to_string())?;
				*gate.endpoints.lock().await = None;
				next_start = Instant::now() + RESTART_AFTER;
			}
			if self.ready_address(route).await.is_some() {
				gate.asleep.store(false, Ordering::SeqCst);
				gate.touch();
				return Ok(true);
			}
			if Instant::now() > deadline {
				return Err(format!(
					"deal {} did not accept connections within {:?} of its start",
					route.deal, self.settings.wake_timeout
				));
			}
			tokio::time::sleep(Duration::from_millis(20)).await;
		}
	}

	/// An address of `route`'s deal that accepts a connection now.
	async fn ready_address(&self, route: Route) -> Option<SocketAddr> {
		let addresses = self.backend.endpoints(route.deal, route.port).await.ok()?;
		for address in addresses {
			let connect = tokio::net::TcpStream::connect(address);
			if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(200), connect).await {
				return Some(address);
			}
		}
		None
	}

	/// Every [`GatewaySettings::idle_check`](super::GatewaySettings::idle_check), stops the
	/// deals that scale to zero and have been idle for their idle time.
	pub(super) async fn stop_idle_deals(self: Arc<Self>) {
		loop {
			tokio::time::sleep(self.settings.idle_check).await;
			let gates: Vec<(u64, Arc<DealGate>)> = match self.deals.lock() {
				Ok(deals) => deals.iter().map(|(d, g)| (*d, g.clone())).collect(),
				Err(_) => continue,
			};
			for (deal, gate) in gates {
				let Some(idle) = gate.idle.lock().ok().and_then(|i| *i) else { continue };
				let quiet = gate.last_active.lock().map(|t| t.elapsed() >= idle).unwrap_or(false);
				if quiet && gate.in_flight() == 0 && !gate.asleep.load(Ordering::SeqCst) {
					self.stop(deal, &gate).await;
				}
			}
		}
	}

	/// Stops `deal`, unless a request got in first.
	async fn stop(&self, deal: u64, gate: &DealGate) {
		let _scaling = gate.scaling.lock().await;
		// Asleep first: a request taking its slot from now on waits for this stop and starts
		// the deal again; one that took it before is seen here.
		gate.asleep.store(true, Ordering::SeqCst);
		if gate.in_flight() > 0 {
			gate.asleep.store(false, Ordering::SeqCst);
			return;
		}
		match self.backend.set_awake(deal, false).await {
			Ok(()) => {
				*gate.endpoints.lock().await = None;
				tracing::info!(deal, "stopped an idle deal");
			}
			Err(e) => {
				// Still running, as far as anyone knows: try again after another idle time.
				gate.asleep.store(false, Ordering::SeqCst);
				gate.touch();
				tracing::warn!(deal, error = %e, "cannot stop an idle deal");
			}
		}
	}
}
