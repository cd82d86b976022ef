//! Reconcile time and memory for 1,000 deals against an in-memory Kubernetes API server.
//!
//! `cargo bench -p podchain-agent --bench reconcile` prints, for three rounds of the agent's
//! reconcile step (read what runs, `plan`, apply what it asks for): a cold start with every
//! deal to deploy, a steady round with nothing to do, and a round where a tenth of the deals
//! roll to a new manifest; then the process's peak resident memory. The API server keeps the
//! objects it is sent and answers lists by label, as the real one does, so the figures are the
//! agent's own cost plus a loopback-free round trip per request.

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use podchain_agent::plan::{plan, ChainDeal, ChainState, PlanInput};
use podchain_cluster::{
	kube::{KubeBackend, KubeOptions},
	objects::{self, BuildOptions, DealSpec, Reserved},
	Backend,
};
use podchain_manifest::Manifest;
use serde_json::{json, Value};
use std::{
	collections::BTreeMap,
	convert::Infallible,
	sync::{Arc, Mutex},
	time::{Duration, Instant},
};

const DEALS: u64 = 1_000;

/// Objects by collection path, then name.
type Objects = Arc<Mutex<BTreeMap<String, BTreeMap<String, Value>>>>;

fn respond(status: StatusCode, body: &Value) -> Response<Body> {
	let mut response = Response::new(Body::from(serde_json::to_vec(body).unwrap_or_default()));
	*response.status_mut() = status;
	response
}

fn not_found(name: &str) -> Response<Body> {
	let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
		"reason": "NotFound", "code": 404, "message": format!("{name} not found")});
	respond(StatusCode::NOT_FOUND, &status)
}

/// Merges `patch` into `object`: maps key by key, anything else replaced.
fn merge(object: &mut Value, patch: Value) {
	match (object, patch) {
		(Value::Object(object), Value::Object(patch)) => {
			for (key, value) in patch {
				merge(object.entry(key).or_insert(Value::Null), value);
			}
		}
		(object, patch) => *object = patch,
	}
}

fn matches(object: &Value, selector: &str) -> bool {
	// Equality terms and existence terms, the two kinds the agent uses.
	selector.split(',').filter(|s| !s.is_empty()).all(|term| match term.split_once('=') {
		Some((key, value)) => object["metadata"]["labels"][key].as_str() == Some(value),
		None => object["metadata"]["labels"][term].is_string(),
	})
}

async fn serve(objects: Objects, request: Request<Body>) -> Result<Response<Body>, Infallible> {
	let method = request.method().clone();
	let path = request.uri().path().to_owned();
	let query: BTreeMap<String, String> = request
		.uri()
		.query()
		.unwrap_or_default()
		.split('&')
		.filter_map(|kv| kv.split_once('='))
		.map(|(k, v)| (k.to_owned(), v.replace("%3D", "=").replace("%2C", ",").replace("%2F", "/")))
		.collect();
	let body = request.into_body().collect_bytes().await.map(|b| b.to_vec()).unwrap_or_default();
	let (collection, name) = path.rsplit_once('/').unwrap_or(("", &path));
	let mut objects = objects.lock().unwrap();
	let response = match method {
		Method::PATCH => {
			// Server-side apply by several field managers: each patch merges into the object.
			let patch: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
			let entry = objects.entry(collection.to_owned()).or_default();
			let object = entry.entry(name.to_owned()).or_insert_with(|| json!({}));
			merge(object, patch);
			object["metadata"]["resourceVersion"] = json!("1");
			object["metadata"]["uid"] = json!(format!("uid-{path}"));
			respond(StatusCode::OK, object)
		}
		Method::GET
			if query.contains_key("labelSelector")
				|| query.is_empty()
					&& !objects.get(collection).is_some_and(|c| c.contains_key(name))
					&& objects.contains_key(&path) =>
		{
			let selector = query.get("labelSelector").cloned().unwrap_or_default();
			let items: Vec<Value> = objects
				.get(&path)
				.map(|c| c.values().filter(|o| matches(o, &selector)).cloned().collect())
				.unwrap_or_default();
			respond(
				StatusCode::OK,
				&json!({"apiVersion": "v1", "kind": "List",
				"metadata": {"resourceVersion": "1"}, "items": items}),
			)
		}
		Method::GET => match objects.get(collection).and_then(|c| c.get(name)) {
			Some(object) => respond(StatusCode::OK, object),
			None => not_found(name),
		},
		Method::DELETE => match objects.get_mut(collection).and_then(|c| c.remove(name)) {
			Some(object) => respond(StatusCode::OK, &object),
			None => not_found(name),
		},
		_ => respond(StatusCode::METHOD_NOT_ALLOWED, &json!({})),
	};
	Ok(response)
}

fn spec(deal: u64, manifest: &Manifest) -> DealSpec {
	DealSpec {
		deal,
		provider: "5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y".into(),
		publisher: "5DAAnrj7VHTznn2AWBemMuyBwZWs6FNFjdyVXUeYum3PTXFy".into(),
		manifest: manifest.clone(),
		manifest_hash: manifest.hash(),
		reserved: Reserved { cpu_millicores: 1000, memory_mib: 1024, storage_gib: 10, gpus: 0 },
		http_host: None,
		images: Default::default(),
	}
}

fn peak_rss_kib() -> (u64, u64) {
	let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
	let field = |name: &str| {
		status
			.lines()
			.find(|l| l.starts_with(name))
			.and_then(|l| l.split_whitespace().nth(1))
			.and_then(|v| v.parse().ok())
			.unwrap_or(0)
	};
	(field("VmRSS:"), field("VmHWM:"))
}

/// One reconcile round: what runs, the plan, and the applies it asks for.
async fn round(
	backend: &KubeBackend,
	deals: &[ChainDeal],
	manifests: &BTreeMap<u64, Manifest>,
) -> (Duration, usize) {
	let started = Instant::now();
	let deployed = backend.deployed().await.expect("list deployed");
	let input = PlanInput {
		now: 1_000,
		deals: deals.to_vec(),
		manifests: manifests.iter().map(|(id, m)| (*id, m.hash())).collect(),
		deployed: deployed.into_iter().map(|d| (d.deal, d.manifest_hash)).collect(),
		auto_accept: true,
		manifest_timeout_blocks: 100,
		..Default::default()
	};
	let actions = plan(&input);
	for action in &actions {
		if let podchain_agent::plan::Action::Deploy { id, .. } = action {
			let built = objects::build(&spec(*id, &manifests[id]), &BuildOptions::default())
				.expect("objects build");
			backend.apply(&built).await.expect("apply");
		}
	}
	(started.elapsed(), actions.len())
}

fn manifest(greeting: &str) -> Manifest {
	Manifest::from_yaml(&format!(
		"version: podchain/v1\ncontainers:\n  - name: web\n    image: localhost/podchain-demo:latest\n    \
		 env: {{ GREETING: {greeting} }}\n    ports: [{{ port: 8080 }}]\n    resources: {{ cpu: 100m, memory: 64Mi }}\n\
		 volumes: [{{ name: data, size: 1Gi }}]\nexpose:\n  - http: {{ port: 8080 }}\n"
	))
	.expect("bench manifest")
}

#[tokio::main]
async fn main() {
	let objects: Objects = Default::default();
	let state = objects.clone();
	let service = tower::service_fn(move |request| serve(state.clone(), request));
	let client = kube::Client::new(service, "default");
	let backend = KubeBackend::new(client, KubeOptions::default());

	let first = manifest("hello");
	let mut manifests: BTreeMap<u64, Manifest> = (0..DEALS).map(|id| (id, first.clone())).collect();
	let mut deals: Vec<ChainDeal> = (0..DEALS)
		.map(|id| ChainDeal {
			id,
			is_rent: false,
			state: ChainState::Active { accepted_at: 990 },
			manifest_hash: first.hash(),
			pending_manifest: None,
		})
		.collect();
	let (rss_before, _) = peak_rss_kib();
	println!("reconcile of {DEALS} deals against an in-memory Kubernetes API");

	let (cold, actions) = round(&backend, &deals, &manifests).await;
	println!(
		"  cold start: {actions} deploys in {cold:.2?} ({:.2?} per deal)",
		cold / DEALS as u32
	);
	let (steady, actions) = round(&backend, &deals, &manifests).await;
	assert_eq!(actions, 0, "a converged cluster needs nothing");
	println!("  steady round: {actions} actions in {steady:.2?}");

	let second = manifest("bonjour");
	for deal in deals.iter_mut().filter(|d| d.id % 10 == 0) {
		deal.pending_manifest = Some(second.hash());
		manifests.insert(deal.id, second.clone());
	}
	let (update, actions) = round(&backend, &deals, &manifests).await;
	println!("  update of {} deals: {actions} actions in {update:.2?}", DEALS / 10);

	let stored: usize = objects.lock().unwrap().values().map(|c| c.len()).sum();
	let (rss, peak) = peak_rss_kib();
	println!(
		"  memory: {} MiB resident ({} MiB before), peak {} MiB; the API server held {stored} objects",
		rss / 1024,
		rss_before / 1024,
		peak / 1024
	);
}
