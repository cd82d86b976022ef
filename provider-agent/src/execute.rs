//! Carrying out the plan's actions: chain transactions and cluster changes.

use crate::metrics::kind;
use crate::{
	agent::{ActionKey, Agent},
	chain::Snapshot,
	plan::{Action, Hash},
};
use podchain_chain::{deals::CloseReason, runtime, tx::Submitted, Node};
use podchain_cluster::objects;
use std::collections::BTreeMap;

impl Agent {
	/// Carries out one action; failures are logged and counted, and the next round retries.
	pub(crate) async fn execute(&self, node: &Node, snapshot: &Snapshot, action: Action) {
		match action {
			Action::Accept(id) => {
				let call = runtime::tx().market().accept_deployment(id);
				self.send(node, ActionKey::Accept(id), "accept", &call).await;
			}
			Action::Acknowledge { id, hash } => {
				let call = runtime::tx().market().acknowledge_manifest(id, hash);
				self.send(node, ActionKey::Acknowledge(id), "acknowledge", &call).await;
			}
			Action::CloseManifestTimeout(id) => {
				tracing::warn!(deal = id, "no valid manifest in time: closing the deal");
				let call =
					runtime::tx().market().close_deployment(id, CloseReason::ManifestTimeout);
				self.send(node, ActionKey::Close(id), "close_manifest_timeout", &call).await;
			}
			Action::Deploy { id, hash } => {
				let ok = self.deploy(snapshot, id, hash).await;
				self.metrics.action("deploy", ok);
			}
			Action::Remove(id) => {
				// A last sample, so the final report counts usage up to the end (a deal gone from
				// the chain has no report to come, nor GPUs to count).
				let gpus = snapshot.deals.get(&id).map_or(0, |d| d.reserved.gpus);
				self.sample_deal(id, gpus).await;
				let result = self.backend.remove(id).await;
				if let Err(e) = &result {
					tracing::warn!(deal = id, error = %e, "cannot remove the deal's pods yet");
				} else {
					tracing::info!(deal = id, "removed the deal's pods");
				}
				self.metrics.action("remove", result.is_ok());
			}
			Action::Forget(id) => {
				let in_flight = self.store.in_flight().ok().flatten();
				if in_flight.is_some_and(|batch| batch.lines.iter().any(|l| l.deal == id)) {
					return; // after the report in flight settles
				}
				let result = self.store.forget(id);
				self.vault.forget(id);
				if let Some(images) = &self.images {
					if let Err(e) = images.release(id) {
						self.metrics.error("images");
						tracing::error!(deal = id, error = %e, "cannot release the deal's images");
					}
				}
				if let Err(e) = &result {
					tracing::error!(deal = id, error = %e, "cannot forget the deal");
				} else {
					tracing::info!(deal = id, "deal ended: forgot its manifest and meter");
				}
				self.metrics.action("forget", result.is_ok());
			}
		}
	}

	/// Stages the images `manifest`'s publisher delivered, returning the reference each runs
	/// by; `None` if one cannot be staged now (the next round retries).
	async fn stage_images(
		&self,
		id: u64,
		manifest: &podchain_manifest::Manifest,
	) -> Option<BTreeMap<[u8; 32], String>> {
		let mut staged = BTreeMap::new();
		for image in manifest.delivered_images() {
			let images = self.images.as_ref()?;
			match self.backend.stage_image(id, image, images.archive(image.digest)).await {
				Ok(reference) => {
					staged.insert(image.digest, reference);
				}
				Err(e) => {
					self.metrics.images.get_or_create(&kind("stage_failed")).inc();
					tracing::error!(deal = id, image = %image.name, error = %e, "cannot stage the deal's image");
					return None;
				}
			}
		}
		Some(staged)
	}

	/// Runs the held manifest `hash` for deal `id`.
	async fn deploy(&self, snapshot: &Snapshot, id: u64, hash: Hash) -> bool {
		let Some(deal) = snapshot.deals.get(&id) else { return false };
		let manifest = match self.vault.get(id) {
			Ok(Some((held, manifest))) if held == hash => manifest,
			Ok(_) => return false, // replaced meanwhile: the next round deploys the new one
			Err(e) => {
				self.metrics.error("store");
				tracing::error!(deal = id, error = %e, "cannot read the deal's manifest");
				return false;
			}
		};
		let Some(images) = self.stage_images(id, &manifest).await else { return false };
		let objects =
			match objects::build(&self.specs.spec(deal, manifest, hash, images), &self.specs.build)
			{
				Ok(objects) => objects,
				Err(e) => {
					tracing::error!(deal = id, error = %e, "cannot build the deal's objects");
					return false;
				}
			};
		match self.backend.apply(&objects).await {
			Ok(()) => {
				tracing::info!(deal = id, manifest = %objects::manifest_hash_hex(&hash), "deployed");
				true
			}
			Err(e) => {
				tracing::warn!(deal = id, error = %e, transient = e.is_transient(), "deploy failed");
				false
			}
		}
	}

	/// Sends a chain action unless it was sent and may still land.
	async fn send<Call: podchain_chain::subxt::tx::Payload>(
		&self,
		node: &Node,
		key: ActionKey,
		label: &'static str,
		call: &Call,
	) {
		if self.sent.lock().is_ok_and(|sent| sent.contains_key(&key)) {
			return;
		}
		let submitted =
			self.submitter.submit(node, call, |_, _| Ok::<(), std::convert::Infallible>(())).await;
		match submitted {
			Ok(Ok(submitted)) => {
				if let Ok(mut sent) = self.sent.lock() {
					sent.insert(key, submitted.valid_until);
				}
				tracing::info!(action = label, ?key, nonce = submitted.nonce, "sent");
				self.watch(key, label, submitted);
			}
			Ok(Err(never)) => match never {},
			Err(e) => {
				self.metrics.action(label, false);
				tracing::warn!(action = label, ?key, error = %e, "cannot send");
			}
		}
	}

	/// Logs how a sent action ends. One that never made it into a block may be sent again
	/// at once; one that failed in a block waits for its mortality to pass (the next round
	/// may see why).
	///
	/// An acceptance that succeeds in a best block lets the deal deploy at once, a block of
	/// finality earlier: the pods are the provider's own to run, and if the block were reorged
	/// away the deal stays pending (accepted again) or ends (its pods removed).
	fn watch(&self, key: ActionKey, label: &'static str, submitted: Submitted) {
		let metrics = self.metrics.clone();
		let sent = self.sent_handle();
		let accepted_in_best = self.accepted_in_best.clone();
		let wake = self.wake.clone();
		tokio::spawn(async move {
			let in_best = move || {
				if let ActionKey::Accept(id) = key {
					if let Ok(mut accepted) = accepted_in_best.lock() {
						accepted.insert(id);
					}
					wake.notify_one();
				}
			};
			match submitted.finalized_success(in_best).await {
				Ok(_) => {
					metrics.action(label, true);
					tracing::info!(action = label, ?key, "final on chain");
				}
				Err(e) => {
					metrics.action(label, false);
					tracing::warn!(action = label, ?key, error = %e, "failed");
					if !matches!(e, podchain_chain::subxt::error::TransactionFinalizedSuccessError::SuccessError(_)) {
						if let Ok(mut sent) = sent.lock() {
							sent.remove(&key);
						}
					}
				}
			}
		});
	}
}
