//! Types of the provider registry: what a provider sells, where, and how to reach it.

use alloc::vec::Vec;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{traits::ConstU32, BoundedVec};
use scale_info::TypeInfo;
use sp_runtime::Percent;

pub use podchain_attestation::{
	AdvisoryIds, Collateral, Measurement, QuoteBytes, TcbPolicy, TcbStatus, TeeType, VerifiedQuote,
};
pub use podchain_primitives::{Prices, Resources};

/// Largest string a call accepts. Longer input cannot even be decoded; input between the stored
/// limit of a field and this cap is refused with that field's named error.
pub const MAX_INPUT_BYTES: u32 = 1024;
/// Largest list a call accepts (see [`MAX_INPUT_BYTES`]).
pub const MAX_INPUT_ITEMS: u32 = 64;

/// Stored length limits. They are exposed as pallet constants so clients can check input early.
pub const MAX_GPU_MODEL_LEN: u32 = 64;
/// Longest coarse location label ("Frankfurt", "us-east").
pub const MAX_LOCATION_LEN: u32 = 64;
/// Longest libp2p peer id in its base58 text form.
pub const MAX_PEER_ID_LEN: u32 = 64;
/// Longest multiaddr in its text form.
pub const MAX_MULTIADDR_LEN: u32 = 128;
/// Most multiaddrs per provider.
pub const MAX_MULTIADDRS: u32 = 8;
/// Longest gateway URL.
pub const MAX_URL_LEN: u32 = 256;
/// Longest ingress domain: a 63-character deal name and its dot still make a 253-character
/// DNS name.
pub const MAX_DOMAIN_LEN: u32 = 189;
/// Bytes of a call argument, capped at [`MAX_INPUT_BYTES`].
pub type InputBytes = BoundedVec<u8, ConstU32<MAX_INPUT_BYTES>>;
/// A list in a call argument, capped at [`MAX_INPUT_ITEMS`].
pub type InputList<T> = BoundedVec<T, ConstU32<MAX_INPUT_ITEMS>>;

/// GPU model name as stored.
pub type GpuModel = BoundedVec<u8, ConstU32<MAX_GPU_MODEL_LEN>>;
/// Coarse location label as stored.
pub type Location = BoundedVec<u8, ConstU32<MAX_LOCATION_LEN>>;
/// libp2p peer id (base58 text) as stored.
pub type PeerIdText = BoundedVec<u8, ConstU32<MAX_PEER_ID_LEN>>;
/// One multiaddr (text form) as stored.
pub type MultiaddrText = BoundedVec<u8, ConstU32<MAX_MULTIADDR_LEN>>;
/// A provider's multiaddrs as stored.
pub type Multiaddrs = BoundedVec<MultiaddrText, ConstU32<MAX_MULTIADDRS>>;
/// Gateway URL as stored.
pub type GatewayUrl = BoundedVec<u8, ConstU32<MAX_URL_LEN>>;
/// Ingress domain as stored.
pub type IngressDomain = BoundedVec<u8, ConstU32<MAX_DOMAIN_LEN>>;

/// A provider's verified attestation: what its quote proved, and the keys it bound.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct Attestation<BlockNumber> {
	/// The TEE the quote came from.
	pub tee: TeeType,
	/// The measurement the quote reported (see [`Measurement`]).
	pub measurement: Measurement,
	/// Intel's verdict on the platform when the quote was verified.
	pub tcb_status: TcbStatus,
	/// The security advisories that verdict listed.
	pub advisory_ids: AdvisoryIds,
	/// The X25519 key publishers seal manifests to, vouched for by the quote.
	pub sealing_key: [u8; 32],
	/// When the quote was verified (Unix seconds, the chain's clock).
	pub verified_at: u64,
	/// The block whose `attest` extrinsic carried the quote and collateral: clients read them
	/// there to verify the quote themselves.
	pub verified_in_block: BlockNumber,
	/// When the attestation stops counting (Unix seconds): the collateral's first expiry,
	/// capped by [`Config::MaxAttestationAge`](crate::Config::MaxAttestationAge).
	pub expires_at: u64,
}

/// Where a provider's machines are.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct Region {
	/// ISO 3166-1 alpha-2 country code, upper case ("DE", "US").
	pub country: [u8; 2],
	/// Optional coarse location: a city or a zone name, never an address.
	pub location: Option<Location>,
}

/// Region as given to a call.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct RegionInput {
	/// ISO 3166-1 alpha-2 country code, upper case.
	pub country: [u8; 2],
	/// Optional coarse location.
	pub location: Option<InputBytes>,
}

/// How publishers reach the provider agent over libp2p.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct Endpoint {
	/// The agent's libp2p peer id, base58 text ("12D3KooW...").
	pub peer_id: PeerIdText,
	/// Addresses the agent listens on, text form ("/ip4/203.0.113.7/tcp/4001").
	pub multiaddrs: Multiaddrs,
}

/// libp2p endpoint as given to a call.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct EndpointInput {
	/// The agent's libp2p peer id, base58 text.
	pub peer_id: InputBytes,
	/// Addresses the agent listens on, text form.
	pub multiaddrs: InputList<InputBytes>,
}

/// What a provider sells: capacity and GPU model.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct Capacity {
	/// Total resources offered to deals.
	pub resources: Resources,
	/// GPU model ("NVIDIA H100 80GB"); empty when no GPU is offered.
	pub gpu_model: GpuModel,
}

/// Capacity as given to a call.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct CapacityInput {
	/// Total resources offered to deals.
	pub resources: Resources,
	/// GPU model; empty when no GPU is offered.
	pub gpu_model: InputBytes,
}

/// Everything `register_provider` needs.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct Registration<Balance> {
	/// Capacity offered.
	pub capacity: CapacityInput,
	/// Prices per resource unit and second.
	pub prices: Prices<Balance>,
	/// Discount on the list price when a publisher rents the whole provider.
	pub rent_discount: Percent,
	/// Where the machines are.
	pub region: RegionInput,
	/// libp2p endpoint of the agent.
	pub endpoint: EndpointInput,
	/// http(s) URL at which SLA probers reach the agent's HTTP gateway
	/// ("https://gw.provider.example").
	pub gateway_url: InputBytes,
	/// DNS name under which the gateway serves deals: a deal named `web` is served as
	/// `web.<ingress_domain>` ("apps.provider.example").
	pub ingress_domain: InputBytes,
}

/// The changes `update_provider` makes; `None` keeps a field as it is.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct ProviderUpdate<Balance> {
	/// New capacity; never below what running deals reserve.
	pub capacity: Option<CapacityInput>,
	/// New prices; running deals keep the prices they locked in.
	pub prices: Option<Prices<Balance>>,
	/// New rent discount.
	pub rent_discount: Option<Percent>,
	/// New libp2p endpoint; a different peer id drops the attestation, which bound the old one.
	pub endpoint: Option<EndpointInput>,
	/// New gateway URL.
	pub gateway_url: Option<InputBytes>,
	/// New ingress domain.
	pub ingress_domain: Option<InputBytes>,
}

/// Whether a provider takes new deals.
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
pub enum ProviderStatus {
	/// Takes new deals.
	Active,
	/// Serves its running deals but takes no new ones.
	Paused,
}

/// A registered provider, as stored.
#[derive(Clone, PartialEq, Eq, Encode, Decode, MaxEncodedLen, TypeInfo, Debug)]
pub struct ProviderInfo<Balance, BlockNumber> {
	/// Capacity offered.
	pub capacity: Capacity,
	/// Capacity reserved by accepted deals; never more than `capacity`.
	pub reserved: Resources,
	/// Current prices (the quote new deals lock in).
	pub prices: Prices<Balance>,
	/// Discount on the list price for a rent of the whole provider.
	pub rent_discount: Percent,
	/// Where the machines are.
	pub region: Region,
	/// libp2p endpoint of the agent.
	pub endpoint: Endpoint,
	/// URL at which SLA probers reach the agent's HTTP gateway.
	pub gateway_url: GatewayUrl,
	/// DNS name under which the gateway serves deals (`<deal name>.<ingress domain>`).
	pub ingress_domain: IngressDomain,
	/// Verified TEE attestation, set by `attest`; counts only while current (see
	/// [`Pallet::is_attested`](crate::Pallet::is_attested)).
	pub attestation: Option<Attestation<BlockNumber>>,
	/// Whether new deals are taken.
	pub status: ProviderStatus,
	/// Registration deposit held from the provider.
	pub deposit: Balance,
	/// Block of registration.
	pub registered_at: BlockNumber,
}

impl<Balance, BlockNumber> ProviderInfo<Balance, BlockNumber> {
	/// Capacity not reserved by deals.
	pub fn free(&self) -> Resources {
		self.capacity.resources.saturating_sub(&self.reserved)
	}
}

/// A workload's requirements, for capacity planning (the runtime API).
#[derive(Clone, PartialEq, Eq, Encode, Decode, TypeInfo, Debug)]
pub struct WorkloadRequirements<Balance> {
	/// Resources the workload needs.
	pub resources: Resources,
	/// Only providers in this country (ISO 3166-1 alpha-2).
	pub country: Option<[u8; 2]>,
	/// Only providers whose GPU model contains this text (case-insensitive).
	pub gpu_model: Option<Vec<u8>>,
	/// Only providers with a current verified attestation.
	pub attested_only: bool,
	/// Only providers whose price for the workload is at most this much per hour.
	pub max_price_per_hour: Option<Balance>,
	/// Most matches to return (0: all).
	pub limit: u32,
}

/// A provider matching a workload, with its quote.
#[derive(Clone, PartialEq, Eq, Encode, Decode, TypeInfo, Debug)]
pub struct ProviderMatch<AccountId, Balance> {
	/// The provider's account.
	pub provider: AccountId,
	/// Price of the workload's resources per hour at the provider's current prices.
	pub price_per_hour: Balance,
	/// The provider's prices: the quote a deal created now would lock in.
	pub prices: Prices<Balance>,
	/// Capacity still free.
	pub free: Resources,
	/// Country of the provider.
	pub country: [u8; 2],
	/// Whether the provider's attestation is current.
	pub attested: bool,
	/// Share of SLA probe windows the provider met, recent ones weighing more (full when not
	/// measured yet).
	pub reputation: sp_runtime::Permill,
}

/// A provider as the runtime API shows it.
#[derive(Clone, PartialEq, Eq, Encode, Decode, TypeInfo, Debug)]
pub struct ProviderView<Balance, BlockNumber> {
	/// The stored record.
	pub info: ProviderInfo<Balance, BlockNumber>,
	/// Whether the attestation is current now: unexpired, its measurement allowed, its TCB
	/// status accepted.
	pub attested: bool,
}
