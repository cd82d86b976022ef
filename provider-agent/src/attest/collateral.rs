//! The collateral a quote is verified against: from a file (offline operation), or fetched
//! from a PCCS (or Intel's PCS) with the PCCS v4 API: the PCK CRL, the TCB info for the
//! platform's FMSPC, the QE identity and Intel's root CA CRL.

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_rustls::{ConfigBuilderExt, HttpsConnector};
use hyper_util::{
	client::legacy::{connect::HttpConnector, Client},
	rt::TokioExecutor,
};
use podchain_attestation::Collateral;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::{path::PathBuf, sync::Arc, time::Duration};

/// Where Intel publishes its root CA's CRL (the root certificate's CRL distribution point),
/// for services that do not serve `rootcacrl` themselves (Intel's PCS).
const INTEL_ROOT_CA_CRL_URL: &str =
	"https://certificates.trustedservices.intel.com/IntelSGXRootCA.der";
/// Largest response taken from a PCCS.
const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Longest a PCCS request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Certification data type of a quote carrying its PCK certificate chain.
const PCK_CERT_CHAIN: u16 = 5;

/// Where collateral comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CollateralSource {
	/// A file in `dcap-qvl`'s JSON form (what `Collateral::from_json` reads).
	File(PathBuf),
	/// A PCCS (or Intel's PCS) base URL, such as `https://pccs.example:8081`.
	Pccs(String),
}

/// Why no collateral was obtained.
#[derive(Debug, thiserror::Error)]
pub enum CollateralError {
	/// The collateral file could not be read or is not collateral.
	#[error("collateral file {path}: {message}")]
	File {
		/// The file.
		path: String,
		/// What went wrong.
		message: String,
	},
	/// The quote does not say which collateral it needs.
	#[error("the quote names no platform to fetch collateral for: {0}")]
	Quote(String),
	/// A PCCS request failed.
	#[error("PCCS {url}: {message}")]
	Pccs {
		/// The URL requested.
		url: String,
		/// What went wrong.
		message: String,
	},
	/// What the PCCS served does not fit a call.
	#[error("collateral from the PCCS: {0}")]
	Invalid(String),
}

impl CollateralSource {
	/// The collateral for `quote`.
	pub async fn collateral(&self, quote: &[u8]) -> Result<Collateral, CollateralError> {
		match self {
			CollateralSource::File(path) => {
				let failed = |message: String| CollateralError::File {
					path: path.display().to_string(),
					message,
				};
				let json = tokio::fs::read(path).await.map_err(|e| failed(e.to_string()))?;
				Collateral::from_json(&json).map_err(failed)
			}
			CollateralSource::Pccs(url) => Pccs::new(url)?.collateral(quote).await,
		}
	}
}

/// A PCCS v4 client on hyper (HTTPS with the system's roots, or plain HTTP).
pub struct Pccs {
	base: String,
	client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl Pccs {
	/// A client of the service at `url` (its base, or its `/sgx/certification/v4` path).
	pub fn new(url: &str) -> Result<Self, CollateralError> {
		let base = url
			.trim_end_matches('/')
			.trim_end_matches("/sgx/certification/v4")
			.trim_end_matches("/tdx/certification/v4")
			.to_owned();
		let failed = |message: String| CollateralError::Pccs { url: url.to_owned(), message };
		if !(base.starts_with("https://") || base.starts_with("http://")) {
			return Err(failed("not an http:// or https:// URL".into()));
		}
		// The ring provider named explicitly: the build has more than one, and rustls does not
		// pick for itself then.
		let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
			rustls::crypto::ring::default_provider(),
		))
		.with_safe_default_protocol_versions()
		.map_err(|e| failed(e.to_string()))?
		.with_native_roots()
		.map_err(|e| failed(format!("cannot read the system's CA certificates: {e}")))?
		.with_no_client_auth();
		let connector = hyper_rustls::HttpsConnectorBuilder::new()
			.with_tls_config(tls)
			.https_or_http()
			.enable_http1()
			.build();
		Ok(Self { base, client: Client::builder(TokioExecutor::new()).build(connector) })
	}

	/// Fetches the collateral of `quote`'s platform.
	pub async fn collateral(&self, quote: &[u8]) -> Result<Collateral, CollateralError> {
		let platform = Platform::of(quote)?;
		let tee = if platform.sgx { "sgx" } else { "tdx" };
		tracing::info!(base = %self.base, fmspc = %platform.fmspc, ca = platform.ca, "fetching collateral");

		let pck_crl = self
			.get(&format!("/sgx/certification/v4/pckcrl?ca={}&encoding=der", platform.ca))
			.await?;
		let pck_crl_issuer_chain = pck_crl.header(&["SGX-PCK-CRL-Issuer-Chain"])?;
		let tcb = self
			.get(&format!("/{tee}/certification/v4/tcb?fmspc={}&update=standard", platform.fmspc))
			.await?;
		let tcb_info_issuer_chain =
			tcb.header(&["TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"])?;
		let (tcb_info, tcb_info_signature) = signed_body(&tcb.body, "tcbInfo")?;
		let qe = self.get(&format!("/{tee}/certification/v4/qe/identity?update=standard")).await?;
		let qe_identity_issuer_chain = qe.header(&["SGX-Enclave-Identity-Issuer-Chain"])?;
		let (qe_identity, qe_identity_signature) = signed_body(&qe.body, "enclaveIdentity")?;
		let root_ca_crl = self.root_ca_crl().await?;

		let collateral = dcap_qvl::QuoteCollateralV3 {
			pck_crl_issuer_chain,
			root_ca_crl,
			pck_crl: der_or_hex(pck_crl.body),
			tcb_info_issuer_chain,
			tcb_info,
			tcb_info_signature,
			qe_identity_issuer_chain,
			qe_identity,
			qe_identity_signature,
			// The quote carries it.
			pck_certificate_chain: None,
		};
		let json =
			serde_json::to_vec(&collateral).map_err(|e| CollateralError::Invalid(e.to_string()))?;
		Collateral::from_json(&json).map_err(CollateralError::Invalid)
	}

	/// Intel's root CA CRL: a PCCS serves it (hex-encoded), Intel's PCS does not.
	async fn root_ca_crl(&self) -> Result<Vec<u8>, CollateralError> {
		match self.get("/sgx/certification/v4/rootcacrl").await {
			Ok(response) => Ok(der_or_hex(response.body)),
			Err(e) => {
				tracing::debug!(error = %e, "no rootcacrl at the PCCS: fetching it from Intel");
				Ok(self.get_url(INTEL_ROOT_CA_CRL_URL).await?.body)
			}
		}
	}

	async fn get(&self, path: &str) -> Result<Response, CollateralError> {
		self.get_url(&format!("{}{path}", self.base)).await
	}

	async fn get_url(&self, url: &str) -> Result<Response, CollateralError> {
		let failed = |message: String| CollateralError::Pccs { url: url.to_owned(), message };
		let uri: hyper::Uri = url.parse().map_err(|e| failed(format!("{e}")))?;
		let response = tokio::time::timeout(REQUEST_TIMEOUT, self.client.get(uri))
			.await
			.map_err(|_| failed(format!("no answer within {REQUEST_TIMEOUT:?}")))?
			.map_err(|e| failed(format!("{e:#}")))?;
		let status = response.status();
		let headers = response.headers().clone();
		let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
			.collect()
			.await
			.map_err(|e| failed(format!("reading the answer: {e}")))?
			.to_bytes()
			.to_vec();
		if !status.is_success() {
			let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
			return Err(failed(format!("HTTP {status} {text}")));
		}
		Ok(Response { url: url.to_owned(), headers, body })
	}
}

/// A PCCS answer.
struct Response {
	url: String,
	headers: hyper::HeaderMap,
	body: Vec<u8>,
}

impl Response {
	/// The first of `names` present, URL-decoded (PCCS headers carry PEM chains so).
	fn header(&self, names: &[&str]) -> Result<String, CollateralError> {
		names
			.iter()
			.find_map(|name| self.headers.get(*name))
			.and_then(|value| value.to_str().ok())
			.and_then(percent_decode)
			.ok_or_else(|| CollateralError::Pccs {
				url: self.url.clone(),
				message: format!("no {} header", names[0]),
			})
	}
}

/// What the quote says about its platform: the FMSPC and the PCK CA that names the collateral.
struct Platform {
	fmspc: String,
	ca: &'static str,
	sgx: bool,
}

impl Platform {
	fn of(quote: &[u8]) -> Result<Self, CollateralError> {
		let failed = |e: &dyn std::fmt::Display| CollateralError::Quote(format!("{e:#}"));
		let parsed = dcap_qvl::quote::Quote::parse(quote).map_err(|e| failed(&e))?;
		if parsed.inner_cert_type() != PCK_CERT_CHAIN {
			return Err(CollateralError::Quote(format!(
				"it carries certification data of type {}, not its PCK certificate chain (5): configure the quote generation service to include the chain",
				parsed.inner_cert_type()
			)));
		}
		let fmspc = dcap_qvl::intel::quote_fmspc(&parsed).map_err(|e| failed(&e))?;
		let ca = dcap_qvl::intel::quote_ca(&parsed).map_err(|e| failed(&e))?;
		Ok(Self {
			fmspc: hex::encode_upper(fmspc),
			ca: ca.as_id_str(),
			sgx: parsed.header.is_sgx(),
		})
	}
}

/// A signed PCCS body, `{"<field>": {...}, "signature": "<hex>"}`: the field's JSON exactly as
/// served (the signature covers those bytes), and the signature.
fn signed_body(body: &[u8], field: &str) -> Result<(String, Vec<u8>), CollateralError> {
	#[derive(Deserialize)]
	struct Signed<'a> {
		#[serde(borrow, rename = "tcbInfo")]
		tcb_info: Option<&'a RawValue>,
		#[serde(borrow, rename = "enclaveIdentity")]
		enclave_identity: Option<&'a RawValue>,
		signature: String,
	}
	let invalid = |m: String| CollateralError::Invalid(format!("{field}: {m}"));
	let signed: Signed = serde_json::from_slice(body).map_err(|e| invalid(e.to_string()))?;
	let raw = match field {
		"tcbInfo" => signed.tcb_info,
		_ => signed.enclave_identity,
	}
	.ok_or_else(|| invalid("missing".into()))?;
	let signature =
		hex::decode(&signed.signature).map_err(|e| invalid(format!("signature: {e}")))?;
	Ok((raw.get().to_owned(), signature))
}

/// A CRL as served: DER, or its hex text (what a PCCS serves for `rootcacrl`).
fn der_or_hex(body: Vec<u8>) -> Vec<u8> {
	match std::str::from_utf8(&body).ok().and_then(|text| hex::decode(text.trim()).ok()) {
		Some(der) => der,
		None => body,
	}
}

/// Decodes `%XX` escapes; `None` if one is malformed or the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
	let bytes = text.as_bytes();
	let mut out = Vec::with_capacity(bytes.len());
	let mut i = 0;
	while i < bytes.len() {
		if bytes[i] == b'%' {
			let hex = text.get(i + 1..i + 3)?;
			out.push(u8::from_str_radix(hex, 16).ok()?);
			i += 3;
		} else {
			out.push(bytes[i]);
			i += 1;
		}
	}
	String::from_utf8(out).ok()
}
