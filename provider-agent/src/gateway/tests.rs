//! The gateway against real HTTP servers on 127.0.0.1 standing in for deals' pods.

use super::*;
use async_trait::async_trait;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::{body::Frame, service::service_fn, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use podchain_cluster::{ClusterError, DealId, DealObjects, DealStatus, Deployed, LogLine, Sampled};
use std::{collections::BTreeMap, convert::Infallible};
use tokio::{
	io::{AsyncReadExt, AsyncWriteExt},
	net::TcpStream,
};

/// A backend that knows only where deals' pods listen, and which are stopped.
#[derive(Default)]
struct Pods(Mutex<BTreeMap<DealId, Vec<SocketAddr>>>, Mutex<Vec<(DealId, bool)>>);

impl Pods {
	fn asleep(&self, deal: DealId) -> bool {
		let calls = self.1.lock().expect("lock");
		calls.iter().rev().find(|(d, _)| *d == deal).is_some_and(|(_, awake)| !awake)
	}

	fn scalings(&self) -> Vec<(DealId, bool)> {
		self.1.lock().expect("lock").clone()
	}
}

#[async_trait]
impl Backend for Pods {
	async fn apply(&self, _: &DealObjects) -> Result<(), ClusterError> {
		Ok(())
	}
	async fn remove(&self, _: DealId) -> Result<(), ClusterError> {
		Ok(())
	}
	async fn deployed(&self) -> Result<Vec<Deployed>, ClusterError> {
		Ok(Vec::new())
	}
	async fn status(&self, _: DealId) -> Result<DealStatus, ClusterError> {
		Ok(DealStatus::Running)
	}
	async fn rolled_out(&self, _: DealId, _: [u8; 32]) -> Result<bool, ClusterError> {
		Ok(true)
	}
	async fn endpoints(&self, deal: DealId, _: u16) -> Result<Vec<SocketAddr>, ClusterError> {
		if self.asleep(deal) {
			return Ok(Vec::new());
		}
		Ok(self.0.lock().expect("lock").get(&deal).cloned().unwrap_or_default())
	}
	async fn set_awake(&self, deal: DealId, awake: bool) -> Result<(), ClusterError> {
		// A start takes a while, as a pod's does.
		if awake {
			tokio::time::sleep(Duration::from_millis(100)).await;
		}
		self.1.lock().expect("lock").push((deal, awake));
		Ok(())
	}
	async fn sample(&self, _: DealId) -> Sampled {
		Sampled::default()
	}
	async fn logs(&self, _: DealId, _: u64, _: u32) -> Result<Vec<LogLine>, ClusterError> {
		Ok(Vec::new())
	}
}

/// A pod: `/` says its name, `/big` streams 1 MiB in 64 KiB chunks, `/slow` answers after
/// 2 s, `/echo` returns the request body, `/ws` upgrades and echoes.
async fn pod(name: &'static str) -> SocketAddr {
	let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
	let address = listener.local_addr().expect("bound");
	tokio::spawn(async move {
		loop {
			let Ok((stream, _)) = listener.accept().await else { continue };
			tokio::spawn(async move {
				let service =
					service_fn(move |mut request: Request<hyper::body::Incoming>| async move {
						let response = match request.uri().path() {
							"/big" => {
								let chunks = (0..16).map(|_| {
									Ok::<_, Infallible>(Frame::data(Bytes::from(vec![
										b'x';
										64 << 10
									])))
								});
								Response::new(
									StreamBody::new(futures::stream::iter(chunks)).boxed(),
								)
							}
							"/slow" => {
								tokio::time::sleep(Duration::from_secs(2)).await;
								Response::new(Full::new(Bytes::from("slow")).boxed())
							}
							"/echo" => {
								let body = request.body_mut().collect().await.map(|b| b.to_bytes());
								Response::new(Full::new(body.unwrap_or_default()).boxed())
							}
							"/ws" => {
								let upgrade = hyper::upgrade::on(&mut request);
								tokio::spawn(async move {
									let Ok(upgraded) = upgrade.await else { return };
									let mut io = TokioIo::new(upgraded);
									let mut buf = [0u8; 64];
									while let Ok(n @ 1..) = io.read(&mut buf).await {
										if io.write_all(&buf[..n]).await.is_err() {
											break;
										}
									}
								});
								let mut response = Response::new(Full::new(Bytes::new()).boxed());
								*response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
								let headers = response.headers_mut();
								headers.insert("connection", "upgrade".parse().expect("value"));
								headers.insert("upgrade", "echo".parse().expect("value"));
								response
							}
							_ => {
								let host = request
									.headers()
									.get("host")
									.and_then(|h| h.to_str().ok())
									.unwrap_or("")
									.to_owned();
								Response::new(
									Full::new(Bytes::from(format!("{name} for {host}"))).boxed(),
								)
							}
						};
						Ok::<_, Infallible>(response)
					});
				let _ = hyper::server::conn::http1::Builder::new()
					.serve_connection(TokioIo::new(stream), service)
					.with_upgrades()
					.await;
			});
		}
	});
	address
}

struct Harness {
	gateway: Arc<Gateway>,
	pods: Arc<Pods>,
	address: SocketAddr,
}

async fn harness(settings: GatewaySettings) -> Harness {
	let pods = Arc::new(Pods::default());
	let gateway = Gateway::new(settings, pods.clone(), GatewayMetrics::default());
	let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
	let address = listener.local_addr().expect("bound");
	gateway.serve(listener);
	Harness { gateway, pods, address }
}

impl Harness {
	/// Routes `host` to `deal`, served by `pod`.
	fn route(&self, routes: &[(&str, u64)], pods: &[(u64, SocketAddr)]) {
		let table =
			routes.iter().map(|(h, d)| (h.to_string(), Route { deal: *d, port: 8080, idle: None }));
		self.gateway.set_routes(table.collect());
		let mut known = self.pods.0.lock().expect("lock");
		for (deal, pod) in pods {
			known.insert(*deal, vec![*pod]);
		}
	}

	/// A client connection to the gateway.
	async fn connect(&self) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
		let stream = TcpStream::connect(self.address).await.expect("connects");
		let (sender, connection) =
			hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
		tokio::spawn(connection);
		sender
	}
}

async fn get(
	sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
	host: &str,
	path: &str,
) -> (StatusCode, Bytes) {
	let request =
		Request::get(path).header("host", host).body(Full::new(Bytes::new())).expect("request");
	let response = sender.send_request(request).await.expect("answer");
	let status = response.status();
	(status, response.into_body().collect().await.expect("body").to_bytes())
}

#[tokio::test]
async fn hosts_route_to_their_deals_and_unknown_hosts_get_404() {
	let h = harness(GatewaySettings::default()).await;
	let (a, b) = (pod("a").await, pod("b").await);
	h.route(&[("shop.deals.test", 1), ("blog.deals.test", 2)], &[(1, a), (2, b)]);
	let mut client = h.connect().await;
	// One kept-alive connection carries requests for both deals.
	for _ in 0..3 {
		let (status, body) = get(&mut client, "Shop.Deals.Test.:80", "/").await;
		assert_eq!((status, &body[..]), (StatusCode::OK, &b"a for Shop.Deals.Test.:80"[..]));
		let (status, body) = get(&mut client, "blog.deals.test", "/").await;
		assert_eq!((status, &body[..]), (StatusCode::OK, &b"b for blog.deals.test"[..]));
	}
	let (status, body) = get(&mut client, "other.deals.test", "/").await;
	assert_eq!(status, StatusCode::NOT_FOUND);
	assert_eq!(body, "no deal is served at \"other.deals.test\"\n");
	let figures = h.gateway.figures(1);
	assert_eq!(figures.responses, [0, 3, 0, 0, 0]);
	assert_eq!(figures.bytes_out, 3 * 25);
}

#[tokio::test]
async fn bodies_stream_both_ways_and_are_counted() {
	let h = harness(GatewaySettings::default()).await;
	h.route(&[("shop.deals.test", 1)], &[(1, pod("a").await)]);
	let mut client = h.connect().await;
	let (status, body) = get(&mut client, "shop.deals.test", "/big").await;
	assert_eq!((status, body.len()), (StatusCode::OK, 1 << 20));
	let upload = Bytes::from(vec![7u8; 300_000]);
	let request = Request::post("/echo")
		.header("host", "shop.deals.test")
		.body(Full::new(upload.clone()))
		.expect("request");
	let response = client.send_request(request).await.expect("answer");
	assert_eq!(response.into_body().collect().await.expect("body").to_bytes(), upload);
	let figures = h.gateway.figures(1);
	assert_eq!(figures.bytes_in, 300_000);
	assert_eq!(figures.bytes_out, (1 << 20) + 300_000);
	assert_eq!(figures.responses[1], 2);
}

#[tokio::test]
async fn websocket_style_upgrades_are_spliced() {
	let h = harness(GatewaySettings::default()).await;
	h.route(&[("chat.deals.test", 1)], &[(1, pod("a").await)]);
	let mut stream = TcpStream::connect(h.address).await.expect("connects");
	stream
		.write_all(b"GET /ws HTTP/1.1\r\nHost: chat.deals.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		.await
		.expect("writes");
	let mut head = Vec::new();
	while !head.ends_with(b"\r\n\r\n") {
		let mut byte = [0u8];
		stream.read_exact(&mut byte).await.expect("reads the head");
		head.push(byte[0]);
	}
	let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
	assert!(head.starts_with("http/1.1 101"), "{head}");
	assert!(head.contains("upgrade: echo"), "{head}");
	for message in ["ping", "a longer message"] {
		stream.write_all(message.as_bytes()).await.expect("writes");
		let mut echoed = vec![0u8; message.len()];
		stream.read_exact(&mut echoed).await.expect("echo");
		assert_eq!(echoed, message.as_bytes());
	}
}

#[tokio::test]
async fn a_slow_deal_fills_only_its_own_slots() {
	let settings = GatewaySettings { max_in_flight_per_deal: 2, ..GatewaySettings::default() };
	let h = harness(settings).await;
	h.route(
		&[("slow.deals.test", 1), ("fast.deals.test", 2)],
		&[(1, pod("a").await), (2, pod("b").await)],
	);
	let mut slow = Vec::new();
	for _ in 0..2 {
		let mut client = h.connect().await;
		slow.push(tokio::spawn(async move { get(&mut client, "slow.deals.test", "/slow").await }));
	}
	tokio::time::sleep(Duration::from_millis(300)).await;
	let started = Instant::now();
	let (status, body) = get(&mut h.connect().await, "slow.deals.test", "/").await;
	assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body:?}");
	let (status, _) = get(&mut h.connect().await, "fast.deals.test", "/").await;
	assert_eq!(status, StatusCode::OK);
	assert!(started.elapsed() < Duration::from_secs(1), "neither waited for the slow pod");
	for request in slow {
		assert_eq!(request.await.expect("joins"), (StatusCode::OK, Bytes::from("slow")));
	}
	// The slots are free again.
	assert_eq!(get(&mut h.connect().await, "slow.deals.test", "/").await.0, StatusCode::OK);
	assert_eq!(h.gateway.figures(1).responses, [0, 3, 0, 0, 1]);
}

#[tokio::test]
async fn timeouts_missing_and_refusing_pods_get_the_gateways_answers() {
	let settings = GatewaySettings {
		response_timeout: Duration::from_millis(300),
		..GatewaySettings::default()
	};
	let h = harness(settings).await;
	let closed = {
		let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
		listener.local_addr().expect("bound")
	};
	h.route(
		&[("slow.deals.test", 1), ("gone.deals.test", 2), ("idle.deals.test", 3)],
		&[(1, pod("a").await), (2, closed)],
	);
	let mut client = h.connect().await;
	assert_eq!(get(&mut client, "slow.deals.test", "/slow").await.0, StatusCode::GATEWAY_TIMEOUT);
	assert_eq!(
		get(&mut h.connect().await, "gone.deals.test", "/").await.0,
		StatusCode::BAD_GATEWAY
	);
	assert_eq!(
		get(&mut h.connect().await, "idle.deals.test", "/").await.0,
		StatusCode::SERVICE_UNAVAILABLE
	);
	// Routes dropped: the host is unknown, and the deal's series go.
	h.gateway.set_routes(HashMap::new());
	assert_eq!(get(&mut h.connect().await, "slow.deals.test", "/").await.0, StatusCode::NOT_FOUND);
	assert_eq!(h.gateway.figures(1), DealFigures::default());
}

#[test]
fn hosts_normalize() {
	assert_eq!(normalize_host("Shop.Example.COM:8080"), "shop.example.com");
	assert_eq!(normalize_host("shop.example.com."), "shop.example.com");
	assert_eq!(normalize_host("[::1]:80"), "[::1]");
	assert_eq!(normalize_host(" a.b "), "a.b");
}

#[tokio::test]
async fn idle_deals_stop_and_the_next_request_starts_them() {
	let settings =
		GatewaySettings { idle_check: Duration::from_millis(50), ..GatewaySettings::default() };
	let h = harness(settings).await;
	let idle = Some(Duration::from_millis(400));
	let route = |deal| Route { deal, port: 8080, idle };
	h.gateway.set_routes(HashMap::from([
		("lazy.deals.test".to_owned(), route(1)),
		("busy.deals.test".to_owned(), route(2)),
	]));
	let (a, b) = (pod("a").await, pod("b").await);
	h.pods.0.lock().expect("lock").extend([(1, vec![a]), (2, vec![b])]);
	// Routed and never asked: it stops after its idle time. A request in flight keeps the
	// other one up past it.
	let mut busy = h.connect().await;
	let slow = tokio::spawn(async move { get(&mut busy, "busy.deals.test", "/slow").await });
	tokio::time::sleep(Duration::from_millis(1000)).await;
	assert_eq!(h.pods.scalings(), [(1, false)], "only the deal without requests stopped");
	assert_eq!(slow.await.expect("joins").0, StatusCode::OK);

	// The next request starts it, waits for its port, and is answered.
	let started = Instant::now();
	let (status, body) = get(&mut h.connect().await, "lazy.deals.test", "/").await;
	assert_eq!((status, &body[..]), (StatusCode::OK, &b"a for lazy.deals.test"[..]));
	assert!(started.elapsed() >= Duration::from_millis(100), "it waited for the start");
	assert_eq!(h.pods.scalings()[..2], [(1, false), (1, true)]);
	// Requests at once start it only once.
	tokio::time::sleep(Duration::from_millis(1000)).await;
	let stops = h.pods.scalings().iter().filter(|(d, a)| *d == 1 && !a).count();
	assert_eq!(stops, 2, "idle again: stopped again {:?}", h.pods.scalings());
	let mut requests = Vec::new();
	for _ in 0..5 {
		let mut client = h.connect().await;
		requests
			.push(tokio::spawn(async move { get(&mut client, "lazy.deals.test", "/").await.0 }));
	}
	for request in requests {
		assert_eq!(request.await.expect("joins"), StatusCode::OK);
	}
	let starts = h.pods.scalings().iter().filter(|(d, a)| *d == 1 && *a).count();
	assert_eq!(starts, 2, "one start for five requests: {:?}", h.pods.scalings());
}

#[tokio::test]
async fn deals_are_never_stopped_where_requests_may_bypass_the_gateway() {
	let settings = GatewaySettings {
		idle_check: Duration::from_millis(50),
		stop_idle_deals: false,
		..GatewaySettings::default()
	};
	let h = harness(settings).await;
	let route = Route { deal: 1, port: 8080, idle: Some(Duration::from_millis(100)) };
	h.gateway.set_routes(HashMap::from([("lazy.deals.test".to_owned(), route)]));
	let a = pod("a").await;
	h.pods.0.lock().expect("lock").insert(1, vec![a]);
	tokio::time::sleep(Duration::from_millis(600)).await;
	assert_eq!(h.pods.scalings(), [], "a Kubernetes deal reached through its Ingress stays up");
	let (status, _) = get(&mut h.connect().await, "lazy.deals.test", "/").await;
	assert_eq!(status, StatusCode::OK);
}
