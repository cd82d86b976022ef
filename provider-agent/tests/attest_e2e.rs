//! Attestation end to end, as far as a machine without TDX allows: a real dev node, the real
//! `podchain-agent` binary, and a configfs-tsm tree laid out like the kernel's whose fake
//! "kernel" answers with Intel's genuine sample TDX quote. The agent writes the binding of its
//! provider, registered peer id and sealing key as report data, fetches the sample collateral
//! from a file and submits both; the chain verifies the quote at its own clock and refuses it
//! with `registry.CollateralExpired` (the sample's collateral expired in July 2025), which the
//! agent names, exiting non-zero. Running with `--attest`, the agent logs the same refusal,
//! counts it, and serves all the same. The positive path needs a TDX machine and current
//! collateral.
//!
//! Needs what `agent_e2e.rs` needs (podman, root, the node binary).

use podchain_chain::{runtime, AccountKey};
use podchain_p2p::{identity, OpeningKey};
use podchain_testkit::{http_get, wait_for, AgentDir, AgentProcess, DevNode, FakeTsm};
use std::time::Duration;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../primitives/attestation/fixtures");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_refuses_the_expired_sample_quote_and_the_agent_names_why() {
	let work = tempfile::Builder::new().prefix("podchain-attest-").tempdir_in("/tmp").unwrap();
	let (_dev_node, node) = DevNode::start(work.path().to_owned()).await;
	let provider = AccountKey::from_secret("//Charlie").unwrap();
	let agent_dir = AgentDir::new();
	let mut agent = AgentProcess::new(&_dev_node.url(), "//Charlie", &agent_dir, work.path());
	agent.register(&node, &provider, 1_000).await;

	let sample_quote = std::fs::read(format!("{FIXTURES}/tdx_quote")).unwrap();
	let kernel = FakeTsm::tdx(sample_quote);
	let report_dir = kernel.report_dir().to_string_lossy().into_owned();
	let collateral = format!("{FIXTURES}/tdx_quote_collateral.json");
	agent.add_args(&["--tsm-report-dir", &report_dir, "--attestation-collateral", &collateral]);

	// `podchain-agent attest`: refused by the chain, with the registry's error named.
	let out = agent.run_subcommand("attest");
	let stderr = String::from_utf8_lossy(&out.stderr);
	eprintln!("podchain-agent attest ({}):\n{stderr}", out.status);
	assert!(!out.status.success(), "attest succeeded:\n{stderr}");
	assert!(stderr.contains("registry.CollateralExpired"), "{stderr}");

	// The report data was the binding of the provider's account, the peer id registered on
	// chain (as text) and the agent's sealing key; and the report entry is gone.
	let at = node.finalized().await.unwrap();
	let info = at
		.storage()
		.fetch(runtime::storage().registry().providers(), (provider.account_id(),))
		.await
		.unwrap()
		.decode()
		.unwrap();
	let registered_peer = String::from_utf8(info.endpoint.peer_id.0.clone()).unwrap();
	assert_eq!(registered_peer, agent.peer_id());
	let keypair = identity::load_or_create(&agent_dir.path().join("p2p-identity")).unwrap();
	let sealing_key = OpeningKey::from_keypair(&keypair).unwrap().x25519_public();
	let mut expected = [0u8; 64];
	expected[..32].copy_from_slice(&podchain_attestation::binding(
		&provider.account_id().0,
		registered_peer.as_bytes(),
		&sealing_key,
	));
	assert_eq!(kernel.inblobs(), vec![expected.to_vec()]);
	assert!(kernel.entries().is_empty(), "report entry left: {:?}", kernel.entries());
	assert!(info.attestation.is_none(), "the chain recorded an attestation");

	// Running with --attest: the refusal is logged and counted, the agent serves all the same.
	agent.add_args(&["--attest"]);
	agent.start();
	agent.healthy().await;
	let port = agent.http_port;
	wait_for(
		"the agent's failed attestation on /metrics",
		Duration::from_secs(60),
		|| agent.tail(),
		|| async move {
			http_get(port, "/metrics")
				.map(|(_, body)| body)
				.filter(|body| body.contains("podchain_agent_errors_total{kind=\"attestation\"} 1"))
		},
	)
	.await;
	let metrics = http_get(port, "/metrics").unwrap().1;
	assert!(metrics.contains("podchain_agent_attestation_expires_at_seconds 0"), "{metrics}");
	assert!(agent.tail().contains("registry.CollateralExpired"), "{}", agent.tail());
	assert_eq!(kernel.inblobs().len(), 2, "the running agent attested once");
	assert_eq!(http_get(port, "/healthz").map(|(status, _)| status), Some(200));
	agent.kill();
}
