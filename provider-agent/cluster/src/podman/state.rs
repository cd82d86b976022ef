//! What a deal's pods and containers, as podman lists them, say about the deal.

use std::{collections::BTreeMap, sync::Mutex};

use super::{
	model::{Container, Labels, Pod},
	render::Rendered,
	REPLICAS_LABEL,
};
use crate::{
	objects::{manifest_hash_from_hex, DEAL_LABEL, IDLE_SECONDS_LABEL, MANIFEST_HASH_ANNOTATION},
	ClusterError, DealId, DealStatus, Deployed,
};

/// The deal a pod or container belongs to, from its label.
pub(crate) fn deal_of(labels: &Labels) -> Option<DealId> {
	labels.get(DEAL_LABEL)?.parse().ok()
}

/// Whether `pod` belongs to a deal that scales to zero.
fn scales_to_zero(pod: &Pod) -> bool {
	pod.labels.contains_key(IDLE_SECONDS_LABEL)
}

/// Whether `pod` was stopped while idle: it scales to zero, podman stopped it, and its
/// containers ended as a stop ends them (0, or killed: 137 SIGKILL, 143 SIGTERM), not as a
/// crash does.
fn idle(pod: &Pod, containers: &[Container]) -> bool {
	scales_to_zero(pod)
		&& matches!(pod.status.as_str(), "Exited" | "Stopped")
		&& containers
			.iter()
			.filter(|c| c.pod_name == pod.name)
			.all(|c| matches!(c.exit_code, 0 | 137 | 143))
}

/// The manifest hash a pod was played from, from its label.
pub(crate) fn hash_of(labels: &Labels) -> Option<[u8; 32]> {
	manifest_hash_from_hex(labels.get(MANIFEST_HASH_ANNOTATION)?)
}

/// The deals `pods` belong to. A deal whose pods carry no readable hash, or disagree on it,
/// reads as the all-zero hash, which matches no manifest, so the agent applies it again.
pub(crate) fn deployed(pods: &[Pod]) -> Vec<Deployed> {
	let mut hashes: BTreeMap<DealId, Option<[u8; 32]>> = BTreeMap::new();
	for pod in pods {
		let Some(deal) = deal_of(&pod.labels) else { continue };
		let hash = hash_of(&pod.labels);
		hashes
			.entry(deal)
			.and_modify(|known| {
				if *known != hash {
					*known = None;
				}
			})
			.or_insert(hash);
	}
	hashes
		.into_iter()
		.map(|(deal, hash)| Deployed { deal, manifest_hash: hash.unwrap_or_default() })
		.collect()
}

/// Whether `pods` already run `rendered`: all replicas there, from the same manifest, up, and
/// on the deal's own network (pods played by an older agent on the host's are replaced).
/// `Degraded` (some containers between restarts) counts as up: restarting is podman's job,
/// replaying would only restart the healthy ones too. So does `Paused`: the agent pauses a
/// deal's pods for the moment it snapshots their volumes, and replaying then would lose them.
pub(crate) fn is_current(pods: &[Pod], rendered: &Rendered) -> bool {
	let wanted = usize::try_from(rendered.replicas).unwrap_or(usize::MAX);
	pods.len() == wanted
		&& pods.iter().all(|pod| {
			pod.labels.get(MANIFEST_HASH_ANNOTATION) == Some(&rendered.hash)
				&& (matches!(pod.status.as_str(), "Running" | "Degraded" | "Paused")
					|| (scales_to_zero(pod) && matches!(pod.status.as_str(), "Exited" | "Stopped")))
				&& pod.networks == [super::network::network_name(rendered.deal)]
		})
}

/// A pod whose containers are not all created and started yet is taken as still coming up
/// for this long after its creation (a play by another process, or by this agent before it
/// restarted); older, it is the leftover of a failed start.
pub(crate) const START_GRACE_MILLIS: u64 = 60_000;

/// What the backend knows of a deal beyond what podman lists: an apply running now, and how
/// the last apply ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Progress {
	/// An apply of the deal is running: it plays the manifest with this hash (hex) and
	/// replaces pods of another manifest (`updating`) or plays the deal's first pods.
	pub applying: Option<Applying>,
	/// Why the last apply of the deal failed for good (podman refused the play, a container
	/// could not start), if it did and nothing was applied since.
	pub last_failure: Option<String>,
	/// Why the last apply of the deal failed in a way a retry may fix (an image pull from a
	/// registry that could not be reached), if it did: the deal is applied again.
	pub retrying: Option<String>,
	/// Now, in milliseconds since the Unix epoch.
	pub now_millis: u64,
}

/// An apply in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Applying {
	/// The manifest hash (hex) being played.
	pub hash: String,
	/// Replicas it wants.
	pub replicas: u32,
	/// Pods of another manifest ran before.
	pub updating: bool,
}

/// The backend's own record of applies running and refused, by deal, read into a
/// [`Progress`].
#[derive(Debug, Default)]
pub(crate) struct Tracker(Mutex<BTreeMap<DealId, Tracked>>);

#[derive(Debug, Default)]
struct Tracked {
	applying: Option<Applying>,
	last_failure: Option<String>,
	retrying: Option<String>,
}

/// Marks an apply running until dropped (the apply's future finished or was dropped).
pub(crate) struct ApplyGuard<'a> {
	tracker: &'a Tracker,
	deal: DealId,
}

impl Drop for ApplyGuard<'_> {
	fn drop(&mut self) {
		self.tracker.with(|deals| {
			if let Some(tracked) = deals.get_mut(&self.deal) {
				tracked.applying = None;
			}
		});
	}
}

impl Tracker {
	fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<DealId, Tracked>) -> T) -> T {
		// A poisoned lock means a panic elsewhere mid-update of plain values: carry on.
		let mut deals = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
		let result = f(&mut deals);
		deals.retain(|_, t| {
			t.applying.is_some() || t.last_failure.is_some() || t.retrying.is_some()
		});
		result
	}

	/// Records that an apply of `deal` starts; it ends when the guard is dropped.
	pub(crate) fn applying(&self, deal: DealId, applying: Applying) -> ApplyGuard<'_> {
		self.with(|deals| deals.entry(deal).or_default().applying = Some(applying));
		ApplyGuard { tracker: self, deal }
	}

	/// Records how an apply of `deal` ended: a refusal is the deal's failure, a transient
	/// failure makes it retried, until the next apply succeeds or the deal is removed.
	pub(crate) fn finished(&self, deal: DealId, result: &Result<(), ClusterError>) {
		self.with(|deals| {
			let tracked = deals.entry(deal).or_default();
			let (failure, retrying) = match result {
				Ok(()) => (None, None),
				Err(e) if e.is_transient() => (None, Some(e.to_string())),
				Err(e) => (Some(e.to_string()), None),
			};
			tracked.last_failure = failure;
			tracked.retrying = retrying;
		});
	}

	/// The deals whose last apply failed in a way a retry may fix.
	pub(crate) fn retrying(&self) -> Vec<DealId> {
		self.with(|deals| {
			deals.iter().filter(|(_, t)| t.retrying.is_some()).map(|(deal, _)| *deal).collect()
		})
	}

	/// Forgets `deal` (removed).
	pub(crate) fn forget(&self, deal: DealId) {
		self.with(|deals| deals.remove(&deal));
	}

	/// What is known of `deal`, at `now_millis`.
	pub(crate) fn progress(&self, deal: DealId, now_millis: u64) -> Progress {
		self.with(|deals| {
			let tracked = deals.get(&deal);
			Progress {
				applying: tracked.and_then(|t| t.applying.clone()),
				last_failure: tracked.and_then(|t| t.last_failure.clone()),
				retrying: tracked.and_then(|t| t.retrying.clone()),
				now_millis,
			}
		})
	}
}

/// Replicas the deal's pods say it wants (the largest label), or the number of pods.
fn wanted(pods: &[Pod]) -> u32 {
	pods.iter()
		.filter_map(|p| p.labels.get(REPLICAS_LABEL)?.parse::<u32>().ok())
		.max()
		.unwrap_or_else(|| u32::try_from(pods.len()).unwrap_or(u32::MAX))
}

/// Milliseconds since the epoch of an RFC 3339 time.
fn millis_of(text: &str) -> Option<u64> {
	let timestamp: k8s_openapi::jiff::Timestamp = text.parse().ok()?;
	u64::try_from(timestamp.as_millisecond()).ok()
}

/// How a deal with `pods` and (app, non-infra) `containers` is doing.
///
/// `play/kube` creates a pod with its infra container first, then creates and starts each app
/// container: a listing in between shows a pod without app containers, or with containers
/// `created` but not started. That is a deal starting (or updating), not a failed one, while
/// an apply runs and for [`START_GRACE_MILLIS`] after the pod's creation; past that it is the
/// leftover of a failed start. A container that exited with a non-zero code is a failure; one
/// that exited with 0 is being restarted (degraded).
pub(crate) fn status(pods: &[Pod], containers: &[Container], progress: &Progress) -> DealStatus {
	if let Some(applying) = &progress.applying {
		let current: Vec<&Pod> = pods
			.iter()
			.filter(|p| p.labels.get(MANIFEST_HASH_ANNOTATION) == Some(&applying.hash))
			.collect();
		let ready = current.iter().filter(|p| all_running(p, containers)).count();
		let wanted = applying.replicas;
		let ready = u32::try_from(ready).unwrap_or(u32::MAX).min(wanted);
		return if applying.updating {
			DealStatus::Updating { ready, wanted }
		} else {
			DealStatus::Starting { ready, wanted }
		};
	}
	if pods.is_empty() {
		return DealStatus::Absent;
	}
	if let Some(reason) = &progress.last_failure {
		return DealStatus::Failed { reason: reason.clone() };
	}
	let wanted = wanted(pods);
	if pods.iter().all(|pod| idle(pod, containers)) {
		return DealStatus::Idle;
	}
	if let Some(error) = &progress.retrying {
		let reason = format!("the pods could not start, retrying: {error}");
		return DealStatus::Degraded { ready: 0, wanted, reason };
	}
	let mut ready = 0u32;
	let mut starting = false;
	let mut degraded = None;
	for pod in pods {
		let young = millis_of(&pod.created).is_some_and(|created| {
			progress.now_millis.saturating_sub(created) < START_GRACE_MILLIS
		});
		let mine: Vec<&Container> = containers.iter().filter(|c| c.pod_name == pod.name).collect();
		if mine.is_empty() {
			if young {
				starting = true;
				continue;
			}
			let reason = format!("pod {} has no containers: left over by a failed start", pod.name);
			return DealStatus::Failed { reason };
		}
		for container in &mine {
			match container.state.as_str() {
				"exited" | "stopped" if container.exit_code != 0 => {
					let reason = format!(
						"container {} exited with code {}",
						container.key(),
						container.exit_code
					);
					return DealStatus::Failed { reason };
				}
				"exited" | "stopped" => {
					degraded.get_or_insert_with(|| {
						format!("container {} exited with code 0, restarting", container.key())
					});
				}
				// play/kube starts what it creates; a container left in `created` long after
				// its pod was made failed to start (its command is missing...).
				"created" | "configured" | "initialized" if young => starting = true,
				"created" | "configured" | "initialized" => {
					let reason =
						format!("container {} was created but never started", container.key());
					return DealStatus::Failed { reason };
				}
				_ => {}
			}
		}
		if mine.iter().all(|c| c.state == "running") {
			ready += 1;
		}
	}
	let all_there = pods.len() == usize::try_from(wanted).unwrap_or(usize::MAX);
	if ready >= wanted && all_there {
		return DealStatus::Running;
	}
	let ready = ready.min(wanted);
	match degraded {
		Some(reason) if !starting => DealStatus::Degraded { ready, wanted, reason },
		_ => DealStatus::Starting { ready, wanted },
	}
}

/// Whether `pod` has app containers and all of them run.
fn all_running(pod: &Pod, containers: &[Container]) -> bool {
	let mut mine = containers.iter().filter(|c| c.pod_name == pod.name).peekable();
	mine.peek().is_some() && mine.all(|c| c.state == "running")
}

/// Whether the deal's pods are exactly the wanted replicas of the manifest `hash` (hex), each
/// with all its app containers running.
pub(crate) fn rolled_out(pods: &[Pod], containers: &[Container], hash: &str) -> bool {
	!pods.is_empty()
		&& pods.len() == usize::try_from(wanted(pods)).unwrap_or(usize::MAX)
		&& pods.iter().all(|p| {
			p.labels.get(MANIFEST_HASH_ANNOTATION).map(String::as_str) == Some(hash)
				&& (all_running(p, containers) || idle(p, containers))
		})
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::objects::{manifest_hash_hex, MANAGED_BY_LABEL};

	const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

	fn pod(name: &str, deal: &str, hash: &str, status: &str) -> Pod {
		Pod {
			id: format!("id-{name}"),
			name: name.to_owned(),
			status: status.to_owned(),
			labels: Labels::from([
				(DEAL_LABEL.to_owned(), deal.to_owned()),
				(MANIFEST_HASH_ANNOTATION.to_owned(), hash.to_owned()),
				(MANAGED_BY_LABEL.to_owned(), "podchain-agent".to_owned()),
				(REPLICAS_LABEL.to_owned(), "2".to_owned()),
			]),
			created: "2026-11-21T08:00:00Z".to_owned(),
			..Pod::default()
		}
	}

	/// 2026-11-21T08:00:00Z, when [`pod`]s are created.
	const CREATED_MILLIS: u64 = 1_795_248_000_000;

	/// No apply running, no failure known, `seconds` after the pods were created.
	fn after(seconds: u64) -> Progress {
		Progress { now_millis: CREATED_MILLIS + seconds * 1000, ..Progress::default() }
	}

	fn container(pod: &str, name: &str, state: &str, exit_code: i64) -> Container {
		Container {
			id: format!("{pod}-{name}-id"),
			names: vec![format!("{pod}-{name}")],
			pod_name: pod.to_owned(),
			state: state.to_owned(),
			exit_code,
			..Default::default()
		}
	}

	#[test]
	fn hashes_read_back_from_labels() {
		let labels = pod("p", "7", HASH, "Running").labels;
		let hash = hash_of(&labels).expect("a hash");
		assert_eq!(manifest_hash_hex(&hash), HASH);
		assert_eq!(deal_of(&labels), Some(7));
		for bad in
			["", "00", &HASH.replace('0', "g"), &format!("{HASH}00"), &HASH.replace('0', "é")]
		{
			assert_eq!(hash_of(&pod("p", "7", bad, "Running").labels), None, "{bad}");
		}
	}

	#[test]
	fn deployed_groups_pods_by_deal() {
		let other = HASH.replace('1', "2");
		let pods = [
			pod("a0", "7", HASH, "Running"),
			pod("a1", "7", HASH, "Running"),
			pod("b0", "8", HASH, "Running"),
			pod("b1", "8", &other, "Running"),
			pod("c0", "not-a-number", HASH, "Running"),
		];
		let deployed = deployed(&pods);
		let hash = hash_of(&pods[0].labels).expect("a hash");
		assert_eq!(
			deployed,
			vec![
				Deployed { deal: 7, manifest_hash: hash },
				Deployed { deal: 8, manifest_hash: [0; 32] },
			]
		);
	}

	#[test]
	fn created_times_parse() {
		assert_eq!(millis_of("2026-11-21T08:00:00Z"), Some(CREATED_MILLIS));
		assert_eq!(millis_of("2026-11-21T08:00:00.5Z"), Some(CREATED_MILLIS + 500));
		assert_eq!(millis_of(""), None);
	}

	#[test]
	fn status_from_containers() {
		let old = after(600);
		let pods = [pod("p0", "7", HASH, "Running"), pod("p1", "7", HASH, "Running")];
		let running = [container("p0", "web", "running", 0), container("p1", "web", "running", 0)];
		assert_eq!(status(&[], &[], &old), DealStatus::Absent);
		assert_eq!(status(&pods, &running, &old), DealStatus::Running);
		assert_eq!(
			status(&pods[..1], &running[..1], &old),
			DealStatus::Starting { ready: 1, wanted: 2 },
			"a replica is missing"
		);
		let restarting =
			[container("p0", "web", "running", 0), container("p1", "web", "exited", 0)];
		assert_eq!(
			status(&pods, &restarting, &old),
			DealStatus::Degraded {
				ready: 1,
				wanted: 2,
				reason: "container p1/web exited with code 0, restarting".into()
			}
		);

		let crashed = [container("p0", "web", "running", 0), container("p1", "web", "exited", 2)];
		assert_eq!(
			status(&pods, &crashed, &old),
			DealStatus::Failed { reason: "container p1/web exited with code 2".to_owned() }
		);
		let never = [container("p0", "web", "created", 0), container("p1", "web", "running", 0)];
		assert!(
			matches!(status(&pods, &never, &old), DealStatus::Failed { reason } if reason.contains("never started"))
		);
		assert!(
			matches!(status(&pods, &running[..1], &old), DealStatus::Failed { reason } if reason.contains("p1 has no containers"))
		);
	}

	#[test]
	fn a_pod_between_its_infra_and_app_containers_is_starting() {
		// The case: a second deal's pod listed right after play/kube made its infra
		// container, before its app container.
		let pods = [pod("p0", "7", HASH, "Created")];
		let young = after(3);
		assert_eq!(status(&pods, &[], &young), DealStatus::Starting { ready: 0, wanted: 2 });
		let created = [container("p0", "web", "created", 0)];
		assert_eq!(status(&pods, &created, &young), DealStatus::Starting { ready: 0, wanted: 2 });
		// Long after: the leftover of a failed start.
		assert!(matches!(
			status(&pods, &[], &after(61)),
			DealStatus::Failed { reason } if reason.contains("left over by a failed start")
		));
		// A creation time that does not parse gets no grace.
		let mut odd = pods.clone();
		odd[0].created = "yesterday".into();
		assert!(status(&odd, &[], &young).is_terminal());
	}

	#[test]
	fn an_apply_in_progress_is_starting_or_updating() {
		let new = HASH.replace('1', "2");
		let applying = |updating| Progress {
			applying: Some(Applying { hash: new.clone(), replicas: 2, updating }),
			..after(600)
		};
		// Whatever podman lists meanwhile (old pods, none, new pods half made, even an old
		// pod that looks failed) is the apply's business.
		let old_pods = [pod("p0", "7", HASH, "Running"), pod("p1", "7", HASH, "Running")];
		let crashed = [container("p0", "web", "exited", 2)];
		assert_eq!(
			status(&old_pods, &crashed, &applying(true)),
			DealStatus::Updating { ready: 0, wanted: 2 }
		);
		assert_eq!(status(&[], &[], &applying(true)), DealStatus::Updating { ready: 0, wanted: 2 });
		assert_eq!(
			status(&[], &[], &applying(false)),
			DealStatus::Starting { ready: 0, wanted: 2 }
		);
		let half = [pod("p0", "7", &new, "Running"), pod("p1", "7", &new, "Created")];
		let containers = [container("p0", "web", "running", 0)];
		assert_eq!(
			status(&half, &containers, &applying(true)),
			DealStatus::Updating { ready: 1, wanted: 2 }
		);
	}

	#[test]
	fn a_refused_apply_is_a_failure_until_the_next_one() {
		let pods = [pod("p0", "7", HASH, "Created")];
		let progress = Progress {
			last_failure: Some(
				"deal 7: podman could not start its containers: no such file".into(),
			),
			..after(1)
		};
		assert_eq!(
			status(&pods, &[], &progress),
			DealStatus::Failed {
				reason: "deal 7: podman could not start its containers: no such file".into()
			}
		);
		// Removed since: nothing to report.
		assert_eq!(status(&[], &[], &progress), DealStatus::Absent);
		// A start that may work when tried again (the image's registry was unreachable).
		let progress = Progress { retrying: Some("pull failed".into()), ..after(1) };
		assert_eq!(
			status(&pods, &[], &progress),
			DealStatus::Degraded {
				ready: 0,
				wanted: 2,
				reason: "the pods could not start, retrying: pull failed".into()
			}
		);
	}

	#[test]
	fn the_tracker_follows_applies() {
		let tracker = Tracker::default();
		let applying = Applying { hash: HASH.into(), replicas: 1, updating: false };
		{
			let _guard = tracker.applying(7, applying.clone());
			assert_eq!(tracker.progress(7, 5).applying, Some(applying.clone()));
			assert_eq!(tracker.progress(8, 5).applying, None);
			tracker.finished(7, &Err(ClusterError::Refused("no such image".into())));
		}
		// The guard is gone: no apply; the refusal stays.
		let progress = tracker.progress(7, 5);
		assert_eq!(progress.applying, None);
		assert_eq!(
			progress.last_failure.as_deref(),
			Some("cluster refused the deal's objects: no such image")
		);
		assert!(tracker.retrying().is_empty());
		// A transient failure: retried, not failed.
		tracker.finished(7, &Err(ClusterError::Unavailable("registry down".into())));
		let progress = tracker.progress(7, 5);
		assert_eq!(progress.last_failure, None);
		assert_eq!(progress.retrying.as_deref(), Some("cluster unavailable: registry down"));
		assert_eq!(tracker.retrying(), vec![7]);
		// A successful apply clears it; so does a removal.
		tracker.finished(7, &Ok(()));
		assert!(tracker.retrying().is_empty());
		assert_eq!(tracker.progress(7, 5), Progress { now_millis: 5, ..Progress::default() });
		tracker.finished(7, &Err(ClusterError::Other("bad answer".into())));
		tracker.forget(7);
		assert_eq!(tracker.progress(7, 5).last_failure, None);
		assert!(tracker.0.lock().expect("lock").is_empty(), "nothing kept for idle deals");
	}

	#[test]
	fn rolled_out_needs_every_replica_of_the_manifest_running() {
		let pods = [pod("p0", "7", HASH, "Running"), pod("p1", "7", HASH, "Running")];
		let running = [container("p0", "web", "running", 0), container("p1", "web", "running", 0)];
		assert!(rolled_out(&pods, &running, HASH));
		assert!(!rolled_out(&pods, &running, &HASH.replace('1', "2")), "another manifest");
		assert!(!rolled_out(&pods[..1], &running, HASH), "a replica is missing");
		assert!(!rolled_out(&pods, &running[..1], HASH), "a pod has no containers");
		let starting = [container("p0", "web", "running", 0), container("p1", "web", "created", 0)];
		assert!(!rolled_out(&pods, &starting, HASH));
		assert!(!rolled_out(&[], &[], HASH));
	}
}
