//! The `podchain` binary against a real dev node and a real provider agent (podman backend):
//! every command, as a user runs it, with its exit code and output.

use podchain_chain::AccountKey;
use podchain_testkit::{http_get_at, http_get_host, wait_for, AgentDir, AgentProcess, DevNode};
use serde_json::Value;
use std::{
	path::{Path, PathBuf},
	process::Command,
	time::{Duration, Instant},
};

/// Runs `podchain` with `args` against `rpc` and key file `key`: exit code, stdout, stderr.
fn podchain(rpc: &str, key: &Path, args: &[&str]) -> (i32, String, String) {
	let out = Command::new(env!("CARGO_BIN_EXE_podchain"))
		.args(["--rpc", rpc, "--key-file", &key.to_string_lossy()])
		.args(args)
		.output()
		.expect("podchain runs");
	let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
	(out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// What `GET /` for `<name>.localhost` answers through the agent's gateway once the deal's pod
/// is reported running. Running means the container's process started; without a readiness
/// probe in the manifest it may still be binding its port, so the answer may take a moment.
async fn served(name: &str, agent: &AgentProcess) -> String {
	let (port, host) = (agent.gateway_port, format!("{name}.localhost"));
	wait_for(
		"the deal to answer through the gateway",
		Duration::from_secs(5),
		|| agent.tail(),
		|| {
			let host = host.clone();
			async move { http_get_host(port, &host, "/").filter(|(s, _)| *s == 200).map(|(_, b)| b) }
		},
	)
	.await
}

/// Runs a command that must succeed with `--json`; its document.
fn json(rpc: &str, key: &Path, args: &[&str]) -> Value {
	let mut all = vec!["--json"];
	all.extend_from_slice(args);
	let (code, stdout, stderr) = podchain(rpc, key, &all);
	assert_eq!(code, 0, "podchain {args:?} failed:\n{stderr}");
	serde_json::from_str(&stdout)
		.unwrap_or_else(|e| panic!("podchain {args:?}: not JSON ({e}):\n{stdout}"))
}

/// A web server on port 8080 of its own network, exposed over HTTP; `listen` spells the port
/// (`8080`, `0.0.0.0:8080`) so that manifests differ.
fn web_manifest(dir: &Path, name: &str, listen: &str) -> PathBuf {
	let path = dir.join(name);
	let yaml = format!(
		"version: podchain/v1\nname: web\ncontainers:\n  - name: web\n    image: localhost/podchain-demo:latest\n    \
		 command: [httpd, -f, -p, \"{listen}\", -h, /www]\n    ports: [{{ port: 8080 }}]\n    resources: {{ cpu: 100m, memory: 32Mi }}\n\
		 expose:\n  - http: {{ port: 8080 }}\n"
	);
	std::fs::write(&path, yaml).unwrap();
	path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_against_a_dev_node_and_an_agent() {
	let started = Instant::now();
	let work = tempfile::Builder::new().prefix("podchain-cli-").tempdir_in("/tmp").unwrap();
	let (_dev_node_guard, node, rpc) = {
		let (dev_node, node) = DevNode::start(work.path().to_owned()).await;
		let rpc = dev_node.url();
		(dev_node, node, rpc)
	};
	let provider = AccountKey::from_secret("//Charlie").unwrap();
	let agent_dir = AgentDir::new();
	let mut agent = AgentProcess::new(&rpc, "//Charlie", &agent_dir, work.path());
	agent.register(&node, &provider, 1_000_000).await;
	agent.start();
	agent.healthy().await;
	agent_dir.build_test_image();
	eprintln!("node and agent ready after {:?}", started.elapsed());

	// Accounts: import a dev key, show it; a new one is unfunded.
	let key = work.path().join("keys/dave.key");
	let imported = json(&rpc, &key, &["account", "import", "//Dave"]);
	let dave = AccountKey::from_secret("//Dave").unwrap().account_id().to_string();
	assert_eq!(imported["address"], dave);
	{
		use std::os::unix::fs::PermissionsExt;
		let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
		assert_eq!(mode, 0o600, "the key file is the user's alone");
	}
	let (code, _, stderr) = podchain(&rpc, &key, &["account", "import", "//Eve"]);
	assert_eq!(code, 2, "an existing key is not replaced without --force: {stderr}");
	let shown = json(&rpc, &key, &["account", "show"]);
	assert_eq!(shown["address"], dave);
	assert!(shown["free"].as_str().unwrap().parse::<u128>().unwrap() > 0);
	let fresh_key = work.path().join("keys/fresh.key");
	let fresh = json(&rpc, &fresh_key, &["account", "new"]);
	assert_eq!(fresh["phrase"].as_str().unwrap().split(' ').count(), 12);

	// The market: providers and quotes.
	let charlie = provider.account_id().to_string();
	let providers = json(&rpc, &key, &["providers", "--region", "de"]);
	assert_eq!(providers[0]["provider"], charlie);
	assert_eq!(providers[0]["attested"], Value::Bool(false));
	assert_eq!(providers[0]["attestation"], Value::Null);
	assert_eq!(json(&rpc, &key, &["providers", "--region", "FR"]), Value::Array(vec![]));
	// Attestation: nothing to verify for a provider that never attested, and --attested finds
	// no provider to deploy to (nothing is locked).
	let (code, _, stderr) = podchain(&rpc, &key, &["providers", "--verify", &charlie]);
	assert_eq!(code, 2, "{stderr}");
	assert!(stderr.contains("has no attestation"), "{stderr}");
	let web = web_manifest(work.path(), "web.yaml", "8080");
	let (code, _, stderr) = podchain(&rpc, &key, &["deploy", &web.to_string_lossy(), "--attested"]);
	assert_eq!(code, 4, "{stderr}");
	assert!(stderr.contains("no registered provider"), "{stderr}");
	let quote = json(&rpc, &key, &["quote", &web.to_string_lossy(), "--for", "2h"]);
	assert_eq!(quote["offers"][0]["provider"], charlie);
	// 100 millicores at 10^6 planck per millicore-second plus 32 MiB at 10^3, for 2 h.
	let per_hour: u128 = (100 * 1_000_000 + 32 * 1_000) * 3600;
	assert_eq!(quote["offers"][0]["total"], (2 * per_hour).to_string());

	// Bad input is named, with its exit code.
	let bad = work.path().join("bad.yaml");
	std::fs::write(&bad, "version: podchain/v1\ncontainers: []\n").unwrap();
	let (code, _, stderr) = podchain(&rpc, &key, &["deploy", &bad.to_string_lossy()]);
	assert_eq!(code, 2);
	assert!(stderr.contains("2:13") && stderr.contains("at least one container"), "{stderr}");
	let (code, _, stderr) = podchain(&rpc, &fresh_key, &["deploy", &web.to_string_lossy()]);
	assert_eq!(code, 4, "an unfunded account: {stderr}");
	assert!(stderr.contains("insufficient balance") || stderr.contains("Payment"), "{stderr}");
	let stranger = AccountKey::from_secret("//Ferdie").unwrap().account_id().to_string();
	let (code, _, stderr) =
		podchain(&rpc, &key, &["deploy", &web.to_string_lossy(), "--provider", &stranger]);
	assert_eq!(code, 4, "{stderr}");
	assert!(stderr.contains("unknown"), "{stderr}");
	// The test provider offers no SLA: asking for one is refused before anything is created.
	let (code, _, stderr) = podchain(
		&rpc,
		&key,
		&["deploy", &web.to_string_lossy(), "--uptime", "99", "--penalty", "1"],
	);
	assert_eq!(code, 4, "{stderr}");
	assert!(stderr.contains("SLA terms"), "{stderr}");
	let (code, _, stderr) = podchain(
		&rpc,
		&key,
		&["deploy", &web.to_string_lossy(), "--uptime", "101", "--penalty", "1"],
	);
	assert_eq!(code, 2, "an uptime above 100%: {stderr}");
	// The health check comes from the manifest, where it is validated like the rest.
	let unhealthy = work.path().join("bad-health.yaml");
	let source = std::fs::read_to_string(&web).unwrap();
	std::fs::write(&unhealthy, format!("{source}health: {{path: healthz}}\n")).unwrap();
	let (code, _, stderr) = podchain(
		&rpc,
		&key,
		&["deploy", &unhealthy.to_string_lossy(), "--uptime", "99", "--penalty", "1"],
	);
	assert_eq!(code, 2, "a health check the chain refuses: {stderr}");
	assert!(stderr.contains("health.path: must start with /"), "{stderr}");
	// A deposit below the chain's minimum prepaid hour is refused before anything is created.
	let (code, _, stderr) =
		podchain(&rpc, &key, &["deploy", &web.to_string_lossy(), "--deposit", "1planck"]);
	assert_eq!(code, 2, "a deposit below the minimum: {stderr}");
	assert!(stderr.contains("below the least"), "{stderr}");
	let (code, _, stderr) =
		podchain(&rpc, &key, &["deploy", &web.to_string_lossy(), "--max-egress", "0"]);
	assert_eq!(code, 2, "no egress at all: {stderr}");
	let (code, _, _) = podchain(&rpc, &key, &["top-up", "0", "ten"]);
	assert_eq!(code, 2, "an amount that is not one");
	let (code, _, stderr) = podchain("ws://127.0.0.1:1", &key, &["status"]);
	assert_eq!(code, 3, "no node there: {stderr}");

	// Deploy: every stage (printed with its time), then it answers.
	let deploying = Instant::now();
	// The figure the deploy is judged by: from the command's start to the first HTTP 200 from
	// the pod (its name is registered after the deploy, so at its address on its network).
	let dir = agent_dir.path().to_owned();
	let first_answer = std::thread::spawn(move || loop {
		let address = podchain_testkit::AgentDir::first_deal_address_in(&dir);
		if address.and_then(|a| http_get_at(a, "web", "/")).is_some_and(|(status, _)| status == 200)
		{
			return Some(deploying.elapsed());
		}
		if deploying.elapsed() > Duration::from_secs(120) {
			return None;
		}
		std::thread::sleep(Duration::from_millis(50));
	});
	let (code, stdout, stderr) =
		podchain(&rpc, &key, &["deploy", &web.to_string_lossy(), "--for", "2h"]);
	assert_eq!(code, 0, "deploy failed:\n{stderr}\n{}", agent.tail());
	eprintln!("deploy stages:\n{stderr}deploy took {:?}", deploying.elapsed());
	let first_answer = first_answer.join().unwrap().expect("the deal answers");
	eprintln!("first HTTP 200 after {first_answer:?}");
	assert!(!stderr.contains("failed"), "a failed status on the way: {stderr}");
	for stage in ["valid", "provider", "created", "accepted", "delivered", "is running"] {
		assert!(stderr.contains(stage), "no {stage:?} stage in:\n{stderr}");
	}
	assert!(stdout.contains("runs on"), "{stdout}");
	let id = json(&rpc, &key, &["status"])[0]["id"].as_u64().expect("the deal");
	assert_eq!(json(&rpc, &key, &["name", "register", "shop", &id.to_string()])["name"], "shop");
	assert_eq!(served("shop", &agent).await, "podchain-demo ok\n");
	eprintln!("deployed after {:?}", started.elapsed());

	let status = json(&rpc, &key, &["status", &id.to_string()]);
	assert_eq!(status["state"], "active");
	assert_eq!(status["pods"], "running");
	// The provider's gateway counts the deal's HTTP traffic; `status` shows it.
	assert!(status["traffic"]["responses"]["2xx"].as_u64() >= Some(1), "{status}");
	assert!(status["traffic"]["bytes_out"].as_u64() >= Some(16), "{status}");
	let escrow: u128 = status["escrow"].as_str().unwrap().parse().unwrap();
	let topped = json(&rpc, &key, &["top-up", &id.to_string(), "1.5"]);
	let after: u128 = topped["escrow"].as_str().unwrap().parse().unwrap();
	assert!(after > escrow, "the escrow grew: {escrow} -> {after}");
	let (code, _, stderr) = podchain(&rpc, &key, &["logs", &id.to_string(), "--tail", "10"]);
	assert_eq!(code, 0, "{stderr}");

	// The bill itemises the agent's finalized reports.
	let bill = wait_for(
		"a settled period",
		Duration::from_secs(60),
		|| agent.tail(),
		|| {
			let (rpc, key) = (rpc.clone(), key.clone());
			async move {
				let bill = json(&rpc, &key, &["bill", &id.to_string()]);
				(!bill["periods"].as_array()?.is_empty()).then_some(bill)
			}
		},
	)
	.await;
	assert!(bill["summary"]["total"].as_str().is_some(), "{bill}");
	let (code, human, _) = podchain(&rpc, &key, &["bill", &id.to_string()]);
	assert_eq!(code, 0);
	assert!(
		human.contains("BLOCKS") && human.contains("CPU") && human.contains("charged"),
		"{human}"
	);

	// A second and a third deal beside the first: no failed status on the way.
	for name in ["second", "third"] {
		let manifest = web_manifest(work.path(), &format!("{name}.yaml"), "8080");
		let deployed = json(&rpc, &key, &["deploy", &manifest.to_string_lossy(), "--for", "1h"]);
		let new = deployed["id"].as_u64().unwrap_or_else(|| panic!("deploy of {name}: {deployed}"));
		json(&rpc, &key, &["name", "register", name, &new.to_string()]);
		assert_eq!(served(name, &agent).await, "podchain-demo ok\n", "{name} answers");
	}
	assert_eq!(served("shop", &agent).await, "podchain-demo ok\n", "the first served throughout");

	// Update: a new manifest, delivered and acknowledged once its pod runs: its name answers
	// from the new pod as soon as the update returns.
	let web2 = web_manifest(work.path(), "web2.yaml", "0.0.0.0:8080");
	let (code, _, stderr) =
		podchain(&rpc, &key, &["update", &id.to_string(), &web2.to_string_lossy()]);
	assert_eq!(code, 0, "update failed:\n{stderr}\n{}", agent.tail());
	assert!(!stderr.contains("failed"), "a failed status on the way: {stderr}");
	assert_eq!(served("shop", &agent).await, "podchain-demo ok\n", "the update answers");

	// Scale to zero: a deal idle for 10 s is stopped, shows as idle, and the next request
	// through the gateway starts it and is answered.
	let lazy = web_manifest(work.path(), "lazy.yaml", "8080");
	let yaml =
		std::fs::read_to_string(&lazy).unwrap() + "replicas: { min: 0, max: 1, idle: 10s }\n";
	std::fs::write(&lazy, yaml).unwrap();
	let deployed = json(&rpc, &key, &["deploy", &lazy.to_string_lossy(), "--for", "1h"]);
	let lazy_id = deployed["id"].as_u64().expect("the lazy deal").to_string();
	json(&rpc, &key, &["name", "register", "lazy", &lazy_id]);
	assert_eq!(served("lazy", &agent).await, "podchain-demo ok\n");
	let idle = wait_for(
		"the idle deal to be stopped",
		Duration::from_secs(40),
		|| agent.tail(),
		|| {
			let (rpc, key, lazy_id) = (rpc.clone(), key.clone(), lazy_id.clone());
			async move {
				let status = json(&rpc, &key, &["status", &lazy_id]);
				(status["pods"] == "idle").then_some(status)
			}
		},
	)
	.await;
	assert_eq!(idle["state"], "active", "{idle}");
	let waking = Instant::now();
	let answer = http_get_host(agent.gateway_port, "lazy.localhost", "/");
	eprintln!("cold start through the gateway: {:?}", waking.elapsed());
	assert_eq!(answer, Some((200, "podchain-demo ok\n".to_owned())));
	assert_eq!(json(&rpc, &key, &["status", &lazy_id])["pods"], "running");
	let metrics = podchain_testkit::http_get(agent.http_port, "/metrics").unwrap().1;
	let cold = format!("podchain_agent_gateway_cold_start_seconds_count{{deal=\"{lazy_id}\"}} 1");
	assert!(metrics.contains(&cold), "{metrics}");

	// A provider offline is told as such.
	agent.kill();
	let (code, _, stderr) = podchain(&rpc, &key, &["logs", &id.to_string()]);
	assert_eq!(code, 5, "{stderr}");
	assert!(stderr.contains("offline"), "{stderr}");
	agent.start();
	agent.healthy().await;

	// Following the logs ends by itself when the deal ends.
	let follower = Command::new(env!("CARGO_BIN_EXE_podchain"))
		.args([
			"--rpc",
			&rpc,
			"--key-file",
			&key.to_string_lossy(),
			"logs",
			&id.to_string(),
			"--follow",
		])
		.stdout(std::process::Stdio::null())
		.stderr(std::process::Stdio::piped())
		.spawn()
		.unwrap();

	// Close: the pods go.
	let closed = json(&rpc, &key, &["close", &id.to_string()]);
	assert!(closed["state"].as_str().unwrap().starts_with("clos"), "{closed}");
	wait_for(
		"the pods to go",
		Duration::from_secs(60),
		|| agent.tail(),
		|| {
			let port = agent.gateway_port;
			async move {
				let status = http_get_host(port, "shop.localhost", "/").map(|(s, _)| s);
				(status != Some(200)).then_some(())
			}
		},
	)
	.await;
	let following = tokio::task::spawn_blocking(move || follower.wait_with_output());
	let followed = tokio::time::timeout(Duration::from_secs(120), following)
		.await
		.expect("`logs --follow` ends when the deal ends")
		.unwrap()
		.unwrap();
	assert!(followed.status.success(), "{}", String::from_utf8_lossy(&followed.stderr));
	eprintln!("done after {:?}", started.elapsed());
}
