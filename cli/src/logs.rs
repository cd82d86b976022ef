//! `podchain logs`: a deal's container logs, served by its provider's agent over libp2p to the
//! deal's publisher only.

use crate::{
	error::CliError,
	provider_link::{self, Signer},
	Context,
};
use futures::StreamExt;
use podchain_chain::deals;
use podchain_p2p::{
	protocol::{LogChunk, LogsQuery, LogsRequest, RejectReason},
	P2pError,
};
use serde_json::json;
use std::{io::Write, sync::Arc, time::Duration};

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
		return Err(CliError::refused(format!("deal {id} belongs to another publisher")));
	}
	let endpoint = provider_link::endpoint(&at, &deal.provider).await?;
	let client = provider_link::client().await?;
	let handle = client.handle();
	// The last 100 lines unless asked otherwise, as `kubectl logs --tail` users expect.
	let query = LogsQuery { container, cursor: None, tail: tail.or(Some(100)), max_lines: 500 };
	// With --json, one JSON object per line (NDJSON), so that following can stream.
	let print = |chunk: &LogChunk| -> bool {
		let mut stdout = std::io::stdout().lock();
		for line in &chunk.lines {
			let written = if ctx.out.is_json() {
				let value = json!({ "container": line.container, "timestamp_ms": line.timestamp_ms,
					"stderr": line.stderr, "text": line.text });
				writeln!(stdout, "{value}")
			} else {
				writeln!(stdout, "{} | {}", line.container, line.text)
			};
			// The reader went away (`| head`): stop quietly.
			if written.is_err() {
				return false;
			}
		}
		true
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
					Some(Ok(chunk)) => if !print(&chunk) { break },
					// The deal ended and its agent forgot it: following is over.
					Some(Err(P2pError::Rejected { reason: RejectReason::UnknownDeal, .. })) | None => break,
					Some(Err(e)) => return Err(CliError::provider(format!("provider offline: {e}"))),
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
