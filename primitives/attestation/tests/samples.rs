//! The verifier on genuine Intel quotes: the TDX and SGX samples that `dcap-qvl` publishes
//! with their collateral (see `fixtures/README.md`), read at offsets from Intel's quote layout
//! rather than through the verifier, then altered byte by byte and read at the wrong time.

use podchain_attestation::{
	verify_quote, Collateral, QuoteError, TcbStatus, TeeType, INTEL_SGX_ROOT_CA_DER,
};

const TDX_QUOTE: &[u8] = include_bytes!("../fixtures/tdx_quote");
const TDX_COLLATERAL: &[u8] = include_bytes!("../fixtures/tdx_quote_collateral.json");
const SGX_QUOTE: &[u8] = include_bytes!("../fixtures/sgx_quote");
const SGX_COLLATERAL: &[u8] = include_bytes!("../fixtures/sgx_quote_collateral.json");

/// A day after the samples' TCB info was issued (2025-06-19), inside every validity window.
const SAMPLE_TIME: u64 = 1_750_377_600;
/// The day the TDX sample's TCB info expires (2025-07-19T10:16:03Z) and the second after.
const TDX_TCB_NEXT_UPDATE: u64 = 1_752_920_163;

/// Quote layout (Intel's DCAP quote format): a 48-byte header, then the report body.
const HEADER: usize = 48;
/// TDX 1.0 report body: MRTD at 136, RTMR0-3 at 328, report data at 520.
const TD_MR_TD: usize = HEADER + 136;
const TD_RTMR0: usize = HEADER + 328;
const TD_REPORT_DATA: usize = HEADER + 520;
const TD_BODY_END: usize = HEADER + 584;
/// SGX report body: MRENCLAVE at 64, MRSIGNER at 128, report data at 320.
const SGX_MR_ENCLAVE: usize = HEADER + 64;
const SGX_MR_SIGNER: usize = HEADER + 128;
const SGX_REPORT_DATA: usize = HEADER + 320;

fn collateral(json: &[u8]) -> Collateral {
	Collateral::from_json(json).expect("sample collateral")
}

fn verify(quote: &[u8], collateral: &Collateral, now: u64) -> Result<TeeType, QuoteError> {
	verify_quote(quote, collateral, INTEL_SGX_ROOT_CA_DER, now).map(|v| v.tee)
}

#[test]
fn the_genuine_tdx_quote_verifies_and_reports_its_measurement() {
	let verified =
		verify_quote(TDX_QUOTE, &collateral(TDX_COLLATERAL), INTEL_SGX_ROOT_CA_DER, SAMPLE_TIME)
			.expect("the genuine TDX sample verifies");
	assert_eq!(verified.tee, TeeType::IntelTdx);
	let expected =
		[&TDX_QUOTE[TD_MR_TD..TD_MR_TD + 48], &TDX_QUOTE[TD_RTMR0..TD_RTMR0 + 4 * 48]].concat();
	assert_eq!(verified.measurement.to_vec(), expected);
	assert_eq!(verified.report_data[..], TDX_QUOTE[TD_REPORT_DATA..TD_REPORT_DATA + 64]);
	assert!(verified.collateral_expires_at > SAMPLE_TIME);
	assert!(verified.collateral_expires_at <= TDX_TCB_NEXT_UPDATE);
	println!("TDX sample: {:?}, advisories {:?}", verified.tcb_status, verified.advisory_ids);
}

#[test]
fn the_genuine_sgx_quote_verifies_with_its_tcb_status_and_advisories() {
	let verified =
		verify_quote(SGX_QUOTE, &collateral(SGX_COLLATERAL), INTEL_SGX_ROOT_CA_DER, SAMPLE_TIME)
			.expect("the genuine SGX sample verifies");
	assert_eq!(verified.tee, TeeType::IntelSgx);
	let expected = [
		&SGX_QUOTE[SGX_MR_ENCLAVE..SGX_MR_ENCLAVE + 32],
		&SGX_QUOTE[SGX_MR_SIGNER..SGX_MR_SIGNER + 32],
	]
	.concat();
	assert_eq!(verified.measurement.to_vec(), expected);
	assert_eq!(verified.report_data[..], SGX_QUOTE[SGX_REPORT_DATA..SGX_REPORT_DATA + 64]);
	assert_eq!(verified.tcb_status, TcbStatus::ConfigurationAndSWHardeningNeeded);
	let advisories: Vec<&[u8]> = verified.advisory_ids.iter().map(|a| &a[..]).collect();
	assert_eq!(advisories, [&b"INTEL-SA-00289"[..], &b"INTEL-SA-00615"[..]]);
}

#[test]
fn a_flipped_byte_anywhere_is_refused() {
	let collateral = collateral(TDX_COLLATERAL);
	let signature = TD_BODY_END + 4;
	// Inside the PCK leaf certificate, the first of the chain the quote carries (the chain's
	// own copy of the root counts for nothing: the root is pinned).
	let begin = b"-----BEGIN CERTIFICATE-----";
	let cert_chain =
		TDX_QUOTE.windows(begin.len()).position(|w| w == begin).expect("a chain") + 200;
	for (place, at) in [
		("the header's QE vendor id", 12),
		("the MRTD", TD_MR_TD + 5),
		("the report data", TD_REPORT_DATA),
		("the quote signature", signature),
		("the attestation key", signature + 64),
		("the QE report", signature + 128 + 10),
		("the PCK certificate chain", cert_chain),
	] {
		let mut quote = TDX_QUOTE.to_vec();
		quote[at] ^= 0x01;
		let outcome = verify(&quote, &collateral, SAMPLE_TIME);
		assert!(
			matches!(outcome, Err(QuoteError::Untrusted | QuoteError::Malformed)),
			"{place} altered: {outcome:?}"
		);
	}
}

#[test]
fn altered_collateral_or_another_root_is_refused() {
	let genuine = collateral(TDX_COLLATERAL);
	let mut tcb_info = genuine.clone();
	let text = String::from_utf8(tcb_info.tcb_info.to_vec()).expect("text");
	tcb_info.tcb_info =
		text.replacen("OutOfDate", "UpToDate", 1).into_bytes().try_into().expect("fits");
	assert_ne!(tcb_info, genuine, "the sample lists an OutOfDate level to promote");
	assert_eq!(verify(TDX_QUOTE, &tcb_info, SAMPLE_TIME), Err(QuoteError::Untrusted));

	let mut signature = genuine.clone();
	signature.qe_identity_signature[3] ^= 0x80;
	assert_eq!(verify(TDX_QUOTE, &signature, SAMPLE_TIME), Err(QuoteError::Untrusted));

	// Another root key: a byte of the root's public key (after its BIT STRING header) flipped.
	let mut root = INTEL_SGX_ROOT_CA_DER.to_vec();
	let key_header = [0x03, 0x42, 0x00, 0x04];
	let key = root.windows(4).position(|w| w == key_header).expect("an EC public key") + 10;
	root[key] ^= 0x01;
	let outcome = verify_quote(TDX_QUOTE, &genuine, &root, SAMPLE_TIME).map(|v| v.tee);
	assert!(
		matches!(outcome, Err(QuoteError::Untrusted | QuoteError::InvalidCollateral)),
		"{outcome:?}"
	);
}

#[test]
fn outside_the_collaterals_validity_it_is_refused() {
	let collateral = collateral(TDX_COLLATERAL);
	// The first expiry of all the collateral (a CRL's, here), inside the TCB info's window.
	let expires = verify_quote(TDX_QUOTE, &collateral, INTEL_SGX_ROOT_CA_DER, SAMPLE_TIME)
		.expect("verifies")
		.collateral_expires_at;
	println!("the TDX sample's collateral expires at {expires}");
	assert!(expires < TDX_TCB_NEXT_UPDATE);
	assert_eq!(verify(TDX_QUOTE, &collateral, expires - 1), Ok(TeeType::IntelTdx));
	assert_eq!(verify(TDX_QUOTE, &collateral, expires + 1), Err(QuoteError::CollateralExpired));
	assert_eq!(
		verify(TDX_QUOTE, &collateral, TDX_TCB_NEXT_UPDATE),
		Err(QuoteError::CollateralExpired)
	);
	assert_eq!(
		verify(TDX_QUOTE, &collateral, 1_700_000_000),
		Err(QuoteError::CollateralNotYetValid)
	);
	// Today: the samples' collateral has long expired.
	let now = std::time::SystemTime::now()
		.duration_since(std::time::UNIX_EPOCH)
		.expect("clock")
		.as_secs();
	assert_eq!(verify(TDX_QUOTE, &collateral, now), Err(QuoteError::CollateralExpired));
}

#[test]
fn garbage_never_panics_and_is_malformed() {
	let collateral = collateral(SGX_COLLATERAL);
	assert_eq!(verify(&[], &collateral, SAMPLE_TIME), Err(QuoteError::Malformed));
	assert_eq!(verify(&[0xff; 600], &collateral, SAMPLE_TIME), Err(QuoteError::Malformed));
	assert_eq!(verify(&TDX_QUOTE[..700], &collateral, SAMPLE_TIME), Err(QuoteError::Malformed));
	assert_eq!(verify(&vec![0; 9000], &collateral, SAMPLE_TIME), Err(QuoteError::Malformed));
	// Every truncation of a genuine quote is refused without a panic.
	for len in (0..SGX_QUOTE.len()).step_by(97) {
		assert!(verify(&SGX_QUOTE[..len], &collateral, SAMPLE_TIME).is_err(), "{len} bytes");
	}
	let mut not_text = collateral.clone();
	not_text.tcb_info[0] = 0xff;
	assert_eq!(verify(SGX_QUOTE, &not_text, SAMPLE_TIME), Err(QuoteError::InvalidCollateral));
}

/// `fixtures/tdx_quote_collateral.scale` (the benchmarks' copy, read without JSON) is the
/// JSON's collateral. `PODCHAIN_UPDATE_FIXTURES=1` rewrites it.
#[test]
fn the_scale_fixture_is_the_json_collateral() {
	use codec::Encode;
	let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/tdx_quote_collateral.scale");
	let encoded = collateral(TDX_COLLATERAL).encode();
	if std::env::var_os("PODCHAIN_UPDATE_FIXTURES").is_some() {
		std::fs::write(path, &encoded).expect("writes the fixture");
	}
	assert!(std::fs::read(path).unwrap_or_default() == encoded, "{path} is stale");
}
