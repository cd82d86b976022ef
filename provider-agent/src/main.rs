//! `podchain-agent`: runs a provider's deals from podchain on Kubernetes or podman.

use clap::Parser;
use podchain_agent::{
	config::{Command, Config, Flags},
	run,
};
use std::{io::IsTerminal, process::ExitCode};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
	let flags = Flags::parse();
	let filter = EnvFilter::try_from_env("PODCHAIN_AGENT_LOG")
		.unwrap_or_else(|_| EnvFilter::new("info,podchain_agent=info"));
	tracing_subscriber::fmt()
		.with_env_filter(filter)
		.with_writer(std::io::stderr)
		.with_ansi(std::io::stderr().is_terminal())
		.init();

	let command = flags.command.clone().unwrap_or(Command::Run);
	let config = match Config::resolve(flags) {
		Ok(config) => config,
		Err(e) => {
			eprintln!("error: {e}");
			return ExitCode::from(2);
		}
	};
	let result = match command {
		Command::PeerId => run::p2p_identity(&config).map(|keypair| {
			println!("{}", keypair.public().to_peer_id());
		}),
		Command::Run => run::run(config).await,
		Command::Attest => {
			let Some(settings) = &config.attestation else {
				eprintln!("error: attest needs --pccs-url or --attestation-collateral");
				return ExitCode::from(2);
			};
			run::attest(&config, settings).await.map(|attested| {
				println!(
					"attested: {} with TCB status {}, measurement {}, until {} (Unix seconds)",
					attested.tee, attested.tcb_status, attested.measurement, attested.expires_at
				);
			})
		}
	};
	match result {
		Ok(()) => ExitCode::SUCCESS,
		Err(e) => {
			eprintln!("error: {e}");
			ExitCode::FAILURE
		}
	}
}
