//! Runtime API of the market, for publishers, providers and their tools.

#![cfg_attr(not(feature = "std"), no_std)]

use codec::Codec;
pub use pallet_market::{Bill, Deployment, DeploymentId};

sp_api::decl_runtime_apis! {
	/// Deployments and their bills. Version 2: bills carry debt and the block a reserved
	/// deal's escrow pays up to; deployments carry debt and their egress limit.
	#[api_version(2)]
	pub trait MarketApi<AccountId, Balance, BlockNumber>
	where
		AccountId: Codec,
		Balance: Codec,
		BlockNumber: Codec,
	{
		/// A deployment's running totals per resource, its escrow and debt, what settling it
		/// now would add, and when a reserved deal's escrow runs out. The agent and the CLI build itemised bills from this and the `Settled`
		/// events.
		fn bill(id: DeploymentId) -> Option<Bill<Balance, BlockNumber>>;

		/// An open deployment.
		fn deployment(id: DeploymentId) -> Option<Deployment<AccountId, Balance, BlockNumber>>;
	}
}
