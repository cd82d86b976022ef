//! What a deal's pods and containers, as podman lists them, say about the deal.

use std::collections::BTreeMap;

use super::{
	model::{Container, Labels, Pod},
	render::Rendered,
	REPLICAS_LABEL,
};
use crate::{
	objects::{manifest_hash_from_hex, DEAL_LABEL, MANIFEST_HASH_ANNOTATION},
	DealId, DealStatus, Deployed,
};

/// The deal a pod or container belongs to, from its label.
pub(crate) fn deal_of(labels: &Labels) -> Option<DealId> {
	labels.get(DEAL_LABEL)?.parse().ok()
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

/// Whether `pods` already run `rendered`: all replicas there, from the same manifest, and up.
/// `Degraded` (some containers between restarts) counts as up: restarting is podman's job,
/// replaying would only restart the healthy ones too.
pub(crate) fn is_current(pods: &[Pod], rendered: &Rendered) -> bool {
	let wanted = usize::try_from(rendered.replicas).unwrap_or(usize::MAX);
	pods.len() == wanted
		&& pods.iter().all(|pod| {
			pod.labels.get(MANIFEST_HASH_ANNOTATION) == Some(&rendered.hash)
				&& matches!(pod.status.as_str(), "Running" | "Degraded")
		})
}

/// How a deal with `pods` and (app, non-infra) `containers` is doing.
pub(crate) fn status(pods: &[Pod], containers: &[Container]) -> DealStatus {
	if pods.is_empty() {
		return DealStatus::Absent;
	}
	let wanted = pods
		.iter()
		.filter_map(|p| p.labels.get(REPLICAS_LABEL)?.parse::<u32>().ok())
		.max()
		.unwrap_or_else(|| u32::try_from(pods.len()).unwrap_or(u32::MAX));
	let mut ready = 0u32;
	for pod in pods {
		let mine: Vec<&Container> = containers.iter().filter(|c| c.pod_name == pod.name).collect();
		if mine.is_empty() {
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
				// play/kube starts what it creates; a container left in `created` failed to
				// start (its command is missing...).
				"created" => {
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
	if ready >= wanted && pods.len() == usize::try_from(wanted).unwrap_or(usize::MAX) {
		DealStatus::Running
	} else {
		DealStatus::Starting { ready, wanted }
	}
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
		}
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
	fn status_from_containers() {
		let pods = [pod("p0", "7", HASH, "Running"), pod("p1", "7", HASH, "Running")];
		let running = [container("p0", "web", "running", 0), container("p1", "web", "running", 0)];
		assert_eq!(status(&[], &[]), DealStatus::Absent);
		assert_eq!(status(&pods, &running), DealStatus::Running);
		assert_eq!(
			status(&pods[..1], &running[..1]),
			DealStatus::Starting { ready: 1, wanted: 2 },
			"a replica is missing"
		);
		let restarting =
			[container("p0", "web", "running", 0), container("p1", "web", "exited", 0)];
		assert_eq!(status(&pods, &restarting), DealStatus::Starting { ready: 1, wanted: 2 });

		let crashed = [container("p0", "web", "running", 0), container("p1", "web", "exited", 2)];
		assert_eq!(
			status(&pods, &crashed),
			DealStatus::Failed { reason: "container p1/web exited with code 2".to_owned() }
		);
		let never = [container("p0", "web", "created", 0), container("p1", "web", "running", 0)];
		assert!(
			matches!(status(&pods, &never), DealStatus::Failed { reason } if reason.contains("never started"))
		);
		assert!(
			matches!(status(&pods, &running[..1]), DealStatus::Failed { reason } if reason.contains("p1 has no containers"))
		);
	}
}
