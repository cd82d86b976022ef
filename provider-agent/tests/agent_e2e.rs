//! End to end: a real dev node, the real `podchain-agent` binary with its podman backend, and
//! a publisher speaking the real libp2p protocol.
//!
//! A metered deal is created; the manifest goes over libp2p, sealed to the agent; the agent
//! accepts the deal now that it holds its manifest; the publisher registers a name for it and
//! its container answers through the agent's gateway at `<name>.localhost`, from a network of
//! its own, and burns CPU; finalized `report_usage` batches bill it and the provider's balance
//! rises; a known download through the gateway is billed as egress. The node goes down and comes back: the
//! tenant keeps running and billing resumes. The agent is killed (SIGKILL) and kept down for a
//! while, then restarted: the tenant keeps running, and the usage of the downtime is billed
//! once (the bill matches podman's own count of the tenant's CPU, which losing the downtime
//! would break, and the chain refuses any period billed twice). Closing the deal removes the
//! container and settles the last usage. The deal carries SLA terms, and the agent names it in
//! its heartbeats while it runs.
//!
//! Needs podman, runc, catatonit and busybox-static (`scripts/setup.sh`), root, and the node
//! binary built by the same `cargo test --release --workspace` run (or `PODCHAIN_NODE`).

use podchain_chain::{
	deals::{self, BillingMode, CloseReason, DeploymentState},
	runtime::{self, runtime_types as types},
	tx::Submitter,
	AccountKey, Node,
};
use podchain_manifest::Manifest;
use podchain_p2p::{
	protocol::ManifestRequest, Keypair, Multiaddr, P2pConfig, P2pNode, PeerId, PublisherSigner,
};
use podchain_testkit::{http_get, http_get_host, wait_for, AgentDir, AgentProcess, DevNode};
use std::time::{Duration, Instant};

const POD: u128 = 1_000_000_000_000;
/// Bytes of the file the test downloads through the gateway.
const DOWNLOAD_BYTES: u64 = 2_000_000;
/// Price per millicore-second: the container's CPU must outweigh the provider's fees.
const CPU_PRICE: u128 = 100_000_000;
/// How long the agent stays killed.
const AGENT_DOWN_SECS: u64 = 20;
/// The container's CPU limit, which its busy loop uses in full.
const CPU_MILLICORES: u32 = 200;

/// The publisher's key as the p2p protocol's signer.
struct Publisher(AccountKey);

impl PublisherSigner for Publisher {
	fn public(&self) -> [u8; 32] {
		self.0.public()
	}
	fn sign(&self, message: &[u8]) -> [u8; 64] {
		self.0.sign(message)
	}
}

async fn deal(node: &Node, id: u64) -> Option<deals::Deal> {
	deals::deal(&node.finalized().await.ok()?, id).await.ok()?
}

/// Waits until deal `id` is billed past `block`.
async fn billed_past(
	node: &Node,
	agent: &AgentProcess,
	id: u64,
	block: u32,
	what: &str,
	secs: u64,
) {
	let check = || {
		let node = node.clone();
		async move { deal(&node, id).await.filter(|d| d.settled_until > block) }
	};
	wait_for(what, Duration::from_secs(secs), || agent.tail(), check).await;
}

async fn free_balance(node: &Node, who: &AccountKey) -> u128 {
	let at = node.finalized().await.unwrap();
	let account = at
		.storage()
		.fetch(runtime::storage().system().account(), (who.account_id(),))
		.await
		.unwrap()
		.decode()
		.unwrap();
	account.data.free
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_runs_is_billed_survives_an_agent_restart_and_ends() {
	let started = Instant::now();
	let work = tempfile::Builder::new().prefix("podchain-e2e-").tempdir_in("/tmp").unwrap();

	// The chain.
	let (mut dev_node, node) = DevNode::start(work.path().to_owned()).await;
	eprintln!("node up after {:?}", started.elapsed());

	// The provider: its agent's identity registered on chain, then the agent.
	let provider = AccountKey::from_secret("//Charlie").unwrap();
	let publisher = AccountKey::from_secret("//Dave").unwrap();
	let agent_dir = AgentDir::new();
	let mut agent = AgentProcess::new(&dev_node.url(), "//Charlie", &agent_dir, work.path());
	agent.register(&node, &provider, CPU_PRICE).await;
	let peer: PeerId = agent.peer_id().parse().unwrap();
	let agent_addr: Multiaddr = agent.p2p_addr().parse().unwrap();
	let publisher_tx = Submitter::new(publisher.clone());
	let offer = types::pallet_sla::types::SlaOffer {
		max_uptime_target: types::sp_arithmetic::per_things::Permill(990_000),
		min_window_blocks: 10,
		max_window_blocks: 100,
		max_penalty_per_window: POD,
	};
	Submitter::new(provider.clone())
		.submit_and_finalize(&node, &runtime::tx().sla().offer_terms(Some(offer)))
		.await
		.expect("the provider offers SLA terms");
	agent.start();
	agent.healthy().await;
	eprintln!("agent healthy after {:?}", started.elapsed());
	agent_dir.build_test_image();

	// The publisher's deal: a web server (a page and a 2 MB file) that also burns its whole
	// CPU limit, exposed over HTTP.
	let yaml = format!(
		"version: podchain/v1\nname: web\ncontainers:\n  - name: web\n    image: localhost/podchain-demo:latest\n    \
		 command: [sh, -c, \"cp /www/index.html /data/ && head -c {DOWNLOAD_BYTES} /dev/zero > /data/big && \
		 httpd -p 8080 -h /data; while :; do :; done\"]\n    ports: [{{ port: 8080 }}]\n    \
		 resources: {{ cpu: {CPU_MILLICORES}m, memory: 32Mi }}\nexpose:\n  - http: {{ port: 8080 }}\n"
	);
	let manifest = Manifest::from_yaml(&yaml).unwrap();
	let needs = manifest.resources().unwrap();
	let resources = types::podchain_primitives::Resources {
		cpu_millicores: needs.cpu_millicores,
		memory_mib: needs.memory_mib,
		storage_gib: needs.storage_gib,
		gpus: needs.gpus,
	};
	let create = runtime::tx().market().create_deployment(
		provider.account_id(),
		manifest.hash(),
		resources,
		BillingMode::Metered,
		Some(types::podchain_primitives::SlaTerms {
			uptime_target: types::sp_arithmetic::per_things::Permill(900_000),
			window_blocks: 100,
			penalty_per_window: POD / 100,
			health: types::podchain_primitives::HealthCheck {
				path: types::bounded_collections::bounded_vec::BoundedVec(b"/".to_vec()),
				expect_status: 200,
				expect_body: types::bounded_collections::bounded_vec::BoundedVec(Vec::new()),
			},
		}),
		// Prices are not what this test is about: accept any quote; egress up to 10 MiB/s.
		types::pallet_market::types::DealLimits {
			max_prices: types::podchain_primitives::Prices {
				cpu_per_millicore_second: u128::MAX,
				memory_per_mib_second: u128::MAX,
				storage_per_gib_second: u128::MAX,
				gpu_per_second: u128::MAX,
				egress_per_byte: u128::MAX,
			},
			max_egress_bytes_per_second: 10 << 20,
		},
		100 * POD,
	);
	let events = publisher_tx.submit_and_finalize(&node, &create).await.expect("deal created");
	let created = events
		.find_first::<runtime::market::events::DeploymentCreated>()
		.unwrap()
		.expect("DeploymentCreated");
	let id = created.id;
	eprintln!("deal {id} created after {:?}", started.elapsed());

	// Without its manifest the deal is not accepted, however many blocks pass.
	tokio::time::sleep(Duration::from_secs(4)).await;
	assert!(
		matches!(deal(&node, id).await.map(|d| d.state), Some(DeploymentState::Pending { .. })),
		"the agent accepted a deal whose manifest it does not hold:\n{}",
		agent.tail()
	);

	// The publisher's manifest is stored and acknowledged; a stranger's is refused.
	let client = P2pNode::spawn(Keypair::generate_ed25519(), P2pConfig::default()).await.unwrap();
	let handle = client.handle();
	let canonical = manifest.canonical_bytes();
	let ack = wait_for(
		"the agent to take the manifest",
		Duration::from_secs(30),
		|| agent.tail(),
		|| {
			let (handle, addr) = (handle.clone(), agent_addr.clone());
			let request =
				ManifestRequest::new(&Publisher(publisher.clone()), &peer, id, &canonical).unwrap();
			async move {
				match handle.deliver_manifest(peer, [addr], request).await {
					Ok(ack) => Some(ack),
					Err(podchain_p2p::P2pError::Rejected {
						reason: podchain_p2p::protocol::RejectReason::UnknownDeal,
						..
					}) => None,
					Err(e) => panic!("the publisher's manifest is refused: {e}"),
				}
			}
		},
	)
	.await;
	assert_eq!(ack.manifest_hash, manifest.hash());
	eprintln!("manifest delivered after {:?}", started.elapsed());

	let stranger = Publisher(AccountKey::from_secret("//Eve").unwrap());
	let refused = handle
		.deliver_manifest(
			peer,
			[agent_addr.clone()],
			ManifestRequest::new(&stranger, &peer, id, &canonical).unwrap(),
		)
		.await;
	assert!(
		matches!(
			refused,
			Err(podchain_p2p::P2pError::Rejected {
				reason: podchain_p2p::protocol::RejectReason::NotPublisher,
				..
			})
		),
		"a stranger's manifest is refused: {refused:?}"
	);

	// The agent accepts it, now that it holds the manifest.
	let accepted_at = wait_for(
		"the agent to accept the deal",
		Duration::from_secs(60),
		|| agent.tail(),
		|| {
			let node = node.clone();
			async move {
				match deal(&node, id).await?.state {
					DeploymentState::Active { accepted_at } => Some(accepted_at),
					_ => None,
				}
			}
		},
	)
	.await;
	let provider_before = free_balance(&node, &provider).await;

	// The publisher names it; it runs and answers through the agent's gateway.
	let name = format!("web{id}");
	let label = types::bounded_collections::bounded_vec::BoundedVec(name.as_bytes().to_vec());
	publisher_tx
		.submit_and_finalize(&node, &runtime::tx().market().register_name(id, label))
		.await
		.expect("name registered");
	let host = format!("{name}.localhost");
	let gateway = agent.gateway_port;
	wait_for(
		"the container to answer through the gateway",
		Duration::from_secs(60),
		|| agent.tail(),
		|| {
			let host = host.clone();
			async move {
				http_get_host(gateway, &host, "/")
					.filter(|(_, body)| body.contains("podchain-demo ok"))
			}
		},
	)
	.await;
	eprintln!("tenant answers through the gateway after {:?}", started.elapsed());
	assert_eq!(http_get_host(gateway, "nobody.localhost", "/").map(|r| r.0), Some(404));
	// Nothing of the tenant is on the host's loopback: it has a network of its own.
	let address = agent_dir.deal_address(id).expect("the pod's address on its network");
	assert!(!address.ip().is_loopback(), "{address}");

	// The agent names the running deal in its SLA heartbeats.
	wait_for(
		"the agent's heartbeat naming the deal",
		Duration::from_secs(30),
		|| agent.tail(),
		|| {
			let node = node.clone();
			async move {
				let at = node.finalized().await.ok()?;
				let tracked = at.storage().entry(runtime::storage().sla().tracked()).ok()?;
				let deal = tracked.try_fetch((id,)).await.ok()??.decode().ok()?;
				(deal.heartbeats.bits != 0).then_some(())
			}
		},
	)
	.await;
	eprintln!("heartbeat seen after {:?}", started.elapsed());

	// Usage is billed in finalized reports, and the provider earns more than its fees.
	wait_for(
		"a finalized usage report",
		Duration::from_secs(60),
		|| agent.tail(),
		|| {
			let node = node.clone();
			async move {
				deal(&node, id)
					.await
					.filter(|d| d.settled_until > accepted_at + 3 && d.charged.cpu > 0)
			}
		},
	)
	.await;
	wait_for(
		"the provider's balance to rise",
		Duration::from_secs(60),
		|| agent.tail(),
		|| {
			let node = node.clone();
			let provider = provider.clone();
			async move { (free_balance(&node, &provider).await > provider_before).then_some(()) }
		},
	)
	.await;

	// The node goes down and comes back: the tenant keeps running, the agent reconnects and
	// billing resumes.
	dev_node.kill();
	tokio::time::sleep(Duration::from_secs(5)).await;
	assert!(http_get_host(gateway, &host, "/").is_some(), "the tenant runs while the node is down");
	let node = dev_node.restart().await;
	let back_at = node.finalized().await.unwrap().block_number() as u32;
	// A report sent just before the node died left with its pool: the agent waits for that
	// transaction's mortality (64 blocks) before reporting the same usage again.
	billed_past(&node, &agent, id, back_at, "billing after the node's return", 150).await;
	eprintln!("agent reconnected and billed after the node's return: {:?}", started.elapsed());

	// From here on, what the tenant uses must all be billed, the agent's downtime included.
	// (The node's outage above is not billable: the chain bills by blocks, and none came.)
	let used_from = agent_dir.tenant_cpu_millicore_seconds();
	let billed_from = deal(&node, id).await.unwrap().charged.cpu;

	// Kill the agent and keep it down: the tenant keeps running.
	agent.kill();
	// A report sent just before the kill may still land; nothing after it.
	tokio::time::sleep(Duration::from_secs(5)).await;
	let down_from = deal(&node, id).await.unwrap().settled_until;
	tokio::time::sleep(Duration::from_secs(AGENT_DOWN_SECS - 5)).await;
	assert!(
		podchain_testkit::http_get_at(address, &host, "/").is_some(),
		"the tenant runs while the agent is down"
	);
	assert_eq!(
		deal(&node, id).await.unwrap().settled_until,
		down_from,
		"nothing billed while down"
	);
	agent.start();
	agent.healthy().await;
	let restarted_at = node.finalized().await.unwrap().block_number() as u32;
	billed_past(&node, &agent, id, restarted_at, "billing to cover the downtime", 60).await;

	// Egress: a known download through the gateway is billed, bytes on the wire included.
	let egress_from = deal(&node, id).await.unwrap().charged.egress;
	let downloads = 5u64;
	for _ in 0..downloads {
		let (status, body) = http_get_host(gateway, &host, "/big").expect("the download");
		assert_eq!((status, body.len()), (200, DOWNLOAD_BYTES as usize));
	}
	let sent = downloads * DOWNLOAD_BYTES;
	// Reports bill what was sampled by the block they end at: the download's bytes land in
	// one of the next few.
	let billed_egress = wait_for(
		"the download to be billed as egress",
		Duration::from_secs(60),
		|| agent.tail(),
		|| {
			let node = node.clone();
			async move {
				let billed = deal(&node, id).await?.charged.egress - egress_from;
				(billed >= u128::from(sent)).then_some(billed)
			}
		},
	)
	.await;
	eprintln!(
		"egress: {sent} bytes downloaded, {billed_egress} billed ({:+.2}%)",
		(billed_egress as f64 / sent as f64 - 1.0) * 100.0
	);
	assert!(
		billed_egress * 100 <= u128::from(sent) * 108,
		"egress over-billed: {billed_egress} for {sent}"
	);
	let metrics = http_get(agent.http_port, "/metrics").unwrap().1;
	let series =
		format!("podchain_agent_gateway_body_bytes_total{{deal=\"{id}\",direction=\"out\"}}");
	assert!(metrics.contains(&series), "{metrics}");

	// The CPU the tenant used so far, by podman's own count.
	let used_before_close = agent_dir.tenant_cpu_millicore_seconds();

	// Closing: the container goes, the last usage is reported, the deal ends.
	publisher_tx
		.submit_and_finalize(
			&node,
			&runtime::tx().market().close_deployment(id, CloseReason::PublisherRequest),
		)
		.await
		.expect("deal closed");
	// The deal leaves storage once its usage is reported up to the close.
	wait_for(
		"the deal's last report",
		Duration::from_secs(90),
		|| agent.tail(),
		|| {
			let node = node.clone();
			async move {
				let at = node.finalized().await.ok()?;
				deals::deal(&at, id).await.ok()?.is_none().then_some(())
			}
		},
	)
	.await;
	let (final_settled, final_cpu) = settled_totals(&node, id).await;
	wait_for(
		"the container to be gone",
		Duration::from_secs(30),
		|| agent.tail(),
		|| {
			let host = host.clone();
			// The address may lead elsewhere once the deal's network is gone: what matters is
			// that the tenant no longer answers there.
			let answer = podchain_testkit::http_get_at(address, &host, "/");
			async move { answer.filter(|(status, _)| *status == 200).is_none().then_some(()) }
		},
	)
	.await;
	assert_eq!(agent_dir.podman(&["ps", "--all", "--quiet"]), "", "no container left");

	// The usage since the node's return (the agent's downtime included) is billed: the bill
	// may run ahead of podman's count by what was not yet reported at the start, never behind
	// it by more than sampling jitter. Losing the downtime would cost over half. And never
	// above the limit over the whole deal.
	let billed = (final_cpu - billed_from) / CPU_PRICE;
	let used = used_before_close - used_from;
	let limit = u128::from(CPU_MILLICORES) * u128::from(final_settled - accepted_at);
	eprintln!(
		"billed {billed} millicore-seconds for the {used} the tenant used since the node's \
		 return ({:.1}%); total {:?}",
		billed as f64 * 100.0 / used.max(1) as f64,
		started.elapsed()
	);
	assert!(final_cpu / CPU_PRICE <= limit, "never above the limit");
	assert!(billed * 100 >= used * 90, "usage was lost: {billed} of {used}\n{}", agent.tail());

	let metrics = http_get(agent.http_port, "/metrics").unwrap().1;
	assert!(
		metrics.contains("podchain_agent_usage_reported_total{kind=\"cpu_millicore_seconds\"}"),
		"{metrics}"
	);
	drop(client);
}

/// The last block a deal was settled to and its total CPU charge, from its `Settled` events.
async fn settled_totals(node: &Node, id: u64) -> (u32, u128) {
	let at = node.finalized().await.unwrap();
	let mut number = at.block_number();
	let (mut settled, mut cpu) = (0u32, 0u128);
	// Walk back from the head: the test's chain is short.
	while number > 0 {
		let block = node.api.at_block(number).await.unwrap();
		for settled_event in
			block.events().fetch().await.unwrap().find::<runtime::market::events::Settled>()
		{
			let event = settled_event.unwrap();
			if event.id == id {
				settled = settled.max(event.period_end);
				cpu += event.charges.cpu;
			}
		}
		number -= 1;
	}
	(settled, cpu)
}
