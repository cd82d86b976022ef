//! podchain's peer-to-peer layer, shared by the provider agent and the publisher CLI.
//!
//! - [`identity`]: the node's ed25519 libp2p key, kept in a file.
//! - [`seal`]: payloads encrypted to a provider's peer id, and the agent's encryption at rest.
//! - [`auth`]: publisher (sr25519) signatures on requests, and replay protection.
//! - [`protocol`]: the wire types of `/podchain/manifest/1` and `/podchain/logs/1`.
//! - [`image`]: the wire types of `/podchain/image/1`, a deal's container image pushed blob by
//!   blob in sealed, signed chunks.
//! - [`push`]: the publisher's image push: skip, resume, resync, retries.
//! - [`status`]: the deal status a logs answer carries, its text form and which states are
//!   terminal.
//! - [`node`]: a libp2p node (TCP, Noise, Yamux) running those protocols (and pushing images) on tokio behind a
//!   clonable [`P2pHandle`].

#![warn(missing_docs)]

pub mod auth;
pub mod error;
pub mod identity;
pub mod image;
pub mod node;
pub mod protocol;
pub mod push;
pub mod seal;
pub mod status;

pub use auth::PublisherSigner;
pub use error::{AuthError, IdentityError, P2pError, SealError};
pub use image::{BlobState, ImageChunk, ImageOffer, ImageReject, ImageRequest, ImageResponse};
pub use libp2p::{identity::Keypair, Multiaddr, PeerId};
pub use node::{
	InboundImageChunk, InboundImageOffer, InboundLogs, InboundManifest, InboundRequest, P2pConfig,
	P2pHandle, P2pNode,
};
pub use protocol::{
	LogChunk, LogLine, LogsQuery, LogsRequest, LogsResponse, ManifestAck, ManifestRequest,
	ManifestResponse, RejectReason,
};
pub use push::{ImageReader, PushProgress, PushReport};
pub use seal::{AtRestKey, OpeningKey, SealedPayload};
pub use status::PodsStatus;

/// Blake2b-256 as in Substrate: the hash a deal records for its manifest (one definition,
/// the manifest crate's).
pub use podchain_manifest::blake2_256;
