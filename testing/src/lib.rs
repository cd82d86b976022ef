//! # podchain testkit
//!
//! What the end-to-end tests of the agent and the CLI share: processes bound to 127.0.0.1
//! (a dev node, a provider agent on its podman backend), waiting with a deadline, a
//! registered provider, the locally built demo image, and a fake configfs-tsm tree for
//! machines without TDX.
//!
//! Binaries come from the same `cargo test --release --workspace` run (it builds every
//! package's binaries), found beside the test executable, or from `PODCHAIN_NODE`,
//! `PODCHAIN_AGENT_BIN` and `PODCHAIN_CLI_BIN`.

pub mod agent;
pub mod chain;
pub mod process;
pub mod tsm;

pub use agent::{build_test_archive, build_test_image_into, AgentDir, AgentProcess};
pub use chain::DevNode;
pub use process::{
	binary, free_port, http_get, http_get_at, http_get_host, repo_root, unmount_below, wait_for,
	Proc,
};
pub use tsm::FakeTsm;
