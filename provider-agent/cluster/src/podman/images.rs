//! Images publishers deliver: loaded into podman's store from the agent's OCI archive, under a
//! name only their deal uses (`localhost/podchain-deal-<id>/<name>:<digest hex>`), which
//! manifests cannot name (`podchain_manifest::DELIVERED_PREFIX`), and removed with the deal.

use std::{io, sync::Arc};

use hyper::{body::Bytes, Method, StatusCode};
use podchain_manifest::{DeliveredImage, DELIVERED_PREFIX};
use tokio::sync::mpsc;

use super::{
	api::{encode, LIBPOD},
	PodmanBackend,
};
use crate::{ClusterError, DealId, ImageArchive};

/// Size of the pieces the archive is streamed to podman in.
const CHUNK: usize = 1 << 20;

/// Longest a load may take: podman unpacks and stores every layer.
const LOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// The repository of `deal`'s delivered images, with its trailing `/`.
pub(crate) fn deal_repository(deal: DealId) -> String {
	format!("localhost/{DELIVERED_PREFIX}{deal}/")
}

/// The name `deal`'s pods run `image` by. The tag is the whole manifest digest, so a name
/// never stands for two images.
pub(crate) fn reference(deal: DealId, image: &DeliveredImage) -> String {
	let digest = image.digest_text();
	let hex = digest.trim_start_matches("sha256:");
	format!("{}{}:{hex}", deal_repository(deal), image.name)
}

/// A `Write` that hands what is written to an async reader in chunks; fails once the reader
/// is gone (the upload was refused or cut).
struct ChunkSender {
	buffer: Vec<u8>,
	chunks: mpsc::Sender<io::Result<Bytes>>,
}

impl ChunkSender {
	fn flush_buffer(&mut self) -> io::Result<()> {
		if self.buffer.is_empty() {
			return Ok(());
		}
		let chunk = Bytes::from(std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK)));
		self.chunks
			.blocking_send(Ok(chunk))
			.map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "podman stopped reading"))
	}
}

impl io::Write for ChunkSender {
	fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
		let room = CHUNK - self.buffer.len();
		let taken = bytes.len().min(room);
		self.buffer.extend_from_slice(&bytes[..taken]);
		if self.buffer.len() == CHUNK {
			self.flush_buffer()?;
		}
		Ok(taken)
	}

	fn flush(&mut self) -> io::Result<()> {
		self.flush_buffer()
	}
}

impl PodmanBackend {
	/// Whether podman has an image named `reference`.
	pub(super) async fn image_exists(&self, reference: &str) -> Result<bool, ClusterError> {
		let path = format!("{LIBPOD}/images/{}/exists", encode(reference));
		let reply = self.api.send(Method::GET, &path, None).await?;
		match reply.status {
			StatusCode::NO_CONTENT | StatusCode::OK => Ok(true),
			StatusCode::NOT_FOUND => Ok(false),
			_ => Err(reply.error("image exists")),
		}
	}

	/// Loads `archive` into podman's store as `reference`, streaming it: it is never held
	/// whole in memory nor written anywhere but podman's store.
	pub(super) async fn load_image(
		&self,
		reference: &str,
		archive: Arc<dyn ImageArchive>,
	) -> Result<(), ClusterError> {
		let (chunks, receiver) = mpsc::channel(4);
		let name = reference.to_owned();
		let writer = tokio::task::spawn_blocking(move || {
			let mut out = ChunkSender { buffer: Vec::with_capacity(CHUNK), chunks };
			let written = archive.write_archive(&name, &mut out).and_then(|()| out.flush_buffer());
			if let Err(e) = &written {
				// Aborts the upload: podman must not load a cut archive as if it were whole.
				let _ = out.chunks.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
			}
			written
		});
		let path = format!("{LIBPOD}/images/load");
		let upload = self.api.send_streamed(Method::POST, &path, "application/x-tar", receiver);
		let reply = tokio::time::timeout(LOAD_TIMEOUT, upload).await.map_err(|_| {
			ClusterError::Unavailable(format!("loading {reference}: no answer in 30 min"))
		});
		let written = writer
			.await
			.map_err(|e| ClusterError::Other(format!("writing the archive of {reference}: {e}")))?;
		if let Err(e) = written {
			return Err(ClusterError::Other(format!("reading the image {reference}: {e}")));
		}
		let reply = reply??;
		if !reply.status.is_success() {
			return Err(ClusterError::Refused(format!(
				"podman did not load {reference}: {}",
				reply.message()
			)));
		}
		#[derive(serde::Deserialize)]
		struct Loaded {
			#[serde(rename = "Names", default)]
			names: Vec<String>,
		}
		let loaded: Loaded = reply.json("load image")?;
		if !loaded.names.iter().any(|n| n == reference) {
			return Err(ClusterError::Refused(format!(
				"podman loaded {:?} instead of {reference}",
				loaded.names
			)));
		}
		Ok(())
	}

	/// Removes the names of `deal`'s delivered images; an image another deal also runs keeps
	/// its other names (podman removes an image with its last name).
	pub(super) async fn remove_images(&self, deal: DealId) -> Result<(), ClusterError> {
		for name in self.image_names(deal).await? {
			let path = format!("{LIBPOD}/images/{}", encode(&name));
			self.delete(path, "remove image").await?;
		}
		Ok(())
	}

	/// Removes the names of `deal`'s delivered images its pods no longer run (`running`), after
	/// a manifest update. Best effort: a name podman will not remove yet goes with the deal.
	pub(super) async fn prune_images(&self, deal: DealId, running: &[String]) {
		let names = match self.image_names(deal).await {
			Ok(names) => names,
			Err(e) => return tracing::debug!(error = %e, "cannot list the deal's images"),
		};
		for name in names.into_iter().filter(|n| !running.contains(n)) {
			let path = format!("{LIBPOD}/images/{}", encode(&name));
			match self.delete(path, "remove image").await {
				Ok(()) => tracing::info!(%name, "removed an image the deal no longer runs"),
				Err(e) => tracing::debug!(%name, error = %e, "kept an image name for now"),
			}
		}
	}

	/// The names under `deal`'s repository of delivered images.
	async fn image_names(&self, deal: DealId) -> Result<Vec<String>, ClusterError> {
		#[derive(serde::Deserialize)]
		struct Listed {
			#[serde(rename = "Names", default)]
			names: Vec<String>,
		}
		let images: Vec<Listed> =
			self.api.get(&format!("{LIBPOD}/images/json"), "list images").await?;
		let repository = deal_repository(deal);
		Ok(images
			.into_iter()
			.flat_map(|i| i.names)
			.filter(|n| n.starts_with(&repository))
			.collect())
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn names_are_the_deals_and_pinned_by_the_whole_digest() {
		let image = DeliveredImage { name: "team/app".into(), digest: [0xab; 32] };
		let name = reference(7, &image);
		assert_eq!(name, format!("localhost/podchain-deal-7/team/app:{}", "ab".repeat(32)));
		assert!(name.starts_with(&deal_repository(7)));
		// Deal 7's names are not deal 71's.
		assert!(!reference(71, &image).starts_with(&deal_repository(7)));
	}
}
