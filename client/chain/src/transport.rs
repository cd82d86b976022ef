//! The WebSocket connection to a node over plain TCP, acknowledging what it receives at once.
//!
//! The node's RPC server does not set `TCP_NODELAY` on the sockets it accepts, so after one
//! answer it holds back the next small write (a second answer, a notification, the tail of a
//! long answer) until the client acknowledges the first. A Linux client in its default mode
//! delays that acknowledgement by up to 40 ms when it has nothing to send. With two requests in
//! flight at once, or a finalized-head notification followed by an answer, the second one then
//! takes 40 ms instead of one. Quick-ack mode makes the client acknowledge at once. The kernel
//! leaves that mode on its own, so the stream asks for it again after every read.

use std::{
	io,
	pin::Pin,
	task::{Context, Poll},
	time::Duration,
};

use jsonrpsee_client::{
	client_transport::ws::{Url, WsTransportClientBuilder},
	core::client::Client,
};
use tokio::{
	io::{AsyncRead, AsyncWrite, ReadBuf},
	net::TcpStream,
};

/// How long connecting (TCP and the WebSocket handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Room for notifications a subscriber has not taken yet, as subxt's own client allows.
const SUBSCRIPTION_BUFFER: usize = 4096;

/// A TCP stream in quick-ack mode.
struct QuickAckStream(TcpStream);

impl QuickAckStream {
	fn quick_ack(&self) {
		// Only latency depends on it: a socket that refuses keeps working as before.
		let _ = socket2::SockRef::from(&self.0).set_tcp_quickack(true);
	}
}

impl AsyncRead for QuickAckStream {
	fn poll_read(
		self: Pin<&mut Self>,
		cx: &mut Context<'_>,
		buf: &mut ReadBuf<'_>,
	) -> Poll<io::Result<()>> {
		let this = self.get_mut();
		let before = buf.filled().len();
		let polled = Pin::new(&mut this.0).poll_read(cx, buf);
		if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
			this.quick_ack();
		}
		polled
	}
}

impl AsyncWrite for QuickAckStream {
	fn poll_write(
		self: Pin<&mut Self>,
		cx: &mut Context<'_>,
		buf: &[u8],
	) -> Poll<io::Result<usize>> {
		Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
	}

	fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
		Pin::new(&mut self.get_mut().0).poll_flush(cx)
	}

	fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
		Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
	}
}

/// Why a plain WebSocket connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
	/// The URL is not a `ws://host:port` address.
	#[error("not a ws:// URL: {0}")]
	Url(String),
	/// No TCP connection within the time allowed, or it was refused.
	#[error("cannot reach {address}: {source}")]
	Tcp {
		/// `host:port` tried.
		address: String,
		/// What went wrong.
		#[source]
		source: io::Error,
	},
	/// The WebSocket handshake failed.
	#[error("WebSocket handshake failed: {0}")]
	Handshake(String),
}

/// A JSON-RPC client over a plain (`ws://`) WebSocket connection to `url`.
pub async fn ws_client(url: &str) -> Result<Client, TransportError> {
	let parsed = Url::parse(url).map_err(|e| TransportError::Url(format!("{url}: {e}")))?;
	if parsed.scheme() != "ws" {
		return Err(TransportError::Url(url.to_owned()));
	}
	let host = parsed.host_str().ok_or_else(|| TransportError::Url(url.to_owned()))?;
	let port = parsed.port_or_known_default().unwrap_or(80);
	let address = format!("{host}:{port}");
	let tcp = |source| TransportError::Tcp { address: address.clone(), source };
	let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port)))
		.await
		.map_err(|_| tcp(io::ErrorKind::TimedOut.into()))?
		.map_err(tcp)?;
	stream.set_nodelay(true).map_err(tcp)?;
	let stream = QuickAckStream(stream);
	stream.quick_ack();
	let (sender, receiver) = WsTransportClientBuilder::default()
		.connection_timeout(CONNECT_TIMEOUT)
		.build_with_stream(parsed, stream)
		.await
		.map_err(|e| TransportError::Handshake(e.to_string()))?;
	Ok(Client::builder()
		.max_buffer_capacity_per_subscription(SUBSCRIPTION_BUFFER)
		.build_with_tokio(sender, receiver))
}

#[cfg(test)]
mod tests {
	use super::*;

	#[tokio::test]
	async fn refuses_what_is_not_a_plain_websocket_address() {
		for url in ["wss://example.invalid", "http://127.0.0.1:9944", "ws://", "not a url"] {
			assert!(
				matches!(ws_client(url).await, Err(TransportError::Url(_))),
				"{url} must be refused as a URL"
			);
		}
	}

	#[tokio::test]
	async fn names_the_address_it_cannot_reach() {
		// A port just released: nothing listens there.
		let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
		let port = listener.local_addr().unwrap().port();
		drop(listener);
		match ws_client(&format!("ws://127.0.0.1:{port}")).await {
			Err(TransportError::Tcp { address, .. }) => {
				assert_eq!(address, format!("127.0.0.1:{port}"))
			}
			other => panic!("expected a TCP error, got {:?}", other.map(|_| ())),
		}
	}
}
