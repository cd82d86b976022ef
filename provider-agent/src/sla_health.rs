//! Health checks of SLA deals, asked the way validators' probers ask: `GET <path>` through the
//! agent's own gateway, with the deal's host name.
//!
//! Measurement of a deal's SLA starts once the agent names it in a heartbeat, so the agent
//! names a deal for a manifest only after two checks: the health check the publisher put on
//! chain is the one its manifest declares (a publisher cannot have probers ask for a path its
//! pods were never told to serve), and the pods answer it. After that it names the deal
//! without asking again: probers decide whether it is up, and a request every half window
//! would keep a deal that scales to zero awake.

use std::{net::SocketAddr, time::Duration};

use http_body_util::{BodyExt, Empty};
use hyper::{body::Bytes, header, Request};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use podchain_manifest::{HealthCheck, Manifest};

/// How long a check may take, as long as probers give a health check.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// Bytes of the answer's body searched for the expected text, as many as probers read.
pub const MAX_BODY_BYTES: usize = 4096;

/// Why a deal is not named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unhealthy {
	/// The manifest's health check (declared, or `GET /` answered 200) is not the one on chain.
	#[error("the deal's SLA terms ask for {chain:?} but its manifest declares {manifest:?}")]
	Mismatch {
		/// The check on chain.
		chain: String,
		/// The check in the manifest.
		manifest: String,
	},
	/// The agent does not hold the manifest the chain names.
	#[error("the agent does not hold the manifest the chain names")]
	NoManifest,
	/// The deal has no registered name, so probers cannot reach it.
	#[error("the deal has no name, so probers cannot reach it")]
	Unnamed,
	/// The gateway could not be reached, or the pods gave no answer in time.
	#[error("no answer: {0}")]
	NoAnswer(String),
	/// The answer had another status.
	#[error("answered {found}, expected {expected}")]
	Status {
		/// The status the check expects.
		expected: u16,
		/// The status answered.
		found: u16,
	},
	/// The answer's body lacks the expected text.
	#[error("the answer does not contain {0:?}")]
	Body(String),
}

/// `GET path` with status and body, as written in error messages.
fn describe(check: &HealthCheck) -> String {
	match &check.body {
		Some(body) => format!("GET {} -> {} containing {body:?}", check.path, check.status),
		None => format!("GET {} -> {}", check.path, check.status),
	}
}

/// Whether the manifest's health check is the one the deal's SLA terms carry.
pub fn declared(chain: &HealthCheck, manifest: &Manifest) -> Result<(), Unhealthy> {
	let declared = manifest.health_check();
	if declared == *chain {
		Ok(())
	} else {
		Err(Unhealthy::Mismatch { chain: describe(chain), manifest: describe(&declared) })
	}
}

/// Whether an answer passes `check`: its status, and the expected text within the first
/// [`MAX_BODY_BYTES`] of its body.
pub fn judge(check: &HealthCheck, status: u16, body: &[u8]) -> Result<(), Unhealthy> {
	if status != check.status {
		return Err(Unhealthy::Status { expected: check.status, found: status });
	}
	let Some(expected) = &check.body else { return Ok(()) };
	let body = &body[..body.len().min(MAX_BODY_BYTES)];
	let found = body.windows(expected.len().max(1)).any(|w| w == expected.as_bytes());
	if found {
		Ok(())
	} else {
		Err(Unhealthy::Body(expected.clone()))
	}
}

/// Asks the deal's pods through the gateway at `gateway` for `host`, as a prober would.
pub async fn ask(gateway: SocketAddr, host: &str, check: &HealthCheck) -> Result<(), Unhealthy> {
	let answer = tokio::time::timeout(CHECK_TIMEOUT, fetch(gateway, host, &check.path)).await;
	let (status, body) = match answer {
		Ok(Ok(answer)) => answer,
		Ok(Err(reason)) => return Err(Unhealthy::NoAnswer(reason)),
		Err(_) => return Err(Unhealthy::NoAnswer(format!("nothing within {CHECK_TIMEOUT:?}"))),
	};
	judge(check, status, &body)
}

/// `GET path` with `Host: host` from the gateway: the status and up to [`MAX_BODY_BYTES`] of
/// the body.
async fn fetch(gateway: SocketAddr, host: &str, path: &str) -> Result<(u16, Vec<u8>), String> {
	// A gateway listening on every address is asked on loopback.
	let ip = if gateway.ip().is_unspecified() {
		std::net::Ipv4Addr::LOCALHOST.into()
	} else {
		gateway.ip()
	};
	let uri = format!("http://{}{path}", SocketAddr::new(ip, gateway.port()));
	let request = Request::get(uri)
		.header(header::HOST, host)
		.body(Empty::<Bytes>::new())
		.map_err(|e| e.to_string())?;
	let client = Client::builder(TokioExecutor::new()).build_http();
	let response = client.request(request).await.map_err(|e| e.to_string())?;
	let status = response.status().as_u16();
	let mut body = response.into_body();
	let mut read = Vec::new();
	while read.len() < MAX_BODY_BYTES {
		match body.frame().await {
			Some(Ok(frame)) => {
				if let Some(data) = frame.data_ref() {
					let room = MAX_BODY_BYTES - read.len();
					read.extend_from_slice(&data[..data.len().min(room)]);
				}
			}
			Some(Err(e)) => return Err(e.to_string()),
			None => break,
		}
	}
	Ok((status, read))
}

#[cfg(test)]
mod tests {
	use super::*;

	fn check(path: &str, status: u16, body: Option<&str>) -> HealthCheck {
		HealthCheck { path: path.into(), status, body: body.map(Into::into) }
	}

	fn manifest(health: Option<&str>) -> Manifest {
		let health = health.map(|h| format!("health: {h}\n")).unwrap_or_default();
		let yaml = format!(
			"version: podchain/v1\ncontainers: [{{name: web, image: busybox, ports: [{{port: 80}}], \
			 resources: {{cpu: 1, memory: 1Gi}}}}]\nexpose: [{{http: {{port: 80}}}}]\n{health}"
		);
		Manifest::from_yaml(&yaml).expect("manifest parses")
	}

	#[test]
	fn the_manifest_must_declare_the_check_on_chain() {
		let chain = check("/healthz", 200, Some("ok"));
		let declaring = manifest(Some("{path: /healthz, body: ok}"));
		assert_eq!(declared(&chain, &declaring), Ok(()));
		for other in [check("/health", 200, Some("ok")), check("/healthz", 204, Some("ok"))] {
			assert!(matches!(declared(&other, &declaring), Err(Unhealthy::Mismatch { .. })));
		}
		// A manifest without one is held to `GET /` answered 200.
		assert_eq!(declared(&check("/", 200, None), &manifest(None)), Ok(()));
		let error = declared(&chain, &manifest(None)).unwrap_err();
		assert_eq!(
			error.to_string(),
			"the deal's SLA terms ask for \"GET /healthz -> 200 containing \\\"ok\\\"\" but its \
			 manifest declares \"GET / -> 200\""
		);
	}

	#[test]
	fn answers_pass_on_status_and_expected_text_in_the_first_bytes() {
		let plain = check("/", 200, None);
		assert_eq!(judge(&plain, 200, b""), Ok(()));
		assert_eq!(judge(&plain, 503, b"ok"), Err(Unhealthy::Status { expected: 200, found: 503 }));
		let wants = check("/", 200, Some("ready"));
		assert_eq!(judge(&wants, 200, b"all ready now"), Ok(()));
		assert_eq!(judge(&wants, 200, b"starting"), Err(Unhealthy::Body("ready".into())));
		// Text beyond what probers read does not count.
		let mut late = vec![b' '; MAX_BODY_BYTES];
		late.extend_from_slice(b"ready");
		assert_eq!(judge(&wants, 200, &late), Err(Unhealthy::Body("ready".into())));
		let mut edge = vec![b' '; MAX_BODY_BYTES - 5];
		edge.extend_from_slice(b"ready");
		assert_eq!(judge(&wants, 200, &edge), Ok(()));
	}

	/// A one-route HTTP server on loopback answering `status` and `body` for `host` and 404
	/// for any other host, as the gateway does.
	async fn server(host: &'static str, status: u16, body: &'static str) -> SocketAddr {
		use hyper::{server::conn::http1, service::service_fn, Response};
		use hyper_util::rt::TokioIo;
		let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
		let addr = listener.local_addr().expect("bound");
		tokio::spawn(async move {
			loop {
				let Ok((stream, _)) = listener.accept().await else { return };
				let service = service_fn(move |request: Request<hyper::body::Incoming>| {
					let asked = request.headers().get(header::HOST).cloned();
					async move {
						let (code, text) = match asked {
							Some(h) if h == host => (status, body),
							_ => (404, "no deal"),
						};
						let response = Response::builder()
							.status(code)
							.body(http_body_util::Full::new(Bytes::from(text)))
							.expect("response");
						Ok::<_, std::convert::Infallible>(response)
					}
				});
				tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
			}
		});
		addr
	}

	#[tokio::test]
	async fn asks_through_the_gateway_with_the_deal_host() {
		let gateway = server("web.localhost", 200, "ready").await;
		assert_eq!(
			ask(gateway, "web.localhost", &check("/healthz", 200, Some("ready"))).await,
			Ok(())
		);
		assert_eq!(
			ask(gateway, "other.localhost", &check("/healthz", 200, None)).await,
			Err(Unhealthy::Status { expected: 200, found: 404 })
		);
		let unhealthy = server("web.localhost", 503, "down").await;
		assert!(matches!(
			ask(unhealthy, "web.localhost", &check("/healthz", 200, None)).await,
			Err(Unhealthy::Status { found: 503, .. })
		));
		// Nothing listening: no answer, not a panic.
		let closed = {
			let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
			listener.local_addr().expect("bound")
		};
		assert!(matches!(
			ask(closed, "web.localhost", &check("/", 200, None)).await,
			Err(Unhealthy::NoAnswer(_))
		));
	}
}
