//! `podchain deploy`: choose a provider, lock the deposit, wait for acceptance, deliver the
//! manifest sealed to the provider, and wait until its agent runs it.

use crate::{
	error::CliError,
	provider_link::{self, Signer},
	providers::{offers, resources_of, Filters},
	terms,
	units::{format_pod, parse_bytes_per_second, parse_duration, parse_pod},
	Context,
};
use clap::{Args, ValueEnum};
use podchain_chain::{
	deals::{self, BillingMode, DeploymentState},
	runtime::{self, runtime_types as types},
	AccountId, Balance, Node,
};
use podchain_manifest::Manifest;
use podchain_p2p::{
	protocol::{LogsQuery, LogsRequest, ManifestRequest, RejectReason},
	P2pError,
};
use serde_json::json;
use std::{path::PathBuf, time::Duration};

/// How a deal is billed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Billing {
	/// For measured usage, never more than the reserved resources.
	Metered,
	/// For the reserved resources over time.
	Reserved,
}

/// `podchain deploy` arguments.
#[derive(Clone, Debug, Args)]
pub struct DeployArgs {
	/// The manifest (YAML or JSON).
	pub manifest: PathBuf,
	/// `auto` (the best-ranked offer) or a provider's account.
	#[arg(long, default_value = "auto")]
	pub provider: String,
	/// Escrow to lock, in POD.
	#[arg(long, value_parser = parse_pod, conflicts_with = "for_")]
	pub deposit: Option<Balance>,
	/// Lock enough escrow to run this long at the provider's price (`30m`, `24h`, `7d`).
	#[arg(long = "for", id = "for_", default_value = "1h")]
	pub for_: String,
	/// How the deal is billed.
	#[arg(long, value_enum, default_value = "metered")]
	pub billing: Billing,
	/// Provider filters for `--provider auto`.
	#[command(flatten)]
	pub filters: Filters,
	/// Seconds to wait for the provider to accept, then to run the pods.
	#[arg(long, default_value = "180")]
	pub timeout: u64,
	/// Ask for an SLA: the uptime target in percent (e.g. `99.5`). Needs `--penalty`; only
	/// providers offering the terms are picked.
	#[arg(long, value_parser = parse_uptime, requires = "penalty")]
	pub uptime: Option<u32>,
	/// SLA measurement window, in blocks (a whole number of the chain's probe windows).
	#[arg(long, default_value = "600")]
	pub sla_window: u32,
	/// SLA penalty per missed window, in POD, paid to you from the provider's stake.
	#[arg(long, value_parser = parse_pod, requires = "uptime")]
	pub penalty: Option<Balance>,
	/// Most egress the deal pays for, per second (`500KiB`, `10MiB`, `1GiB`); the provider
	/// cannot bill more. Default 10 MiB/s, or the chain's limit if lower.
	#[arg(long, value_parser = parse_bytes_per_second)]
	pub max_egress: Option<u64>,
}

/// The provider's per-unit prices at `at`: the quote the deal is held to.
async fn quote_of(
	at: &podchain_chain::AtBlock,
	provider: &AccountId,
) -> Result<terms::Prices, CliError> {
	let providers =
		at.storage().entry(runtime::storage().registry().providers()).map_err(CliError::chain)?;
	let info = providers
		.try_fetch((*provider,))
		.await
		.map_err(CliError::chain)?
		.ok_or_else(|| CliError::refused(format!("provider {provider} is not registered")))?
		.decode()
		.map_err(CliError::chain)?;
	Ok(info.prices)
}

/// An uptime target in percent as parts per million: above 0 and at most 100.
pub fn parse_uptime(text: &str) -> Result<u32, String> {
	let percent: f64 = text
		.trim()
		.trim_end_matches('%')
		.parse()
		.map_err(|_| format!("{text:?} is not a percentage (e.g. 99.5)"))?;
	if !(percent > 0.0 && percent <= 100.0) {
		return Err(format!("an uptime target is above 0 and at most 100%, not {text}"));
	}
	Ok((percent * 10_000.0).round() as u32)
}

/// The SLA terms asked for, if any.
fn sla_terms(args: &DeployArgs) -> Option<types::podchain_primitives::SlaTerms<Balance>> {
	Some(types::podchain_primitives::SlaTerms {
		uptime_target: types::sp_arithmetic::per_things::Permill(args.uptime?),
		window_blocks: args.sla_window,
		penalty_per_window: args.penalty?,
	})
}

/// Whether `provider` offers `terms` (the chain refuses a deal whose provider does not).
async fn offers_terms(
	at: &podchain_chain::AtBlock,
	provider: &AccountId,
	terms: &types::podchain_primitives::SlaTerms<Balance>,
) -> Result<bool, CliError> {
	let offer = at
		.runtime_apis()
		.call(runtime::runtime_apis().sla_api().offer(*provider))
		.await
		.map_err(CliError::chain)?;
	Ok(offer.is_some_and(|o| {
		terms.uptime_target.0 <= o.max_uptime_target.0
			&& (o.min_window_blocks..=o.max_window_blocks).contains(&terms.window_blocks)
			&& terms.penalty_per_window <= o.max_penalty_per_window
	}))
}

/// Polls every second until `check` gives a value, or fails after `timeout`.
pub async fn poll<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<T, CliError>
where
	F: FnMut() -> Fut,
	Fut: std::future::Future<Output = Result<Option<T>, CliError>>,
{
	let deadline = tokio::time::Instant::now() + timeout;
	loop {
		if let Some(value) = check().await? {
			return Ok(value);
		}
		if tokio::time::Instant::now() >= deadline {
			return Err(CliError::timeout(format!("gave up after {timeout:?} waiting for {what}")));
		}
		tokio::time::sleep(Duration::from_secs(1)).await;
	}
}

/// `podchain deploy`.
pub async fn run(ctx: &Context, args: &DeployArgs) -> Result<(), CliError> {
	let out = &ctx.out;
	let manifest = Manifest::from_path(&args.manifest).map_err(CliError::input)?;
	let resources = resources_of(&manifest)?;
	let duration = parse_duration(&args.for_).map_err(CliError::input)?;
	let key = ctx.key()?;
	let node = ctx.connect().await?;
	let at = node.finalized().await?;
	out.stage(format!(
		"manifest {} valid: {}m CPU, {} MiB memory, {} GiB storage",
		args.manifest.display(),
		resources.cpu_millicores,
		resources.memory_mib,
		resources.storage_gib
	));

	// SLA terms, if asked for, must be whole probe windows.
	let sla = sla_terms(args);
	if let Some(terms) = &sla {
		let probe_window = at
			.constants()
			.entry(runtime::constants().sla().probe_window())
			.map_err(CliError::chain)?;
		if terms.window_blocks == 0 || !terms.window_blocks.is_multiple_of(probe_window) {
			return Err(CliError::input(format!(
				"--sla-window {} is not a whole number of probe windows ({probe_window} blocks)",
				terms.window_blocks
			)));
		}
	}

	// The provider and its price.
	let mut ranked = offers(&at, resources.clone(), &args.filters, 0).await?;
	if let Some(terms) = &sla {
		let mut offering = Vec::new();
		for offer in ranked {
			if offers_terms(&at, &offer.provider, terms).await? {
				offering.push(offer);
			}
		}
		if offering.is_empty() {
			return Err(CliError::refused(
				"no provider that can run this manifest offers these SLA terms",
			));
		}
		ranked = offering;
	}
	let offer = if args.provider == "auto" {
		ranked.into_iter().next().ok_or_else(|| {
			CliError::refused("no registered provider can run this manifest with these filters")
		})?
	} else {
		let provider: AccountId = args.provider.parse().map_err(|_| {
			CliError::input(format!("--provider {:?} is not an account", args.provider))
		})?;
		ranked.into_iter().find(|o| o.provider == provider).ok_or_else(|| {
			CliError::refused(format!(
				"provider {provider} is unknown, paused, rented, or has no room for this manifest"
			))
		})?
	};
	// What the chain will hold the provider to: the prices shown (or up to --max-price per
	// hour), the egress limit, and a deposit of at least the minimum prepaid time.
	let market = runtime::constants().market();
	let minimum = at.constants().entry(market.min_deposit()).map_err(CliError::chain)?;
	let min_prepaid =
		at.constants().entry(market.min_prepaid_seconds()).map_err(CliError::chain)?;
	let chain_max_egress =
		at.constants().entry(market.max_egress_bytes_per_second()).map_err(CliError::chain)?;
	let quote = quote_of(&at, &offer.provider).await?;
	let max_prices = terms::price_limits(&quote, offer.price_per_hour, args.filters.max_price)
		.map_err(CliError::input)?;
	let egress = terms::egress_limit(args.max_egress, chain_max_egress).map_err(CliError::input)?;
	let least = terms::least_deposit(offer.price_per_hour, min_prepaid, minimum);
	let deposit = match args.deposit {
		Some(deposit) if deposit < least => {
			return Err(CliError::input(format!(
				"--deposit {} is below the least this deal takes: {} ({} s of its resources, at least {})",
				format_pod(deposit),
				format_pod(least),
				min_prepaid,
				format_pod(minimum)
			)));
		}
		Some(deposit) => deposit,
		None => offer
			.price_per_hour
			.saturating_mul(u128::from(duration.as_secs()))
			.div_ceil(3600)
			.max(least),
	};
	let limits =
		types::pallet_market::types::DealLimits { max_prices, max_egress_bytes_per_second: egress };
	let free = crate::account::free_balance(&at, &key.account_id()).await?;
	if free <= deposit {
		return Err(CliError::refused(format!(
			"insufficient balance: the deposit is {} and {} has {} free (plus a fee)",
			format_pod(deposit),
			key.account_id(),
			format_pod(free)
		)));
	}
	out.stage(format!(
		"provider {} ({}), {} per hour; deposit {}",
		offer.provider,
		offer.country,
		format_pod(offer.price_per_hour),
		format_pod(deposit)
	));

	// The deal.
	let billing = match args.billing {
		Billing::Metered => BillingMode::Metered,
		Billing::Reserved => BillingMode::Reserved,
	};
	let call = runtime::tx().market().create_deployment(
		offer.provider,
		manifest.hash(),
		resources,
		billing,
		sla,
		limits,
		deposit,
	);
	let submitter = podchain_chain::tx::Submitter::new(key.clone());
	let events = submitter.submit_and_finalize(&node, &call).await?;
	let id = events
		.find_first::<runtime::market::events::DeploymentCreated>()
		.and_then(Result::ok)
		.map(|e| e.id)
		.ok_or_else(|| CliError::chain("the deal was created but its event is missing"))?;
	out.stage(format!("deal {id} created; waiting for the provider to accept"));
	let named = |e: CliError| e.about_deal(id);
	deliver(ctx, args, &node, &key, &offer.provider, id, &manifest, deposit).await.map_err(named)
}

/// The stages after the deal exists: acceptance, delivery, running.
#[allow(clippy::too_many_arguments)]
async fn deliver(
	ctx: &Context,
	args: &DeployArgs,
	node: &Node,
	key: &podchain_chain::AccountKey,
	provider: &AccountId,
	id: u64,
	manifest: &Manifest,
	deposit: Balance,
) -> Result<(), CliError> {
	let out = &ctx.out;

	let timeout = Duration::from_secs(args.timeout);
	poll(timeout, "the provider to accept", || accepted(node, id)).await?;
	out.stage(format!("deal {id} accepted"));

	// The manifest, sealed to the provider's agent.
	let at = node.finalized().await?;
	let endpoint = provider_link::endpoint(&at, provider).await?;
	let client = provider_link::client().await?;
	let handle = client.handle();
	let signer = Signer(key.clone());
	let canonical = manifest.canonical_bytes();
	poll(timeout, "the provider's agent to take the manifest", || {
		let request = ManifestRequest::new(&signer, &endpoint.peer, id, &canonical);
		let handle = handle.clone();
		let addrs = endpoint.addrs.clone();
		async move {
			let request = request.map_err(CliError::input)?;
			match handle.deliver_manifest(endpoint.peer, addrs, request).await {
				Ok(_) => Ok(Some(())),
				// The agent's view of the chain may lag a block or two behind ours.
				Err(P2pError::Rejected {
					reason: RejectReason::UnknownDeal | RejectReason::Busy,
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
	out.stage(format!("manifest delivered to {}, sealed to it", endpoint.peer));

	let status = poll(timeout, "the pods to run", || {
		let handle = handle.clone();
		let endpoint = endpoint.clone();
		let request = LogsRequest::new(&signer, &endpoint.peer, id, status_query());
		async move {
			let request = request.map_err(CliError::input)?;
			match handle.fetch_logs(endpoint.peer, endpoint.addrs, request).await {
				Ok(chunk) => match chunk.deal_status.as_deref() {
					Some("running") => Ok(Some("running".to_owned())),
					Some(failed) if failed.starts_with("failed") => {
						Err(CliError::provider(format!("the pods failed: {failed}")))
					}
					_ => Ok(None),
				},
				Err(P2pError::Rejected { reason: RejectReason::Busy, .. }) => Ok(None),
				Err(e) => Err(CliError::provider(format!("provider offline: {e}"))),
			}
		}
	})
	.await?;
	out.stage(format!("deal {id} is {status}"));
	client.shutdown().await;
	let provider = provider.to_string();
	out.result(
		json!({ "id": id, "provider": provider, "deposit": deposit.to_string(), "status": status }),
		|| format!("deal {id} runs on {provider}\nfollow it with `podchain status {id}` and `podchain logs {id} --follow`"),
	);
	Ok(())
}

/// A logs query that asks only for the deal's status.
pub fn status_query() -> LogsQuery {
	LogsQuery { container: None, cursor: None, tail: Some(0), max_lines: 1 }
}

/// `Some` once deal `id` is accepted; an error if it ended first.
async fn accepted(node: &Node, id: u64) -> Result<Option<()>, CliError> {
	let at = node.finalized().await?;
	match deals::deal(&at, id).await?.map(|d| d.state) {
		Some(DeploymentState::Pending { .. }) => Ok(None),
		Some(_) => Ok(Some(())),
		None => Err(CliError::refused(format!(
			"deal {id} ended before it ran (rejected by the provider?); the deposit is refunded"
		))),
	}
}

#[cfg(test)]
mod tests {
	use super::parse_uptime;

	#[test]
	fn uptime_targets_are_percentages() {
		assert_eq!(parse_uptime("99.5"), Ok(995_000));
		assert_eq!(parse_uptime("100%"), Ok(1_000_000));
		assert_eq!(parse_uptime(" 90 "), Ok(900_000));
		for bad in ["0", "100.1", "-5", "ninety", ""] {
			assert!(parse_uptime(bad).is_err(), "{bad:?}");
		}
	}
}
