//! Serving publishers over libp2p (manifest deliveries and log reads), and sampling usage.

use crate::metrics::Loudness;
use crate::{agent::Agent, manifests, metrics::kind, plan::ChainState};
use podchain_cluster::{kube::VOLUMES_SOURCE, DealStatus, Metered, Sampled};
use podchain_p2p::{
	node::{InboundLogs, InboundManifest},
	protocol::{LogChunk, LogLine, RejectReason, Traffic, MAX_LOGS_RESPONSE_BYTES},
	status::PodsStatus,
	InboundRequest,
};
use std::{
	sync::Arc,
	time::{SystemTime, UNIX_EPOCH},
};
use tokio::sync::{mpsc, Semaphore};

/// Inbound requests answered at once.
pub const MAX_CONCURRENT_REQUESTS: usize = 4;
/// Longest time spent on one inbound request (the publisher's own timeout is 30 s).
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(25);
/// Longest log line sent; longer ones are cut (a chunk must fit the response limit).
const MAX_LINE_BYTES: usize = 16 * 1024;
/// Most lines one log answer carries.
const MAX_LOG_LINES: u32 = 1000;
/// Most lines read to answer a `tail` request.
const MAX_TAIL_SCAN: u32 = 10_000;

/// A backend's status as publishers read it.
pub(crate) fn pods_status(status: DealStatus) -> PodsStatus {
	match status {
		DealStatus::Absent => PodsStatus::Absent,
		DealStatus::Starting { ready, wanted } => PodsStatus::Starting { ready, wanted },
		DealStatus::Updating { ready, wanted } => PodsStatus::Updating { ready, wanted },
		DealStatus::Degraded { ready, wanted, reason } => {
			PodsStatus::Degraded { ready, wanted, reason }
		}
		DealStatus::Running => PodsStatus::Running,
		DealStatus::Idle => PodsStatus::Idle,
		DealStatus::Failed { reason } => PodsStatus::Failed { reason },
	}
}

/// Longest status text sent: a backend's reason (podman's error text, a cluster message) must
/// not push a logs answer past its size limit.
const MAX_STATUS_BYTES: usize = 2048;

/// `status` as sent, cut to [`MAX_STATUS_BYTES`] on a character boundary.
pub(crate) fn status_text(status: PodsStatus) -> String {
	let mut text = status.to_string();
	if text.len() > MAX_STATUS_BYTES {
		let mut cut = MAX_STATUS_BYTES;
		while !text.is_char_boundary(cut) {
			cut -= 1;
		}
		text.truncate(cut);
		text.push_str(" [cut]");
	}
	text
}

impl Agent {
	/// Answers inbound requests until the p2p node stops.
	///
	/// At most [`MAX_CONCURRENT_REQUESTS`] are answered at once; the rest wait in the p2p node's
	/// bounded queue, which answers `Busy` when full, so a busy publisher cannot starve the
	/// reconcile loop.
	pub async fn serve(self: Arc<Self>, mut inbound: mpsc::Receiver<InboundRequest>) {
		let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_REQUESTS));
		while let Some(request) = inbound.recv().await {
			let Ok(permit) = permits.clone().acquire_owned().await else { return };
			let agent = self.clone();
			tokio::spawn(async move {
				let _permit = permit;
				let answered = tokio::time::timeout(REQUEST_TIMEOUT, async {
					match request {
						InboundRequest::Manifest(request) => {
							let agent = agent.clone();
							// Decrypting, building and a store commit: off the async threads.
							let _ = tokio::task::spawn_blocking(move || {
								agent.receive_manifest(request)
							})
							.await;
						}
						InboundRequest::Logs(request) => agent.answer_logs(request).await,
						// Decrypting, hashing and writing a chunk: off the async threads.
						InboundRequest::ImageOffer(request) => {
							let agent = agent.clone();
							let _ = tokio::task::spawn_blocking(move || {
								agent.receive_image_offer(request)
							})
							.await;
						}
						InboundRequest::ImageChunk(request) => {
							let agent = agent.clone();
							let _ = tokio::task::spawn_blocking(move || {
								agent.receive_image_chunk(request)
							})
							.await;
						}
					}
				})
				.await;
				if answered.is_err() {
					tracing::warn!("an inbound request took longer than {REQUEST_TIMEOUT:?}");
				}
			});
		}
	}

	fn receive_manifest(&self, request: InboundManifest) {
		let deal = request.request().deal_id;
		let peer = request.peer();
		let Some(snapshot) = self.snapshot() else {
			request.reject(RejectReason::Busy);
			return;
		};
		let checked = manifests::check_delivery(&request, &snapshot, &self.specs).and_then(
			|(bytes, hash, images)| {
				self.vault.put(deal, hash, &bytes, images).map_err(|e| {
					tracing::error!(deal, error = %e, "cannot store a manifest");
					RejectReason::Internal("cannot store the manifest".into())
				})?;
				Ok(hash)
			},
		);
		match checked {
			Ok(hash) => {
				tracing::info!(deal, %peer, "manifest received and stored");
				self.metrics.manifests.get_or_create(&kind("accepted")).inc();
				request.ack(hash);
				self.wake.notify_one();
			}
			Err(reason) => {
				tracing::warn!(deal, %peer, %reason, "manifest refused");
				self.metrics.manifests.get_or_create(&kind("refused")).inc();
				request.reject(reason);
			}
		}
	}

	async fn answer_logs(&self, request: InboundLogs) {
		let deal = request.request().deal_id;
		let closing = match self.snapshot().and_then(|s| s.deals.get(&deal).cloned()) {
			None => return request.reject(RejectReason::UnknownDeal),
			Some(view) if view.publisher.0 != request.request().publisher => {
				return request.reject(RejectReason::NotPublisher)
			}
			Some(view) => view.chain.state == ChainState::Closing,
		};
		let query = request.query().clone();
		let max_lines = query.max_lines.clamp(1, MAX_LOG_LINES);
		let (since, limit) = match (query.cursor, query.tail) {
			(Some(cursor), _) => (cursor, max_lines),
			(None, Some(_)) => (0, MAX_TAIL_SCAN),
			(None, None) => (0, max_lines),
		};
		// `tail: 0` asks for the status alone.
		let status_only = query.cursor.is_none() && query.tail == Some(0);
		let read =
			if status_only { Ok(Vec::new()) } else { self.backend.logs(deal, since, limit).await };
		let mut lines = match read {
			Ok(lines) => lines,
			Err(e) => {
				tracing::warn!(deal, error = %e, "cannot read logs");
				return request.reject(RejectReason::Internal("logs unavailable".into()));
			}
		};
		// Some backends stamp lines more coarsely than they filter (podman 4.3: seconds), so a
		// line sent before can come back stamped before the cursor: never send it again.
		if let Some(cursor) = query.cursor {
			lines.retain(|l| l.timestamp_ms >= cursor);
		}
		// Where the next read starts: after the last line read, even if the filters below
		// drop it, so that following never stalls on lines it does not show.
		let read_up_to = lines.last().map(|l| l.timestamp_ms.saturating_add(1));
		for line in &mut lines {
			if line.text.len() > MAX_LINE_BYTES {
				let mut cut = MAX_LINE_BYTES;
				while !line.text.is_char_boundary(cut) {
					cut -= 1;
				}
				line.text.truncate(cut);
				line.text.push_str(" [cut]");
			}
		}
		if let Some(container) = &query.container {
			lines.retain(|l| {
				l.container.ends_with(&format!("/{container}")) || &l.container == container
			});
		}
		if query.cursor.is_none() {
			if let Some(tail) = query.tail {
				let skip = lines.len().saturating_sub(tail.min(max_lines) as usize);
				lines.drain(..skip);
			}
		}
		lines.truncate(max_lines as usize);
		let mut chunk = LogChunk {
			lines: lines
				.into_iter()
				.map(|l| LogLine {
					container: l.container,
					timestamp_ms: l.timestamp_ms,
					stderr: l.stderr,
					text: l.text,
				})
				.collect(),
			next_cursor: since,
			complete: false,
			deal_status: None,
			traffic: None,
		};
		let mut cut_short = false;
		while chunk.encoded_len_estimate() as u64 > MAX_LOGS_RESPONSE_BYTES / 2 {
			chunk.lines.truncate(chunk.lines.len() / 2);
			cut_short = true;
		}
		// The cursor is a timestamp: the next read starts after the last line sent, or after
		// everything read when nothing was cut.
		chunk.next_cursor = match (cut_short, chunk.lines.last()) {
			(true, Some(last)) => last.timestamp_ms.saturating_add(1),
			_ => read_up_to.unwrap_or(since),
		};
		let status = self.backend.status(deal).await;
		let gone = matches!(status, Ok(DealStatus::Absent));
		chunk.complete = chunk.lines.is_empty() && (closing || gone);
		chunk.deal_status = status.ok().map(|status| status_text(pods_status(status)));
		chunk.traffic = self.gateway.as_ref().filter(|g| g.serves(deal)).map(|g| {
			let figures = g.figures(deal);
			Traffic {
				responses: figures.responses,
				bytes_in: figures.bytes_in,
				bytes_out: figures.bytes_out,
			}
		});
		request.respond(chunk);
	}

	/// Samples every running metered deal each `sample_interval`, until the task is dropped.
	pub async fn sample_forever(self: Arc<Self>) {
		let mut ticker = tokio::time::interval(self.settings.sample_interval);
		ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
		loop {
			ticker.tick().await;
			let Some(snapshot) = self.snapshot() else { continue };
			for deal in snapshot.deals.values() {
				// Usage counts while it can still be billed: not before acceptance, not in an
				// out-of-funds grace period (the chain bills up to when funds ran out).
				let billable = match deal.chain.state {
					ChainState::Pending => false,
					ChainState::Active { .. } | ChainState::Closing => true,
					ChainState::OutOfFunds { .. } => {
						deal.billable_until.is_some_and(|until| deal.settled_until < until)
					}
				};
				if deal.metered && billable && !deal.chain.is_rent {
					self.sample_deal(deal.chain.id, deal.reserved.gpus).await;
				}
			}
			self.sampled_since_start.store(true, std::sync::atomic::Ordering::SeqCst);
		}
	}

	/// Adds one usage sample of `deal`, which reserved `gpus`, to its meter: what could be read,
	/// even if a source could not (storage is billed when CPU and memory cannot be read), and
	/// the GPUs it holds. A source that cannot be read is reported loudly (see
	/// [`report_metering`]).
	pub(crate) async fn sample_deal(&self, deal: u64, gpus: u32) {
		let sampled = self.backend.sample(deal).await;
		report_metering(&self.metrics, deal, &sampled, std::time::Instant::now());
		// A deal without GPUs has none to account for; one with GPUs needs a reading even when
		// nothing runs: it ends the stretch over which they were held.
		let held = gpus_held(&sampled, gpus).filter(|_| gpus > 0);
		if sampled.samples.is_empty() && held.is_none() {
			return;
		}
		let now = SystemTime::now()
			.duration_since(UNIX_EPOCH)
			.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
		let recorded = self.store.update_meter(deal, |meter| {
			for (source, sample) in &sampled.samples {
				meter.record(source, *sample);
			}
			if let Some(held) = held {
				meter.hold_gpus(now, held);
			}
		});
		if let Err(e) = recorded {
			self.metrics.error("store");
			tracing::error!(deal, error = %e, "cannot record usage");
		}
	}
}

/// How many of its reserved `gpus` a deal holds, as `sampled` shows: all of them while any of its
/// pods runs (a container or a pod's network was read; the devices are allocated to the pods
/// whether they use them or not), none when its containers were read and none runs (not
/// deployed yet, scaled to zero, removed); `None` when that cannot be told (its containers could
/// not be read, or not all of them).
pub(crate) fn gpus_held(sampled: &Sampled, gpus: u32) -> Option<u32> {
	if sampled.samples.iter().any(|(source, _)| source != VOLUMES_SOURCE) {
		Some(gpus)
	} else if sampled.failures.iter().any(|f| f.what == Metered::Containers) {
		None
	} else {
		Some(0)
	}
}

/// Counts, logs and records in the health the sources a sample of `deal` could not read, and
/// the recovery of those it could again. Usage that cannot be read goes unbilled, so it is
/// never quiet: an error (a source that needs the provider, such as an agent not allowed to
/// read the kubelets' stats) or a warning (an outage) when it starts, again every
/// [`MeteringHealth::RELOG`](crate::metrics::MeteringHealth::RELOG) while it lasts; debug in
/// between.
pub(crate) fn report_metering(
	metrics: &crate::metrics::Metrics,
	deal: u64,
	sampled: &Sampled,
	now: std::time::Instant,
) {
	for failure in &sampled.failures {
		let what = failure.what.as_str();
		metrics.error("sample");
		metrics.metering_failures.get_or_create(&kind(what)).inc();
		let error = &failure.error;
		match metrics.metering.failed(what, error, now) {
			Loudness::Loud if failure.transient => tracing::warn!(
				deal,
				metering = what,
				%error,
				"cannot meter usage: it goes unbilled while this lasts"
			),
			Loudness::Loud => tracing::error!(
				deal,
				metering = what,
				%error,
				"cannot meter usage: it goes unbilled until this is fixed"
			),
			Loudness::Quiet => tracing::debug!(deal, metering = what, %error, "cannot meter usage"),
		}
	}
	for what in [Metered::Containers, Metered::Storage] {
		if !sampled.failures.iter().any(|f| f.what == what)
			&& metrics.metering.succeeded(what.as_str(), now)
		{
			tracing::info!(metering = what.as_str(), "metering works again");
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::metrics::Metrics;
	use podchain_cluster::MeteringFailure;
	use std::{
		io::Write,
		sync::{Arc, Mutex},
		time::{Duration, Instant},
	};

	/// Log output captured in memory.
	#[derive(Clone, Default)]
	struct Captured(Arc<Mutex<Vec<u8>>>);

	impl Write for Captured {
		fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
			self.0.lock().expect("lock").extend_from_slice(buf);
			Ok(buf.len())
		}
		fn flush(&mut self) -> std::io::Result<()> {
			Ok(())
		}
	}

	impl Captured {
		fn take(&self) -> String {
			String::from_utf8(std::mem::take(&mut *self.0.lock().expect("lock"))).expect("UTF-8")
		}
	}

	#[test]
	fn status_texts_are_bounded_and_read_back() {
		let failed = pods_status(DealStatus::Failed { reason: "é".repeat(5000) });
		let text = status_text(failed);
		assert!(text.len() <= MAX_STATUS_BYTES + " [cut]".len(), "{}", text.len());
		assert!(PodsStatus::parse(&text).is_terminal(), "still a failure once cut");
		let degraded =
			pods_status(DealStatus::Degraded { ready: 0, wanted: 1, reason: "quota".into() });
		assert_eq!(status_text(degraded), "degraded 0/1: quota");
		assert_eq!(
			PodsStatus::parse(&status_text(pods_status(DealStatus::Updating {
				ready: 1,
				wanted: 2
			}))),
			PodsStatus::Updating { ready: 1, wanted: 2 }
		);
	}

	fn failure(what: Metered, error: &str, transient: bool) -> Sampled {
		Sampled {
			samples: Vec::new(),
			failures: vec![MeteringFailure { what, error: error.into(), transient }],
		}
	}

	#[test]
	fn a_metering_failure_is_an_error_in_the_log_a_metric_and_a_health_degradation() {
		let captured = Captured::default();
		let writer = captured.clone();
		let subscriber = tracing_subscriber::fmt()
			.with_max_level(tracing::Level::INFO)
			.with_ansi(false)
			.with_writer(move || writer.clone())
			.finish();
		let metrics = Metrics::default();
		let t0 = Instant::now();
		let missing =
			"read the kubelet stats of node n1: forbidden; the agent's ClusterRole needs \
			`get` on nodes/proxy";
		tracing::subscriber::with_default(subscriber, || {
			// Not allowed to read the kubelets' stats: an error, naming the deal and the fix.
			report_metering(&metrics, 7, &failure(Metered::Containers, missing, false), t0);
			let log = captured.take();
			assert!(log.contains("ERROR") && log.contains("`get` on nodes/proxy"), "{log}");
			assert!(log.contains("deal=7") && log.contains("metering=\"containers\""), "{log}");
			// The next deal's sample a moment later: counted, not logged again at info level.
			let later = t0 + Duration::from_secs(5);
			report_metering(&metrics, 8, &failure(Metered::Containers, missing, false), later);
			assert_eq!(captured.take(), "");
			// An outage of the claims' listing: a warning.
			report_metering(&metrics, 7, &failure(Metered::Storage, "timed out", true), later);
			let log = captured.take();
			assert!(log.contains("WARN") && log.contains("metering=\"storage\""), "{log}");
		});
		let text = metrics.encode();
		assert!(
			text.contains("podchain_agent_metering_failures_total{kind=\"containers\"} 2"),
			"{text}"
		);
		assert!(text.contains("podchain_agent_metering_degraded{kind=\"storage\"} 1"), "{text}");
		let failing: Vec<&str> = metrics.metering_degraded().into_iter().map(|(w, _)| w).collect();
		assert_eq!(failing, ["containers", "storage"]);

		// Read again past the window: recovered, said once at info level.
		let captured = Captured::default();
		let writer = captured.clone();
		let subscriber =
			tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
		tracing::subscriber::with_default(subscriber, || {
			let much_later = t0 + Duration::from_secs(120);
			report_metering(&metrics, 7, &Sampled::default(), much_later);
			let log = captured.take();
			assert!(log.contains("INFO") && log.contains("metering works again"), "{log}");
		});
	}

	fn sampled(sources: &[&str], failing: Option<Metered>) -> Sampled {
		let mut sampled = failing.map_or_else(Sampled::default, |what| failure(what, "down", true));
		sampled.samples = sources.iter().map(|s| (s.to_string(), Default::default())).collect();
		sampled
	}

	#[test]
	fn gpus_are_held_while_any_pod_runs() {
		let running = sampled(&["app-1/<network>", VOLUMES_SOURCE], None);
		assert_eq!(gpus_held(&running, 2), Some(2));
		// One node read, another not: what was read runs.
		assert_eq!(gpus_held(&sampled(&["app-1/web"], Some(Metered::Containers)), 2), Some(2));
		// Scaled to zero or removed: only the claims are left.
		assert_eq!(gpus_held(&sampled(&[VOLUMES_SOURCE], None), 2), Some(0));
		assert_eq!(gpus_held(&sampled(&[], Some(Metered::Storage)), 2), Some(0));
		// Nothing could be read: unknown, so the meter spans the gap with the next reading.
		assert_eq!(gpus_held(&sampled(&[VOLUMES_SOURCE], Some(Metered::Containers)), 2), None);
	}
}
