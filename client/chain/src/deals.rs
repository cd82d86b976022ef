//! Deals as the chain holds them, read at one block.

use crate::{runtime, AccountId, AtBlock, Balance, BlockNumber, ChainError, DeploymentId};

pub use runtime::runtime_types::pallet_market::types::{
	BillingMode, Charges, CloseReason, DealKind, DeploymentState, UsageReport,
};

/// A deal (deployment or rent) as stored by the market.
pub type Deal =
	runtime::runtime_types::pallet_market::types::Deployment<AccountId, Balance, BlockNumber>;

/// The open deal `id`, if any.
pub async fn deal(at: &AtBlock, id: DeploymentId) -> Result<Option<Deal>, ChainError> {
	let deployments =
		at.storage().entry(runtime::storage().market().deployments()).map_err(ChainError::rpc)?;
	match deployments.try_fetch((id,)).await.map_err(ChainError::rpc)? {
		Some(value) => Ok(Some(value.decode().map_err(ChainError::rpc)?)),
		None => Ok(None),
	}
}

/// The open deals of `provider`, by id.
pub async fn of_provider(
	at: &AtBlock,
	provider: &AccountId,
) -> Result<Vec<(DeploymentId, Deal)>, ChainError> {
	indexed(at, runtime::storage().market().provider_deployments(), provider).await
}

/// The open deals of `publisher`, by id.
pub async fn of_publisher(
	at: &AtBlock,
	publisher: &AccountId,
) -> Result<Vec<(DeploymentId, Deal)>, ChainError> {
	indexed(at, runtime::storage().market().publisher_deployments(), publisher).await
}

/// The open deals listed for `party` in a `(party, deal id)` index of the market.
async fn indexed<Index>(
	at: &AtBlock,
	index: Index,
	party: &AccountId,
) -> Result<Vec<(DeploymentId, Deal)>, ChainError>
where
	Index: subxt::storage::Address<KeyParts = (AccountId, DeploymentId)>,
{
	let index = at.storage().entry(index).map_err(ChainError::rpc)?;
	let mut ids = Vec::new();
	let mut entries = index.iter((*party,)).await.map_err(ChainError::rpc)?;
	while let Some(entry) = entries.next().await {
		let entry = entry.map_err(ChainError::rpc)?;
		let (_, id) = entry.key().map_err(ChainError::rpc)?.decode().map_err(ChainError::rpc)?;
		ids.push(id);
	}
	deals(at, ids).await
}

/// The deals with these ids that are still open, sorted by id.
async fn deals(
	at: &AtBlock,
	mut ids: Vec<DeploymentId>,
) -> Result<Vec<(DeploymentId, Deal)>, ChainError> {
	ids.sort_unstable();
	let mut found = Vec::with_capacity(ids.len());
	for id in ids {
		if let Some(deal) = deal(at, id).await? {
			found.push((id, deal));
		}
	}
	Ok(found)
}
