//! The agent's HTTP endpoint: `/healthz` (what SLA probes hit) and `/metrics` (Prometheus).

use crate::metrics::Metrics;
use http_body_util::Full;
use hyper::{body::Bytes, server::conn::http1, service::service_fn, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::{convert::Infallible, net::SocketAddr, sync::Arc};
use tokio::net::TcpListener;

/// A round older than this makes the agent unhealthy: it no longer reads chain and cluster.
pub const HEALTHY_WITHIN_SECS: u64 = 60;

/// Binds `addr` and serves requests until the task is dropped.
pub async fn serve(
	addr: SocketAddr,
	metrics: Arc<Metrics>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
	let listener = TcpListener::bind(addr).await?;
	tracing::info!(%addr, "serving /healthz and /metrics");
	Ok(tokio::spawn(async move {
		loop {
			let Ok((stream, _)) = listener.accept().await else {
				// Out of file descriptors, usually: let some close before trying again.
				tokio::time::sleep(std::time::Duration::from_millis(100)).await;
				continue;
			};
			let metrics = metrics.clone();
			tokio::spawn(async move {
				let service = service_fn(move |request| {
					let metrics = metrics.clone();
					async move { Ok::<_, Infallible>(answer(&request, &metrics)) }
				});
				let serving = http1::Builder::new()
					.timer(hyper_util::rt::TokioTimer::new())
					.header_read_timeout(std::time::Duration::from_secs(10))
					.serve_connection(TokioIo::new(stream), service);
				let _ = tokio::time::timeout(std::time::Duration::from_secs(60), serving).await;
			});
		}
	}))
}

/// `/healthz`: 200 while rounds read chain and cluster; 503 otherwise. A metering source
/// that cannot be read (usage going unbilled) is a degradation the body states, still with
/// 200: the tenants are served, which is what the chain's SLA probes ask, and a provider not
/// billing is the provider's loss, not the publishers'. It is also the
/// `podchain_agent_metering_degraded` metric and an error in the log.
fn answer<B>(request: &Request<B>, metrics: &Metrics) -> Response<Full<Bytes>> {
	let (status, content_type, body) = match request.uri().path() {
		"/healthz" if metrics.is_healthy(HEALTHY_WITHIN_SECS) => {
			let degraded = metrics.metering_degraded();
			let body = if degraded.is_empty() {
				"ok\n".to_owned()
			} else {
				let mut body = "degraded\n".to_owned();
				for (what, error) in degraded {
					body.push_str(&format!(
						"metering {what}: cannot be read, not billed: {error}\n"
					));
				}
				body
			};
			(StatusCode::OK, "text/plain", body)
		}
		"/healthz" => (
			StatusCode::SERVICE_UNAVAILABLE,
			"text/plain",
			"not reconciling: chain or cluster unreachable\n".to_owned(),
		),
		"/metrics" => (
			StatusCode::OK,
			"application/openmetrics-text; version=1.0.0; charset=utf-8",
			metrics.encode(),
		),
		_ => (StatusCode::NOT_FOUND, "text/plain", "not found\n".to_owned()),
	};
	let mut response = Response::new(Full::new(Bytes::from(body)));
	*response.status_mut() = status;
	if let Ok(value) = content_type.parse() {
		response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
	}
	response
}

#[cfg(test)]
mod tests {
	use super::*;
	use http_body_util::BodyExt;

	async fn healthz(metrics: &Metrics) -> (StatusCode, String) {
		let request = Request::get("/healthz").body(()).expect("request");
		let response = answer(&request, metrics);
		let status = response.status();
		let body = response.into_body().collect().await.expect("body").to_bytes();
		(status, String::from_utf8(body.to_vec()).expect("UTF-8"))
	}

	#[tokio::test]
	async fn healthz_states_a_metering_degradation() {
		let metrics = Metrics::default();
		assert_eq!(healthz(&metrics).await.0, StatusCode::SERVICE_UNAVAILABLE);
		metrics.healthy_now();
		assert_eq!(healthz(&metrics).await, (StatusCode::OK, "ok\n".to_owned()));
		metrics.metering.failed(
			"containers",
			"the metrics API is not served",
			std::time::Instant::now(),
		);
		let (status, body) = healthz(&metrics).await;
		assert_eq!(status, StatusCode::OK, "tenants are served: SLA probes see it up");
		assert_eq!(
			body,
			"degraded\nmetering containers: cannot be read, not billed: the metrics API is not served\n"
		);
	}
}
