//! End to end: an SLA measured from the tenant's own health check, on a real dev node (whose
//! validator's off-chain worker probes), the real `podchain-agent` binary on podman and its
//! gateway.
//!
//! A deal carries SLA terms whose health check (`GET /healthz` answered 200 with `ok`) comes from
//! its manifest. The agent names it running only once its pods pass that check through the
//! gateway; from then on the validator's prober requests the path through the provider's
//! registered gateway with the deal's host name, and a measurement window is met. Then the
//! tenant itself stops answering its health check (its file is removed inside the container)
//! while the agent stays healthy and keeps naming the deal: the next windows are missed, the
//! provider's stake is slashed and the publisher compensated, never more than the terms'
//! penalty.
//!
//! Needs podman, runc, catatonit and busybox-static (`scripts/setup.sh`), root, and the node
//! binary built by the same `cargo test --release --workspace` run (or `PODCHAIN_NODE`).

use podchain_chain::{
	deals::{self, BillingMode, DeploymentState},
	runtime::{self, runtime_types as types},
	tx::Submitter,
	AccountKey, Node,
};
use podchain_manifest::Manifest;
use podchain_p2p::{
	protocol::ManifestRequest, Keypair, Multiaddr, P2pConfig, P2pNode, PeerId, PublisherSigner,
};
use podchain_testkit::{http_get, http_get_host, wait_for, AgentDir, AgentProcess, DevNode};
use std::{
	sync::Arc,
	time::{Duration, Instant},
};
use tokio::sync::Mutex;

const POD: u128 = 1_000_000_000_000;
/// The penalty per missed window the publisher asks for.
const PENALTY: u128 = POD / 10;
/// Price per millicore-second: the window's bill bounds what a miss may cost.
const CPU_PRICE: u128 = 100_000_000;
/// Blocks per measurement window: two of the dev chain's 10-block probe windows.
const WINDOW_BLOCKS: u32 = 20;

struct Publisher(AccountKey);

impl PublisherSigner for Publisher {
	fn public(&self) -> [u8; 32] {
		self.0.public()
	}
	fn sign(&self, message: &[u8]) -> [u8; 64] {
		self.0.sign(message)
	}
}

fn bytes(text: &str) -> types::bounded_collections::bounded_vec::BoundedVec<u8> {
	types::bounded_collections::bounded_vec::BoundedVec(text.as_bytes().to_vec())
}

async fn deal(node: &Node, id: u64) -> Option<deals::Deal> {
	deals::deal(&node.finalized().await.ok()?, id).await.ok()?
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

/// The SLA pallet's verdicts on `id` in finalized blocks `from..`: met windows, and missed
/// windows with their penalties; the compensation slashed for them; and the next block to read.
#[derive(Clone, Default, Debug)]
struct Verdicts {
	met: Vec<u32>,
	missed: Vec<(u32, u128)>,
	compensated: u128,
	measurement_started: bool,
	next: u32,
}

async fn verdicts(node: &Node, id: u64, from: u32, seen: &mut Verdicts) {
	let Ok(at) = node.finalized().await else { return };
	let head = at.block_number() as u32;
	let mut number = from.max(seen.next).max(1);
	while number <= head {
		let Ok(block) = node.api.at_block(number).await else { return };
		let Ok(events) = block.events().fetch().await else { return };
		for met in events.find::<runtime::sla::events::SlaMet>().flatten() {
			if met.deal == id {
				seen.met.push(met.window);
			}
		}
		for missed in events.find::<runtime::sla::events::SlaMissed>().flatten() {
			if missed.deal == id {
				seen.missed.push((missed.window, missed.penalty));
			}
		}
		for slashed in events.find::<runtime::sla::events::PenaltySlashed>().flatten() {
			if slashed.deal == id {
				seen.compensated += slashed.compensated;
			}
		}
		for started in events.find::<runtime::sla::events::MeasurementStarted>().flatten() {
			seen.measurement_started |= started.deal == id;
		}
		number += 1;
	}
	seen.next = number;
}

/// Reads the SLA pallet's verdicts on `id` into `shared` until `done` holds for them (three
/// minutes at most), and returns them.
async fn until(
	agent: &AgentProcess,
	node: &Node,
	id: u64,
	from: u32,
	shared: &Arc<Mutex<Verdicts>>,
	what: &str,
	done: fn(&Verdicts) -> bool,
) -> Verdicts {
	wait_for(
		what,
		Duration::from_secs(180),
		|| agent.tail(),
		|| {
			let (node, shared) = (node.clone(), shared.clone());
			async move {
				let mut seen = shared.lock().await;
				verdicts(&node, id, from, &mut seen).await;
				done(&seen).then_some(())
			}
		},
	)
	.await;
	shared.lock().await.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_probed_through_the_gateway_meets_its_sla_then_misses_it_when_it_stops_answering()
{
	let started = Instant::now();
	let work = tempfile::Builder::new().prefix("podchain-sla-").tempdir_in("/tmp").unwrap();
	let (_dev_node, node) = DevNode::start(work.path().to_owned()).await;

	let provider = AccountKey::from_secret("//Charlie").unwrap();
	let publisher = AccountKey::from_secret("//Dave").unwrap();
	let agent_dir = AgentDir::new();
	let mut agent = AgentProcess::new(&_dev_node.url(), "//Charlie", &agent_dir, work.path());
	agent.register(&node, &provider, CPU_PRICE).await;
	let peer: PeerId = agent.peer_id().parse().unwrap();
	let agent_addr: Multiaddr = agent.p2p_addr().parse().unwrap();
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
	agent_dir.build_test_image();

	// The tenant serves its health check from a file it can lose, and burns a little CPU so
	// every window is billed.
	let yaml = "version: podchain/v1\ncontainers:\n  - name: web\n    image: localhost/podchain-demo:latest\n    \
		 command: [sh, -c, \"mkdir -p /data && echo ok > /data/healthz && httpd -p 8080 -h /data; \
		 while :; do :; done\"]\n    ports: [{ port: 8080 }]\n    resources: { cpu: 50m, memory: 32Mi }\n\
		 expose:\n  - http: { port: 8080 }\nhealth: { path: /healthz, status: 200, body: ok }\n";
	let manifest = Manifest::from_yaml(yaml).unwrap();
	let needs = manifest.resources().unwrap();
	let check = manifest.health_check();
	let create = runtime::tx().market().create_deployment(
		provider.account_id(),
		manifest.hash(),
		types::podchain_primitives::Resources {
			cpu_millicores: needs.cpu_millicores,
			memory_mib: needs.memory_mib,
			storage_gib: needs.storage_gib,
			gpus: needs.gpus,
		},
		BillingMode::Metered,
		Some(types::podchain_primitives::SlaTerms {
			uptime_target: types::sp_arithmetic::per_things::Permill(990_000),
			window_blocks: WINDOW_BLOCKS,
			penalty_per_window: PENALTY,
			health: types::podchain_primitives::HealthCheck {
				path: bytes(&check.path),
				expect_status: check.status,
				expect_body: bytes(check.body.as_deref().unwrap_or_default()),
			},
		}),
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
	let publisher_tx = Submitter::new(publisher.clone());
	let events = publisher_tx.submit_and_finalize(&node, &create).await.expect("deal created");
	let id = events
		.find_first::<runtime::market::events::DeploymentCreated>()
		.unwrap()
		.expect("DeploymentCreated")
		.id;
	let name = format!("sla{id}");
	publisher_tx
		.submit_and_finalize(&node, &runtime::tx().market().register_name(id, bytes(&name)))
		.await
		.expect("name registered");

	// The manifest goes to the agent over libp2p; the agent accepts and runs the deal.
	let client = P2pNode::spawn(Keypair::generate_ed25519(), P2pConfig::default()).await.unwrap();
	let handle = client.handle();
	let canonical = manifest.canonical_bytes();
	wait_for(
		"the agent to take the manifest",
		Duration::from_secs(30),
		|| agent.tail(),
		|| {
			let (handle, addr) = (handle.clone(), agent_addr.clone());
			let request =
				ManifestRequest::new(&Publisher(publisher.clone()), &peer, id, &canonical).unwrap();
			async move { handle.deliver_manifest(peer, [addr], request).await.ok() }
		},
	)
	.await;
	wait_for(
		"the agent to accept the deal",
		Duration::from_secs(60),
		|| agent.tail(),
		|| {
			let node = node.clone();
			async move {
				matches!(deal(&node, id).await?.state, DeploymentState::Active { .. }).then_some(())
			}
		},
	)
	.await;
	let host = format!("{name}.localhost");
	let gateway = agent.gateway_port;
	wait_for(
		"the tenant's health check to answer through the gateway",
		Duration::from_secs(60),
		|| agent.tail(),
		|| {
			let host = host.clone();
			async move {
				http_get_host(gateway, &host, "/healthz")
					.filter(|(s, b)| *s == 200 && b.contains("ok"))
			}
		},
	)
	.await;
	eprintln!("tenant answers its health check after {:?}", started.elapsed());
	let from = node.finalized().await.unwrap().block_number() as u32;

	// The agent names it once it passes; a window measured from probes through the gateway is
	// met.
	let shared = Arc::new(Mutex::new(Verdicts::default()));
	let seen =
		until(&agent, &node, id, from, &shared, "a met SLA window", |seen| !seen.met.is_empty())
			.await;
	assert!(seen.measurement_started, "measurement started with the agent's first naming");
	assert!(seen.missed.is_empty(), "no window missed while the tenant answered: {seen:?}");
	eprintln!("window met after {:?}: {seen:?}", started.elapsed());

	// The tenant, not the agent, stops answering its health check.
	let container = format!("podchain-deal-{id}-pod-0-web");
	agent_dir.podman(&["exec", &container, "rm", "/data/healthz"]);
	assert_eq!(http_get_host(gateway, &host, "/healthz").map(|r| r.0), Some(404));
	let before = free_balance(&node, &publisher).await;
	let seen = until(&agent, &node, id, from, &shared, "a missed SLA window, slashed", |seen| {
		!seen.missed.is_empty() && seen.compensated > 0
	})
	.await;
	eprintln!("window missed after {:?}: {seen:?}", started.elapsed());
	for (_, penalty) in &seen.missed {
		assert!(*penalty <= PENALTY, "a window cost more than the terms' penalty: {seen:?}");
	}
	assert!(seen.compensated <= PENALTY * seen.missed.len() as u128, "{seen:?}");
	// The publisher's balance rose by the compensation, less what it paid meanwhile (nothing
	// but fees it did not pay: the deal's bill comes from escrow).
	let after = free_balance(&node, &publisher).await;
	assert!(after >= before + seen.compensated, "before {before}, after {after}, {seen:?}");
	// The agent was healthy all along: the miss is the tenant's.
	assert_eq!(http_get(agent.http_port, "/healthz").map(|r| r.0), Some(200));
	drop(client);
}
