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

fn answer<B>(request: &Request<B>, metrics: &Metrics) -> Response<Full<Bytes>> {
	let (status, content_type, body) = match request.uri().path() {
		"/healthz" if metrics.is_healthy(HEALTHY_WITHIN_SECS) => {
			(StatusCode::OK, "text/plain", "ok\n".to_owned())
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
