//! `podchain console`: serves the web console (built from `console/` and embedded in this binary
//! at compile time) and a small local JSON API for what a browser cannot do itself: deliver a
//! deal's manifest to its provider over libp2p and read a deal's logs and pods' status, both
//! with the key this CLI holds. Everything else (reading the chain, signing) the page does
//! itself, against the node's RPC.
//!
//! Any web page the user visits can send requests to 127.0.0.1, so the server trusts no request
//! by where it comes from:
//! - every API request must carry the per-run random token (`X-Podchain-Token`). It is only in
//!   the URL this command prints (`/?token=...`), never in a page the server serves, so neither
//!   another web page nor another local user reading `/` learns it; the page keeps it in its
//!   session storage and drops it from the address bar. A custom header also makes a browser
//!   ask first (CORS preflight), which the server never grants another origin;
//! - every request must name this server in `Host` (`127.0.0.1:PORT`, `localhost:PORT`,
//!   `[::1]:PORT`): a rebound DNS name pointing at 127.0.0.1 gets nothing;
//! - an API request with an `Origin` must come from the served origin itself.

use crate::{
	attestation,
	deploy::{poll_every, send_manifest, status_query},
	error::CliError,
	provider_link::{self, Signer},
	providers::resources_of,
	Context,
};
use clap::Args;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{
	body::{Bytes, Incoming},
	header,
	service::service_fn,
	Method, Request, Response, StatusCode,
};
use hyper_util::rt::TokioIo;
use podchain_chain::{deals, AccountKey, Node};
use podchain_manifest::Manifest;
use podchain_p2p::{
	protocol::{LogsQuery, LogsRequest},
	P2pNode,
};
use serde_json::{json, Value};
use std::{net::SocketAddr, sync::Arc, time::Duration};

mod assets {
	include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));
}

/// The header carrying the per-run token.
pub const TOKEN_HEADER: &str = "x-podchain-token";
/// Largest request body: a manifest is far smaller.
const MAX_BODY: usize = 1 << 20;
/// How long the local API waits for a provider's agent to take a manifest.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// `podchain console` arguments.
#[derive(Clone, Debug, Args)]
pub struct ConsoleArgs {
	/// Where to serve the console. Keep it on loopback: the page and its API act with this
	/// CLI's key.
	#[arg(long, default_value = "127.0.0.1:8490")]
	pub listen: SocketAddr,
}

/// What every request shares.
struct Server {
	/// The page with the RPC URL filled in.
	index: Bytes,
	token: String,
	/// `Host` values naming this server.
	hosts: Vec<String>,
	node: Node,
	key: Option<AccountKey>,
	p2p: P2pNode,
}

/// `podchain console`.
pub async fn run(ctx: &Context, args: &ConsoleArgs) -> Result<(), CliError> {
	if !args.listen.ip().is_loopback() {
		eprintln!(
			"warning: serving the console on {}, not loopback: anyone who can reach it and learns the token acts with this CLI's key",
			args.listen
		);
	}
	let listener = tokio::net::TcpListener::bind(args.listen)
		.await
		.map_err(|e| CliError::input(format!("cannot listen on {}: {e}", args.listen)))?;
	let local = listener.local_addr().map_err(|e| CliError::input(e.to_string()))?;
	let key = if ctx.key_file.exists() { Some(ctx.key()?) } else { None };
	let node = ctx.connect().await?;
	let p2p = provider_link::client().await?;
	let token = new_token();
	let server = Arc::new(Server {
		index: Bytes::from(inject(index_template(), &ctx.rpc)),
		hosts: hosts_of(local),
		token,
		node,
		key,
		p2p,
	});
	let url = format!("http://{local}/?token={}", server.token);
	ctx.out
		.result(json!({ "url": url }), || format!("podchain console on {url}  (Ctrl-C stops it)"));
	loop {
		let (stream, _) = tokio::select! {
			accepted = listener.accept() => match accepted {
				Ok(accepted) => accepted,
				Err(_) => continue,
			},
			_ = tokio::signal::ctrl_c() => break,
		};
		let server = server.clone();
		tokio::spawn(async move {
			let service = service_fn(move |request| {
				let server = server.clone();
				async move { Ok::<_, std::convert::Infallible>(server.handle(request).await) }
			});
			let _ = hyper::server::conn::http1::Builder::new()
				.serve_connection(TokioIo::new(stream), service)
				.await;
		});
	}
	Ok(())
}

/// 32 random bytes from the OS, hex.
fn new_token() -> String {
	use rand::RngCore;
	let mut bytes = [0u8; 32];
	rand::rngs::OsRng.fill_bytes(&mut bytes);
	hex::encode(bytes)
}

/// The names a browser on this machine uses for `local`.
fn hosts_of(local: SocketAddr) -> Vec<String> {
	let port = local.port();
	let mut hosts =
		vec![format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")];
	let own = local.to_string();
	if !hosts.contains(&own) {
		hosts.push(own);
	}
	hosts
}

fn index_template() -> &'static [u8] {
	assets::ASSETS
		.iter()
		.find(|(path, _, _)| *path == "/index.html")
		.map(|(_, _, bytes)| *bytes)
		.unwrap_or_default()
}

/// The page with the RPC URL in its `<meta>` tag (empty in the built file, so the same files
/// also deploy as a static site, without the local API). Never the token.
pub fn inject(template: &[u8], rpc: &str) -> Vec<u8> {
	let page = String::from_utf8_lossy(template).replacen(
		r#"<meta name="podchain-rpc" content="">"#,
		&format!(r#"<meta name="podchain-rpc" content="{}">"#, escape(rpc)),
		1,
	);
	page.into_bytes()
}

fn escape(text: &str) -> String {
	text.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Why a request is refused before anything else is looked at.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
	/// `Host` does not name this server (DNS rebinding).
	ForeignHost,
	/// An API request from another page (its `Origin`).
	ForeignOrigin,
	/// An API request without this run's token.
	BadToken,
	/// A method the server does not serve (CORS preflights included).
	Method,
}

/// What a request may do: checks `Host` on every request; on `/api/` requests, the `Origin`
/// (if any) and the token.
pub fn authorize(
	method: &Method,
	path: &str,
	host: Option<&str>,
	origin: Option<&str>,
	token: Option<&str>,
	hosts: &[String],
	expected_token: &str,
) -> Result<(), Refusal> {
	let host = host.ok_or(Refusal::ForeignHost)?;
	if !hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
		return Err(Refusal::ForeignHost);
	}
	if !path.starts_with("/api/") {
		return if method == Method::GET || method == Method::HEAD {
			Ok(())
		} else {
			Err(Refusal::Method)
		};
	}
	if method != Method::GET && method != Method::POST {
		return Err(Refusal::Method);
	}
	if let Some(origin) = origin {
		if !origin.eq_ignore_ascii_case(&format!("http://{host}")) {
			return Err(Refusal::ForeignOrigin);
		}
	}
	match token {
		Some(token) if constant_time_eq(token.as_bytes(), expected_token.as_bytes()) => Ok(()),
		_ => Err(Refusal::BadToken),
	}
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
	a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn header_text(request: &Request<Incoming>, name: header::HeaderName) -> Option<&str> {
	request.headers().get(name).and_then(|v| v.to_str().ok())
}

fn respond(status: StatusCode, content_type: &str, body: Bytes) -> Response<Full<Bytes>> {
	let mut response = Response::new(Full::new(body));
	*response.status_mut() = status;
	let headers = response.headers_mut();
	let set = |headers: &mut hyper::HeaderMap, name, value: &str| {
		if let Ok(value) = header::HeaderValue::from_str(value) {
			headers.insert(name, value);
		}
	};
	set(headers, header::CONTENT_TYPE, content_type);
	set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
	set(headers, header::X_FRAME_OPTIONS, "DENY");
	set(headers, header::REFERRER_POLICY, "no-referrer");
	set(headers, header::CACHE_CONTROL, "no-store");
	response
}

fn json_response(status: StatusCode, value: Value) -> Response<Full<Bytes>> {
	respond(status, "application/json", Bytes::from(value.to_string()))
}

fn error_response(status: StatusCode, message: impl std::fmt::Display) -> Response<Full<Bytes>> {
	json_response(status, json!({ "error": message.to_string() }))
}

fn cli_error_response(e: CliError) -> Response<Full<Bytes>> {
	let status = match e.code() {
		2 => StatusCode::BAD_REQUEST,
		4 => StatusCode::CONFLICT,
		6 => StatusCode::GATEWAY_TIMEOUT,
		_ => StatusCode::BAD_GATEWAY,
	};
	error_response(status, e)
}

impl Server {
	async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Full<Bytes>> {
		let path = request.uri().path().to_owned();
		if let Err(refusal) = authorize(
			request.method(),
			&path,
			header_text(&request, header::HOST),
			header_text(&request, header::ORIGIN),
			request.headers().get(TOKEN_HEADER).and_then(|v| v.to_str().ok()),
			&self.hosts,
			&self.token,
		) {
			let status = match refusal {
				Refusal::Method => StatusCode::METHOD_NOT_ALLOWED,
				_ => StatusCode::FORBIDDEN,
			};
			return error_response(status, format!("refused: {refusal:?}"));
		}
		if !path.starts_with("/api/") {
			return self.asset(&path);
		}
		let method = request.method().clone();
		let query = request.uri().query().unwrap_or_default().to_owned();
		let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
			Ok(body) => body.to_bytes(),
			Err(_) => return error_response(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
		};
		let segments: Vec<&str> = path.trim_start_matches("/api/").split('/').collect();
		match (method, segments.as_slice()) {
			(Method::GET, ["session"]) => json_response(
				StatusCode::OK,
				json!({ "account": self.key.as_ref().map(|k| k.account_id().to_string()) }),
			),
			(Method::POST, ["manifest", "check"]) => check_manifest(&body),
			(Method::POST, ["deals", id, "manifest"]) => match id.parse() {
				Ok(id) => self.deliver(id, &body).await.unwrap_or_else(cli_error_response),
				Err(_) => error_response(StatusCode::BAD_REQUEST, "not a deal id"),
			},
			(Method::GET, ["deals", id, "logs"]) => match id.parse() {
				Ok(id) => self.logs(id, tail_of(&query)).await.unwrap_or_else(cli_error_response),
				Err(_) => error_response(StatusCode::BAD_REQUEST, "not a deal id"),
			},
			_ => error_response(StatusCode::NOT_FOUND, "no such API"),
		}
	}

	fn asset(&self, path: &str) -> Response<Full<Bytes>> {
		let path = if path == "/" { "/index.html" } else { path };
		if path == "/index.html" {
			return respond(StatusCode::OK, "text/html; charset=utf-8", self.index.clone());
		}
		match assets::ASSETS.iter().find(|(p, _, _)| *p == path) {
			Some((_, content_type, bytes)) => {
				let mut response = respond(StatusCode::OK, content_type, Bytes::from_static(bytes));
				// Vite names built assets by their content hash.
				if path.starts_with("/assets/") {
					response.headers_mut().insert(
						header::CACHE_CONTROL,
						header::HeaderValue::from_static("public, max-age=31536000, immutable"),
					);
				}
				response
			}
			None => error_response(StatusCode::NOT_FOUND, "not found"),
		}
	}

	fn key(&self) -> Result<&AccountKey, CliError> {
		self.key.as_ref().ok_or_else(|| {
			CliError::input("this console holds no key: run `podchain account import` first")
		})
	}

	/// The deal, if it is this key's.
	async fn own_deal(&self, id: u64) -> Result<(deals::Deal, podchain_chain::AtBlock), CliError> {
		let key = self.key()?;
		let at = self.node.finalized().await?;
		let deal = deals::deal(&at, id)
			.await?
			.ok_or_else(|| CliError::input(format!("no open deal {id}")))?;
		if deal.publisher != key.account_id() {
			return Err(CliError::refused(format!(
				"deal {id} belongs to another publisher than this console's key"
			)));
		}
		Ok((deal, at))
	}

	/// Delivers the manifest in `body` to deal `id`'s provider, if it is the one the deal
	/// records (or is about to run). A deal just created may not be finalized yet: wait for it.
	async fn deliver(&self, id: u64, body: &[u8]) -> Result<Response<Full<Bytes>>, CliError> {
		let manifest = Manifest::from_bytes(body).map_err(CliError::input)?;
		let hash = manifest.hash();
		let (deal, at) = poll_every(
			Duration::from_secs(30),
			Duration::from_millis(250),
			"the deal to be finalized",
			|| async {
				match self.own_deal(id).await {
					Ok(found) => Ok(Some(found)),
					Err(e) if e.code() == 2 && self.key.is_some() => Ok(None),
					Err(e) => Err(e),
				}
			},
		)
		.await?;
		if deal.manifest_hash != hash && deal.pending_manifest != Some(hash) {
			return Err(CliError::refused(format!(
				"this manifest is not deal {id}'s (its hash differs from the one on chain)"
			)));
		}
		let endpoint = provider_link::endpoint(&at, &deal.provider).await?;
		// As `podchain deploy` does: a manifest is sealed only to the key an attestation vouches
		// for, if the provider attested.
		let attestation = attestation::view(&at, &deal.provider).await?;
		attestation::check_before_sealing(
			&deal.provider,
			&endpoint.peer,
			attestation.as_ref(),
			false,
		)?;
		let signer = Signer(self.key()?.clone());
		let handle = self.p2p.handle();
		send_manifest(
			&handle,
			&signer,
			&endpoint,
			id,
			&manifest.canonical_bytes(),
			DELIVERY_TIMEOUT,
		)
		.await?;
		Ok(json_response(
			StatusCode::OK,
			json!({ "delivered": true, "peer": endpoint.peer.to_string() }),
		))
	}

	/// The last `tail` log lines of deal `id` (0: the pods' status alone).
	async fn logs(&self, id: u64, tail: u32) -> Result<Response<Full<Bytes>>, CliError> {
		let (deal, at) = self.own_deal(id).await?;
		let endpoint = provider_link::endpoint(&at, &deal.provider).await?;
		let signer = Signer(self.key()?.clone());
		let query = if tail == 0 {
			status_query()
		} else {
			LogsQuery { container: None, cursor: None, tail: Some(tail), max_lines: 500 }
		};
		let request =
			LogsRequest::new(&signer, &endpoint.peer, id, query).map_err(CliError::input)?;
		let chunk = self
			.p2p
			.handle()
			.fetch_logs(endpoint.peer, endpoint.addrs, request)
			.await
			.map_err(|e| CliError::provider(format!("provider offline: {e}")))?;
		let lines: Vec<Value> = chunk
			.lines
			.iter()
			.map(|l| {
				json!({ "container": l.container, "timestampMs": l.timestamp_ms,
					"stderr": l.stderr, "text": l.text })
			})
			.collect();
		Ok(json_response(StatusCode::OK, json!({ "lines": lines, "status": chunk.deal_status })))
	}
}

/// `tail=N` from a query string, at most 500; 100 by default.
fn tail_of(query: &str) -> u32 {
	query
		.split('&')
		.find_map(|pair| pair.strip_prefix("tail="))
		.and_then(|n| n.parse::<u32>().ok())
		.unwrap_or(100)
		.min(500)
}

/// The manifest check the CLI makes, for the page: resources and hash, or the errors with
/// their line and column.
fn check_manifest(body: &[u8]) -> Response<Full<Bytes>> {
	// The check itself succeeded: an invalid manifest is an answer, not a failed request.
	let invalid =
		|error: String| json_response(StatusCode::OK, json!({ "valid": false, "error": error }));
	let manifest = match Manifest::from_bytes(body) {
		Ok(manifest) => manifest,
		Err(diagnostics) => return invalid(diagnostics.to_string()),
	};
	match resources_of(&manifest) {
		Ok(r) => json_response(
			StatusCode::OK,
			json!({
				"valid": true,
				"resources": { "cpuMillicores": r.cpu_millicores, "memoryMib": r.memory_mib,
					"storageGib": r.storage_gib, "gpus": r.gpus },
				"hash": format!("0x{}", hex::encode(manifest.hash())),
			}),
		),
		Err(e) => invalid(e.message),
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	const TOKEN: &str = "0123456789abcdef";

	fn hosts() -> Vec<String> {
		hosts_of("127.0.0.1:8490".parse().unwrap())
	}

	fn check(
		method: Method,
		path: &str,
		host: Option<&str>,
		origin: Option<&str>,
		token: Option<&str>,
	) -> Result<(), Refusal> {
		authorize(&method, path, host, origin, token, &hosts(), TOKEN)
	}

	#[test]
	fn the_page_is_served_to_this_servers_names_only() {
		for host in ["127.0.0.1:8490", "localhost:8490", "LOCALHOST:8490", "[::1]:8490"] {
			assert_eq!(check(Method::GET, "/", Some(host), None, None), Ok(()), "{host}");
		}
		// A rebound DNS name, another port, no Host at all.
		for host in [Some("evil.example:8490"), Some("127.0.0.1:80"), Some("localhost"), None] {
			assert_eq!(check(Method::GET, "/", host, None, None), Err(Refusal::ForeignHost));
		}
		assert_eq!(
			check(Method::POST, "/", Some("127.0.0.1:8490"), None, None),
			Err(Refusal::Method)
		);
	}

	#[test]
	fn the_api_needs_the_token_and_its_own_origin() {
		let host = Some("127.0.0.1:8490");
		let api = "/api/deals/1/manifest";
		assert_eq!(
			check(Method::POST, api, host, Some("http://127.0.0.1:8490"), Some(TOKEN)),
			Ok(())
		);
		assert_eq!(check(Method::POST, api, host, None, Some(TOKEN)), Ok(()));
		assert_eq!(check(Method::POST, api, host, None, None), Err(Refusal::BadToken));
		assert_eq!(
			check(Method::POST, api, host, None, Some("0123456789abcdeF")),
			Err(Refusal::BadToken)
		);
		assert_eq!(check(Method::POST, api, host, None, Some("0123")), Err(Refusal::BadToken));
		// Another page, even with the token (it cannot have it, but never mind).
		for origin in [
			"http://evil.example",
			"null",
			"http://localhost:8490.evil.example",
			"https://127.0.0.1:8490",
		] {
			assert_eq!(
				check(Method::POST, api, host, Some(origin), Some(TOKEN)),
				Err(Refusal::ForeignOrigin),
				"{origin}"
			);
		}
		// A preflight is never granted.
		assert_eq!(
			check(Method::OPTIONS, api, host, Some("http://evil.example"), None),
			Err(Refusal::Method)
		);
		assert_eq!(
			check(
				Method::POST,
				api,
				Some("evil.example"),
				Some("http://evil.example"),
				Some(TOKEN)
			),
			Err(Refusal::ForeignHost)
		);
	}

	#[test]
	fn the_rpc_is_escaped_into_the_page() {
		let template = br#"<head><meta name="podchain-rpc" content=""></head>"#;
		let page = String::from_utf8(inject(template, "ws://x\"><script>")).unwrap();
		assert!(page.contains(r#"content="ws://x&quot;&gt;&lt;script&gt;""#));
		assert!(!page.contains("<script>"));
	}

	#[test]
	fn tokens_are_fresh_and_long() {
		let (a, b) = (new_token(), new_token());
		assert_eq!(a.len(), 64);
		assert_ne!(a, b);
	}

	#[test]
	fn the_embedded_console_has_a_page_with_the_placeholders() {
		let page = String::from_utf8_lossy(index_template());
		assert!(page.contains(r#"<meta name="podchain-rpc" content="">"#));
		assert!(!page.contains("token"), "the page never carries the token");
	}

	#[test]
	fn manifests_are_checked_like_the_cli_does() {
		let body = |response: Response<Full<Bytes>>| async move {
			assert_eq!(response.status(), StatusCode::OK);
			let bytes = response.into_body().collect().await.unwrap().to_bytes();
			serde_json::from_slice::<Value>(&bytes).unwrap()
		};
		let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
		let invalid =
			runtime.block_on(body(check_manifest(b"version: podchain/v1\ncontainers: [")));
		assert_eq!(invalid["valid"], false);
		// `line:column: message`, as the CLI prints it.
		let error = invalid["error"].as_str().unwrap();
		let mut parts = error.splitn(3, ':');
		assert!(parts.next().unwrap().parse::<u32>().is_ok(), "{error}");
		assert!(parts.next().unwrap().parse::<u32>().is_ok(), "{error}");
		let web = include_bytes!("../../client/manifest/fixtures/web.yaml");
		let valid = runtime.block_on(body(check_manifest(web)));
		assert_eq!(valid["valid"], true);
		assert_eq!(valid["resources"]["cpuMillicores"], 100);
		let hash = Manifest::from_bytes(web).unwrap().hash();
		assert_eq!(valid["hash"], format!("0x{}", hex::encode(hash)));
		let tail = tail_of("tail=20&x=1");
		assert_eq!(tail, 20);
		assert_eq!(tail_of("tail=99999"), 500);
		assert_eq!(tail_of(""), 100);
	}
}
