//! Forwarding one request: routing, the deal's slot, the pod's answer, upgrades.

use std::{net::SocketAddr, sync::Arc, time::Instant};

use http_body_util::{BodyExt, Empty, Full};
use hyper::{
	body::{Bytes, Incoming},
	header::{self, HeaderMap, HeaderName, HeaderValue},
	Request, Response, StatusCode, Uri,
};
use hyper_util::rt::TokioIo;

use std::sync::atomic::Ordering;

use tokio::sync::OwnedSemaphorePermit;

use super::{body::Counted, normalize_host, DealGate, Gateway, ProxyBody, Route};

/// Headers of one hop only (RFC 9110 7.6.1), never forwarded as they are.
const HOP_BY_HOP: [&str; 8] = [
	"connection",
	"keep-alive",
	"proxy-connection",
	"proxy-authenticate",
	"proxy-authorization",
	"te",
	"trailer",
	"transfer-encoding",
];

impl Gateway {
	/// Answers one request: forwarded to its deal, or the gateway's own answer.
	pub(super) async fn handle(
		self: Arc<Self>,
		request: Request<Incoming>,
		remote: SocketAddr,
	) -> Response<ProxyBody> {
		let started = Instant::now();
		let host = request
			.headers()
			.get(header::HOST)
			.and_then(|h| h.to_str().ok())
			.or_else(|| request.uri().host())
			.map(normalize_host)
			.unwrap_or_default();
		let Some(route) = self.route(&host) else {
			return plain(StatusCode::NOT_FOUND, format!("no deal is served at {host:?}\n"));
		};
		let (response, woke) = self.forward(route, request, remote).await;
		let seconds = started.elapsed().as_secs_f64();
		self.metrics.responded(route.deal, response.status().as_u16(), seconds);
		if woke {
			self.metrics.cold_started(route.deal, seconds);
		}
		response
	}

	/// Forwards `request` to a pod of `route`'s deal; says whether the deal had to be started.
	async fn forward(
		&self,
		route: Route,
		request: Request<Incoming>,
		remote: SocketAddr,
	) -> (Response<ProxyBody>, bool) {
		let gate = self.gate(route.deal);
		let Ok(permit) = gate.permits.clone().try_acquire_owned() else {
			let mut busy = plain(
				StatusCode::SERVICE_UNAVAILABLE,
				format!("deal {} has too many requests in flight\n", route.deal),
			);
			busy.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
			return (busy, false);
		};
		gate.touch();
		let mut woke = false;
		if route.idle.is_some() && gate.asleep.load(Ordering::SeqCst) {
			match self.wake(&gate, route).await {
				Ok(started) => woke = started,
				Err(e) => return (not_started(route, &e), false),
			}
		}
		let mut address = self.endpoint(&gate, route).await;
		if route.idle.is_some() && matches!(address, Ok(None)) {
			// Stopped before this agent knew it (by an agent before it, or by hand).
			match self.wake(&gate, route).await {
				Ok(started) => woke |= started,
				Err(e) => return (not_started(route, &e), false),
			}
			address = self.endpoint(&gate, route).await;
		}
		let address = match address {
			Ok(Some(address)) => address,
			Ok(None) => {
				let text = format!("deal {} has no pod serving\n", route.deal);
				return (plain(StatusCode::SERVICE_UNAVAILABLE, text), woke);
			}
			Err(e) => {
				tracing::warn!(deal = route.deal, error = %e, "gateway cannot find the deal's pods");
				let text = format!("deal {}: pods not found\n", route.deal);
				return (plain(StatusCode::BAD_GATEWAY, text), woke);
			}
		};
		let response = self.send(route, request, remote, address, &gate, permit).await;
		gate.touch();
		(response, woke)
	}

	/// Sends `request` to the pod at `address`; `permit` is held until its answer is read.
	async fn send(
		&self,
		route: Route,
		mut request: Request<Incoming>,
		remote: SocketAddr,
		address: SocketAddr,
		gate: &DealGate,
		permit: OwnedSemaphorePermit,
	) -> Response<ProxyBody> {
		let upgrade = upgrade_protocol(request.headers());
		let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut request));
		let (mut parts, body) = request.into_parts();
		let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
		parts.uri = match Uri::try_from(format!("http://{address}{path}")) {
			Ok(uri) => uri,
			Err(_) => return plain(StatusCode::BAD_REQUEST, "unusable request target\n".into()),
		};
		strip_hop_by_hop(&mut parts.headers, upgrade.as_ref());
		forwarded_for(&mut parts.headers, remote);
		let body = Counted::new(body, self.metrics.bytes(route.deal, "in"), None).boxed();
		let upstream = Request::from_parts(parts, body);

		let sent =
			tokio::time::timeout(self.settings.response_timeout, self.client.request(upstream));
		let mut response = match sent.await {
			Ok(Ok(response)) => response,
			Ok(Err(e)) => {
				if e.is_connect() {
					self.stale(gate).await;
				}
				tracing::debug!(deal = route.deal, %address, error = %e, "pod did not answer");
				return plain(
					StatusCode::BAD_GATEWAY,
					format!("deal {}: pod did not answer\n", route.deal),
				);
			}
			Err(_) => {
				return plain(
					StatusCode::GATEWAY_TIMEOUT,
					format!(
						"deal {}: no answer within {:?}\n",
						route.deal, self.settings.response_timeout
					),
				)
			}
		};

		if response.status() == StatusCode::SWITCHING_PROTOCOLS {
			let Some(client_upgrade) = client_upgrade else {
				return plain(StatusCode::BAD_GATEWAY, "pod switched protocols unasked\n".into());
			};
			let upstream_upgrade = hyper::upgrade::on(&mut response);
			let (bytes_in, bytes_out) =
				(self.metrics.bytes(route.deal, "in"), self.metrics.bytes(route.deal, "out"));
			let deal = route.deal;
			tokio::spawn(async move {
				// The slot is held while the connection is open.
				let _permit = permit;
				match (client_upgrade.await, upstream_upgrade.await) {
					(Ok(client), Ok(pod)) => {
						let (mut client, mut pod) = (TokioIo::new(client), TokioIo::new(pod));
						match tokio::io::copy_bidirectional(&mut client, &mut pod).await {
							Ok((sent, received)) => {
								bytes_in.inc_by(sent);
								bytes_out.inc_by(received);
							}
							Err(e) => {
								tracing::debug!(deal, error = %e, "upgraded connection ended")
							}
						}
					}
					(client, pod) => tracing::debug!(
						deal,
						client = ?client.err(),
						pod = ?pod.err(),
						"upgrade failed"
					),
				}
			});
			let (mut parts, _) = response.into_parts();
			strip_hop_by_hop(&mut parts.headers, upgrade.as_ref());
			return Response::from_parts(
				parts,
				Empty::new().map_err(|never| match never {}).boxed(),
			);
		}

		let (mut parts, body) = response.into_parts();
		strip_hop_by_hop(&mut parts.headers, None);
		let body = Counted::new(body, self.metrics.bytes(route.deal, "out"), Some(permit)).boxed();
		Response::from_parts(parts, body)
	}
}

/// The answer when an idle deal could not be started.
fn not_started(route: Route, error: &str) -> Response<ProxyBody> {
	tracing::warn!(deal = route.deal, %error, "cannot start an idle deal");
	plain(StatusCode::GATEWAY_TIMEOUT, format!("deal {} could not be started\n", route.deal))
}

/// The protocol an upgrade request asks for (`Connection: upgrade` and `Upgrade: <p>`).
fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
	let asks = headers
		.get_all(header::CONNECTION)
		.iter()
		.filter_map(|v| v.to_str().ok())
		.flat_map(|v| v.split(','))
		.any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
	asks.then(|| headers.get(header::UPGRADE).cloned()).flatten()
}

/// Removes hop-by-hop headers, and those `Connection` names; an upgrade keeps its own.
fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: Option<&HeaderValue>) {
	let named: Vec<HeaderName> = headers
		.get_all(header::CONNECTION)
		.iter()
		.filter_map(|v| v.to_str().ok())
		.flat_map(|v| v.split(','))
		.filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
		.collect();
	for name in named {
		headers.remove(name);
	}
	for name in HOP_BY_HOP {
		headers.remove(name);
	}
	headers.remove(header::UPGRADE);
	if let Some(protocol) = upgrade {
		headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
		headers.insert(header::UPGRADE, protocol.clone());
	}
}

/// Appends the client's address to `X-Forwarded-For` and says the scheme and host it used.
fn forwarded_for(headers: &mut HeaderMap, remote: SocketAddr) {
	let client = remote.ip().to_string();
	let chain = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
		Some(earlier) => format!("{earlier}, {client}"),
		None => client,
	};
	if let Ok(value) = HeaderValue::from_str(&chain) {
		headers.insert("x-forwarded-for", value);
	}
	headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
	if let Some(host) = headers.get(header::HOST).cloned() {
		headers.insert("x-forwarded-host", host);
	}
}

/// The gateway's own answer: `status` with a plain-text body.
fn plain(status: StatusCode, text: String) -> Response<ProxyBody> {
	let body = Full::new(Bytes::from(text)).map_err(|never| match never {}).boxed();
	let mut response = Response::new(body);
	*response.status_mut() = status;
	response
		.headers_mut()
		.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
	response
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn hop_by_hop_headers_go_and_upgrades_keep_theirs() {
		let mut headers = HeaderMap::new();
		headers
			.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, X-Secret, Upgrade"));
		headers.insert("x-secret", HeaderValue::from_static("1"));
		headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
		headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
		headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
		let protocol = upgrade_protocol(&headers);
		assert_eq!(protocol.as_ref().map(|p| p.to_str().unwrap()), Some("websocket"));
		let mut plain_request = headers.clone();
		strip_hop_by_hop(&mut plain_request, None);
		assert_eq!(plain_request.len(), 1, "{plain_request:?}");
		assert!(plain_request.contains_key(header::ACCEPT));
		strip_hop_by_hop(&mut headers, protocol.as_ref());
		assert_eq!(headers[header::CONNECTION], "upgrade");
		assert_eq!(headers[header::UPGRADE], "websocket");
		assert!(!headers.contains_key("x-secret"));
	}

	#[test]
	fn no_upgrade_without_connection_upgrade() {
		let mut headers = HeaderMap::new();
		headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
		assert_eq!(upgrade_protocol(&headers), None);
	}

	#[test]
	fn forwarded_for_appends_the_client() {
		let mut headers = HeaderMap::new();
		headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
		headers.insert(header::HOST, HeaderValue::from_static("shop.deals.example"));
		forwarded_for(&mut headers, "127.0.0.1:5000".parse().unwrap());
		assert_eq!(headers["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
		assert_eq!(headers["x-forwarded-host"], "shop.deals.example");
		assert_eq!(headers["x-forwarded-proto"], "http");
	}
}
