//! Where the prover reads deals' volumes from, by backend.
//!
//! - podman: the volumes' mountpoints on this machine, read while the deal's pods are paused,
//!   so the snapshot is consistent (podman 4.3 has no volume export);
//! - Kubernetes: a `tar` archive of each volume from a short-lived read-only pod in the deal's
//!   namespace (`KubeBackend::read_volume`). Kubernetes cannot pause a pod, so the snapshot is
//!   of files as they were while each was read, not of one instant; the archive counts only
//!   if `tar` read the whole volume.
//!
//! Either way the snapshot is the same stream for the same files (`stream.rs`).

use super::snapshot::{SnapshotError, SnapshotInfo, SnapshotStore};
use async_trait::async_trait;
use podchain_cluster::{
	kube::KubeBackend, objects::BuildOptions, podman::PodmanBackend, ClusterError,
};
use std::{io::Read, sync::Arc};
use tokio::{
	io::{AsyncRead, AsyncReadExt},
	sync::mpsc,
};

/// Each volume's snapshot, or why it was not taken.
pub type Taken = Vec<(String, Result<SnapshotInfo, SnapshotError>)>;

/// A backend's way to a copy of deals' volumes.
#[async_trait]
pub trait VolumeSource: Send + Sync {
	/// The manifest names of `deal`'s volumes.
	async fn volumes(&self, deal: u64) -> Result<Vec<String>, ClusterError>;

	/// Snapshots `volumes` of `deal` into `store`, each of at most `limit` bytes. An error is
	/// one for the whole deal (nothing taken).
	async fn snapshot(
		&self,
		deal: u64,
		volumes: &[String],
		store: &SnapshotStore,
		limit: u64,
	) -> Result<Taken, ClusterError>;
}

/// The volumes of deals on podman.
pub struct PodmanVolumes(pub Arc<PodmanBackend>);

#[async_trait]
impl VolumeSource for PodmanVolumes {
	async fn volumes(&self, deal: u64) -> Result<Vec<String>, ClusterError> {
		Ok(self.0.volume_mounts(deal).await?.into_iter().map(|m| m.name).collect())
	}

	async fn snapshot(
		&self,
		deal: u64,
		volumes: &[String],
		store: &SnapshotStore,
		limit: u64,
	) -> Result<Taken, ClusterError> {
		let mounts = self.0.volume_mounts(deal).await?;
		let sources: Vec<_> = mounts
			.into_iter()
			.filter(|m| volumes.contains(&m.name))
			.map(|m| (m.name, m.mountpoint))
			.collect();
		let paused = self.0.pause_deal(deal).await?;
		let store = store.clone();
		let taken = tokio::task::spawn_blocking(move || {
			sources
				.into_iter()
				.map(|(name, path)| {
					let taken = store.take(deal, name.as_bytes(), &path, limit);
					(name, taken)
				})
				.collect::<Vec<_>>()
		})
		.await
		.unwrap_or_default();
		if let Err(e) = self.0.unpause_pods(&paused).await {
			tracing::error!(deal, error = %e, "storage proofs: cannot unpause the deal's pods");
		}
		Ok(taken)
	}
}

/// The volumes of deals on Kubernetes, read through storage-proof pods built with `options`.
pub struct KubeVolumes {
	/// The cluster.
	pub kube: Arc<KubeBackend>,
	/// How the deals' objects, the storage-proof pod among them, are built.
	pub options: BuildOptions,
}

#[async_trait]
impl VolumeSource for KubeVolumes {
	async fn volumes(&self, deal: u64) -> Result<Vec<String>, ClusterError> {
		self.kube.volume_names(deal).await
	}

	async fn snapshot(
		&self,
		deal: u64,
		volumes: &[String],
		store: &SnapshotStore,
		limit: u64,
	) -> Result<Taken, ClusterError> {
		let mut taken = Vec::new();
		// One at a time: the deal's `snapshot` quota holds one storage-proof pod.
		for volume in volumes {
			let name = volume.as_bytes().to_vec();
			let into = store.clone();
			let read = self
				.kube
				.read_volume(deal, volume, &self.options, |archive| async move {
					let archive = BlockingReader::new(archive);
					tokio::task::spawn_blocking(move || {
						into.take_archive(deal, &name, archive, limit)
					})
					.await
					.unwrap_or_else(|e| {
						Err(SnapshotError::Missing(format!("the reading task failed: {e}")))
					})
				})
				.await;
			let outcome = match read {
				Ok(read) => match (read.consumed, read.complete) {
					(Ok(info), Ok(())) => Ok(info),
					(Ok(info), Err(e)) => {
						// What was read is not the whole volume: never vouch for it.
						store.discard(deal, volume.as_bytes(), &info.root);
						Err(SnapshotError::Source(e.to_string()))
					}
					(Err(e), _) => Err(e),
				},
				Err(e) => Err(SnapshotError::Source(e.to_string())),
			};
			taken.push((volume.clone(), outcome));
		}
		Ok(taken)
	}
}

/// An async stream read by blocking code: a task forwards its bytes, a few chunks ahead.
struct BlockingReader {
	chunks: mpsc::Receiver<std::io::Result<Vec<u8>>>,
	current: Vec<u8>,
	at: usize,
}

impl BlockingReader {
	/// Starts forwarding `stream` (on the current runtime).
	fn new(mut stream: impl AsyncRead + Unpin + Send + 'static) -> Self {
		// A full channel is the backpressure: the stream is read as fast as it is consumed.
		let (sender, chunks) = mpsc::channel(8);
		tokio::spawn(async move {
			loop {
				let mut chunk = vec![0u8; 256 << 10];
				let next = match stream.read(&mut chunk).await {
					Ok(0) => return,
					Ok(read) => {
						chunk.truncate(read);
						Ok(chunk)
					}
					Err(e) => Err(e),
				};
				let failed = next.is_err();
				if sender.send(next).await.is_err() || failed {
					return; // the reader is gone, or told of the error
				}
			}
		});
		Self { chunks, current: Vec::new(), at: 0 }
	}
}

impl Read for BlockingReader {
	fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
		while self.at == self.current.len() {
			match self.chunks.blocking_recv() {
				Some(Ok(chunk)) => (self.current, self.at) = (chunk, 0),
				Some(Err(e)) => return Err(e),
				None => return Ok(0), // the stream ended
			}
		}
		let n = buffer.len().min(self.current.len() - self.at);
		buffer[..n].copy_from_slice(&self.current[self.at..self.at + n]);
		self.at += n;
		Ok(n)
	}
}
