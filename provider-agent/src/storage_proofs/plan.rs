//! What to do about one volume or one challenge, decided purely from the finalized chain and
//! what is on disk: testable alone, and the same after a restart.

use super::snapshot::Pending;
use podchain_merkle::Hash;

/// A volume's latest commitment on chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Committed {
	/// Its root.
	pub root: Hash,
	/// The block it was committed in.
	pub at: u32,
}

/// What the agent knows of one volume of a running SLA deal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VolumeFacts {
	/// The latest commitment, if any.
	pub committed: Option<Committed>,
	/// Whether a challenge on this volume is open (its root cannot change then).
	pub challenged: bool,
	/// The commitment in flight, from disk.
	pub pending: Option<Pending>,
}

/// What to do about a volume now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VolumePlan {
	/// The commitment in flight landed or can no longer land: forget it.
	pub clear_pending: bool,
	/// Take a new snapshot and commit it.
	pub snapshot: bool,
}

/// Plans a volume at finalized block `now`, with commitments allowed every `period` blocks.
pub fn plan_volume(now: u32, period: u32, facts: &VolumeFacts) -> VolumePlan {
	let mut clear_pending = false;
	if let Some(pending) = facts.pending {
		let landed = facts.committed.is_some_and(|c| c.root == pending.snapshot.root);
		if landed || now > pending.valid_until {
			clear_pending = true;
		} else {
			// In flight: wait for it rather than send another.
			return VolumePlan { clear_pending, snapshot: false };
		}
	}
	let due = facts.committed.is_none_or(|c| now >= c.at.saturating_add(period));
	VolumePlan { clear_pending, snapshot: due && !facts.challenged }
}

/// The snapshots of a volume to keep: the one committed (a challenge may name it until the
/// next commitment is final), the one in flight, and the one an open challenge names.
pub fn snapshots_to_keep(
	committed: Option<Hash>,
	pending: Option<&Pending>,
	challenged: Option<Hash>,
) -> Vec<Hash> {
	let mut keep: Vec<Hash> =
		committed.into_iter().chain(pending.map(|p| p.snapshot.root)).chain(challenged).collect();
	keep.sort();
	keep.dedup();
	keep
}

/// Whether a challenge filed at `issued_at` still needs an answer from the agent, given the
/// answer it sent (for the challenge filed at that block, valid until that block), at `now`.
pub fn needs_answer(now: u32, issued_at: u32, sent: Option<(u32, u32)>) -> bool {
	match sent {
		Some((answered_issue, valid_until)) => answered_issue != issued_at || now > valid_until,
		None => true,
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::storage_proofs::snapshot::SnapshotInfo;

	fn pending(root: u8, valid_until: u32) -> Pending {
		Pending {
			snapshot: SnapshotInfo { root: [root; 32], chunk_count: 1, size: 1 },
			valid_until,
		}
	}

	fn committed(root: u8, at: u32) -> Option<Committed> {
		Some(Committed { root: [root; 32], at })
	}

	#[test]
	fn a_volume_is_snapshotted_first_then_once_per_period() {
		let never = VolumeFacts { committed: None, challenged: false, pending: None };
		assert_eq!(
			plan_volume(5, 100, &never),
			VolumePlan { clear_pending: false, snapshot: true }
		);
		let recent = VolumeFacts { committed: committed(1, 50), ..never };
		assert!(!plan_volume(149, 100, &recent).snapshot);
		assert!(plan_volume(150, 100, &recent).snapshot);
	}

	#[test]
	fn nothing_is_committed_while_the_volume_is_challenged() {
		let facts = VolumeFacts { committed: committed(1, 0), challenged: true, pending: None };
		assert!(!plan_volume(1_000, 100, &facts).snapshot);
		let first = VolumeFacts { committed: None, challenged: true, pending: None };
		assert!(!plan_volume(1_000, 100, &first).snapshot);
	}

	#[test]
	fn a_commitment_in_flight_is_waited_for_then_forgotten() {
		let in_flight = VolumeFacts {
			committed: committed(1, 0),
			challenged: false,
			pending: Some(pending(2, 60)),
		};
		assert_eq!(
			plan_volume(60, 10, &in_flight),
			VolumePlan { clear_pending: false, snapshot: false }
		);
		// It landed: forgotten, and not due again for a period.
		let landed = VolumeFacts { committed: committed(2, 55), ..in_flight };
		assert_eq!(
			plan_volume(58, 10, &landed),
			VolumePlan { clear_pending: true, snapshot: false }
		);
		// It can no longer land: forgotten, and a new snapshot taken.
		assert_eq!(
			plan_volume(61, 10, &in_flight),
			VolumePlan { clear_pending: true, snapshot: true }
		);
	}

	#[test]
	fn the_committed_the_pending_and_the_challenged_snapshots_are_kept() {
		let p = pending(2, 10);
		assert_eq!(
			snapshots_to_keep(Some([1; 32]), Some(&p), Some([1; 32])),
			vec![[1; 32], [2; 32]]
		);
		assert_eq!(snapshots_to_keep(None, None, Some([3; 32])), vec![[3; 32]]);
		assert!(snapshots_to_keep(None, None, None).is_empty());
	}

	#[test]
	fn a_challenge_is_answered_once_unless_the_answer_expired() {
		assert!(needs_answer(10, 5, None));
		assert!(!needs_answer(10, 5, Some((5, 70))));
		assert!(needs_answer(71, 5, Some((5, 70))));
		assert!(needs_answer(10, 9, Some((5, 70))), "a later challenge");
	}
}
