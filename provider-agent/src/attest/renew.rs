//! Keeping the provider attested while the agent runs: attest at start when the chain holds no
//! current attestation for the agent's keys, and again before it expires. A failure is logged
//! and retried with backoff; it never stops the agent serving deals.

use super::{chain_time, record, AttestError, Attestor, Record};
use crate::{agent::Agent, metrics::Outcome};
use std::{sync::Arc, time::Duration};

/// Longest between looks at the chain's record (it may drop the attestation meanwhile: a new
/// peer id, a new sealing key).
const RECHECK: Duration = Duration::from_secs(600);
/// First wait after a failure; doubled each time up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(60);
/// Longest wait after a failure the operator need not fix.
const MAX_BACKOFF: Duration = Duration::from_secs(1800);
/// Wait after a failure only the operator can fix (no TDX, no registration).
const OPERATOR_BACKOFF: Duration = Duration::from_secs(3600);
/// Most time before expiry to attest again.
const MAX_MARGIN_SECS: u64 = 2 * 24 * 3600;

/// Seconds before `record` expires at which to attest again: a quarter of its lifetime, at
/// most two days.
pub fn renewal_margin(record: &Record) -> u64 {
	(record.expires_at.saturating_sub(record.verified_at) / 4).min(MAX_MARGIN_SECS)
}

/// Seconds from `now` until the agent should attest: 0 when it should now.
pub fn due_in(record: Option<&Record>, now: u64) -> u64 {
	match record {
		Some(record) if record.same_sealing_key => {
			record.expires_at.saturating_sub(renewal_margin(record)).saturating_sub(now)
		}
		_ => 0,
	}
}

/// Attests whenever due, until the task is dropped.
pub async fn renew_forever(attestor: Attestor, agent: Arc<Agent>) {
	let mut failures = 0u32;
	loop {
		let wait = match renew_once(&attestor, &agent).await {
			Ok(wait) => {
				failures = 0;
				wait
			}
			Err(e) => {
				agent.metrics.error("attestation");
				let wait = if e.needs_operator() {
					OPERATOR_BACKOFF
				} else {
					(FIRST_BACKOFF * 2u32.saturating_pow(failures)).min(MAX_BACKOFF)
				};
				failures = failures.saturating_add(1);
				tracing::error!(error = %e, retry_in = ?wait, "attestation failed; deals are served all the same");
				wait
			}
		};
		tokio::time::sleep(wait).await;
	}
}

/// Looks at the chain's record and attests if due; how long to wait before looking again.
async fn renew_once(attestor: &Attestor, agent: &Agent) -> Result<Duration, AttestError> {
	let node = podchain_chain::connect(&agent.settings.rpc_url).await?;
	let at = node.finalized().await?;
	let current = record(&at, &agent.provider, &attestor.sealing_key).await?;
	let now = chain_time(&at).await?;
	agent.metrics.attestation_expires_at.set(current.map_or(0, |r| r.expires_at as i64));
	let due = due_in(current.as_ref(), now);
	if due > 0 {
		tracing::debug!(due_in_secs = due, "attestation current");
		return Ok(RECHECK.min(Duration::from_secs(due)));
	}
	tracing::info!(
		report_dir = %attestor.tsm.report_dir().display(),
		expires_at = current.map(|r| r.expires_at),
		"attesting"
	);
	let outcome = attestor.attest(&node, &agent.submitter).await;
	let label = if outcome.is_ok() { "ok" } else { "error" };
	agent
		.metrics
		.actions
		.get_or_create(&Outcome { action: "attest".into(), outcome: label.into() })
		.inc();
	let attested = outcome?;
	agent.metrics.attestation_expires_at.set(attested.expires_at as i64);
	tracing::info!(
		tee = %attested.tee,
		tcb_status = %attested.tcb_status,
		expires_at = attested.expires_at,
		"attested"
	);
	Ok(RECHECK)
}

#[cfg(test)]
mod tests {
	use super::*;

	fn record(verified_at: u64, expires_at: u64) -> Record {
		Record { verified_at, expires_at, same_sealing_key: true }
	}

	#[test]
	fn attests_a_quarter_of_the_lifetime_before_expiry_at_most_two_days() {
		// 30 days: two days before.
		let long = record(0, 30 * 86_400);
		assert_eq!(renewal_margin(&long), 2 * 86_400);
		assert_eq!(due_in(Some(&long), 0), 28 * 86_400);
		assert_eq!(due_in(Some(&long), 28 * 86_400), 0);
		// 4 days: one day before.
		let short = record(1000, 1000 + 4 * 86_400);
		assert_eq!(renewal_margin(&short), 86_400);
		assert_eq!(due_in(Some(&short), 1000), 3 * 86_400);
		// Expired, absent or for another sealing key: now.
		assert_eq!(due_in(Some(&short), 10 * 86_400), 0);
		assert_eq!(due_in(None, 0), 0);
		let other_key = Record { same_sealing_key: false, ..long };
		assert_eq!(due_in(Some(&other_key), 0), 0);
	}
}
