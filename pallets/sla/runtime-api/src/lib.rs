//! Runtime API of the SLA pallet, for publishers, providers and their tools.

#![cfg_attr(not(feature = "std"), no_std)]

use codec::Codec;
pub use pallet_sla::{SlaOffer, Standing};

sp_api::decl_runtime_apis! {
	/// Provider standing and SLA offers.
	pub trait SlaApi<AccountId, Balance>
	where
		AccountId: Codec,
		Balance: Codec,
	{
		/// A provider's reputation (share of probe windows met, recent ones weighing more),
		/// quarantine and window counts. A provider never probed has full reputation.
		fn standing(provider: AccountId) -> Standing;

		/// The SLA terms a provider offers, if any.
		fn offer(provider: AccountId) -> Option<SlaOffer<Balance>>;
	}
}
