//! The HTTP gateway against a real tenant on podman: throughput and latency through the
//! gateway beside calling the pod directly, and the cold start of a deal scaled to zero.
//!
//! `cargo bench -p podchain-agent --bench gateway` runs busybox httpd in a deal of its own
//! (its own podman network, as the agent runs deals), then, for each path, keeps
//! [`CLIENTS`] clients busy for [`SECONDS`] seconds with `GET /` of a small page, each client on
//! one kept-alive connection (httpd itself closes every connection, so the direct path and the
//! gateway's side reconnect per request), and prints requests per second and the latency at
//! p50 and p99. Goals: added p50 latency at most 1 ms, and at least 80% of the direct
//! throughput. Then it stops the deal [`COLD_STARTS`] times and times the first request through
//! the gateway, which starts it: goal at most 2 s to the first byte. Needs root and podman
//! (`scripts/setup.sh`).

use http_body_util::{BodyExt, Empty};
use hyper::{body::Bytes, Request};
use hyper_util::rt::TokioIo;
use podchain_agent::gateway::{Gateway, GatewayMetrics, GatewaySettings, Route};
use podchain_cluster::{
	objects::{self, BuildOptions, DealSpec, Reserved},
	podman::{PodmanBackend, PodmanOptions},
	Backend,
};
use podchain_manifest::Manifest;
use podchain_testkit::AgentDir;
use std::{
	collections::HashMap,
	net::SocketAddr,
	sync::Arc,
	time::{Duration, Instant},
};

const CLIENTS: usize = 8;
const SECONDS: u64 = 5;
const COLD_STARTS: usize = 5;
const DEAL: u64 = 1;
const HOST: &str = "bench.localhost";
/// The deal's idle time here (the manifest's is longer: the gateway's route is what counts).
const IDLE: Duration = Duration::from_secs(1);

/// Latencies and the wall time of one run.
struct Run {
	latencies: Vec<Duration>,
	elapsed: Duration,
}

impl Run {
	fn rps(&self) -> f64 {
		self.latencies.len() as f64 / self.elapsed.as_secs_f64()
	}

	fn percentile(&self, p: f64) -> Duration {
		let mut sorted = self.latencies.clone();
		sorted.sort();
		let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
		sorted.get(index).copied().unwrap_or_default()
	}
}

/// `GET /` with `Host: HOST` on a connection to `address`, again and again until `until`;
/// reconnects when the server closes.
async fn client(address: SocketAddr, until: Instant) -> Vec<Duration> {
	let mut latencies = Vec::new();
	let mut sender = None;
	while Instant::now() < until {
		if sender
			.as_ref()
			.is_none_or(|s: &hyper::client::conn::http1::SendRequest<Empty<Bytes>>| s.is_closed())
		{
			let connect = tokio::net::TcpStream::connect(address);
			let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_secs(1), connect).await else {
				continue;
			};
			let _ = stream.set_nodelay(true);
			let Ok((s, connection)) =
				hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
			else {
				continue;
			};
			tokio::spawn(connection);
			sender = Some(s);
		}
		let Some(s) = sender.as_mut() else { continue };
		if s.ready().await.is_err() {
			sender = None;
			continue;
		}
		let request = Request::get("/").header("host", HOST).body(Empty::new()).expect("request");
		let started = Instant::now();
		match s.send_request(request).await {
			Ok(response) if response.status() == 200 => {
				if response.into_body().collect().await.is_ok() {
					latencies.push(started.elapsed());
				}
			}
			_ => sender = None,
		}
	}
	latencies
}

async fn load(address: SocketAddr) -> Run {
	let started = Instant::now();
	let until = started + Duration::from_secs(SECONDS);
	let clients: Vec<_> = (0..CLIENTS).map(|_| tokio::spawn(client(address, until))).collect();
	let mut latencies = Vec::new();
	for c in clients {
		latencies.extend(c.await.expect("client"));
	}
	Run { latencies, elapsed: started.elapsed() }
}

fn report(name: &str, run: &Run) {
	println!(
		"{name:>8}: {:>7.0} requests/s, p50 {:>7.3} ms, p99 {:>7.3} ms ({} requests)",
		run.rps(),
		run.percentile(0.5).as_secs_f64() * 1e3,
		run.percentile(0.99).as_secs_f64() * 1e3,
		run.latencies.len()
	);
}

fn deal() -> podchain_cluster::DealObjects {
	let yaml = "version: podchain/v1\ncontainers:\n  - name: web\n    image: localhost/podchain-demo:latest\n    \
		command: [httpd, -f, -p, \"8080\", -h, /www]\n    ports: [{port: 8080}]\n    \
		resources: {cpu: 1, memory: 64Mi}\nexpose:\n  - http: {port: 8080}\n\
		replicas: {min: 0, max: 1, idle: 1h}\n";
	let manifest = Manifest::from_yaml(yaml).expect("manifest");
	let spec = DealSpec {
		deal: DEAL,
		provider: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY".into(),
		publisher: "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty".into(),
		manifest_hash: manifest.hash(),
		reserved: Reserved::from(manifest.resources().expect("totals")),
		manifest,
		http_host: Some(HOST.into()),
		images: Default::default(),
	};
	objects::build(&spec, &BuildOptions::default()).expect("objects")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
	// Warnings (a deal that would not start, say) on stderr.
	tracing_subscriber::fmt()
		.with_writer(std::io::stderr)
		.with_env_filter(std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into()))
		.init();
	let dir = AgentDir::new();
	let backend = Arc::new(
		PodmanBackend::start(PodmanOptions::new(dir.path().join("podman")))
			.await
			.expect("podman service (run scripts/setup.sh, as root)"),
	);
	dir.build_test_image();
	backend.apply(&deal()).await.expect("the deal runs");
	let pod = *backend.endpoints(DEAL, 8080).await.expect("endpoints").first().expect("a pod");

	let settings =
		GatewaySettings { idle_check: Duration::from_millis(100), ..GatewaySettings::default() };
	let gateway = Gateway::new(settings, backend.clone(), GatewayMetrics::default());
	// Always up while measuring: the direct runs make no requests through the gateway, which
	// would otherwise stop the deal for being idle.
	let route = Route { deal: DEAL, port: 8080, idle: None };
	gateway.set_routes(HashMap::from([(HOST.to_owned(), route)]));
	let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
	let through = listener.local_addr().expect("bound");
	let _serving = gateway.serve(listener);

	// Warm both paths, then measure each.
	let _ = tokio::join!(
		client(pod, Instant::now() + Duration::from_millis(500)),
		client(through, Instant::now() + Duration::from_millis(500))
	);
	println!("{CLIENTS} clients for {SECONDS} s each, GET / of a small page from busybox httpd on podman:");
	let direct = load(pod).await;
	report("direct", &direct);
	let gated = load(through).await;
	report("gateway", &gated);
	let added = gated.percentile(0.5).saturating_sub(direct.percentile(0.5));
	let share = gated.rps() / direct.rps().max(f64::MIN_POSITIVE) * 100.0;
	println!(
		"added p50 latency {:.3} ms (goal <= 1 ms: {}), throughput {share:.0}% of direct (goal >= 80%: {})",
		added.as_secs_f64() * 1e3,
		if added <= Duration::from_millis(1) { "met" } else { "MISSED" },
		if share >= 80.0 { "met" } else { "MISSED" },
	);

	// The gateway stops the deal after a second without requests; the next request starts it.
	let route = Route { idle: Some(IDLE), ..route };
	gateway.set_routes(HashMap::from([(HOST.to_owned(), route)]));
	let mut colds = Vec::new();
	for _ in 0..COLD_STARTS {
		tokio::time::sleep(IDLE + Duration::from_millis(700)).await;
		assert!(backend.endpoints(DEAL, 8080).await.expect("endpoints").is_empty(), "stopped");
		match client_once(through).await {
			Ok(time) => colds.push(time),
			Err(e) => panic!("the first request after a stop was not answered: {e}"),
		}
	}
	colds.sort();
	println!(
		"cold start to the first byte, {COLD_STARTS} starts: median {:.0} ms, worst {:.0} ms (goal <= 2 s: {})",
		colds[COLD_STARTS / 2].as_secs_f64() * 1e3,
		colds[COLD_STARTS - 1].as_secs_f64() * 1e3,
		if colds[COLD_STARTS - 1] <= Duration::from_secs(2) { "met" } else { "MISSED" },
	);
	backend.remove(DEAL).await.expect("removed");
	backend.shutdown().await;
}

/// One `GET /` through `address`: the time to its response's headers, or what went wrong.
async fn client_once(address: SocketAddr) -> Result<Duration, String> {
	let stream = tokio::net::TcpStream::connect(address).await.map_err(|e| e.to_string())?;
	let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
		.await
		.map_err(|e| e.to_string())?;
	tokio::spawn(connection);
	let request = Request::get("/").header("host", HOST).body(Empty::<Bytes>::new());
	let request = request.map_err(|e| e.to_string())?;
	let started = Instant::now();
	let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
	let elapsed = started.elapsed();
	if response.status() == 200 {
		return Ok(elapsed);
	}
	let status = response.status();
	let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
	Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
}
