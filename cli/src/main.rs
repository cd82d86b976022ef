//! `podchain`: the publisher's command line for podchain.

mod account;
mod attestation;
mod challenge;
mod console;
mod deals;
mod deploy;
mod error;
mod images;
mod logs;
mod output;
mod provider_link;
mod providers;
mod terms;
mod units;

use clap::{Parser, Subcommand};
use error::CliError;
use output::Output;
use podchain_chain::{AccountKey, Node};
use std::{path::PathBuf, process::ExitCode};

/// podchain: run containers on the decentralized podchain market.
///
/// Exit codes: 0 success, 2 bad input, 3 node unreachable, 4 refused by the chain, 5 provider
/// offline or refusing, 6 timed out.
#[derive(Debug, Parser)]
#[command(name = "podchain", version, about, long_about)]
struct Cli {
	/// WebSocket RPC URL of a podchain node.
	#[arg(long, global = true, env = "PODCHAIN_RPC", default_value = "ws://127.0.0.1:9944")]
	rpc: String,
	/// The account's key file [default: ~/.config/podchain/account.key].
	#[arg(long, global = true, env = "PODCHAIN_KEY_FILE")]
	key_file: Option<PathBuf>,
	/// Print results as JSON (one document on stdout; `logs` prints one object per line), for
	/// scripts.
	#[arg(long, global = true)]
	json: bool,
	#[command(subcommand)]
	command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
	/// Create, import or show the publisher account.
	#[command(subcommand)]
	Account(AccountCommand),
	/// List registered providers: region, attestation, free capacity, prices.
	Providers {
		#[command(flatten)]
		filters: providers::Filters,
		/// Instead, verify this provider's attestation here: read its quote and collateral
		/// from the chain and check them with the chain's verifier.
		#[arg(long, value_name = "ACCOUNT")]
		verify: Option<String>,
	},
	/// Ranked offers for a manifest, with the price per hour and for a duration.
	Quote {
		/// The manifest (YAML or JSON).
		manifest: PathBuf,
		/// How long to price (`30m`, `24h`, `7d`).
		#[arg(long = "for", default_value = "24h")]
		duration: String,
		#[command(flatten)]
		filters: providers::Filters,
	},
	/// Deploy a manifest: pick a provider, lock the deposit, deliver the manifest, wait until
	/// it runs.
	Deploy(deploy::DeployArgs),
	/// Your open deals, or one deal in detail (with its pods' status from the provider).
	Status {
		/// A deal.
		id: Option<u64>,
	},
	/// A deal's bill: totals per resource and each settled period.
	Bill {
		/// The deal.
		id: u64,
		/// First block to read settlements from [default: the deal's acceptance].
		#[arg(long)]
		from: Option<u32>,
	},
	/// Add funds to a deal's escrow.
	TopUp {
		/// The deal.
		id: u64,
		/// Amount in POD.
		#[arg(value_parser = units::parse_pod)]
		amount: u128,
	},
	/// Run a new manifest in a deal.
	Update {
		/// The deal.
		id: u64,
		/// The new manifest.
		manifest: PathBuf,
		/// Seconds to wait for the provider.
		#[arg(long, default_value = "180")]
		timeout: u64,
	},
	/// Close a deal: its pods stop and the rest of the escrow comes back.
	Close {
		/// The deal.
		id: u64,
	},
	/// Names for deals (served as `<name>.<provider's domain>`).
	#[command(subcommand)]
	Name(NameCommand),
	/// Ask the provider of an SLA deal to prove it holds a volume's committed snapshot: the
	/// chain picks random chunks; a wrong or missing answer moves stake to you.
	Challenge {
		/// The deal.
		id: u64,
		/// The volume [default: the deal's only committed volume].
		#[arg(long)]
		volume: Option<String>,
		/// Seconds to wait for the verdict.
		#[arg(long, default_value = "300")]
		timeout: u64,
	},
	/// Serve the web console (publishers' and providers' dashboard) on 127.0.0.1, with a local
	/// API that delivers manifests and reads logs with this CLI's key.
	Console(console::ConsoleArgs),
	/// A deal's container logs, from its provider (to the deal's publisher only).
	Logs {
		/// The deal.
		id: u64,
		/// Keep printing new lines until Ctrl-C or the deal ends.
		#[arg(long, short)]
		follow: bool,
		/// Start this many lines before the end [default: 100].
		#[arg(long)]
		tail: Option<u32>,
		/// Only this container.
		#[arg(long)]
		container: Option<String>,
	},
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
	/// Create a new account with a fresh secret phrase.
	New {
		/// Replace an existing key file.
		#[arg(long)]
		force: bool,
	},
	/// Import a secret phrase or URI (`//Alice` on a dev chain); read from stdin if omitted.
	Import {
		/// The secret (prefer stdin: arguments are visible to other users).
		secret: Option<String>,
		/// Replace an existing key file.
		#[arg(long)]
		force: bool,
	},
	/// The account's address and balance.
	Show,
}

#[derive(Debug, Subcommand)]
enum NameCommand {
	/// Bind a DNS label to a deal (holds a deposit until the deal ends).
	Register {
		/// The label: lowercase letters, digits and '-'.
		label: String,
		/// The deal.
		id: u64,
	},
}

/// What every command shares.
pub struct Context {
	/// RPC URL.
	pub rpc: String,
	/// Key file.
	pub key_file: PathBuf,
	/// Output.
	pub out: Output,
}

impl Context {
	/// Connects to the node.
	pub async fn connect(&self) -> Result<Node, CliError> {
		podchain_chain::connect(&self.rpc).await.map_err(CliError::chain)
	}

	/// The account key.
	pub fn key(&self) -> Result<AccountKey, CliError> {
		if !self.key_file.exists() {
			return Err(CliError::input(format!(
				"no account key at {}: run `podchain account new` or `podchain account import`",
				self.key_file.display()
			)));
		}
		AccountKey::from_file(&self.key_file).map_err(CliError::input)
	}
}

fn default_key_file() -> PathBuf {
	let config = std::env::var_os("XDG_CONFIG_HOME")
		.map(PathBuf::from)
		.or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
		.unwrap_or_else(|| PathBuf::from("."));
	config.join("podchain").join("account.key")
}

async fn run(cli: Cli) -> Result<(), CliError> {
	let ctx = Context {
		rpc: cli.rpc,
		key_file: cli.key_file.unwrap_or_else(default_key_file),
		out: Output::new(cli.json),
	};
	match cli.command {
		Command::Account(AccountCommand::New { force }) => account::new(&ctx, force),
		Command::Account(AccountCommand::Import { secret, force }) => {
			account::import(&ctx, secret, force)
		}
		Command::Account(AccountCommand::Show) => account::show(&ctx).await,
		Command::Providers { verify: Some(provider), .. } => {
			attestation::verify(&ctx, &provider).await
		}
		Command::Providers { filters, verify: None } => providers::list(&ctx, &filters).await,
		Command::Quote { manifest, duration, filters } => {
			providers::quote(&ctx, &manifest, &duration, &filters).await
		}
		Command::Deploy(args) => deploy::run(&ctx, &args).await,
		Command::Status { id } => deals::status(&ctx, id).await,
		Command::Bill { id, from } => deals::bill(&ctx, id, from).await,
		Command::TopUp { id, amount } => deals::top_up(&ctx, id, amount).await,
		Command::Update { id, manifest, timeout } => {
			deals::update(&ctx, id, &manifest, timeout).await
		}
		Command::Close { id } => deals::close(&ctx, id).await,
		Command::Name(NameCommand::Register { label, id }) => {
			deals::register_name(&ctx, &label, id).await
		}
		Command::Challenge { id, volume, timeout } => {
			challenge::run(&ctx, id, volume.as_deref(), timeout).await
		}
		Command::Console(args) => console::run(&ctx, &args).await,
		Command::Logs { id, follow, tail, container } => {
			logs::run(&ctx, id, follow, tail, container).await
		}
	}
}

#[tokio::main]
async fn main() -> ExitCode {
	let cli = Cli::parse();
	match run(cli).await {
		Ok(()) => ExitCode::SUCCESS,
		Err(e) => {
			eprintln!("error: {e}");
			ExitCode::from(e.code())
		}
	}
}
