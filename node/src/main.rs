//! podchain node: validator, RPC server and off-chain workers for the podchain marketplace.

#![warn(missing_docs)]
// sc-service and sc-cli fix these error types; the node only passes them through.
#![allow(clippy::result_large_err)]

mod chain_spec;
mod cli;
mod command;
mod rpc;
mod service;

fn main() -> sc_cli::Result<()> {
	command::run()
}
