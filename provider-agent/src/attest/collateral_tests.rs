//! Collateral from a file and from a PCCS: a hyper server on 127.0.0.1 answers the PCCS v4
//! requests with responses recorded from Intel's sample collateral.

use super::collateral::{CollateralSource, Pccs};
use http_body_util::Full;
use hyper::{body::Bytes, server::conn::http1, service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;
use podchain_attestation::Collateral;
use std::{
	convert::Infallible,
	path::PathBuf,
	sync::{Arc, Mutex},
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../primitives/attestation/fixtures");
/// A time inside the sample collateral's validity (2025-06-20).
const SAMPLE_TIME: u64 = 1_750_377_600;

fn fixture(name: &str) -> Vec<u8> {
	std::fs::read(PathBuf::from(FIXTURES).join(name)).unwrap()
}

/// The sample collateral's fields, as its JSON has them.
fn sample_fields() -> serde_json::Map<String, serde_json::Value> {
	serde_json::from_slice(&fixture("tdx_quote_collateral.json")).unwrap()
}

fn field(fields: &serde_json::Map<String, serde_json::Value>, name: &str) -> String {
	fields[name].as_str().unwrap().to_owned()
}

/// What a PCCS escapes in headers.
fn percent_encode(text: &str) -> String {
	text.bytes()
		.map(|b| match b {
			b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
				(b as char).to_string()
			}
			_ => format!("%{b:02X}"),
		})
		.collect()
}

/// The PCCS's answer to `path_and_query`, recorded from the sample collateral.
fn recorded(path_and_query: &str) -> Response<Full<Bytes>> {
	let c = sample_fields();
	let answer = |header: Option<(&str, String)>, body: Vec<u8>| {
		let mut response = Response::builder().status(200);
		if let Some((name, value)) = header {
			response = response.header(name, percent_encode(&value));
		}
		response.body(Full::new(Bytes::from(body))).unwrap()
	};
	let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
	match path {
		"/sgx/certification/v4/pckcrl" if query.contains("encoding=der") => answer(
			Some(("SGX-PCK-CRL-Issuer-Chain", field(&c, "pck_crl_issuer_chain"))),
			hex::decode(field(&c, "pck_crl")).unwrap(),
		),
		"/tdx/certification/v4/tcb" => answer(
			Some(("TCB-Info-Issuer-Chain", field(&c, "tcb_info_issuer_chain"))),
			format!(
				r#"{{"tcbInfo":{},"signature":"{}"}}"#,
				field(&c, "tcb_info"),
				field(&c, "tcb_info_signature")
			)
			.into_bytes(),
		),
		"/tdx/certification/v4/qe/identity" => answer(
			Some(("SGX-Enclave-Identity-Issuer-Chain", field(&c, "qe_identity_issuer_chain"))),
			format!(
				r#"{{"enclaveIdentity":{},"signature":"{}"}}"#,
				field(&c, "qe_identity"),
				field(&c, "qe_identity_signature")
			)
			.into_bytes(),
		),
		// A PCCS serves the root CA CRL as hex text.
		"/sgx/certification/v4/rootcacrl" => answer(None, field(&c, "root_ca_crl").into_bytes()),
		_ => Response::builder().status(404).body(Full::new(Bytes::new())).unwrap(),
	}
}

/// A PCCS on 127.0.0.1 serving the recorded answers; its URL and the requests it got.
async fn recorded_pccs() -> (String, Arc<Mutex<Vec<String>>>) {
	let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
	let addr = listener.local_addr().unwrap();
	let requests = Arc::new(Mutex::new(Vec::new()));
	let seen = requests.clone();
	tokio::spawn(async move {
		while let Ok((stream, _)) = listener.accept().await {
			let seen = seen.clone();
			tokio::spawn(async move {
				let service = service_fn(move |request: Request<hyper::body::Incoming>| {
					let target = request.uri().path_and_query().map(|p| p.to_string());
					let target = target.unwrap_or_default();
					seen.lock().unwrap().push(target.clone());
					async move { Ok::<_, Infallible>(recorded(&target)) }
				});
				let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
			});
		}
	});
	(format!("http://{addr}"), requests)
}

#[tokio::test]
async fn a_pccs_serves_the_collateral_the_quote_verifies_against() {
	let (url, requests) = recorded_pccs().await;
	let quote = fixture("tdx_quote");
	let fetched = CollateralSource::Pccs(format!("{url}/sgx/certification/v4/"))
		.collateral(&quote)
		.await
		.unwrap();

	// The platform named by the quote's PCK certificate.
	let requests = requests.lock().unwrap().clone();
	assert!(
		requests.iter().any(|r| r.starts_with("/tdx/certification/v4/tcb?fmspc=B0C06F000000")),
		"{requests:?}"
	);
	assert!(requests.iter().any(|r| r.starts_with("/sgx/certification/v4/pckcrl?ca=")));
	// Exactly the sample's collateral, signed bodies byte for byte, and it verifies.
	let sample = Collateral::from_json(&fixture("tdx_quote_collateral.json")).unwrap();
	assert_eq!(fetched, sample);
	let verified = podchain_attestation::verify_quote(
		&quote,
		&fetched,
		podchain_attestation::INTEL_SGX_ROOT_CA_DER,
		SAMPLE_TIME,
	)
	.unwrap();
	assert_eq!(verified.tee, podchain_attestation::TeeType::IntelTdx);
}

#[tokio::test]
async fn pccs_failures_are_named() {
	let (url, _) = recorded_pccs().await;
	// An SGX quote asks for SGX collateral, which this PCCS does not have.
	let err = CollateralSource::Pccs(url)
		.collateral(&fixture("sgx_quote"))
		.await
		.unwrap_err()
		.to_string();
	assert!(err.contains("/sgx/certification/v4/tcb") && err.contains("404"), "{err}");

	let err = CollateralSource::Pccs("http://127.0.0.1:1".into())
		.collateral(&fixture("tdx_quote"))
		.await
		.unwrap_err()
		.to_string();
	assert!(err.starts_with("PCCS http://127.0.0.1:1/"), "{err}");

	let err = CollateralSource::Pccs("http://127.0.0.1:1".into())
		.collateral(b"not a quote")
		.await
		.unwrap_err()
		.to_string();
	assert!(err.contains("quote"), "{err}");
	assert!(Pccs::new("ftp://pccs").is_err());
}

#[tokio::test]
async fn a_collateral_file_works_offline() {
	let path = PathBuf::from(FIXTURES).join("tdx_quote_collateral.json");
	let read = CollateralSource::File(path).collateral(&[]).await.unwrap();
	assert_eq!(read, Collateral::from_json(&fixture("tdx_quote_collateral.json")).unwrap());
	let err = CollateralSource::File(PathBuf::from(FIXTURES).join("tdx_quote"))
		.collateral(&[])
		.await
		.unwrap_err()
		.to_string();
	assert!(err.contains("not collateral JSON"), "{err}");
}
