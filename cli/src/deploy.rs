//! `podchain deploy`: choose a provider, lock the deposit, deliver the manifest sealed to the
//! provider and the images it pins from the publisher's archives, wait for its acceptance (the
//! agent accepts once it holds the manifest and its images), and wait until its agent runs it.

use crate::{
	attestation,
	error::CliError,
	images,
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
	protocol::{LogChunk, LogsQuery, LogsRequest, ManifestRequest, RejectReason},
	status::PodsStatus,
	P2pError, P2pHandle, P2pNode,
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
	/// SLA penalty per missed window, in POD, paid to you from the provider's stake (never more
	/// than you paid for the window).
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

/// The SLA terms asked for, if any, with the manifest's health check (declared, or `GET /`
/// answered 200): what probers request of the pods, and what the provider's agent checks the
/// manifest declares before it names the deal running.
fn sla_terms(
	args: &DeployArgs,
	manifest: &Manifest,
) -> Option<types::podchain_primitives::SlaTerms<Balance>> {
	let bytes =
		|text: &str| types::bounded_collections::bounded_vec::BoundedVec(text.as_bytes().to_vec());
	let health = manifest.health_check();
	Some(types::podchain_primitives::SlaTerms {
		uptime_target: types::sp_arithmetic::per_things::Permill(args.uptime?),
		window_blocks: args.sla_window,
		penalty_per_window: args.penalty?,
		health: types::podchain_primitives::HealthCheck {
			path: bytes(&health.path),
			expect_status: health.status,
			expect_body: bytes(health.body.as_deref().unwrap_or_default()),
		},
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
pub async fn poll<T, F, Fut>(timeout: Duration, what: &str, check: F) -> Result<T, CliError>
where
	F: FnMut() -> Fut,
	Fut: std::future::Future<Output = Result<Option<T>, CliError>>,
{
	poll_every(timeout, Duration::from_secs(1), what, check).await
}

/// Polls every `interval` until `check` gives a value, or fails after `timeout`.
pub async fn poll_every<T, F, Fut>(
	timeout: Duration,
	interval: Duration,
	what: &str,
	mut check: F,
) -> Result<T, CliError>
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
		tokio::time::sleep(interval).await;
	}
}

/// `podchain deploy`.
pub async fn run(ctx: &Context, args: &DeployArgs) -> Result<(), CliError> {
	let out = &ctx.out;
	let mut manifest = Manifest::from_path(&args.manifest).map_err(CliError::input)?;
	// Images from archives are read and pinned before anything is hashed or paid.
	let uploads = images::resolve(out, &mut manifest, &args.manifest)?;
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
	let sla = sla_terms(args, &manifest);
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
	// Before any funds are locked: a manifest is sealed only to the key an attestation vouches
	// for (and, with --attested, only to a provider attested now).
	let sealing_to = async |at: &podchain_chain::AtBlock| {
		let endpoint = provider_link::endpoint(at, &offer.provider).await?;
		let attestation = attestation::view(at, &offer.provider).await?;
		attestation::check_before_sealing(
			&offer.provider,
			&endpoint.peer,
			attestation.as_ref(),
			args.filters.attested,
		)?;
		Ok::<_, CliError>(endpoint)
	};
	sealing_to(&at).await?;
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
	// The link to the provider's agent starts while the deal is finalized.
	// Checked again at the block the deal is created in: the endpoint may have changed.
	let link = async {
		let at = node.finalized().await?;
		let endpoint = sealing_to(&at).await?;
		Ok::<_, CliError>((endpoint, provider_link::client().await?))
	};
	let (events, link) = tokio::join!(submitter.submit_and_finalize(&node, &call), link);
	let events = events?;
	let id = events
		.find_first::<runtime::market::events::DeploymentCreated>()
		.and_then(Result::ok)
		.map(|e| e.id)
		.ok_or_else(|| CliError::chain("the deal was created but its event is missing"))?;
	out.stage(format!("deal {id} created; delivering the manifest"));
	let named = |e: CliError| e.about_deal(id);
	let (endpoint, client) = link.map_err(named)?;
	let delivered =
		deliver(ctx, args, &node, &key, &endpoint, &client, id, &manifest, &uploads).await;
	client.shutdown().await;
	let (status, images) = delivered.map_err(named)?;
	let provider = offer.provider.to_string();
	ctx.out.result(
		json!({
			"id": id,
			"provider": provider,
			"deposit": deposit.to_string(),
			"status": status,
			"images": images,
		}),
		|| format!("deal {id} runs on {provider}\nfollow it with `podchain status {id}` and `podchain logs {id} --follow`"),
	);
	Ok(())
}

/// The stages after the deal exists: delivery, acceptance, running; the pods' status at the
/// end. The manifest goes first: the provider's agent accepts a deal only once it holds its
/// manifest, verified against the chain, and then deploys it at once.
#[allow(clippy::too_many_arguments)]
async fn deliver(
	ctx: &Context,
	args: &DeployArgs,
	node: &Node,
	key: &podchain_chain::AccountKey,
	endpoint: &provider_link::Endpoint,
	client: &P2pNode,
	id: u64,
	manifest: &Manifest,
	uploads: &[images::Upload],
) -> Result<(String, Vec<serde_json::Value>), CliError> {
	let out = &ctx.out;
	let timeout = Duration::from_secs(args.timeout);

	// The manifest, sealed to the provider's agent.
	let handle = client.handle();
	let signer = Signer(key.clone());
	send_manifest(&handle, &signer, endpoint, id, &manifest.canonical_bytes(), timeout).await?;
	out.stage(format!("manifest delivered to {}, sealed to it", endpoint.peer));
	// Then the images it pins: the agent accepts the deal once it holds them all.
	let pushed = images::push(out, &handle, &signer, endpoint, id, uploads).await?;
	out.stage("waiting for the provider to accept");

	// A finalized-state read is cheap; polling often keeps the deploy's stages prompt.
	poll_every(timeout, Duration::from_millis(200), "the provider to accept", || {
		accepted(node, id)
	})
	.await?;
	out.stage(format!("deal {id} accepted"));

	let status = wait_for_pods(out, timeout, PodsWatch::deploy(), || {
		let handle = handle.clone();
		let endpoint = endpoint.clone();
		let request = LogsRequest::new(&signer, &endpoint.peer, id, status_query());
		async move {
			let request = request.map_err(CliError::input)?;
			Ok(handle.fetch_logs(endpoint.peer, endpoint.addrs, request).await)
		}
	})
	.await?;
	out.stage(format!("deal {id} is {status}"));
	Ok((status, pushed))
}

/// Delivers deal `id`'s manifest (its canonical bytes) to the provider's agent, sealed to it
/// and signed by the publisher, retrying while the agent does not know the deal yet (it reads
/// finalized blocks) or is busy, for at most `timeout`.
pub async fn send_manifest(
	handle: &P2pHandle,
	signer: &Signer,
	endpoint: &provider_link::Endpoint,
	id: u64,
	canonical: &[u8],
	timeout: Duration,
) -> Result<(), CliError> {
	poll_every(
		timeout,
		Duration::from_millis(250),
		"the provider's agent to take the manifest",
		|| {
			let request = ManifestRequest::new(signer, &endpoint.peer, id, canonical);
			let handle = handle.clone();
			let addrs = endpoint.addrs.clone();
			async move {
				let request = request.map_err(CliError::input)?;
				match handle.deliver_manifest(endpoint.peer, addrs, request).await {
					Ok(_) => Ok(Some(())),
					// The agent reads finalized blocks: it may not know the deal yet.
					Err(P2pError::Rejected {
						reason: RejectReason::UnknownDeal | RejectReason::Busy,
						..
					}) => Ok(None),
					Err(P2pError::Rejected { reason, .. }) => Err(CliError::provider(format!(
						"the provider refused the manifest: {reason}"
					))),
					Err(e) => Err(CliError::provider(format!("provider offline: {e}"))),
				}
			}
		},
	)
	.await
}

/// What a wait for a deal's pods makes of each status its agent reports.
///
/// Only a terminal status ([`PodsStatus::is_terminal`]) ends the wait early; starting,
/// updating and degraded states are waited through, each change shown as a stage. When
/// waiting for an update, the status first read may still be the old manifest's (the agent
/// has not applied the new one yet): a failure counts only after a transient state was seen.
#[derive(Clone, Debug)]
pub struct PodsWatch {
	last: Option<PodsStatus>,
	/// A failure ends the wait only once a transient state has been seen.
	failure_needs_transient: bool,
	seen_transient: bool,
}

/// What one status read means for the wait.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
	/// Every replica runs and is ready.
	Running,
	/// The pods will not run without a change; the reason, as the provider gave it.
	Failed(String),
	/// Keep waiting.
	Waiting,
}

impl PodsWatch {
	/// Waiting for a new deal's pods.
	pub fn deploy() -> Self {
		PodsWatch { last: None, failure_needs_transient: false, seen_transient: false }
	}

	/// Waiting for an update's pods.
	pub fn update() -> Self {
		PodsWatch { last: None, failure_needs_transient: true, seen_transient: false }
	}

	/// Takes one status read (`None`: the agent did not say): what it means, and the stage to
	/// show if the status changed.
	pub fn see(&mut self, text: Option<&str>) -> (Seen, Option<String>) {
		let Some(status) = text.map(PodsStatus::parse) else {
			return (Seen::Waiting, None);
		};
		let changed = (self.last.as_ref() != Some(&status)).then(|| format!("pods {status}"));
		self.last = Some(status.clone());
		let seen = match status {
			// An idle deal runs as far as a deploy goes: the next request starts it.
			PodsStatus::Running | PodsStatus::Idle => Seen::Running,
			PodsStatus::Failed { reason }
				if self.seen_transient || !self.failure_needs_transient =>
			{
				Seen::Failed(reason)
			}
			PodsStatus::Starting { .. }
			| PodsStatus::Updating { .. }
			| PodsStatus::Degraded { .. } => {
				self.seen_transient = true;
				Seen::Waiting
			}
			_ => Seen::Waiting,
		};
		(seen, changed)
	}

	/// The last status read, for a timeout's message.
	pub fn last(&self) -> String {
		self.last.as_ref().map_or_else(|| "none reported".to_owned(), ToString::to_string)
	}
}

/// Reads the deal's status from its agent every quarter second through `fetch` until `watch`
/// sees it running (returns `running`), a terminal failure (an error with the provider's
/// reason) or `timeout` passes (an error naming the last status). An agent that does not
/// answer a read is asked again until the timeout.
pub async fn wait_for_pods<F, Fut>(
	out: &crate::output::Output,
	timeout: Duration,
	mut watch: PodsWatch,
	mut fetch: F,
) -> Result<String, CliError>
where
	F: FnMut() -> Fut,
	Fut: std::future::Future<Output = Result<Result<LogChunk, P2pError>, CliError>>,
{
	let deadline = tokio::time::Instant::now() + timeout;
	let mut unanswered: Option<String> = None;
	loop {
		match fetch().await? {
			Ok(chunk) => {
				unanswered = None;
				match watch.see(chunk.deal_status.as_deref()) {
					(Seen::Running, _) => return Ok("running".to_owned()),
					(Seen::Failed(reason), _) => {
						return Err(CliError::provider(format!("the pods failed: {reason}")))
					}
					(Seen::Waiting, Some(stage)) => out.stage(stage),
					(Seen::Waiting, None) => {}
				}
			}
			Err(P2pError::Rejected { reason: RejectReason::Busy, .. }) => {}
			Err(e) => {
				let text = format!("provider not answering: {e}");
				if unanswered.as_ref() != Some(&text) {
					out.stage(&text);
				}
				unanswered = Some(text);
			}
		}
		if tokio::time::Instant::now() >= deadline {
			let mut message = format!(
				"gave up after {timeout:?} waiting for the pods to run (last status: {})",
				watch.last()
			);
			if let Some(unanswered) = unanswered {
				message.push_str(&format!("; {unanswered}"));
			}
			return Err(CliError::timeout(message));
		}
		tokio::time::sleep(Duration::from_millis(250)).await;
	}
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
	use super::{parse_uptime, PodsWatch, Seen};

	fn stage(text: &str) -> Option<String> {
		Some(format!("pods {text}"))
	}

	#[test]
	fn a_deploy_waits_through_transient_states() {
		let mut watch = PodsWatch::deploy();
		assert_eq!(watch.see(None), (Seen::Waiting, None));
		assert_eq!(watch.last(), "none reported");
		assert_eq!(watch.see(Some("absent")), (Seen::Waiting, stage("absent")));
		assert_eq!(watch.see(Some("starting 0/1")), (Seen::Waiting, stage("starting 0/1")));
		assert_eq!(watch.see(Some("starting 0/1")), (Seen::Waiting, None), "unchanged: no stage");
		let quota = "degraded 0/1: FailedCreate: exceeded quota: reserved";
		assert_eq!(watch.see(Some(quota)), (Seen::Waiting, stage(quota)));
		assert_eq!(watch.last(), quota);
		// A status a newer agent knows and this CLI does not: keep waiting.
		assert_eq!(watch.see(Some("resizing 1/2")), (Seen::Waiting, stage("resizing 1/2")));
		assert_eq!(watch.see(Some("running")), (Seen::Running, stage("running")));
	}

	#[test]
	fn a_deploy_stops_at_a_terminal_failure_with_its_reason() {
		let mut watch = PodsWatch::deploy();
		let (seen, _) = watch.see(Some("failed: app/web: ImagePullBackOff"));
		assert_eq!(seen, Seen::Failed("app/web: ImagePullBackOff".into()));
	}

	#[test]
	fn an_update_ignores_the_old_manifests_failure() {
		// The old manifest crash-loops; the update fixes it. Before the agent applies it, the
		// status is still the old one's.
		let mut watch = PodsWatch::update();
		let crash = Some("failed: app/web: CrashLoopBackOff");
		assert_eq!(watch.see(crash).0, Seen::Waiting);
		assert_eq!(watch.see(Some("updating 0/1")), (Seen::Waiting, stage("updating 0/1")));
		assert_eq!(watch.see(crash).0, Seen::Failed("app/web: CrashLoopBackOff".into()));
		let mut watch = PodsWatch::update();
		assert_eq!(watch.see(Some("running")).0, Seen::Running);
	}

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
