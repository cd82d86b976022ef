//! The agent's view of the chain: this provider's deals as read at one finalized block.

use crate::{
	billing::{ReportRules, Reserved},
	plan::{ChainDeal, ChainState},
	state,
};
use podchain_chain::{
	deals::{self, BillingMode, DealKind, DeploymentState},
	runtime::{self, runtime_types as types},
	AccountId, AtBlock, ChainError, Node,
};
use podchain_manifest::HealthCheck;
use std::collections::BTreeMap;

/// One of the provider's open deals, with what the agent needs beyond the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DealView {
	/// The deal as the plan sees it.
	pub chain: ChainDeal,
	/// The publisher, who alone may deliver manifests and read logs.
	pub publisher: AccountId,
	/// Billed by usage reports (rather than by reserved time).
	pub metered: bool,
	/// Reserved resources.
	pub reserved: Reserved,
	/// Billing is settled up to this block.
	pub settled_until: u32,
	/// The last block a usage report may reach now; `None` while pending.
	pub billable_until: Option<u32>,
	/// Most egress the publisher agreed to pay for, in bytes per second.
	pub egress_limit: u64,
	/// The deal's registered DNS label, if any.
	pub name: Option<String>,
	/// The health check of the deal's SLA terms, if it carries any (the agent names it in
	/// heartbeats once its pods pass the check).
	pub sla: Option<HealthCheck>,
}

/// The SLA pallet's rules for heartbeats, read from its constants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlaRules {
	/// Blocks per probe window.
	pub probe_window: u32,
	/// Most deals named in one heartbeat.
	pub max_deals: u32,
}

/// The chain as the agent sees it at one finalized block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
	/// The finalized block.
	pub number: u32,
	/// The provider account's nonce at that block (transactions of the account it contains).
	pub nonce: u64,
	/// The provider's open deals, by id.
	pub deals: BTreeMap<u64, DealView>,
	/// The chain's rules for usage reports.
	pub rules: ReportRules,
	/// Most lines in one `report_usage` call.
	pub max_reports: u32,
	/// The chain's rules for SLA heartbeats.
	pub sla: SlaRules,
}

/// Reads the provider's deals at `at` (with their names when `with_names`) in a few requests
/// to `node`, however many deals there are (see `state.rs`).
pub async fn snapshot(
	node: &Node,
	at: &AtBlock,
	provider: &AccountId,
	with_names: bool,
) -> Result<Snapshot, ChainError> {
	let number = u32::try_from(at.block_number()).unwrap_or(u32::MAX);
	// Constants come with the block's metadata: no request.
	let max_egress_bytes_per_second = at
		.constants()
		.entry(runtime::constants().market().max_egress_bytes_per_second())
		.map_err(ChainError::rpc)?;
	let max_reports = at
		.constants()
		.entry(runtime::constants().market().max_reports_per_call())
		.map_err(ChainError::rpc)?;
	let sla = SlaRules {
		probe_window: at
			.constants()
			.entry(runtime::constants().sla().probe_window())
			.map_err(ChainError::rpc)?,
		max_deals: at
			.constants()
			.entry(runtime::constants().sla().max_deals_per_heartbeat())
			.map_err(ChainError::rpc)?,
	};
	let storage = at.storage();
	let index = storage
		.entry(runtime::storage().market().provider_deployments())
		.map_err(ChainError::rpc)?;
	let prefix = index.iter_key((*provider,)).map_err(ChainError::rpc)?;
	// The slot duration the runtime bills with (Aura's, which the block-time pallet serves).
	// Requests go one at a time (see `state.rs`).
	let block_millis = state::runtime_call::<u64>(node, at, "AuraApi_slot_duration").await?;
	let index_keys = state::keys_under(node, at, &prefix).await?;
	let ids =
		index_keys.iter().map(|key| deal_id_in(&prefix, key)).collect::<Result<Vec<_>, _>>()?;

	// The provider's account (its nonce), its deals and their names: one request.
	let account_address = runtime::storage().system().account();
	let deals_address = runtime::storage().market().deployments();
	let names_address = runtime::storage().market().deployment_names();
	let account = storage.entry(account_address.clone()).map_err(ChainError::rpc)?;
	let deals = storage.entry(deals_address.clone()).map_err(ChainError::rpc)?;
	let names = storage.entry(names_address.clone()).map_err(ChainError::rpc)?;
	let mut keys = vec![account.fetch_key((*provider,)).map_err(ChainError::rpc)?];
	for id in &ids {
		keys.push(deals.fetch_key((*id,)).map_err(ChainError::rpc)?);
	}
	if with_names {
		for id in &ids {
			keys.push(names.fetch_key((*id,)).map_err(ChainError::rpc)?);
		}
	}
	let mut values = state::raw_values(node, at, &keys).await?;
	let name_values = values.split_off((1 + ids.len()).min(values.len()));
	let deal_values = values.split_off(1.min(values.len()));
	let nonce = state::decode_values(at, &account_address, values)?
		.into_iter()
		.flatten()
		.next()
		.map_or(0, |info| u64::from(info.nonce));
	let deal_values = state::decode_values(at, &deals_address, deal_values)?;
	let mut name_values = state::decode_values(at, &names_address, name_values)?.into_iter();

	let mut views = BTreeMap::new();
	for (id, deal) in ids.into_iter().zip(deal_values) {
		let name = name_values
			.next()
			.flatten()
			.and_then(|(label, _deposit)| String::from_utf8(label.0).ok());
		// Closed since the index was written: not open any more.
		if let Some(deal) = deal {
			views.insert(id, view(id, deal, number, name));
		}
	}
	Ok(Snapshot {
		number,
		nonce,
		deals: views,
		rules: ReportRules { block_millis, max_egress_bytes_per_second },
		max_reports,
		sla,
	})
}

/// The deal id at the end of a key of the provider index under `prefix`: the index's second
/// key is hashed with `Twox64Concat`, 8 bytes of hash followed by the id itself.
fn deal_id_in(prefix: &[u8], key: &[u8]) -> Result<u64, ChainError> {
	let id = key
		.strip_prefix(prefix)
		.filter(|rest| rest.len() == 16)
		.and_then(|rest| <[u8; 8]>::try_from(&rest[8..]).ok())
		.ok_or_else(|| {
			ChainError::rpc(podchain_chain::subxt::Error::Other(
				"a key of the provider's deal index is not (hash, deal id)".into(),
			))
		})?;
	Ok(u64::from_le_bytes(id))
}

/// A deal as read from storage, in the agent's terms.
pub fn view(id: u64, deal: deals::Deal, now: u32, name: Option<String>) -> DealView {
	let (state, billable_until) = match deal.state {
		DeploymentState::Pending { .. } => (ChainState::Pending, None),
		DeploymentState::Active { accepted_at } => (ChainState::Active { accepted_at }, Some(now)),
		// The grace period runs and is billed (as the deal's debt if its escrow cannot pay).
		DeploymentState::OutOfFunds { accepted_at, grace_ends, .. } => {
			(ChainState::OutOfFunds { accepted_at }, Some(now.min(grace_ends)))
		}
		DeploymentState::Closing { closed_at, .. } => (ChainState::Closing, Some(closed_at)),
	};
	let r = &deal.resources;
	DealView {
		chain: ChainDeal {
			id,
			is_rent: matches!(deal.kind, DealKind::Rent { .. }),
			state,
			manifest_hash: deal.manifest_hash,
			pending_manifest: deal.pending_manifest,
		},
		publisher: deal.publisher,
		metered: deal.billing == BillingMode::Metered,
		reserved: Reserved {
			cpu_millicores: r.cpu_millicores,
			memory_mib: r.memory_mib,
			storage_gib: r.storage_gib,
			gpus: r.gpus,
		},
		settled_until: deal.settled_until,
		billable_until,
		egress_limit: deal.egress_limit,
		name,
		sla: deal.sla.map(|terms| health_check(&terms.health)),
	}
}

/// A health check as the chain stores it, in the manifest's terms. The chain admits only
/// visible ASCII, so nothing is lost in the conversion.
fn health_check(check: &types::podchain_primitives::HealthCheck) -> HealthCheck {
	let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
	HealthCheck {
		path: text(&check.path.0),
		status: check.expect_status,
		body: (!check.expect_body.0.is_empty()).then(|| text(&check.expect_body.0)),
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn deal_ids_are_read_from_the_ends_of_index_keys() {
		let prefix = [1u8; 80];
		let mut key = prefix.to_vec();
		key.extend([9u8; 8]); // the id's Twox64 hash
		key.extend(42u64.to_le_bytes());
		assert_eq!(deal_id_in(&prefix, &key).expect("an id"), 42);
		assert!(deal_id_in(&prefix, &key[..key.len() - 1]).is_err(), "short");
		assert!(deal_id_in(&[2u8; 80], &key).is_err(), "another prefix");
	}
}
