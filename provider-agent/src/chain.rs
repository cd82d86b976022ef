//! The agent's view of the chain: this provider's deals as read at one finalized block.

use crate::{
	billing::{ReportRules, Reserved},
	plan::{ChainDeal, ChainState},
};
use podchain_chain::{
	deals::{self, BillingMode, DealKind, DeploymentState},
	runtime, AccountId, AtBlock, ChainError,
};
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
	/// Whether the deal carries SLA terms (the agent names it in heartbeats).
	pub sla: bool,
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

/// Reads the provider's deals at `at` (with their names when `with_names`).
pub async fn snapshot(
	at: &AtBlock,
	provider: &AccountId,
	with_names: bool,
) -> Result<Snapshot, ChainError> {
	let number = u32::try_from(at.block_number()).unwrap_or(u32::MAX);
	let nonce = at.transactions().account_nonce(provider).await.map_err(ChainError::rpc)?;
	// The slot duration the runtime bills with (Aura's, which the block-time pallet serves).
	let block_millis = at
		.runtime_apis()
		.call(runtime::runtime_apis().aura_api().slot_duration())
		.await
		.map_err(ChainError::rpc)?
		.0;
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
	let mut views = BTreeMap::new();
	for (id, deal) in deals::of_provider(at, provider).await? {
		let name = if with_names { name_of(at, id).await? } else { None };
		views.insert(id, view(id, deal, number, name));
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

/// The DNS label registered for deal `id`.
async fn name_of(at: &AtBlock, id: u64) -> Result<Option<String>, ChainError> {
	let names = at
		.storage()
		.entry(runtime::storage().market().deployment_names())
		.map_err(ChainError::rpc)?;
	let Some(value) = names.try_fetch((id,)).await.map_err(ChainError::rpc)? else {
		return Ok(None);
	};
	let (label, _deposit) = value.decode().map_err(ChainError::rpc)?;
	Ok(String::from_utf8(label.0).ok())
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
		sla: deal.sla.is_some(),
	}
}
