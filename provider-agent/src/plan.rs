//! What the agent should do, decided from the chain's finalized view and its own state.
//!
//! [`plan`] is pure: the same inputs give the same actions, so reconciling is idempotent and a
//! restarted agent converges from wherever it stopped. Tenants are torn down only on a final
//! chain decision (the deal is gone from finalized state, or is closing); nothing here runs
//! when the chain or the cluster could not be read.

use std::collections::{BTreeMap, BTreeSet};

/// blake2-256 of a manifest.
pub type Hash = [u8; 32];

/// A deal's state on chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainState {
	/// Waiting for this provider's acceptance.
	Pending,
	/// Running and billed since `accepted_at`.
	Active {
		/// Block of acceptance.
		accepted_at: u32,
	},
	/// Out of funds, in its grace period: still running.
	OutOfFunds {
		/// Block of acceptance.
		accepted_at: u32,
	},
	/// Closed by its publisher or its rent's end: pods must go; usage may still be reported.
	Closing,
}

/// One of this provider's open deals, as read at a finalized block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainDeal {
	/// The deal.
	pub id: u64,
	/// A rent runs nothing itself.
	pub is_rent: bool,
	/// Where it is in its life.
	pub state: ChainState,
	/// The manifest the provider must run.
	pub manifest_hash: Hash,
	/// A new manifest the publisher asked for, not yet acknowledged.
	pub pending_manifest: Option<Hash>,
}

/// Everything a plan is made from.
#[derive(Clone, Debug, Default)]
pub struct PlanInput {
	/// The finalized block the deals were read at.
	pub now: u32,
	/// This provider's open deals.
	pub deals: Vec<ChainDeal>,
	/// Hashes of the verified manifests the agent holds, by deal.
	pub manifests: BTreeMap<u64, Hash>,
	/// What runs in the cluster: manifest hash by deal.
	pub deployed: BTreeMap<u64, Hash>,
	/// Deals whose pending manifest update is rolled out: every wanted pod runs the new
	/// manifest and is ready ([`Backend::rolled_out`](podchain_cluster::Backend::rolled_out)).
	/// Read only for the deals [`awaiting_rollout`] names.
	pub rolled_out: BTreeSet<u64>,
	/// Pending deals whose acceptance succeeded in a best block, not final yet.
	pub accepted_in_best: BTreeSet<u64>,
	/// Deals the agent keeps state for (manifests, meters).
	pub stored: BTreeSet<u64>,
	/// Accept pending deals without an operator.
	pub auto_accept: bool,
	/// Blocks after acceptance to wait for a manifest.
	pub manifest_timeout_blocks: u32,
}

/// One thing to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
	/// Accept a pending deal on chain.
	Accept(u64),
	/// Run (or roll to) the manifest with this hash.
	Deploy {
		/// The deal.
		id: u64,
		/// The manifest.
		hash: Hash,
	},
	/// Acknowledge a manifest update on chain, once its pods run.
	Acknowledge {
		/// The deal.
		id: u64,
		/// The new manifest.
		hash: Hash,
	},
	/// Close the deal on chain: no valid manifest came in time.
	CloseManifestTimeout(u64),
	/// Remove the deal's objects from the cluster.
	Remove(u64),
	/// Drop the agent's state of a deal that is gone from the chain (after its last report).
	Forget(u64),
}

/// The actions that bring the cluster and the agent's state in line with the chain.
pub fn plan(input: &PlanInput) -> Vec<Action> {
	let mut actions = Vec::new();
	let on_chain: BTreeSet<u64> = input.deals.iter().map(|d| d.id).collect();
	for deal in &input.deals {
		let deployed = input.deployed.get(&deal.id);
		let held = input.manifests.get(&deal.id);
		match deal.state {
			ChainState::Pending => {
				// Accepted only once the agent holds the deal's manifest, verified against
				// the chain: a deal whose manifest never arrives is never accepted (its
				// publisher can cancel it for a full refund), and an accepted deal deploys
				// at once. A rent runs no manifest of its own.
				let runnable = deal.is_rent || held == Some(&deal.manifest_hash);
				if input.auto_accept && runnable {
					actions.push(Action::Accept(deal.id));
				}
				// Accepted in a best block: its pods start while the acceptance is finalized.
				// Pods of a pending deal whose acceptance is not known to be under way (it was
				// reorged away and not sent again, or the agent restarted) do not run unpaid.
				if input.accepted_in_best.contains(&deal.id) {
					if !deal.is_rent
						&& held == Some(&deal.manifest_hash)
						&& deployed != Some(&deal.manifest_hash)
					{
						actions.push(Action::Deploy { id: deal.id, hash: deal.manifest_hash });
					}
				} else if deployed.is_some() {
					actions.push(Action::Remove(deal.id));
				}
			}
			ChainState::Closing => {
				if deployed.is_some() {
					actions.push(Action::Remove(deal.id));
				}
			}
			ChainState::Active { accepted_at } | ChainState::OutOfFunds { accepted_at } => {
				if deal.is_rent {
					continue;
				}
				let update = deal.pending_manifest.filter(|h| held == Some(h));
				if let Some(hash) = update {
					// Acknowledged only once its pods run and are ready: a rollout still going
					// (or failed) is not claimed; a failed apply is retried.
					if deployed != Some(&hash) {
						actions.push(Action::Deploy { id: deal.id, hash });
					} else if input.rolled_out.contains(&deal.id) {
						actions.push(Action::Acknowledge { id: deal.id, hash });
					}
				} else if held == Some(&deal.manifest_hash) {
					if deployed != Some(&deal.manifest_hash) {
						actions.push(Action::Deploy { id: deal.id, hash: deal.manifest_hash });
					}
				} else if deployed.is_none()
					&& input.now >= accepted_at.saturating_add(input.manifest_timeout_blocks)
				{
					actions.push(Action::CloseManifestTimeout(deal.id));
				}
			}
		}
	}
	// Gone from finalized state: closed for good.
	for id in input.deployed.keys().filter(|id| !on_chain.contains(id)) {
		actions.push(Action::Remove(*id));
	}
	for id in input.stored.iter().filter(|id| !on_chain.contains(id)) {
		actions.push(Action::Forget(*id));
	}
	actions
}

/// The deals whose pending update is applied to the cluster and may be acknowledged once its
/// rollout completes, with the update's hash: what [`PlanInput::rolled_out`] must be read for.
pub fn awaiting_rollout(input: &PlanInput) -> Vec<(u64, Hash)> {
	input
		.deals
		.iter()
		.filter(|d| matches!(d.state, ChainState::Active { .. } | ChainState::OutOfFunds { .. }))
		.filter(|d| !d.is_rent)
		.filter_map(|d| {
			let hash = d.pending_manifest?;
			let applied = input.manifests.get(&d.id) == Some(&hash)
				&& input.deployed.get(&d.id) == Some(&hash);
			applied.then_some((d.id, hash))
		})
		.collect()
}

#[cfg(test)]
mod tests {
	use super::*;

	const A: Hash = [1; 32];
	const B: Hash = [2; 32];

	fn deal(id: u64, state: ChainState) -> ChainDeal {
		ChainDeal { id, is_rent: false, state, manifest_hash: A, pending_manifest: None }
	}

	fn input(deals: Vec<ChainDeal>) -> PlanInput {
		PlanInput {
			now: 100,
			deals,
			auto_accept: true,
			manifest_timeout_blocks: 50,
			..Default::default()
		}
	}

	#[test]
	fn pending_deals_are_accepted_only_when_allowed() {
		let mut input = input(vec![deal(1, ChainState::Pending)]);
		input.manifests.insert(1, A);
		assert_eq!(plan(&input), vec![Action::Accept(1)]);
		input.auto_accept = false;
		assert!(plan(&input).is_empty());
	}

	#[test]
	fn pending_deals_are_accepted_only_with_their_verified_manifest() {
		let mut input = input(vec![deal(1, ChainState::Pending)]);
		assert!(plan(&input).is_empty(), "no manifest yet: not accepted");
		// Another manifest than the deal's (a stale delivery) does not count.
		input.manifests.insert(1, B);
		assert!(plan(&input).is_empty());
		input.manifests.insert(1, A);
		assert_eq!(plan(&input), vec![Action::Accept(1)]);
		// However long it waits, a pending deal is never closed for its missing manifest.
		input.manifests.clear();
		input.now = 10_000;
		assert!(plan(&input).is_empty());
	}

	#[test]
	fn an_acceptance_in_a_best_block_deploys_before_it_is_final() {
		let mut input = input(vec![deal(1, ChainState::Pending)]);
		input.accepted_in_best.insert(1);
		assert!(plan(&input).is_empty(), "no manifest held: nothing to run");
		input.manifests.insert(1, B);
		assert!(plan(&input).is_empty(), "another manifest than the deal's");
		input.manifests.insert(1, A);
		// Accept stays planned (sending it again is deduplicated) until it is final.
		assert_eq!(plan(&input), vec![Action::Accept(1), Action::Deploy { id: 1, hash: A }]);
		input.deployed.insert(1, A);
		assert_eq!(plan(&input), vec![Action::Accept(1)], "deployed once");
		// Its acceptance reorged away and not under way any more: the pods do not run unpaid.
		input.accepted_in_best.clear();
		input.auto_accept = false;
		assert_eq!(plan(&input), vec![Action::Remove(1)]);
		// Final: an active deal running its manifest needs nothing.
		input.deals = vec![deal(1, ChainState::Active { accepted_at: 100 })];
		assert!(plan(&input).is_empty());
	}

	#[test]
	fn a_rent_accepted_in_a_best_block_runs_nothing() {
		let mut rent = deal(1, ChainState::Pending);
		rent.is_rent = true;
		let mut input = input(vec![rent]);
		input.accepted_in_best.insert(1);
		assert_eq!(plan(&input), vec![Action::Accept(1)]);
	}

	#[test]
	fn a_held_manifest_is_deployed_once() {
		let mut input = input(vec![deal(1, ChainState::Active { accepted_at: 90 })]);
		input.manifests.insert(1, A);
		assert_eq!(plan(&input), vec![Action::Deploy { id: 1, hash: A }]);
		input.deployed.insert(1, A);
		assert!(plan(&input).is_empty(), "running what the chain says: nothing to do");
	}

	#[test]
	fn a_missing_manifest_closes_the_deal_after_the_timeout() {
		let mut input = input(vec![deal(1, ChainState::Active { accepted_at: 60 })]);
		assert!(plan(&input).is_empty(), "still within 50 blocks");
		input.now = 110;
		assert_eq!(plan(&input), vec![Action::CloseManifestTimeout(1)]);
		// A manifest that does not match the chain's hash does not count.
		input.manifests.insert(1, B);
		assert_eq!(plan(&input), vec![Action::CloseManifestTimeout(1)]);
	}

	#[test]
	fn an_update_rolls_the_pods_then_is_acknowledged() {
		let mut d = deal(1, ChainState::Active { accepted_at: 10 });
		d.pending_manifest = Some(B);
		let mut input = input(vec![d]);
		input.deployed.insert(1, A);
		input.manifests.insert(1, A);
		// The new manifest has not arrived: keep running the old one.
		assert!(plan(&input).is_empty());
		input.manifests.insert(1, B);
		assert!(awaiting_rollout(&input).is_empty());
		assert_eq!(plan(&input), vec![Action::Deploy { id: 1, hash: B }]);
		// Applied: the rollout is read, and until it completes nothing is claimed (and the
		// pods are not applied again).
		input.deployed.insert(1, B);
		assert_eq!(awaiting_rollout(&input), vec![(1, B)]);
		assert!(plan(&input).is_empty());
		input.rolled_out.insert(1);
		assert_eq!(plan(&input), vec![Action::Acknowledge { id: 1, hash: B }]);
	}

	#[test]
	fn only_applied_updates_await_their_rollout() {
		let mut updated = deal(1, ChainState::Active { accepted_at: 10 });
		updated.pending_manifest = Some(B);
		let mut closing = deal(2, ChainState::Closing);
		closing.pending_manifest = Some(B);
		let mut rent = deal(3, ChainState::Active { accepted_at: 10 });
		rent.pending_manifest = Some(B);
		rent.is_rent = true;
		let mut input = input(vec![updated, closing, rent, deal(4, ChainState::Pending)]);
		for id in 1..=4 {
			input.manifests.insert(id, B);
			input.deployed.insert(id, B);
		}
		assert_eq!(awaiting_rollout(&input), vec![(1, B)]);
		// A rollout read for a deal without an update acknowledges nothing.
		input.rolled_out.extend([2, 3, 4]);
		input.auto_accept = false;
		// (The pending deal's pods go: its acceptance is not under way.)
		assert_eq!(plan(&input), vec![Action::Remove(2), Action::Remove(4)]);
	}

	#[test]
	fn out_of_funds_deals_keep_running_through_grace() {
		let mut input = input(vec![deal(1, ChainState::OutOfFunds { accepted_at: 10 })]);
		input.manifests.insert(1, A);
		input.deployed.insert(1, A);
		assert!(plan(&input).is_empty());
	}

	#[test]
	fn only_final_decisions_tear_down() {
		let mut input = input(vec![deal(1, ChainState::Closing), deal(2, ChainState::Pending)]);
		input.auto_accept = false;
		input.deployed.insert(1, A);
		input.deployed.insert(3, A); // closed and gone from the chain
		input.stored.extend([1, 3, 4]);
		assert_eq!(
			plan(&input),
			vec![Action::Remove(1), Action::Remove(3), Action::Forget(3), Action::Forget(4)]
		);
	}

	#[test]
	fn rents_run_nothing() {
		let mut rent = deal(1, ChainState::Active { accepted_at: 0 });
		rent.is_rent = true;
		assert!(plan(&input(vec![rent])).is_empty());
	}

	#[test]
	fn rents_are_accepted_without_a_manifest() {
		let mut rent = deal(1, ChainState::Pending);
		rent.is_rent = true;
		assert_eq!(plan(&input(vec![rent])), vec![Action::Accept(1)]);
	}
}
