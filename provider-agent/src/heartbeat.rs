//! SLA heartbeats: the provider names the deals it runs, twice per probe window.
//!
//! The SLA pallet counts a deal as up in a probe window only if the probers found the
//! provider up *and* the agent named the deal in that window. Heartbeats go out at the first
//! finalized block of each half window, so one lands in every window despite finality lag.

use crate::{agent::Agent, chain::Snapshot, plan::ChainState};
use podchain_chain::{runtime, Node};
use std::collections::BTreeSet;

/// The deals to name: running on the chain, with SLA terms, and deployed in the cluster.
pub fn deals_to_name(snapshot: &Snapshot, running: &BTreeSet<u64>) -> Vec<u64> {
	snapshot
		.deals
		.values()
		.filter(|d| d.sla)
		.filter(|d| {
			matches!(d.chain.state, ChainState::Active { .. } | ChainState::OutOfFunds { .. })
		})
		.map(|d| d.chain.id)
		.filter(|id| running.contains(id))
		.collect()
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
		let deals = deals_to_name(snapshot, running);
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

#[cfg(test)]
mod tests {
	use super::*;
	use crate::{
		chain::{DealView, SlaRules},
		plan::ChainDeal,
	};

	fn deal(id: u64, state: ChainState, sla: bool) -> DealView {
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
