//! # podman backend
//!
//! Runs deals on one machine with podman 4.3's REST API: the agent starts its own
//! `podman system service` on a project configuration ([`PodmanBackend::start`]), and plays each
//! deal's objects with `play/kube`, rendered for podman (see `render.rs` for the rules: the
//! deal's own network, secrets inlined, volume names prefixed with the deal, Kubernetes-only
//! kinds left out). Real containers, real limits: podman applies `limits.cpu` and
//! `limits.memory`.
//!
//! ## Design
//!
//! - **Identity.** A deal's pods are `podchain-deal-<deal>-pod-<i>`, labelled with the deal,
//!   the manager, the replica count and the manifest hash; its volumes are `d<deal>-<name>`.
//!   Every question ("what runs?", "is it up?") is a listing by label.
//! - **Network.** Each deal runs on a bridge network of its own, isolated from other deals' and
//!   from the host's services (see `network.rs` and `firewall.rs`); the agent's gateway reaches
//!   its pods at their addresses there ([`Backend::endpoints`]).
//! - **One read for all deals.** The pods, the containers, the stats and the disk usage are each
//!   read once, for every deal, and the deals' statuses, deployments and samples answered from
//!   that view: the stats and disk usage for up to 500 ms, the pods and containers until
//!   podman's event stream announces a change (for up to 500 ms while it is not followed); any
//!   apply, removal, stop or start drops it (see `view.rs` and `watch.rs`).
//!   The few calls that must see podman as it is now (apply's comparison, endpoints, logs) read
//!   it directly.
//! - **Idempotent apply.** `play/kube` is not idempotent (a second play fails with "already
//!   exists"), so [`Backend::apply`] compares first: pods with the same hash that are up are left
//!   alone; otherwise the deal's pods (not its volumes: data survives a manifest update) are
//!   removed and the deal played again, without the claims whose volumes exist.
//! - **Tenants outlive the agent.** Pods' parent is conmon, not the service: stopping the
//!   service ([`PodmanBackend::shutdown`], or dropping the backend) leaves them running, and a
//!   new service on the same state directory finds them.
//! - **Errors.** No socket, no connection, a timeout or a 5xx: [`ClusterError::Unavailable`].
//!   A 4xx, a container podman could not start, or objects podman cannot run faithfully:
//!   [`ClusterError::Refused`]. An answer that does not parse: [`ClusterError::Other`].
//!
//! ## Limits (podman 4.3.1)
//!
//! - Egress is the pod's network namespace's sent bytes: what it served through the gateway and
//!   what it sent out, headers included.
//! - `resources.requests.storage` is not enforced (no quota on ext4); storage is measured.
//! - Log times have second precision (see `logs.rs`).
//! - A failed play leaves what it made (a pod in `Created`): [`Backend::status`] reports it as
//!   failed, with podman's reason, and the next apply or remove clears it. A play that failed
//!   in a way a retry may fix (an image's registry unreachable) reads as degraded, and the
//!   deal as deployed with no known manifest, so the agent applies it again.
//!
//! ## Status
//!
//! `play/kube` makes a pod's infra container, then each app container, then starts them: a
//! listing in between shows a pod without app containers, or containers not started. The
//! backend records the applies it runs, so such a deal reads as starting (or updating, when
//! it replaces another manifest's pods), never as failed; a pod in that shape with no apply
//! running is still starting for `START_GRACE_MILLIS` after its creation (a play by an agent
//! since restarted), and a failed start after that.

mod api;
mod calls;
#[cfg(test)]
mod fake;
mod firewall;
mod images;
mod logs;
mod model;
mod network;
mod render;
mod service;
mod state;
mod stats;
#[cfg(test)]
mod tests;
mod view;
mod volumes;
mod watch;

use std::{
	net::SocketAddr,
	path::Path,
	sync::Arc,
	time::{SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use hyper::{Method, StatusCode};

pub use network::BRIDGE_PREFIX;
pub use service::{PodmanOptions, PodmanPaths, DEFAULT_NETWORK_POOL};
pub use volumes::VolumeMount;

use self::{
	api::{encode, Api, LIBPOD},
	model::Secret,
	service::Service,
};
use crate::{
	objects::{manifest_hash_hex, MANIFEST_HASH_ANNOTATION},
	Backend, ClusterError, DealId, DealObjects, DealStatus, Deployed, ImageArchive, LogLine,
	Metered, MeteringFailure, Sample, Sampled,
};
use podchain_manifest::DeliveredImage;

/// Label carrying the number of pods of the deal (podman keeps no Deployment object).
pub(crate) const REPLICAS_LABEL: &str = "podchain.io/replicas";

/// Name of a deal's Deployment; its pods are `<name>-pod-<i>`.
pub(crate) fn deployment_name(deal: DealId) -> String {
	format!("podchain-deal-{deal}")
}

/// Prefix of a deal's volume names (the dash keeps deal 4 from matching deal 42's).
pub(crate) fn volume_prefix(deal: DealId) -> String {
	format!("d{deal}-")
}

/// Longest a stop waits for the pods' containers to have stopped.
const STOP_SETTLE: std::time::Duration = std::time::Duration::from_secs(10);

/// The wall clock in milliseconds since the Unix epoch.
fn now_millis() -> u64 {
	SystemTime::now()
		.duration_since(UNIX_EPOCH)
		.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A [`Backend`] running deals with podman on this machine.
#[derive(Debug)]
pub struct PodmanBackend {
	api: Api,
	paths: Option<PodmanPaths>,
	service: tokio::sync::Mutex<Option<Service>>,
	/// Applies running now and refused, which podman's listings do not show.
	tracker: state::Tracker,
	/// podman's state, read once for every deal's questions (see `view.rs`).
	views: view::Views,
	/// Follows podman's events into `views` (see `watch.rs`).
	watch: watch::Watch,
}

impl PodmanBackend {
	/// The deal's samples: its running containers' stats, its pods' network counters and its
	/// volumes (also while its pods are stopped: an idle deal's data is still kept), from the
	/// current view: every deal sampled within it shares one stats and one disk usage request.
	async fn sample_all(&self, deal: DealId) -> Result<Vec<(String, Sample)>, ClusterError> {
		let view = self.views.current();
		let pods = view.pods_of(&self.api, deal).await?;
		if pods.is_empty() {
			return Ok(Vec::new());
		}
		let containers = view.containers_of(&self.api, deal, false).await?;
		let stats = if containers.is_empty() {
			Arc::new(Vec::new())
		} else {
			view.stats(&self.api, self).await?
		};
		let disk = view.disk(&self.api).await?;
		let (df, layers) = &*disk;
		let mut samples = stats::samples(&containers, &stats, layers);
		// A pod's network counters are its infra container's namespace's: read once per pod.
		for pod in stats::serving_pods(&pods, &containers) {
			let Some(pid) = view.infra_pid(&self.api, &pod.infra_id).await? else { continue };
			if let Some(sent) = network::sent_by(pid).await? {
				let sample =
					Sample { at_millis: now_millis(), egress_bytes: sent, ..Sample::default() };
				samples.push((stats::network_source(&pod.name), sample));
			}
		}
		samples.push(stats::volumes_sample(df, &volume_prefix(deal), now_millis()));
		samples.sort_by(|a, b| a.0.cmp(&b.0));
		Ok(samples)
	}

	/// Writes the project configuration into `options.state_dir`, starts `podman system
	/// service` on `<state_dir>/podman.sock` and waits until it answers. If a service already
	/// answers there (left by a previous agent), it is used instead.
	#[tracing::instrument(skip_all, fields(state_dir = %options.state_dir.display()))]
	pub async fn start(options: PodmanOptions) -> Result<Self, ClusterError> {
		let paths = service::configure(&options).await?;
		if options.firewall {
			firewall::guard_host(&options.iptables).await?;
		}
		let api = Api::new(paths.socket.clone());
		let service = Service::start(&options, &paths, &api).await?;
		Ok(Self::with_service(api, Some(paths), service, view::Timing::default()))
	}

	/// Uses a podman service already listening on `socket`.
	#[tracing::instrument(skip_all, fields(socket = %socket.as_ref().display()))]
	pub async fn connect(socket: impl AsRef<Path>) -> Result<Self, ClusterError> {
		Self::connect_timed(socket.as_ref(), view::Timing::default()).await
	}

	/// [`PodmanBackend::connect`], with its views renewed on `timing`.
	pub(crate) async fn connect_timed(
		socket: &Path,
		timing: view::Timing,
	) -> Result<Self, ClusterError> {
		let api = Api::new(socket.to_path_buf());
		api.ping().await?;
		Ok(Self::with_service(api, None, None, timing))
	}

	/// The backend on `api`, following its events from now on.
	fn with_service(
		api: Api,
		paths: Option<PodmanPaths>,
		service: Option<Service>,
		timing: view::Timing,
	) -> Self {
		let views = view::Views::new(timing);
		let watch = watch::Watch::start(api.clone(), views.clone());
		PodmanBackend {
			api,
			paths,
			service: tokio::sync::Mutex::new(service),
			tracker: state::Tracker::default(),
			views,
			watch,
		}
	}

	/// Whether the backend follows podman's events now, so that its listings are read again
	/// only after a change (otherwise at most 500 ms after the last read).
	pub fn follows_events(&self) -> bool {
		self.views.is_watched()
	}

	/// The configuration files and socket, if this backend configured the service.
	pub fn paths(&self) -> Option<&PodmanPaths> {
		self.paths.as_ref()
	}

	/// The socket of the service.
	pub fn socket(&self) -> &Path {
		self.api.socket()
	}

	/// The count of requests this backend has sent podman, shared: it goes on counting.
	pub fn requests(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
		self.api.requests()
	}

	/// Stops the service this backend started (SIGTERM); the deals' pods keep running. Calls
	/// fail with [`ClusterError::Unavailable`] afterwards.
	#[tracing::instrument(skip_all)]
	pub async fn shutdown(&self) {
		self.watch.stop().await;
		if let Some(service) = self.service.lock().await.take() {
			service.stop().await;
		}
	}
}

#[async_trait]
impl Backend for PodmanBackend {
	fn runs_delivered_images(&self) -> bool {
		true
	}

	#[tracing::instrument(skip(self, archive), fields(image = %image.name))]
	async fn stage_image(
		&self,
		deal: DealId,
		image: &DeliveredImage,
		archive: Arc<dyn ImageArchive>,
	) -> Result<String, ClusterError> {
		let reference = images::reference(deal, image);
		if !self.image_exists(&reference).await? {
			let started = std::time::Instant::now();
			self.load_image(&reference, archive).await?;
			tracing::info!(%reference, elapsed_ms = started.elapsed().as_millis() as u64, "loaded the deal's image");
		}
		Ok(reference)
	}

	#[tracing::instrument(skip_all, fields(deal = objects.deal))]
	async fn apply(&self, objects: &DealObjects) -> Result<(), ClusterError> {
		let deal = objects.deal;
		let rendered = render::render(objects)?;
		let _changing = self.views.changing();
		let pods = self.pods(deal).await?;
		if state::is_current(&pods, &rendered) {
			tracing::debug!("already running");
			self.tracker.finished(deal, &Ok(()));
			return Ok(());
		}
		let updating =
			pods.iter().any(|p| p.labels.get(MANIFEST_HASH_ANNOTATION) != Some(&rendered.hash));
		let applying =
			state::Applying { hash: rendered.hash.clone(), replicas: rendered.replicas, updating };
		let _applying = self.tracker.applying(deal, applying);
		let result = async {
			if !pods.is_empty() {
				tracing::info!(pods = pods.len(), "replacing the deal's pods");
				self.remove_pods(&pods).await?;
			}
			self.ensure_network(deal).await?;
			self.play(&rendered).await
		}
		.await;
		self.tracker.finished(deal, &result);
		result?;
		tracing::info!(replicas = rendered.replicas, hash = %rendered.hash, "deal played");
		// The old pods are gone: so may the names of delivered images the manifest dropped.
		let running: Vec<String> = objects
			.deployment
			.spec
			.iter()
			.filter_map(|spec| spec.template.spec.as_ref())
			.flat_map(|pod| pod.containers.iter().filter_map(|c| c.image.clone()))
			.collect();
		self.prune_images(deal, &running).await;
		Ok(())
	}

	#[tracing::instrument(skip(self))]
	async fn remove(&self, deal: DealId) -> Result<(), ClusterError> {
		let _changing = self.views.changing();
		self.remove_pods(&self.pods(deal).await?).await?;
		self.tracker.forget(deal);
		self.remove_network(deal).await?;
		for volume in self.volumes(deal).await? {
			let path = format!("{LIBPOD}/volumes/{}?force=true", encode(&volume));
			self.delete(path, "delete volume").await?;
		}
		self.remove_images(deal).await?;
		// The backend creates no podman secrets (see render.rs); any named for the deal are
		// left over from elsewhere and go with it.
		let secrets: Vec<Secret> =
			self.api.get(&format!("{LIBPOD}/secrets/json"), "list secrets").await?;
		let prefix = volume_prefix(deal);
		for secret in secrets.iter().filter(|s| s.spec.name.starts_with(&prefix)) {
			let path = format!("{LIBPOD}/secrets/{}", encode(&secret.spec.name));
			self.delete(path, "delete secret").await?;
		}
		Ok(())
	}

	#[tracing::instrument(skip(self))]
	async fn deployed(&self) -> Result<Vec<Deployed>, ClusterError> {
		let pods = self.views.current().pods(&self.api).await?;
		let mut deployed = state::deployed(&pods);
		// A deal whose last start failed in a way a retry may fix runs nothing known: the
		// agent applies it again.
		let retrying = self.tracker.retrying();
		for d in deployed.iter_mut().filter(|d| retrying.contains(&d.deal)) {
			d.manifest_hash = crate::UNKNOWN_MANIFEST;
		}
		Ok(deployed)
	}

	#[tracing::instrument(skip(self))]
	async fn status(&self, deal: DealId) -> Result<DealStatus, ClusterError> {
		let view = self.views.current();
		let pods = view.pods_of(&self.api, deal).await?;
		let containers = if pods.is_empty() {
			Vec::new()
		} else {
			view.containers_of(&self.api, deal, true).await?
		};
		Ok(state::status(&pods, &containers, &self.tracker.progress(deal, now_millis())))
	}

	#[tracing::instrument(skip(self, manifest_hash))]
	async fn rolled_out(
		&self,
		deal: DealId,
		manifest_hash: [u8; 32],
	) -> Result<bool, ClusterError> {
		if self.tracker.progress(deal, 0).applying.is_some() {
			return Ok(false);
		}
		let view = self.views.current();
		let pods = view.pods_of(&self.api, deal).await?;
		let containers = view.containers_of(&self.api, deal, true).await?;
		Ok(state::rolled_out(&pods, &containers, &manifest_hash_hex(&manifest_hash)))
	}

	#[tracing::instrument(skip(self))]
	async fn endpoints(&self, deal: DealId, port: u16) -> Result<Vec<SocketAddr>, ClusterError> {
		let pods = self.pods(deal).await?;
		let addresses = self.pod_addresses(deal, &pods).await?;
		Ok(addresses.into_iter().map(|ip| SocketAddr::new(ip, port)).collect())
	}

	#[tracing::instrument(skip(self))]
	async fn set_awake(&self, deal: DealId, awake: bool) -> Result<(), ClusterError> {
		let _changing = self.views.changing();
		let pods = self.pods(deal).await?;
		let calls = pods.iter().map(|pod| async move {
			let name = encode(&pod.name);
			// Stopped at once, as removals are (busybox httpd ignores SIGTERM).
			let path = if awake {
				format!("{LIBPOD}/pods/{name}/start")
			} else {
				format!("{LIBPOD}/pods/{name}/stop?t=0")
			};
			let reply = self.api.send(Method::POST, &path, None).await?;
			match reply.status {
				// 304: already in that state; 404: removed meanwhile.
				s if s.is_success() || s == StatusCode::NOT_MODIFIED => Ok(()),
				StatusCode::NOT_FOUND => Ok(()),
				_ => Err(reply.error(if awake { "start pod" } else { "stop pod" })),
			}
		});
		futures::future::try_join_all(calls).await?;
		if !awake {
			self.wait_stopped(&pods).await?;
		}
		tracing::info!(pods = pods.len(), awake, "deal scaled");
		Ok(())
	}

	#[tracing::instrument(skip(self))]
	async fn sample(&self, deal: DealId) -> Sampled {
		// Storage rides on the containers' samples (see stats.rs), so the deal is read whole
		// or not at all: a sample with no CPU counter would read as a restart.
		match self.sample_all(deal).await {
			Ok(samples) => Sampled { samples, failures: Vec::new() },
			Err(e) => Sampled {
				samples: Vec::new(),
				failures: vec![
					MeteringFailure::new(Metered::Containers, &e),
					MeteringFailure::new(Metered::Storage, &e),
				],
			},
		}
	}

	#[tracing::instrument(skip(self))]
	async fn logs(
		&self,
		deal: DealId,
		since_ms: u64,
		max_lines: u32,
	) -> Result<Vec<LogLine>, ClusterError> {
		let max = usize::try_from(max_lines).unwrap_or(usize::MAX);
		let mut lines = Vec::new();
		if max == 0 {
			return Ok(lines);
		}
		for container in self.containers(deal, true).await? {
			let path = format!(
				"{LIBPOD}/containers/{}/logs?stdout=true&stderr=true&timestamps=true&since={}",
				encode(&container.id),
				logs::since_param(since_ms)
			);
			let response = self.api.open(Method::GET, &path, None).await?;
			match response.status() {
				s if s.is_success() => {}
				StatusCode::NOT_FOUND => continue, // Removed since it was listed.
				s => {
					let text =
						format!("logs of {}: podman answered {}", container.key(), s.as_u16());
					return Err(if s.is_server_error() {
						ClusterError::Unavailable(text)
					} else {
						ClusterError::Refused(text)
					});
				}
			}
			let decoder = logs::Decoder::new(container.key());
			let read = logs::read(response.into_body(), decoder, max);
			let read = tokio::time::timeout(api::TIMEOUT, read).await.map_err(|_| {
				ClusterError::Unavailable(format!("logs of {}: podman stalled", container.key()))
			})?;
			lines.extend(read?);
		}
		// Stable: lines of one container within the same second keep their order.
		lines.sort_by_key(|l| l.timestamp_ms);
		lines.truncate(max);
		Ok(lines)
	}
}
