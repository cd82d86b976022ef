//! The agent's reconcile rounds on real podman, with 10, 50 and 100 small deals.
//!
//! `scripts/bench-agent-rounds.sh` (or `cargo bench --bench podman_rounds`) starts a dev node
//! (a block every second), registers `//Charlie` as a provider and runs the real
//! `podchain-agent` on its podman backend, sampling usage every second as the end-to-end tests
//! do. `//Dave` then creates metered deals of busybox httpd (10 millicores, 16 MiB each) and
//! delivers their manifests over libp2p; the agent accepts and runs them. Once all run and a
//! warm-up has passed, the bench reads the agent's `/metrics` over a steady period and prints
//! the mean and p99 round time (`podchain_agent_reconcile_seconds`, p99 interpolated within
//! its buckets) and the podman API requests per round (`podchain_agent_podman_requests_total`,
//! the sampler's included), and how many blocks the agent is behind the chain at the end.
//! Then it adds deals up to the next count. Goal: a round at 100 deals within 100 ms, said for
//! the mean and for p99.
//!
//! Environment: `PODCHAIN_BENCH_DEALS` (counts, default `10,50,100`), `PODCHAIN_BENCH_SECONDS`
//! (steady period per count, default 60). Needs root, podman (`scripts/setup.sh`) and the node
//! binary (`scripts/build.sh`, or `PODCHAIN_NODE`).

use podchain_chain::{
	deals::BillingMode,
	runtime::{self, runtime_types as types},
	tx::Submitter,
	AccountKey, Node,
};
use podchain_manifest::Manifest;
use podchain_p2p::{
	protocol::{ManifestRequest, RejectReason},
	Keypair, Multiaddr, P2pConfig, P2pError, P2pNode, PeerId, PublisherSigner,
};
use podchain_testkit::{http_get, wait_for, AgentDir, AgentProcess, DevNode};
use std::time::{Duration, Instant};

const POD: u128 = 1_000_000_000_000;
/// A round at the largest count must take no longer, on average and at p99.
const GOAL: Duration = Duration::from_millis(100);
/// After the deals run and the agent caught up with the chain, before measuring.
const WARM_UP: Duration = Duration::from_secs(5);
/// Longest wait for the agent to catch up with the chain (rounds that deployed many deals
/// took many blocks); past it, the figures say how far behind it is.
const CATCH_UP: Duration = Duration::from_secs(120);
/// Room for 128 deal networks (a /26 each).
const NETWORK_POOL: &str = "10.80.0.0/19";

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

/// The agent's figures read from one scrape of `/metrics`.
#[derive(Clone, Debug, Default)]
struct Scrape {
	rounds: f64,
	seconds: f64,
	finalized_block: f64,
	/// Cumulative round counts by bucket upper bound, in seconds.
	buckets: Vec<(f64, f64)>,
	podman_requests: f64,
}

impl Scrape {
	fn read(port: u16) -> Option<Scrape> {
		let (status, text) = http_get(port, "/metrics")?;
		if status != 200 {
			return None;
		}
		let mut scrape = Scrape::default();
		for line in text.lines().filter(|l| !l.starts_with('#')) {
			let (name, value) = line.rsplit_once(' ')?;
			let value: f64 = value.parse().ok()?;
			match name {
				"podchain_agent_reconcile_seconds_count" => scrape.rounds = value,
				"podchain_agent_reconcile_seconds_sum" => scrape.seconds = value,
				"podchain_agent_podman_requests_total" => scrape.podman_requests = value,
				"podchain_agent_finalized_block" => scrape.finalized_block = value,
				_ => {
					if let Some(le) = name
						.strip_prefix("podchain_agent_reconcile_seconds_bucket{le=\"")
						.and_then(|rest| rest.strip_suffix("\"}"))
					{
						let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
						scrape.buckets.push((le, value));
					}
				}
			}
		}
		Some(scrape)
	}
}

/// Round figures between two scrapes.
struct Figures {
	/// Blocks the agent's last round was behind the node's finalized block at the end.
	behind: u64,
	rounds: f64,
	mean: Duration,
	p99: Duration,
	requests_per_round: f64,
}

impl Figures {
	fn between(before: &Scrape, after: &Scrape) -> Figures {
		let rounds = after.rounds - before.rounds;
		let mean = Duration::from_secs_f64((after.seconds - before.seconds) / rounds.max(1.0));
		let buckets: Vec<(f64, f64)> = after
			.buckets
			.iter()
			.zip(&before.buckets)
			.map(|((le, a), (_, b))| (*le, a - b))
			.collect();
		Figures {
			behind: 0,
			rounds,
			mean,
			p99: Duration::from_secs_f64(quantile(&buckets, 0.99)),
			requests_per_round: (after.podman_requests - before.podman_requests) / rounds.max(1.0),
		}
	}
}

/// The `q` quantile of cumulative `buckets`, interpolated linearly within the bucket it falls
/// in (as Prometheus' `histogram_quantile`); the largest finite bound if it is beyond them.
fn quantile(buckets: &[(f64, f64)], q: f64) -> f64 {
	let total = buckets.last().map_or(0.0, |(_, count)| *count);
	let target = q * total;
	let (mut lower, mut below) = (0.0, 0.0);
	for (le, count) in buckets {
		if *count >= target {
			if le.is_infinite() {
				return lower;
			}
			let share = if count > &below { (target - below) / (count - below) } else { 1.0 };
			return lower + (le - lower) * share;
		}
		(lower, below) = (*le, *count);
	}
	lower
}

/// The chain, the provider's agent and the publisher.
struct Market {
	node: Node,
	agent: AgentProcess,
	agent_dir: AgentDir,
	publisher: AccountKey,
	publisher_tx: Submitter,
	p2p: podchain_p2p::P2pHandle,
	peer: PeerId,
	agent_addr: Multiaddr,
	deals: Vec<u64>,
	_p2p_node: P2pNode,
	_dev_node: DevNode,
}

impl Market {
	async fn start(work: &std::path::Path) -> Market {
		let (dev_node, node) = DevNode::start(work.to_owned()).await;
		let provider = AccountKey::from_secret("//Charlie").expect("dev key");
		let publisher = AccountKey::from_secret("//Dave").expect("dev key");
		let agent_dir = AgentDir::new();
		let mut agent = AgentProcess::new(&dev_node.url(), "//Charlie", &agent_dir, work);
		agent.set("--podman-network-pool", NETWORK_POOL);
		agent.register(&node, &provider, 1_000).await;
		agent.start();
		agent.healthy().await;
		agent_dir.build_test_image();
		let p2p_node = P2pNode::spawn(Keypair::generate_ed25519(), P2pConfig::default())
			.await
			.expect("a p2p client");
		Market {
			node,
			peer: agent.peer_id().parse().expect("a peer id"),
			agent_addr: agent.p2p_addr().parse().expect("a multiaddr"),
			agent,
			agent_dir,
			publisher_tx: Submitter::new(publisher.clone()),
			publisher,
			p2p: p2p_node.handle(),
			deals: Vec::new(),
			_p2p_node: p2p_node,
			_dev_node: dev_node,
		}
	}

	fn manifest(index: usize) -> Manifest {
		let yaml = format!(
			"version: podchain/v1\nname: w{index}\ncontainers:\n  - name: web\n    \
			 image: localhost/podchain-demo:latest\n    resources: {{ cpu: 10m, memory: 16Mi }}\n"
		);
		Manifest::from_yaml(&yaml).expect("a valid manifest")
	}

	/// Creates deals up to `count` in all (their transactions in the pool together), delivers
	/// their manifests, and waits until the agent runs all of them.
	async fn grow_to(&mut self, count: usize) {
		let started = Instant::now();
		let provider = AccountKey::from_secret("//Charlie").expect("dev key").account_id();
		let mut sent = Vec::new();
		let new: Vec<usize> = (self.deals.len()..count).collect();
		for index in &new {
			let manifest = Self::manifest(*index);
			let needs = manifest.resources().expect("resources");
			let create = runtime::tx().market().create_deployment(
				provider,
				manifest.hash(),
				types::podchain_primitives::Resources {
					cpu_millicores: needs.cpu_millicores,
					memory_mib: needs.memory_mib,
					storage_gib: needs.storage_gib,
					gpus: needs.gpus,
				},
				BillingMode::Metered,
				None,
				types::pallet_market::types::DealLimits {
					max_prices: types::podchain_primitives::Prices {
						cpu_per_millicore_second: u128::MAX,
						memory_per_mib_second: u128::MAX,
						storage_per_gib_second: u128::MAX,
						gpu_per_second: u128::MAX,
						egress_per_byte: u128::MAX,
					},
					max_egress_bytes_per_second: 1 << 20,
				},
				10 * POD,
			);
			let submitted = self
				.publisher_tx
				.submit(&self.node, &create, |_, _| Ok::<(), std::convert::Infallible>(()))
				.await
				.expect("a deal's creation is sent")
				.unwrap_or_else(|never| match never {});
			sent.push((manifest, submitted));
		}
		let mut created = Vec::new();
		for (manifest, submitted) in sent {
			let events =
				submitted.progress.wait_for_finalized_success().await.expect("the deal is created");
			let id = events
				.find_first::<runtime::market::events::DeploymentCreated>()
				.expect("events decode")
				.expect("DeploymentCreated")
				.id;
			created.push((id, manifest));
		}
		eprintln!("  {} deals created in {:?}", created.len(), started.elapsed());
		self.deliver_all(created).await;
		eprintln!("  manifests delivered after {:?}", started.elapsed());
		let agent_dir = &self.agent_dir;
		wait_for(
			&format!("{count} deals to run"),
			Duration::from_secs(60 + 10 * count as u64),
			|| self.agent.tail(),
			|| async move {
				let running = agent_dir.podman(&[
					"pod",
					"ps",
					"--filter",
					"status=running",
					"--format",
					"{{.Name}}",
				]);
				(running.lines().count() >= count).then_some(())
			},
		)
		.await;
		eprintln!("  {count} deals run after {:?}", started.elapsed());
	}

	/// Delivers the manifests of `deals`, each once the agent knows the deal: it learns of
	/// deals at its rounds, and a round that deploys many deals takes a while.
	async fn deliver_all(&mut self, deals: Vec<(u64, Manifest)>) {
		let deadline = Instant::now() + Duration::from_secs(60 + 5 * deals.len() as u64);
		let mut waiting = deals;
		while !waiting.is_empty() {
			assert!(
				Instant::now() < deadline,
				"the agent did not take {} manifests\n{}",
				waiting.len(),
				self.agent.tail()
			);
			let mut unknown = Vec::new();
			for (id, manifest) in waiting {
				let request = ManifestRequest::new(
					&Publisher(self.publisher.clone()),
					&self.peer,
					id,
					&manifest.canonical_bytes(),
				)
				.expect("a request");
				match self.p2p.deliver_manifest(self.peer, [self.agent_addr.clone()], request).await
				{
					Ok(_) => self.deals.push(id),
					Err(P2pError::Rejected { reason: RejectReason::UnknownDeal, .. }) => {
						unknown.push((id, manifest))
					}
					Err(e) => panic!("manifest of deal {id} refused: {e}"),
				}
			}
			waiting = unknown;
			if !waiting.is_empty() {
				tokio::time::sleep(Duration::from_secs(1)).await;
			}
		}
	}

	/// Blocks between the node's finalized block and the agent's last round.
	async fn agent_behind(&self) -> u64 {
		let node = self.node.finalized().await.expect("the node's finalized block").block_number();
		let agent = Scrape::read(self.agent.http_port).expect("the agent's /metrics");
		node.saturating_sub(agent.finalized_block as u64)
	}

	/// Round figures over `period`, once the agent caught up with the chain and a warm-up
	/// passed.
	async fn measure(&self, period: Duration) -> Figures {
		let deadline = Instant::now() + CATCH_UP;
		while self.agent_behind().await > 1 && Instant::now() < deadline {
			tokio::time::sleep(Duration::from_secs(1)).await;
		}
		tokio::time::sleep(WARM_UP).await;
		let port = self.agent.http_port;
		let before = Scrape::read(port).expect("the agent's /metrics");
		tokio::time::sleep(period).await;
		let after = Scrape::read(port).expect("the agent's /metrics");
		Figures { behind: self.agent_behind().await, ..Figures::between(&before, &after) }
	}
}

fn millis(d: Duration) -> String {
	format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
	// `cargo bench` passes `--bench`; nothing else is taken from the command line.
	let counts: Vec<usize> = std::env::var("PODCHAIN_BENCH_DEALS")
		.unwrap_or_else(|_| "10,50,100".into())
		.split(',')
		.map(|n| n.trim().parse().expect("PODCHAIN_BENCH_DEALS: counts separated by commas"))
		.collect();
	let seconds: u64 = std::env::var("PODCHAIN_BENCH_SECONDS")
		.map(|s| s.parse().expect("PODCHAIN_BENCH_SECONDS: a number"))
		.unwrap_or(60);
	let runtime = tokio::runtime::Builder::new_multi_thread()
		.worker_threads(2)
		.enable_all()
		.build()
		.expect("a runtime");
	runtime.block_on(async {
		let work = tempfile::Builder::new().prefix("podchain-rounds-").tempdir_in("/tmp").unwrap();
		let mut market = Market::start(work.path()).await;
		let mut rows = Vec::new();
		for count in &counts {
			eprintln!("growing to {count} deals");
			market.grow_to(*count).await;
			let figures = market.measure(Duration::from_secs(seconds)).await;
			eprintln!(
				"  {count} deals: {} rounds, mean {}, p99 {}, {:.1} podman requests per round, {} blocks behind",
				figures.rounds,
				millis(figures.mean),
				millis(figures.p99),
				figures.requests_per_round,
				figures.behind
			);
			rows.push((*count, figures));
		}
		println!("agent rounds on podman ({seconds} s steady per count, a block per second, a sample per second)");
		println!(
			"{:>6} {:>7} {:>11} {:>11} {:>17} {:>14}",
			"deals", "rounds", "mean", "p99", "podman req/round", "blocks behind"
		);
		for (count, f) in &rows {
			println!(
				"{count:>6} {:>7} {:>11} {:>11} {:>17.1} {:>14}",
				f.rounds,
				millis(f.mean),
				millis(f.p99),
				f.requests_per_round,
				f.behind
			);
		}
		if let Some((count, f)) = rows.iter().max_by_key(|(count, _)| *count) {
			let verdict = |d: Duration| if d <= GOAL { "met" } else { "MISSED" };
			println!(
				"goal <= {} ms per round at {count} deals: mean {} ({}), p99 {} ({})",
				GOAL.as_millis(),
				millis(f.mean),
				verdict(f.mean),
				millis(f.p99),
				verdict(f.p99)
			);
		}
	});
}
