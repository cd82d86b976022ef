//! Tenants on one podman host, beside a real dev node: each deal runs in a network of its own,
//! and from inside one tenant neither the node's RPC and libp2p ports nor the other tenant's
//! pod can be reached, while the agent's gateway (on the host) reaches both tenants by name and
//! the host reaches the node's RPC.
//!
//! Needs podman, runc, catatonit and busybox-static (`scripts/setup.sh`), root for the
//! firewall rule, and the node binary built by the same `cargo test --release --workspace` run
//! (or `PODCHAIN_NODE`).

use podchain_agent::gateway::{Gateway, GatewayMetrics, GatewaySettings, Route};
use podchain_cluster::{
	objects::{self, BuildOptions, DealSpec, Reserved},
	podman::{PodmanBackend, PodmanOptions},
	Backend, DealObjects,
};
use podchain_manifest::Manifest;
use podchain_testkit::{agent::network_pool, http_get_host, wait_for, AgentDir, DevNode};
use std::{
	collections::HashMap,
	io::{Read, Write},
	net::TcpStream,
	sync::Arc,
	time::Duration,
};

const PORT: u16 = 8080;

/// A deal serving `greeting` on [`PORT`] from busybox httpd, exposed over HTTP as `host`.
fn deal(deal: u64, greeting: &str, host: &str) -> DealObjects {
	let manifest = serde_json::json!({
		"version": "podchain/v1",
		"containers": [{
			"name": "web",
			"image": "localhost/podchain-demo:latest",
			"command": ["sh", "-c",
				format!("echo {greeting} > /tmp/index.html; exec httpd -f -p {PORT} -h /tmp")],
			"resources": { "cpu": "100m", "memory": "64Mi" },
			"ports": [{ "port": PORT }],
		}],
		"expose": [{ "http": { "port": PORT } }],
	});
	let manifest = Manifest::from_json(&manifest.to_string()).expect("manifest parses");
	let spec = DealSpec {
		deal,
		provider: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY".into(),
		publisher: "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty".into(),
		manifest_hash: manifest.hash(),
		reserved: Reserved::from(manifest.resources().expect("totals")),
		manifest,
		http_host: Some(host.into()),
		images: Default::default(),
	};
	objects::build(&spec, &BuildOptions::default()).expect("objects build")
}

/// The node's `system_health` over plain HTTP JSON-RPC on 127.0.0.1:`port`: its status line.
fn rpc_health(port: u16) -> Option<String> {
	let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
	stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
	let body = r#"{"jsonrpc":"2.0","id":1,"method":"system_health","params":[]}"#;
	write!(
		stream,
		"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
		 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
		body.len()
	)
	.ok()?;
	let mut response = String::new();
	stream.read_to_string(&mut response).ok()?;
	Some(response)
}

/// `GET /` through the gateway on `port` for `host`, off the async runtime.
async fn through_gateway(port: u16, host: &'static str) -> Option<(u16, String)> {
	tokio::task::spawn_blocking(move || http_get_host(port, host, "/")).await.expect("joins")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_reach_neither_the_node_nor_each_other_while_the_gateway_reaches_both() {
	let dir = AgentDir::new();
	let node_dir = dir.path().join("node");
	std::fs::create_dir_all(&node_dir).expect("node directory");
	let (node, _chain) = DevNode::start(node_dir).await;
	let mut options = PodmanOptions::new(dir.path().join("podman"));
	options.network_pool = network_pool();
	let backend = Arc::new(
		PodmanBackend::start(options).await.expect("podman service (run scripts/setup.sh)"),
	);
	dir.build_test_image();
	let (a, b) = (71, 72);
	let (host_a, host_b) = ("alpha.localhost", "beta.localhost");
	backend.apply(&deal(a, "alpha", host_a)).await.expect("deal a runs");
	backend.apply(&deal(b, "beta", host_b)).await.expect("deal b runs");

	let gateway =
		Gateway::new(GatewaySettings::default(), backend.clone(), GatewayMetrics::default());
	gateway.set_routes(HashMap::from([
		(host_a.to_owned(), Route { deal: a, port: PORT, idle: None }),
		(host_b.to_owned(), Route { deal: b, port: PORT, idle: None }),
	]));
	let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
	let gateway_port = listener.local_addr().expect("bound").port();
	let _serving = gateway.serve(listener);

	// The gateway reaches both tenants by name.
	for (host, greeting) in [(host_a, "alpha"), (host_b, "beta")] {
		let body = wait_for(
			&format!("{host} through the gateway"),
			Duration::from_secs(30),
			String::new,
			|| async move {
				match through_gateway(gateway_port, host).await {
					Some((200, body)) => Some(body),
					_ => None,
				}
			},
		)
		.await;
		assert_eq!(body.trim(), greeting);
	}
	// The host reaches the node's RPC: the port the tenants try is live.
	let health = rpc_health(node.rpc_port()).expect("the node answers RPC on the host");
	assert!(health.starts_with("HTTP/1.1 200") && health.contains("isSyncing"), "{health}");

	// What a tenant could try for the node: its own loopback (a host-networked pod would be
	// on the host's) and the host's address on the deal's bridge.
	let bridge_gateway = |deal: u64| {
		let format = "{{range .Subnets}}{{.Gateway}}{{end}}";
		let network = format!("podchain-deal-{deal}");
		let address = dir.podman(&["network", "inspect", "--format", format, &network]);
		assert!(!address.is_empty(), "deal {deal}'s network has a gateway address");
		address
	};
	let pod_ip = |deal: u64| dir.deal_address(deal).expect("the pod's address").ip().to_string();
	// From inside `deal`'s container: nc exits non-zero when it cannot connect.
	let reaches = |deal: u64, host: &str, port: u16| {
		let container = format!("podchain-deal-{deal}-pod-0-web");
		let probe = format!("echo | nc -w 2 {host} {port}");
		dir.podman_succeeds(&["exec", &container, "sh", "-c", &probe])
	};
	for (me, other) in [(a, b), (b, a)] {
		let host = bridge_gateway(me);
		// The probe works: each tenant reaches its own server.
		assert!(reaches(me, "127.0.0.1", PORT), "deal {me} reaches itself");
		for port in [node.rpc_port(), node.p2p_port(), gateway_port] {
			assert!(
				!reaches(me, "127.0.0.1", port),
				"deal {me} reached host port {port} on loopback"
			);
			assert!(!reaches(me, &host, port), "deal {me} reached host port {port} at {host}");
		}
		let other_ip = pod_ip(other);
		assert!(!reaches(me, &other_ip, PORT), "deal {me} reached deal {other} at {other_ip}");
	}
	// ... and an HTTP request for the node's RPC from inside a tenant gets nothing.
	let container = format!("podchain-deal-{a}-pod-0-web");
	let rpc_url = format!("http://{}:{}/", bridge_gateway(a), node.rpc_port());
	let post = format!(
		"wget -q -T 3 -O - --header 'Content-Type: application/json' \
		 --post-data '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"system_health\",\"params\":[]}}' {rpc_url}"
	);
	assert!(!dir.podman_succeeds(&["exec", &container, "sh", "-c", &post]), "RPC from a tenant");

	// Still both reachable by name afterwards.
	for (host, greeting) in [(host_a, "alpha"), (host_b, "beta")] {
		let (status, body) = through_gateway(gateway_port, host).await.expect("answered");
		assert_eq!((status, body.trim()), (200, greeting));
	}
	for id in [a, b] {
		backend.remove(id).await.expect("remove");
	}
	drop(node);
}
