//! What a verified quote reports, the collateral it is checked against, and why a quote fails.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;
use sp_runtime::{traits::ConstU32, BoundedVec};

/// Largest quote accepted, in bytes (a TDX quote with its PCK chain is about 5 KiB).
pub const MAX_QUOTE_LEN: u32 = 8 * 1024;
/// Largest collateral field, in bytes (PEM chains, CRLs, TCB info JSON).
pub const MAX_COLLATERAL_FIELD_LEN: u32 = 32 * 1024;
/// Longest measurement: TDX's MRTD and RTMR0-3, 48 bytes each (SGX's is 64).
pub const MAX_MEASUREMENT_LEN: u32 = 5 * 48;
/// Most security advisories recorded for one quote.
pub const MAX_ADVISORIES: u32 = 64;
/// Longest advisory id ("INTEL-SA-00615").
pub const MAX_ADVISORY_ID_LEN: u32 = 32;

/// A quote as given to a call.
pub type QuoteBytes = BoundedVec<u8, ConstU32<MAX_QUOTE_LEN>>;
/// One collateral field as given to a call.
pub type CollateralField = BoundedVec<u8, ConstU32<MAX_COLLATERAL_FIELD_LEN>>;
/// A TEE measurement: TDX `MRTD || RTMR0 || RTMR1 || RTMR2 || RTMR3`, SGX
/// `MRENCLAVE || MRSIGNER`.
pub type Measurement = BoundedVec<u8, ConstU32<MAX_MEASUREMENT_LEN>>;
/// An Intel security advisory id.
pub type AdvisoryId = BoundedVec<u8, ConstU32<MAX_ADVISORY_ID_LEN>>;
/// The advisories a quote's TCB level lists.
pub type AdvisoryIds = BoundedVec<AdvisoryId, ConstU32<MAX_ADVISORIES>>;

/// The trusted execution environment a quote comes from.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	PartialOrd,
	Ord,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub enum TeeType {
	/// An Intel TDX trust domain (a confidential VM).
	IntelTdx,
	/// An Intel SGX enclave.
	IntelSgx,
}

/// Intel's verdict on the platform's trusted computing base, from the TCB info collateral.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	PartialOrd,
	Ord,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub enum TcbStatus {
	/// Fully patched.
	UpToDate,
	/// Patched, but software mitigations are needed (see the advisories).
	SWHardeningNeeded,
	/// Patched, but the platform's configuration needs changes.
	ConfigurationNeeded,
	/// Both of the above.
	ConfigurationAndSWHardeningNeeded,
	/// Missing security patches.
	OutOfDate,
	/// Missing patches and needing configuration changes.
	OutOfDateConfigurationNeeded,
	/// TDX 1.5: the TD launched on an older TCB that was updated in place; relaunch it.
	TdRelaunchAdvised,
	/// As above, and the platform's configuration needs changes.
	TdRelaunchAdvisedConfigurationNeeded,
	/// The platform's keys are revoked. Never accepted.
	Revoked,
}

impl TcbStatus {
	/// Every status, in declaration order.
	pub const ALL: [TcbStatus; 9] = [
		TcbStatus::UpToDate,
		TcbStatus::SWHardeningNeeded,
		TcbStatus::ConfigurationNeeded,
		TcbStatus::ConfigurationAndSWHardeningNeeded,
		TcbStatus::OutOfDate,
		TcbStatus::OutOfDateConfigurationNeeded,
		TcbStatus::TdRelaunchAdvised,
		TcbStatus::TdRelaunchAdvisedConfigurationNeeded,
		TcbStatus::Revoked,
	];

	/// This status's bit in a [`TcbPolicy`].
	pub const fn bit(self) -> u16 {
		1 << (self as u16)
	}
}

/// The TCB statuses a chain accepts, one bit per [`TcbStatus`]. `Revoked` is never accepted.
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
pub struct TcbPolicy(pub u16);

impl TcbPolicy {
	/// Only fully patched platforms.
	pub const UP_TO_DATE_ONLY: TcbPolicy = TcbPolicy(TcbStatus::UpToDate.bit());

	/// A policy accepting exactly `statuses` (`Revoked` left out whatever is asked).
	pub fn accepting(statuses: &[TcbStatus]) -> Self {
		let bits = statuses.iter().fold(0u16, |bits, s| bits | s.bit());
		TcbPolicy(bits & !TcbStatus::Revoked.bit())
	}

	/// Whether `status` is accepted.
	pub fn accepts(&self, status: TcbStatus) -> bool {
		status != TcbStatus::Revoked && self.0 & status.bit() != 0
	}
}

impl Default for TcbPolicy {
	fn default() -> Self {
		TcbPolicy::UP_TO_DATE_ONLY
	}
}

/// The collateral a quote is verified against, as Intel's PCS or a PCCS serves it: the
/// certificate chains (PEM), the CRLs (DER), and the signed TCB info and QE identity (JSON and
/// raw ECDSA signatures).
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct Collateral {
	/// Issuer chain of the PCK CRL (PEM).
	pub pck_crl_issuer_chain: CollateralField,
	/// Intel's root CA CRL (DER).
	pub root_ca_crl: CollateralField,
	/// The PCK CRL (DER).
	pub pck_crl: CollateralField,
	/// Issuer chain of the TCB info (PEM).
	pub tcb_info_issuer_chain: CollateralField,
	/// The TCB info (JSON, the signed body).
	pub tcb_info: CollateralField,
	/// Signature of the TCB info (raw ECDSA P-256 `r || s`).
	pub tcb_info_signature: CollateralField,
	/// Issuer chain of the QE identity (PEM).
	pub qe_identity_issuer_chain: CollateralField,
	/// The QE identity (JSON, the signed body).
	pub qe_identity: CollateralField,
	/// Signature of the QE identity (raw ECDSA P-256 `r || s`).
	pub qe_identity_signature: CollateralField,
	/// The PCK certificate chain (PEM), for quotes that do not carry it themselves.
	pub pck_certificate_chain: Option<CollateralField>,
}

/// What a quote proves once verified: which TEE, what it runs, what it vouches for, and how
/// current its platform is.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct VerifiedQuote {
	/// The TEE the quote comes from.
	pub tee: TeeType,
	/// Its measurement (see [`Measurement`]).
	pub measurement: Measurement,
	/// The 64 bytes the TEE's software put in the report: what the quote vouches for.
	pub report_data: [u8; 64],
	/// Intel's verdict on the platform.
	pub tcb_status: TcbStatus,
	/// The advisories that verdict lists.
	pub advisory_ids: AdvisoryIds,
	/// When the first certificate, CRL, TCB info or QE identity used expires (Unix seconds).
	pub collateral_expires_at: u64,
}

/// Why a quote did not verify.
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
pub enum QuoteError {
	/// The quote cannot be parsed, or is a kind not supported (only ECDSA-256 DCAP quotes
	/// from Intel's quoting enclave: SGX version 3, TDX versions 4 and 5).
	Malformed,
	/// The collateral cannot be parsed (bad PEM, DER, JSON or text).
	InvalidCollateral,
	/// The collateral (TCB info, QE identity, a CRL or certificate) is no longer valid.
	CollateralExpired,
	/// The collateral is not valid yet.
	CollateralNotYetValid,
	/// A signature, certificate chain or CRL check failed: the quote is not vouched for by
	/// Intel's root, its platform's key is revoked, or it was altered.
	Untrusted,
}
