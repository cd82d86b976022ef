//! # podchain-agent
//!
//! The provider's side of every deal, built from parts that are each testable alone:
//!
//! - [`config`]: settings from a TOML file, the environment and flags;
//! - [`metering`]: integrating the cluster's usage samples into billing units;
//! - [`store`]: crash-safe state (manifests, meters, the report batch in flight);
//! - [`billing`]: a deal's metered usage as a report line the chain accepts;
//! - [`plan`]: the actions that bring the cluster in line with the chain, decided purely
//!   from the finalized chain view and the agent's own state.
//!
//! The chain follower, the libp2p manifest service and the reconcile loop that tie them to
//! the `podchain-cluster` backends come next (see `README.md`).

pub mod billing;
pub mod config;
pub mod metering;
pub mod plan;
pub mod store;
