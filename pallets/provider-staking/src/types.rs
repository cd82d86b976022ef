//! Types of provider staking: a provider's ledger and the stake the chain asks per resource.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use core::fmt::Debug;
use frame_support::{
	traits::Get, BoundedVec, CloneNoBound, DebugNoBound, EqNoBound, PartialEqNoBound,
};
use scale_info::TypeInfo;
use sp_runtime::traits::{CheckedAdd, CheckedMul, Saturating, Zero};

pub use podchain_primitives::{Resources, SlashOutcome};

/// Stake on its way out: `value` becomes withdrawable at block `unlock_at`.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub struct UnlockChunk<Balance, BlockNumber> {
	/// Amount unbonding in this chunk; never zero in storage.
	pub value: Balance,
	/// First block at which the chunk can be withdrawn.
	pub unlock_at: BlockNumber,
}

/// A provider's stake and the capacity the market has committed on it.
///
/// All of `active` and `unlocking` is held from the provider under
/// [`HoldReason::Stake`](crate::HoldReason::Stake).
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, Encode, Decode, MaxEncodedLen, TypeInfo, DebugNoBound,
)]
#[scale_info(skip_type_params(MaxChunks))]
#[codec(mel_bound(Balance: MaxEncodedLen, BlockNumber: MaxEncodedLen))]
pub struct StakeLedger<
	Balance: Clone + PartialEq + Eq + Debug,
	BlockNumber: Clone + PartialEq + Eq + Debug,
	MaxChunks: Get<u32>,
> {
	/// Bonded stake: what backs commitments and what the provider may unbond.
	pub active: Balance,
	/// Unbonding chunks, sorted by `unlock_at` (strictly increasing). Still slashable.
	pub unlocking: BoundedVec<UnlockChunk<Balance, BlockNumber>, MaxChunks>,
	/// Capacity the market has committed to running deals
	/// (through [`StakeCollateral`](podchain_primitives::StakeCollateral)).
	pub committed: Resources,
}

impl<Balance, BlockNumber, MaxChunks> StakeLedger<Balance, BlockNumber, MaxChunks>
where
	Balance: Copy + PartialEq + Eq + Debug + Saturating + Zero,
	BlockNumber: Clone + PartialEq + Eq + Debug,
	MaxChunks: Get<u32>,
{
	/// A ledger with `active` bonded, nothing unbonding and nothing committed.
	pub fn new(active: Balance) -> Self {
		Self { active, unlocking: BoundedVec::new(), committed: Resources::default() }
	}

	/// Sum of the unbonding chunks (saturating).
	pub fn unlocking_total(&self) -> Balance {
		self.unlocking.iter().fold(Balance::zero(), |sum, chunk| sum.saturating_add(chunk.value))
	}

	/// Everything the ledger holds: active plus unbonding (saturating).
	pub fn total(&self) -> Balance {
		self.active.saturating_add(self.unlocking_total())
	}

	/// True when the ledger holds no stake and tracks no commitment: then it is not stored.
	pub fn is_empty(&self) -> bool {
		self.total().is_zero() && self.committed.is_zero()
	}
}

/// Stake a provider must keep bonded for the capacity it has committed to deals.
///
/// The requirement for committed resources `r` is
/// `base + per_cpu_millicore * r.cpu_millicores + per_memory_mib * r.memory_mib +
/// per_storage_gib * r.storage_gib + per_gpu * r.gpus`, and zero when nothing is committed:
/// `base` applies only once some capacity is committed, so a provider without deals never
/// needs stake.
#[derive(
	Clone,
	Copy,
	Default,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
	serde::Serialize,
	serde::Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub struct StakeRequirement<Balance> {
	/// Flat amount once anything is committed.
	pub base: Balance,
	/// Per committed CPU millicore.
	pub per_cpu_millicore: Balance,
	/// Per committed MiB of memory.
	pub per_memory_mib: Balance,
	/// Per committed GiB of storage.
	pub per_storage_gib: Balance,
	/// Per committed GPU.
	pub per_gpu: Balance,
}

impl<Balance: Copy + Zero + CheckedAdd + CheckedMul + From<u32>> StakeRequirement<Balance> {
	/// Stake required for committed resources `r`; zero when `r` is zero, `None` on overflow.
	pub fn for_resources(&self, r: &Resources) -> Option<Balance> {
		if r.is_zero() {
			return Some(Balance::zero());
		}
		let cpu = self.per_cpu_millicore.checked_mul(&r.cpu_millicores.into())?;
		let memory = self.per_memory_mib.checked_mul(&r.memory_mib.into())?;
		let storage = self.per_storage_gib.checked_mul(&r.storage_gib.into())?;
		let gpu = self.per_gpu.checked_mul(&r.gpus.into())?;
		self.base.checked_add(&cpu)?.checked_add(&memory)?.checked_add(&storage)?.checked_add(&gpu)
	}
}
