//! Two real libp2p nodes on 127.0.0.1: a provider running a minimal agent, and a publisher.

use std::{
	collections::HashMap,
	time::{Duration, Instant},
};

use podchain_p2p::{
	auth, blake2_256, identity, seal, ImageReject, InboundRequest, Keypair, LogChunk, LogLine,
	LogsQuery, LogsRequest, ManifestRequest, Multiaddr, P2pConfig, P2pError, P2pHandle, P2pNode,
	PeerId, PublisherSigner, RejectReason,
};
use schnorrkel::{ExpansionMode, MiniSecretKey};

const DEAL: u64 = 7;
const MANIFEST: &[u8] = br#"{"image":"nginx:1.27","cpu":500}"#;

fn sr25519(seed: u8) -> schnorrkel::Keypair {
	MiniSecretKey::from_bytes(&[seed; 32]).unwrap().expand_to_keypair(ExpansionMode::Ed25519)
}

fn local() -> Multiaddr {
	"/ip4/127.0.0.1/tcp/0".parse().unwrap()
}

struct Provider {
	node: P2pNode,
	peer: PeerId,
	addr: Multiaddr,
	/// Manifests the agent stored, encrypted at rest.
	stored: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
}

/// A provider whose agent knows deal [`DEAL`] (publisher `sr25519(1)`, hash of [`MANIFEST`])
/// and serves five log lines. With `answer == false` it takes requests and never answers.
async fn provider(answer: bool) -> Provider {
	provider_with(answer, P2pConfig::default()).await
}

/// [`provider`] with settings of `config` (it listens on 127.0.0.1 and serves regardless).
async fn provider_with(answer: bool, config: P2pConfig) -> Provider {
	let keypair = Keypair::generate_ed25519();
	let at_rest = seal::AtRestKey::from_keypair(&keypair).unwrap();
	let config = P2pConfig { listen_addrs: vec![local()], serve: true, ..config };
	let mut node = P2pNode::spawn(keypair, config).await.unwrap();
	let mut inbound = node.take_inbound().unwrap();
	let handle = node.handle();
	let deals = HashMap::from([(DEAL, (sr25519(1).public(), blake2_256(MANIFEST)))]);
	let lines: Vec<LogLine> = (0..5)
		.map(|i| LogLine {
			container: "web".into(),
			timestamp_ms: 1_700_000_000_000 + i,
			stderr: i == 3,
			text: format!("line {i}"),
		})
		.collect();
	let (stored_tx, stored) = tokio::sync::mpsc::unbounded_channel();
	tokio::spawn(async move {
		let mut held = Vec::new();
		while let Some(request) = inbound.recv().await {
			if !answer {
				held.push(request);
				continue;
			}
			match request {
				InboundRequest::Manifest(m) => {
					let Some((publisher, hash)) = deals.get(&m.request().deal_id) else {
						m.reject(RejectReason::UnknownDeal);
						continue;
					};
					match m.open_checked(publisher, hash) {
						Ok(manifest) => {
							let context = m.request().deal_id.to_le_bytes();
							stored_tx.send(at_rest.seal(&context, &manifest)).unwrap();
							m.ack(*hash);
						}
						Err(reason) => m.reject(reason),
					}
				}
				InboundRequest::Logs(l) => {
					let Some((publisher, _)) = deals.get(&l.request().deal_id) else {
						l.reject(RejectReason::UnknownDeal);
						continue;
					};
					if *publisher != l.request().publisher {
						l.reject(RejectReason::NotPublisher);
						continue;
					}
					let query = l.query();
					let start = match (query.cursor, query.tail) {
						(Some(cursor), _) => cursor as usize,
						(None, Some(tail)) => lines.len().saturating_sub(tail as usize),
						(None, None) => 0,
					}
					.min(lines.len());
					let end = (start + query.max_lines as usize).min(lines.len());
					l.respond(LogChunk {
						lines: lines[start..end].to_vec(),
						next_cursor: end as u64,
						complete: end == lines.len(),
						deal_status: Some("running".into()),
						traffic: None,
					});
				}
				InboundRequest::ImageOffer(offer) => {
					offer.reject(ImageReject::Internal("images are tested in image.rs".into()))
				}
				InboundRequest::ImageChunk(chunk) => {
					chunk.reject(ImageReject::Internal("images are tested in image.rs".into()))
				}
			}
		}
		drop(held);
	});
	let addr = handle.listen_addrs().into_iter().next().expect("listening");
	Provider { peer: handle.local_peer_id(), node, addr, stored }
}

async fn publisher() -> (P2pNode, P2pHandle) {
	let node = P2pNode::spawn(Keypair::generate_ed25519(), P2pConfig::default()).await.unwrap();
	let handle = node.handle();
	(node, handle)
}

fn rejected(result: Result<impl std::fmt::Debug, P2pError>) -> RejectReason {
	match result {
		Err(P2pError::Rejected { reason, .. }) => reason,
		other => panic!("expected a rejection, got {other:?}"),
	}
}

#[tokio::test]
async fn manifest_is_delivered_and_acknowledged() {
	let mut provider = provider(true).await;
	let (_node, client) = publisher().await;
	let request = ManifestRequest::new(&sr25519(1), &provider.peer, DEAL, MANIFEST).unwrap();
	// The registry's form of the address, with the peer id.
	let addr = provider.addr.clone().with_p2p(provider.peer).unwrap();
	let ack = client.deliver_manifest(provider.peer, [addr], request).await.unwrap();
	assert_eq!(ack.manifest_hash, blake2_256(MANIFEST));

	let stored = provider.stored.recv().await.unwrap();
	assert!(!stored.windows(MANIFEST.len()).any(|w| w == MANIFEST), "stored in the clear");
	provider.node.shutdown().await;
}

#[tokio::test]
async fn bad_manifests_get_typed_rejections() {
	let provider = provider(true).await;
	let (_node, client) = publisher().await;
	let (peer, addr) = (provider.peer, provider.addr.clone());
	let deliver = |request| client.deliver_manifest(peer, [addr.clone()], request);

	// Validly signed, but not by the deal's publisher.
	let request = ManifestRequest::new(&sr25519(2), &peer, DEAL, MANIFEST).unwrap();
	assert_eq!(rejected(deliver(request).await), RejectReason::NotPublisher);

	// Not the manifest whose hash is on chain.
	let request = ManifestRequest::new(&sr25519(1), &peer, DEAL, b"{}").unwrap();
	assert_eq!(rejected(deliver(request).await), RejectReason::HashMismatch);

	// No such deal.
	let request = ManifestRequest::new(&sr25519(1), &peer, DEAL + 1, MANIFEST).unwrap();
	assert_eq!(rejected(deliver(request).await), RejectReason::UnknownDeal);

	// Tampered in transit: the signature covers the ciphertext.
	let mut request = ManifestRequest::new(&sr25519(1), &peer, DEAL, MANIFEST).unwrap();
	request.sealed.ciphertext[3] ^= 0x40;
	assert_eq!(rejected(deliver(request).await), RejectReason::BadSignature);

	// Publisher field swapped for the deal's publisher: signature no longer verifies.
	let mut request = ManifestRequest::new(&sr25519(2), &peer, DEAL, MANIFEST).unwrap();
	request.publisher = sr25519(1).public();
	assert_eq!(rejected(deliver(request).await), RejectReason::BadSignature);

	// Correctly signed for this provider, but sealed to another one.
	let other = identity::peer_id(&Keypair::generate_ed25519());
	let signer = sr25519(1);
	let sealed = seal::seal(&other, DEAL, signer.public(), MANIFEST).unwrap();
	let provider_key = seal::ed25519_public_of(&peer).unwrap();
	let message = auth::manifest_message(DEAL, &signer.public(), &provider_key, &sealed.digest());
	let signature = PublisherSigner::sign(&signer, &message);
	let request = ManifestRequest { deal_id: DEAL, publisher: signer.public(), sealed, signature };
	assert_eq!(rejected(deliver(request).await), RejectReason::Undecryptable);

	// Signed and sealed for another provider altogether.
	let request = ManifestRequest::new(&sr25519(1), &other, DEAL, MANIFEST).unwrap();
	assert_eq!(rejected(deliver(request).await), RejectReason::BadSignature);
}

#[tokio::test]
async fn offline_provider_fails_fast() {
	// A port that was just free: nothing listens there.
	let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
	let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
	let peer = identity::peer_id(&Keypair::generate_ed25519());
	let (_node, client) = publisher().await;
	let request = ManifestRequest::new(&sr25519(1), &peer, DEAL, MANIFEST).unwrap();
	let started = Instant::now();
	let result = client.deliver_manifest(peer, [addr], request).await;
	assert!(matches!(result, Err(P2pError::Unreachable { .. })), "{result:?}");
	assert!(started.elapsed() < Duration::from_secs(5));
	// One line naming the address and the cause, e.g. "... unreachable: /ip4/...: Connection
	// refused (os error 111)".
	let message = result.unwrap_err().to_string();
	assert!(message.contains("unreachable") && !message.contains('\n'), "{message}");
}

#[tokio::test]
async fn oversized_request_is_not_sent() {
	let (_node, client) = publisher().await;
	let peer = identity::peer_id(&Keypair::generate_ed25519());
	let mut request = ManifestRequest::new(&sr25519(1), &peer, DEAL, MANIFEST).unwrap();
	request.sealed.ciphertext = vec![0; podchain_p2p::protocol::MAX_MANIFEST_SIZE + 17];
	let result = client.deliver_manifest(peer, [local()], request).await;
	assert!(matches!(result, Err(P2pError::TooLarge { .. })), "{result:?}");
}

#[tokio::test]
async fn address_of_another_peer_is_refused() {
	let (_node, client) = publisher().await;
	let peer = identity::peer_id(&Keypair::generate_ed25519());
	let other = identity::peer_id(&Keypair::generate_ed25519());
	let addr = local().with_p2p(other).unwrap();
	let request = ManifestRequest::new(&sr25519(1), &peer, DEAL, MANIFEST).unwrap();
	let result = client.deliver_manifest(peer, [addr], request).await;
	assert!(matches!(result, Err(P2pError::Address { .. })), "{result:?}");
}

#[tokio::test]
async fn logs_are_read_with_a_cursor() {
	let provider = provider(true).await;
	let (_node, client) = publisher().await;
	let signer = sr25519(1);
	let fetch = |query| {
		let request = LogsRequest::new(&signer, &provider.peer, DEAL, query).unwrap();
		client.fetch_logs(provider.peer, [provider.addr.clone()], request)
	};

	let first = fetch(LogsQuery { max_lines: 2, ..Default::default() }).await.unwrap();
	assert_eq!(
		first.lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
		["line 0", "line 1"]
	);
	assert!(!first.complete);
	assert_eq!(first.deal_status.as_deref(), Some("running"), "the status travels with the lines");
	let query = LogsQuery { cursor: Some(first.next_cursor), max_lines: 10, ..Default::default() };
	let rest = fetch(query).await.unwrap();
	assert_eq!(rest.lines.len(), 3);
	assert_eq!(rest.lines[0].text, "line 2");
	assert!(rest.lines[1].stderr);
	assert!(rest.complete);
	// Following: nothing new after the end.
	let query = LogsQuery { cursor: Some(rest.next_cursor), ..Default::default() };
	let empty = fetch(query).await.unwrap();
	assert!(empty.lines.is_empty());
	assert_eq!(empty.next_cursor, rest.next_cursor);

	let tail = fetch(LogsQuery { tail: Some(1), ..Default::default() }).await.unwrap();
	assert_eq!(tail.lines.len(), 1);
	assert_eq!(tail.lines[0].text, "line 4");

	// Another publisher may not read them.
	let request =
		LogsRequest::new(&sr25519(2), &provider.peer, DEAL, LogsQuery::default()).unwrap();
	let result = client.fetch_logs(provider.peer, [provider.addr.clone()], request).await;
	assert_eq!(rejected(result), RejectReason::NotPublisher);
}

#[tokio::test]
async fn logs_are_followed_until_complete() {
	use futures::StreamExt;
	let provider = provider(true).await;
	let (_node, client) = publisher().await;
	let signer = std::sync::Arc::new(sr25519(1));
	let query = LogsQuery { max_lines: 2, ..Default::default() };
	let interval = Duration::from_millis(50);
	let chunks: Vec<_> = client
		.follow_logs(signer, provider.peer, vec![provider.addr.clone()], DEAL, query, interval)
		.collect()
		.await;
	let sizes: Vec<_> = chunks.iter().map(|c| c.as_ref().unwrap().lines.len()).collect();
	assert_eq!(sizes, [2, 2, 1]);
	assert!(chunks.last().unwrap().as_ref().unwrap().complete);
}

#[tokio::test]
async fn replayed_and_old_log_requests_are_refused() {
	let provider = provider(true).await;
	let (_node, client) = publisher().await;
	let signer = sr25519(1);
	let addrs = [provider.addr.clone()];

	let request = LogsRequest::new(&signer, &provider.peer, DEAL, LogsQuery::default()).unwrap();
	client.fetch_logs(provider.peer, addrs.clone(), request.clone()).await.unwrap();
	let replay = client.fetch_logs(provider.peer, addrs.clone(), request).await;
	assert_eq!(rejected(replay), RejectReason::Replayed);

	let ten_minutes_ago = auth::now_ms() - 600_000;
	let old = LogsRequest::new_at(
		&signer,
		&provider.peer,
		DEAL,
		LogsQuery::default(),
		ten_minutes_ago,
		[9; 16],
	)
	.unwrap();
	assert_eq!(
		rejected(client.fetch_logs(provider.peer, addrs.clone(), old).await),
		RejectReason::Stale
	);

	// A fresh request with a forged timestamp no longer verifies.
	let mut forged = LogsRequest::new(&signer, &provider.peer, DEAL, LogsQuery::default()).unwrap();
	forged.timestamp_ms += 1;
	let result = client.fetch_logs(provider.peer, addrs, forged).await;
	assert_eq!(rejected(result), RejectReason::BadSignature);
}

#[tokio::test]
async fn silent_provider_times_out() {
	let provider = provider(false).await;
	let config = P2pConfig { request_timeout: Duration::from_millis(1500), ..Default::default() };
	let node = P2pNode::spawn(Keypair::generate_ed25519(), config).await.unwrap();
	let request = ManifestRequest::new(&sr25519(1), &provider.peer, DEAL, MANIFEST).unwrap();
	let started = Instant::now();
	let result =
		node.handle().deliver_manifest(provider.peer, [provider.addr.clone()], request).await;
	assert!(matches!(result, Err(P2pError::Timeout { .. })), "{result:?}");
	assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn client_only_node_serves_nothing() {
	let (client_node, client) = publisher().await;
	// A client node does not listen; give the "provider" a listener but no serving.
	let config = P2pConfig { listen_addrs: vec![local()], ..Default::default() };
	let target = P2pNode::spawn(Keypair::generate_ed25519(), config).await.unwrap();
	let (peer, addr) = (target.handle().local_peer_id(), target.handle().listen_addrs()[0].clone());
	let request = ManifestRequest::new(&sr25519(1), &peer, DEAL, MANIFEST).unwrap();
	let result = client.deliver_manifest(peer, [addr], request).await;
	assert!(matches!(result, Err(P2pError::Protocol { .. })), "{result:?}");
	target.shutdown().await;
	client_node.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_the_node() {
	let provider = provider(true).await;
	let (_node, client) = publisher().await;
	let (peer, addr) = (provider.peer, provider.addr.clone());
	let handle = provider.node.handle();
	provider.node.shutdown().await;

	let request = ManifestRequest::new(&sr25519(1), &peer, DEAL, MANIFEST).unwrap();
	let result = handle.deliver_manifest(peer, [addr.clone()], request.clone()).await;
	assert!(matches!(result, Err(P2pError::Shutdown)), "{result:?}");
	let result = client.deliver_manifest(peer, [addr], request).await;
	assert!(matches!(result, Err(P2pError::Unreachable { .. })), "{result:?}");
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused() {
	let config = P2pConfig { max_connections: 1, ..Default::default() };
	let provider = provider_with(true, config).await;
	let (_first_node, first) = publisher().await;
	let (_second_node, second) = publisher().await;
	let fetch = |client: &P2pHandle| {
		let (client, peer, addr) = (client.clone(), provider.peer, provider.addr.clone());
		let request = LogsRequest::new(&sr25519(1), &peer, DEAL, LogsQuery::default()).unwrap();
		async move { client.fetch_logs(peer, [addr], request).await }
	};

	// The first publisher's connection stays open (idle timeout) and takes the only slot.
	fetch(&first).await.unwrap();
	let result = fetch(&second).await;
	assert!(
		matches!(result, Err(P2pError::Unreachable { .. } | P2pError::Protocol { .. })),
		"{result:?}"
	);
	fetch(&first).await.unwrap();
}
