//! SLA heartbeats: the provider names the deals it runs, twice per probe window.
//!
//! The SLA pallet starts measuring a deal the probe window after the agent first names it (and
//! again after a manifest update), so the agent names a deal for a manifest only once its pods
//! pass the deal's health check as probers will ask it (see [`crate::sla_health`]); after that,
//! it names it whenever it runs. Heartbeats go out at the first finalized block of each half
//! window, so one lands in every window despite finality lag.

use crate::{
	agent::Agent,
	chain::{DealView, Snapshot},
	plan::{ChainState, Hash},
	sla_health::{self, Unhealthy},
};
use podchain_chain::{runtime, Node};
use std::collections::{BTreeMap, BTreeSet};

/// The deals to name: running on the chain, with SLA terms, and deployed in the cluster.
pub fn deals_to_name(snapshot: &Snapshot, running: &BTreeSet<u64>) -> Vec<u64> {
	snapshot
		.deals
		.values()
		.filter(|d| d.sla.is_some())
		.filter(|d| {
			matches!(d.chain.state, ChainState::Active { .. } | ChainState::OutOfFunds { .. })
		})
		.map(|d| d.chain.id)
		.filter(|id| running.contains(id))
		.collect()
}

/// Splits `deals` into those that passed their health check with the manifest the chain names
/// now (named without asking again) and those to check first.
pub fn split_checked(
	snapshot: &Snapshot,
	deals: Vec<u64>,
	passed: &BTreeMap<u64, Hash>,
) -> (Vec<u64>, Vec<u64>) {
	deals.into_iter().partition(|id| {
		let current = snapshot.deals.get(id).map(|d| d.chain.manifest_hash);
		current.is_some() && passed.get(id).copied() == current
	})
}

/// The half probe window `block` falls in: a heartbeat is due once per half window.
pub fn slot_of(block: u32, probe_window: u32) -> u32 {
	block.saturating_mul(2) / probe_window.max(2)
}

impl Agent {
	/// Sends the heartbeats of this half window, if not sent yet. Best effort: a heartbeat
	/// that fails is not retried until the next half window (a missed one costs at most
	/// that window's uptime, and the next is sent regardless).
	pub(crate) async fn heartbeat(
		&self,
		node: &Node,
		snapshot: &Snapshot,
		running: &BTreeSet<u64>,
	) {
		let rules = snapshot.sla;
		if rules.probe_window == 0 {
			return;
		}
		let slot = slot_of(snapshot.number, rules.probe_window);
		let Ok(mut last) = self.last_heartbeat.lock().map(|l| *l) else { return };
		if last == Some(slot) {
			return;
		}
		let deals = self.passing_health_checks(snapshot, deals_to_name(snapshot, running)).await;
		for chunk in deals.chunks(rules.max_deals.max(1) as usize) {
			let call = runtime::tx().sla().heartbeat(
				runtime::runtime_types::bounded_collections::bounded_vec::BoundedVec(
					chunk.to_vec(),
				),
			);
			let sent = self
				.submitter
				.submit(node, &call, |_, _| Ok::<(), std::convert::Infallible>(()))
				.await;
			match sent {
				Ok(Ok(submitted)) => {
					self.metrics.action("heartbeat", true);
					tracing::debug!(deals = chunk.len(), nonce = submitted.nonce, "heartbeat sent");
				}
				Ok(Err(never)) => match never {},
				Err(e) => {
					self.metrics.action("heartbeat", false);
					tracing::warn!(error = %e, "cannot send a heartbeat");
				}
			}
		}
		last = Some(slot);
		if let Ok(mut slot) = self.last_heartbeat.lock() {
			*slot = last;
		}
	}
}

impl Agent {
	/// Of `deals`, those to name: the ones that passed their health check with their current
	/// manifest before, and the others once they pass it now (all asked at once, each within
	/// [`sla_health::CHECK_TIMEOUT`]).
	async fn passing_health_checks(&self, snapshot: &Snapshot, deals: Vec<u64>) -> Vec<u64> {
		let passed = self.sla_passed.lock().map(|p| p.clone()).unwrap_or_default();
		let (mut named, unchecked) = split_checked(snapshot, deals, &passed);
		let checks = unchecked.iter().filter_map(|id| snapshot.deals.get(id)).map(|deal| async {
			(deal.chain.id, deal.chain.manifest_hash, self.health_of(deal).await)
		});
		for (id, hash, verdict) in futures::future::join_all(checks).await {
			match verdict {
				Ok(()) => {
					self.metrics.action("health_check", true);
					tracing::info!(deal = id, "the deal passes its health check: named running");
					if let Ok(mut passed) = self.sla_passed.lock() {
						passed.insert(id, hash);
					}
					named.push(id);
				}
				Err(why) => {
					self.metrics.action("health_check", false);
					tracing::warn!(
						deal = id,
						reason = %why,
						"not named running: its SLA is measured once it passes its health check"
					);
				}
			}
		}
		if let Ok(mut passed) = self.sla_passed.lock() {
			passed.retain(|id, _| snapshot.deals.contains_key(id));
		}
		named.sort_unstable();
		named
	}

	/// Whether `deal` may be named running: the health check on chain is its manifest's, and
	/// its pods answer it through the gateway under the deal's host. Without a gateway (on
	/// Kubernetes, where each deal's Ingress serves its name) only the first is checked.
	async fn health_of(&self, deal: &DealView) -> Result<(), Unhealthy> {
		let Some(check) = &deal.sla else { return Ok(()) };
		let id = deal.chain.id;
		let manifest = match self.vault.get(id) {
			Ok(Some((hash, manifest))) if hash == deal.chain.manifest_hash => manifest,
			Ok(_) => return Err(Unhealthy::NoManifest),
			Err(e) => return Err(Unhealthy::NoAnswer(format!("cannot read the manifest: {e}"))),
		};
		sla_health::declared(check, &manifest)?;
		let Some(addr) = self.gateway.as_ref().and_then(|g| g.local_addr()) else { return Ok(()) };
		let host = self.specs.host(deal).ok_or(Unhealthy::Unnamed)?;
		sla_health::ask(addr, &host, check).await
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::{
		chain::{DealView, SlaRules},
		plan::ChainDeal,
	};

	fn deal(id: u64, state: ChainState, sla: bool) -> DealView {
		let sla = sla.then(podchain_manifest::HealthCheck::root);
		DealView {
			chain: ChainDeal {
				id,
				is_rent: false,
				state,
				manifest_hash: [0; 32],
				pending_manifest: None,
			},
			publisher: podchain_chain::AccountId::from([1; 32]),
			metered: true,
			reserved: Default::default(),
			settled_until: 0,
			billable_until: None,
			egress_limit: u64::MAX,
			name: None,
			sla,
		}
	}

	#[test]
	fn names_running_deals_with_sla_terms_only() {
		let active = ChainState::Active { accepted_at: 1 };
		let snapshot = Snapshot {
			number: 10,
			nonce: 0,
			deals: [
				deal(1, active, true),
				deal(2, active, false),
				deal(3, ChainState::Pending, true),
				deal(4, ChainState::OutOfFunds { accepted_at: 1 }, true),
				deal(5, active, true),
				deal(6, ChainState::Closing, true),
			]
			.into_iter()
			.map(|d| (d.chain.id, d))
			.collect(),
			rules: crate::billing::ReportRules {
				block_millis: 1000,
				max_egress_bytes_per_second: 1,
			},
			max_reports: 10,
			sla: SlaRules { probe_window: 10, max_deals: 100 },
		};
		// Deal 5 is not deployed (yet): it is not named.
		let running = BTreeSet::from([1, 2, 3, 4, 6]);
		assert_eq!(deals_to_name(&snapshot, &running), vec![1, 4]);

		// Deal 1 passed with the manifest it runs, deal 4 with an older one: 4 is asked again.
		let mut updated = snapshot.clone();
		if let Some(d) = updated.deals.get_mut(&4) {
			d.chain.manifest_hash = [4; 32];
		}
		let passed = BTreeMap::from([(1, [0; 32]), (4, [0; 32]), (9, [0; 32])]);
		assert_eq!(split_checked(&updated, vec![1, 4], &passed), (vec![1], vec![4]));
		assert_eq!(split_checked(&updated, vec![1, 4], &BTreeMap::new()), (vec![], vec![1, 4]));
	}

	#[test]
	fn a_heartbeat_is_due_every_half_window() {
		assert_eq!(slot_of(0, 10), 0);
		assert_eq!(slot_of(4, 10), 0);
		assert_eq!(slot_of(5, 10), 1);
		assert_eq!(slot_of(10, 10), 2);
		assert_eq!(slot_of(7, 0), 7, "a zero window is treated as two blocks");
	}
}
