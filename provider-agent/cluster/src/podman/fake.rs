//! A stand-in podman service on a unix socket for unit tests: it holds pods and containers,
//! answers the listings, stats and disk usage the backend reads, removes what it is asked to,
//! fails listings on demand, streams the events a test emits, and counts the requests by path.

use std::{
	collections::BTreeMap,
	path::Path,
	sync::{Arc, Mutex},
};

use super::REPLICAS_LABEL;
use crate::objects::{DEAL_LABEL, MANAGED_BY_LABEL, MANAGER, MANIFEST_HASH_ANNOTATION};
use serde_json::{json, Value};
use tokio::{
	io::{AsyncReadExt, AsyncWriteExt},
	net::{UnixListener, UnixStream},
};

/// What the fake service holds.
#[derive(Debug, Default)]
pub(crate) struct State {
	/// Pods, as `pods/json` lists them.
	pub pods: Vec<Value>,
	/// Containers, as `containers/json` lists them.
	pub containers: Vec<Value>,
	/// Volumes, as `volumes/json` lists them.
	pub volumes: Vec<Value>,
	/// Listings answer 500 while set.
	pub failing: bool,
	/// Requests received, by path without its query.
	pub requests: BTreeMap<String, usize>,
	/// The open event streams.
	pub watchers: Vec<tokio::sync::mpsc::UnboundedSender<String>>,
	/// The events request answers 404 while set.
	pub refuse_events: bool,
}

/// A fake podman service; it stops when dropped.
pub(crate) struct FakePodman {
	pub state: Arc<Mutex<State>>,
	task: tokio::task::JoinHandle<()>,
}

impl Drop for FakePodman {
	fn drop(&mut self) {
		self.task.abort();
	}
}

impl FakePodman {
	/// Serves on `socket`.
	pub fn serve(socket: &Path) -> FakePodman {
		let listener = UnixListener::bind(socket).expect("bind the fake socket");
		let state = Arc::new(Mutex::new(State::default()));
		let shared = state.clone();
		let task = tokio::spawn(async move {
			while let Ok((stream, _)) = listener.accept().await {
				tokio::spawn(answer(stream, shared.clone()));
			}
		});
		FakePodman { state, task }
	}

	/// Requests received for paths containing `part`.
	pub fn requests(&self, part: &str) -> usize {
		let state = self.state.lock().expect("lock");
		state.requests.iter().filter(|(path, _)| path.contains(part)).map(|(_, n)| n).sum()
	}

	/// Sends an event (podman's JSON line) to every open event stream.
	pub fn emit(&self, action: &str) {
		let line = json!({"Type": "container", "Action": action, "Actor": {"ID": "x"}});
		let mut state = self.state.lock().expect("lock");
		state.watchers.retain(|watcher| watcher.send(format!("{line}\n")).is_ok());
	}

	/// Closes every open event stream.
	pub fn end_events(&self) {
		self.state.lock().expect("lock").watchers.clear();
	}

	/// How many event streams are open.
	pub fn watchers(&self) -> usize {
		let mut state = self.state.lock().expect("lock");
		state.watchers.retain(|watcher| !watcher.is_closed());
		state.watchers.len()
	}

	/// Adds deal `deal`'s running pod with one app container (`web`) and its infra container.
	pub fn run_deal(&self, deal: u64, hash: &str) {
		let pod = format!("podchain-deal-{deal}-pod-0");
		let labels: serde_json::Map<String, Value> = [
			(DEAL_LABEL, deal.to_string()),
			(MANAGED_BY_LABEL, MANAGER.to_owned()),
			(MANIFEST_HASH_ANNOTATION, hash.to_owned()),
			(REPLICAS_LABEL, "1".to_owned()),
		]
		.into_iter()
		.map(|(key, value)| (key.to_owned(), Value::from(value)))
		.collect();
		let mut state = self.state.lock().expect("lock");
		state.pods.push(json!({
			"Id": format!("{pod}-id"), "Name": pod, "Status": "Running", "Labels": labels,
			"Created": "2026-11-21T08:00:00Z", "InfraId": format!("{pod}-infra"),
			"Networks": [format!("podchain-deal-{deal}")],
		}));
		state.containers.push(json!({
			"Id": format!("{pod}-web"), "Names": [format!("{pod}-web")], "PodName": pod,
			"State": "running", "ExitCode": 0, "IsInfra": false, "Labels": labels, "Pid": 0,
		}));
		state.containers.push(json!({
			"Id": format!("{pod}-infra"), "Names": [format!("{pod}-infra")], "PodName": pod,
			"State": "running", "ExitCode": 0, "IsInfra": true, "Labels": null, "Pid": 0,
		}));
	}
}

async fn answer(mut stream: UnixStream, state: Arc<Mutex<State>>) {
	let mut request = Vec::new();
	let mut buffer = [0u8; 4096];
	while !request.windows(4).any(|w| w == b"\r\n\r\n") {
		match stream.read(&mut buffer).await {
			Ok(0) | Err(_) => return,
			Ok(n) => request.extend_from_slice(&buffer[..n]),
		}
	}
	let text = String::from_utf8_lossy(&request);
	let mut first = text.lines().next().unwrap_or_default().split(' ');
	let (method, target) = (first.next().unwrap_or_default(), first.next().unwrap_or_default());
	let path = target.split('?').next().unwrap_or_default().to_owned();
	if path.ends_with("/events") {
		return stream_events(stream, &state, &path).await;
	}
	let (status, body) = {
		let mut state = state.lock().expect("lock");
		*state.requests.entry(path.clone()).or_default() += 1;
		route(&mut state, method, &path)
	};
	let response = format!(
		"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
		body.len()
	);
	let _ = stream.write_all(response.as_bytes()).await;
}

/// Answers an events request: a body without a length, one line per emitted event, until the
/// test ends the stream.
async fn stream_events(mut stream: UnixStream, state: &Mutex<State>, path: &str) {
	let (sender, mut events) = tokio::sync::mpsc::unbounded_channel();
	let refused = {
		let mut state = state.lock().expect("lock");
		*state.requests.entry(path.to_owned()).or_default() += 1;
		if !state.refuse_events {
			state.watchers.push(sender);
		}
		state.refuse_events
	};
	if refused {
		let body = json!({"cause": "x", "message": "not faked", "response": 404}).to_string();
		let head = format!(
			"HTTP/1.1 404 X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
			body.len()
		);
		let _ = stream.write_all(format!("{head}{body}").as_bytes()).await;
		return;
	}
	let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
	if stream.write_all(head.as_bytes()).await.is_err() {
		return;
	}
	while let Some(line) = events.recv().await {
		if stream.write_all(line.as_bytes()).await.is_err() {
			return;
		}
	}
}

fn route(state: &mut State, method: &str, path: &str) -> (u16, String) {
	let listing = path.ends_with("/pods/json") || path.ends_with("/containers/json");
	if state.failing && listing {
		return (
			500,
			json!({"cause": "x", "message": "database is locked", "response": 500}).to_string(),
		);
	}
	match (method, path) {
		("GET", "/_ping") => (200, "OK".into()),
		("GET", p) if p.ends_with("/pods/json") => {
			(200, Value::from(state.pods.clone()).to_string())
		}
		("GET", p) if p.ends_with("/containers/json") => {
			(200, Value::from(state.containers.clone()).to_string())
		}
		("GET", p) if p.ends_with("/containers/stats") => {
			let stats: Vec<Value> = state
				.containers
				.iter()
				.filter(|c| c["State"] == "running")
				.map(|c| json!({"ContainerID": c["Id"], "CPUNano": 1000, "SystemNano": 5_000_000_000u64, "MemUsage": 4096}))
				.collect();
			(200, json!({"Error": null, "Stats": stats}).to_string())
		}
		("GET", p) if p.ends_with("/system/df") => {
			(200, json!({"Containers": [], "Volumes": []}).to_string())
		}
		("GET", p) if p.ends_with("/volumes/json") => {
			(200, Value::from(state.volumes.clone()).to_string())
		}
		("GET", p) if p.ends_with("/secrets/json") => (200, "[]".into()),
		("GET", p) if p.ends_with("/images/json") => (200, "[]".into()),
		("POST", p) if p.ends_with("/pause") || p.ends_with("/unpause") => {
			let mut parts = p.rsplit('/');
			let (action, name) =
				(parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
			let status = if action == "pause" { "Paused" } else { "Running" };
			match state.pods.iter_mut().find(|pod| pod["Name"] == name) {
				Some(pod) => {
					pod["Status"] = Value::from(status);
					(200, json!({"Id": pod["Id"], "Errs": []}).to_string())
				}
				None => (
					404,
					json!({"cause": "x", "message": "no such pod", "response": 404}).to_string(),
				),
			}
		}
		("DELETE", p) if p.contains("/pods/") => {
			let name = p.rsplit('/').next().unwrap_or_default().to_owned();
			state.pods.retain(|pod| pod["Name"] != name.as_str());
			state.containers.retain(|c| c["PodName"] != name.as_str());
			(200, "[]".into())
		}
		("DELETE", _) => (200, "{}".into()),
		_ => (404, json!({"cause": "x", "message": "not faked", "response": 404}).to_string()),
	}
}
