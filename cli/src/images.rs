//! Images the publisher delivers: `image: {archive: ...}` in a manifest is read here (an OCI
//! archive or layout), pinned into the manifest by its digest before the manifest is hashed,
//! and pushed to the provider's agent over `/podchain/image/1` after the manifest.

use std::{
	io::IsTerminal,
	path::{Path, PathBuf},
	sync::Arc,
	time::{Duration, Instant},
};

use podchain_image::local::LocalImage;
use podchain_manifest::{DeliveredImage, Image, Manifest};
use podchain_p2p::{push::ImageReader, push::PushProgress, P2pError, P2pHandle};

use crate::{error::CliError, output::Output, provider_link, provider_link::Signer};

/// An image read from the publisher's machine, ready to push.
pub struct Upload {
	/// What the manifest now pins.
	pub pinned: DeliveredImage,
	/// Where it was read from.
	pub path: PathBuf,
	image: Arc<LocalImage>,
}

/// The image as the push reads it.
struct Reader(Arc<LocalImage>);

impl ImageReader for Reader {
	fn manifest_digest(&self) -> [u8; 32] {
		self.0.manifest_digest()
	}

	fn manifest_bytes(&self) -> Vec<u8> {
		self.0.manifest_bytes().to_vec()
	}

	fn read(&self, digest: &[u8; 32], offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
		self.0.read(digest, offset, buf)
	}
}

/// Replaces every `archive` image of `manifest` (paths relative to `manifest_path`'s
/// directory) by the image it holds, pinned by digest, and returns the images to push (each
/// once). Every blob is read and checked here, before any funds are locked.
pub fn resolve(
	out: &Output,
	manifest: &mut Manifest,
	manifest_path: &Path,
) -> Result<Vec<Upload>, CliError> {
	let base = manifest_path.parent().unwrap_or(Path::new("."));
	let mut uploads: Vec<Upload> = Vec::new();
	for container in &mut manifest.containers {
		if let Image::Delivered(pinned) = &container.image {
			// The CLI delivers what it reads from an archive; a bare digest has no bytes behind it.
			return Err(CliError::input(format!(
				"container {} pins image {}@{} without its archive: write image: {{archive: \
				 PATH}} and podchain pins and sends it",
				container.name,
				pinned.name,
				pinned.digest_text()
			)));
		}
		let Image::Archive(archive) = &container.image else { continue };
		let path = base.join(&archive.path);
		let reused = uploads.iter().position(|u| u.path == path);
		let image = match reused {
			Some(i) => uploads[i].image.clone(),
			None => {
				out.stage(format!(
					"reading image {} for container {}",
					path.display(),
					container.name
				));
				let image = LocalImage::open(&path).map_err(|e| {
					CliError::input(format!(
						"container {}: image {}: {e}",
						container.name,
						path.display()
					))
				})?;
				Arc::new(image)
			}
		};
		let name = archive
			.name
			.clone()
			.or_else(|| image.name().map(without_registry))
			.unwrap_or_else(|| container.name.clone());
		let pinned = DeliveredImage { name, digest: image.manifest_digest() };
		if reused.is_none() {
			out.stage(format!(
				"image {}@{}: {} in {} blobs",
				pinned.name,
				pinned.digest_text(),
				crate::units::format_bytes(image.total_size()),
				image.blobs().len()
			));
			uploads.push(Upload { pinned: pinned.clone(), path, image });
		}
		container.image = Image::Delivered(pinned);
	}
	// The names the images gave must be valid repository names too.
	manifest.validate().map_err(CliError::input)?;
	Ok(uploads)
}

/// An archive's own name without the registry it was built for (`localhost/team/app` is
/// `team/app`): the provider runs it from its own store, under its own registry.
fn without_registry(name: &str) -> String {
	match name.split_once('/') {
		Some((first, rest)) if first == "localhost" || first.contains('.') => rest.to_owned(),
		_ => name.to_owned(),
	}
}

/// Pushes `uploads` to the provider's agent for deal `id`, with a progress bar on a terminal;
/// what each push did, for `--json`.
pub async fn push(
	out: &Output,
	handle: &P2pHandle,
	signer: &Signer,
	endpoint: &provider_link::Endpoint,
	id: u64,
	uploads: &[Upload],
) -> Result<Vec<serde_json::Value>, CliError> {
	let mut pushed_all = Vec::new();
	for upload in uploads {
		let label = format!("{}@{}", upload.pinned.name, &upload.pinned.digest_text()[..19]);
		let mut bar = Bar::new(out, label.clone());
		let reader: Arc<dyn ImageReader> = Arc::new(Reader(upload.image.clone()));
		let pushed = handle
			.push_image(
				endpoint.peer,
				endpoint.addrs.clone(),
				Arc::new(signer.clone()),
				id,
				reader,
				|progress| bar.update(progress),
			)
			.await;
		bar.finish();
		let report = pushed.map_err(|e| match e {
			P2pError::ImageRejected { reason, .. } => {
				CliError::refused(format!("the provider refused image {label}: {reason}"))
			}
			other => CliError::provider(other),
		})?;
		let seconds = report.elapsed.as_secs_f64().max(1e-3);
		out.stage(format!(
			"image {label} delivered: {} sent, {} already held, {:.1} MB/s{}",
			crate::units::format_bytes(report.sent_bytes),
			crate::units::format_bytes(report.skipped_bytes),
			report.sent_bytes as f64 / seconds / 1e6,
			match report.retries {
				0 => String::new(),
				n => format!(", resumed {n} time(s)"),
			}
		));
		pushed_all.push(serde_json::json!({
			"name": upload.pinned.name,
			"digest": upload.pinned.digest_text(),
			"total_bytes": report.total_bytes,
			"sent_bytes": report.sent_bytes,
			"skipped_bytes": report.skipped_bytes,
			"blobs_skipped": report.blobs_skipped,
			"retries": report.retries,
			"seconds": report.elapsed.as_secs_f64(),
		}));
	}
	Ok(pushed_all)
}

/// A progress bar on stderr: redrawn in place on a terminal, a line every 25% otherwise,
/// nothing with `--json`.
struct Bar {
	label: String,
	enabled: bool,
	terminal: bool,
	started: Instant,
	last_draw: Option<Instant>,
	last_quarter: u64,
	drawn: bool,
}

impl Bar {
	fn new(out: &Output, label: String) -> Self {
		Bar {
			label,
			enabled: !out.is_json(),
			terminal: std::io::stderr().is_terminal(),
			started: Instant::now(),
			last_draw: None,
			last_quarter: 0,
			drawn: false,
		}
	}

	fn update(&mut self, p: PushProgress) {
		if !self.enabled || p.total == 0 {
			return;
		}
		let held = p.sent.saturating_add(p.skipped).min(p.total);
		let percent = held * 100 / p.total;
		let elapsed = self.started.elapsed().as_secs_f64().max(1e-3);
		let rate = p.sent as f64 / elapsed / 1e6;
		if self.terminal {
			let due = self.last_draw.is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
			if due || held == p.total {
				let filled = (percent / 4) as usize;
				eprint!(
					"\r  {} [{}{}] {percent:>3}% {:.1}/{:.1} MB {rate:.1} MB/s ",
					self.label,
					"#".repeat(filled),
					".".repeat(25 - filled),
					held as f64 / 1e6,
					p.total as f64 / 1e6,
				);
				self.last_draw = Some(Instant::now());
				self.drawn = true;
			}
		} else if percent / 25 > self.last_quarter {
			self.last_quarter = percent / 25;
			eprintln!(
				"  {} {percent}% of {:.1} MB, {rate:.1} MB/s",
				self.label,
				p.total as f64 / 1e6
			);
		}
	}

	fn finish(&mut self) {
		if self.drawn {
			eprintln!();
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn archive_names_lose_their_registry() {
		assert_eq!(without_registry("localhost/team/web"), "team/web");
		assert_eq!(without_registry("docker.io/library/nginx"), "library/nginx");
		assert_eq!(without_registry("team/web"), "team/web");
		assert_eq!(without_registry("web"), "web");
	}
}
