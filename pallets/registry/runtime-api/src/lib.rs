//! Runtime API of the provider registry, for publishers and their tools.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

use alloc::vec::Vec;
use codec::Codec;
pub use pallet_registry::{ProviderMatch, ProviderView, WorkloadRequirements};

sp_api::decl_runtime_apis! {
	/// Capacity planning and provider lookup.
	pub trait RegistryApi<AccountId, Balance, BlockNumber>
	where
		AccountId: Codec,
		Balance: Codec,
		BlockNumber: Codec,
	{
		/// Active providers that can host a workload now, cheapest first, each with its quote.
		/// This is how publishers pick a provider automatically.
		fn match_providers(requirements: WorkloadRequirements<Balance>) -> Vec<ProviderMatch<AccountId, Balance>>;

		/// A provider's record, with its attestation judged against the allowlist now.
		fn provider(who: AccountId) -> Option<ProviderView<Balance, BlockNumber>>;
	}
}
