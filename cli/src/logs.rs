//! `podchain logs`: a deal's container logs, served by its provider's agent over libp2p to the
//! deal's publisher only.

use crate::{
	error::CliError,
	provider_link::{self, Signer},
	Context,
};
use futures::StreamExt;
use podchain_chain::deals;
use podchain_p2p::protocol::{LogChunk, LogsQuery, LogsRequest};
use serde_json::json;
use std::{sync::Arc, time::Duration};

/// `podchain logs ID [--follow] [--tail N] [--container NAME]`.
pub async fn run(
	ctx: &Context,
	id: u64,
	follow: bool,
	tail: Option<u32>,
	container: Option<String>,
) -> Result<(), CliError> {
	let key = ctx.key()?;
	let node = ctx.connect().await?;
	let at = node.finalized().await?;
	let deal =
		deals::deal(&at, id).await?.ok_or_else(|| CliError::input(format!("no open deal {id}")))?;
	if deal.publisher != key.account_id() {
		return Err(CliError::input(format!("deal {id} belongs to another publisher")));
	}
	let endpoint = provider_link::endpoint(&at, &deal.provider).await?;
	let client = provider_link::client().await?;
	let handle = client.handle();
	// The last 100 lines unless asked otherwise, as `kubectl logs --tail` users expect.
	let query = LogsQuery { container, cursor: None, tail: tail.or(Some(100)), max_lines: 500 };
	let print = |chunk: &LogChunk| {
		for line in &chunk.lines {
			if ctx.out.is_json() {
				println!(
					"{}",
					json!({ "container": line.container, "timestamp_ms": line.timestamp_ms,
						"stderr": line.stderr, "text": line.text })
				);
			} else {
				println!("{} | {}", line.container, line.text);
			}
		}
	};
	if follow {
		let signer = Arc::new(Signer(key));
		let mut stream = std::pin::pin!(handle.follow_logs(
			signer,
			endpoint.peer,
			endpoint.addrs,
			id,
			query,
			Duration::from_secs(1)
		));
		loop {
			tokio::select! {
				chunk = stream.next() => match chunk {
					Some(Ok(chunk)) => print(&chunk),
					Some(Err(e)) => return Err(CliError::provider(format!("provider offline: {e}"))),
					None => break,
				},
				_ = tokio::signal::ctrl_c() => break,
			}
		}
	} else {
		let request =
			LogsRequest::new(&Signer(key), &endpoint.peer, id, query).map_err(CliError::input)?;
		let chunk = handle
			.fetch_logs(endpoint.peer, endpoint.addrs, request)
			.await
			.map_err(|e| CliError::provider(format!("provider offline: {e}")))?;
		print(&chunk);
	}
	client.shutdown().await;
	Ok(())
}
