//! Billing on chain: one `report_usage` batch at a time, recorded before it is sent and
//! settled from finalized state, so a crash at any point neither loses nor doubles usage.

use crate::{
	agent::Agent,
	billing::{self, Billable},
	chain::Snapshot,
	metrics::kind,
	store::{InFlight, ReportLine},
};
use podchain_chain::{deals::UsageReport, runtime, Node};

/// How the batch in flight stands at a finalized block.
#[derive(Debug, PartialEq, Eq)]
pub enum Settlement {
	/// It may still land: wait.
	Open,
	/// It is decided: these lines were billed, the others were not.
	Decided(Vec<ReportLine>),
}

/// Decides the batch in flight from finalized state: once the account's nonce is past the
/// batch's, its transaction is in a finalized block, and each line was billed if the deal's
/// billing moved to the line's end (or the deal is gone: its meter goes with it); once the
/// chain is past the batch's mortality without that, nothing was billed.
pub fn settle(batch: &InFlight, snapshot: &Snapshot) -> Settlement {
	if snapshot.nonce > batch.nonce {
		let billed = batch
			.lines
			.iter()
			.filter(|line| {
				snapshot.deals.get(&line.deal).is_none_or(|d| d.settled_until >= line.period_end)
			})
			.cloned()
			.collect();
		Settlement::Decided(billed)
	} else if snapshot.number > batch.valid_until {
		Settlement::Decided(Vec::new())
	} else {
		Settlement::Open
	}
}

/// The lines to report at `snapshot`: every metered deal with unsettled blocks, at most
/// `max_reports` of them (the longest unsettled first), with its metered usage.
pub fn lines(
	snapshot: &Snapshot,
	meter_of: impl Fn(u64) -> Option<crate::metering::Usage>,
) -> Vec<ReportLine> {
	let mut lines: Vec<ReportLine> = snapshot
		.deals
		.values()
		.filter(|d| d.metered)
		.filter_map(|deal| {
			let billable = Billable {
				deal: deal.chain.id,
				settled_until: deal.settled_until,
				until: deal.billable_until?,
				reserved: deal.reserved,
				egress_limit: deal.egress_limit,
			};
			billing::report_line(&billable, meter_of(deal.chain.id)?, &snapshot.rules)
		})
		.collect();
	lines.sort_by_key(|l| (l.period_start, l.deal));
	lines.truncate(snapshot.max_reports as usize);
	lines
}

fn to_report(line: &ReportLine) -> UsageReport<u32> {
	UsageReport {
		deployment: line.deal,
		period_start: line.period_start,
		period_end: line.period_end,
		cpu_millicore_seconds: line.usage.cpu_millicore_seconds,
		memory_mib_seconds: line.usage.memory_mib_seconds,
		storage_gib_seconds: line.usage.storage_gib_seconds,
		gpu_seconds: line.usage.gpu_seconds,
		egress_bytes: line.usage.egress_bytes,
	}
}

impl Agent {
	/// Settles the batch in flight, then sends the next one when it is due.
	pub(crate) async fn bill(&self, node: &Node, snapshot: &Snapshot) {
		match self.store.in_flight() {
			Ok(Some(batch)) => match settle(&batch, snapshot) {
				Settlement::Open => return,
				Settlement::Decided(billed) => {
					if let Err(e) = self.store.commit_report(&billed) {
						self.metrics.error("store");
						tracing::error!(error = %e, "cannot record the report's outcome");
						return;
					}
					self.count_billed(&billed);
					tracing::info!(
						nonce = batch.nonce,
						billed = billed.len(),
						of = batch.lines.len(),
						"usage report settled"
					);
				}
			},
			Ok(None) => {}
			Err(e) => {
				self.metrics.error("store");
				tracing::error!(error = %e, "cannot read the report in flight");
				return;
			}
		}
		if snapshot.rules.block_millis == 0 {
			self.metrics.error("report");
			tracing::error!("the chain reports a block time of 0: not reporting usage");
			return;
		}
		let due = self.last_report.lock().map_or(true, |last| {
			last.is_none_or(|b| {
				snapshot.number >= b.saturating_add(self.settings.report_every_blocks)
			})
		});
		// Not before the deals were sampled since the start (see `Agent::sampled_since_start`).
		if !due || !self.sampled_since_start.load(std::sync::atomic::Ordering::SeqCst) {
			return;
		}
		let lines = lines(snapshot, |deal| self.store.meter(deal).ok().map(|m| m.pending()));
		if lines.is_empty() {
			return;
		}
		let reports = lines.iter().map(to_report).collect();
		let call = runtime::tx().market().report_usage(
			runtime::runtime_types::bounded_collections::bounded_vec::BoundedVec(reports),
		);
		let record = |nonce, valid_until| {
			self.store.begin_report(&InFlight { nonce, valid_until, lines: lines.clone() })
		};
		match self.submitter.submit(node, &call, record).await {
			Ok(Ok(submitted)) => {
				if let Ok(mut last) = self.last_report.lock() {
					*last = Some(snapshot.number);
				}
				tracing::info!(lines = lines.len(), nonce = submitted.nonce, "usage report sent");
				let metrics = self.metrics.clone();
				tokio::spawn(async move {
					// The outcome is read from finalized state; this only reports failures early.
					if let Err(e) = submitted.progress.wait_for_finalized_success().await {
						metrics.error("report");
						tracing::warn!(error = %e, "usage report failed");
					}
				});
			}
			Ok(Err(e)) => {
				self.metrics.error("store");
				tracing::error!(error = %e, "cannot record the report: not sent");
			}
			Err(e) => {
				self.metrics.error("report");
				tracing::warn!(error = %e, "cannot send the usage report");
			}
		}
	}

	fn count_billed(&self, billed: &[ReportLine]) {
		for line in billed {
			let u = &line.usage;
			for (resource, amount) in [
				("cpu_millicore_seconds", u.cpu_millicore_seconds),
				("memory_mib_seconds", u.memory_mib_seconds),
				("storage_gib_seconds", u.storage_gib_seconds),
				("gpu_seconds", u.gpu_seconds),
				("egress_bytes", u.egress_bytes),
			] {
				self.metrics.usage_reported.get_or_create(&kind(resource)).inc_by(amount);
			}
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::{
		billing::ReportRules,
		chain::DealView,
		metering::Usage,
		plan::{ChainDeal, ChainState},
	};
	use podchain_chain::AccountId;
	use std::collections::BTreeMap;

	fn deal(id: u64, settled_until: u32, state: ChainState, until: Option<u32>) -> DealView {
		DealView {
			chain: ChainDeal {
				id,
				is_rent: false,
				state,
				manifest_hash: [0; 32],
				pending_manifest: None,
			},
			publisher: AccountId::from([1; 32]),
			metered: true,
			reserved: podchain_cluster::objects::Reserved {
				cpu_millicores: 1000,
				memory_mib: 128,
				storage_gib: 1,
				gpus: 0,
			},
			settled_until,
			billable_until: until,
			egress_limit: u64::MAX,
			name: None,
			sla: None,
		}
	}

	fn snapshot(number: u32, nonce: u64, deals: Vec<DealView>) -> Snapshot {
		Snapshot {
			number,
			nonce,
			deals: deals.into_iter().map(|d| (d.chain.id, d)).collect::<BTreeMap<_, _>>(),
			rules: ReportRules { block_millis: 1000, max_egress_bytes_per_second: 1 << 20 },
			max_reports: 2,
			sla: Default::default(),
		}
	}

	fn line(deal: u64, start: u32, end: u32) -> ReportLine {
		let usage = Usage { cpu_millicore_seconds: 5, ..Default::default() };
		ReportLine { deal, period_start: start, period_end: end, usage, measured: usage }
	}

	#[test]
	fn a_batch_is_decided_only_from_finalized_state() {
		let batch = InFlight {
			nonce: 7,
			valid_until: 50,
			lines: vec![line(1, 10, 20), line(2, 10, 20), line(3, 10, 20)],
		};
		let active = ChainState::Active { accepted_at: 0 };
		// Not included yet and still valid: wait, even though nothing moved.
		let waiting = snapshot(30, 7, vec![deal(1, 10, active, Some(30))]);
		assert_eq!(settle(&batch, &waiting), Settlement::Open);
		// Included: deal 1 moved to 20 (billed), deal 2 did not (refused), deal 3 is gone.
		let included =
			snapshot(31, 8, vec![deal(1, 20, active, Some(31)), deal(2, 10, active, Some(31))]);
		assert_eq!(
			settle(&batch, &included),
			Settlement::Decided(vec![line(1, 10, 20), line(3, 10, 20)])
		);
		// Never included and now dead: nothing billed.
		let expired = snapshot(51, 7, vec![deal(1, 10, active, Some(51))]);
		assert_eq!(settle(&batch, &expired), Settlement::Decided(vec![]));
	}

	#[test]
	fn lines_cover_unsettled_metered_deals_longest_first() {
		let active = ChainState::Active { accepted_at: 0 };
		let mut reserved = deal(4, 0, active, Some(40));
		reserved.metered = false;
		let snap = snapshot(
			40,
			0,
			vec![
				deal(1, 30, active, Some(40)),
				deal(2, 10, active, Some(40)),
				deal(3, 0, ChainState::Pending, None),
				reserved,
				deal(5, 20, ChainState::Closing, Some(35)),
				deal(6, 40, active, Some(40)),
			],
		);
		let usage = Usage { cpu_millicore_seconds: 3, ..Default::default() };
		let lines = lines(&snap, |_| Some(usage));
		let periods: Vec<_> =
			lines.iter().map(|l| (l.deal, l.period_start, l.period_end)).collect();
		// Deals 2, 5 and 1 are due; two per call, the oldest periods first.
		assert_eq!(periods, vec![(2, 10, 40), (5, 20, 35)]);
	}

	#[test]
	fn a_report_carries_every_resource_of_its_line() {
		let usage = Usage {
			cpu_millicore_seconds: 1,
			memory_mib_seconds: 2,
			storage_gib_seconds: 3,
			gpu_seconds: 4,
			egress_bytes: 5,
		};
		let line = ReportLine { deal: 9, period_start: 10, period_end: 20, usage, measured: usage };
		let report = to_report(&line);
		assert_eq!((report.deployment, report.period_start, report.period_end), (9, 10, 20));
		assert_eq!(
			[
				report.cpu_millicore_seconds,
				report.memory_mib_seconds,
				report.storage_gib_seconds,
				report.gpu_seconds,
				report.egress_bytes
			],
			[1, 2, 3, 4, 5]
		);
	}
}
