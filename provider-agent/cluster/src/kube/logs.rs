//! Reading a deal's container logs.
//!
//! Each container's log is read from `since` with kubelet timestamps, at most
//! [`KubeOptions::log_limit_bytes`](super::KubeOptions::log_limit_bytes) of it, oldest first
//! (no `tailLines`: callers page forward from the last line they got, so the oldest lines must
//! come first). The Kubernetes log API merges stdout and stderr, so no line is marked `stderr`.

use super::{apply::deal_selector, KubeBackend};
use crate::{objects::namespace_name, ClusterError, DealId, LogLine};
use ::kube::{
	api::{Api, ListParams, LogParams},
	ResourceExt,
};
use futures::AsyncReadExt;
use k8s_openapi::{api::core::v1::Pod, jiff::Timestamp};

/// One container's lines, and whether its read stopped at the byte limit.
struct ContainerLog {
	lines: Vec<LogLine>,
	truncated: bool,
}

pub(super) async fn logs(
	backend: &KubeBackend,
	deal: DealId,
	since_ms: u64,
	max_lines: u32,
) -> Result<Vec<LogLine>, ClusterError> {
	if max_lines == 0 {
		return Ok(Vec::new());
	}
	let pods: Api<Pod> = Api::namespaced(backend.client.clone(), &namespace_name(deal));
	let mut listed = backend
		.call("list pods", pods.list(&ListParams::default().labels(&deal_selector(deal))))
		.await?
		.items;
	listed.sort_by_key(|p| p.name_any());
	let limit = backend.options.log_limit_bytes;
	// Whole seconds, rounded down (the API takes seconds): lines before `since_ms` are
	// filtered out below.
	let since = Timestamp::from_second(i64::try_from(since_ms / 1000).unwrap_or(i64::MAX)).ok();
	let mut logs = Vec::new();
	for pod in &listed {
		let pod_name = pod.name_any();
		let containers = pod.spec.iter().flat_map(|s| &s.containers);
		for container in containers {
			let params = LogParams {
				container: Some(container.name.clone()),
				limit_bytes: Some(i64::from(limit)),
				since_time: since.filter(|_| since_ms > 0),
				timestamps: true,
				..LogParams::default()
			};
			let read = async {
				let mut body = Vec::new();
				let stream = pods.log_stream(&pod_name, &params).await?;
				let mut stream = std::pin::pin!(stream.take(u64::from(limit)));
				stream.read_to_end(&mut body).await.map_err(::kube::Error::ReadEvents)?;
				Ok(body)
			};
			let what = format!("logs of {pod_name}/{}", container.name);
			// 400: the container has not started yet; 404: the pod just went away.
			if let Some(body) = backend.call_allowing(&what, read, &[400, 404]).await? {
				let source = format!("{pod_name}/{}", container.name);
				let truncated = body.len() >= limit as usize;
				logs.push(parse(&source, &body, truncated));
			}
		}
	}
	Ok(merge(logs, since_ms, max_lines))
}

/// Parses `<RFC 3339 timestamp> <text>` lines. When the read was `truncated`, its last line may
/// be cut short: it is dropped, to be read whole next time.
fn parse(source: &str, body: &[u8], truncated: bool) -> ContainerLog {
	let text = String::from_utf8_lossy(body);
	let mut raw: Vec<&str> = text.split('\n').collect();
	// The piece after the last line break is empty, or a line cut short.
	if raw.last().is_some_and(|l| l.is_empty() || truncated) {
		raw.pop();
	}
	let lines = raw
		.into_iter()
		.filter_map(|line| {
			let (stamp, text) = line.split_once(' ').unwrap_or((line, ""));
			let timestamp: Timestamp = stamp.parse().ok()?;
			Some(LogLine {
				container: source.to_owned(),
				timestamp_ms: u64::try_from(timestamp.as_millisecond()).unwrap_or(0),
				stderr: false,
				text: text.strip_suffix('\r').unwrap_or(text).to_owned(),
			})
		})
		.collect();
	ContainerLog { lines, truncated }
}

/// Merges containers' lines oldest first and keeps the first `max_lines` at or after
/// `since_ms`. A truncated container's lines end early; other containers' lines after its last
/// one are held back too, or a caller paging from the newest line returned would skip the
/// truncated container's unread lines.
fn merge(logs: Vec<ContainerLog>, since_ms: u64, max_lines: u32) -> Vec<LogLine> {
	let horizon = logs
		.iter()
		.filter(|l| l.truncated)
		.map(|l| l.lines.last().map_or(since_ms, |line| line.timestamp_ms))
		.min();
	let mut lines: Vec<LogLine> = logs
		.into_iter()
		.flat_map(|l| l.lines)
		.filter(|l| l.timestamp_ms >= since_ms && horizon.is_none_or(|h| l.timestamp_ms <= h))
		.collect();
	// Stable: each container's lines keep their order within a millisecond.
	lines.sort_by_key(|l| l.timestamp_ms);
	lines.truncate(usize::try_from(max_lines).unwrap_or(usize::MAX));
	lines
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn parses_and_drops_a_cut_line() {
		let body = b"2024-05-01T10:00:00.123456789Z hello\n2024-05-01T10:00:01Z world \r\nnot a line\n2024-05-01T10:00:02Z cut";
		let log = parse("p/c", body, true);
		let texts: Vec<_> = log.lines.iter().map(|l| (l.timestamp_ms, l.text.as_str())).collect();
		assert_eq!(texts, [(1_714_557_600_123, "hello"), (1_714_557_601_000, "world ")]);
		assert_eq!(parse("p/c", body, false).lines.len(), 3);
	}

	#[test]
	fn merge_orders_filters_and_holds_back_past_a_truncated_log() {
		let line = |container: &str, ms: u64| LogLine {
			container: container.into(),
			timestamp_ms: ms,
			stderr: false,
			text: String::new(),
		};
		let a = ContainerLog {
			lines: vec![line("a", 10), line("a", 30), line("a", 50)],
			truncated: false,
		};
		let b = ContainerLog { lines: vec![line("b", 20), line("b", 40)], truncated: false };
		let order = |lines: Vec<LogLine>| -> Vec<(String, u64)> {
			lines.into_iter().map(|l| (l.container, l.timestamp_ms)).collect()
		};
		let b2 = ContainerLog { lines: b.lines.clone(), truncated: false };
		assert_eq!(
			order(merge(vec![a, b], 20, 3)),
			[("b".into(), 20), ("a".into(), 30), ("b".into(), 40)]
		);
		let a = ContainerLog {
			lines: vec![line("a", 10), line("a", 30), line("a", 50)],
			truncated: false,
		};
		let b_cut = ContainerLog { truncated: true, ..b2 };
		assert_eq!(
			order(merge(vec![a, b_cut], 0, 10)),
			[("a".into(), 10), ("b".into(), 20), ("a".into(), 30), ("b".into(), 40)]
		);
	}
}
