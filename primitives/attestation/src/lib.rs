//! # podchain attestation
//!
//! A provider proves its cluster runs in an Intel TEE with a DCAP **quote**: a report of the
//! TEE's measurement and 64 bytes of report data, signed by a key that Intel's certificate
//! chain vouches for. This crate holds:
//!
//! - the types the registry stores and calls take ([`VerifiedQuote`], [`Collateral`],
//!   [`TcbStatus`], [`TcbPolicy`]);
//! - the **binding** ([`binding`]): what a provider's quote must carry in its report data, so
//!   that a quote is worth nothing to anyone but the provider, agent peer and sealing key it
//!   was made for;
//! - the **verifier** ([`verify_quote`]), a host function the node implements with the
//!   `dcap-qvl` crate and the runtime calls with Intel's SGX root CA ([`INTEL_SGX_ROOT_CA_DER`])
//!   pinned in the runtime.
//!
//! Why a host function: `dcap-qvl` declares `cdylib` and `staticlib` crate types, which cargo
//! builds even for a dependency, and which cannot link on the runtime's allocator-less wasm
//! target. The verification is still part of every node's block execution, deterministic and
//! weighed by the runtime's benchmarks; the runtime keeps every policy (root of trust, TCB
//! statuses, measurements, binding, expiry). A node without the host function cannot execute
//! the runtime at all, so no node can skip it.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

mod binding;
mod types;
mod verifier;

#[cfg(feature = "std")]
mod json;
#[cfg(not(substrate_runtime))]
mod native;
#[cfg(any(feature = "samples", test))]
pub mod samples;

pub use binding::{binding, BINDING_DOMAIN};
pub use types::*;
pub use verifier::{dcap, verify_quote, DcapVerifier, QuoteVerifier};

/// Intel's SGX Provisioning Certification Root CA (DER), the root every DCAP quote's
/// certificate chains must lead to (SHA-256 fingerprint
/// `44:A0:19:6B:2B:99:F8:89:B8:E1:49:E9:5B:80:7A:35:0E:74:24:96:43:99:E8:85:A7:CB:B8:CC:FA:B6:74:D3`,
/// valid until 2049).
pub const INTEL_SGX_ROOT_CA_DER: &[u8] = include_bytes!("intel_sgx_root_ca.der");
