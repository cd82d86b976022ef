//! # podchain-agent
//!
//! The provider's side of every deal, built from parts that are each testable alone:
//!
//! - [`config`]: settings from a TOML file, the environment and flags;
//! - [`chain`]: the provider's deals as read at a finalized block;
//! - [`manifests`]: manifests delivered over libp2p, checked and kept encrypted at rest;
//! - [`images`]: images publishers deliver over libp2p, kept content-addressed and staged
//!   into the cluster when their deal deploys; [`registry`] serves them to a Kubernetes
//!   cluster's nodes (pull only);
//! - [`plan`]: the actions that bring the cluster in line with the chain, decided purely
//!   from the finalized chain view and the agent's own state;
//! - [`metering`]: integrating the cluster's usage samples into billing units;
//! - [`billing`]: a deal's metered usage as a report line the chain accepts;
//! - [`report`]: sending usage reports and settling them from finalized state;
//! - [`store`]: crash-safe state (manifests, meters, the report batch in flight);
//! - [`metrics`] and [`http`]: Prometheus metrics, `/metrics` and `/healthz`;
//! - [`attest`]: TEE attestation: a TDX quote from configfs-tsm, collateral, `registry.attest`;
//! - [`storage_proofs`]: snapshots of SLA deals' volumes, their Merkle roots committed on chain,
//!   and the answers to publishers' storage challenges;
//! - [`agent`], [`execute`] and [`serve`]: the running agent that ties them to a
//!   `podchain-cluster` backend; [`run`] starts it.

pub mod agent;
pub mod attest;
pub mod billing;
pub mod chain;
pub mod config;
pub mod execute;
pub mod gateway;
pub mod heartbeat;
pub mod http;
pub mod images;
pub mod manifests;
pub mod metering;
pub mod metrics;
pub mod plan;
pub mod registry;
pub mod report;
pub mod run;
pub mod serve;
pub mod sla_health;
mod state;
pub mod storage_proofs;
pub mod store;
