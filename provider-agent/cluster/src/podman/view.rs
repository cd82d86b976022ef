//! What podman runs, read once for every deal and shared.
//!
//! A round asks about every deal: which are deployed, how each is doing, what each used. Asked
//! deal by deal that is several requests per deal, and podman's listings, stats and disk usage
//! cost tens of milliseconds each however little they are asked about. A [`View`] reads each
//! at most once, for all deals, when first needed, and answers every deal's question from it.
//! It has two parts, renewed on their own terms:
//!
//! - **The listing** (pods and containers) changes only when podman does something, and podman
//!   says so on its event stream. While the backend follows that stream (`watch.rs`), a listing
//!   answers until an event arrives, like a Kubernetes reflector's cache; the watch also
//!   re-reads it in the background every [`Timing::relist`], so that an event podman lost
//!   cannot leave it stale for long, and no question waits for that read. Without the stream a
//!   listing answers for [`Timing::max_age`].
//!
//!   An event drops a listing at once only if it is [`Timing::max_age`] old; a younger one
//!   answers until it is: a tenant whose container restarts in a loop makes podman announce
//!   changes many times a second, and must not make every question read podman.
//! - **The usage** (stats and disk usage) changes all the time: it answers for
//!   [`Timing::max_age`], which serves one sampling pass over every deal.
//!
//! Any change the backend makes itself (an apply, a removal, a stop or start) drops both: the
//! backend never answers with a state older than its own last change.
//!
//! A listing made (dropped and renewed) within [`Timing::settle`] after an event or the stream's
//! start, or before them, is not taken as watched: it answers for [`Timing::max_age`] only.
//! podman starts following its events file only after it answers the request, and may record
//! a state change just after its event.
//!
//! A read that fails is not kept: the question fails, so a deal is never taken as absent
//! because podman did not answer, and the next question asks podman again.

use std::{
	collections::BTreeMap,
	sync::{Arc, Mutex, MutexGuard},
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

/// How long the parts of a view answer for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
	/// Longest the usage answers for, and a listing while podman's events are not followed:
	/// well under the agent's sample interval (a second at least), so that one view serves a
	/// round and a sampling pass over every deal, and what changed behind the backend's back
	/// (a container that crashed) shows within it.
	pub max_age: Duration,
	/// Longest a watched listing answers for with no event. The watch renews it well before.
	pub watched_max_age: Duration,
	/// How long after an event or the stream's start a listing read is not taken as watched.
	pub settle: Duration,
	/// How often the watch re-reads the listing in the background.
	pub relist: Duration,
}

impl Default for Timing {
	fn default() -> Self {
		Timing {
			max_age: Duration::from_millis(500),
			watched_max_age: Duration::from_secs(60),
			settle: Duration::from_millis(500),
			relist: Duration::from_secs(20),
		}
	}
}

/// Every pod and container, as read at one moment, each when first asked for.
#[derive(Debug)]
pub(crate) struct Listing {
	born: Instant,
	/// Every pod the agent manages.
	pods: OnceCell<Arc<Vec<Pod>>>,
	/// Every container, stopped and infra ones included.
	containers: OnceCell<Arc<Vec<Container>>>,
}

impl Listing {
	fn new() -> Self {
		Listing { born: Instant::now(), pods: OnceCell::new(), containers: OnceCell::new() }
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

	/// Every container.
	pub async fn containers(&self, api: &Api) -> Result<Arc<Vec<Container>>, ClusterError> {
		let read = || async {
			let path = format!("{LIBPOD}/containers/json?all=true");
			let containers: Vec<Container> = api.get(&path, "list containers").await?;
			Ok(Arc::new(containers))
		};
		self.containers.get_or_try_init(read).await.cloned()
	}
}

/// Stats and disk usage, as read at one moment, each when first asked for.
#[derive(Debug)]
struct Usage {
	born: Instant,
	/// Stats of every running container.
	stats: OnceCell<Arc<Vec<ContainerStats>>>,
	/// Disk usage, with each container's own layer in bytes by its id.
	disk: OnceCell<Arc<(DiskUsage, BTreeMap<String, u64>)>>,
}

impl Usage {
	fn new() -> Self {
		Usage { born: Instant::now(), stats: OnceCell::new(), disk: OnceCell::new() }
	}
}

/// podman's state, as the questions of one moment see it.
#[derive(Debug)]
pub(crate) struct View {
	listing: Arc<Listing>,
	usage: Arc<Usage>,
}

impl View {
	/// Every pod the agent manages.
	pub async fn pods(&self, api: &Api) -> Result<Arc<Vec<Pod>>, ClusterError> {
		self.listing.pods(api).await
	}

	/// `deal`'s pods.
	pub async fn pods_of(&self, api: &Api, deal: DealId) -> Result<Vec<Pod>, ClusterError> {
		let pods = self.pods(api).await?;
		Ok(pods.iter().filter(|p| deal_of(&p.labels) == Some(deal)).cloned().collect())
	}

	/// `deal`'s app containers (not its pods' infra ones), by key; `all` adds stopped ones.
	pub async fn containers_of(
		&self,
		api: &Api,
		deal: DealId,
		all: bool,
	) -> Result<Vec<Container>, ClusterError> {
		let containers = self.listing.containers(api).await?;
		Ok(app_containers(&containers, deal, all))
	}

	/// The process of the running infra container `id`, which holds its pod's network.
	pub async fn infra_pid(&self, api: &Api, id: &str) -> Result<Option<i64>, ClusterError> {
		let containers = self.listing.containers(api).await?;
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
			let containers = self.listing.containers(api).await?;
			let running: Vec<Container> = containers
				.iter()
				.filter(|c| !c.is_infra && c.state == "running")
				.cloned()
				.collect();
			Ok(Arc::new(backend.stats(&running).await?))
		};
		self.usage.stats.get_or_try_init(read).await.cloned()
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
		self.usage.disk.get_or_try_init(read).await.cloned()
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

/// The views questions are answered from, shared with the watch of podman's events.
#[derive(Clone, Debug)]
pub(crate) struct Views {
	inner: Arc<Mutex<Inner>>,
	timing: Timing,
}

#[derive(Debug)]
struct Inner {
	listing: Arc<Listing>,
	usage: Arc<Usage>,
	/// Counts the times the views were dropped: a listing read in the background is kept only
	/// if none was dropped while it was read.
	generation: u64,
	/// Since when podman's events are followed; `None` while they are not.
	watched_since: Option<Instant>,
	/// When the last event arrived.
	last_event: Option<Instant>,
}

impl Inner {
	/// Whether every change since a listing made at `born` would be announced by an event.
	fn watched(&self, born: Instant, settle: Duration) -> bool {
		let settled = |at: Instant| at.checked_add(settle).is_some_and(|at| born >= at);
		self.watched_since.is_some_and(settled) && self.last_event.is_none_or(settled)
	}

	fn drop_views(&mut self) {
		self.listing = Arc::new(Listing::new());
		self.usage = Arc::new(Usage::new());
		self.generation = self.generation.wrapping_add(1);
	}
}

impl Views {
	/// Views renewed on `timing`, with podman's events not followed yet.
	pub fn new(timing: Timing) -> Self {
		let inner = Inner {
			listing: Arc::new(Listing::new()),
			usage: Arc::new(Usage::new()),
			generation: 0,
			watched_since: None,
			last_event: None,
		};
		Views { inner: Arc::new(Mutex::new(inner)), timing }
	}

	/// How long the parts of a view answer for.
	pub fn timing(&self) -> Timing {
		self.timing
	}

	fn lock(&self) -> MutexGuard<'_, Inner> {
		// A poisoned lock held plain assignments: carry on.
		self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
	}

	/// The current view, its parts renewed where they are too old.
	pub fn current(&self) -> View {
		let mut inner = self.lock();
		let born = inner.listing.born;
		let longest = if inner.watched(born, self.timing.settle) {
			self.timing.watched_max_age
		} else {
			self.timing.max_age
		};
		if born.elapsed() >= longest {
			inner.listing = Arc::new(Listing::new());
		}
		if inner.usage.born.elapsed() >= self.timing.max_age {
			inner.usage = Arc::new(Usage::new());
		}
		View { listing: inner.listing.clone(), usage: inner.usage.clone() }
	}

	/// Drops the current view: the next question reads podman again.
	pub fn invalidate(&self) {
		self.lock().drop_views();
	}

	/// Drops the current view now and again when the guard goes (however the change it covers
	/// ends): no question answered during or after a change reads what was there before it.
	pub fn changing(&self) -> Changing<'_> {
		self.invalidate();
		Changing(self)
	}

	/// podman's events are followed from now on: what happened before may have gone unseen.
	pub fn watching(&self) {
		let mut inner = self.lock();
		inner.watched_since = Some(Instant::now());
		inner.drop_views();
	}

	/// podman's events are no longer followed: listings answer for [`Timing::max_age`] again.
	pub fn unwatched(&self) {
		self.lock().watched_since = None;
	}

	/// Whether podman's events are followed.
	pub fn is_watched(&self) -> bool {
		self.lock().watched_since.is_some()
	}

	/// podman announced a change to its pods or containers: the next question reads podman
	/// again, or, if the listing is younger than [`Timing::max_age`], the first question once it
	/// is that old. A listing being read in the background is not kept.
	pub fn event(&self) {
		let mut inner = self.lock();
		inner.last_event = Some(Instant::now());
		inner.generation = inner.generation.wrapping_add(1);
		if inner.listing.born.elapsed() >= self.timing.max_age {
			inner.listing = Arc::new(Listing::new());
		}
	}

	/// A new listing to read in the background, and the generation to [`Views::install`] it at.
	pub fn relist(&self) -> (u64, Arc<Listing>) {
		(self.lock().generation, Arc::new(Listing::new()))
	}

	/// Makes `listing`, read in the background, the current one, unless the views were dropped
	/// since [`Views::relist`] gave it (it may predate that change). Returns whether it did.
	pub fn install(&self, generation: u64, listing: Arc<Listing>) -> bool {
		let mut inner = self.lock();
		if inner.generation != generation {
			return false;
		}
		inner.listing = listing;
		true
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

	impl View {
		fn same_as(&self, other: &View) -> bool {
			Arc::ptr_eq(&self.listing, &other.listing) && Arc::ptr_eq(&self.usage, &other.usage)
		}
	}

	/// Short ages, so that tests see views renewed.
	const QUICK: Timing = Timing {
		max_age: Duration::from_millis(100),
		watched_max_age: Duration::from_secs(60),
		settle: Duration::from_millis(150),
		relist: Duration::from_secs(60),
	};

	#[test]
	fn a_view_is_replaced_when_old_or_invalidated() {
		let views = Views::new(Timing::default());
		let first = views.current();
		assert!(first.same_as(&views.current()), "shared while young");
		{
			let _changing = views.changing();
			assert!(!first.same_as(&views.current()), "a change starts a new view");
		}
		let after = views.current();
		std::thread::sleep(Timing::default().max_age);
		assert!(!after.same_as(&views.current()), "an old view is replaced");
	}

	#[test]
	fn a_watched_listing_lasts_until_an_event_and_usage_does_not() {
		let views = Views::new(QUICK);
		views.watching();
		std::thread::sleep(QUICK.settle);
		views.invalidate();
		let watched = views.current();
		std::thread::sleep(QUICK.max_age);
		let later = views.current();
		assert!(Arc::ptr_eq(&watched.listing, &later.listing), "no event: the listing stands");
		assert!(!Arc::ptr_eq(&watched.usage, &later.usage), "usage is renewed by age");

		// Made within the settling time after an event, a listing is kept only briefly.
		views.event();
		let after_event = views.current();
		assert!(!Arc::ptr_eq(&later.listing, &after_event.listing), "an event drops it");
		assert!(Arc::ptr_eq(&later.usage, &after_event.usage), "usage is not the events'");
		std::thread::sleep(QUICK.max_age);
		let settled = views.current();
		assert!(!Arc::ptr_eq(&after_event.listing, &settled.listing), "unsettled: renewed");

		// Events in a flood drop a listing no sooner than its age would.
		let flooded = views.current();
		views.event();
		views.event();
		assert!(Arc::ptr_eq(&flooded.listing, &views.current().listing), "young: kept");
		std::thread::sleep(QUICK.max_age);
		views.event();
		assert!(!Arc::ptr_eq(&flooded.listing, &views.current().listing), "then renewed");

		// Once the events are no longer followed, the listing's age counts again.
		std::thread::sleep(QUICK.settle);
		views.invalidate();
		let last = views.current();
		views.unwatched();
		std::thread::sleep(QUICK.max_age);
		assert!(!Arc::ptr_eq(&last.listing, &views.current().listing), "unwatched: renewed");
	}

	#[test]
	fn a_background_listing_is_not_installed_over_a_later_change() {
		let views = Views::new(QUICK);
		let (generation, stale) = views.relist();
		views.event();
		assert!(!views.install(generation, stale.clone()), "read before the event");
		assert!(!Arc::ptr_eq(&views.current().listing, &stale));
		let (generation, fresh) = views.relist();
		assert!(views.install(generation, fresh.clone()));
		assert!(Arc::ptr_eq(&views.current().listing, &fresh));
	}

	/// A fake service running deal 7 (streaming events if `events`), and a backend on it whose
	/// views are renewed on `timing`.
	async fn beside_deal_7(
		dir: &std::path::Path,
		timing: Timing,
		events: bool,
	) -> (FakePodman, PodmanBackend) {
		let socket = dir.join("podman.sock");
		let fake = FakePodman::serve(&socket);
		fake.run_deal(7, &"ab".repeat(32));
		fake.state.lock().expect("lock").refuse_events = !events;
		let backend = PodmanBackend::connect_timed(&socket, timing).await.expect("connects");
		(fake, backend)
	}

	#[tokio::test]
	async fn one_read_serves_every_question_until_the_backend_changes_something() {
		let dir = tempfile::tempdir().expect("temp dir");
		let (fake, backend) = beside_deal_7(dir.path(), Timing::default(), true).await;
		// The watch's start drops the view: counted from after it.
		until_watched(&fake, &backend).await;
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

	/// Waits until `backend` follows the fake's events, and past the settling time.
	async fn until_watched(fake: &FakePodman, backend: &PodmanBackend) {
		let deadline = Instant::now() + Duration::from_secs(5);
		while !(backend.follows_events() && fake.watchers() == 1) {
			assert!(Instant::now() < deadline, "the backend never followed the events");
			tokio::time::sleep(Duration::from_millis(10)).await;
		}
		tokio::time::sleep(backend.views.timing().settle).await;
	}

	/// Asks `deal`'s status until it is `want`, for at most `within`.
	async fn until_status(
		backend: &PodmanBackend,
		deal: DealId,
		want: DealStatus,
		within: Duration,
	) {
		let deadline = Instant::now() + within;
		loop {
			let status = backend.status(deal).await.expect("status");
			if status == want {
				return;
			}
			assert!(Instant::now() < deadline, "still {status:?} after {within:?}");
			tokio::time::sleep(Duration::from_millis(10)).await;
		}
	}

	#[tokio::test]
	async fn a_watched_backend_reads_podman_again_only_after_an_event() {
		let dir = tempfile::tempdir().expect("temp dir");
		let (fake, backend) = beside_deal_7(dir.path(), QUICK, true).await;
		until_watched(&fake, &backend).await;

		assert_eq!(backend.status(7).await.expect("status"), DealStatus::Running);
		let reads = fake.requests("/pods/json");
		for _ in 0..5 {
			tokio::time::sleep(QUICK.max_age).await;
			assert_eq!(backend.status(7).await.expect("status"), DealStatus::Running);
		}
		assert_eq!(fake.requests("/pods/json"), reads, "no event, no read");

		// podman removes the pod and says so: the next answers are read after the removal.
		fake.state.lock().expect("lock").pods.clear();
		fake.emit("remove");
		until_status(&backend, 7, DealStatus::Absent, Duration::from_secs(2)).await;
		assert_eq!(fake.requests("/pods/json"), reads + 1);
	}

	#[tokio::test]
	async fn a_flood_of_events_reads_podman_no_more_often_than_the_views_age() {
		let dir = tempfile::tempdir().expect("temp dir");
		let (fake, backend) = beside_deal_7(dir.path(), QUICK, true).await;
		until_watched(&fake, &backend).await;
		assert_eq!(backend.status(7).await.expect("status"), DealStatus::Running);
		let reads = fake.requests("/pods/json");
		// A container restarting in a loop: podman announces it over and over.
		let started = Instant::now();
		let mut questions = 0;
		while started.elapsed() < Duration::from_secs(1) {
			fake.emit("died");
			assert_eq!(backend.status(7).await.expect("status"), DealStatus::Running);
			questions += 1;
			tokio::time::sleep(Duration::from_millis(5)).await;
		}
		let flooded = fake.requests("/pods/json") - reads;
		// One read per 100 ms at most, and at least one: the events are not ignored.
		assert!((1..=11).contains(&flooded), "{flooded} reads for {questions} questions");
	}

	#[tokio::test]
	async fn a_stopped_watch_leaves_nothing_kept() {
		let dir = tempfile::tempdir().expect("temp dir");
		let (fake, backend) = beside_deal_7(dir.path(), QUICK, true).await;
		until_watched(&fake, &backend).await;
		assert_eq!(backend.status(7).await.expect("status"), DealStatus::Running);
		let reads = fake.requests("/pods/json");
		backend.shutdown().await;
		assert!(!backend.follows_events());
		assert_eq!(backend.status(7).await.expect("status"), DealStatus::Running);
		assert_eq!(fake.requests("/pods/json"), reads + 1, "read again after the stop");
	}

	#[tokio::test]
	async fn the_watch_reads_the_listing_again_in_the_background() {
		let dir = tempfile::tempdir().expect("temp dir");
		let timing = Timing { relist: Duration::from_millis(200), ..QUICK };
		let (fake, backend) = beside_deal_7(dir.path(), timing, true).await;
		until_watched(&fake, &backend).await;
		let before = fake.requests("/pods/json");
		tokio::time::sleep(Duration::from_millis(1000)).await;
		let relists = fake.requests("/pods/json") - before;
		// Five are due; a loaded machine delays some.
		assert!((2..=8).contains(&relists), "{relists} background reads in 1 s");

		// A change podman did not announce shows after the next relist.
		fake.state.lock().expect("lock").pods.clear();
		until_status(&backend, 7, DealStatus::Absent, Duration::from_secs(1)).await;
		assert!(backend.follows_events());

		// A relist that fails ends the watch: questions read podman, and fail loudly.
		fake.state.lock().expect("lock").failing = true;
		tokio::time::sleep(Duration::from_millis(400)).await;
		assert!(!backend.follows_events());
		assert!(backend.status(7).await.is_err());
	}

	#[tokio::test]
	async fn without_podmans_events_a_change_shows_within_the_views_age() {
		let dir = tempfile::tempdir().expect("temp dir");
		let (fake, backend) = beside_deal_7(dir.path(), QUICK, false).await;
		assert_eq!(backend.status(7).await.expect("status"), DealStatus::Running);
		fake.state.lock().expect("lock").pods.clear();
		tokio::time::sleep(QUICK.max_age).await;
		assert_eq!(backend.status(7).await.expect("status"), DealStatus::Absent);
		assert!(!backend.follows_events());
		assert!(fake.requests("/events") >= 1, "the backend asked for them");
	}

	#[tokio::test]
	async fn a_lost_event_stream_falls_back_to_the_views_age_and_is_followed_again() {
		let dir = tempfile::tempdir().expect("temp dir");
		let (fake, backend) = beside_deal_7(dir.path(), QUICK, true).await;
		until_watched(&fake, &backend).await;
		assert_eq!(backend.status(7).await.expect("status"), DealStatus::Running);

		fake.end_events();
		fake.state.lock().expect("lock").pods.clear();
		until_status(&backend, 7, DealStatus::Absent, QUICK.max_age * 3).await;
		// The watch comes back (after a second), and with it the events' effect.
		until_watched(&fake, &backend).await;
		fake.run_deal(7, &"ab".repeat(32));
		fake.emit("start");
		until_status(&backend, 7, DealStatus::Running, Duration::from_secs(2)).await;
	}

	#[tokio::test]
	async fn a_failed_listing_is_an_error_never_an_absent_deal() {
		let dir = tempfile::tempdir().expect("temp dir");
		let (fake, backend) = beside_deal_7(dir.path(), Timing::default(), true).await;
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
