//! The verifier's native side: `dcap-qvl` in the node, and what its verdicts mean for podchain.

use crate::{
	AdvisoryId, AdvisoryIds, Collateral, Measurement, QuoteError, TcbStatus, TeeType,
	VerifiedQuote, MAX_QUOTE_LEN,
};
use codec::DecodeAll;
use dcap_qvl::{quote::Report, verify::QuoteVerifier, QuoteCollateralV3, QuotePolicy};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// TEE type codes in a quote's header.
const TEE_SGX: u32 = 0x0000_0000;
const TEE_TDX: u32 = 0x0000_0081;

/// See [`crate::dcap::verify`]. Never panics: a panic in a host function would stop the node
/// importing the block, so one in the parser is caught and reported as a malformed quote.
pub(crate) fn verify(
	quote: &[u8],
	collateral: &[u8],
	root_ca_der: &[u8],
	now_secs: u64,
) -> Result<VerifiedQuote, QuoteError> {
	let _unwind = sp_panic_handler::AbortGuard::force_unwind();
	catch_unwind(AssertUnwindSafe(|| verify_unguarded(quote, collateral, root_ca_der, now_secs)))
		.unwrap_or(Err(QuoteError::Malformed))
}

fn verify_unguarded(
	quote: &[u8],
	collateral: &[u8],
	root_ca_der: &[u8],
	now_secs: u64,
) -> Result<VerifiedQuote, QuoteError> {
	if quote.len() > MAX_QUOTE_LEN as usize {
		return Err(QuoteError::Malformed);
	}
	let collateral =
		Collateral::decode_all(&mut &collateral[..]).map_err(|_| QuoteError::InvalidCollateral)?;
	let collateral = to_dcap(&collateral)?;
	// Parsed first, so that a malformed quote is told apart from an untrusted one.
	dcap_qvl::quote::Quote::parse(quote).map_err(|_| QuoteError::Malformed)?;
	check_validity_window(&collateral, now_secs)?;
	let claims = QuoteVerifier::new(root_ca_der.to_vec())
		.verify_with_policy(quote, collateral, now_secs, &QuotePolicy::claims_only(now_secs))
		.map_err(|e| classify(&e))?;
	let (tee, measurement, report_data) = match (claims.tee_type, &claims.report) {
		(TEE_SGX, Report::SgxEnclave(report)) => {
			let measurement = [&report.mr_enclave[..], &report.mr_signer[..]].concat();
			(TeeType::IntelSgx, measurement, report.report_data)
		}
		(TEE_TDX, report) => {
			let td = report.as_td10().ok_or(QuoteError::Malformed)?;
			let measurement = [td.mr_td, td.rt_mr0, td.rt_mr1, td.rt_mr2, td.rt_mr3].concat();
			(TeeType::IntelTdx, measurement, td.report_data)
		}
		_ => return Err(QuoteError::Malformed),
	};
	let advisory_ids = claims
		.tcb
		.advisory_ids
		.iter()
		.map(|id| AdvisoryId::try_from(id.as_bytes().to_vec()))
		.collect::<Result<Vec<_>, _>>()
		.ok()
		.and_then(|ids| AdvisoryIds::try_from(ids).ok())
		.ok_or(QuoteError::InvalidCollateral)?;
	Ok(VerifiedQuote {
		tee,
		measurement: Measurement::try_from(measurement).map_err(|_| QuoteError::Malformed)?,
		report_data,
		tcb_status: tcb_status(claims.tcb.status),
		advisory_ids,
		collateral_expires_at: claims.earliest_expiration_date,
	})
}

fn tcb_status(status: dcap_qvl::TcbStatus) -> TcbStatus {
	use dcap_qvl::TcbStatus as Intel;
	match status {
		Intel::UpToDate => TcbStatus::UpToDate,
		Intel::SWHardeningNeeded => TcbStatus::SWHardeningNeeded,
		Intel::ConfigurationNeeded => TcbStatus::ConfigurationNeeded,
		Intel::ConfigurationAndSWHardeningNeeded => TcbStatus::ConfigurationAndSWHardeningNeeded,
		Intel::OutOfDate => TcbStatus::OutOfDate,
		Intel::OutOfDateConfigurationNeeded => TcbStatus::OutOfDateConfigurationNeeded,
		Intel::TDRelaunchAdvised => TcbStatus::TdRelaunchAdvised,
		Intel::TDRelaunchAdvisedConfigurationNeeded => {
			TcbStatus::TdRelaunchAdvisedConfigurationNeeded
		}
		Intel::Revoked => TcbStatus::Revoked,
	}
}

/// The collateral in `dcap-qvl`'s form: text fields must be UTF-8.
fn to_dcap(c: &Collateral) -> Result<QuoteCollateralV3, QuoteError> {
	let text =
		|field: &[u8]| String::from_utf8(field.to_vec()).map_err(|_| QuoteError::InvalidCollateral);
	Ok(QuoteCollateralV3 {
		pck_crl_issuer_chain: text(&c.pck_crl_issuer_chain)?,
		root_ca_crl: c.root_ca_crl.to_vec(),
		pck_crl: c.pck_crl.to_vec(),
		tcb_info_issuer_chain: text(&c.tcb_info_issuer_chain)?,
		tcb_info: text(&c.tcb_info)?,
		tcb_info_signature: c.tcb_info_signature.to_vec(),
		qe_identity_issuer_chain: text(&c.qe_identity_issuer_chain)?,
		qe_identity: text(&c.qe_identity)?,
		qe_identity_signature: c.qe_identity_signature.to_vec(),
		pck_certificate_chain: c
			.pck_certificate_chain
			.as_ref()
			.map(|chain| text(chain))
			.transpose()?,
	})
}

/// Refuses TCB info or a QE identity that is not valid at `now` with a named reason (the
/// verifier refuses them too, with a message only).
fn check_validity_window(c: &QuoteCollateralV3, now: u64) -> Result<(), QuoteError> {
	#[derive(serde::Deserialize)]
	#[serde(rename_all = "camelCase")]
	struct Window {
		issue_date: String,
		next_update: String,
	}
	for json in [&c.tcb_info, &c.qe_identity] {
		let window: Window =
			serde_json::from_str(json).map_err(|_| QuoteError::InvalidCollateral)?;
		let issued = unix_seconds(&window.issue_date).ok_or(QuoteError::InvalidCollateral)?;
		let next = unix_seconds(&window.next_update).ok_or(QuoteError::InvalidCollateral)?;
		if now < issued {
			return Err(QuoteError::CollateralNotYetValid);
		}
		if now >= next {
			return Err(QuoteError::CollateralExpired);
		}
	}
	Ok(())
}

/// `YYYY-MM-DDTHH:MM:SSZ` (what Intel's collateral uses) as Unix seconds.
pub(crate) fn unix_seconds(text: &str) -> Option<u64> {
	let b = text.as_bytes();
	if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
		return None;
	}
	if b[13] != b':' || b[16] != b':' {
		return None;
	}
	let number = |from: usize, to: usize| text.get(from..to)?.parse::<u64>().ok();
	let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
	let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
	if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
		return None;
	}
	if second > 60 || year < 1970 {
		return None;
	}
	// Days from the civil date (proleptic Gregorian), counting years from March.
	let (y, m) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
	let era = y / 400;
	let year_of_era = y - era * 400;
	let day_of_year = (153 * m + 2) / 5 + day - 1;
	let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
	let days = (era * 146_097 + day_of_era).checked_sub(719_468)?;
	Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Names what went wrong from the verifier's message.
fn classify(error: &impl std::fmt::Display) -> QuoteError {
	let text = format!("{error:#}").to_ascii_lowercase();
	if text.contains("notvalidyet") || text.contains("not yet valid") {
		QuoteError::CollateralNotYetValid
	} else if text.contains("expired") {
		QuoteError::CollateralExpired
	} else if text.contains("failed to parse") || text.contains("invalid pem") {
		QuoteError::InvalidCollateral
	} else {
		QuoteError::Untrusted
	}
}

#[cfg(test)]
mod tests {
	use super::unix_seconds;

	#[test]
	fn intel_dates_read_as_unix_seconds() {
		assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
		assert_eq!(unix_seconds("2025-06-19T10:16:03Z"), Some(1_750_328_163));
		assert_eq!(unix_seconds("2024-02-29T23:59:59Z"), Some(1_709_251_199));
		for bad in ["2025-06-19 10:16:03Z", "2025-13-01T00:00:00Z", "2025-06-19T10:16:03", ""] {
			assert_eq!(unix_seconds(bad), None, "{bad}");
		}
	}
}
