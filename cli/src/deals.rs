//! `podchain status`, `bill`, `top-up`, `update`, `close` and `name register`: a publisher's
//! deals on chain.

use crate::{
	deploy::{poll, status_query, PodsWatch, Seen},
	error::CliError,
	output::table,
	provider_link::{self, Signer},
	units::format_pod,
	Context,
};
use podchain_chain::{
	deals::{self, CloseReason, Deal, DealKind, DeploymentState},
	runtime::{self, runtime_types as types},
	tx::Submitter,
	AccountKey, AtBlock, Balance, Node,
};
use podchain_manifest::Manifest;
use podchain_p2p::{
	protocol::{LogsRequest, ManifestRequest, RejectReason},
	status::PodsStatus,
	P2pError,
};
use serde_json::{json, Value};
use std::{path::Path, time::Duration};

/// Blocks of recent state a pruning node keeps (its default); older events cannot be read.
const STATE_WINDOW: u32 = 250;

fn state_name(deal: &Deal) -> String {
	match deal.state {
		DeploymentState::Pending { .. } => "pending".into(),
		DeploymentState::Active { .. } => "active".into(),
		DeploymentState::OutOfFunds { grace_ends, .. } => {
			format!("out of funds (closes at block {grace_ends})")
		}
		DeploymentState::Closing { settle_by, .. } => {
			format!("closing (settles by block {settle_by})")
		}
	}
}

fn kind_name(deal: &Deal) -> &'static str {
	match deal.kind {
		DealKind::Deployment => "deployment",
		DealKind::Rent { .. } => "rent",
		DealKind::InRent { .. } => "in rent",
	}
}

fn deal_json(id: u64, deal: &Deal) -> Value {
	json!({
		"id": id,
		"kind": kind_name(deal),
		"provider": deal.provider.to_string(),
		"state": state_name(deal),
		"manifest_hash": format!("0x{}", hex(&deal.manifest_hash)),
		"pending_manifest": deal.pending_manifest.map(|h| format!("0x{}", hex(&h))),
		"resources": { "cpu_millicores": deal.resources.cpu_millicores, "memory_mib": deal.resources.memory_mib,
			"storage_gib": deal.resources.storage_gib, "gpus": deal.resources.gpus },
		"escrow": deal.escrow.to_string(),
		"debt": deal.debt.to_string(),
		"egress_limit_bytes_per_second": deal.egress_limit,
		"settled_until": deal.settled_until,
	})
}

fn hex(bytes: &[u8]) -> String {
	bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deal `id`, which must belong to `key`'s account.
async fn own_deal(at: &AtBlock, key: &AccountKey, id: u64) -> Result<Deal, CliError> {
	let deal = deals::deal(at, id)
		.await?
		.ok_or_else(|| CliError::input(format!("no open deal {id} (it may have ended)")))?;
	if deal.publisher != key.account_id() {
		return Err(CliError::refused(format!("deal {id} belongs to another publisher")));
	}
	Ok(deal)
}

/// `podchain status [ID]`.
pub async fn status(ctx: &Context, id: Option<u64>) -> Result<(), CliError> {
	let key = ctx.key()?;
	let node = ctx.connect().await?;
	let at = node.finalized().await?;
	let Some(id) = id else {
		let deals = deals::of_publisher(&at, &key.account_id()).await?;
		let rows: Vec<Vec<String>> = deals
			.iter()
			.map(|(id, d)| {
				vec![
					id.to_string(),
					kind_name(d).into(),
					state_name(d),
					d.provider.to_string(),
					format_pod(d.escrow),
				]
			})
			.collect();
		let json_rows: Vec<Value> = deals.iter().map(|(id, d)| deal_json(*id, d)).collect();
		ctx.out.result(json!(json_rows), || {
			if rows.is_empty() {
				return "no open deals".into();
			}
			table(&["ID", "KIND", "STATE", "PROVIDER", "ESCROW"], &rows)
		});
		return Ok(());
	};
	let deal = own_deal(&at, &key, id).await?;
	let (pods, traffic) = pods_status(&at, &key, id, &deal).await;
	let mut value = deal_json(id, &deal);
	value["pods"] = json!(pods);
	if let Some(t) = traffic {
		value["traffic"] = json!({
			"responses": { "1xx": t.responses[0], "2xx": t.responses[1], "3xx": t.responses[2],
				"4xx": t.responses[3], "5xx": t.responses[4] },
			"bytes_in": t.bytes_in, "bytes_out": t.bytes_out,
		});
	}
	let traffic = traffic.map_or_else(String::new, |t| format!("\nhttp      {t}"));
	ctx.out.result(value, || {
		let r = &deal.resources;
		format!(
			"deal      {id} ({})\nprovider  {}\nstate     {}\npods      {pods}{traffic}\nreserved  {}m CPU, {} MiB, {} GiB\negress    up to {} B/s\nescrow    {}{}\nsettled   up to block {}",
			kind_name(&deal),
			deal.provider,
			state_name(&deal),
			r.cpu_millicores,
			r.memory_mib,
			r.storage_gib,
			deal.egress_limit,
			format_pod(deal.escrow),
			if deal.debt > 0 {
				format!("\ndebt      {} (a top-up pays it first)", format_pod(deal.debt))
			} else {
				String::new()
			},
			deal.settled_until,
		)
	});
	Ok(())
}

/// What the provider's agent says of the deal's pods (or why it cannot be asked), and the
/// deal's HTTP traffic through its gateway if it serves the deal's name.
async fn pods_status(
	at: &AtBlock,
	key: &AccountKey,
	id: u64,
	deal: &Deal,
) -> (String, Option<podchain_p2p::protocol::Traffic>) {
	let asked = async {
		let endpoint = provider_link::endpoint(at, &deal.provider).await?;
		let client = provider_link::client().await?;
		let request = LogsRequest::new(&Signer(key.clone()), &endpoint.peer, id, status_query())
			.map_err(CliError::input)?;
		let answer = client.handle().fetch_logs(endpoint.peer, endpoint.addrs, request).await;
		client.shutdown().await;
		match answer {
			// Parsed and printed again: nothing the provider sends reaches the terminal raw.
			Ok(chunk) => Ok((
				chunk
					.deal_status
					.map_or_else(|| "unknown".into(), |s| PodsStatus::parse(&s).to_string()),
				chunk.traffic,
			)),
			Err(e) => Err(CliError::provider(e)),
		}
	};
	match tokio::time::timeout(Duration::from_secs(15), asked).await {
		Ok(Ok(status)) => status,
		Ok(Err(e)) => (format!("unknown (provider offline: {e})"), None),
		Err(_) => ("unknown (provider did not answer)".into(), None),
	}
}

/// `podchain bill ID`: the running totals per resource, then each settled period from the
/// chain's `Settled` events since the deal was accepted (or `from`).
pub async fn bill(ctx: &Context, id: u64, from: Option<u32>) -> Result<(), CliError> {
	let key = ctx.key()?;
	let node = ctx.connect().await?;
	let at = node.finalized().await?;
	let deal = deals::deal(&at, id).await?;
	if let Some(deal) = &deal {
		if deal.publisher != key.account_id() {
			return Err(CliError::refused(format!("deal {id} belongs to another publisher")));
		}
	}
	let start = match (from, deal.as_ref().map(|d| d.state.clone())) {
		(Some(from), _) => from,
		(
			None,
			Some(
				DeploymentState::Active { accepted_at }
				| DeploymentState::OutOfFunds { accepted_at, .. },
			),
		) => accepted_at,
		(None, Some(DeploymentState::Pending { created_at })) => created_at,
		(None, Some(DeploymentState::Closing { .. })) => {
			deal.as_ref().map_or(0, |d| d.settled_until.saturating_sub(10_000))
		}
		(None, None) => {
			return Err(CliError::input(format!(
				"deal {id} has ended; pass --from BLOCK to read its bill from that block"
			)))
		}
	};
	let head = u32::try_from(at.block_number()).unwrap_or(u32::MAX);
	let summary = at
		.runtime_apis()
		.call(runtime::runtime_apis().market_api().bill(id))
		.await
		.map_err(CliError::chain)?;
	// Events are state: a pruning node keeps them for its last STATE_WINDOW blocks only.
	let window_start = head.saturating_sub(STATE_WINDOW);
	let (start, cut) =
		if from.is_none() && start < window_start { (window_start, true) } else { (start, false) };
	let mut periods = Vec::new();
	let span = head.saturating_sub(start);
	for (done, number) in (start..=head).enumerate() {
		if done > 0 && done % 500 == 0 {
			ctx.out.stage(format!("read {done} of {span} blocks"));
		}
		let events = match node.api.at_block(u64::from(number)).await {
			Ok(block) => block.events().fetch().await.map_err(|e| e.to_string()),
			Err(e) => Err(e.to_string()),
		};
		let events = events.map_err(|e| {
			CliError::chain(format!(
				"cannot read block {number}'s events ({e}): the node may have pruned that state; \
				 pass a later --from, or ask an archive node (--state-pruning archive)"
			))
		})?;
		for settled in events.find::<runtime::market::events::Settled>() {
			let settled = settled.map_err(CliError::chain)?;
			if settled.id == id {
				periods.push(settled);
			}
		}
	}
	let charges_json = |c: &types::pallet_market::types::Charges<Balance>| {
		json!({ "cpu": c.cpu.to_string(), "memory": c.memory.to_string(), "storage": c.storage.to_string(),
			"gpu": c.gpu.to_string(), "egress": c.egress.to_string() })
	};
	let json_periods: Vec<Value> = periods
		.iter()
		.map(|p| {
			json!({ "from_block": p.period_start, "to_block": p.period_end, "charges": charges_json(&p.charges),
				"total": p.total.to_string(), "fee": p.fee.to_string(), "unpaid": p.unpaid.to_string() })
		})
		.collect();
	let summary_json = summary.as_ref().map(|b| {
		json!({ "charged": charges_json(&b.charged), "total": b.total.to_string(), "escrow": b.escrow.to_string(),
			"settled_until": b.settled_until, "accrued": b.accrued.to_string(), "debt": b.debt.to_string(),
			"funded_until": b.funded_until })
	});
	let listed = json!({ "first_block": start, "last_block": head, "earlier_omitted": cut });
	ctx.out.result(json!({ "id": id, "summary": summary_json, "periods": json_periods, "listed": listed }), || {
		let rows: Vec<Vec<String>> = periods
			.iter()
			.map(|p| {
				let c = &p.charges;
				vec![
					format!("{}-{}", p.period_start, p.period_end),
					format_pod(c.cpu),
					format_pod(c.memory),
					format_pod(c.storage),
					format_pod(c.gpu),
					format_pod(c.egress),
					format_pod(p.total),
				]
			})
			.collect();
		let mut text = format!("bill of deal {id} (settled periods in blocks {start} to {head})\n");
		if cut {
			text.push_str(
				"(earlier periods are beyond the node's recent state; the totals below cover them; --from BLOCK on an archive node lists them)\n",
			);
		}
		if rows.is_empty() {
			text.push_str("no settled periods yet\n");
		} else {
			text.push_str(&table(
				&["BLOCKS", "CPU", "MEMORY", "STORAGE", "GPU", "EGRESS", "TOTAL"],
				&rows,
			));
			text.push('\n');
		}
		if let Some(b) = &summary {
			let c = &b.charged;
			text.push_str(&format!(
				"charged   {} (CPU {}, memory {}, storage {}, GPU {}, egress {})\nescrow    {} left\n",
				format_pod(b.total),
				format_pod(c.cpu),
				format_pod(c.memory),
				format_pod(c.storage),
				format_pod(c.gpu),
				format_pod(c.egress),
				format_pod(b.escrow)
			));
			if b.accrued > 0 {
				text.push_str(&format!("accrued   {} not yet settled\n", format_pod(b.accrued)));
			}
			if b.debt > 0 {
				text.push_str(&format!(
					"debt      {} the escrow could not pay (a top-up pays it first)\n",
					format_pod(b.debt)
				));
			}
			if let Some(block) = b.funded_until {
				text.push_str(&format!("funded    up to block {block}\n"));
			}
		}
		text
	});
	Ok(())
}

async fn submit<Call: podchain_chain::subxt::tx::Payload>(
	node: &Node,
	key: &AccountKey,
	call: &Call,
) -> Result<podchain_chain::subxt::extrinsics::ExtrinsicEvents<podchain_chain::ChainConfig>, CliError>
{
	Ok(Submitter::new(key.clone()).submit_and_finalize(node, call).await?)
}

/// `podchain top-up ID AMOUNT`.
pub async fn top_up(ctx: &Context, id: u64, amount: Balance) -> Result<(), CliError> {
	let key = ctx.key()?;
	let node = ctx.connect().await?;
	own_deal(&node.finalized().await?, &key, id).await?;
	submit(&node, &key, &runtime::tx().market().top_up(id, amount)).await?;
	let deal = own_deal(&node.finalized().await?, &key, id).await?;
	ctx.out.result(
		json!({ "id": id, "escrow": deal.escrow.to_string(), "state": state_name(&deal) }),
		|| format!("deal {id}: escrow now {} ({})", format_pod(deal.escrow), state_name(&deal)),
	);
	Ok(())
}

/// `podchain update ID MANIFEST`: asks for the new manifest on chain, delivers it to the
/// provider, and waits until the provider acknowledges it (its pods run it).
pub async fn update(ctx: &Context, id: u64, path: &Path, timeout: u64) -> Result<(), CliError> {
	let mut manifest = Manifest::from_path(path).map_err(CliError::input)?;
	let uploads = crate::images::resolve(&ctx.out, &mut manifest, path)?;
	let key = ctx.key()?;
	let node = ctx.connect().await?;
	let deal = own_deal(&node.finalized().await?, &key, id).await?;
	if deal.manifest_hash == manifest.hash() {
		return Err(CliError::input(format!("deal {id} already runs this manifest")));
	}
	let sealable = async |at: &AtBlock| {
		let endpoint = provider_link::endpoint(at, &deal.provider).await?;
		let attestation = crate::attestation::view(at, &deal.provider).await?;
		crate::attestation::check_before_sealing(
			&deal.provider,
			&endpoint.peer,
			attestation.as_ref(),
			false,
		)?;
		Ok::<_, CliError>(endpoint)
	};
	sealable(&node.finalized().await?).await?;
	submit(&node, &key, &runtime::tx().market().update_manifest(id, manifest.hash())).await?;
	ctx.out.stage(format!("deal {id}: update to {} requested", path.display()));
	let endpoint = sealable(&node.finalized().await?).await?;
	let client = provider_link::client().await?;
	let handle = client.handle();
	let signer = Signer(key.clone());
	let canonical = manifest.canonical_bytes();
	let timeout = Duration::from_secs(timeout);
	poll(timeout, "the provider's agent to take the manifest", || {
		let request = ManifestRequest::new(&signer, &endpoint.peer, id, &canonical);
		let (handle, addrs) = (handle.clone(), endpoint.addrs.clone());
		async move {
			match handle
				.deliver_manifest(endpoint.peer, addrs, request.map_err(CliError::input)?)
				.await
			{
				Ok(_) => Ok(Some(())),
				Err(P2pError::Rejected {
					reason: RejectReason::HashMismatch | RejectReason::Busy,
					..
				}) => Ok(None),
				Err(P2pError::Rejected { reason, .. }) => {
					Err(CliError::provider(format!("the provider refused the manifest: {reason}")))
				}
				Err(e) => Err(CliError::provider(format!("provider offline: {e}"))),
			}
		}
	})
	.await?;
	// The images it pins (layers the provider already holds are not sent again).
	crate::images::push(&ctx.out, &handle, &signer, &endpoint, id, &uploads).await?;
	ctx.out.stage("manifest delivered; waiting for the provider to run it");
	// The provider acknowledges on chain once the new pods are ready; meanwhile its agent's
	// status shows the rollout, and a terminal failure of the new pods ends the wait.
	let hash = manifest.hash();
	let watch = std::sync::Mutex::new(PodsWatch::update());
	let acknowledged = poll(timeout, "the provider to acknowledge the update", || {
		let node = node.clone();
		let (handle, endpoint, watch) = (handle.clone(), endpoint.clone(), &watch);
		let request = LogsRequest::new(&signer, &endpoint.peer, id, status_query());
		let out = &ctx.out;
		async move {
			let deal = deals::deal(&node.finalized().await?, id).await?;
			if deal.is_some_and(|d| d.manifest_hash == hash && d.pending_manifest.is_none()) {
				return Ok(Some(()));
			}
			let request = request.map_err(CliError::input)?;
			// A status that cannot be read is no reason to stop: the chain decides.
			let Ok(chunk) = handle.fetch_logs(endpoint.peer, endpoint.addrs, request).await else {
				return Ok(None);
			};
			let seen = watch
				.lock()
				.map_err(|_| CliError::provider("status watch poisoned"))?
				.see(chunk.deal_status.as_deref());
			match seen {
				(Seen::Failed(reason), _) => {
					Err(CliError::provider(format!("the new pods failed: {reason}")))
				}
				(_, Some(stage)) => {
					out.stage(stage);
					Ok(None)
				}
				_ => Ok(None),
			}
		}
	})
	.await;
	client.shutdown().await;
	if let Err(mut e) = acknowledged {
		if e.is_timeout() {
			let last = watch.lock().map(|w| w.last()).unwrap_or_default();
			e.message.push_str(&format!(" (last pods status: {last})"));
		}
		return Err(e);
	}
	ctx.out.result(json!({ "id": id, "manifest_hash": format!("0x{}", hex(&hash)) }), || {
		format!("deal {id} runs the new manifest")
	});
	Ok(())
}

/// `podchain close ID`.
pub async fn close(ctx: &Context, id: u64) -> Result<(), CliError> {
	let key = ctx.key()?;
	let node = ctx.connect().await?;
	let deal = own_deal(&node.finalized().await?, &key, id).await?;
	if let DeploymentState::Pending { created_at } = deal.state {
		// Never accepted: the publisher may cancel it, for a full refund, once the provider
		// had its time to answer.
		let timeout = at_constant_acceptance_timeout(&node).await?;
		let head = u32::try_from(node.finalized().await?.block_number()).unwrap_or(u32::MAX);
		let from = created_at.saturating_add(timeout);
		if head < from {
			return Err(CliError::refused(format!(
				"deal {id} is still pending: the provider may accept it until block {from} (now {head}); close it again then to cancel it with a full refund"
			)));
		}
		submit(&node, &key, &runtime::tx().market().cancel_deployment(id)).await?;
		ctx.out.result(json!({ "id": id, "state": "cancelled" }), || {
			format!(
				"deal {id} cancelled: the provider never accepted it; the whole deposit is back"
			)
		});
		return Ok(());
	}
	let call = runtime::tx().market().close_deployment(id, CloseReason::PublisherRequest);
	submit(&node, &key, &call).await?;
	let after = deals::deal(&node.finalized().await?, id).await?;
	let state = after.as_ref().map_or_else(|| "closed".to_owned(), state_name);
	ctx.out.result(json!({ "id": id, "state": state }), || match &after {
		Some(_) => format!("deal {id} is {state}: the provider reports its last usage, then the rest of the escrow returns"),
		None => format!("deal {id} closed; the rest of the escrow is back in your account"),
	});
	Ok(())
}

/// The blocks a provider has to accept a deal.
async fn at_constant_acceptance_timeout(node: &Node) -> Result<u32, CliError> {
	node.finalized()
		.await?
		.constants()
		.entry(runtime::constants().market().acceptance_timeout())
		.map_err(CliError::chain)
}

/// `podchain name register LABEL ID`.
pub async fn register_name(ctx: &Context, label: &str, id: u64) -> Result<(), CliError> {
	let key = ctx.key()?;
	let node = ctx.connect().await?;
	own_deal(&node.finalized().await?, &key, id).await?;
	let name = types::bounded_collections::bounded_vec::BoundedVec(label.as_bytes().to_vec());
	submit(&node, &key, &runtime::tx().market().register_name(id, name)).await?;
	ctx.out.result(json!({ "id": id, "name": label }), || format!("deal {id} is named {label}"));
	Ok(())
}
