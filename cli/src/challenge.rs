//! `podchain challenge ID`: asks the provider of one of your SLA deals to prove it still holds
//! a volume's committed snapshot, and waits for the chain's verdict.

use crate::{error::CliError, units::format_pod, Context};
use podchain_chain::{
	runtime::{self, runtime_types as types},
	tx::Submitter,
	AtBlock, Node,
};
use serde_json::json;
use std::time::{Duration, Instant};
use types::bounded_collections::bounded_vec::BoundedVec;

/// A volume's latest commitment, as the chain holds it.
struct Committed {
	name: String,
	chunk_count: u32,
	size: u64,
	at: u32,
}

/// The deal's committed volumes, sorted by name.
async fn committed_volumes(at: &AtBlock, id: u64) -> Result<Vec<Committed>, CliError> {
	let entry = at
		.storage()
		.entry(runtime::storage().storage_proofs().commitments())
		.map_err(CliError::chain)?;
	let mut entries = entry.iter((id,)).await.map_err(CliError::chain)?;
	let mut volumes = Vec::new();
	while let Some(entry) = entries.next().await {
		let entry = entry.map_err(CliError::chain)?;
		let (_, name) = entry.key().map_err(CliError::chain)?.decode().map_err(CliError::chain)?;
		let commitment = entry.value().decode().map_err(CliError::chain)?;
		volumes.push(Committed {
			name: String::from_utf8_lossy(&name.0).into_owned(),
			chunk_count: commitment.chunk_count,
			size: commitment.size,
			at: commitment.at,
		});
	}
	volumes.sort_by(|a, b| a.name.cmp(&b.name));
	Ok(volumes)
}

/// Whether deal `id` has an open challenge at `at`.
async fn open_challenge(at: &AtBlock, id: u64) -> Result<bool, CliError> {
	let entry = at
		.storage()
		.entry(runtime::storage().storage_proofs().challenges())
		.map_err(CliError::chain)?;
	Ok(entry.try_fetch((id,)).await.map_err(CliError::chain)?.is_some())
}

/// The volume to challenge: the one named, or the deal's only committed volume.
fn pick<'a>(
	id: u64,
	volumes: &'a [Committed],
	wanted: Option<&str>,
) -> Result<&'a Committed, CliError> {
	let names = || volumes.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ");
	match wanted {
		Some(name) => volumes.iter().find(|v| v.name == name).ok_or_else(|| {
			CliError::input(match volumes.is_empty() {
				true => format!("deal {id} has no committed volume yet"),
				false => format!("deal {id} has no committed volume {name:?} (committed: {})", names()),
			})
		}),
		None => match volumes {
			[] => Err(CliError::refused(format!(
				"deal {id} has no committed volume: its provider commits the snapshots of an SLA deal's volumes while it runs"
			))),
			[only] => Ok(only),
			_ => Err(CliError::input(format!(
				"deal {id} has several committed volumes; pick one with --volume ({})",
				names()
			))),
		},
	}
}

/// `podchain challenge ID [--volume NAME]`.
pub async fn run(
	ctx: &Context,
	id: u64,
	volume: Option<&str>,
	timeout: u64,
) -> Result<(), CliError> {
	let key = ctx.key()?;
	let node = ctx.connect().await?;
	let at = node.finalized().await?;
	let deal = podchain_chain::deals::deal(&at, id)
		.await?
		.ok_or_else(|| CliError::input(format!("no open deal {id} (it may have ended)")))?;
	if deal.publisher != key.account_id() {
		return Err(CliError::refused(format!("deal {id} belongs to another publisher")));
	}
	let volumes = committed_volumes(&at, id).await?;
	let target = pick(id, &volumes, volume)?;
	if open_challenge(&at, id).await? {
		return Err(CliError::refused(format!(
			"deal {id} already has an open challenge; wait for its verdict"
		)));
	}
	let call =
		runtime::tx().storage_proofs().challenge(id, BoundedVec(target.name.clone().into_bytes()));
	let events = Submitter::new(key).submit_and_finalize(&node, &call).await?;
	let challenged = events
		.find_first::<runtime::storage_proofs::events::Challenged>()
		.ok_or_else(|| CliError::chain("the challenge landed without its event"))?
		.map_err(CliError::chain)?;
	let filed_at = u32::try_from(node.finalized().await?.block_number()).unwrap_or(u32::MAX);
	ctx.out.stage(format!(
		"deal {id}: challenged volume {} (snapshot of block {}: {} bytes, {} chunks); answer due by block {}; a failure costs the provider {}",
		target.name,
		target.at,
		target.size,
		target.chunk_count,
		challenged.deadline,
		format_pod(challenged.penalty)
	));
	let verdict = wait_for_verdict(&node, id, filed_at, challenged.deadline, timeout).await?;
	let volume = target.name.as_str();
	match verdict {
		Verdict::Passed => ctx.out.result(
			json!({ "id": id, "volume": volume, "passed": true }),
			|| format!("deal {id}: the provider proved it holds volume {volume}'s snapshot"),
		),
		Verdict::Failed { reason, compensated } => ctx.out.result(
			json!({ "id": id, "volume": volume, "passed": false, "reason": reason,
				"compensated": compensated.to_string() }),
			|| {
				format!(
					"deal {id}: the provider failed the challenge of volume {volume} ({reason}); {} of its stake came to you",
					format_pod(compensated)
				)
			},
		),
	}
	Ok(())
}

enum Verdict {
	Passed,
	Failed { reason: &'static str, compensated: u128 },
}

/// Reads finalized blocks from `from` until the challenge of deal `id` is decided.
async fn wait_for_verdict(
	node: &Node,
	id: u64,
	from: u32,
	deadline: u32,
	timeout: u64,
) -> Result<Verdict, CliError> {
	let started = Instant::now();
	let mut next = from;
	loop {
		let head = u32::try_from(node.finalized().await?.block_number()).unwrap_or(u32::MAX);
		while next <= head {
			let block = node.api.at_block(u64::from(next)).await.map_err(CliError::chain)?;
			let events = block.events().fetch().await.map_err(CliError::chain)?;
			for passed in events.find::<runtime::storage_proofs::events::ChallengePassed>() {
				if passed.map_err(CliError::chain)?.deal == id {
					return Ok(Verdict::Passed);
				}
			}
			for failed in events.find::<runtime::storage_proofs::events::ChallengeFailed>() {
				let failed = failed.map_err(CliError::chain)?;
				if failed.deal == id {
					let reason = match failed.reason {
						types::pallet_storage_proofs::types::Failure::WrongProof => {
							"its proof did not verify"
						}
						types::pallet_storage_proofs::types::Failure::NoAnswer => {
							"no answer by the deadline"
						}
					};
					return Ok(Verdict::Failed { reason, compensated: failed.compensated });
				}
			}
			next = next.saturating_add(1);
		}
		if started.elapsed() > Duration::from_secs(timeout) {
			return Err(CliError::timeout(format!(
				"no verdict on deal {id}'s challenge within {timeout} s (answer due by block {deadline}, finalized {head}); it is decided by block {} at the latest",
				deadline.saturating_add(1)
			)));
		}
		tokio::time::sleep(Duration::from_millis(500)).await;
	}
}
