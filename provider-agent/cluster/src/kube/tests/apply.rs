//! apply and remove.

use super::{metadata_list, mock, run, ApiServer};
use crate::{
	objects::{build, manifest_hash_hex, tests as fixtures, BuildOptions, DealObjects},
	Backend, ClusterError,
};
use http::Method;
use serde_json::{json, Value};

const NS: &str = "/api/v1/namespaces/podchain-deal-7";
const NET: &str = "/apis/networking.k8s.io/v1/namespaces/podchain-deal-7";
const SELECTOR: &str = "podchain.io/deal-id=7,app.kubernetes.io/managed-by=podchain-agent";

fn web() -> DealObjects {
	let spec = fixtures::spec(7, fixtures::fixture("web.yaml"), Some("web.provider.example"));
	build(&spec, &BuildOptions::default()).expect("builds")
}

/// Expects a metadata list of the deal's objects at `path` and answers `names`.
async fn expect_list(server: &mut ApiServer, path: &str, names: &[&str]) {
	let exchange = server.expect(Method::GET, path).await;
	exchange.assert_query(&[("labelSelector", SELECTOR)]);
	exchange.reply(200, metadata_list(names));
}

/// The server-side applies of the web deal, namespace first, each answered by echoing the
/// object back. Returns the applied bodies, in order.
async fn expect_patches(server: &mut ApiServer) -> Vec<Value> {
	let mut bodies = vec![server.expect_apply(NS).await];
	for path in [
		format!("{NS}/resourcequotas/reserved-pods"),
		format!("{NS}/resourcequotas/reserved"),
		format!("{NS}/resourcequotas/snapshot"),
		format!("{NS}/limitranges/containers"),
		format!("{NET}/networkpolicies/isolate"),
		format!("{NS}/services/http-8080"),
		format!("{NET}/ingresses/http"),
		"/apis/apps/v1/namespaces/podchain-deal-7/deployments/app".to_owned(),
	] {
		bodies.push(server.expect_apply(&path).await);
	}
	bodies
}

/// A whole apply of the web deal: the patches, then the prune lists answered with what is in
/// the cluster (ingresses, services, secrets, claims), nothing left over.
async fn apply_web(server: &mut ApiServer) -> Vec<Value> {
	let mut bodies = expect_patches(server).await;
	expect_list(server, &format!("{NET}/ingresses"), &["http"]).await;
	expect_list(server, &format!("{NS}/services"), &["http-8080"]).await;
	expect_list(server, &format!("{NS}/secrets"), &[]).await;
	expect_list(server, &format!("{NS}/persistentvolumeclaims"), &[]).await;
	bodies.push(expect_hash(server).await);
	bodies
}

/// The last patch: the namespace's manifest hash, under a field manager of its own.
async fn expect_hash(server: &mut ApiServer) -> Value {
	let exchange = server.expect(Method::PATCH, NS).await;
	exchange.assert_query(&[("fieldManager", "podchain-agent-manifest-hash"), ("force", "true")]);
	let body = exchange.json();
	exchange.reply(200, body.clone());
	body
}

#[tokio::test]
async fn apply_puts_the_namespace_first_and_the_deployment_last() {
	let objects = web();
	let hash = manifest_hash_hex(&objects.manifest_hash);
	let (backend, server) = mock();
	let result = run!(backend, server, |b| b.apply(&objects), |mut server| async move {
		let bodies = apply_web(&mut server).await;
		let kinds: Vec<&str> = bodies.iter().map(|b| b["kind"].as_str().unwrap_or("")).collect();
		// The pods' quota before the rest: a namespace of an older agent keeps a CPU limit.
		let quotas: Vec<&str> =
			bodies[1..4].iter().map(|b| b["metadata"]["name"].as_str().unwrap_or("")).collect();
		assert_eq!(quotas, ["reserved-pods", "reserved", "snapshot"]);
		assert_eq!(
			kinds,
			[
				"Namespace",
				"ResourceQuota",
				"ResourceQuota",
				"ResourceQuota",
				"LimitRange",
				"NetworkPolicy",
				"Service",
				"Ingress",
				"Deployment",
				"Namespace"
			]
		);
		let namespace = &bodies[0];
		assert_eq!(
			namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
			"restricted"
		);
		// The hash is recorded only once everything else is applied.
		assert!(namespace["metadata"]["annotations"].get("podchain.io/manifest-hash").is_none());
		assert_eq!(
			bodies[9]["metadata"],
			json!({"name": "podchain-deal-7", "annotations": {"podchain.io/manifest-hash": hash}})
		);
		let deployment = &bodies[8];
		assert_eq!(
			deployment["spec"]["template"]["metadata"]["annotations"]["podchain.io/manifest-hash"],
			json!(hash)
		);
		assert_eq!(deployment["metadata"]["namespace"], "podchain-deal-7");
		server
	},);
	result.expect("applied");
}

#[tokio::test]
async fn apply_prunes_what_the_deal_no_longer_has() {
	let objects = web();
	let (backend, server) = mock();
	let result = run!(backend, server, |b| b.apply(&objects), |mut server| async move {
		expect_patches(&mut server).await;
		expect_list(&mut server, &format!("{NET}/ingresses"), &["http"]).await;
		// A TCP exposure and a secret the old manifest had are deleted.
		expect_list(&mut server, &format!("{NS}/services"), &["http-8080", "tcp-9000"]).await;
		let delete = server.expect(Method::DELETE, &format!("{NS}/services/tcp-9000")).await;
		assert_eq!(delete.json()["propagationPolicy"], "Background");
		delete.reply(200, json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}));
		expect_list(&mut server, &format!("{NS}/secrets"), &["secret-old"]).await;
		// Gone already (someone else deleted it): still success.
		server.expect(Method::DELETE, &format!("{NS}/secrets/secret-old")).await.reply_status(
			404,
			"NotFound",
			"secrets \"secret-old\" not found",
		);
		expect_list(&mut server, &format!("{NS}/persistentvolumeclaims"), &[]).await;
		expect_hash(&mut server).await;
		server
	},);
	result.expect("applied");
}

#[tokio::test]
async fn applying_twice_sends_the_same_patches() {
	let objects = web();
	let (backend, server) = mock();
	let result = run!(
		backend,
		server,
		|b| async {
			b.apply(&objects).await?;
			b.apply(&objects).await
		},
		|mut server| async move {
			let first = apply_web(&mut server).await;
			let second = apply_web(&mut server).await;
			assert_eq!(first, second);
			server
		},
	);
	result.expect("applied twice");
}

#[tokio::test]
async fn apply_into_a_terminating_namespace_waits() {
	let objects = web();
	let (backend, server) = mock();
	let result = run!(backend, server, |b| b.apply(&objects), |mut server| async move {
		let exchange = server.expect(Method::PATCH, NS).await;
		let mut namespace = exchange.json();
		namespace["metadata"]["deletionTimestamp"] = json!("2024-05-01T10:00:00Z");
		namespace["status"] = json!({"phase": "Terminating"});
		exchange.reply(200, namespace);
		server
	},);
	let err = result.expect_err("terminating");
	assert!(err.is_transient(), "{err}");
}

#[tokio::test]
async fn refusals_and_outages_are_told_apart() {
	let objects = web();
	// A server error on the quota: transient, and nothing after it is sent.
	let (backend, server) = mock();
	let result = run!(backend, server, |b| b.apply(&objects), |mut server| async move {
		server.expect_apply(NS).await;
		let quota =
			server.expect(Method::PATCH, &format!("{NS}/resourcequotas/reserved-pods")).await;
		quota.reply_bytes(503, b"upstream connect error".to_vec());
		server
	},);
	assert!(
		matches!(result, Err(ClusterError::Unavailable(ref m)) if m.contains("upstream")),
		"{result:?}"
	);

	// The Deployment refused as invalid: not transient.
	let (backend, server) = mock();
	let result = run!(backend, server, |b| b.apply(&objects), |mut server| async move {
		for path in [
			NS.to_owned(),
			format!("{NS}/resourcequotas/reserved-pods"),
			format!("{NS}/resourcequotas/reserved"),
			format!("{NS}/resourcequotas/snapshot"),
			format!("{NS}/limitranges/containers"),
			format!("{NET}/networkpolicies/isolate"),
			format!("{NS}/services/http-8080"),
			format!("{NET}/ingresses/http"),
		] {
			server.expect_apply(&path).await;
		}
		server
			.expect(Method::PATCH, "/apis/apps/v1/namespaces/podchain-deal-7/deployments/app")
			.await
			.reply_status(422, "Invalid", "Deployment.apps \"app\" is invalid");
		server
	},);
	assert!(
		matches!(result, Err(ClusterError::Refused(ref m)) if m.contains("is invalid")),
		"{result:?}"
	);

	// No answer at all: the connection dropped.
	let (backend, server) = mock();
	let result = run!(backend, server, |b| b.apply(&objects), |mut server| async move {
		drop(server.expect(Method::PATCH, NS).await);
		server
	},);
	assert!(matches!(result, Err(ClusterError::Unavailable(_))), "{result:?}");
}

#[tokio::test]
async fn remove_deletes_the_namespace_and_tolerates_its_absence() {
	for (code, ok) in [(200, true), (404, true), (409, true), (403, false), (500, false)] {
		let (backend, server) = mock();
		let result = run!(backend, server, |b| b.remove(7), move |mut server| async move {
			let exchange = server.expect(Method::DELETE, NS).await;
			assert_eq!(exchange.json()["propagationPolicy"], "Background");
			if code == 200 {
				exchange.reply(
						200,
						json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "podchain-deal-7"}, "status": {"phase": "Terminating"}}),
					);
			} else {
				exchange.reply_status(code, "Reason", "message");
			}
			server
		},);
		assert_eq!(result.is_ok(), ok, "{code}: {result:?}");
		if code == 403 {
			assert!(matches!(result, Err(ClusterError::Refused(_))));
		}
		if code == 500 {
			assert!(matches!(result, Err(ClusterError::Unavailable(_))));
		}
	}
}

/// Applies `objects` with the quota's apply answered with `used` as its status (`None`: not
/// computed yet), and returns the Deployment's applied strategy.
async fn strategy_under(objects: DealObjects, used: Option<Value>) -> Value {
	let (backend, server) = mock();
	let (sent, got) = tokio::sync::oneshot::channel();
	let result = run!(backend, server, |b| b.apply(&objects), move |mut server| async move {
		server.expect_apply(NS).await;
		// Each quota answers with the usage of what it limits.
		for name in ["reserved-pods", "reserved"] {
			let quota = server.expect(Method::PATCH, &format!("{NS}/resourcequotas/{name}")).await;
			let mut body = quota.json();
			if let Some(used) = &used {
				let hard = body["spec"]["hard"].clone();
				let mine: serde_json::Map<String, Value> = hard
					.as_object()
					.expect("hard")
					.keys()
					.filter_map(|k| Some((k.clone(), used.get(k)?.clone())))
					.collect();
				body["status"] = json!({"hard": hard, "used": mine});
			}
			quota.reply(200, body);
		}
		for path in [
			format!("{NS}/resourcequotas/snapshot"),
			format!("{NS}/limitranges/containers"),
			format!("{NET}/networkpolicies/isolate"),
			format!("{NS}/services/http-8080"),
			format!("{NET}/ingresses/http"),
		] {
			server.expect_apply(&path).await;
		}
		let deployment =
			server.expect_apply("/apis/apps/v1/namespaces/podchain-deal-7/deployments/app").await;
		let _ = sent.send(deployment["spec"]["strategy"].clone());
		expect_list(&mut server, &format!("{NET}/ingresses"), &["http"]).await;
		expect_list(&mut server, &format!("{NS}/services"), &["http-8080"]).await;
		expect_list(&mut server, &format!("{NS}/secrets"), &[]).await;
		expect_list(&mut server, &format!("{NS}/persistentvolumeclaims"), &[]).await;
		expect_hash(&mut server).await;
		server
	},);
	result.expect("applied");
	got.await.expect("the Deployment was applied")
}

#[tokio::test]
async fn a_rollout_fits_the_quota() {
	// The deal: the reservation is one 100m pod, which runs. A rolling update's new pod
	// would be refused by the quota while the old one terminates: the pods are recreated.
	let running = json!({
		"requests.cpu": "100m", "limits.cpu": "100m", "requests.memory": "64Mi",
		"limits.memory": "64Mi", "pods": "1", "requests.ephemeral-storage": "1Gi",
		"limits.ephemeral-storage": "1Gi",
	});
	assert_eq!(strategy_under(web(), Some(running.clone())).await, json!({"type": "Recreate"}));
	// Usage not computed yet (a new namespace): recreate, which needs no room.
	assert_eq!(strategy_under(web(), None).await, json!({"type": "Recreate"}));

	// A deal reserving twice what its pod needs: room for the new pod beside the old, so the
	// old one serves until the new one is ready.
	let mut spec = fixtures::spec(7, fixtures::fixture("web.yaml"), Some("web.provider.example"));
	spec.reserved.cpu_millicores = 200;
	spec.reserved.memory_mib = 128;
	let roomy = build(&spec, &BuildOptions::default()).expect("builds");
	assert_eq!(
		strategy_under(roomy, Some(running)).await,
		json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "100%", "maxUnavailable": 0}})
	);
}

#[tokio::test]
async fn a_delivered_image_is_pulled_by_digest_from_the_deals_repository() {
	use crate::kube::{tests::mock_with, DeliveredImages, KubeOptions};
	use podchain_manifest::{DeliveredImage, Image};
	let key = [5; 32];
	let options = KubeOptions {
		delivered_images: Some(DeliveredImages { host: "registry.podchain:5000".into(), key }),
		..KubeOptions::default()
	};
	let (backend, server) = mock_with(options);
	assert!(backend.runs_delivered_images());
	let image = DeliveredImage { name: "team/web".into(), digest: [0xef; 32] };
	struct Unused;
	impl crate::ImageArchive for Unused {
		fn write_archive(&self, _: &str, _: &mut dyn std::io::Write) -> std::io::Result<()> {
			panic!("a cluster pulls; it never needs an archive")
		}
	}
	let reference = backend.stage_image(7, &image, std::sync::Arc::new(Unused)).await.unwrap();
	let repository = crate::kube::repository(&key, 7);
	assert_eq!(
		reference,
		format!("registry.podchain:5000/{repository}/team/web@sha256:{}", "ef".repeat(32))
	);
	let mut spec = fixtures::spec(7, fixtures::fixture("web.yaml"), Some("web.provider.example"));
	spec.manifest.containers[0].image = Image::Delivered(image.clone());
	spec.manifest_hash = spec.manifest.hash();
	spec.images = [(image.digest, reference.clone())].into();
	let objects = build(&spec, &BuildOptions::default()).expect("builds");
	let result = run!(backend, server, |b| b.apply(&objects), |mut server| async move {
		let bodies = apply_web(&mut server).await;
		let container = &bodies[8]["spec"]["template"]["spec"]["containers"][0];
		assert_eq!(container["image"], json!(reference));
		// A digest is pulled once per node; the default policy for it, left unset.
		assert!(container.get("imagePullPolicy").is_none(), "{container}");
		server
	},);
	result.expect("applied");

	// Without a registry, the backend refuses delivered images instead of naming a pull that
	// cannot work.
	let (plain, _server) = super::mock();
	assert!(!plain.runs_delivered_images());
	let refused = plain.stage_image(7, &image, std::sync::Arc::new(Unused)).await;
	assert!(matches!(refused, Err(ClusterError::Refused(_))), "{refused:?}");
}
