//! Provider attestation as a publisher sees it: the chain's record, the check made before a
//! manifest is sealed to a provider, and verifying a provider's quote on this machine.

use crate::{error::CliError, Context};
use podchain_chain::{
	runtime::{self, runtime_types as types},
	AccountId, AtBlock,
};
use podchain_p2p::{
	seal::{ed25519_public_of, x25519_public_from_ed25519},
	PeerId,
};
use serde_json::{json, Value};

/// A provider's attestation as recorded on chain, judged at the block read.
#[derive(Clone, Debug)]
pub struct AttestationView {
	/// `TDX` or `SGX`.
	pub tee: &'static str,
	/// Intel's TCB status when the quote was verified.
	pub tcb_status: String,
	/// The measurement the quote reported.
	pub measurement: Vec<u8>,
	/// Advisories the TCB status listed.
	pub advisory_ids: Vec<String>,
	/// The X25519 key the quote vouched for.
	pub sealing_key: [u8; 32],
	/// When it was verified (Unix seconds).
	pub verified_at: u64,
	/// The block whose extrinsic carried the quote.
	pub verified_in_block: u32,
	/// When it stops counting (Unix seconds).
	pub expires_at: u64,
	/// Whether it counts at the block read: unexpired, measurement allowed, TCB accepted.
	pub current: bool,
}

impl AttestationView {
	/// The view as JSON.
	pub fn json(&self) -> Value {
		json!({
			"tee": self.tee, "tcb_status": self.tcb_status, "current": self.current,
			"measurement": hex(&self.measurement), "advisory_ids": self.advisory_ids,
			"sealing_key": hex(&self.sealing_key), "verified_at": self.verified_at,
			"verified_in_block": self.verified_in_block, "expires_at": self.expires_at,
		})
	}

	/// One line: `TDX UpToDate until 2026-12-31` (or `... expired`, `... no longer accepted`).
	pub fn summary(&self, now: u64) -> String {
		let state = if self.current {
			format!("until {}", date(self.expires_at))
		} else if now >= self.expires_at {
			format!("expired {}", date(self.expires_at))
		} else {
			"no longer accepted".to_owned()
		};
		format!("{} {} {state}", self.tee, self.tcb_status)
	}
}

/// `provider`'s attestation at `at`, if it ever attested.
pub async fn view(at: &AtBlock, provider: &AccountId) -> Result<Option<AttestationView>, CliError> {
	let api = runtime::runtime_apis().registry_api().provider(*provider);
	let Some(view) = at.runtime_apis().call(api).await.map_err(CliError::chain)? else {
		return Ok(None);
	};
	Ok(view.info.attestation.map(|a| from_record(a, view.attested)))
}

fn from_record(
	a: types::pallet_registry::types::Attestation<u32>,
	current: bool,
) -> AttestationView {
	use types::podchain_attestation::types::{TcbStatus, TeeType};
	let tcb_status = match a.tcb_status {
		TcbStatus::UpToDate => "UpToDate",
		TcbStatus::SWHardeningNeeded => "SWHardeningNeeded",
		TcbStatus::ConfigurationNeeded => "ConfigurationNeeded",
		TcbStatus::ConfigurationAndSWHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
		TcbStatus::OutOfDate => "OutOfDate",
		TcbStatus::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
		TcbStatus::TdRelaunchAdvised => "TdRelaunchAdvised",
		TcbStatus::TdRelaunchAdvisedConfigurationNeeded => "TdRelaunchAdvisedConfigurationNeeded",
		TcbStatus::Revoked => "Revoked",
	};
	AttestationView {
		tee: match a.tee {
			TeeType::IntelTdx => "TDX",
			TeeType::IntelSgx => "SGX",
		},
		tcb_status: tcb_status.to_owned(),
		measurement: a.measurement.0,
		advisory_ids: a
			.advisory_ids
			.0
			.into_iter()
			.map(|id| String::from_utf8_lossy(&id.0).into_owned())
			.collect(),
		sealing_key: a.sealing_key,
		verified_at: a.verified_at,
		verified_in_block: a.verified_in_block,
		expires_at: a.expires_at,
		current,
	}
}

/// Refuses to seal a manifest to `peer`, the registered agent of `provider`, unless its
/// attestation (if any) vouches for exactly the key the manifest would be sealed to; with
/// `require_attested`, also unless it is attested now.
pub fn check_before_sealing(
	provider: &AccountId,
	peer: &PeerId,
	attestation: Option<&AttestationView>,
	require_attested: bool,
) -> Result<(), CliError> {
	if require_attested && !attestation.is_some_and(|a| a.current) {
		let why = match attestation {
			None => "it never attested".to_owned(),
			Some(a) => format!("its attestation ({}) does not count now", a.summary(now())),
		};
		return Err(CliError::provider(format!(
			"provider {provider} is not attested ({why}); --attested refuses to seal to it"
		)));
	}
	let Some(attestation) = attestation else { return Ok(()) };
	let sealing_key = ed25519_public_of(peer)
		.and_then(|key| x25519_public_from_ed25519(&key))
		.map_err(|e| CliError::provider(format!("provider {provider}'s peer id {peer}: {e}")))?;
	if sealing_key != attestation.sealing_key {
		return Err(CliError::provider(format!(
			"provider {provider}'s attestation vouches for sealing key {} but its agent {peer} \
			 would be sealed to {}: refusing to seal the manifest",
			hex(&attestation.sealing_key),
			hex(&sealing_key)
		)));
	}
	Ok(())
}

/// `podchain providers --verify ACCOUNT`: reads the quote and collateral from the extrinsic
/// that attested the provider and verifies them here, with the same verifier the chain uses,
/// at the time the chain verified them.
pub async fn verify(ctx: &Context, provider: &str) -> Result<(), CliError> {
	let account: AccountId = provider
		.parse()
		.map_err(|_| CliError::input(format!("{provider:?} is not an account address")))?;
	let node = ctx.connect().await?;
	let at = node.finalized().await?;
	let Some(record) = view(&at, &account).await? else {
		return Err(CliError::input(format!("{account} has no attestation on chain")));
	};
	let block =
		node.api.at_block(u64::from(record.verified_in_block)).await.map_err(CliError::chain)?;
	let extrinsics = block.extrinsics().fetch().await.map_err(CliError::chain)?;
	let mut call = None;
	for extrinsic in extrinsics.iter() {
		let extrinsic = extrinsic.map_err(CliError::chain)?;
		let signer = extrinsic.address_bytes().and_then(|a| a.get(1..33));
		if signer != Some(&account.0[..]) {
			continue;
		}
		let Some(Ok(attest)) =
			extrinsic.decode_call_data_fields_as::<runtime::registry::calls::Attest>()
		else {
			continue;
		};
		// The one that succeeded: a provider may have sent failing ones in the same block.
		let events = extrinsic.events().await.map_err(CliError::chain)?;
		if events.find::<runtime::registry::events::ProviderAttested>().next().is_some() {
			call = Some(attest);
		}
	}
	let Some(call) = call else {
		return Err(CliError::chain(format!(
			"block {} holds no successful attest of {account}; is the node pruning bodies?",
			record.verified_in_block
		)));
	};
	let collateral = collateral_of(&call.collateral)?;
	let verified = podchain_attestation::verify_quote(
		&call.quote.0,
		&collateral,
		podchain_attestation::INTEL_SGX_ROOT_CA_DER,
		record.verified_at,
	)
	.map_err(|e| CliError::refused(format!("the quote does not verify here: {e:?}")))?;
	let endpoint = crate::provider_link::endpoint(&at, &account).await?;
	let binding = podchain_attestation::binding(
		&account.0,
		endpoint.peer.to_string().as_bytes(),
		&call.sealing_key,
	);
	let bound = verified.report_data[..32] == binding;
	let same = verified.measurement.to_vec() == record.measurement
		&& call.sealing_key == record.sealing_key;
	let tee = match verified.tee {
		podchain_attestation::TeeType::IntelTdx => "TDX",
		podchain_attestation::TeeType::IntelSgx => "SGX",
	};
	let summary = json!({
		"provider": account.to_string(), "tee": tee,
		"tcb_status": format!("{:?}", verified.tcb_status),
		"advisory_ids": verified.advisory_ids.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>(),
		"measurement": hex(&verified.measurement), "report_data": hex(&verified.report_data),
		"binding_matches": bound, "matches_chain_record": same,
		"verified_at": record.verified_at, "collateral_expires_at": verified.collateral_expires_at,
		"attested_now": record.current, "peer_id": endpoint.peer.to_string(),
	});
	ctx.out.result(summary, || {
		format!(
			"provider {account}: the quote from block {} verifies here\n\
			 TEE          {tee}\n\
			 TCB status   {:?} {:?}\n\
			 measurement  {}\n\
			 report data  {}\n\
			 binding      {} (account, peer id {}, sealing key {})\n\
			 chain record {}\n\
			 attested now {}",
			record.verified_in_block,
			verified.tcb_status,
			verified
				.advisory_ids
				.iter()
				.map(|a| String::from_utf8_lossy(a).into_owned())
				.collect::<Vec<_>>(),
			hex(&verified.measurement),
			hex(&verified.report_data),
			if bound { "matches" } else { "DOES NOT MATCH" },
			endpoint.peer,
			hex(&call.sealing_key),
			if same { "matches the quote" } else { "DIFFERS from the quote" },
			record.summary(now()),
		)
	});
	if bound && same {
		Ok(())
	} else {
		Err(CliError::refused("the provider's quote does not back its chain record"))
	}
}

/// The collateral as the verifier takes it.
fn collateral_of(
	c: &types::podchain_attestation::types::Collateral,
) -> Result<podchain_attestation::Collateral, CliError> {
	type Field = types::bounded_collections::bounded_vec::BoundedVec<u8>;
	let field = |f: &Field| {
		podchain_attestation::CollateralField::try_from(f.0.clone())
			.map_err(|_| CliError::chain("a collateral field is larger than the chain allows"))
	};
	Ok(podchain_attestation::Collateral {
		pck_crl_issuer_chain: field(&c.pck_crl_issuer_chain)?,
		root_ca_crl: field(&c.root_ca_crl)?,
		pck_crl: field(&c.pck_crl)?,
		tcb_info_issuer_chain: field(&c.tcb_info_issuer_chain)?,
		tcb_info: field(&c.tcb_info)?,
		tcb_info_signature: field(&c.tcb_info_signature)?,
		qe_identity_issuer_chain: field(&c.qe_identity_issuer_chain)?,
		qe_identity: field(&c.qe_identity)?,
		qe_identity_signature: field(&c.qe_identity_signature)?,
		pck_certificate_chain: c.pck_certificate_chain.as_ref().map(field).transpose()?,
	})
}

fn hex(bytes: &[u8]) -> String {
	let digits: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
	format!("0x{digits}")
}

/// Now, in Unix seconds.
fn now() -> u64 {
	std::time::SystemTime::now()
		.duration_since(std::time::UNIX_EPOCH)
		.map(|d| d.as_secs())
		.unwrap_or(0)
}

/// A Unix time as `YYYY-MM-DD` (UTC).
pub fn date(unix_secs: u64) -> String {
	// Civil date from days since 1970-01-01, counting years from March.
	let days = unix_secs / 86_400 + 719_468;
	let era = days / 146_097;
	let day_of_era = days % 146_097;
	let year_of_era =
		(day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
	let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
	let month_index = (5 * day_of_year + 2) / 153;
	let day = day_of_year - (153 * month_index + 2) / 5 + 1;
	let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
	let year = era * 400 + year_of_era + u64::from(month <= 2);
	format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn dates_print_in_utc() {
		assert_eq!(date(0), "1970-01-01");
		assert_eq!(date(1_709_251_199), "2024-02-29");
		assert_eq!(date(1_752_919_235), "2025-07-19");
	}

	fn record(sealing_key: [u8; 32], current: bool) -> AttestationView {
		AttestationView {
			tee: "TDX",
			tcb_status: "UpToDate".into(),
			measurement: vec![1; 240],
			advisory_ids: vec![],
			sealing_key,
			verified_at: 1,
			verified_in_block: 1,
			expires_at: 2,
			current,
		}
	}

	#[test]
	fn manifests_are_sealed_only_to_the_key_the_quote_vouched_for() {
		let provider = AccountId::from([1; 32]);
		let keypair = podchain_p2p::Keypair::generate_ed25519();
		let peer = keypair.public().to_peer_id();
		let key = x25519_public_from_ed25519(&ed25519_public_of(&peer).unwrap()).unwrap();
		// Unattested providers: fine unless attestation is required.
		assert!(check_before_sealing(&provider, &peer, None, false).is_ok());
		assert_eq!(check_before_sealing(&provider, &peer, None, true).unwrap_err().code(), 5);
		// The quote vouched for this agent's key.
		assert!(check_before_sealing(&provider, &peer, Some(&record(key, true)), true).is_ok());
		// Expired or no longer accepted: refused only when required.
		let stale = record(key, false);
		assert!(check_before_sealing(&provider, &peer, Some(&stale), false).is_ok());
		assert!(check_before_sealing(&provider, &peer, Some(&stale), true).is_err());
		// Another key than the agent's: always refused.
		let error = check_before_sealing(&provider, &peer, Some(&record([9; 32], true)), false)
			.unwrap_err();
		assert_eq!(error.code(), 5);
		assert!(error.to_string().contains("refusing to seal"), "{error}");
	}
}
