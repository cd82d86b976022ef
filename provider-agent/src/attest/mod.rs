//! TEE attestation of the provider (docs/registry.md, "Attestation"): on an Intel TDX guest the
//! agent asks the kernel for a quote whose report data binds the provider's account, the peer
//! id registered on chain and the key manifests are sealed to, fetches the collateral it is
//! verified against, and submits both with `registry.attest`. The chain verifies; the agent
//! only gathers the evidence.
//!
//! - [`tsm`]: the quote, from configfs-tsm;
//! - [`collateral`]: the collateral, from a file or a PCCS;
//! - [`renew`]: attesting at start and again before the attestation expires.

pub mod collateral;
pub mod renew;
pub mod tsm;

#[cfg(test)]
mod collateral_tests;
#[cfg(test)]
mod tsm_tests;

use collateral::{CollateralError, CollateralSource};
use podchain_chain::{
	runtime::{self, runtime_types as types},
	subxt,
	tx::Submitter,
	AccountId, AtBlock, ChainError, Node,
};
use std::{convert::Infallible, path::PathBuf};
use tsm::{Tsm, TsmError, REPORT_DATA_LEN};

/// How the agent attests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestSettings {
	/// The configfs-tsm report directory.
	pub report_dir: PathBuf,
	/// Where collateral comes from.
	pub collateral: CollateralSource,
}

/// The report data of the provider's quote: the binding the registry checks
/// (`podchain_attestation::binding`) in its first 32 bytes, zeros after. `provider` encodes
/// as its 32 raw bytes, as the runtime's `AccountId32` does; `registered_peer_id` is the peer
/// id's base58 text as registered on chain.
pub fn report_data(
	provider: &AccountId,
	registered_peer_id: &[u8],
	sealing_key: &[u8; 32],
) -> [u8; REPORT_DATA_LEN] {
	let mut data = [0u8; REPORT_DATA_LEN];
	data[..32].copy_from_slice(&podchain_attestation::binding(
		&provider.0,
		registered_peer_id,
		sealing_key,
	));
	data
}

/// What the chain recorded for a verified quote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attested {
	/// `IntelTdx` or `IntelSgx`.
	pub tee: String,
	/// Intel's verdict on the platform.
	pub tcb_status: String,
	/// The measurement the quote reported (hex).
	pub measurement: String,
	/// When the attestation stops counting (Unix seconds, the chain's clock).
	pub expires_at: u64,
}

/// The provider's attestation as recorded on chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
	/// When its quote was verified (Unix seconds).
	pub verified_at: u64,
	/// When it stops counting (Unix seconds).
	pub expires_at: u64,
	/// Whether it vouches for the agent's current sealing key.
	pub same_sealing_key: bool,
}

/// Why attesting failed.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
	/// The account is not a registered provider.
	#[error("{0} is not a registered provider: register it first (registry.register_provider)")]
	NotRegistered(AccountId),
	/// The chain names another peer id than the agent's own: a quote would vouch for it.
	#[error(
		"the provider registered peer id {registered}, but this agent is {ours}: update the registration (registry.update_provider) first"
	)]
	OtherPeer {
		/// The peer id on chain.
		registered: String,
		/// The agent's.
		ours: String,
	},
	/// No quote.
	#[error("quote: {0}")]
	Quote(#[from] TsmError),
	/// No collateral.
	#[error("collateral: {0}")]
	Collateral(#[from] CollateralError),
	/// The chain refused the quote, with the registry's error.
	#[error("the chain refused the attestation: {0}")]
	Refused(String),
	/// The chain could not be read or the transaction not sent.
	#[error("{0}")]
	Chain(#[from] ChainError),
}

impl AttestError {
	/// Whether trying again soon cannot help (the machine gives no TDX quotes until the
	/// operator changes it): retried rarely.
	pub fn needs_operator(&self) -> bool {
		matches!(
			self,
			AttestError::Quote(
				TsmError::NotAvailable { .. }
					| TsmError::NotTdx { .. }
					| TsmError::Permission { .. }
			)
		)
	}
}

/// Gathers the evidence and submits it.
pub struct Attestor {
	/// The quote source.
	pub tsm: Tsm,
	/// The collateral source.
	pub collateral: CollateralSource,
	/// The agent's own peer id.
	pub peer_id: String,
	/// The X25519 key manifests are sealed to.
	pub sealing_key: [u8; 32],
}

impl Attestor {
	/// An attestor for the agent whose libp2p identity is `keypair`.
	pub fn new(
		settings: &AttestSettings,
		keypair: &podchain_p2p::Keypair,
	) -> Result<Self, podchain_p2p::SealError> {
		let opening = podchain_p2p::OpeningKey::from_keypair(keypair)?;
		Ok(Self {
			tsm: Tsm::new(&settings.report_dir),
			collateral: settings.collateral.clone(),
			peer_id: keypair.public().to_peer_id().to_string(),
			sealing_key: opening.x25519_public(),
		})
	}

	/// Quotes, fetches collateral, submits `registry.attest` and waits until it is final.
	pub async fn attest(
		&self,
		node: &Node,
		submitter: &Submitter,
	) -> Result<Attested, AttestError> {
		let provider = submitter.key().account_id();
		let at = node.finalized().await?;
		let registered = registered_peer_id(&at, &provider).await?;
		if registered != self.peer_id {
			return Err(AttestError::OtherPeer { registered, ours: self.peer_id.clone() });
		}
		let data = report_data(&provider, registered.as_bytes(), &self.sealing_key);
		let tsm = self.tsm.clone();
		let quote =
			tokio::task::spawn_blocking(move || tsm.tdx_quote(&data)).await.map_err(|e| {
				TsmError::Io {
					op: "making the quote",
					path: String::new(),
					source: std::io::Error::other(e.to_string()),
				}
			})??;
		tracing::info!(bytes = quote.len(), "quote made");
		let collateral = self.collateral.collateral(&quote).await?;
		let collateral = runtime_collateral(&collateral);
		let quote_copy = quote.clone();
		let call = runtime::tx().registry().attest(
			types::bounded_collections::bounded_vec::BoundedVec(quote),
			collateral,
			self.sealing_key,
		);
		let submitted = submitter
			.submit(node, &call, |_, _| Ok::<(), Infallible>(()))
			.await?
			.unwrap_or_else(|never| match never {});
		let events = submitted.progress.wait_for_finalized_success().await.map_err(|e| {
			match refusal(e) {
				// What Root would have to allow, which the chain's error does not say.
				AttestError::Refused(name) if name == "registry.MeasurementNotAllowed" => {
					AttestError::Refused(format!(
						"{name} (the quote's measurement, MRTD || RTMR0..3: {})",
						measurement_of(&quote_copy).unwrap_or_default()
					))
				}
				other => other,
			}
		})?;
		let attested = events
			.find_first::<runtime::registry::events::ProviderAttested>()
			.and_then(Result::ok)
			.ok_or_else(|| {
				AttestError::Refused("the attestation succeeded without ProviderAttested".into())
			})?;
		Ok(Attested {
			tee: format!("{:?}", attested.tee),
			tcb_status: format!("{:?}", attested.tcb_status),
			measurement: hex::encode(&attested.measurement.0),
			expires_at: attested.expires_at,
		})
	}
}

/// A TDX quote's measurement as the registry keys it (hex).
fn measurement_of(quote: &[u8]) -> Option<String> {
	let parsed = dcap_qvl::quote::Quote::parse(quote).ok()?;
	let td = parsed.report.as_td10()?;
	Some(hex::encode([td.mr_td, td.rt_mr0, td.rt_mr1, td.rt_mr2, td.rt_mr3].concat()))
}

/// The registry's error as `registry.CollateralExpired`, or the failure as it is.
fn refusal(e: subxt::error::TransactionFinalizedSuccessError) -> AttestError {
	use subxt::error::{DispatchError, TransactionEventsError, TransactionFinalizedSuccessError};
	match &e {
		TransactionFinalizedSuccessError::SuccessError(
			TransactionEventsError::ExtrinsicFailed(DispatchError::Module(module)),
		) => match module.details() {
			Ok(details) => {
				let pallet = details.pallet.name();
				let mut chars = pallet.chars();
				let section = chars
					.next()
					.map(|first| first.to_lowercase().chain(chars).collect::<String>())
					.unwrap_or_default();
				AttestError::Refused(format!("{section}.{}", details.variant.name))
			}
			Err(_) => AttestError::Refused(module.to_string()),
		},
		TransactionFinalizedSuccessError::SuccessError(
			TransactionEventsError::ExtrinsicFailed(other),
		) => AttestError::Refused(other.to_string()),
		_ => AttestError::Chain(ChainError::rpc(e)),
	}
}

/// The collateral as the runtime's type.
fn runtime_collateral(
	c: &podchain_attestation::Collateral,
) -> types::podchain_attestation::types::Collateral {
	let field = |f: &podchain_attestation::CollateralField| {
		types::bounded_collections::bounded_vec::BoundedVec(f.to_vec())
	};
	types::podchain_attestation::types::Collateral {
		pck_crl_issuer_chain: field(&c.pck_crl_issuer_chain),
		root_ca_crl: field(&c.root_ca_crl),
		pck_crl: field(&c.pck_crl),
		tcb_info_issuer_chain: field(&c.tcb_info_issuer_chain),
		tcb_info: field(&c.tcb_info),
		tcb_info_signature: field(&c.tcb_info_signature),
		qe_identity_issuer_chain: field(&c.qe_identity_issuer_chain),
		qe_identity: field(&c.qe_identity),
		qe_identity_signature: field(&c.qe_identity_signature),
		pck_certificate_chain: c.pck_certificate_chain.as_ref().map(field),
	}
}

async fn provider_record(
	at: &AtBlock,
	provider: &AccountId,
) -> Result<types::pallet_registry::types::ProviderInfo<u128, u32>, AttestError> {
	let providers =
		at.storage().entry(runtime::storage().registry().providers()).map_err(ChainError::rpc)?;
	let info = providers
		.try_fetch((*provider,))
		.await
		.map_err(ChainError::rpc)?
		.ok_or(AttestError::NotRegistered(*provider))?;
	Ok(info.decode().map_err(ChainError::rpc)?)
}

/// The peer id `provider` registered, as text.
pub async fn registered_peer_id(at: &AtBlock, provider: &AccountId) -> Result<String, AttestError> {
	let info = provider_record(at, provider).await?;
	Ok(String::from_utf8_lossy(&info.endpoint.peer_id.0).into_owned())
}

/// The provider's attestation record at `at`, judged against `sealing_key`.
pub async fn record(
	at: &AtBlock,
	provider: &AccountId,
	sealing_key: &[u8; 32],
) -> Result<Option<Record>, AttestError> {
	let info = provider_record(at, provider).await?;
	Ok(info.attestation.map(|a| Record {
		verified_at: a.verified_at,
		expires_at: a.expires_at,
		same_sealing_key: &a.sealing_key == sealing_key,
	}))
}

/// The chain's time at `at` (Unix seconds): what the registry judges expiry by.
pub async fn chain_time(at: &AtBlock) -> Result<u64, AttestError> {
	let now = at
		.storage()
		.fetch(runtime::storage().timestamp().now(), ())
		.await
		.map_err(ChainError::rpc)?
		.decode()
		.map_err(ChainError::rpc)?;
	Ok(now / 1000)
}

#[cfg(test)]
mod tests {
	use super::*;
	use podchain_attestation::binding;
	use sp_runtime::{traits::ConstU32, AccountId32, BoundedVec};

	/// What the registry computes in `attest`: `binding(&who, &info.endpoint.peer_id,
	/// &sealing_key)` with the runtime's account type and the registered peer id as stored.
	fn pallet_binding(account: [u8; 32], peer_id: &str, sealing_key: &[u8; 32]) -> [u8; 32] {
		let who = AccountId32::new(account);
		let stored: BoundedVec<u8, ConstU32<128>> = peer_id.as_bytes().to_vec().try_into().unwrap();
		binding(&who, &stored, sealing_key)
	}

	#[test]
	fn the_report_data_binds_what_the_registry_checks() {
		let keypair = podchain_p2p::Keypair::generate_ed25519();
		let settings = AttestSettings {
			report_dir: "/nonexistent".into(),
			collateral: CollateralSource::File("/nonexistent".into()),
		};
		let attestor = Attestor::new(&settings, &keypair).unwrap();
		// The sealing key is the X25519 key publishers seal to, derived from the peer id alone.
		let peer = keypair.public().to_peer_id();
		let ed25519 = podchain_p2p::seal::ed25519_public_of(&peer).unwrap();
		let sealing_key = podchain_p2p::seal::x25519_public_from_ed25519(&ed25519).unwrap();
		assert_eq!(attestor.sealing_key, sealing_key);
		assert_eq!(attestor.peer_id, peer.to_string());
		assert!(attestor.peer_id.starts_with("12D3KooW"), "base58 text: {}", attestor.peer_id);

		let provider = AccountId::from([5u8; 32]);
		let data = report_data(&provider, attestor.peer_id.as_bytes(), &attestor.sealing_key);
		assert_eq!(data[..32], pallet_binding([5u8; 32], &attestor.peer_id, &sealing_key));
		assert_eq!(data[32..], [0u8; 32]);
		// Another account, peer id or key binds something else.
		assert_ne!(data[..32], pallet_binding([6u8; 32], &attestor.peer_id, &sealing_key));
		let other_peer = podchain_p2p::Keypair::generate_ed25519().public().to_peer_id();
		assert_ne!(data[..32], pallet_binding([5u8; 32], &other_peer.to_string(), &sealing_key));
		assert_ne!(data[..32], pallet_binding([5u8; 32], &attestor.peer_id, &[0u8; 32]));
	}

	#[test]
	fn the_measurement_named_is_the_quotes() {
		let quote = include_bytes!("../../../primitives/attestation/fixtures/tdx_quote");
		let verified = podchain_attestation::verify_quote(
			quote,
			&podchain_attestation::Collateral::from_json(include_bytes!(
				"../../../primitives/attestation/fixtures/tdx_quote_collateral.json"
			))
			.unwrap(),
			podchain_attestation::INTEL_SGX_ROOT_CA_DER,
			1_750_377_600,
		)
		.unwrap();
		assert_eq!(measurement_of(quote), Some(hex::encode(&verified.measurement)));
		assert_eq!(measurement_of(b"not a quote"), None);
	}

	#[test]
	fn collateral_reaches_the_runtime_type_unchanged() {
		let json =
			include_bytes!("../../../primitives/attestation/fixtures/tdx_quote_collateral.json");
		let collateral = podchain_attestation::Collateral::from_json(json).unwrap();
		let runtime = runtime_collateral(&collateral);
		assert_eq!(runtime.tcb_info.0, collateral.tcb_info.to_vec());
		assert_eq!(runtime.qe_identity_signature.0, collateral.qe_identity_signature.to_vec());
		assert_eq!(runtime.pck_certificate_chain, None);
	}
}
