//! Starting the agent from its configuration, and stopping it cleanly.

use crate::{
	agent::{Agent, Settings},
	attest::{renew, AttestError, AttestSettings, Attested, Attestor},
	config::{Backend as BackendKind, Config},
	gateway::{Gateway, GatewaySettings},
	http,
	images::Images,
	manifests::{SpecContext, Vault},
	metrics::Metrics,
	registry,
	storage_proofs::{
		snapshot::SnapshotStore,
		source::{KubeVolumes, PodmanVolumes, VolumeSource},
		Prover,
	},
	store::Store,
};
use podchain_chain::{tx::Submitter, AccountKey};
use podchain_cluster::{
	kube::{DeliveredImages, KubeBackend, KubeOptions},
	objects::BuildOptions,
	podman::{PodmanBackend, PodmanOptions},
	Backend,
};
use podchain_image::store::StoreLimits;
use podchain_p2p::{identity, AtRestKey, Keypair, P2pConfig, P2pNode};
use std::{path::Path, sync::Arc, time::Duration};

/// Environment variable holding the provider's secret when no key file is given.
pub const KEY_ENV: &str = "PODCHAIN_AGENT_KEY";

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
	/// No key was given, or it could not be read.
	#[error("provider key: {0}")]
	Key(String),
	/// The data directory or the agent's store could not be used.
	#[error("data directory {path}: {message}")]
	DataDir {
		/// The directory.
		path: String,
		/// What went wrong.
		message: String,
	},
	/// The cluster backend could not start.
	#[error("cluster backend: {0}")]
	Backend(#[from] podchain_cluster::ClusterError),
	/// The libp2p node could not start.
	#[error("libp2p: {0}")]
	P2p(String),
	/// The registry of delivered images could not start.
	#[error("image registry: {0}")]
	Registry(String),
	/// The HTTP gateway could not bind.
	#[error("cannot serve the HTTP gateway on {addr}: {source}")]
	Gateway {
		/// The address.
		addr: std::net::SocketAddr,
		/// What went wrong.
		#[source]
		source: std::io::Error,
	},
	/// Attesting failed.
	#[error("attestation: {0}")]
	Attest(#[from] AttestError),
	/// The HTTP endpoint could not bind.
	#[error("cannot serve /healthz and /metrics on {addr}: {source}")]
	Http {
		/// The address.
		addr: std::net::SocketAddr,
		/// What went wrong.
		#[source]
		source: std::io::Error,
	},
}

/// The provider's account key, from the key file or [`KEY_ENV`].
pub fn provider_key(config: &Config) -> Result<AccountKey, StartError> {
	match &config.key_file {
		Some(path) => AccountKey::from_file(path).map_err(|e| StartError::Key(e.to_string())),
		None => match std::env::var(KEY_ENV) {
			Ok(secret) => {
				AccountKey::from_secret(&secret).map_err(|e| StartError::Key(e.to_string()))
			}
			Err(_) => Err(StartError::Key(format!(
				"give --key-file (a file holding the secret URI or mnemonic, mode 600) or set {KEY_ENV}"
			))),
		},
	}
}

/// Creates the data directory (owner-only) if needed.
fn data_dir(path: &Path) -> Result<(), StartError> {
	let failed = |e: std::io::Error| StartError::DataDir {
		path: path.display().to_string(),
		message: e.to_string(),
	};
	std::fs::create_dir_all(path).map_err(failed)?;
	#[cfg(unix)]
	{
		use std::os::unix::fs::PermissionsExt;
		std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(failed)?;
	}
	Ok(())
}

/// The agent's libp2p identity (created on first use in the data directory).
pub fn p2p_identity(config: &Config) -> Result<Keypair, StartError> {
	data_dir(&config.data_dir)?;
	identity::load_or_create(&config.data_dir.join("p2p-identity"))
		.map_err(|e| StartError::P2p(e.to_string()))
}

/// The key the registry's repository tokens are derived from: a hash of the identity's secret
/// under a label of its own, distinct from every other use of it.
fn registry_key(keypair: &Keypair) -> Result<[u8; 32], StartError> {
	let ed25519 = keypair
		.clone()
		.try_into_ed25519()
		.map_err(|_| StartError::P2p("the identity is not an ed25519 key".into()))?;
	let secret = ed25519.secret();
	Ok(podchain_manifest::blake2_256(
		&[b"podchain-agent/registry-key/v1".as_slice(), secret.as_ref()].concat(),
	))
}

/// Runs the agent until SIGINT or SIGTERM.
pub async fn run(config: Config) -> Result<(), StartError> {
	let key = provider_key(&config)?;
	let keypair = p2p_identity(&config)?;
	// Only when the operator asked: the agent never attests on its own initiative.
	let attestor = match (&config.attestation, config.attest) {
		(Some(settings), true) => {
			Some(Attestor::new(settings, &keypair).map_err(|e| StartError::P2p(e.to_string()))?)
		}
		_ => None,
	};
	let at_rest = AtRestKey::from_keypair(&keypair).map_err(|e| StartError::P2p(e.to_string()))?;
	let store_path = config.data_dir.join("agent.redb");
	let store = Arc::new(Store::open(&store_path).map_err(|e| StartError::DataDir {
		path: store_path.display().to_string(),
		message: e.to_string(),
	})?);
	let vault = Vault::open(store.clone(), at_rest).map_err(|e| StartError::DataDir {
		path: store_path.display().to_string(),
		message: e.to_string(),
	})?;

	// The registry's secret: derived from the identity, so repositories outlive restarts.
	let registry_key = registry_key(&keypair)?;
	let kube_options = KubeOptions {
		delivered_images: config
			.registry
			.as_ref()
			.map(|(_, host)| DeliveredImages { host: host.clone(), key: registry_key }),
		..KubeOptions::default()
	};
	let mut metrics = Metrics::default();
	let mut build = BuildOptions::default();
	build.snapshot.image = config.snapshot_image.clone();
	type Backends = (Arc<dyn Backend>, Arc<dyn VolumeSource>, Option<Arc<PodmanBackend>>);
	let (backend, volumes, podman): Backends = match config.backend {
		BackendKind::Podman => {
			let podman = Arc::new(match &config.podman_socket {
				Some(socket) => PodmanBackend::connect(socket).await?,
				None => {
					let mut options = PodmanOptions::new(config.data_dir.join("podman"));
					options.network_pool = config.podman_network_pool.clone();
					options.firewall = config.podman_firewall;
					PodmanBackend::start(options).await?
				}
			});
			tracing::info!(socket = %podman.socket().display(), "podman backend ready");
			metrics.count_podman_requests(podman.requests());
			let watched = Arc::downgrade(&podman);
			metrics.podman_events_followed(move || {
				watched.upgrade().is_some_and(|podman| podman.follows_events())
			});
			(podman.clone(), Arc::new(PodmanVolumes(podman.clone())), Some(podman))
		}
		BackendKind::Kubernetes => {
			let kube = Arc::new(
				KubeBackend::from_kubeconfig(config.kubeconfig.as_deref(), kube_options.clone())
					.await?,
			);
			tracing::info!("Kubernetes backend ready");
			(kube.clone(), Arc::new(KubeVolumes { kube, options: build.clone() }), None)
		}
	};

	let metrics = Arc::new(metrics);
	// A metering source counts as failing for a few samples after its last failure.
	metrics.metering.set_window((config.sample_interval * 3).max(Duration::from_secs(60)));
	let http = http::serve(config.http_listen, metrics.clone())
		.await
		.map_err(|source| StartError::Http { addr: config.http_listen, source })?;
	// The gateway serves registered names, so it runs where names are served.
	let mut gateway_task = None;
	let gateway = match &config.ingress_domain {
		Some(domain) => {
			let settings = GatewaySettings {
				max_in_flight_per_deal: config.gateway_max_in_flight,
				// On Kubernetes requests come through each deal's Ingress, which the gateway
				// does not see: stopping a deal for being idle there would stop it for good.
				stop_idle_deals: config.backend == BackendKind::Podman,
				..GatewaySettings::default()
			};
			let gateway = Gateway::new(settings, backend.clone(), metrics.gateway.clone());
			let addr = config.gateway_listen;
			let listener = tokio::net::TcpListener::bind(addr)
				.await
				.map_err(|source| StartError::Gateway { addr, source })?;
			tracing::info!(%addr, %domain, "serving deals' names: http://<name>.{domain}/");
			gateway_task = Some(gateway.serve(listener));
			Some(gateway)
		}
		None => None,
	};

	let listen = config
		.p2p_listen
		.parse()
		.map_err(|e| StartError::P2p(format!("{}: {e}", config.p2p_listen)))?;
	let p2p_config = P2pConfig { listen_addrs: vec![listen], serve: true, ..Default::default() };
	let mut p2p =
		P2pNode::spawn(keypair, p2p_config).await.map_err(|e| StartError::P2p(e.to_string()))?;
	let inbound = p2p.take_inbound().ok_or_else(|| StartError::P2p("no inbound queue".into()))?;
	let handle = p2p.handle();
	tracing::info!(
		provider = %key.account_id(),
		peer_id = %handle.local_peer_id(),
		listen = ?handle.listen_addrs(),
		"agent started"
	);

	let images = if backend.runs_delivered_images() {
		data_dir(&config.images_dir)?;
		let limits =
			StoreLimits { per_deal: config.image_deal_limit, total: config.image_store_limit };
		let images = Images::open(&config.images_dir, limits).map_err(|e| StartError::DataDir {
			path: config.images_dir.display().to_string(),
			message: e.to_string(),
		})?;
		tracing::info!(dir = %config.images_dir.display(), bytes = images.size(), "image store ready");
		Some(images)
	} else {
		None
	};
	let specs = SpecContext {
		provider: key.account_id().to_string(),
		ingress_domain: config.ingress_domain.clone(),
		build,
		delivered_images: images.is_some(),
	};
	let agent = Arc::new(Agent {
		settings: Settings {
			rpc_url: config.rpc_url.clone(),
			report_every_blocks: config.report_every_blocks,
			manifest_timeout_blocks: config.manifest_timeout_blocks,
			auto_accept: config.auto_accept,
			sample_interval: config.sample_interval,
		},
		provider: key.account_id(),
		submitter: Submitter::new(key),
		backend,
		store,
		vault,
		images,
		specs,
		metrics,
		snapshot: Default::default(),
		sent: Default::default(),
		last_report: Default::default(),
		sampled_since_start: Default::default(),
		last_heartbeat: Default::default(),
		sla_passed: Default::default(),
		accepted_in_best: Default::default(),
		wake: Default::default(),
		gateway,
		route_ports: Default::default(),
	});
	let mut tasks = vec![
		tokio::spawn(agent.clone().follow()),
		tokio::spawn(agent.clone().serve(inbound)),
		tokio::spawn(agent.clone().sample_forever()),
		http,
	];
	tasks.extend(gateway_task);
	if let Some(attestor) = attestor {
		tasks.push(tokio::spawn(renew::renew_forever(attestor, agent.clone())));
	}
	if let (Some((listen, _)), Some(images)) = (&config.registry, &agent.images) {
		let source = agent.clone();
		let pulls = images.pulls(move |deal| source.pullable_images(deal));
		let (_, server) = registry::serve(*listen, registry_key, Arc::new(pulls))
			.await
			.map_err(|e| StartError::Registry(format!("cannot listen on {listen}: {e}")))?;
		tasks.push(server);
	}
	if config.storage_proofs {
		data_dir(&config.storage_proofs_dir)?;
		let store = SnapshotStore::new(config.storage_proofs_dir.clone());
		let prover = Arc::new(Prover::new(agent.clone(), volumes, store));
		tracing::info!(dir = %config.storage_proofs_dir.display(), "proving storage of SLA deals' volumes");
		tasks.push(tokio::spawn(prover.run()));
	}

	shutdown_signal().await;
	tracing::info!("stopping: tenants keep running");
	for task in &tasks {
		task.abort();
	}
	p2p.shutdown().await;
	if let Some(podman) = podman {
		podman.shutdown().await;
	}
	Ok(())
}

/// Attests the provider now (`podchain-agent attest`): what the chain recorded.
pub async fn attest(config: &Config, settings: &AttestSettings) -> Result<Attested, StartError> {
	let key = provider_key(config)?;
	let keypair = p2p_identity(config)?;
	let attestor = Attestor::new(settings, &keypair).map_err(|e| StartError::P2p(e.to_string()))?;
	let node = podchain_chain::connect(&config.rpc_url)
		.await
		.map_err(|e| StartError::Attest(AttestError::Chain(e)))?;
	tracing::info!(
		provider = %key.account_id(),
		peer_id = %attestor.peer_id,
		report_dir = %settings.report_dir.display(),
		"attesting"
	);
	Ok(attestor.attest(&node, &Submitter::new(key)).await?)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
	#[cfg(unix)]
	{
		use tokio::signal::unix::{signal, SignalKind};
		match signal(SignalKind::terminate()) {
			Ok(mut term) => {
				tokio::select! {
					_ = tokio::signal::ctrl_c() => {}
					_ = term.recv() => {}
				}
			}
			Err(_) => {
				let _ = tokio::signal::ctrl_c().await;
			}
		}
	}
	#[cfg(not(unix))]
	{
		let _ = tokio::signal::ctrl_c().await;
	}
}
