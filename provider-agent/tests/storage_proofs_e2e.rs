//! End to end: storage proofs on a real dev node with the real `podchain-agent` on podman.
//!
//! A deal with SLA terms runs a container that writes a volume. The agent snapshots the volume
//! (its pod paused meanwhile), keeps the snapshot and commits its Merkle root on chain. The
//! publisher challenges it: the agent answers with the chunks the next block drew and their
//! paths, the chain verifies them, and the provider's stake is untouched. Then the kept snapshot
//! is altered on disk (what an agent that lost or changed the data it vouched for holds): the
//! next challenge fails, and the deal's penalty moves from the provider's stake to the
//! publisher.
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
use podchain_testkit::{wait_for, AgentDir, AgentProcess, DevNode};
use std::time::{Duration, Instant};

const POD: u128 = 1_000_000_000_000;
/// The deal's penalty per missed window: the most a failed storage proof costs.
const PENALTY: u128 = POD;
/// Bytes the container writes into its volume.
const VOLUME_BYTES: u64 = 300_000;

struct Publisher(AccountKey);

impl PublisherSigner for Publisher {
	fn public(&self) -> [u8; 32] {
		self.0.public()
	}
	fn sign(&self, message: &[u8]) -> [u8; 64] {
		self.0.sign(message)
	}
}

use types::bounded_collections::bounded_vec::BoundedVec as Bounded;

async fn deal(node: &Node, id: u64) -> Option<deals::Deal> {
	deals::deal(&node.finalized().await.ok()?, id).await.ok()?
}

async fn free_balance(node: &Node, who: &AccountKey) -> u128 {
	let at = node.finalized().await.unwrap();
	at.storage()
		.fetch(runtime::storage().system().account(), (who.account_id(),))
		.await
		.unwrap()
		.decode()
		.unwrap()
		.data
		.free
}

/// The provider's stake (active and unbonding), at the latest finalized block.
async fn stake(node: &Node, who: &AccountKey) -> u128 {
	let at = node.finalized().await.unwrap();
	let ledger = at
		.storage()
		.fetch(runtime::storage().provider_staking().ledgers(), (who.account_id(),))
		.await
		.unwrap()
		.decode()
		.unwrap();
	ledger.active + ledger.unlocking.0.iter().map(|c| c.value).sum::<u128>()
}

async fn commitment(
	node: &Node,
	id: u64,
) -> Option<types::pallet_storage_proofs::types::Commitment<u32>> {
	let at = node.finalized().await.ok()?;
	let entry = at.storage().entry(runtime::storage().storage_proofs().commitments()).ok()?;
	entry.try_fetch((id, Bounded(b"data".to_vec()))).await.ok()??.decode().ok()
}

async fn open_challenge(node: &Node, id: u64) -> Option<u32> {
	held_penalty(node, id).await.map(|(issued_at, _)| issued_at)
}

/// The open challenge of deal `id`: its filing block and the penalty it holds.
async fn held_penalty(node: &Node, id: u64) -> Option<(u32, u128)> {
	let at = node.finalized().await.ok()?;
	let entry = at.storage().entry(runtime::storage().storage_proofs().challenges()).ok()?;
	let challenge = entry.try_fetch((id,)).await.ok()??.decode().ok()?;
	Some((challenge.issued_at, challenge.penalty))
}

/// `podchain challenge ID --json` run as the publisher (key file `key`): the CLI files the
/// challenge and waits for the chain's verdict.
async fn challenge_with_the_cli(
	rpc: String,
	key: std::path::PathBuf,
	id: u64,
) -> serde_json::Value {
	let cli = podchain_testkit::process::binary("podchain", "PODCHAIN_CLI");
	let out = tokio::task::spawn_blocking(move || {
		std::process::Command::new(cli)
			.args(["--rpc", &rpc, "--key-file", &key.to_string_lossy(), "--json"])
			.args(["challenge", &id.to_string(), "--timeout", "120"])
			.output()
			.expect("podchain runs")
	})
	.await
	.unwrap();
	let stdout = String::from_utf8_lossy(&out.stdout);
	assert!(
		out.status.success(),
		"podchain challenge: {stdout}{}",
		String::from_utf8_lossy(&out.stderr)
	);
	serde_json::from_str(&stdout).expect("the verdict as JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_passes_with_the_data_and_fails_once_the_snapshot_is_altered() {
	let started = Instant::now();
	let work = tempfile::Builder::new().prefix("podchain-e2e-").tempdir_in("/tmp").unwrap();
	let (dev_node, node) = DevNode::start(work.path().to_owned()).await;

	let provider = AccountKey::from_secret("//Charlie").unwrap();
	let publisher = AccountKey::from_secret("//Dave").unwrap();
	let agent_dir = AgentDir::new();
	let mut agent = AgentProcess::new(&dev_node.url(), "//Charlie", &agent_dir, work.path());
	agent.register(&node, &provider, 1).await;
	let peer: PeerId = agent.peer_id().parse().unwrap();
	let agent_addr: Multiaddr = agent.p2p_addr().parse().unwrap();
	let publisher_tx = Submitter::new(publisher.clone());
	let offer = types::pallet_sla::types::SlaOffer {
		max_uptime_target: types::sp_arithmetic::per_things::Permill(990_000),
		min_window_blocks: 10,
		max_window_blocks: 100,
		max_penalty_per_window: PENALTY,
	};
	Submitter::new(provider.clone())
		.submit_and_finalize(&node, &runtime::tx().sla().offer_terms(Some(offer)))
		.await
		.expect("the provider offers SLA terms");
	agent.start();
	agent.healthy().await;
	agent_dir.build_test_image();

	// A container that fills its volume, then serves.
	let yaml = format!(
		"version: podchain/v1\nname: store\ncontainers:\n  - name: app\n    image: localhost/podchain-demo:latest\n    \
		 command: [sh, -c, \"head -c {VOLUME_BYTES} /dev/urandom > /data/blob && echo kept > /data/note && \
		 httpd -f -p 8080 -h /www\"]\n    mounts: [{{ volume: data, path: /data }}]\n    \
		 resources: {{ cpu: 100m, memory: 32Mi }}\nvolumes:\n  - {{ name: data, size: 1Gi }}\n"
	);
	let manifest = Manifest::from_yaml(&yaml).unwrap();
	let needs = manifest.resources().unwrap();
	let create = runtime::tx().market().create_deployment(
		provider.account_id(),
		manifest.hash(),
		types::podchain_primitives::Resources {
			cpu_millicores: needs.cpu_millicores,
			memory_mib: needs.memory_mib,
			storage_gib: needs.storage_gib,
			gpus: needs.gpus,
		},
		BillingMode::Reserved,
		Some(types::podchain_primitives::SlaTerms {
			uptime_target: types::sp_arithmetic::per_things::Permill(900_000),
			window_blocks: 100,
			penalty_per_window: PENALTY,
			health: types::podchain_primitives::HealthCheck {
				path: Bounded(b"/".to_vec()),
				expect_status: 200,
				expect_body: Bounded(Vec::new()),
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
	let events = publisher_tx.submit_and_finalize(&node, &create).await.expect("deal created");
	let id = events
		.find_first::<runtime::market::events::DeploymentCreated>()
		.unwrap()
		.expect("DeploymentCreated")
		.id;

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
	eprintln!("deal {id} running after {:?}", started.elapsed());

	// The agent commits a snapshot of the filled volume.
	let committed = wait_for(
		"the agent to commit the volume's snapshot",
		Duration::from_secs(120),
		|| agent.tail(),
		|| {
			let node = node.clone();
			async move { commitment(&node, id).await }
		},
	)
	.await;
	assert!(committed.size > VOLUME_BYTES, "the snapshot holds the volume: {committed:?}");
	let root_hex: String = committed.root.iter().map(|b| format!("{b:02x}")).collect();
	let volume_hex: String = b"data".iter().map(|b| format!("{b:02x}")).collect();
	let kept = agent_dir
		.path()
		.join("storage-proofs")
		.join(id.to_string())
		.join(volume_hex)
		.join(format!("{root_hex}.snap"));
	assert_eq!(std::fs::metadata(&kept).map(|m| m.len()).ok(), Some(committed.size), "{kept:?}");
	eprintln!("snapshot committed after {:?}", started.elapsed());

	// With the data: the challenge passes, nothing is slashed.
	let stake_before = stake(&node, &provider).await;
	let key_file = work.path().join("publisher.key");
	{
		use std::os::unix::fs::OpenOptionsExt;
		let mut file = std::fs::OpenOptions::new()
			.write(true)
			.create_new(true)
			.mode(0o600)
			.open(&key_file)
			.unwrap();
		std::io::Write::write_all(&mut file, b"//Dave").unwrap();
	}
	let verdict = challenge_with_the_cli(dev_node.url(), key_file, id).await;
	assert_eq!(verdict["passed"], true, "{verdict}");
	assert_eq!(verdict["volume"], "data", "the deal's only committed volume");
	assert_eq!(stake(&node, &provider).await, stake_before, "an honest answer costs nothing");
	let challenged_at = node.finalized().await.unwrap().block_number() as u32;
	eprintln!("first challenge passed after {:?}", started.elapsed());

	// The kept snapshot altered: the next challenge fails and the publisher is compensated.
	let mut bytes = std::fs::read(&kept).unwrap();
	for byte in bytes.iter_mut() {
		*byte ^= 0x5a;
	}
	std::fs::write(&kept, &bytes).unwrap();
	let period: u32 = node
		.finalized()
		.await
		.unwrap()
		.constants()
		.entry(runtime::constants().storage_proofs().challenge_period())
		.unwrap();
	wait_for(
		"the next challenge period",
		Duration::from_secs(180),
		|| agent.tail(),
		|| {
			let node = node.clone();
			async move {
				let now = node.finalized().await.ok()?.block_number() as u32;
				(now > challenged_at + period).then_some(())
			}
		},
	)
	.await;
	let publisher_before = free_balance(&node, &publisher).await;
	let stake_before = stake(&node, &provider).await;
	let call = runtime::tx().storage_proofs().challenge(id, Bounded(b"data".to_vec()));
	let events = publisher_tx.submit_and_finalize(&node, &call).await.expect("challenged again");
	let fee = events
		.find_first::<runtime::transaction_payment::events::TransactionFeePaid>()
		.unwrap()
		.map_or(0, |e| e.actual_fee + e.tip);
	// Held from what the publisher paid since the SLA's last settlement, at most the terms'.
	let (_, held) = held_penalty(&node, id).await.expect("the challenge is open");
	assert!(held > 0 && held <= PENALTY, "held {held}");
	wait_for(
		"the second challenge to be decided",
		Duration::from_secs(90),
		|| agent.tail(),
		|| {
			let node = node.clone();
			async move { open_challenge(&node, id).await.is_none().then_some(()) }
		},
	)
	.await;
	assert_eq!(stake_before - stake(&node, &provider).await, held, "the provider pays");
	assert_eq!(
		free_balance(&node, &publisher).await + fee - publisher_before,
		held,
		"the publisher is compensated"
	);
	eprintln!("altered snapshot slashed after {:?}", started.elapsed());
}
