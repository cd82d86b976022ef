//! Submitting transactions with a known nonce and a bounded life.
//!
//! Callers that must later tell whether a transaction can still land (the agent's usage
//! reports) need its nonce and its last valid block *before* it is sent. [`Submitter`] picks
//! the nonce from the node's transaction pool (so several transactions can be in flight) and
//! makes every transaction mortal, and it sends one transaction at a time so two never take
//! the same nonce.

use crate::{AccountKey, BlockNumber, ChainConfig, ChainError, Node};
use subxt::{config::DefaultExtrinsicParamsBuilder, tx::Payload};
use tokio::sync::Mutex;

/// Blocks a transaction stays valid for, from the finalized block it was made at. A power of
/// two, so that it is also the era's period exactly.
pub const MORTALITY_BLOCKS: u32 = 64;

/// A transaction handed to the node.
pub struct Submitted {
	/// The nonce it was signed with.
	pub nonce: u64,
	/// The last block it can be included in.
	pub valid_until: BlockNumber,
	/// Its progress through the pool and into blocks.
	pub progress: subxt::tx::TransactionProgress<
		ChainConfig,
		subxt::client::OnlineClientAtBlockImpl<ChainConfig>,
	>,
}

impl Submitted {
	/// Waits until the transaction is in a finalized block and succeeded, as
	/// [`wait_for_finalized_success`](subxt::tx::TransactionProgress::wait_for_finalized_success)
	/// does, and calls `in_best` once, the first time it succeeds in a best block (which may
	/// still be reorged away: only what depends on nobody but the caller should act on it).
	pub async fn finalized_success(
		self,
		in_best: impl FnOnce(),
	) -> Result<
		subxt::extrinsics::ExtrinsicEvents<ChainConfig>,
		subxt::error::TransactionFinalizedSuccessError,
	> {
		use subxt::{
			error::{TransactionProgressError as Progress, TransactionStatusError as Status},
			tx::TransactionStatus,
		};
		let mut progress = self.progress;
		let mut in_best = Some(in_best);
		while let Some(status) = progress.next().await {
			match status? {
				TransactionStatus::InBestBlock(block) => match in_best.take() {
					Some(call) if block.wait_for_success().await.is_ok() => call(),
					not_yet => in_best = not_yet,
				},
				TransactionStatus::InFinalizedBlock(block) => {
					return Ok(block.wait_for_success().await?)
				}
				TransactionStatus::Error { message } => {
					return Err(Progress::from(Status::Error(message)).into())
				}
				TransactionStatus::Invalid { message } => {
					return Err(Progress::from(Status::Invalid(message)).into())
				}
				TransactionStatus::Dropped { message } => {
					return Err(Progress::from(Status::Dropped(message)).into())
				}
				_ => {}
			}
		}
		Err(Progress::UnexpectedEndOfTransactionStatusStream.into())
	}
}

/// Sends one account's transactions, one at a time.
pub struct Submitter {
	key: AccountKey,
	lock: Mutex<()>,
}

impl Submitter {
	/// A submitter signing with `key`.
	pub fn new(key: AccountKey) -> Self {
		Self { key, lock: Mutex::new(()) }
	}

	/// The signing key.
	pub fn key(&self) -> &AccountKey {
		&self.key
	}

	/// The nonce the next transaction of this account gets: the pool's view, which counts the
	/// account's transactions that are pending.
	pub async fn next_nonce(&self, node: &Node) -> Result<u64, ChainError> {
		node.rpc.system_account_next_index(&self.key.account_id()).await.map_err(ChainError::rpc)
	}

	/// Signs `call` and hands it to the node. `before_send` runs with the nonce and the last
	/// valid block once they are fixed and before anything is sent (to record them durably);
	/// if it fails, nothing is sent.
	pub async fn submit<Call, E>(
		&self,
		node: &Node,
		call: &Call,
		before_send: impl FnOnce(u64, BlockNumber) -> Result<(), E>,
	) -> Result<Result<Submitted, E>, ChainError>
	where
		Call: Payload,
	{
		let _one_at_a_time = self.lock.lock().await;
		let at = node.finalized().await?;
		let nonce = self.next_nonce(node).await?;
		let valid_until = at.block_number().saturating_add(u64::from(MORTALITY_BLOCKS));
		let valid_until = BlockNumber::try_from(valid_until).unwrap_or(BlockNumber::MAX);
		let params = DefaultExtrinsicParamsBuilder::<ChainConfig>::new()
			.nonce(nonce)
			.mortal(u64::from(MORTALITY_BLOCKS))
			.build();
		let signed = at
			.transactions()
			.create_signed(call, self.key.pair(), params)
			.await
			.map_err(ChainError::rpc)?;
		if let Err(e) = before_send(nonce, valid_until) {
			return Ok(Err(e));
		}
		let progress = signed.submit_and_watch().await.map_err(ChainError::rpc)?;
		Ok(Ok(Submitted { nonce, valid_until, progress }))
	}

	/// Signs and sends `call`, and waits until it is in a finalized block and succeeded.
	pub async fn submit_and_finalize<Call: Payload>(
		&self,
		node: &Node,
		call: &Call,
	) -> Result<subxt::extrinsics::ExtrinsicEvents<ChainConfig>, ChainError> {
		let submitted = self
			.submit(node, call, |_, _| Ok::<(), std::convert::Infallible>(()))
			.await?
			.unwrap_or_else(|never| match never {});
		submitted.progress.wait_for_finalized_success().await.map_err(ChainError::rpc)
	}
}
