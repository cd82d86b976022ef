//! Types and traits shared by podchain's pallets.
//!
//! Pallets never read each other's storage: the market asks the registry to reserve capacity
//! and the provider-staking pallet to commit stake; the registry asks the market whether a
//! provider still has deals and the SLA pallet how a provider stands; the SLA pallet asks
//! provider-staking to slash. All through the traits here. Each trait has a `()`
//! implementation so a pallet can run alone in tests and early runtimes.

#![cfg_attr(not(feature = "std"), no_std)]

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;
use sp_runtime::{traits::ConstU32, BoundedVec};
use sp_runtime::{
	traits::{CheckedAdd, CheckedMul, Zero},
	DispatchError, DispatchResult, Permill,
};

extern crate alloc;
use alloc::vec::Vec;

/// Identifier of a deal (a deployment or a rent), assigned by the market in creation order.
pub type DealId = u64;

/// Compute resources: what a provider sells, what a workload asks for, what a deal reserves.
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
)]
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "std", serde(rename_all = "camelCase"))]
pub struct Resources {
	/// CPU in millicores (1000 = one core).
	pub cpu_millicores: u32,
	/// Memory in MiB.
	pub memory_mib: u32,
	/// Persistent storage in GiB.
	pub storage_gib: u32,
	/// Number of GPUs.
	pub gpus: u32,
}

impl Resources {
	/// True when no resource is asked for at all.
	pub fn is_zero(&self) -> bool {
		*self == Self::default()
	}

	/// True when some CPU, memory or storage is present: GPUs alone cannot run a pod.
	pub fn has_compute(&self) -> bool {
		self.cpu_millicores > 0 || self.memory_mib > 0 || self.storage_gib > 0
	}

	/// True when every resource of `self` fits in `other`.
	pub fn fits_in(&self, other: &Self) -> bool {
		self.cpu_millicores <= other.cpu_millicores
			&& self.memory_mib <= other.memory_mib
			&& self.storage_gib <= other.storage_gib
			&& self.gpus <= other.gpus
	}

	/// Sum of two resource sets, `None` on overflow.
	pub fn checked_add(&self, other: &Self) -> Option<Self> {
		Some(Self {
			cpu_millicores: self.cpu_millicores.checked_add(other.cpu_millicores)?,
			memory_mib: self.memory_mib.checked_add(other.memory_mib)?,
			storage_gib: self.storage_gib.checked_add(other.storage_gib)?,
			gpus: self.gpus.checked_add(other.gpus)?,
		})
	}

	/// Difference of two resource sets, `None` if any resource would go below zero.
	pub fn checked_sub(&self, other: &Self) -> Option<Self> {
		Some(Self {
			cpu_millicores: self.cpu_millicores.checked_sub(other.cpu_millicores)?,
			memory_mib: self.memory_mib.checked_sub(other.memory_mib)?,
			storage_gib: self.storage_gib.checked_sub(other.storage_gib)?,
			gpus: self.gpus.checked_sub(other.gpus)?,
		})
	}

	/// Difference of two resource sets, each resource floored at zero.
	pub fn saturating_sub(&self, other: &Self) -> Self {
		Self {
			cpu_millicores: self.cpu_millicores.saturating_sub(other.cpu_millicores),
			memory_mib: self.memory_mib.saturating_sub(other.memory_mib),
			storage_gib: self.storage_gib.saturating_sub(other.storage_gib),
			gpus: self.gpus.saturating_sub(other.gpus),
		}
	}
}

/// Prices in the smallest unit of POD (planck, 10^-12 POD) per resource unit and second.
///
/// A deal locks in the prices of the provider at its creation: later changes never touch it.
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
)]
pub struct Prices<Balance> {
	/// Per CPU millicore and second.
	pub cpu_per_millicore_second: Balance,
	/// Per MiB of memory and second.
	pub memory_per_mib_second: Balance,
	/// Per GiB of storage and second.
	pub storage_per_gib_second: Balance,
	/// Per GPU and second.
	pub gpu_per_second: Balance,
	/// Per byte of egress traffic.
	pub egress_per_byte: Balance,
}

impl<Balance: Copy + Zero + CheckedAdd + CheckedMul + From<u32>> Prices<Balance> {
	/// Price of holding `resources` for one second, `None` on overflow.
	pub fn per_second(&self, resources: &Resources) -> Option<Balance> {
		let cpu = self.cpu_per_millicore_second.checked_mul(&resources.cpu_millicores.into())?;
		let memory = self.memory_per_mib_second.checked_mul(&resources.memory_mib.into())?;
		let storage = self.storage_per_gib_second.checked_mul(&resources.storage_gib.into())?;
		let gpu = self.gpu_per_second.checked_mul(&resources.gpus.into())?;
		cpu.checked_add(&memory)?.checked_add(&storage)?.checked_add(&gpu)
	}

	/// Price of holding `resources` for `seconds`, `None` on overflow.
	pub fn for_duration(&self, resources: &Resources, seconds: u32) -> Option<Balance> {
		self.per_second(resources)?.checked_mul(&seconds.into())
	}
}

/// What the registry needs to know about a provider's deals. Implemented by the market.
pub trait ProviderDeals<AccountId> {
	/// Number of deals of `provider` that are not closed yet (pending or running).
	fn open_deals(provider: &AccountId) -> u32;

	/// Whether a publisher rents `provider` whole, so nobody else can place deals on it.
	fn is_rented(provider: &AccountId) -> bool;
}

/// No market in the runtime: no provider has deals.
impl<AccountId> ProviderDeals<AccountId> for () {
	fn open_deals(_provider: &AccountId) -> u32 {
		0
	}

	fn is_rented(_provider: &AccountId) -> bool {
		false
	}
}

/// What the market needs to know about providers. Implemented by the registry.
pub trait ProviderCatalog<AccountId, Balance> {
	/// The provider's current prices if it takes new deals now (registered and not paused).
	fn quote(provider: &AccountId) -> Option<Prices<Balance>>;

	/// What renting `provider` whole costs now: its whole capacity, and its prices with its
	/// rent discount taken off. `None` if it takes no new deals.
	fn rent_offer(provider: &AccountId) -> Option<(Resources, Prices<Balance>)>;
}

/// Capacity bookkeeping the market asks of the registry when deals start and end.
pub trait CapacityLedger<AccountId> {
	/// Reserve `resources` of `provider`'s free capacity, or fail without changing anything.
	fn reserve(provider: &AccountId, resources: &Resources) -> Result<(), DispatchError>;
	/// Give `resources` back to `provider`'s free capacity.
	fn release(provider: &AccountId, resources: &Resources);
}

/// Longest health-check path.
pub const MAX_HEALTH_PATH_LEN: u32 = 128;
/// Longest expected body substring of a health check.
pub const MAX_HEALTH_BODY_LEN: u32 = 64;

/// What probers request of a deal's pods through its provider's gateway: `GET <path>` with the
/// deal's host name, up when the answer has `expect_status` and its body contains
/// `expect_body`.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct HealthCheck {
	/// Path (and query) requested; starts with `/`, visible ASCII only.
	pub path: BoundedVec<u8, ConstU32<MAX_HEALTH_PATH_LEN>>,
	/// HTTP status an up tenant answers with (100 to 599).
	pub expect_status: u16,
	/// Text the body must contain; empty: any body.
	pub expect_body: BoundedVec<u8, ConstU32<MAX_HEALTH_BODY_LEN>>,
}

impl HealthCheck {
	/// Whether the check can be requested as given: an absolute path of visible ASCII, a
	/// status HTTP defines, and an expected body of visible ASCII or spaces.
	pub fn is_valid(&self) -> bool {
		let visible = |b: &u8| (0x21..=0x7e).contains(b);
		self.path.first() == Some(&b'/')
			&& self.path.iter().all(visible)
			&& (100..=599).contains(&self.expect_status)
			&& self.expect_body.iter().all(|b| visible(b) || *b == b' ')
	}

	/// `GET /` answered with 200, any body: what a tenant without a declared check is held to.
	pub fn root_ok() -> Self {
		Self {
			path: BoundedVec::truncate_from(alloc::vec![b'/']),
			expect_status: 200,
			expect_body: BoundedVec::default(),
		}
	}
}

/// SLA terms a deal carries: stored by the market, enforced by the SLA pallet.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct SlaTerms<Balance> {
	/// Share of a measurement window the deployment must be up.
	pub uptime_target: Permill,
	/// Length of a measurement window, in blocks.
	pub window_blocks: u32,
	/// Most a missed window costs the provider's stake, paid to the publisher (never more than
	/// the bill multiple of what the publisher paid for the window, see the SLA pallet).
	pub penalty_per_window: Balance,
	/// What probers request of the deal's pods to tell whether it is up.
	pub health: HealthCheck,
}

/// Stake a provider must have bonded for the capacity it commits to deals. Implemented by the
/// provider-staking pallet, asked by the market when a provider accepts a deal.
pub trait StakeCollateral<AccountId> {
	/// Commit `resources` more of `provider`'s capacity to deals. Fails, changing nothing,
	/// unless its bonded stake covers the requirement for everything it then has committed.
	fn commit(provider: &AccountId, resources: &Resources) -> DispatchResult;
	/// `resources` of `provider` are no longer committed to a deal.
	fn release(provider: &AccountId, resources: &Resources);
}

/// No staking in the runtime: any provider may commit any capacity.
impl<AccountId> StakeCollateral<AccountId> for () {
	fn commit(_provider: &AccountId, _resources: &Resources) -> DispatchResult {
		Ok(())
	}

	fn release(_provider: &AccountId, _resources: &Resources) {}
}

/// What a slash took from a provider's stake and where it went.
#[derive(Clone, Copy, Default, PartialEq, Eq, Encode, Decode, TypeInfo, Debug)]
pub struct SlashOutcome<Balance> {
	/// Taken from the provider's stake (less than asked if the stake ran short).
	pub slashed: Balance,
	/// Of it, paid to the victim.
	pub compensated: Balance,
	/// Of it, paid to the treasury.
	pub to_treasury: Balance,
}

/// Takes stake from a provider that broke a promise. Implemented by the provider-staking
/// pallet; called only by the SLA pallet.
pub trait StakeSlasher<AccountId, Balance> {
	/// Slash up to `amount` of `provider`'s stake, bonded stake first, then unbonding chunks
	/// (so leaving does not escape a penalty). Up to `compensation` of what is taken goes to
	/// `victim`, the rest to the treasury.
	fn slash(
		provider: &AccountId,
		amount: Balance,
		victim: &AccountId,
		compensation: Balance,
	) -> SlashOutcome<Balance>;
}

/// No staking in the runtime: nothing can be slashed.
impl<AccountId, Balance: Default> StakeSlasher<AccountId, Balance> for () {
	fn slash(_: &AccountId, _: Balance, _: &AccountId, _: Balance) -> SlashOutcome<Balance> {
		SlashOutcome::default()
	}
}

/// The SLA side of a deal's life. Implemented by the SLA pallet, told by the market.
pub trait SlaTracker<AccountId, Balance> {
	/// Whether `provider` offers `terms` (a deal may only carry terms its provider offers).
	fn offers(provider: &AccountId, terms: &SlaTerms<Balance>) -> bool;
	/// Deal `id` with `terms` was accepted: it is tracked, and measured once the provider's
	/// agent names it running. Fails, changing nothing, when the provider tracks the most SLA
	/// deals it may.
	fn deal_started(
		id: DealId,
		publisher: &AccountId,
		provider: &AccountId,
		terms: &SlaTerms<Balance>,
	) -> DispatchResult;
	/// Deal `id` stopped running, the publisher having paid `paid` for it in all: windows
	/// already ended are settled, no more are measured.
	fn deal_ended(id: DealId, paid: Balance);
	/// The publisher of deal `id` asked for a new manifest (`pending`), or the provider
	/// acknowledged it (`!pending`): windows do not count meanwhile.
	fn manifest_pending(id: DealId, pending: bool);
}

/// No SLA pallet in the runtime: terms are stored but not enforced.
impl<AccountId, Balance> SlaTracker<AccountId, Balance> for () {
	fn offers(_provider: &AccountId, _terms: &SlaTerms<Balance>) -> bool {
		true
	}

	fn deal_started(
		_: DealId,
		_: &AccountId,
		_: &AccountId,
		_: &SlaTerms<Balance>,
	) -> DispatchResult {
		Ok(())
	}

	fn deal_ended(_id: DealId, _paid: Balance) {}

	fn manifest_pending(_id: DealId, _pending: bool) {}
}

/// What the SLA pallet reads of a deal. Implemented by the market.
pub trait SlaDealInfo<Balance> {
	/// The name deal `id` is served under (a DNS label registered in the market), if any.
	fn name(id: DealId) -> Option<Vec<u8>>;
	/// What the publisher has paid for deal `id` so far: charges paid from escrow (debt
	/// excluded), and for reserved billing the escrow covering time already served.
	fn paid(id: DealId) -> Balance;
}

/// No market in the runtime: no deal has a name or was paid for.
impl<Balance: Zero> SlaDealInfo<Balance> for () {
	fn name(_id: DealId) -> Option<Vec<u8>> {
		None
	}

	fn paid(_id: DealId) -> Balance {
		Zero::zero()
	}
}

/// How a provider stands after its measured uptime. Implemented by the SLA pallet, asked by
/// the registry when it ranks providers for a workload.
pub trait ProviderStanding<AccountId> {
	/// Whether the provider failed too many windows in a row to be offered to new workloads.
	fn is_quarantined(provider: &AccountId) -> bool;
	/// Share of decided probe windows that found the provider up, recent windows weighing
	/// more; a provider not measured yet scores full.
	fn reputation(provider: &AccountId) -> Permill;
	/// `provider` left the registry: its measurements and offer are dropped.
	fn deregistered(_provider: &AccountId) {}
}

/// No SLA pallet in the runtime: every provider in good standing.
impl<AccountId> ProviderStanding<AccountId> for () {
	fn is_quarantined(_provider: &AccountId) -> bool {
		false
	}

	fn reputation(_provider: &AccountId) -> Permill {
		Permill::one()
	}
}

/// Where the SLA pallet's off-chain worker reaches providers. Implemented by the registry.
pub trait ProbeTargets<AccountId> {
	/// The gateway of `provider` if it is registered (paused too: its deals still run): the
	/// http(s) URL of its agent's HTTP gateway, and the DNS name under which the gateway serves
	/// deals (`<deal name>.<ingress domain>`).
	fn gateway(provider: &AccountId) -> Option<(Vec<u8>, Vec<u8>)>;
}

/// No registry in the runtime: nothing to probe.
impl<AccountId> ProbeTargets<AccountId> for () {
	fn gateway(_provider: &AccountId) -> Option<(Vec<u8>, Vec<u8>)> {
		None
	}
}

/// A running deal with SLA terms, as the storage-proofs pallet needs it: who is compensated,
/// whose stake pays, and the most one failed storage proof may cost.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SlaParties<AccountId, Balance> {
	/// The deal's publisher: compensated when a proof fails.
	pub publisher: AccountId,
	/// The deal's provider: its stake pays.
	pub provider: AccountId,
	/// The terms' penalty per missed window: the most one failed proof may cost, before the
	/// bill bound ([`SlaDeals::hold_penalty`]).
	pub penalty: Balance,
}

/// Deals with SLA terms, for the storage-proofs pallet. Implemented by the SLA pallet, whose
/// bill-bounded penalty budget failed proofs share with missed windows.
pub trait SlaDeals<AccountId, Balance> {
	/// The parties and penalty of deal `id` if it is running with SLA terms.
	fn sla_deal(id: DealId) -> Option<SlaParties<AccountId, Balance>>;
	/// Holds up to `want` of deal `id`'s penalty budget (the bill multiple of what its
	/// publisher paid since the last settlement, less what is held or spent) for an open
	/// challenge; returns what it held, zero for a deal not running with SLA terms.
	fn hold_penalty(id: DealId, want: Balance) -> Balance;
	/// Ends a hold of `held` on deal `id`'s budget, of which `spent` (at most `held`) went to
	/// the publisher when the challenge failed; the rest returns to the budget.
	fn release_penalty(id: DealId, held: Balance, spent: Balance);
}

/// No SLA pallet in the runtime: no deal has SLA terms.
impl<AccountId, Balance: Default> SlaDeals<AccountId, Balance> for () {
	fn sla_deal(_id: DealId) -> Option<SlaParties<AccountId, Balance>> {
		None
	}

	fn hold_penalty(_id: DealId, _want: Balance) -> Balance {
		Balance::default()
	}

	fn release_penalty(_id: DealId, _held: Balance, _spent: Balance) {}
}
