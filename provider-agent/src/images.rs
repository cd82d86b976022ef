//! Images publishers deliver over `/podchain/image/1`: checked against the deal on chain and
//! its held manifest, kept in the content-addressed store under the agent's data dir, and
//! staged into the cluster when the deal deploys.
//!
//! The chain of trust: the deal's manifest hash (on chain) covers the image manifest's digest
//! (in the held manifest), which covers the config's and layers' digests and sizes, which the
//! store checks every byte against. A deal whose images are not all in is not runnable: it is
//! not accepted (its publisher can still cancel it for a full refund) and an update waiting
//! for them is not rolled out.

use std::{path::Path, sync::Arc};

use podchain_cluster::ImageArchive;
use podchain_image::{
	store::{BlobState, BlobStore, StoreError, StoreLimits},
	FormatError,
};
use podchain_p2p::{
	image::{self as wire, ImageReject},
	node::{InboundImageChunk, InboundImageOffer},
};

use crate::{
	agent::Agent, manifests::ImageDigest, metrics::kind, plan::ChainState, registry::ImageSource,
};

/// The agent's image store.
pub struct Images {
	store: Arc<BlobStore>,
}

impl Images {
	/// Opens (and recovers) the store under `dir`.
	pub fn open(dir: &Path, limits: StoreLimits) -> Result<Self, StoreError> {
		Ok(Self { store: Arc::new(BlobStore::open(dir, limits)?) })
	}

	/// Whether every blob of image `digest` is in and `deal` pins it.
	pub fn has(&self, deal: u64, digest: &ImageDigest) -> bool {
		self.store.image_complete(deal, digest)
	}

	/// Image `digest` as an OCI archive, for a backend that loads one.
	pub fn archive(&self, digest: ImageDigest) -> Arc<dyn ImageArchive> {
		Arc::new(StoredImage { store: self.store.clone(), digest })
	}

	/// Unpins `deal`'s images and removes the blobs no other deal uses.
	pub fn release(&self, deal: u64) -> Result<(), StoreError> {
		if self.store.release(deal)? {
			let report = self.store.collect_garbage()?;
			tracing::info!(
				deal,
				blobs = report.removed_blobs,
				partials = report.removed_partials,
				freed_bytes = report.freed_bytes,
				"released the deal's images"
			);
		}
		Ok(())
	}

	/// Bytes the store holds.
	pub fn size(&self) -> u64 {
		self.store.size().unwrap_or(0)
	}

	/// What the registry serves: the complete images `may_pull(deal)` names that the deal
	/// pins, and their blobs.
	pub fn pulls(
		&self,
		may_pull: impl Fn(u64) -> Vec<ImageDigest> + Send + Sync + 'static,
	) -> Pulls {
		Pulls { store: self.store.clone(), may_pull: Box::new(may_pull) }
	}
}

/// The images a deal may pull, for the registry.
pub struct Pulls {
	store: Arc<BlobStore>,
	may_pull: Box<dyn Fn(u64) -> Vec<ImageDigest> + Send + Sync>,
}

impl Pulls {
	/// The complete images `deal` pins and may pull now.
	fn pullable(&self, deal: u64) -> Vec<ImageDigest> {
		(self.may_pull)(deal)
			.into_iter()
			.filter(|image| self.store.image_complete(deal, image))
			.collect()
	}
}

impl ImageSource for Pulls {
	fn manifest(&self, deal: u64, digest: &ImageDigest) -> Option<(String, Vec<u8>)> {
		if !self.pullable(deal).contains(digest) {
			return None;
		}
		let media_type = self.store.manifest_of(digest).ok()?.media_type;
		let bytes = std::fs::read(self.store.blob_path(digest)?).ok()?;
		Some((media_type, bytes))
	}

	fn blob(&self, deal: u64, digest: &ImageDigest) -> Option<(std::path::PathBuf, u64)> {
		let listed = self.pullable(deal).iter().any(|image| {
			self.store
				.manifest_of(image)
				.is_ok_and(|manifest| manifest.blobs().iter().any(|blob| &blob.digest == digest))
		});
		let path = self.store.blob_path(digest).filter(|_| listed)?;
		let size = std::fs::metadata(&path).ok()?.len();
		Some((path, size))
	}
}

/// An image in the store, written out on demand.
struct StoredImage {
	store: Arc<BlobStore>,
	digest: ImageDigest,
}

impl ImageArchive for StoredImage {
	fn write_archive(&self, ref_name: &str, out: &mut dyn std::io::Write) -> std::io::Result<()> {
		self.store.oci_archive(&self.digest, ref_name, out).map_err(std::io::Error::other)
	}
}

/// What a publisher is told when the store refuses: named, without the provider's paths.
fn reject_of(error: StoreError) -> ImageReject {
	match error {
		StoreError::DigestMismatch { .. } => ImageReject::DigestMismatch,
		StoreError::Format(FormatError::UnsupportedMediaType { role, media_type }) => {
			ImageReject::UnsupportedMediaType(format!("{media_type} (for the {role})"))
		}
		StoreError::Format(e) => ImageReject::Corrupt(e.to_string()),
		StoreError::DealLimit { size, limit, .. } | StoreError::StoreFull { size, limit } => {
			ImageReject::OverLimit { size, limit }
		}
		StoreError::NotPinned { .. } | StoreError::ImageNotPinned { .. } => ImageReject::NotPinned,
		StoreError::TooManyImages { limit, .. } => {
			ImageReject::TooManyImages { limit: u32::try_from(limit).unwrap_or(u32::MAX) }
		}
		StoreError::WrongOffset { expected, .. } => ImageReject::OffsetMismatch { expected },
		StoreError::PastEnd { .. } | StoreError::SizeMismatch { .. } => ImageReject::SizeMismatch,
		StoreError::UnsupportedPlatform { platform } => {
			ImageReject::UnsupportedPlatform(format!("{platform}; this provider runs linux/amd64"))
		}
		e @ (StoreError::ManifestNotStored(_) | StoreError::ImageIncomplete { .. }) => {
			ImageReject::Corrupt(e.to_string())
		}
		StoreError::CorruptPinFile { .. }
		| StoreError::Io { .. }
		| StoreError::InjectedFault(_) => {
			tracing::error!(error = %error, "the image store failed");
			ImageReject::Internal("the provider's image store failed".into())
		}
	}
}

impl Agent {
	/// The images `deal` may pull from the registry now: those its held manifest pins, while
	/// the deal is open and not closing.
	pub fn pullable_images(&self, deal: u64) -> Vec<ImageDigest> {
		let open = self.snapshot().and_then(|s| s.deals.get(&deal).map(|d| d.chain.state));
		match open {
			Some(state) if state != ChainState::Closing => {
				self.vault.images(deal).unwrap_or_default()
			}
			_ => Vec::new(),
		}
	}

	/// The deal's publisher, if the deal is open and takes images: its held manifest runs
	/// delivered images.
	fn image_deal(&self, deal: u64, publisher: &[u8; 32]) -> Result<Vec<ImageDigest>, ImageReject> {
		let snapshot = self.snapshot().ok_or(ImageReject::Busy)?;
		let view = snapshot.deals.get(&deal).ok_or(ImageReject::UnknownDeal)?;
		if view.chain.state == ChainState::Closing {
			return Err(ImageReject::DealClosing);
		}
		if &view.publisher.0 != publisher {
			return Err(ImageReject::NotPublisher);
		}
		// Images follow the manifest: without it, nothing says which digests the deal pins.
		self.vault.images(deal).ok_or(ImageReject::NotPinned)
	}

	/// Answers an offer: the plan of what to send, after the deal, its publisher and its
	/// manifest's pin are checked and the store took the image manifest.
	pub(crate) fn receive_image_offer(&self, request: InboundImageOffer) {
		let offer = request.offer();
		let (deal, digest) = (offer.deal_id, offer.manifest_digest);
		let answer = self.image_deal(deal, &offer.publisher).and_then(|pinned| {
			if !pinned.contains(&digest) {
				return Err(ImageReject::NotPinned);
			}
			let Some(images) = &self.images else {
				return Err(ImageReject::Internal("this provider takes no images".into()));
			};
			let bytes = request.open_checked(&offer.publisher)?;
			images.store.offer(deal, &digest, &bytes).map_err(reject_of)
		});
		match answer {
			Ok(plan) => {
				let missing: u64 = plan.iter().map(|b| b.size - b.have).sum();
				tracing::info!(deal, image = %wire::digest_text(&digest), blobs = plan.len(), missing_bytes = missing, "image offered");
				self.metrics.images.get_or_create(&kind("offered")).inc();
				request.respond(plan.into_iter().map(wire_state).collect());
			}
			Err(reason) => {
				tracing::warn!(deal, image = %wire::digest_text(&digest), %reason, "image offer refused");
				self.metrics.images.get_or_create(&kind("refused")).inc();
				request.reject(reason);
			}
		}
	}

	/// Stores a chunk of a blob of an image the deal pins.
	pub(crate) fn receive_image_chunk(&self, request: InboundImageChunk) {
		let chunk = request.chunk();
		let (deal, digest, offset) = (chunk.deal_id, chunk.digest, chunk.offset);
		let answer = self.image_deal(deal, &chunk.publisher).and_then(|pinned| {
			let Some(images) = &self.images else {
				return Err(ImageReject::Internal("this provider takes no images".into()));
			};
			let bytes = request.open_checked(&chunk.publisher)?;
			let have = images.store.write(deal, &digest, offset, &bytes).map_err(reject_of)?;
			let complete = pinned.iter().all(|image| images.has(deal, image));
			Ok((have, complete))
		});
		match answer {
			Ok((have, complete)) => {
				self.metrics.image_bytes.inc_by(have.saturating_sub(offset));
				request.stored(have);
				if complete {
					// The deal's images are all in: it may be accepted or rolled out now.
					tracing::info!(deal, "the deal's images are all in");
					self.wake.notify_one();
				}
			}
			Err(reason) => {
				if !matches!(reason, ImageReject::OffsetMismatch { .. }) {
					tracing::warn!(deal, blob = %wire::digest_text(&digest), offset, %reason, "image chunk refused");
				}
				self.metrics.images.get_or_create(&kind("chunk_refused")).inc();
				request.reject(reason);
			}
		}
	}
}

fn wire_state(state: BlobState) -> wire::BlobState {
	wire::BlobState { digest: state.digest, size: state.size, have: state.have }
}
