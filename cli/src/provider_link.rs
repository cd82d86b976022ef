//! Talking to a deal's provider agent over libp2p: its endpoint from the registry, a client
//! node, and the publisher's key as the protocols' signer.

use crate::error::CliError;
use podchain_chain::{runtime, AccountId, AccountKey, AtBlock};
use podchain_p2p::{Multiaddr, P2pConfig, P2pNode, PeerId, PublisherSigner};

/// The publisher's account key signs manifest deliveries and log requests.
#[derive(Clone)]
pub struct Signer(pub AccountKey);

impl PublisherSigner for Signer {
	fn public(&self) -> [u8; 32] {
		self.0.public()
	}

	fn sign(&self, message: &[u8]) -> [u8; 64] {
		self.0.sign(message)
	}
}

/// Where a provider's agent listens, as registered.
#[derive(Clone, Debug)]
pub struct Endpoint {
	/// The agent's peer id.
	pub peer: PeerId,
	/// Its addresses.
	pub addrs: Vec<Multiaddr>,
}

/// The registered endpoint of `provider`.
pub async fn endpoint(at: &AtBlock, provider: &AccountId) -> Result<Endpoint, CliError> {
	let providers =
		at.storage().entry(runtime::storage().registry().providers()).map_err(CliError::chain)?;
	let Some(info) = providers.try_fetch((*provider,)).await.map_err(CliError::chain)? else {
		return Err(CliError::input(format!("{provider} is not a registered provider")));
	};
	let info = info.decode().map_err(CliError::chain)?;
	let peer_text = String::from_utf8_lossy(&info.endpoint.peer_id.0).into_owned();
	let peer = peer_text.parse().map_err(|e| {
		CliError::provider(format!(
			"provider {provider} registered an invalid peer id {peer_text:?}: {e}"
		))
	})?;
	let addrs = info
		.endpoint
		.multiaddrs
		.0
		.iter()
		.filter_map(|a| String::from_utf8_lossy(&a.0).parse().ok())
		.collect::<Vec<Multiaddr>>();
	if addrs.is_empty() {
		return Err(CliError::provider(format!(
			"provider {provider} registered no usable address"
		)));
	}
	Ok(Endpoint { peer, addrs })
}

/// A client-only libp2p node with a fresh identity.
pub async fn client() -> Result<P2pNode, CliError> {
	let keypair = podchain_p2p::Keypair::generate_ed25519();
	P2pNode::spawn(keypair, P2pConfig::default())
		.await
		.map_err(|e| CliError::provider(format!("cannot start libp2p: {e}")))
}
