//! Types of the market: deployments, their billing, and usage reports.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;
use sp_runtime::traits::Saturating;

pub use podchain_primitives::{Prices, Resources, SlaTerms};

/// Identifier of a deployment (a deal), assigned in creation order.
pub type DeploymentId = podchain_primitives::DealId;

/// blake2-256 hash of a deployment's canonical manifest.
pub type ManifestHash = [u8; 32];

/// How a deployment is billed.
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
pub enum BillingMode {
	/// The provider reports measured usage; the publisher pays for what was used, never more
	/// than the reserved resources over the period.
	Metered,
	/// The publisher pays for the reserved resources over time, whatever was used.
	Reserved,
}

/// Where a deployment is in its life. Closed deployments are removed from storage.
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
pub enum DeploymentState<BlockNumber> {
	/// Waiting for the provider to accept; the publisher may cancel after the acceptance timeout.
	Pending {
		/// Block of creation.
		created_at: BlockNumber,
	},
	/// Running and billed.
	Active {
		/// Block of acceptance: billing starts here.
		accepted_at: BlockNumber,
	},
	/// The escrow ran out. A top-up restores the deployment; otherwise it closes when the grace
	/// period ends.
	OutOfFunds {
		/// Block of acceptance.
		accepted_at: BlockNumber,
		/// Block the escrow ran out.
		since: BlockNumber,
		/// Block at which the deployment closes unless topped up.
		grace_ends: BlockNumber,
	},
	/// A metered deployment was closed by its publisher, or its rent ended: the pods are gone
	/// and the capacity released; the provider may still report usage up to `closed_at` until
	/// `settle_by`, then the rest of the escrow goes back to the publisher.
	Closing {
		/// Block it was closed.
		closed_at: BlockNumber,
		/// Last block for the provider's final reports.
		settle_by: BlockNumber,
		/// Why it closed; reported when it ends.
		reason: CloseReason,
	},
}

/// Why a deployment closed.
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
pub enum CloseReason {
	/// The publisher asked for it.
	PublisherRequest,
	/// The provider never received a valid manifest.
	ManifestTimeout,
	/// The provider is leaving the market.
	ProviderDecommission,
	/// The provider broke the SLA.
	Sla,
	/// The escrow ran out and the grace period ended.
	OutOfFunds,
	/// The provider rejected the pending deployment.
	Rejected,
	/// The publisher cancelled a deployment the provider never accepted.
	AcceptanceTimeout,
	/// The rent the deployment ran in ended.
	RentEnded,
}

/// Most deployments a renter may place in one rent. Ending a rent ends them all, so the bound
/// keeps that work, and its weight, small.
pub const MAX_DEPLOYMENTS_PER_RENT: u32 = 32;

/// Deployments placed in a rent.
pub type RentDeployments = frame_support::BoundedVec<
	DeploymentId,
	frame_support::traits::ConstU32<MAX_DEPLOYMENTS_PER_RENT>,
>;

/// What a deal is: pods at list prices, a rent of a whole provider, or pods inside a rent.
#[derive(Clone, PartialEq, Eq, Encode, Decode, MaxEncodedLen, TypeInfo, Debug)]
pub enum DealKind {
	/// Pods on a share of the provider, billed at its prices.
	Deployment,
	/// The provider's whole capacity, rented at its rent discount. Nobody but the renter can
	/// place deals on the provider; the renter's deployments there run inside the rent.
	Rent {
		/// The renter's deployments inside this rent (pending, running or closing).
		deployments: RentDeployments,
		/// Resources reserved by the running ones, out of the rent's resources.
		in_use: Resources,
	},
	/// A renter's pods inside its rent: they use the rent's capacity and pay only for egress.
	InRent {
		/// The rent.
		rent: DeploymentId,
	},
}

/// Amounts charged, per resource. Used for one settlement and for running totals.
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
pub struct Charges<Balance> {
	/// For CPU.
	pub cpu: Balance,
	/// For memory.
	pub memory: Balance,
	/// For storage.
	pub storage: Balance,
	/// For GPUs.
	pub gpu: Balance,
	/// For egress traffic.
	pub egress: Balance,
}

impl<Balance: Saturating + Copy> Charges<Balance> {
	/// Sum of all resources, saturating (each part is bounded by the escrow it is paid from).
	pub fn total(&self) -> Balance {
		self.cpu
			.saturating_add(self.memory)
			.saturating_add(self.storage)
			.saturating_add(self.gpu)
			.saturating_add(self.egress)
	}

	/// Adds `other` to these totals, saturating.
	pub fn accumulate(&mut self, other: &Self) {
		self.cpu = self.cpu.saturating_add(other.cpu);
		self.memory = self.memory.saturating_add(other.memory);
		self.storage = self.storage.saturating_add(other.storage);
		self.gpu = self.gpu.saturating_add(other.gpu);
		self.egress = self.egress.saturating_add(other.egress);
	}
}

/// A deal between a publisher and a provider.
#[derive(Clone, PartialEq, Eq, Encode, Decode, MaxEncodedLen, TypeInfo, Debug)]
pub struct Deployment<AccountId, Balance, BlockNumber> {
	/// Who pays.
	pub publisher: AccountId,
	/// Who runs the pods.
	pub provider: AccountId,
	/// Pods, a rent, or pods inside a rent.
	pub kind: DealKind,
	/// Hash of the manifest the provider runs (all zero for a rent, which runs nothing itself).
	pub manifest_hash: ManifestHash,
	/// A new manifest hash the publisher asked for, until the provider acknowledges it.
	pub pending_manifest: Option<ManifestHash>,
	/// Resources reserved on the provider.
	pub resources: Resources,
	/// How the deployment is billed.
	pub billing: BillingMode,
	/// SLA terms, if any.
	pub sla: Option<SlaTerms<Balance>>,
	/// Prices locked in at creation: later price changes never touch this deal.
	pub prices: Prices<Balance>,
	/// Where the deployment is in its life.
	pub state: DeploymentState<BlockNumber>,
	/// Funds held from the publisher for this deployment.
	pub escrow: Balance,
	/// Billing is settled up to this block (exclusive): the next period starts here.
	pub settled_until: BlockNumber,
	/// Everything charged so far, per resource.
	pub charged: Charges<Balance>,
	/// Cost the escrow could not cover (a reserved deal's grace period, usage reported while
	/// out of funds). A top-up pays it first; at the end it is paid from whatever the
	/// publisher still has held for the deal, and the rest is written off in the open.
	pub debt: Balance,
	/// Most egress, in bytes per second, the publisher agreed to pay for: reports above it
	/// are refused.
	pub egress_limit: u64,
}

impl<AccountId, Balance, BlockNumber> Deployment<AccountId, Balance, BlockNumber> {
	/// Whether this deal rents its provider whole.
	pub fn is_rent(&self) -> bool {
		matches!(self.kind, DealKind::Rent { .. })
	}
}

/// Bounds a publisher sets on a new deal, so the terms locked at execution are never worse
/// than those it saw when it signed (a provider cannot raise its prices ahead of the deal).
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
pub struct DealLimits<Balance> {
	/// Highest price per unit the publisher accepts. Only the units the deal is billed for
	/// count: the resources it reserves, and egress.
	pub max_prices: Prices<Balance>,
	/// Most egress, in bytes per second, the publisher agrees to pay for.
	pub max_egress_bytes_per_second: u64,
}

impl<Balance: PartialOrd> DealLimits<Balance> {
	/// Whether `quote` stays within these limits for a deal reserving `resources`.
	pub fn admits(&self, quote: &Prices<Balance>, resources: &Resources) -> bool {
		let within =
			|reserved: u32, price: &Balance, limit: &Balance| reserved == 0 || price <= limit;
		let max = &self.max_prices;
		within(
			resources.cpu_millicores,
			&quote.cpu_per_millicore_second,
			&max.cpu_per_millicore_second,
		) && within(resources.memory_mib, &quote.memory_per_mib_second, &max.memory_per_mib_second)
			&& within(
				resources.storage_gib,
				&quote.storage_per_gib_second,
				&max.storage_per_gib_second,
			) && within(resources.gpus, &quote.gpu_per_second, &max.gpu_per_second)
			&& quote.egress_per_byte <= max.egress_per_byte
	}
}

/// Debt a publisher's deals left unpaid when they ended: its standing, shown by wallets and
/// the CLI.
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
pub struct UnpaidRecord<Balance> {
	/// Deals that ended with debt written off.
	pub deals: u32,
	/// Sum written off.
	pub amount: Balance,
}

/// Usage the provider measured for one deployment over one period.
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
pub struct UsageReport<BlockNumber> {
	/// The deployment.
	pub deployment: DeploymentId,
	/// First block of the period; must equal the deployment's `settled_until`.
	pub period_start: BlockNumber,
	/// Block after the period; at most the current block.
	pub period_end: BlockNumber,
	/// CPU used, in millicore-seconds.
	pub cpu_millicore_seconds: u64,
	/// Memory used, in MiB-seconds.
	pub memory_mib_seconds: u64,
	/// Storage used, in GiB-seconds.
	pub storage_gib_seconds: u64,
	/// GPU used, in GPU-seconds.
	pub gpu_seconds: u64,
	/// Egress traffic, in bytes.
	pub egress_bytes: u64,
}

/// A deployment's bill so far (runtime API).
#[derive(Clone, PartialEq, Eq, Encode, Decode, TypeInfo, Debug)]
pub struct Bill<Balance, BlockNumber> {
	/// Charged so far, per resource.
	pub charged: Charges<Balance>,
	/// Sum of `charged`.
	pub total: Balance,
	/// Escrow left.
	pub escrow: Balance,
	/// Billing is settled up to this block.
	pub settled_until: BlockNumber,
	/// For reserved billing: what settling now would charge (not yet charged).
	pub accrued: Balance,
	/// Cost the escrow could not cover, owed before the deal can run again.
	pub debt: Balance,
	/// For a running reserved deal: the block its escrow pays up to (it goes out of funds
	/// there unless topped up).
	pub funded_until: Option<BlockNumber>,
}

/// Longest DNS label (RFC 1123).
pub const MAX_NAME_LEN: u32 = 63;

/// A DNS label bound to a deployment: the host name the agent serves it under.
pub type DnsLabel = frame_support::BoundedVec<u8, frame_support::traits::ConstU32<MAX_NAME_LEN>>;

/// A name as given to `register_name`; anything longer than a label is refused by name.
pub type NameInput = frame_support::BoundedVec<u8, frame_support::traits::ConstU32<255>>;

/// Whether `label` is an RFC 1123 DNS label in lower case: 1 to 63 of `a-z`, `0-9` and `-`,
/// not starting or ending with `-`.
pub fn is_dns_label(label: &[u8]) -> bool {
	!label.is_empty()
		&& label.len() <= MAX_NAME_LEN as usize
		&& label.first() != Some(&b'-')
		&& label.last() != Some(&b'-')
		&& label.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}
