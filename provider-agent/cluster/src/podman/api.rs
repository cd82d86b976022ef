//! HTTP/1 over podman's unix socket: one connection per request (connecting to a local socket
//! costs microseconds, and no pool means no stale connections after the service restarts).

use std::{
	path::{Path, PathBuf},
	sync::{
		atomic::{AtomicU64, Ordering},
		Arc,
	},
	time::Duration,
};

use http_body_util::{BodyExt, Full, Limited};
use hyper::{
	body::{Bytes, Incoming},
	header, Method, Request, Response, StatusCode,
};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

use crate::ClusterError;

/// Prefix of libpod endpoints. podman routes any `/vX.Y.Z/`; 4.0.0 is the oldest API with
/// everything used here.
pub(crate) const LIBPOD: &str = "/v4.0.0/libpod";
/// Largest JSON answer read (a listing of thousands of containers is a few MiB).
const MAX_BODY: usize = 64 << 20;
/// Longest a request may take. Play kube of a big image or a pod stop can take seconds.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(120);
/// Longest a ping may take: a live service answers in milliseconds.
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest part of an error body quoted in a [`ClusterError`].
const MAX_QUOTE: usize = 400;

/// A client of one podman service.
#[derive(Clone, Debug)]
pub(crate) struct Api {
	socket: PathBuf,
	/// Requests sent, for the agent's metrics: what a reconcile round costs podman.
	requests: Arc<AtomicU64>,
}

/// A whole answer.
#[derive(Debug)]
pub(crate) struct Reply {
	/// Its status.
	pub status: StatusCode,
	/// Its body.
	pub body: Bytes,
}

impl Api {
	/// A client of the service listening on `socket`.
	pub fn new(socket: PathBuf) -> Self {
		Api { socket, requests: Arc::default() }
	}

	/// The count of requests sent so far, shared: it goes on counting.
	pub fn requests(&self) -> Arc<AtomicU64> {
		self.requests.clone()
	}

	/// The socket it talks to.
	pub fn socket(&self) -> &Path {
		&self.socket
	}

	/// Sends a request and returns the answer with its body unread (to stream logs).
	pub async fn open(
		&self,
		method: Method,
		path: &str,
		body: Option<(&'static str, Bytes)>,
	) -> Result<Response<Incoming>, ClusterError> {
		tokio::time::timeout(TIMEOUT, self.open_now(method, path, body))
			.await
			.map_err(|_| self.unavailable(format!("no answer within {} s", TIMEOUT.as_secs())))?
	}

	async fn open_now(
		&self,
		method: Method,
		path: &str,
		body: Option<(&'static str, Bytes)>,
	) -> Result<Response<Incoming>, ClusterError> {
		match body {
			Some((content_type, bytes)) => {
				self.open_with(method, path, Some(content_type), Full::new(bytes)).await
			}
			None => self.open_with(method, path, None, Full::new(Bytes::new())).await,
		}
	}

	async fn open_with<B>(
		&self,
		method: Method,
		path: &str,
		content_type: Option<&'static str>,
		body: B,
	) -> Result<Response<Incoming>, ClusterError>
	where
		B: hyper::body::Body + Send + 'static,
		B::Data: Send,
		B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
	{
		self.requests.fetch_add(1, Ordering::Relaxed);
		let stream = UnixStream::connect(&self.socket).await.map_err(|e| self.unavailable(e))?;
		let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
			.await
			.map_err(|e| self.unavailable(e))?;
		// The connection ends by itself once the answer is read or dropped.
		tokio::spawn(async move {
			if let Err(e) = connection.await {
				tracing::debug!("podman connection closed: {e}");
			}
		});
		let mut request = Request::builder()
			.method(method)
			.uri(path)
			// Go's server rejects HTTP/1.1 requests without a Host.
			.header(header::HOST, "podman");
		if let Some(content_type) = content_type {
			// Without a Content-Type, Go may parse the body as a form and drop it.
			request = request.header(header::CONTENT_TYPE, content_type);
		}
		let request = request
			.body(body)
			.map_err(|e| ClusterError::Other(format!("bad podman request {path}: {e}")))?;
		sender.send_request(request).await.map_err(|e| self.unavailable(e))
	}

	/// Sends a request whose body arrives in chunks (a large upload, never held whole), and
	/// reads the whole answer. An error from `chunks` aborts the request. No time limit: the
	/// caller bounds it.
	pub async fn send_streamed(
		&self,
		method: Method,
		path: &str,
		content_type: &'static str,
		chunks: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
	) -> Result<Reply, ClusterError> {
		let frames = futures::stream::unfold(chunks, |mut chunks| async move {
			let chunk = chunks.recv().await?;
			Some((chunk.map(hyper::body::Frame::data), chunks))
		});
		let body = http_body_util::StreamBody::new(frames);
		let response = self.open_with(method, path, Some(content_type), body).await?;
		let status = response.status();
		let body = Limited::new(response.into_body(), MAX_BODY)
			.collect()
			.await
			.map_err(|e| self.unavailable(format!("reading the answer to {path}: {e}")))?
			.to_bytes();
		Ok(Reply { status, body })
	}

	/// Sends a request and reads the whole answer.
	pub async fn send(
		&self,
		method: Method,
		path: &str,
		body: Option<(&'static str, Bytes)>,
	) -> Result<Reply, ClusterError> {
		let read = async {
			let response = self.open_now(method, path, body).await?;
			let status = response.status();
			let body = Limited::new(response.into_body(), MAX_BODY)
				.collect()
				.await
				.map_err(|e| self.unavailable(format!("reading the answer to {path}: {e}")))?
				.to_bytes();
			Ok(Reply { status, body })
		};
		tokio::time::timeout(TIMEOUT, read)
			.await
			.map_err(|_| self.unavailable(format!("no answer within {} s", TIMEOUT.as_secs())))?
	}

	/// `GET`s `path` and decodes a successful answer; `what` names the call in errors.
	pub async fn get<T: DeserializeOwned>(
		&self,
		path: &str,
		what: &str,
	) -> Result<T, ClusterError> {
		let reply = self.send(Method::GET, path, None).await?;
		if !reply.status.is_success() {
			return Err(reply.error(what));
		}
		reply.json(what)
	}

	/// Checks that the service answers, within [`PING_TIMEOUT`].
	pub async fn ping(&self) -> Result<(), ClusterError> {
		let reply = tokio::time::timeout(PING_TIMEOUT, self.send(Method::GET, "/_ping", None))
			.await
			.map_err(|_| self.unavailable("no answer to a ping"))??;
		if reply.status.is_success() {
			Ok(())
		} else {
			Err(reply.error("ping"))
		}
	}

	fn unavailable(&self, e: impl std::fmt::Display) -> ClusterError {
		ClusterError::Unavailable(format!("podman service at {}: {e}", self.socket.display()))
	}
}

impl Reply {
	/// The error this (unsuccessful) answer means. Server errors (and conflicts, such as a
	/// volume still in use) may pass; other client errors mean podman refused what we sent.
	pub fn error(&self, what: &str) -> ClusterError {
		let text = format!("{what}: podman answered {}: {}", self.status.as_u16(), self.message());
		if self.status.is_server_error() || self.status == StatusCode::CONFLICT {
			ClusterError::Unavailable(text)
		} else if self.status.is_client_error() {
			ClusterError::Refused(text)
		} else {
			ClusterError::Other(text)
		}
	}

	/// podman's error message (`{"cause":…,"message":…,"response":…}`), or the body's text.
	pub fn message(&self) -> String {
		#[derive(serde::Deserialize)]
		struct ErrorBody {
			message: String,
		}
		match serde_json::from_slice::<ErrorBody>(&self.body) {
			Ok(e) => quote(&e.message),
			Err(_) => quote(String::from_utf8_lossy(&self.body).trim()),
		}
	}

	/// Decodes the body; `what` names the call in errors.
	pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, ClusterError> {
		serde_json::from_slice(&self.body).map_err(|e| {
			let body = quote(String::from_utf8_lossy(&self.body).trim());
			ClusterError::Other(format!("{what}: unexpected answer from podman ({e}): {body}"))
		})
	}
}

/// `text`, cut to [`MAX_QUOTE`] characters.
fn quote(text: &str) -> String {
	match text.char_indices().nth(MAX_QUOTE) {
		Some((end, _)) => format!("{}…", &text[..end]),
		None => text.to_owned(),
	}
}

/// `value` percent-encoded for a path segment or a query value.
pub(crate) fn encode(value: &str) -> String {
	let mut out = String::with_capacity(value.len());
	for byte in value.bytes() {
		if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
			out.push(char::from(byte));
		} else {
			out.push_str(&format!("%{byte:02X}"));
		}
	}
	out
}

/// The `filters` query parameter selecting objects that carry all of `labels` (`key=value`).
/// Filter values must be arrays: podman 4.3 answers 400 to `{"label":"x"}`.
pub(crate) fn label_filter(labels: &[String]) -> String {
	let filters = serde_json::json!({ "label": labels });
	format!("filters={}", encode(&filters.to_string()))
}

#[cfg(test)]
mod tests {
	use super::*;

	fn reply(status: u16, body: &str) -> Reply {
		Reply {
			status: StatusCode::from_u16(status).expect("valid status"),
			body: Bytes::from(body.to_owned()),
		}
	}

	#[test]
	fn server_errors_are_transient_client_errors_are_refusals() {
		let body = r#"{"cause":"no such pod","message":"no pod with name or ID x found: no such pod","response":404}"#;
		let err = reply(404, body).error("delete pod");
		assert!(matches!(&err, ClusterError::Refused(m)
			if m == "delete pod: podman answered 404: no pod with name or ID x found: no such pod"));

		let err = reply(500, r#"{"cause":"x","message":"boom","response":500}"#).error("play");
		assert!(err.is_transient(), "{err}");
		assert!(reply(409, "volume is in use").error("rm").is_transient());
		assert!(matches!(reply(302, "").error("x"), ClusterError::Other(_)));
	}

	#[test]
	fn messages_fall_back_to_the_body_text_and_are_cut() {
		assert_eq!(reply(500, " plain text \n").message(), "plain text");
		let long = "é".repeat(1000);
		let message = reply(500, &long).message();
		assert_eq!(message.chars().count(), MAX_QUOTE + 1);
		assert!(message.ends_with('…'));
	}

	#[test]
	fn unparsable_answers_are_other_errors() {
		let err = reply(200, "<html>").json::<Vec<u32>>("list pods").unwrap_err();
		assert!(matches!(&err, ClusterError::Other(m) if m.starts_with("list pods: unexpected")));
		assert!(!err.is_transient());
	}

	#[test]
	fn label_filters_are_json_arrays_percent_encoded() {
		let filter = label_filter(&["podchain.io/deal-id=42".to_owned()]);
		assert_eq!(filter, "filters=%7B%22label%22%3A%5B%22podchain.io%2Fdeal-id%3D42%22%5D%7D");
		assert_eq!(encode("a b/é"), "a%20b%2F%C3%A9");
	}

	#[tokio::test]
	async fn a_missing_socket_is_unavailable() {
		let dir = tempfile::tempdir().expect("temp dir");
		let api = Api::new(dir.path().join("absent.sock"));
		let err = api.ping().await.unwrap_err();
		assert!(err.is_transient(), "{err}");
		assert!(err.to_string().contains("absent.sock"), "{err}");
	}

	#[tokio::test]
	async fn a_socket_nobody_listens_on_is_unavailable() {
		let dir = tempfile::tempdir().expect("temp dir");
		let path = dir.path().join("dead.sock");
		drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
		let err = Api::new(path).ping().await.unwrap_err();
		assert!(err.is_transient(), "{err}");
	}
}
