//! # podchain runtime
//!
//! The state machine of podchain, a marketplace for running containers. Alongside the usual
//! FRAME pallets (system, timestamp, Aura and GRANDPA consensus, balances, transaction payment,
//! sudo) it holds podchain's own:
//!
//! - `BlockTime` ([`pallet_block_time`]): the slot duration, fixed at genesis (1 s on a dev
//!   chain, 6 s on a network).
//! - `Registry` ([`pallet_registry`]): compute providers, their capacity, prices, region,
//!   endpoints and TEE attestation.
//! - `Market` ([`pallet_market`]): deployments, escrow, metered and reserved billing.
//! - `ProviderStaking` ([`pallet_provider_staking`]): providers' bonded stake, the stake
//!   required for committed capacity, slashing.
//! - `Sla` ([`pallet_sla`]): SLA terms, validators' probes of tenants' health checks,
//!   heartbeats, credits bounded by the bill, quarantine and reputation.
//! - `StorageProofs` ([`pallet_storage_proofs`]): Merkle roots of deals' volume snapshots,
//!   publishers' challenges of random chunks, and the proofs that answer them.
//!
//! The native token is POD, with 12 decimals.

#![cfg_attr(not(feature = "std"), no_std)]
// `construct_runtime!` does a lot of recursion and requires us to increase the limit.
#![recursion_limit = "256"]

#[cfg(feature = "std")]
include!(concat!(env!("OUT_DIR"), "/wasm_binary.rs"));

extern crate alloc;

use alloc::vec::Vec;

pub mod apis;
#[cfg(feature = "runtime-benchmarks")]
mod benchmarks;
pub mod configs;
mod genesis_config_presets;
#[cfg(test)]
mod tests;

pub use genesis_config_presets::{DEVELOPMENT_PRESET, LOCAL_TESTNET_PRESET};

use sp_runtime::{
	generic, impl_opaque_keys,
	traits::{BlakeTwo256, IdentifyAccount, Verify},
	MultiAddress, MultiSignature,
};
use sp_version::RuntimeVersion;

pub use frame_system::Call as SystemCall;
pub use pallet_balances::Call as BalancesCall;
pub use pallet_market::Call as MarketCall;
pub use pallet_registry::Call as RegistryCall;
pub use pallet_sla::Call as SlaCall;
pub use pallet_timestamp::Call as TimestampCall;
#[cfg(any(feature = "std", test))]
pub use sp_runtime::BuildStorage;

/// Opaque types, so the node's consensus and networking code need not know the runtime's
/// extrinsic format.
pub mod opaque {
	use super::*;
	use sp_runtime::traits::Hash as HashT;

	pub use sp_runtime::OpaqueExtrinsic as UncheckedExtrinsic;

	/// Opaque block header type.
	pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
	/// Opaque block type.
	pub type Block = generic::Block<Header, UncheckedExtrinsic>;
	/// Opaque block identifier type.
	pub type BlockId = generic::BlockId<Block>;
	/// Opaque block hash type.
	pub type Hash = <BlakeTwo256 as HashT>::Output;
}

impl_opaque_keys! {
	/// The keys a validator holds: Aura for block production, GRANDPA for finality, and the
	/// SLA prober key its off-chain worker signs uptime probes with.
	pub struct SessionKeys {
		pub aura: Aura,
		pub grandpa: Grandpa,
		pub sla: Sla,
	}
}

#[sp_version::runtime_version]
pub const VERSION: RuntimeVersion = RuntimeVersion {
	spec_name: alloc::borrow::Cow::Borrowed("podchain"),
	impl_name: alloc::borrow::Cow::Borrowed("podchain"),
	authoring_version: 1,
	spec_version: 104,
	impl_version: 1,
	apis: apis::RUNTIME_API_VERSIONS,
	transaction_version: 2,
	system_version: 1,
};

mod block_times {
	/// Slot duration of a multi-validator network, in milliseconds. A chain may set another at
	/// genesis (`pallet_block_time`); the development preset uses 1 s.
	pub const NETWORK_SLOT_DURATION: u64 = 6000;
	/// Slot duration of the development chain, in milliseconds.
	pub const DEV_SLOT_DURATION: u64 = 1000;
}
pub use block_times::*;

/// Balances in planck: 1 POD = 10^12 planck.
pub mod currency {
	use super::Balance;
	/// Decimals of POD.
	pub const DECIMALS: u8 = 12;
	/// One POD.
	pub const POD: Balance = 1_000_000_000_000;
	/// One thousandth of a POD.
	pub const MILLI_POD: Balance = POD / 1_000;
	/// One millionth of a POD.
	pub const MICRO_POD: Balance = POD / 1_000_000;
	/// Existential deposit: accounts below it are reaped.
	pub const EXISTENTIAL_DEPOSIT: Balance = MILLI_POD;
}

/// Alias to 512-bit hash when used in the context of a transaction signature on the chain.
pub type Signature = MultiSignature;

/// An account: the public key of the signing scheme.
pub type AccountId = <<Signature as Verify>::Signer as IdentifyAccount>::AccountId;

/// Balance of an account.
pub type Balance = u128;

/// Index of a transaction in the chain.
pub type Nonce = u32;

/// A hash of some data used by the chain.
pub type Hash = sp_core::H256;

/// An index to a block.
pub type BlockNumber = u32;

/// The address format for describing accounts.
pub type Address = MultiAddress<AccountId, ()>;

/// Block header type as expected by this runtime.
pub type Header = generic::Header<BlockNumber, BlakeTwo256>;

/// Block type as expected by this runtime.
pub type Block = generic::Block<Header, UncheckedExtrinsic>;

/// The transaction extensions checked and applied for every extrinsic.
pub type TxExtension = (
	frame_system::CheckNonZeroSender<Runtime>,
	frame_system::CheckSpecVersion<Runtime>,
	frame_system::CheckTxVersion<Runtime>,
	frame_system::CheckGenesis<Runtime>,
	frame_system::CheckEra<Runtime>,
	frame_system::CheckNonce<Runtime>,
	frame_system::CheckWeight<Runtime>,
	pallet_transaction_payment::ChargeTransactionPayment<Runtime>,
	frame_metadata_hash_extension::CheckMetadataHash<Runtime>,
	frame_system::WeightReclaim<Runtime>,
);

/// Unchecked extrinsic type as expected by this runtime.
pub type UncheckedExtrinsic =
	generic::UncheckedExtrinsic<Address, RuntimeCall, Signature, TxExtension>;

/// The payload being signed in transactions.
pub type SignedPayload = generic::SignedPayload<RuntimeCall, TxExtension>;

/// Migrations to run on runtime upgrade, aside from the pallets' own.
#[allow(unused_parens)]
type Migrations = ();

/// Executive: dispatches to the pallets.
pub type Executive = frame_executive::Executive<
	Runtime,
	Block,
	frame_system::ChainContext<Runtime>,
	Runtime,
	AllPalletsWithSystem,
	Migrations,
>;

#[frame_support::runtime]
mod runtime {
	#[runtime::runtime]
	#[runtime::derive(
		RuntimeCall,
		RuntimeEvent,
		RuntimeError,
		RuntimeOrigin,
		RuntimeFreezeReason,
		RuntimeHoldReason,
		RuntimeSlashReason,
		RuntimeLockId,
		RuntimeTask,
		RuntimeViewFunction
	)]
	pub struct Runtime;

	#[runtime::pallet_index(0)]
	pub type System = frame_system;

	#[runtime::pallet_index(1)]
	pub type Timestamp = pallet_timestamp;

	#[runtime::pallet_index(2)]
	pub type Aura = pallet_aura;

	#[runtime::pallet_index(3)]
	pub type Grandpa = pallet_grandpa;

	#[runtime::pallet_index(4)]
	pub type Balances = pallet_balances;

	#[runtime::pallet_index(5)]
	pub type TransactionPayment = pallet_transaction_payment;

	#[runtime::pallet_index(6)]
	pub type Sudo = pallet_sudo;

	#[runtime::pallet_index(7)]
	pub type BlockTime = pallet_block_time;

	#[runtime::pallet_index(10)]
	pub type Registry = pallet_registry;

	#[runtime::pallet_index(11)]
	pub type Market = pallet_market;

	#[runtime::pallet_index(12)]
	pub type ProviderStaking = pallet_provider_staking;

	#[runtime::pallet_index(13)]
	pub type Sla = pallet_sla;

	#[runtime::pallet_index(14)]
	pub type StorageProofs = pallet_storage_proofs;
}
