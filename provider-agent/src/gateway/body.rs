//! A body that counts the bytes passing through it and holds what must live as long as it
//! streams (the deal's concurrency permit).

use std::{
	pin::Pin,
	task::{Context, Poll},
};

use hyper::body::{Body, Bytes, Frame, SizeHint};
use prometheus_client::metrics::counter::Counter;

/// `inner`, counting its data bytes into `bytes` as they are read.
pub(crate) struct Counted<B> {
	inner: B,
	bytes: Counter,
	/// Dropped with the body: released once the body is read or abandoned.
	_held: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl<B> Counted<B> {
	/// Counts `inner`'s bytes into `bytes`, holding `held` until the body is done.
	pub(crate) fn new(
		inner: B,
		bytes: Counter,
		held: Option<tokio::sync::OwnedSemaphorePermit>,
	) -> Self {
		Counted { inner, bytes, _held: held }
	}
}

impl<B> Body for Counted<B>
where
	B: Body<Data = Bytes> + Unpin,
{
	type Data = Bytes;
	type Error = B::Error;

	fn poll_frame(
		mut self: Pin<&mut Self>,
		cx: &mut Context<'_>,
	) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
		let polled = Pin::new(&mut self.inner).poll_frame(cx);
		if let Poll::Ready(Some(Ok(frame))) = &polled {
			if let Some(data) = frame.data_ref() {
				self.bytes.inc_by(u64::try_from(data.len()).unwrap_or(u64::MAX));
			}
		}
		polled
	}

	fn is_end_stream(&self) -> bool {
		self.inner.is_end_stream()
	}

	fn size_hint(&self) -> SizeHint {
		self.inner.size_hint()
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use http_body_util::{BodyExt, StreamBody};

	#[tokio::test]
	async fn counts_every_data_frame_and_releases_its_permit_when_dropped() {
		let chunks = ["hello ", "streamed ", "world"]
			.map(|c| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(c))));
		let bytes = Counter::default();
		let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
		let permit = permits.clone().try_acquire_owned().expect("free");
		let body = Counted::new(
			StreamBody::new(futures::stream::iter(chunks)),
			bytes.clone(),
			Some(permit),
		);
		assert_eq!(permits.available_permits(), 0, "held while streaming");
		let read = body.collect().await.expect("reads").to_bytes();
		assert_eq!(read, "hello streamed world");
		assert_eq!(bytes.get(), 20);
		assert_eq!(permits.available_permits(), 1, "released with the body");
	}
}
