//! The podman calls the backend is made of: listings by label, deletions, play, stats.

use std::collections::BTreeSet;

use hyper::{body::Bytes, Method, StatusCode};

use super::{
	api::{encode, label_filter, LIBPOD},
	model::{Container, ContainerStats, PlayReport, Pod, StatsReport, Volume},
	render::Rendered,
	volume_prefix, PodmanBackend,
};
use crate::{objects::DEAL_LABEL, ClusterError, DealId};

/// How long the cleanup of stopped containers is given before the pod may start again.
const CLEANUP_SETTLE: std::time::Duration = std::time::Duration::from_millis(300);

impl PodmanBackend {
	/// The deal's pods.
	pub(super) async fn pods(&self, deal: DealId) -> Result<Vec<Pod>, ClusterError> {
		let filter = label_filter(&[format!("{DEAL_LABEL}={deal}")]);
		self.api.get(&format!("{LIBPOD}/pods/json?{filter}"), "list pods").await
	}

	/// The deal's app containers (infra containers carry no labels); `all` adds stopped ones.
	pub(super) async fn containers(
		&self,
		deal: DealId,
		all: bool,
	) -> Result<Vec<Container>, ClusterError> {
		let filter = label_filter(&[format!("{DEAL_LABEL}={deal}")]);
		let path = format!("{LIBPOD}/containers/json?all={all}&{filter}");
		let mut containers: Vec<Container> = self.api.get(&path, "list containers").await?;
		containers.retain(|c| !c.is_infra);
		containers.sort_by_key(Container::key);
		Ok(containers)
	}

	/// The deal's volumes: labelled with it (claims) or named for it (`emptyDir`s).
	pub(super) async fn volumes(&self, deal: DealId) -> Result<BTreeSet<String>, ClusterError> {
		let volumes: Vec<Volume> =
			self.api.get(&format!("{LIBPOD}/volumes/json"), "list volumes").await?;
		let prefix = volume_prefix(deal);
		let deal = deal.to_string();
		Ok(volumes
			.into_iter()
			.filter(|v| v.name.starts_with(&prefix) || v.labels.get(DEAL_LABEL) == Some(&deal))
			.map(|v| v.name)
			.collect())
	}

	/// Waits until no container of `pods` (infra included) is running or stopping, and then
	/// for their cleanup. podman
	/// answers a pod stop before its containers' cleanup has run, and a start in between loses
	/// the race to that cleanup, which tears the new network namespace down: the pod then
	/// reads as started and never serves.
	pub(super) async fn wait_stopped(&self, pods: &[Pod]) -> Result<(), ClusterError> {
		let names: Vec<&str> = pods.iter().map(|p| p.name.as_str()).collect();
		let filter = encode(&serde_json::json!({ "pod": names }).to_string());
		let path = format!("{LIBPOD}/containers/json?all=true&filters={filter}");
		let deadline = tokio::time::Instant::now() + super::STOP_SETTLE;
		loop {
			let containers: Vec<Container> = self.api.get(&path, "list containers").await?;
			if !containers.iter().any(|c| matches!(c.state.as_str(), "running" | "stopping")) {
				// Their cleanup (run by conmon once they exit) is not visible in any state:
				// give it the time it takes here (about 150 ms), twice over.
				tokio::time::sleep(CLEANUP_SETTLE).await;
				return Ok(());
			}
			if tokio::time::Instant::now() > deadline {
				return Err(ClusterError::Unavailable(format!(
					"pods {names:?} did not stop within {:?}",
					super::STOP_SETTLE
				)));
			}
			tokio::time::sleep(std::time::Duration::from_millis(20)).await;
		}
	}

	/// Deletes `what` (a path under libpod); missing is fine.
	pub(super) async fn delete(&self, path: String, what: &str) -> Result<(), ClusterError> {
		let reply = self.api.send(Method::DELETE, &path, None).await?;
		match reply.status {
			s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
			_ => Err(reply.error(what)),
		}
	}

	/// Deletes `pods` at once, not waiting for their containers to stop (`timeout=0`: busybox
	/// httpd, among others, ignores SIGTERM and would hold each pod 10 s).
	pub(super) async fn remove_pods(&self, pods: &[Pod]) -> Result<(), ClusterError> {
		let deletions = pods.iter().map(|pod| {
			let path = format!("{LIBPOD}/pods/{}?force=true&timeout=0", encode(&pod.name));
			self.delete(path, "delete pod")
		});
		futures::future::try_join_all(deletions).await.map(drop)
	}

	/// Plays `rendered`, once more if podman says something already exists (pods or a volume
	/// of a concurrent or interrupted play).
	pub(super) async fn play(&self, rendered: &Rendered) -> Result<(), ClusterError> {
		let mut retried = false;
		loop {
			let existing = self.volumes(rendered.deal).await?;
			let body = Bytes::from(rendered.yaml(&existing));
			let network = encode(&super::network::network_name(rendered.deal));
			let path = format!("{LIBPOD}/play/kube?network={network}");
			let reply =
				self.api.send(Method::POST, &path, Some(("application/x-yaml", body))).await?;
			if reply.status.is_success() {
				let report: PlayReport = reply.json("play kube")?;
				let errors: Vec<String> =
					report.pods.into_iter().flat_map(|p| p.container_errors).collect();
				if errors.is_empty() {
					return Ok(());
				}
				return Err(ClusterError::Refused(format!(
					"deal {}: podman could not start its containers: {}",
					rendered.deal,
					errors.join("; ")
				)));
			}
			let message = reply.message();
			if !retried && message.contains("already exists") {
				tracing::warn!(deal = rendered.deal, %message, "clearing the deal's pods, playing again");
				retried = true;
				self.remove_pods(&self.pods(rendered.deal).await?).await?;
				continue;
			}
			// podman answers 500 to everything; these mean our YAML, and will not pass. (A
			// missing image is pulled, and a registry that cannot be reached may come back.)
			const PERMANENT: [&str; 2] =
				["does not contain any supported kube kind", "multi doc yaml could not be split"];
			if PERMANENT.iter().any(|p| message.contains(p)) {
				return Err(ClusterError::Refused(format!("deal {}: {message}", rendered.deal)));
			}
			return Err(reply.error("play kube"));
		}
	}

	/// Stats of `containers`. One unknown container empties podman's whole answer (say one that
	/// just stopped), so on an error each container is asked alone and the unknown ones skipped.
	pub(super) async fn stats(
		&self,
		containers: &[Container],
	) -> Result<Vec<ContainerStats>, ClusterError> {
		let query = |ids: &[&Container]| {
			let ids: Vec<String> =
				ids.iter().map(|c| format!("containers={}", encode(&c.id))).collect();
			format!("{LIBPOD}/containers/stats?stream=false&{}", ids.join("&"))
		};
		let all: Vec<&Container> = containers.iter().collect();
		let report: StatsReport = self.api.get(&query(&all), "container stats").await?;
		if report.error.is_none() {
			return Ok(report.stats);
		}
		let mut stats = Vec::new();
		for container in containers {
			let report: StatsReport = self.api.get(&query(&[container]), "container stats").await?;
			stats.extend(report.stats);
		}
		Ok(stats)
	}
}
