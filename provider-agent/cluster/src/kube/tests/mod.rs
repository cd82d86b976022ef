//! The backend against a mock API server: each test scripts the requests it expects, in
//! order, asserting method, path, query and body, and the replies.

mod apply;
mod observe;
mod scale;
mod usage;

use super::{KubeBackend, KubeOptions};
use ::kube::client::Body;
use http::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use std::{collections::BTreeMap, time::Duration};
use tower_test::mock::{Handle, SendResponse};

/// The mock API server's side.
pub(super) struct ApiServer(Handle<Request<Body>, Response<Body>>);

/// One request received, to check and answer.
pub(super) struct Exchange {
	pub method: Method,
	pub path: String,
	pub query: BTreeMap<String, String>,
	pub body: Vec<u8>,
	send: SendResponse<Response<Body>>,
}

/// A backend talking to a fresh mock server.
pub(super) fn mock() -> (KubeBackend, ApiServer) {
	mock_with(KubeOptions {
		request_timeout: Duration::from_secs(5),
		log_limit_bytes: 4096,
		summary_max_age: Duration::ZERO,
		delivered_images: None,
	})
}

/// A backend with `options` talking to a fresh mock server.
pub(super) fn mock_with(options: KubeOptions) -> (KubeBackend, ApiServer) {
	let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
	let client = ::kube::Client::new(service, "default");
	(KubeBackend::new(client, options), ApiServer(handle))
}

/// Runs `$call` (with `$b` the backend) while `$script` plays the API server, then checks the
/// backend sent nothing more; evaluates to the call's result. A failed assertion in the script
/// fails the test with its own message.
macro_rules! run {
	($backend:expr, $server:expr, |$b:ident| $call:expr, $script:expr $(,)?) => {{
		let backend: $crate::kube::KubeBackend = $backend;
		let script = $crate::kube::tests::spawn_script($server, $script);
		let result = {
			let $b = &backend;
			tokio::time::timeout(std::time::Duration::from_secs(20), $call)
				.await
				.expect("the backend call hangs")
		};
		$crate::kube::tests::finish(backend, script).await;
		result
	}};
}
pub(super) use run;

/// Plays `script` as the API server in a task of its own.
pub(super) fn spawn_script<S>(
	server: ApiServer,
	script: impl FnOnce(ApiServer) -> S,
) -> tokio::task::JoinHandle<ApiServer>
where
	S: std::future::Future<Output = ApiServer> + Send + 'static,
{
	tokio::spawn(script(server))
}

/// Drops the backend, waits for the script and checks that no request is left over.
pub(super) async fn finish(backend: KubeBackend, script: tokio::task::JoinHandle<ApiServer>) {
	drop(backend);
	let mut server = match script.await {
		Ok(server) => server,
		Err(err) => std::panic::resume_unwind(err.into_panic()),
	};
	let extra = tokio::time::timeout(Duration::from_secs(5), server.0.next_request())
		.await
		.expect("the client is not dropped");
	if let Some((request, _)) = extra {
		panic!("unexpected request {} {}", request.method(), request.uri());
	}
}

impl ApiServer {
	/// The next request, whatever it is.
	pub async fn next(&mut self) -> Exchange {
		let (request, send) = tokio::time::timeout(Duration::from_secs(10), self.0.next_request())
			.await
			.unwrap_or_else(|_| panic!("no request came"))
			.unwrap_or_else(|| panic!("the client is gone"));
		let (parts, body) = request.into_parts();
		let body = body.collect_bytes().await.expect("request body").to_vec();
		Exchange {
			method: parts.method,
			path: parts.uri.path().to_owned(),
			query: parts.uri.query().map(parse_query).unwrap_or_default(),
			body,
			send,
		}
	}

	/// The next request, which must be `method` on `path`.
	pub async fn expect(&mut self, method: Method, path: &str) -> Exchange {
		let exchange = self.next().await;
		assert_eq!(
			(exchange.method.clone(), exchange.path.as_str()),
			(method, path),
			"query {:?}",
			exchange.query
		);
		exchange
	}

	/// Expects a server-side apply (as `podchain-agent`, forced) to `path` and echoes the body;
	/// returns the body.
	pub async fn expect_apply(&mut self, path: &str) -> Value {
		let exchange = self.expect(Method::PATCH, path).await;
		exchange.assert_query(&[("fieldManager", "podchain-agent"), ("force", "true")]);
		let body = exchange.json();
		exchange.reply(200, body.clone());
		body
	}
}

impl Exchange {
	/// The body as JSON.
	pub fn json(&self) -> Value {
		serde_json::from_slice(&self.body).expect("JSON body")
	}

	/// Asserts the query is exactly `expected`.
	pub fn assert_query(&self, expected: &[(&str, &str)]) {
		let expected: BTreeMap<String, String> =
			expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
		assert_eq!(self.query, expected, "{} {}", self.method, self.path);
	}

	/// Replies with `status` and a JSON body.
	pub fn reply(self, status: u16, body: Value) {
		self.reply_bytes(status, serde_json::to_vec(&body).expect("JSON"));
	}

	/// Replies with `status` and `body` as is.
	pub fn reply_bytes(self, status: u16, body: Vec<u8>) {
		let response = Response::builder()
			.status(StatusCode::from_u16(status).expect("status"))
			.body(Body::from(body))
			.expect("response");
		self.send.send_response(response);
	}

	/// Replies with a Kubernetes `Status` error.
	pub fn reply_status(self, code: u16, reason: &str, message: &str) {
		let status = json!({
			"kind": "Status", "apiVersion": "v1", "status": "Failure",
			"code": code, "reason": reason, "message": message,
		});
		self.reply(code, status);
	}
}

/// A list response of `kind` with `items`.
pub(super) fn list(kind: &str, items: Vec<Value>) -> Value {
	json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {}, "items": items})
}

/// A metadata-only list with objects named `names`.
pub(super) fn metadata_list(names: &[&str]) -> Value {
	let items: Vec<Value> = names
		.iter()
		.map(|n| json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": {"name": n}}))
		.collect();
	json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {}, "items": items})
}

/// Decodes `a=b&c=d%3De`.
fn parse_query(query: &str) -> BTreeMap<String, String> {
	query
		.split('&')
		.filter(|pair| !pair.is_empty())
		.map(|pair| {
			let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
			(decode(key), decode(value))
		})
		.collect()
}

fn decode(text: &str) -> String {
	let bytes = text.as_bytes();
	let mut out = Vec::with_capacity(bytes.len());
	let mut i = 0;
	while i < bytes.len() {
		match bytes[i] {
			b'+' => out.push(b' '),
			b'%' if i + 3 <= bytes.len() => {
				let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ascii");
				out.push(u8::from_str_radix(hex, 16).expect("percent escape"));
				i += 2;
			}
			b => out.push(b),
		}
		i += 1;
	}
	String::from_utf8(out).expect("UTF-8 query")
}
