//! Serving publishers over libp2p (manifest deliveries and log reads), and sampling usage.

use crate::{agent::Agent, manifests, metrics::kind, plan::ChainState};
use podchain_cluster::DealStatus;
use podchain_p2p::{
	node::{InboundLogs, InboundManifest},
	protocol::{LogChunk, LogLine, RejectReason, MAX_LOGS_RESPONSE_BYTES},
	InboundRequest,
};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Most lines one log answer carries.
const MAX_LOG_LINES: u32 = 1000;
/// Most lines read to answer a `tail` request.
const MAX_TAIL_SCAN: u32 = 10_000;

impl Agent {
	/// Answers inbound requests until the p2p node stops.
	pub async fn serve(self: Arc<Self>, mut inbound: mpsc::Receiver<InboundRequest>) {
		while let Some(request) = inbound.recv().await {
			let agent = self.clone();
			tokio::spawn(async move {
				match request {
					InboundRequest::Manifest(request) => agent.receive_manifest(request),
					InboundRequest::Logs(request) => agent.answer_logs(request).await,
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
			|(bytes, hash)| {
				self.vault.put(deal, hash, &bytes).map_err(|e| {
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
		let read = self.backend.logs(deal, since, limit).await;
		let mut lines = match read {
			Ok(lines) => lines,
			Err(e) => {
				tracing::warn!(deal, error = %e, "cannot read logs");
				return request.reject(RejectReason::Internal("logs unavailable".into()));
			}
		};
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
		};
		while chunk.encoded_len_estimate() as u64 > MAX_LOGS_RESPONSE_BYTES / 2 {
			chunk.lines.truncate(chunk.lines.len() / 2);
		}
		// The cursor is a timestamp: the next read starts after the last line sent.
		chunk.next_cursor = chunk.lines.last().map_or(since, |l| l.timestamp_ms.saturating_add(1));
		let gone = matches!(self.backend.status(deal).await, Ok(DealStatus::Absent));
		chunk.complete = chunk.lines.is_empty() && (closing || gone);
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
				let running = !matches!(deal.chain.state, ChainState::Pending);
				if deal.metered && running && !deal.chain.is_rent {
					self.sample_deal(deal.chain.id).await;
				}
			}
		}
	}

	/// Adds one usage sample of `deal` to its meter.
	pub(crate) async fn sample_deal(&self, deal: u64) {
		let samples = match self.backend.sample(deal).await {
			Ok(samples) => samples,
			Err(e) => {
				self.metrics.error("sample");
				tracing::debug!(deal, error = %e, "cannot sample usage");
				return;
			}
		};
		if samples.is_empty() {
			return;
		}
		let recorded = self.store.update_meter(deal, |meter| {
			meter.retain_sources(samples.iter().map(|(source, _)| source.as_str()));
			for (source, sample) in &samples {
				meter.record(source, *sample);
			}
		});
		if let Err(e) = recorded {
			self.metrics.error("store");
			tracing::error!(deal, error = %e, "cannot record usage");
		}
	}
}
