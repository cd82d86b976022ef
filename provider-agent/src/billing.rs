//! Turning a deal's metered usage into a usage report the chain accepts.
//!
//! The chain refuses a report whose usage exceeds the reserved resources over its period, and
//! refuses a period that does not start where the last one ended. So a line covers
//! `[settled_until, billable_until)` exactly, and its usage is capped at what the chain allows.
//! The samples' clock and the chain's blocks drift apart a little from round to round, so a
//! container busy at its limit looks busier than it over one period and idler over the next:
//! the excess, up to one period's cap, stays in the meter for the next line rather than being
//! lost. Beyond that it is dropped: no container runs above its limit for long.

use crate::{metering::Usage, store::ReportLine};

/// Resources a deal reserved, in the chain's units.
pub use podchain_cluster::objects::Reserved;

/// The chain's rules for usage reports, read from its constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportRules {
	/// Milliseconds per block (the chain bills `blocks x this / 1000` seconds).
	pub block_millis: u64,
	/// Most egress a report may claim per second.
	pub max_egress_bytes_per_second: u64,
}

/// Where a deal's billing stands on chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Billable {
	/// The deal.
	pub deal: u64,
	/// Billing is settled up to this block; the next period starts here.
	pub settled_until: u32,
	/// The last block a report may reach now (the finalized block for a running deal, the
	/// close for a closing one).
	pub until: u32,
	/// Reserved resources.
	pub reserved: Reserved,
	/// Most egress the publisher agreed to pay for, in bytes per second.
	pub egress_limit: u64,
}

/// The report line for `billable` given the usage measured since the last report, or `None`
/// when there is no period to report yet.
pub fn report_line(
	billable: &Billable,
	measured: Usage,
	rules: &ReportRules,
) -> Option<ReportLine> {
	if billable.until <= billable.settled_until {
		return None;
	}
	let blocks = u64::from(billable.until - billable.settled_until);
	let seconds = blocks.saturating_mul(rules.block_millis) / 1000;
	let cap = |reserved: u32| u64::from(reserved).saturating_mul(seconds);
	let r = &billable.reserved;
	let caps = Usage {
		cpu_millicore_seconds: cap(r.cpu_millicores),
		memory_mib_seconds: cap(r.memory_mib),
		storage_gib_seconds: cap(r.storage_gib),
		gpu_seconds: cap(r.gpus),
		egress_bytes: rules
			.max_egress_bytes_per_second
			.min(billable.egress_limit)
			.saturating_mul(seconds),
	};
	let each = |f: fn(u64, u64) -> u64| Usage {
		cpu_millicore_seconds: f(measured.cpu_millicore_seconds, caps.cpu_millicore_seconds),
		memory_mib_seconds: f(measured.memory_mib_seconds, caps.memory_mib_seconds),
		storage_gib_seconds: f(measured.storage_gib_seconds, caps.storage_gib_seconds),
		gpu_seconds: f(measured.gpu_seconds, caps.gpu_seconds),
		egress_bytes: f(measured.egress_bytes, caps.egress_bytes),
	};
	Some(ReportLine {
		deal: billable.deal,
		period_start: billable.settled_until,
		period_end: billable.until,
		usage: each(|measured, cap| measured.min(cap)),
		// What leaves the meter: the billed part, and any excess beyond one period's cap.
		measured: each(|measured, cap| measured.min(cap).max(measured.saturating_sub(cap))),
	})
}

#[cfg(test)]
mod tests {
	use super::*;

	const RULES: ReportRules = ReportRules { block_millis: 6000, max_egress_bytes_per_second: 100 };

	fn billable(settled_until: u32, until: u32) -> Billable {
		Billable {
			deal: 3,
			settled_until,
			until,
			reserved: Reserved { cpu_millicores: 500, memory_mib: 64, storage_gib: 1, gpus: 0 },
			egress_limit: u64::MAX,
		}
	}

	#[test]
	fn a_line_covers_the_unsettled_blocks() {
		let measured =
			Usage { cpu_millicore_seconds: 1_000, egress_bytes: 10, ..Default::default() };
		let line = report_line(&billable(10, 20), measured, &RULES).unwrap();
		assert_eq!((line.period_start, line.period_end), (10, 20));
		assert_eq!(line.usage, measured);
		assert_eq!(line.measured, measured);
	}

	#[test]
	fn usage_is_capped_at_what_the_chain_allows() {
		// 10 blocks of 6 s: 60 s x 500 millicores = 30,000; 60 s x 100 B/s = 6,000 B.
		let measured = Usage {
			cpu_millicore_seconds: 31_000,
			memory_mib_seconds: 64 * 60 + 5,
			storage_gib_seconds: 60,
			gpu_seconds: 0,
			egress_bytes: 7_000,
		};
		let line = report_line(&billable(10, 20), measured, &RULES).unwrap();
		assert_eq!(line.usage.cpu_millicore_seconds, 30_000);
		assert_eq!(line.usage.memory_mib_seconds, 64 * 60);
		assert_eq!(line.usage.storage_gib_seconds, 60);
		assert_eq!(line.usage.egress_bytes, 6_000);
		// The excess stays in the meter for the next line.
		assert_eq!(line.measured, line.usage);
	}

	#[test]
	fn the_excess_carried_is_at_most_one_periods_cap() {
		let measured = Usage { cpu_millicore_seconds: 70_000, ..Default::default() };
		let line = report_line(&billable(10, 20), measured, &RULES).unwrap();
		assert_eq!(line.usage.cpu_millicore_seconds, 30_000);
		// 30,000 carried; the other 10,000 dropped with what was billed.
		assert_eq!(line.measured.cpu_millicore_seconds, 40_000);
	}

	#[test]
	fn egress_is_capped_at_the_deals_own_limit() {
		// The publisher agreed to 20 B/s: 60 s x 20 = 1,200 B, below the chain's 6,000.
		let limited = Billable { egress_limit: 20, ..billable(10, 20) };
		let measured = Usage { egress_bytes: 7_000, ..Default::default() };
		let line = report_line(&limited, measured, &RULES).unwrap();
		assert_eq!(line.usage.egress_bytes, 1_200);
	}

	#[test]
	fn nothing_to_report_without_a_period() {
		assert_eq!(report_line(&billable(20, 20), Usage::default(), &RULES), None);
		assert_eq!(report_line(&billable(21, 20), Usage::default(), &RULES), None);
	}

	#[test]
	fn gpus_are_billed_as_held_within_the_cap() {
		use crate::metering::Meter;
		// One block of 6 s.
		let with_gpus = |gpus| Billable {
			reserved: Reserved { gpus, ..billable(10, 11).reserved },
			..billable(10, 11)
		};
		let held = |gpus, seconds: u64| {
			let mut meter = Meter::default();
			meter.hold_gpus(1_000, gpus);
			meter.hold_gpus(1_000 + seconds * 1000, gpus);
			meter.pending()
		};
		let line = |gpus, measured| report_line(&with_gpus(gpus), measured, &RULES).unwrap();
		assert_eq!(line(0, held(0, 6)).usage.gpu_seconds, 0);
		assert_eq!(line(2, held(2, 6)).usage.gpu_seconds, 12);
		// Held longer than the period (the samples' clock ahead of the blocks'): the chain's
		// cap, 2 GPUs x 6 s; the excess waits for the next line.
		let late = line(2, held(2, 8));
		assert_eq!(late.usage.gpu_seconds, 12);
		assert_eq!(late.measured.gpu_seconds, 12);
		// A deal that reserved none is billed none, whatever is measured.
		assert_eq!(line(0, held(2, 6)).usage.gpu_seconds, 0);
	}
}
