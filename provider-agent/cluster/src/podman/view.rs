//! What podman runs, read once for every deal and shared for a moment.
//!
//! A round asks about every deal: which are deployed, how each is doing, what each used. Asked
//! deal by deal that is several requests per deal, and podman's stats and disk usage cost tens
//! of milliseconds each however little they are asked about. A [`View`] reads the pods, the
//! containers, the stats and the disk usage at most once each, for all deals, when first
//! needed, and answers every deal's question from them until it is [`MAX_AGE`] old or the
//! backend changes something itself (an apply, a removal, a stop or start), which starts a new
//! view: the backend never answers with a state older than its own last change.
//!
//! A read that fails is not kept: the question fails, so a deal is never taken as absent
//! because podman did not answer, and the next question asks podman again.

use std::{
	collections::BTreeMap,
	sync::{Arc, Mutex},
	time::{Duration, Instant},
};

use tokio::sync::OnceCell;

use super::{
	api::{label_filter, Api, LIBPOD},
	model::{Container, ContainerStats, DiskUsage, Pod, StatsReport},
	state::deal_of,
	stats,
};
use crate::{
	objects::{MANAGED_BY_LABEL, MANAGER},
	ClusterError, DealId,
};

/// Longest a view answers for: well under the agent's sample interval (a second at least),
/// so that one view serves a round and a sampling pass over every deal, and what changed
/// behind the backend's back (a container that crashed) shows within it.
pub(crate) const MAX_AGE: Duration = Duration::from_millis(500);

/// podman's state as read at one moment, each part read when first asked for.
#[derive(Debug)]
pub(crate) struct View {
	born: Instant,
	/// Every pod the agent manages.
	pods: OnceCell<Arc<Vec<Pod>>>,
	/// Every container, stopped and infra ones included.
	containers: OnceCell<Arc<Vec<Container>>>,
	/// Stats of every running container.
	stats: OnceCell<Arc<Vec<ContainerStats>>>,
	/// Disk usage, with each container's own layer in bytes by its id.
	disk: OnceCell<Arc<(DiskUsage, BTreeMap<String, u64>)>>,
}

impl View {
	fn new() -> Self {
		View {
			born: Instant::now(),
			pods: OnceCell::new(),
			containers: OnceCell::new(),
			stats: OnceCell::new(),
			disk: OnceCell::new(),
		}
	}

	/// Every pod the agent manages.
	pub async fn pods(&self, api: &Api) -> Result<Arc<Vec<Pod>>, ClusterError> {
		let read = || async {
			let filter = label_filter(&[format!("{MANAGED_BY_LABEL}={MANAGER}")]);
			let pods: Vec<Pod> =
				api.get(&format!("{LIBPOD}/pods/json?{filter}"), "list pods").await?;
			Ok(Arc::new(pods))
		};
		self.pods.get_or_try_init(read).await.cloned()
	}

	/// `deal`'s pods.
	pub async fn pods_of(&self, api: &Api, deal: DealId) -> Result<Vec<Pod>, ClusterError> {
		let pods = self.pods(api).await?;
		Ok(pods.iter().filter(|p| deal_of(&p.labels) == Some(deal)).cloned().collect())
	}

	/// Every container.
	async fn containers(&self, api: &Api) -> Result<Arc<Vec<Container>>, ClusterError> {
		let read = || async {
			let path = format!("{LIBPOD}/containers/json?all=true");
			let containers: Vec<Container> = api.get(&path, "list containers").await?;
			Ok(Arc::new(containers))
		};
		self.containers.get_or_try_init(read).await.cloned()
	}

	/// `deal`'s app containers (not its pods' infra ones), by key; `all` adds stopped ones.
	pub async fn containers_of(
		&self,
		api: &Api,
		deal: DealId,
		all: bool,
	) -> Result<Vec<Container>, ClusterError> {
		let containers = self.containers(api).await?;
		Ok(app_containers(&containers, deal, all))
	}

	/// The process of the running infra container `id`, which holds its pod's network.
	pub async fn infra_pid(&self, api: &Api, id: &str) -> Result<Option<i64>, ClusterError> {
		let containers = self.containers(api).await?;
		Ok(containers
			.iter()
			.find(|c| c.id == id && c.state == "running" && c.pid > 0)
			.map(|c| c.pid))
	}

	/// Stats of every running container: one request for all. One that stops meanwhile can
	/// spoil podman's whole answer: then every running app container is asked for alone.
	pub async fn stats(
		&self,
		api: &Api,
		backend: &super::PodmanBackend,
	) -> Result<Arc<Vec<ContainerStats>>, ClusterError> {
		let read = || async {
			let path = format!("{LIBPOD}/containers/stats?stream=false");
			let report: StatsReport = api.get(&path, "container stats").await?;
			if report.error.is_none() {
				return Ok(Arc::new(report.stats));
			}
			tracing::debug!("podman's stats of all containers failed: asking one by one");
			let containers = self.containers(api).await?;
			let running: Vec<Container> = containers
				.iter()
				.filter(|c| !c.is_infra && c.state == "running")
				.cloned()
				.collect();
			Ok(Arc::new(backend.stats(&running).await?))
		};
		self.stats.get_or_try_init(read).await.cloned()
	}

	/// Disk usage, and each container's own layer in bytes by id.
	pub async fn disk(
		&self,
		api: &Api,
	) -> Result<Arc<(DiskUsage, BTreeMap<String, u64>)>, ClusterError> {
		let read = || async {
			let df: DiskUsage = api.get(&format!("{LIBPOD}/system/df"), "disk usage").await?;
			let layers = stats::layers(&df);
			Ok(Arc::new((df, layers)))
		};
		self.disk.get_or_try_init(read).await.cloned()
	}
}

/// `deal`'s app containers among `containers`, sorted by key; `all` keeps stopped ones.
fn app_containers(containers: &[Container], deal: DealId, all: bool) -> Vec<Container> {
	let mut mine: Vec<Container> = containers
		.iter()
		.filter(|c| !c.is_infra && deal_of(&c.labels) == Some(deal))
		.filter(|c| all || c.state == "running")
		.cloned()
		.collect();
	mine.sort_by_key(Container::key);
	mine
}

/// The view questions are answered from now.
#[derive(Debug)]
pub(crate) struct Views(Mutex<Arc<View>>);

impl Default for Views {
	fn default() -> Self {
		Views(Mutex::new(Arc::new(View::new())))
	}
}

impl Views {
	/// The current view, a new one if it is older than [`MAX_AGE`].
	pub fn current(&self) -> Arc<View> {
		// A poisoned lock held a plain `Arc` swap: carry on.
		let mut current = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
		if current.born.elapsed() >= MAX_AGE {
			*current = Arc::new(View::new());
		}
		current.clone()
	}

	/// Drops the current view: the next question reads podman again.
	pub fn invalidate(&self) {
		*self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(View::new());
	}

	/// Drops the current view now and again when the guard goes (however the change it covers
	/// ends): no question answered during or after a change reads what was there before it.
	pub fn changing(&self) -> Changing<'_> {
		self.invalidate();
		Changing(self)
	}
}

/// See [`Views::changing`].
pub(crate) struct Changing<'a>(&'a Views);

impl Drop for Changing<'_> {
	fn drop(&mut self) {
		self.0.invalidate();
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::{
		objects::DEAL_LABEL,
		podman::{fake::FakePodman, PodmanBackend},
		Backend, DealStatus,
	};

	fn container(id: &str, deal: &str, state: &str, infra: bool) -> Container {
		let mut labels = BTreeMap::new();
		if !infra {
			labels.insert(DEAL_LABEL.to_owned(), deal.to_owned());
		}
		Container {
			id: id.to_owned(),
			names: vec![format!("p{deal}-{id}")],
			pod_name: format!("p{deal}"),
			state: state.to_owned(),
			is_infra: infra,
			labels,
			..Default::default()
		}
	}

	#[test]
	fn a_deals_containers_are_its_own_app_containers() {
		let all = [
			container("b", "7", "running", false),
			container("a", "7", "exited", false),
			container("i", "7", "running", true),
			container("c", "70", "running", false),
		];
		let ids = |cs: Vec<Container>| cs.into_iter().map(|c| c.id).collect::<Vec<_>>();
		assert_eq!(ids(app_containers(&all, 7, true)), ["a", "b"]);
		assert_eq!(ids(app_containers(&all, 7, false)), ["b"]);
		assert_eq!(ids(app_containers(&all, 70, true)), ["c"]);
		assert!(app_containers(&all, 8, true).is_empty());
	}

	#[test]
	fn a_view_is_replaced_when_old_or_invalidated() {
		let views = Views::default();
		let first = views.current();
		assert!(Arc::ptr_eq(&first, &views.current()), "shared while young");
		{
			let _changing = views.changing();
			assert!(!Arc::ptr_eq(&first, &views.current()), "a change starts a new view");
		}
		let after = views.current();
		std::thread::sleep(MAX_AGE);
		assert!(!Arc::ptr_eq(&after, &views.current()), "an old view is replaced");
	}

	/// The backend on a fake service running deal 7.
	async fn backend_beside_deal_7(dir: &std::path::Path) -> (FakePodman, PodmanBackend) {
		let socket = dir.join("podman.sock");
		let fake = FakePodman::serve(&socket);
		fake.run_deal(7, &"ab".repeat(32));
		let backend = PodmanBackend::connect(&socket).await.expect("the fake answers");
		(fake, backend)
	}

	#[tokio::test]
	async fn one_read_serves_every_question_until_the_backend_changes_something() {
		let dir = tempfile::tempdir().expect("temp dir");
		let (fake, backend) = backend_beside_deal_7(dir.path()).await;
		let deployed = backend.deployed().await.expect("deployed");
		assert_eq!(deployed, [crate::Deployed { deal: 7, manifest_hash: [0xab; 32] }]);
		assert_eq!(backend.status(7).await.expect("status"), DealStatus::Running);
		assert_eq!(backend.status(8).await.expect("status"), DealStatus::Absent);
		let sampled = backend.sample(7).await;
		assert!(sampled.failures.is_empty(), "{:?}", sampled.failures);
		let sources: Vec<&str> = sampled.samples.iter().map(|(s, _)| s.as_str()).collect();
		assert_eq!(sources, ["<volumes>", "podchain-deal-7-pod-0/web"]);
		assert!(backend.rolled_out(7, [0xab; 32]).await.expect("rolled out"));
		for (part, reads) in [
			("/pods/json", 1),
			("/containers/json", 1),
			("/containers/stats", 1),
			("/system/df", 1),
		] {
			assert_eq!(fake.requests(part), reads, "{part}");
		}

		// The backend removes the deal: what it answers next is read after the removal.
		backend.remove(7).await.expect("removed");
		assert_eq!(backend.status(7).await.expect("status"), DealStatus::Absent);
		assert!(backend.deployed().await.expect("deployed").is_empty());
		assert!(backend.sample(7).await.samples.is_empty());
	}

	#[tokio::test]
	async fn a_change_behind_the_backends_back_shows_within_the_views_age() {
		let dir = tempfile::tempdir().expect("temp dir");
		let (fake, backend) = backend_beside_deal_7(dir.path()).await;
		assert_eq!(backend.status(7).await.expect("status"), DealStatus::Running);
		fake.state.lock().expect("lock").pods.clear();
		tokio::time::sleep(MAX_AGE).await;
		assert_eq!(backend.status(7).await.expect("status"), DealStatus::Absent);
	}

	#[tokio::test]
	async fn a_failed_listing_is_an_error_never_an_absent_deal() {
		let dir = tempfile::tempdir().expect("temp dir");
		let (fake, backend) = backend_beside_deal_7(dir.path()).await;
		fake.state.lock().expect("lock").failing = true;
		let err = backend.deployed().await.expect_err("podman failed");
		assert!(err.is_transient(), "{err}");
		assert!(backend.status(7).await.is_err());
		let sampled = backend.sample(7).await;
		assert!(sampled.samples.is_empty());
		let failed: Vec<crate::Metered> = sampled.failures.iter().map(|f| f.what).collect();
		assert_eq!(failed, [crate::Metered::Containers, crate::Metered::Storage]);
		// The failure is not kept: podman answering again is seen at once.
		fake.state.lock().expect("lock").failing = false;
		assert_eq!(backend.deployed().await.expect("deployed").len(), 1);
		assert_eq!(backend.status(7).await.expect("status"), DealStatus::Running);
	}
}
