//! Collateral from the JSON a PCCS client writes (`dcap-qvl`'s format), for the CLI, the agent
//! and tests.

use crate::{Collateral, CollateralField};
use dcap_qvl::QuoteCollateralV3;

impl Collateral {
	/// Reads collateral in `dcap-qvl`'s JSON form (text fields as text, binary fields in hex).
	pub fn from_json(json: &[u8]) -> Result<Collateral, String> {
		let c: QuoteCollateralV3 =
			serde_json::from_slice(json).map_err(|e| format!("not collateral JSON: {e}"))?;
		let field = |name: &str, bytes: Vec<u8>| {
			let len = bytes.len();
			CollateralField::try_from(bytes)
				.map_err(|_| format!("collateral field {name} is too large ({len} bytes)"))
		};
		Ok(Collateral {
			pck_crl_issuer_chain: field("pck_crl_issuer_chain", c.pck_crl_issuer_chain.into())?,
			root_ca_crl: field("root_ca_crl", c.root_ca_crl)?,
			pck_crl: field("pck_crl", c.pck_crl)?,
			tcb_info_issuer_chain: field("tcb_info_issuer_chain", c.tcb_info_issuer_chain.into())?,
			tcb_info: field("tcb_info", c.tcb_info.into())?,
			tcb_info_signature: field("tcb_info_signature", c.tcb_info_signature)?,
			qe_identity_issuer_chain: field(
				"qe_identity_issuer_chain",
				c.qe_identity_issuer_chain.into(),
			)?,
			qe_identity: field("qe_identity", c.qe_identity.into())?,
			qe_identity_signature: field("qe_identity_signature", c.qe_identity_signature)?,
			pck_certificate_chain: c
				.pck_certificate_chain
				.map(|chain| field("pck_certificate_chain", chain.into()))
				.transpose()?,
		})
	}
}
