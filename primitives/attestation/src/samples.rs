//! Intel's sample TDX quote and its collateral (see `fixtures/README.md`), for benchmarks and
//! tests that run without JSON: the collateral is kept SCALE-encoded beside its JSON, and a
//! test checks that the two agree.

use crate::Collateral;
use codec::Decode;

/// The genuine TDX sample quote.
pub const TDX_QUOTE: &[u8] = include_bytes!("../fixtures/tdx_quote");
/// Its collateral, SCALE-encoded.
pub const TDX_COLLATERAL_SCALE: &[u8] = include_bytes!("../fixtures/tdx_quote_collateral.scale");
/// A time at which it verifies: 2025-06-20T00:00:00Z, a day after its collateral was issued.
pub const SAMPLE_TIME: u64 = 1_750_377_600;

/// The TDX sample's collateral.
pub fn tdx_collateral() -> Collateral {
	Collateral::decode(&mut &TDX_COLLATERAL_SCALE[..]).expect("the fixture is a collateral")
}
