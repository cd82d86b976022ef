//! What the real-cluster tests share.

use std::time::{Duration, Instant};

/// Polls `check` every 2 s until it returns `Some`, or panics after `limit` with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
	F: FnMut() -> Fut,
	Fut: std::future::Future<Output = Option<T>>,
{
	let start = Instant::now();
	loop {
		if let Some(value) = check().await {
			return value;
		}
		assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
		tokio::time::sleep(Duration::from_secs(2)).await;
	}
}
