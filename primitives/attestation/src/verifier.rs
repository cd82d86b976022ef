//! The quote verifier the node offers the runtime.

use crate::{Collateral, QuoteError, VerifiedQuote};
use codec::Encode;
use sp_runtime_interface::{
	pass_by::{AllocateAndReturnByCodec, PassFatPointerAndRead},
	runtime_interface,
};

/// Host functions of DCAP quote verification. A node executing podchain's runtime registers
/// [`dcap::HostFunctions`] beside Substrate's own.
#[runtime_interface]
pub trait Dcap {
	/// Verifies `quote` against `collateral` (a SCALE-encoded [`Collateral`]) at `now_secs`
	/// (Unix seconds), with `root_ca_der` as the only trusted root: every signature, the
	/// certificate chains, the CRLs, the collateral's validity window and the QE identity.
	/// Policy (which TCB statuses, measurements and report data are acceptable) is the
	/// caller's.
	fn verify(
		quote: PassFatPointerAndRead<&[u8]>,
		collateral: PassFatPointerAndRead<&[u8]>,
		root_ca_der: PassFatPointerAndRead<&[u8]>,
		now_secs: u64,
	) -> AllocateAndReturnByCodec<Result<VerifiedQuote, QuoteError>> {
		crate::native::verify(quote, collateral, root_ca_der, now_secs)
	}
}

/// Verifies `quote` against `collateral` at `now_secs` with `root_ca_der` as the trusted root
/// (see [`dcap::verify`]).
pub fn verify_quote(
	quote: &[u8],
	collateral: &Collateral,
	root_ca_der: &[u8],
	now_secs: u64,
) -> Result<VerifiedQuote, QuoteError> {
	dcap::verify(quote, &collateral.encode(), root_ca_der, now_secs)
}

/// Verifies TEE quotes for the registry. The runtime uses [`DcapVerifier`]; pallet tests use a
/// verifier reporting chosen fields.
pub trait QuoteVerifier {
	/// Verifies `quote` against `collateral` at `now_secs` (Unix seconds).
	fn verify(
		quote: &[u8],
		collateral: &Collateral,
		now_secs: u64,
	) -> Result<VerifiedQuote, QuoteError>;
}

/// Intel DCAP verification rooted in Intel's SGX root CA, pinned here.
pub struct DcapVerifier;

impl QuoteVerifier for DcapVerifier {
	fn verify(
		quote: &[u8],
		collateral: &Collateral,
		now_secs: u64,
	) -> Result<VerifiedQuote, QuoteError> {
		verify_quote(quote, collateral, crate::INTEL_SGX_ROOT_CA_DER, now_secs)
	}
}
