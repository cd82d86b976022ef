//! `podchain providers` and `podchain quote`: the registry and its ranked offers.

use crate::{
	error::CliError,
	output::table,
	units::{format_pod, parse_duration, parse_pod},
	Context,
};
use clap::Args;
use podchain_chain::{
	runtime::{self, runtime_types as types},
	AccountId, AtBlock, Balance,
};
use podchain_manifest::Manifest;
use serde_json::json;

/// Filters on providers.
#[derive(Clone, Debug, Default, Args)]
pub struct Filters {
	/// Only providers in this country (ISO 3166-1 alpha-2, e.g. DE).
	#[arg(long)]
	pub region: Option<String>,
	/// Only providers attested now (a verified Intel TDX/SGX quote, allowed measurement,
	/// accepted TCB status); deploy also refuses to seal to one whose attestation does not
	/// vouch for its agent's key.
	#[arg(long)]
	pub attested: bool,
	/// Only providers at most this expensive per hour, in POD: for the manifest's resources
	/// (quote, deploy), or for one core and 1 GiB (providers).
	#[arg(long, value_parser = parse_pod)]
	pub max_price: Option<Balance>,
}

impl Filters {
	fn country(&self) -> Result<Option<[u8; 2]>, CliError> {
		let Some(region) = &self.region else { return Ok(None) };
		let upper = region.to_ascii_uppercase();
		match <[u8; 2]>::try_from(upper.as_bytes()) {
			Ok(code) if code.iter().all(u8::is_ascii_uppercase) => Ok(Some(code)),
			_ => Err(CliError::input(format!(
				"--region {region:?} is not a two-letter country code"
			))),
		}
	}
}

/// Resources in the chain's terms.
pub type Resources = types::podchain_primitives::Resources;

/// A provider's offer for a workload.
#[derive(Clone, Debug)]
pub struct Offer {
	/// The provider.
	pub provider: AccountId,
	/// Price per hour of the workload's resources.
	pub price_per_hour: Balance,
	/// Capacity still free.
	pub free: Resources,
	/// Country code.
	pub country: String,
	/// Attested now.
	pub attested: bool,
	/// Share of SLA probe windows met, in millionths (recent windows weigh more).
	pub reputation: u32,
}

/// A share in millionths as a percentage with one decimal.
fn percent(millionths: u32) -> String {
	format!("{:.1}%", f64::from(millionths) / 10_000.0)
}

/// The chain's ranked offers (cheapest first, then most free capacity) for `resources`.
pub async fn offers(
	at: &AtBlock,
	resources: Resources,
	filters: &Filters,
	limit: u32,
) -> Result<Vec<Offer>, CliError> {
	let requirements = types::pallet_registry::types::WorkloadRequirements {
		resources,
		country: filters.country()?,
		gpu_model: None,
		attested_only: filters.attested,
		max_price_per_hour: filters.max_price,
		limit,
	};
	let matches = at
		.runtime_apis()
		.call(runtime::runtime_apis().registry_api().match_providers(requirements))
		.await
		.map_err(CliError::chain)?;
	Ok(matches
		.into_iter()
		.map(|m| Offer {
			provider: m.provider,
			price_per_hour: m.price_per_hour,
			free: m.free,
			country: String::from_utf8_lossy(&m.country).into_owned(),
			attested: m.attested,
			reputation: m.reputation.0,
		})
		.collect())
}

fn describe(r: &Resources) -> String {
	let mut text =
		format!("{}m CPU, {} MiB, {} GiB", r.cpu_millicores, r.memory_mib, r.storage_gib);
	if r.gpus > 0 {
		text.push_str(&format!(", {} GPU", r.gpus));
	}
	text
}

/// `podchain providers`.
pub async fn list(ctx: &Context, filters: &Filters) -> Result<(), CliError> {
	let country = filters.country()?;
	let node = ctx.connect().await?;
	let at = node.finalized().await?;
	let providers =
		at.storage().entry(runtime::storage().registry().providers()).map_err(CliError::chain)?;
	let mut entries = providers.iter(()).await.map_err(CliError::chain)?;
	let mut rows = Vec::new();
	let mut json_rows = Vec::new();
	let now = std::time::SystemTime::now()
		.duration_since(std::time::UNIX_EPOCH)
		.map(|d| d.as_secs())
		.unwrap_or(0);
	while let Some(entry) = entries.next().await {
		let entry = entry.map_err(CliError::chain)?;
		let (account,) = entry.key().map_err(CliError::chain)?.decode().map_err(CliError::chain)?;
		let info = entry.value().decode().map_err(CliError::chain)?;
		if country.is_some_and(|c| c != info.region.country) {
			continue;
		}
		let attestation = crate::attestation::view(&at, &account).await?;
		let attested = attestation.as_ref().is_some_and(|a| a.current);
		if filters.attested && !attested {
			continue;
		}
		let standing = at
			.runtime_apis()
			.call(runtime::runtime_apis().sla_api().standing(account))
			.await
			.map_err(CliError::chain)?;
		let stake = at
			.storage()
			.entry(runtime::storage().provider_staking().ledgers())
			.map_err(CliError::chain)?
			.try_fetch((account,))
			.await
			.map_err(CliError::chain)?
			.map(|ledger| ledger.decode().map(|l| l.active))
			.transpose()
			.map_err(CliError::chain)?
			.unwrap_or(0);
		let c = &info.capacity.resources;
		let r = &info.reserved;
		let free = Resources {
			cpu_millicores: c.cpu_millicores.saturating_sub(r.cpu_millicores),
			memory_mib: c.memory_mib.saturating_sub(r.memory_mib),
			storage_gib: c.storage_gib.saturating_sub(r.storage_gib),
			gpus: c.gpus.saturating_sub(r.gpus),
		};
		let p = &info.prices;
		// A reference price: one CPU core and 1 GiB for an hour.
		let hour = 3600u128;
		let reference = (1000 * p.cpu_per_millicore_second + 1024 * p.memory_per_mib_second) * hour;
		if filters.max_price.is_some_and(|max| reference > max) {
			continue;
		}
		let country = String::from_utf8_lossy(&info.region.country).into_owned();
		let status = match info.status {
			types::pallet_registry::types::ProviderStatus::Active => "active",
			types::pallet_registry::types::ProviderStatus::Paused => "paused",
		};
		json_rows.push(json!({
			"provider": account.to_string(),
			"country": country,
			"attested": attested,
			"attestation": attestation.as_ref().map(|a| a.json()),
			"status": status,
			"stake": stake.to_string(),
			"reputation": standing.reputation.0,
			"quarantined": standing.quarantined,
			"windows_up": standing.windows_up,
			"windows_down": standing.windows_down,
			"free": { "cpu_millicores": free.cpu_millicores, "memory_mib": free.memory_mib,
				"storage_gib": free.storage_gib, "gpus": free.gpus },
			"prices": { "cpu_per_millicore_second": p.cpu_per_millicore_second.to_string(),
				"memory_per_mib_second": p.memory_per_mib_second.to_string(),
				"storage_per_gib_second": p.storage_per_gib_second.to_string(),
				"gpu_per_second": p.gpu_per_second.to_string(),
				"egress_per_byte": p.egress_per_byte.to_string() },
			"core_gib_hour": reference.to_string(),
		}));
		rows.push(vec![
			account.to_string(),
			country,
			attestation.as_ref().map_or_else(|| "no".to_owned(), |a| a.summary(now)),
			if standing.quarantined { "quarantined" } else { status }.to_owned(),
			format_pod(stake),
			percent(standing.reputation.0),
			describe(&free),
			format_pod(reference),
		]);
	}
	ctx.out.result(json!(json_rows), || {
		if rows.is_empty() {
			return "no providers match".to_owned();
		}
		table(
			&[
				"PROVIDER",
				"REGION",
				"ATTESTATION",
				"STATUS",
				"STAKE",
				"REPUTATION",
				"FREE",
				"1 CORE + 1 GiB / HOUR",
			],
			&rows,
		)
	});
	Ok(())
}

/// `podchain quote`.
pub async fn quote(
	ctx: &Context,
	manifest: &std::path::Path,
	duration: &str,
	filters: &Filters,
) -> Result<(), CliError> {
	let duration = parse_duration(duration).map_err(CliError::input)?;
	let manifest = Manifest::from_path(manifest).map_err(CliError::input)?;
	let resources = resources_of(&manifest)?;
	let node = ctx.connect().await?;
	let at = node.finalized().await?;
	let offers = offers(&at, resources.clone(), filters, 20).await?;
	let hours = duration.as_secs_f64() / 3600.0;
	let total =
		|per_hour: Balance| per_hour.saturating_mul(u128::from(duration.as_secs())).div_ceil(3600);
	let json_rows: Vec<_> = offers
		.iter()
		.map(|o| {
			json!({ "provider": o.provider.to_string(), "price_per_hour": o.price_per_hour.to_string(),
				"total": total(o.price_per_hour).to_string(), "country": o.country, "attested": o.attested,
				"reputation": o.reputation, "free": describe(&o.free) })
		})
		.collect();
	ctx.out.result(
		json!({ "resources": describe(&resources), "seconds": duration.as_secs(), "offers": json_rows }),
		|| {
			if offers.is_empty() {
				return format!("no provider can run {} with these filters", describe(&resources));
			}
			let rows: Vec<Vec<String>> = offers
				.iter()
				.enumerate()
				.map(|(rank, o)| {
					vec![
						(rank + 1).to_string(),
						o.provider.to_string(),
						o.country.clone(),
						format_pod(o.price_per_hour),
						format_pod(total(o.price_per_hour)),
						percent(o.reputation),
						describe(&o.free),
					]
				})
				.collect();
			format!(
				"{} for {hours} h:\n{}",
				describe(&resources),
				table(
					&["#", "PROVIDER", "REGION", "PER HOUR", "TOTAL", "REPUTATION", "FREE"],
					&rows
				)
			)
		},
	);
	Ok(())
}

/// The resources a deal must reserve for `manifest`.
pub fn resources_of(manifest: &Manifest) -> Result<Resources, CliError> {
	let totals = manifest.resources().map_err(|e| CliError::input(format!("manifest: {e}")))?;
	Ok(Resources {
		cpu_millicores: totals.cpu_millicores,
		memory_mib: totals.memory_mib,
		storage_gib: totals.storage_gib,
		gpus: totals.gpus,
	})
}
