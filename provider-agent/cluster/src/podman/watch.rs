//! Follows podman's event stream, so that the backend's listing of pods and containers is read
//! again only when podman changed something (see `view.rs`).
//!
//! Each event about a pod or a container drops the listing, except those that change nothing
//! listed (an exec, a health check, an attach); an event that does not parse counts as a
//! change: a listing read too often costs only time, one read too few a wrong answer. While
//! the stream is open the listing is also read again in the background every
//! [`Timing::relist`](super::view::Timing), beside the stream, as a safety net for an event
//! podman did not write; a read that fails ends the watch, so that questions read podman
//! themselves and fail loudly. When the stream ends or cannot be opened, the views fall back to
//! their short age and the watch tries again, waiting longer after each failure.

use std::{
	future::Future,
	pin::Pin,
	sync::Mutex,
	time::{Duration, Instant},
};

use http_body_util::BodyExt;
use hyper::Method;
use serde::Deserialize;

use super::{
	api::{Api, LIBPOD},
	view::Views,
};
use crate::ClusterError;

/// First wait before following the events again after a failure.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Longest wait between attempts.
const LAST_RETRY: Duration = Duration::from_secs(30);
/// Longest a background relist may take: podman that slow is taken as not answering.
const RELIST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest event line kept whole; a longer one counts as a change.
const MAX_LINE: usize = 1 << 20;

/// The watch of one podman service; it stops when dropped.
#[derive(Debug)]
pub(crate) struct Watch {
	task: Mutex<Option<tokio::task::JoinHandle<()>>>,
	views: Views,
}

impl Watch {
	/// Starts following `api`'s events into `views`.
	pub fn start(api: Api, views: Views) -> Self {
		let task = tokio::spawn(follow(api, views.clone()));
		Watch { task: Mutex::new(Some(task)), views }
	}

	/// Stops following, and drops the views: what was read while watched no longer answers
	/// for longer than the views' short age.
	pub async fn stop(&self) {
		let task = self.task.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
		if let Some(task) = task {
			task.abort();
			// Cancelled (or panicked): either way it has stopped touching the views.
			let _ = task.await;
		}
		self.views.unwatched();
		self.views.invalidate();
	}
}

impl Drop for Watch {
	fn drop(&mut self) {
		let task = self.task.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
		if let Some(task) = task {
			task.abort();
		}
	}
}

/// Follows the events until the task is dropped, reconnecting after failures.
async fn follow(api: Api, views: Views) {
	let mut retry = FIRST_RETRY;
	let mut failures = 0u32;
	loop {
		let Err(ended) = watch_once(&api, &views).await;
		views.unwatched();
		if ended.served {
			retry = FIRST_RETRY;
			failures = 0;
		}
		failures = failures.saturating_add(1);
		// Said once per outage: a podman that stays down is reported by every question.
		let max_age = views.timing().max_age;
		if failures == 1 {
			tracing::warn!(error = %ended.error, retry_in = ?retry, ?max_age, "stopped following podman's events: listings are read again once max_age old until it is back");
		} else {
			tracing::debug!(error = %ended.error, retry_in = ?retry, "cannot follow podman's events");
		}
		tokio::time::sleep(retry).await;
		retry = retry.saturating_mul(2).min(LAST_RETRY);
	}
}

/// How one watch ended.
struct Ended {
	error: ClusterError,
	/// Whether the stream served a while (an event, or a relist interval): a loss after that
	/// is a new outage, while a stream that ends as soon as it opens is the same one.
	served: bool,
}

/// A relist running beside the stream.
type Relisting<'a> = Pin<Box<dyn Future<Output = Result<(), ClusterError>> + Send + 'a>>;

/// Opens the event stream and passes its events to the views, relisting in the background,
/// until the stream or a relist fails.
async fn watch_once(api: &Api, views: &Views) -> Result<std::convert::Infallible, Ended> {
	let refused = |error| Ended { error, served: false };
	let response = api
		.open(Method::GET, &format!("{LIBPOD}/events?stream=true"), None)
		.await
		.map_err(refused)?;
	let status = response.status();
	if !status.is_success() {
		let text = format!("podman answered {} to the events request", status.as_u16());
		return Err(refused(if status.is_server_error() {
			ClusterError::Unavailable(text)
		} else {
			ClusterError::Refused(text)
		}));
	}
	views.watching();
	tracing::info!("following podman's events");
	let opened = Instant::now();
	let relist_every = views.timing().relist;
	let mut served = false;
	let ended =
		|error, served: bool| Ended { error, served: served || opened.elapsed() >= relist_every };
	let mut relist =
		tokio::time::interval_at(tokio::time::Instant::now() + relist_every, relist_every);
	relist.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
	let mut relisting: Option<Relisting<'_>> = None;
	let mut lines = Lines::default();
	let mut body = response.into_body();
	loop {
		tokio::select! {
			frame = body.frame() => {
				let data = match frame {
					None => return Err(ended(ClusterError::Unavailable("podman closed its event stream".into()), served)),
					Some(Err(e)) => return Err(ended(ClusterError::Unavailable(format!("podman's event stream failed: {e}")), served)),
					Some(Ok(frame)) => frame.into_data().unwrap_or_default(),
				};
				if lines.push(&data) {
					served = true;
					views.event();
				}
			}
			_ = relist.tick(), if relisting.is_none() => {
				relisting = Some(Box::pin(relist_now(api, views)));
			}
			Some(result) = async { Some(relisting.as_mut()?.await) }, if relisting.is_some() => {
				relisting = None;
				result.map_err(|e| ended(e, served))?;
			}
		}
	}
}

/// Reads the listing again and makes it the current one, unless an event or a change came
/// while it was read.
async fn relist_now(api: &Api, views: &Views) -> Result<(), ClusterError> {
	let read = async {
		let (generation, listing) = views.relist();
		listing.pods(api).await?;
		listing.containers(api).await?;
		views.install(generation, listing);
		Ok(())
	};
	tokio::time::timeout(RELIST_TIMEOUT, read).await.map_err(|_| {
		ClusterError::Unavailable(format!(
			"podman did not list its pods and containers within {} s",
			RELIST_TIMEOUT.as_secs()
		))
	})?
}

/// The stream's bytes, cut into podman's one-event lines.
#[derive(Default)]
struct Lines {
	partial: Vec<u8>,
}

impl Lines {
	/// Adds `data`; returns whether a line it completed announced a change to what is listed.
	fn push(&mut self, data: &[u8]) -> bool {
		let mut changed = false;
		let mut rest = data;
		while let Some(end) = rest.iter().position(|&b| b == b'\n') {
			self.partial.extend_from_slice(&rest[..end]);
			changed |= changes_listing(&self.partial);
			self.partial.clear();
			rest = &rest[end + 1..];
		}
		self.partial.extend_from_slice(rest);
		if self.partial.len() > MAX_LINE {
			self.partial.clear();
			changed = true;
		}
		changed
	}
}

/// The parts of an event read here.
#[derive(Deserialize)]
struct Event {
	#[serde(rename = "Type", default)]
	kind: String,
	#[serde(rename = "Action", default)]
	action: String,
}

/// Whether the event `line` may change what podman lists: anything but events about other
/// objects (images, volumes, networks, secrets) and container actions that change no state.
/// A line that does not parse may.
fn changes_listing(line: &[u8]) -> bool {
	if line.iter().all(u8::is_ascii_whitespace) {
		return false;
	}
	let Ok(event) = serde_json::from_slice::<Event>(line) else { return true };
	match event.kind.as_str() {
		"image" | "volume" | "network" | "secret" => false,
		"container" => {
			!matches!(event.action.as_str(), "exec" | "exec_died" | "health_status" | "attach")
		}
		_ => true,
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn only_events_that_change_pods_or_containers_count() {
		let event = |kind: &str, action: &str| {
			format!(
				r#"{{"status":"{action}","Type":"{kind}","Action":"{action}","Actor":{{"ID":"x"}}}}"#
			)
		};
		for (kind, action) in [
			("container", "died"),
			("container", "start"),
			("container", "remove"),
			("pod", "stop"),
			("system", "refresh"),
			("", ""),
		] {
			assert!(changes_listing(event(kind, action).as_bytes()), "{kind} {action}");
		}
		for (kind, action) in [
			("container", "exec"),
			("container", "exec_died"),
			("container", "health_status"),
			("image", "pull"),
			("volume", "create"),
			("network", "connect"),
		] {
			assert!(!changes_listing(event(kind, action).as_bytes()), "{kind} {action}");
		}
		assert!(changes_listing(b"{not json"), "unreadable: a change");
		assert!(!changes_listing(b"  "));
	}

	#[test]
	fn lines_are_read_across_frames() {
		let died = br#"{"Type":"container","Action":"died"}"#;
		let pulled = br#"{"Type":"image","Action":"pull"}"#;
		let mut lines = Lines::default();
		assert!(!lines.push(&died[..10]), "not a line yet");
		assert!(lines.push(&[&died[10..], b"\n".as_slice(), &pulled[..5]].concat()));
		assert!(!lines.push(&[&pulled[5..], b"\n".as_slice()].concat()), "an image's event");
		assert!(lines.partial.is_empty());
		assert!(!lines.push(&vec![b'x'; MAX_LINE]), "long, but not too long yet");
		assert!(lines.push(b"xx"), "too long: a change");
		assert!(lines.partial.is_empty());
	}
}
