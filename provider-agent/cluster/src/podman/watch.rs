//! Follows podman's event stream, so that the backend's listing of pods and containers is read
//! again only when podman changed something (see `view.rs`).
//!
//! Every event drops the views, whatever it is about: events are rare while deals just run,
//! and a listing read too often costs only time, one read too few a wrong answer. While the
//! stream is open the listing is also read again in the background every
//! [`Timing::relist`](super::view::Timing), a safety net for an event podman did not write; a
//! read that fails ends the watch, so that questions read podman themselves and fail loudly.
//! When the stream ends or cannot be opened, the views fall back to their short age and the
//! watch tries again, waiting longer after each failure.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper::Method;

use super::{
	api::{Api, LIBPOD},
	view::Views,
};
use crate::ClusterError;

/// First wait before following the events again after a failure.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Longest wait between attempts.
const LAST_RETRY: Duration = Duration::from_secs(30);

/// The watch of one podman service; it stops when dropped.
#[derive(Debug)]
pub(crate) struct Watch(tokio::task::JoinHandle<()>);

impl Watch {
	/// Starts following `api`'s events into `views`.
	pub fn start(api: Api, views: Views) -> Self {
		Watch(tokio::spawn(follow(api, views)))
	}

	/// Stops following.
	pub fn stop(&self) {
		self.0.abort();
	}
}

impl Drop for Watch {
	fn drop(&mut self) {
		self.0.abort();
	}
}

/// Follows the events until the task is dropped, reconnecting after failures.
async fn follow(api: Api, views: Views) {
	let mut retry = FIRST_RETRY;
	let mut failures = 0u32;
	loop {
		let Err(ended) = watch_once(&api, &views).await;
		views.unwatched();
		if ended.was_open {
			retry = FIRST_RETRY;
			failures = 0;
		}
		failures = failures.saturating_add(1);
		// Said once per outage: a podman that stays down is reported by every question.
		if failures == 1 {
			tracing::warn!(error = %ended.error, retry_in = ?retry, "stopped following podman's events: listings answer for 500 ms at most until it is back");
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
	/// Whether the stream had been open (a loss after a while, not a refusal).
	was_open: bool,
}

/// Opens the event stream and drops the views at each event, relisting in the background,
/// until the stream or a relist fails.
async fn watch_once(api: &Api, views: &Views) -> Result<std::convert::Infallible, Ended> {
	let closed = |error| Ended { error, was_open: false };
	let response = api
		.open(Method::GET, &format!("{LIBPOD}/events?stream=true"), None)
		.await
		.map_err(closed)?;
	let status = response.status();
	if !status.is_success() {
		let text = format!("podman answered {} to the events request", status.as_u16());
		return Err(closed(if status.is_server_error() {
			ClusterError::Unavailable(text)
		} else {
			ClusterError::Refused(text)
		}));
	}
	views.watching();
	tracing::info!("following podman's events");
	let lost = |error| Ended { error, was_open: true };
	let relist_every = views.timing().relist;
	let mut relist =
		tokio::time::interval_at(tokio::time::Instant::now() + relist_every, relist_every);
	relist.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
	let mut body = response.into_body();
	loop {
		tokio::select! {
			frame = body.frame() => match frame {
				None => return Err(lost(ClusterError::Unavailable("podman closed its event stream".into()))),
				Some(Err(e)) => return Err(lost(ClusterError::Unavailable(format!("podman's event stream failed: {e}")))),
				Some(Ok(frame)) => {
					if frame.data_ref().is_some_and(|data| !data.is_empty()) {
						views.event();
					}
				}
			},
			_ = relist.tick() => relist_now(api, views).await.map_err(lost)?,
		}
	}
}

/// Reads the listing again and makes it the current one, unless an event or a change came
/// meanwhile.
async fn relist_now(api: &Api, views: &Views) -> Result<(), ClusterError> {
	let (generation, listing) = views.relist();
	listing.pods(api).await?;
	listing.containers(api).await?;
	views.install(generation, listing);
	Ok(())
}
