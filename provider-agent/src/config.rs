//! The agent's settings, from a TOML file, the environment and flags (flags win, then the
//! environment, then the file, then defaults).

use crate::attest::{collateral::CollateralSource, tsm::DEFAULT_REPORT_DIR, AttestSettings};
use clap::{Parser, ValueEnum};
use podchain_cluster::objects::SnapshotPodOptions;
use serde::Deserialize;
use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// Where the agent runs pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
	/// podman on this machine, through its REST API (`podman system service`).
	Podman,
	/// A Kubernetes cluster, from a kubeconfig or in-cluster credentials.
	Kubernetes,
}

/// podchain-agent: runs a provider's deals from podchain on Kubernetes or podman.
///
/// Every option can also be set in the TOML file given by `--config` (same names, with `_`
/// for `-`) or in the environment (`PODCHAIN_AGENT_` and the name in capitals). Flags win over
/// the environment, which wins over the file.
#[derive(Debug, Default, Parser)]
#[command(name = "podchain-agent", version, about, long_about)]
pub struct Flags {
	/// TOML file with settings.
	#[arg(long, env = "PODCHAIN_AGENT_CONFIG")]
	pub config: Option<PathBuf>,
	/// WebSocket RPC URL of a podchain node [default: ws://127.0.0.1:9944].
	#[arg(long, env = "PODCHAIN_AGENT_RPC_URL")]
	pub rpc_url: Option<String>,
	/// File holding the provider account's secret URI or mnemonic (mode 600).
	#[arg(long, env = "PODCHAIN_AGENT_KEY_FILE")]
	pub key_file: Option<PathBuf>,
	/// Where pods run [default: podman].
	#[arg(long, env = "PODCHAIN_AGENT_BACKEND")]
	pub backend: Option<Backend>,
	/// podman's API socket [default: <data-dir>/podman.sock, served by the agent's own
	/// `podman system service`].
	#[arg(long, env = "PODCHAIN_AGENT_PODMAN_SOCKET")]
	pub podman_socket: Option<PathBuf>,
	/// kubeconfig file [default: $KUBECONFIG, ~/.kube/config, or in-cluster credentials].
	#[arg(long, env = "PODCHAIN_AGENT_KUBECONFIG")]
	pub kubeconfig: Option<PathBuf>,
	/// libp2p listen address for manifests and logs [default: /ip4/127.0.0.1/tcp/30555].
	#[arg(long, env = "PODCHAIN_AGENT_P2P_LISTEN")]
	pub p2p_listen: Option<String>,
	/// Address of `/healthz` and `/metrics` [default: 127.0.0.1:9655].
	#[arg(long, env = "PODCHAIN_AGENT_HTTP_LISTEN")]
	pub http_listen: Option<SocketAddr>,
	/// Directory for the agent's state: p2p identity, manifests, usage [default:
	/// ./podchain-agent-data].
	#[arg(long, env = "PODCHAIN_AGENT_DATA_DIR")]
	pub data_dir: Option<PathBuf>,
	/// Seconds between usage samples [default: 5].
	#[arg(long, env = "PODCHAIN_AGENT_SAMPLE_SECONDS")]
	pub sample_seconds: Option<u64>,
	/// Blocks between usage reports on chain [default: 10].
	#[arg(long, env = "PODCHAIN_AGENT_REPORT_EVERY_BLOCKS")]
	pub report_every_blocks: Option<u32>,
	/// Blocks after acceptance to wait for a valid manifest before closing the deal with
	/// reason `ManifestTimeout` [default: 100].
	#[arg(long, env = "PODCHAIN_AGENT_MANIFEST_TIMEOUT_BLOCKS")]
	pub manifest_timeout_blocks: Option<u32>,
	/// Accept pending deals that fit automatically [default: true].
	#[arg(long, env = "PODCHAIN_AGENT_AUTO_ACCEPT")]
	pub auto_accept: Option<bool>,
	/// DNS domain under which deals' registered names are served over HTTP
	/// (`<name>.<domain>`: by the agent's gateway, and on Kubernetes by the deal's Ingress too);
	/// none serves no HTTP hosts. `localhost` serves `http://<name>.localhost:<port>/` on one
	/// machine.
	#[arg(long, env = "PODCHAIN_AGENT_INGRESS_DOMAIN")]
	pub ingress_domain: Option<String>,
	/// Address of the HTTP gateway to deals' named hosts, served when an ingress domain is set
	/// [default: 127.0.0.1:8480].
	#[arg(long, env = "PODCHAIN_AGENT_GATEWAY_LISTEN")]
	pub gateway_listen: Option<SocketAddr>,
	/// Most requests in flight to one deal through the gateway [default: 256].
	#[arg(long, env = "PODCHAIN_AGENT_GATEWAY_MAX_IN_FLIGHT")]
	pub gateway_max_in_flight: Option<usize>,
	/// IPv4 pool of the podman deals' networks, a /26 per deal [default: 10.90.0.0/16].
	#[arg(long, env = "PODCHAIN_AGENT_PODMAN_NETWORK_POOL")]
	pub podman_network_pool: Option<String>,
	/// Install the host firewall rule that keeps podman deals from opening connections to
	/// the host [default: true]. Turn off only where another firewall does it.
	#[arg(long, env = "PODCHAIN_AGENT_PODMAN_FIREWALL")]
	pub podman_firewall: Option<bool>,
	/// Attest the provider's TEE on chain at start and again before the attestation expires
	/// (an Intel TDX guest only; needs a PCCS URL or a collateral file): `--attest`, or
	/// `--attest=false` [default: false].
	#[arg(
		long,
		env = "PODCHAIN_AGENT_ATTEST",
		num_args = 0..=1,
		require_equals = true,
		default_missing_value = "true"
	)]
	pub attest: Option<bool>,
	/// The kernel's configfs-tsm report directory quotes come from [default:
	/// /sys/kernel/config/tsm/report].
	#[arg(long, env = "PODCHAIN_AGENT_TSM_REPORT_DIR")]
	pub tsm_report_dir: Option<PathBuf>,
	/// PCCS (or Intel PCS) URL collateral is fetched from, such as https://pccs.example:8081.
	#[arg(long, env = "PODCHAIN_AGENT_PCCS_URL")]
	pub pccs_url: Option<String>,
	/// Collateral file (dcap-qvl's JSON form), instead of a PCCS: for offline operation.
	#[arg(long, env = "PODCHAIN_AGENT_ATTESTATION_COLLATERAL")]
	pub attestation_collateral: Option<PathBuf>,
	/// Prove storage: snapshot each volume of the provider's SLA deals once per commitment
	/// period, commit its Merkle root on chain and answer the publishers' challenges:
	/// `--storage-proofs=false` to turn off [default: true].
	#[arg(long, env = "PODCHAIN_AGENT_STORAGE_PROOFS")]
	pub storage_proofs: Option<bool>,
	/// Directory of the committed volume snapshots the agent keeps to answer challenges
	/// (as large as the volumes) [default: <data-dir>/storage-proofs].
	#[arg(long, env = "PODCHAIN_AGENT_STORAGE_PROOFS_DIR")]
	pub storage_proofs_dir: Option<PathBuf>,
	/// Image of the pod that reads a volume for a storage proof on Kubernetes: it needs `sleep`
	/// and `tar` [default: docker.io/library/busybox:1.36].
	#[arg(long, env = "PODCHAIN_AGENT_SNAPSHOT_IMAGE")]
	pub snapshot_image: Option<String>,
	/// Directory of the images publishers deliver (content-addressed, shared between deals)
	/// [default: <data-dir>/images].
	#[arg(long, env = "PODCHAIN_AGENT_IMAGES_DIR")]
	pub images_dir: Option<PathBuf>,
	/// Most GiB one deal's delivered images may take [default: 10].
	#[arg(long, env = "PODCHAIN_AGENT_IMAGE_DEAL_LIMIT_GIB")]
	pub image_deal_limit_gib: Option<u64>,
	/// Most GiB all delivered images together may take [default: 100].
	#[arg(long, env = "PODCHAIN_AGENT_IMAGE_STORE_LIMIT_GIB")]
	pub image_store_limit_gib: Option<u64>,
	/// Kubernetes: where to serve delivered images to the cluster's nodes (pull only, plain
	/// HTTP), e.g. `10.0.0.5:5000`; with `--registry-host`, deals may run images their
	/// publishers deliver.
	#[arg(long, env = "PODCHAIN_AGENT_REGISTRY_LISTEN")]
	pub registry_listen: Option<SocketAddr>,
	/// Kubernetes: the `host[:port]` the nodes pull delivered images from (their containerd
	/// configuration maps it to `--registry-listen`), e.g. `podchain-agent.local:5000`.
	#[arg(long, env = "PODCHAIN_AGENT_REGISTRY_HOST")]
	pub registry_host: Option<String>,
	/// What to do [default: run].
	#[command(subcommand)]
	pub command: Option<Command>,
}

/// What the agent is asked to do.
#[derive(Clone, Debug, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
	/// Run the agent (the default).
	Run,
	/// Print the agent's libp2p peer id (creating its identity in the data directory if
	/// needed), to register it on chain as the provider's endpoint.
	PeerId,
	/// Attest the provider's TEE on chain now: a TDX quote from configfs-tsm binding the
	/// provider, its registered peer id and sealing key, with collateral from the PCCS or the
	/// collateral file; prints what the chain recorded, or the chain's error (exit code 1).
	Attest,
}

/// The same settings as read from a TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
	rpc_url: Option<String>,
	key_file: Option<PathBuf>,
	backend: Option<Backend>,
	podman_socket: Option<PathBuf>,
	kubeconfig: Option<PathBuf>,
	p2p_listen: Option<String>,
	http_listen: Option<SocketAddr>,
	data_dir: Option<PathBuf>,
	sample_seconds: Option<u64>,
	report_every_blocks: Option<u32>,
	manifest_timeout_blocks: Option<u32>,
	auto_accept: Option<bool>,
	ingress_domain: Option<String>,
	gateway_listen: Option<SocketAddr>,
	gateway_max_in_flight: Option<usize>,
	podman_network_pool: Option<String>,
	podman_firewall: Option<bool>,
	attest: Option<bool>,
	tsm_report_dir: Option<PathBuf>,
	pccs_url: Option<String>,
	attestation_collateral: Option<PathBuf>,
	storage_proofs: Option<bool>,
	storage_proofs_dir: Option<PathBuf>,
	snapshot_image: Option<String>,
	images_dir: Option<PathBuf>,
	image_deal_limit_gib: Option<u64>,
	image_store_limit_gib: Option<u64>,
	registry_listen: Option<SocketAddr>,
	registry_host: Option<String>,
}

/// The agent's resolved settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
	/// WebSocket RPC URL of a podchain node.
	pub rpc_url: String,
	/// File with the provider's secret; `None` reads `PODCHAIN_AGENT_KEY` instead.
	pub key_file: Option<PathBuf>,
	/// Where pods run.
	pub backend: Backend,
	/// podman's API socket; `None` starts the agent's own service.
	pub podman_socket: Option<PathBuf>,
	/// kubeconfig file; `None` uses the usual lookup.
	pub kubeconfig: Option<PathBuf>,
	/// libp2p listen address.
	pub p2p_listen: String,
	/// Address of `/healthz` and `/metrics`.
	pub http_listen: SocketAddr,
	/// State directory.
	pub data_dir: PathBuf,
	/// Interval between usage samples.
	pub sample_interval: Duration,
	/// Blocks between usage reports.
	pub report_every_blocks: u32,
	/// Blocks to wait for a manifest after acceptance.
	pub manifest_timeout_blocks: u32,
	/// Accept pending deals that fit automatically.
	pub auto_accept: bool,
	/// Domain under which deals' names are served.
	pub ingress_domain: Option<String>,
	/// Address of the HTTP gateway (served when `ingress_domain` is set).
	pub gateway_listen: SocketAddr,
	/// Most requests in flight to one deal through the gateway.
	pub gateway_max_in_flight: usize,
	/// IPv4 pool of the podman deals' networks.
	pub podman_network_pool: String,
	/// Whether the podman backend installs its host firewall rule.
	pub podman_firewall: bool,
	/// Whether the agent keeps the provider attested while it runs.
	pub attest: bool,
	/// How to attest, when a collateral source is set.
	pub attestation: Option<AttestSettings>,
	/// Whether the agent proves storage of its SLA deals' volumes.
	pub storage_proofs: bool,
	/// Where the committed volume snapshots are kept.
	pub storage_proofs_dir: PathBuf,
	/// Image of the storage-proof pod on Kubernetes.
	pub snapshot_image: String,
	/// Where delivered images are kept.
	pub images_dir: PathBuf,
	/// Most bytes one deal's delivered images may take.
	pub image_deal_limit: u64,
	/// Most bytes all delivered images may take.
	pub image_store_limit: u64,
	/// Where delivered images are served to a Kubernetes cluster's nodes, and the host they
	/// pull them from.
	pub registry: Option<(SocketAddr, String)>,
}

/// Settings that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
	/// The settings file could not be read.
	#[error("cannot read settings file {path}: {source}")]
	Read {
		/// The file.
		path: String,
		/// What went wrong.
		#[source]
		source: std::io::Error,
	},
	/// The settings file is not valid TOML or has unknown or mistyped settings.
	#[error("settings file {path}: {message}")]
	Parse {
		/// The file.
		path: String,
		/// The parser's message, with line and column.
		message: String,
	},
	/// A setting is out of range.
	#[error("{0}")]
	Invalid(String),
}

/// `value` GiB in bytes: at least 1 GiB, and at most what a u64 of bytes holds.
fn gib(setting: &str, value: u64) -> Result<u64, ConfigError> {
	match value.checked_mul(1 << 30) {
		Some(bytes) if value > 0 => Ok(bytes),
		_ => Err(ConfigError::Invalid(format!(
			"{setting} must be from 1 to {} GiB, not {value}",
			u64::MAX >> 30
		))),
	}
}

impl Config {
	/// Resolves `flags` (which already carry the environment) over the settings file they name.
	pub fn resolve(flags: Flags) -> Result<Self, ConfigError> {
		let file = match &flags.config {
			Some(path) => {
				let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
					path: path.display().to_string(),
					source,
				})?;
				toml::from_str::<FileSettings>(&text).map_err(|e| ConfigError::Parse {
					path: path.display().to_string(),
					message: e.to_string(),
				})?
			}
			None => FileSettings::default(),
		};
		let data_dir = flags
			.data_dir
			.or(file.data_dir)
			.unwrap_or_else(|| PathBuf::from("podchain-agent-data"));
		let config = Config {
			storage_proofs: flags.storage_proofs.or(file.storage_proofs).unwrap_or(true),
			storage_proofs_dir: flags
				.storage_proofs_dir
				.or(file.storage_proofs_dir)
				.unwrap_or_else(|| data_dir.join("storage-proofs")),
			snapshot_image: flags
				.snapshot_image
				.or(file.snapshot_image)
				.unwrap_or_else(|| SnapshotPodOptions::default().image),
			images_dir: flags
				.images_dir
				.or(file.images_dir)
				.unwrap_or_else(|| data_dir.join("images")),
			image_deal_limit: gib(
				"image-deal-limit-gib",
				flags.image_deal_limit_gib.or(file.image_deal_limit_gib).unwrap_or(10),
			)?,
			registry: match (
				flags.registry_listen.or(file.registry_listen),
				flags.registry_host.or(file.registry_host),
			) {
				(Some(listen), Some(host)) => Some((listen, host)),
				(None, None) => None,
				_ => {
					return Err(ConfigError::Invalid(
						"registry-listen and registry-host go together".into(),
					))
				}
			},
			image_store_limit: gib(
				"image-store-limit-gib",
				flags.image_store_limit_gib.or(file.image_store_limit_gib).unwrap_or(100),
			)?,
			rpc_url: flags.rpc_url.or(file.rpc_url).unwrap_or_else(|| "ws://127.0.0.1:9944".into()),
			key_file: flags.key_file.or(file.key_file),
			backend: flags.backend.or(file.backend).unwrap_or(Backend::Podman),
			podman_socket: flags.podman_socket.or(file.podman_socket),
			kubeconfig: flags.kubeconfig.or(file.kubeconfig),
			p2p_listen: flags
				.p2p_listen
				.or(file.p2p_listen)
				.unwrap_or_else(|| "/ip4/127.0.0.1/tcp/30555".into()),
			http_listen: flags
				.http_listen
				.or(file.http_listen)
				.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9655))),
			data_dir,
			sample_interval: Duration::from_secs(
				flags.sample_seconds.or(file.sample_seconds).unwrap_or(5),
			),
			report_every_blocks: flags
				.report_every_blocks
				.or(file.report_every_blocks)
				.unwrap_or(10),
			manifest_timeout_blocks: flags
				.manifest_timeout_blocks
				.or(file.manifest_timeout_blocks)
				.unwrap_or(100),
			auto_accept: flags.auto_accept.or(file.auto_accept).unwrap_or(true),
			ingress_domain: flags.ingress_domain.or(file.ingress_domain),
			gateway_listen: flags
				.gateway_listen
				.or(file.gateway_listen)
				.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8480))),
			gateway_max_in_flight: flags
				.gateway_max_in_flight
				.or(file.gateway_max_in_flight)
				.unwrap_or(256),
			podman_network_pool: flags
				.podman_network_pool
				.or(file.podman_network_pool)
				.unwrap_or_else(|| podchain_cluster::podman::DEFAULT_NETWORK_POOL.to_owned()),
			podman_firewall: flags.podman_firewall.or(file.podman_firewall).unwrap_or(true),
			attest: flags.attest.or(file.attest).unwrap_or(false),
			attestation: attestation_settings(
				flags.tsm_report_dir.or(file.tsm_report_dir),
				flags.pccs_url.or(file.pccs_url),
				flags.attestation_collateral.or(file.attestation_collateral),
			)?,
		};
		config.validate()?;
		Ok(config)
	}

	fn validate(&self) -> Result<(), ConfigError> {
		let invalid = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
		if !(self.rpc_url.starts_with("ws://") || self.rpc_url.starts_with("wss://")) {
			return invalid("rpc-url must be a ws:// or wss:// URL");
		}
		if self.sample_interval.is_zero() || self.sample_interval > Duration::from_secs(3600) {
			return invalid("sample-seconds must be between 1 and 3600");
		}
		if self.report_every_blocks == 0 {
			return invalid("report-every-blocks must be at least 1");
		}
		if let Some(domain) = &self.ingress_domain {
			let label_ok = |l: &str| {
				!l.is_empty()
					&& l.len() <= 63
					&& l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
					&& !l.starts_with('-')
					&& !l.ends_with('-')
			};
			if domain.len() > 190 || !domain.split('.').all(label_ok) {
				return invalid(
					"ingress-domain must be a lowercase DNS name such as deals.example.com",
				);
			}
		}
		if self.manifest_timeout_blocks == 0 {
			return invalid("manifest-timeout-blocks must be at least 1");
		}
		if !(1..=65_536).contains(&self.gateway_max_in_flight) {
			return invalid("gateway-max-in-flight must be between 1 and 65536");
		}
		if let Some((_, host)) = &self.registry {
			if self.backend != Backend::Kubernetes {
				return invalid("registry-listen serves a Kubernetes cluster's nodes: use it with backend = kubernetes");
			}
			let host_ok = !host.is_empty()
				&& host.len() <= 255
				&& host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
			if !host_ok {
				return invalid(
					"registry-host must be a host[:port] such as registry.podchain.local:5000",
				);
			}
		}
		if self.attest && self.attestation.is_none() {
			return invalid("attest needs a collateral source: pccs-url or attestation-collateral");
		}
		Ok(())
	}
}

/// How to attest, when a collateral source is given.
fn attestation_settings(
	report_dir: Option<PathBuf>,
	pccs_url: Option<String>,
	collateral_file: Option<PathBuf>,
) -> Result<Option<AttestSettings>, ConfigError> {
	let invalid = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
	let collateral = match (pccs_url, collateral_file) {
		(Some(_), Some(_)) => {
			return invalid("give pccs-url or attestation-collateral, not both");
		}
		(Some(url), None) if !(url.starts_with("https://") || url.starts_with("http://")) => {
			return invalid("pccs-url must be an https:// (or http://) URL");
		}
		(Some(url), None) => CollateralSource::Pccs(url),
		(None, Some(path)) => CollateralSource::File(path),
		(None, None) => return Ok(None),
	};
	let report_dir = report_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_REPORT_DIR));
	Ok(Some(AttestSettings { report_dir, collateral }))
}

#[cfg(test)]
mod tests {
	use super::*;
	use std::io::Write;

	fn settings_file(text: &str) -> tempfile::NamedTempFile {
		let mut file = tempfile::NamedTempFile::new().unwrap();
		file.write_all(text.as_bytes()).unwrap();
		file
	}

	#[test]
	fn defaults_serve_a_local_dev_chain_with_podman() {
		let config = Config::resolve(Flags::default()).unwrap();
		assert_eq!(config.rpc_url, "ws://127.0.0.1:9944");
		assert_eq!(config.backend, Backend::Podman);
		assert_eq!(config.http_listen, "127.0.0.1:9655".parse().unwrap());
		assert_eq!(config.report_every_blocks, 10);
		assert!(config.auto_accept);
		assert_eq!(config.gateway_listen, "127.0.0.1:8480".parse().unwrap());
		assert_eq!(config.gateway_max_in_flight, 256);
		assert_eq!(config.podman_network_pool, "10.90.0.0/16");
		assert!(config.podman_firewall);
		assert_eq!(config.images_dir, PathBuf::from("podchain-agent-data/images"));
		assert_eq!((config.image_deal_limit, config.image_store_limit), (10 << 30, 100 << 30));
	}

	#[test]
	fn flags_win_over_the_file() {
		let file = settings_file(
			"rpc_url = \"ws://127.0.0.1:1\"\nbackend = \"kubernetes\"\nreport_every_blocks = 3\n",
		);
		let flags = Flags {
			config: Some(file.path().to_owned()),
			rpc_url: Some("ws://127.0.0.1:2".into()),
			..Default::default()
		};
		let config = Config::resolve(flags).unwrap();
		assert_eq!(config.rpc_url, "ws://127.0.0.1:2");
		assert_eq!(config.backend, Backend::Kubernetes);
		assert_eq!(config.report_every_blocks, 3);
	}

	#[test]
	fn unknown_or_bad_settings_are_named() {
		let file = settings_file("rpc_uri = \"ws://x\"\n");
		let flags = Flags { config: Some(file.path().to_owned()), ..Default::default() };
		let err = Config::resolve(flags).unwrap_err().to_string();
		assert!(err.contains("rpc_uri"), "{err}");
		let flags = Flags { report_every_blocks: Some(0), ..Default::default() };
		assert!(Config::resolve(flags).unwrap_err().to_string().contains("report-every-blocks"));
		let flags = Flags { rpc_url: Some("http://x".into()), ..Default::default() };
		assert!(Config::resolve(flags).is_err());
		let flags = Flags { ingress_domain: Some("Deals..example".into()), ..Default::default() };
		assert!(Config::resolve(flags).unwrap_err().to_string().contains("ingress-domain"));
		let flags =
			Flags { ingress_domain: Some("deals.example.com".into()), ..Default::default() };
		assert!(Config::resolve(flags).is_ok());
		let flags = Flags { ingress_domain: Some("localhost".into()), ..Default::default() };
		assert!(Config::resolve(flags).is_ok(), "one machine serves <name>.localhost");
		let flags = Flags { gateway_max_in_flight: Some(0), ..Default::default() };
		assert!(Config::resolve(flags).unwrap_err().to_string().contains("gateway-max-in-flight"));
		let flags = Flags { image_deal_limit_gib: Some(0), ..Default::default() };
		assert!(Config::resolve(flags).unwrap_err().to_string().contains("image-deal-limit-gib"));
		let flags = Flags { image_store_limit_gib: Some(u64::MAX), ..Default::default() };
		assert!(Config::resolve(flags).unwrap_err().to_string().contains("image-store-limit-gib"));
		let listen = Some("127.0.0.1:5000".parse().unwrap());
		let flags = Flags { registry_listen: listen, ..Default::default() };
		assert!(Config::resolve(flags).unwrap_err().to_string().contains("go together"));
		let host = Some("registry.podchain.local:5000".to_owned());
		let flags =
			Flags { registry_listen: listen, registry_host: host.clone(), ..Default::default() };
		assert!(Config::resolve(flags).unwrap_err().to_string().contains("backend = kubernetes"));
		let kubernetes = Some(Backend::Kubernetes);
		let flags = Flags {
			registry_listen: listen,
			registry_host: host,
			backend: kubernetes,
			..Default::default()
		};
		assert!(Config::resolve(flags).unwrap().registry.is_some());
		let flags = Flags {
			registry_listen: listen,
			registry_host: Some("bad host".into()),
			backend: kubernetes,
			..Default::default()
		};
		assert!(Config::resolve(flags).unwrap_err().to_string().contains("registry-host"));
	}

	#[test]
	fn attesting_needs_one_collateral_source() {
		let config = Config::resolve(Flags::default()).unwrap();
		assert!(!config.attest);
		assert_eq!(config.attestation, None);
		let flags = Flags { attest: Some(true), ..Default::default() };
		assert!(Config::resolve(flags).unwrap_err().to_string().contains("collateral source"));
		let flags = Flags {
			pccs_url: Some("https://pccs.example:8081".into()),
			attestation_collateral: Some("c.json".into()),
			..Default::default()
		};
		assert!(Config::resolve(flags).unwrap_err().to_string().contains("not both"));
		let flags = Flags { pccs_url: Some("pccs.example".into()), ..Default::default() };
		assert!(Config::resolve(flags).unwrap_err().to_string().contains("pccs-url"));

		let file = settings_file("attest = true\npccs_url = \"https://pccs.example:8081\"\n");
		let flags = Flags { config: Some(file.path().to_owned()), ..Default::default() };
		let config = Config::resolve(flags).unwrap();
		assert!(config.attest);
		assert_eq!(
			config.attestation,
			Some(AttestSettings {
				report_dir: DEFAULT_REPORT_DIR.into(),
				collateral: CollateralSource::Pccs("https://pccs.example:8081".into()),
			})
		);
		let flags = Flags {
			attestation_collateral: Some("c.json".into()),
			tsm_report_dir: Some("/tmp/report".into()),
			..Default::default()
		};
		let settings = Config::resolve(flags).unwrap().attestation.unwrap();
		assert_eq!(settings.collateral, CollateralSource::File("c.json".into()));
		assert_eq!(settings.report_dir, PathBuf::from("/tmp/report"));
	}

	#[test]
	fn the_attest_flag_stands_alone_or_takes_a_value() {
		let flags = Flags::try_parse_from(["podchain-agent", "--attest", "attest"]).unwrap();
		assert_eq!(flags.attest, Some(true));
		assert_eq!(flags.command, Some(Command::Attest));
		let flags = Flags::try_parse_from(["podchain-agent", "--attest=false"]).unwrap();
		assert_eq!(flags.attest, Some(false));
	}
}
