//! Building the manifest crate's fixtures into objects.

use super::*;
use k8s_openapi::{api::core::v1::Container, ByteString};
use podchain_manifest::Manifest;
use serde_json::{json, Value};
use std::{collections::BTreeMap, path::PathBuf};

const PROVIDER: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

pub(crate) fn fixture(name: &str) -> Manifest {
	let path =
		PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../client/manifest/fixtures").join(name);
	Manifest::from_path(&path).expect("fixture parses")
}

/// A deal for `manifest` reserving exactly what it needs.
pub(crate) fn spec(deal: DealId, manifest: Manifest, http_host: Option<&str>) -> DealSpec {
	let totals = manifest.resources().expect("totals");
	DealSpec {
		deal,
		provider: PROVIDER.into(),
		publisher: "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty".into(),
		manifest_hash: manifest.hash(),
		manifest,
		reserved: totals.into(),
		http_host: http_host.map(Into::into),
		images: Default::default(),
	}
}

fn web() -> DealObjects {
	build(&spec(7, fixture("web.yaml"), Some("web.provider.example")), &BuildOptions::default())
		.expect("web builds")
}

fn full() -> DealObjects {
	build(&spec(42, fixture("full.yaml"), Some("shop.provider.example")), &BuildOptions::default())
		.expect("full builds")
}

fn quantities(map: &Option<BTreeMap<String, Quantity>>) -> BTreeMap<&str, &str> {
	map.iter().flatten().map(|(k, v)| (k.as_str(), v.0.as_str())).collect()
}

/// Every object's metadata, as (kind/name, metadata).
fn all_meta(objects: &DealObjects) -> Vec<(String, &ObjectMeta)> {
	let mut all = vec![
		("Namespace".to_owned(), &objects.namespace.metadata),
		("ResourceQuota".to_owned(), &objects.pod_quota.metadata),
		("ResourceQuota".to_owned(), &objects.quota.metadata),
		("ResourceQuota".to_owned(), &objects.snapshot_quota.metadata),
		("LimitRange".to_owned(), &objects.limit_range.metadata),
		("NetworkPolicy".to_owned(), &objects.network_policy.metadata),
		("Deployment".to_owned(), &objects.deployment.metadata),
	];
	all.extend(objects.secrets.iter().map(|o| ("Secret".to_owned(), &o.metadata)));
	all.extend(objects.volumes.iter().map(|o| ("PVC".to_owned(), &o.metadata)));
	all.extend(objects.services.iter().map(|o| ("Service".to_owned(), &o.metadata)));
	all.extend(objects.ingress.iter().map(|o| ("Ingress".to_owned(), &o.metadata)));
	all
}

use k8s_openapi::apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::ObjectMeta};

fn containers(objects: &DealObjects) -> &[Container] {
	let pod = objects.deployment.spec.as_ref().and_then(|s| s.template.spec.as_ref());
	&pod.expect("pod spec").containers
}

#[test]
fn every_object_is_labelled_and_annotated() {
	for objects in [web(), full()] {
		let hash = manifest_hash_hex(&objects.manifest_hash);
		let namespace = namespace_name(objects.deal);
		for (kind, meta) in all_meta(&objects) {
			let labels = meta.labels.as_ref().expect(&kind);
			assert_eq!(labels[DEAL_LABEL], objects.deal.to_string(), "{kind}");
			assert_eq!(labels[PROVIDER_LABEL], PROVIDER, "{kind}");
			assert_eq!(labels[MANAGED_BY_LABEL], MANAGER, "{kind}");
			let annotations = meta.annotations.as_ref().expect(&kind);
			assert_eq!(annotations[MANIFEST_HASH_ANNOTATION], hash, "{kind}");
			if kind != "Namespace" {
				assert_eq!(meta.namespace.as_deref(), Some(namespace.as_str()), "{kind}");
			}
		}
	}
}

#[test]
fn namespace_enforces_restricted_pod_security() {
	let objects = web();
	assert_eq!(objects.namespace.metadata.name.as_deref(), Some("podchain-deal-7"));
	assert_eq!(objects.namespace.metadata.namespace, None);
	let labels = objects.namespace.metadata.labels.expect("labels");
	for mode in ["enforce", "warn", "audit"] {
		assert_eq!(labels[&format!("pod-security.kubernetes.io/{mode}")], "restricted");
		assert_eq!(labels[&format!("pod-security.kubernetes.io/{mode}-version")], "latest");
	}
}

/// The priority-class scope of `quota`: (operator, values).
fn scope(quota: &ResourceQuota) -> Option<(String, Vec<String>)> {
	let selector = quota.spec.as_ref()?.scope_selector.as_ref()?;
	let [requirement] = selector.match_expressions.as_deref()? else { return None };
	assert_eq!(requirement.scope_name, "PriorityClass");
	Some((requirement.operator.clone(), requirement.values.clone().unwrap_or_default()))
}

#[test]
fn quota_is_the_reservation() {
	let web = web();
	let pods = quantities(&web.pod_quota.spec.as_ref().expect("spec").hard);
	assert_eq!(
		pods,
		BTreeMap::from([
			("limits.cpu", "100m"),
			("limits.memory", "64Mi"),
			("pods", "2"),
			("requests.cpu", "100m"),
			("requests.memory", "64Mi"),
		])
	);
	let hard = quantities(&web.quota.spec.as_ref().expect("spec").hard);
	assert_eq!(
		hard,
		BTreeMap::from([
			// 1 GiB per container of 1 + 1 pods, and the storage-proof pod's 16 MiB.
			("limits.ephemeral-storage", "2064Mi"),
			("persistentvolumeclaims", "0"),
			("requests.ephemeral-storage", "2064Mi"),
			("requests.nvidia.com/gpu", "0"),
			("requests.storage", "0Gi"),
			("services.loadbalancers", "0"),
			("services.nodeports", "0"),
		])
	);
	// full: (1500m + 250m) x 5, (1536 MiB + 477 MiB) x 5, 10 GiB + 2 GiB, 1 GPU x 5.
	let full = full();
	let pods = quantities(&full.pod_quota.spec.as_ref().expect("spec").hard);
	assert_eq!(pods["requests.cpu"], "8750m");
	assert_eq!(pods["limits.memory"], "10065Mi");
	assert_eq!(pods["pods"], "6");
	let hard = quantities(&full.quota.spec.as_ref().expect("spec").hard);
	assert_eq!(hard["requests.storage"], "12Gi");
	assert_eq!(hard["requests.nvidia.com/gpu"], "5");
	assert_eq!(hard["persistentvolumeclaims"], "2");
	assert_eq!(hard["services.nodeports"], "1");
	// 1 GiB per container, 2 containers x (5 replicas + 1 surging), and 16 MiB.
	assert_eq!(hard["requests.ephemeral-storage"], "12304Mi");
	assert_eq!(hard["limits.ephemeral-storage"], "12304Mi");
}

#[test]
fn quotas_tell_the_deal_pods_from_the_storage_proof_pod() {
	let full = full();
	// The deal's pods are every pod not of the snapshot class (a pod of no class included).
	let not_snapshot = Some(("NotIn".to_owned(), vec![SNAPSHOT_PRIORITY_CLASS.to_owned()]));
	assert_eq!(scope(&full.pod_quota), not_snapshot);
	assert_eq!(full.pod_quota.metadata.name.as_deref(), Some(POD_QUOTA_NAME));
	// Scoped quotas may only count pods, CPU and memory: the rest is in an unscoped one.
	for quota in [&full.pod_quota, &full.snapshot_quota] {
		let hard = quantities(&quota.spec.as_ref().expect("spec").hard);
		for resource in hard.keys() {
			assert!(
				["pods", "cpu", "memory"].iter().any(|r| resource.ends_with(r)),
				"{resource} in a scoped quota"
			);
		}
	}
	assert_eq!(full.quota.spec.as_ref().expect("spec").scope_selector, None);
	// The snapshot class gets one pod of the snapshot pod's size and no more: a pod naming
	// the class cannot take what the deal did not reserve.
	let only_snapshot = Some(("In".to_owned(), vec![SNAPSHOT_PRIORITY_CLASS.to_owned()]));
	assert_eq!(scope(&full.snapshot_quota), only_snapshot);
	let hard = quantities(&full.snapshot_quota.spec.as_ref().expect("spec").hard);
	assert_eq!(
		hard,
		BTreeMap::from([
			("limits.cpu", "100m"),
			("limits.memory", "64Mi"),
			("pods", "1"),
			("requests.cpu", "100m"),
			("requests.memory", "64Mi"),
		])
	);
}

#[test]
fn the_storage_proof_pod_fits_its_quota_and_the_namespace_rules() {
	// web's only container is 100m and 64 MiB: the pod is capped there (the LimitRange's max).
	let options = BuildOptions {
		snapshot: SnapshotPodOptions {
			cpu: podchain_manifest::Cpu::from_millis(250),
			memory: podchain_manifest::ByteSize::from_bytes(256 << 20),
			..SnapshotPodOptions::default()
		},
		..BuildOptions::default()
	};
	let web = build(&spec(7, fixture("web.yaml"), None), &options).expect("builds");
	let hard = quantities(&web.snapshot_quota.spec.as_ref().expect("spec").hard);
	assert_eq!((hard["limits.cpu"], hard["limits.memory"]), ("100m", "64Mi"));

	let cpu =
		web.snapshot_quota.spec.as_ref().unwrap().hard.as_ref().unwrap()["limits.cpu"].clone();
	let memory =
		web.snapshot_quota.spec.as_ref().unwrap().hard.as_ref().unwrap()["limits.memory"].clone();
	let pod = snapshot_pod(7, "data", Some("node-a"), cpu, memory, &options);
	assert_eq!(pod.metadata.name.as_deref(), Some("snapshot-data"));
	assert_eq!(pod.metadata.namespace.as_deref(), Some("podchain-deal-7"));
	// Not one of the deal's pods: no deal label, so neither status nor billing sees it.
	let labels = pod.metadata.labels.as_ref().expect("labels");
	assert!(!labels.contains_key(DEAL_LABEL));
	assert_eq!(labels[SNAPSHOT_OF_LABEL], "7");
	let spec = pod.spec.as_ref().expect("spec");
	assert_eq!(spec.priority_class_name.as_deref(), Some(SNAPSHOT_PRIORITY_CLASS));
	assert_eq!(spec.node_name.as_deref(), Some("node-a"));
	assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
	assert_eq!(spec.active_deadline_seconds, Some(3600));
	assert_eq!(spec.automount_service_account_token, Some(false));
	// Pod Security `restricted`, as the deal's own user (it reads what they wrote), and no
	// fsGroup (the kubelet would change the volume's ownership).
	let security = spec.security_context.as_ref().expect("pod security");
	assert_eq!(security.run_as_non_root, Some(true));
	assert_eq!(security.run_as_user, Some(options.run_as_user));
	assert_eq!(security.fs_group, None);
	assert_eq!(security.seccomp_profile.as_ref().map(|p| p.type_.as_str()), Some("RuntimeDefault"));
	let [container] = spec.containers.as_slice() else { panic!("one container") };
	let context = container.security_context.as_ref().expect("container security");
	assert_eq!(context.allow_privilege_escalation, Some(false));
	assert_eq!(context.read_only_root_filesystem, Some(true));
	assert_eq!(
		context.capabilities.as_ref().and_then(|c| c.drop.clone()),
		Some(vec!["ALL".into()])
	);
	assert_eq!(container.image.as_deref(), Some("docker.io/library/busybox:1.36"));
	// The claim, read-only at the volume and at the mount.
	let [volume] = spec.volumes.as_deref().expect("volumes") else { panic!("one volume") };
	let claim = volume.persistent_volume_claim.as_ref().expect("claim");
	assert_eq!((claim.claim_name.as_str(), claim.read_only), ("vol-data", Some(true)));
	let mounts = container.volume_mounts.as_deref().expect("mounts");
	assert_eq!(mounts[0].read_only, Some(true));
	// Requests are limits, within the LimitRange's max and the quotas.
	let resources = container.resources.as_ref().expect("resources");
	assert_eq!(resources.requests, resources.limits);
	let requests = quantities(&resources.requests);
	assert_eq!(
		requests,
		BTreeMap::from([("cpu", "100m"), ("ephemeral-storage", "16Mi"), ("memory", "64Mi")])
	);
	let max = quantities(&web.limit_range.spec.as_ref().expect("spec").limits[0].max);
	assert_eq!((max["cpu"], max["memory"]), ("100m", "64Mi"));
}

#[test]
fn ephemeral_storage_is_bounded_per_container_and_in_the_quota() {
	let options = BuildOptions {
		ephemeral_storage: podchain_manifest::ByteSize::from_bytes(512 << 20),
		..BuildOptions::default()
	};
	let full = build(&spec(42, fixture("full.yaml"), None), &options).expect("full builds");
	for c in containers(&full) {
		let r = c.resources.as_ref().expect("resources");
		assert_eq!(quantities(&r.requests)["ephemeral-storage"], "512Mi", "{}", c.name);
		assert_eq!(quantities(&r.limits)["ephemeral-storage"], "512Mi", "{}", c.name);
	}
	let hard = quantities(&full.quota.spec.as_ref().expect("spec").hard);
	assert_eq!(hard["requests.ephemeral-storage"], "6160Mi");
	assert_eq!(hard["limits.ephemeral-storage"], "6160Mi");
	let container = &full.limit_range.spec.as_ref().expect("spec").limits[0];
	for item in [&container.max, &container.default, &container.default_request] {
		assert_eq!(quantities(item)["ephemeral-storage"], "512Mi");
	}
}

#[test]
fn limit_range_caps_containers_and_claims() {
	let full = full();
	let items = &full.limit_range.spec.as_ref().expect("spec").limits;
	assert_eq!(items.len(), 2);
	assert_eq!(items[0].type_, "Container");
	let max = quantities(&items[0].max);
	assert_eq!(
		max,
		BTreeMap::from([("cpu", "1500m"), ("ephemeral-storage", "1Gi"), ("memory", "1536Mi")])
	);
	assert_eq!(quantities(&items[0].default), max);
	assert_eq!(quantities(&items[0].default_request), max);
	assert_eq!(items[1].type_, "PersistentVolumeClaim");
	assert_eq!(quantities(&items[1].max), BTreeMap::from([("storage", "10Gi")]));
	let web = web();
	assert_eq!(web.limit_range.spec.as_ref().expect("spec").limits.len(), 1);
}

#[test]
fn resources_are_exact_requests_and_limits() {
	let web = web();
	let c = &containers(&web)[0];
	let r = c.resources.as_ref().expect("resources");
	assert_eq!(
		quantities(&r.requests),
		BTreeMap::from([("cpu", "100m"), ("ephemeral-storage", "1Gi"), ("memory", "64Mi")])
	);
	assert_eq!(r.requests, r.limits);
	let full = full();
	let [app, db] = containers(&full) else { panic!("two containers") };
	let app = app.resources.as_ref().expect("resources");
	assert_eq!(
		quantities(&app.limits),
		BTreeMap::from([
			("cpu", "1500m"),
			("ephemeral-storage", "1Gi"),
			("memory", "1536Mi"),
			("nvidia.com/gpu", "1")
		])
	);
	let db = db.resources.as_ref().expect("resources");
	// 500M is not a multiple of 1 KiB: it stays in bytes.
	assert_eq!(
		quantities(&db.limits),
		BTreeMap::from([("cpu", "250m"), ("ephemeral-storage", "1Gi"), ("memory", "500000000")])
	);
	assert_eq!(db.requests, db.limits);
}

#[test]
fn secrets_and_env() {
	let full = full();
	let names: Vec<_> =
		full.secrets.iter().map(|s| s.metadata.name.clone().unwrap_or_default()).collect();
	assert_eq!(names, ["secret-db", "secret-tls"]);
	let db = full.secrets[0].data.as_ref().expect("data");
	assert_eq!(db["password"], ByteString("s3cr\u{e9}t".as_bytes().to_vec()));
	let env = serde_json::to_value(&containers(&full)[0].env).expect("json");
	assert_eq!(
		env,
		json!([
			{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "secret-db", "key": "password"}}},
			{"name": "LOG_LEVEL", "value": "info"},
			{"name": "TLS_CERT", "valueFrom": {"secretKeyRef": {"name": "secret-tls", "key": "tls.crt"}}},
		])
	);
}

#[test]
fn volumes_are_claims_mounted_by_name() {
	let full = full();
	let claims: Vec<(String, String)> = full
		.volumes
		.iter()
		.map(|pvc| {
			let spec = pvc.spec.as_ref().expect("spec");
			assert_eq!(spec.access_modes.as_deref(), Some(&["ReadWriteOnce".to_owned()][..]));
			let requests = spec.resources.as_ref().and_then(|r| r.requests.clone());
			let size = requests.and_then(|r| r.get("storage").cloned()).expect("size").0;
			(pvc.metadata.name.clone().unwrap_or_default(), size)
		})
		.collect();
	assert_eq!(
		claims,
		[
			("vol-data".to_owned(), "10Gi".to_owned()),
			("vol-cache".to_owned(), "1500000000".to_owned())
		]
	);
	let pod =
		serde_json::to_value(&full.deployment.spec.as_ref().expect("spec").template).expect("json");
	assert_eq!(
		pod["spec"]["volumes"],
		json!([
			{"name": "data", "persistentVolumeClaim": {"claimName": "vol-data"}},
			{"name": "cache", "persistentVolumeClaim": {"claimName": "vol-cache"}},
		])
	);
	assert_eq!(
		pod["spec"]["containers"][0]["volumeMounts"],
		json!([
			{"name": "data", "mountPath": "/var/lib/shop"},
			{"name": "cache", "mountPath": "/cache", "readOnly": true},
		])
	);
	// Several replicas share ReadWriteOnce volumes: they are kept on one node.
	let term = &pod["spec"]["affinity"]["podAffinity"]
		["requiredDuringSchedulingIgnoredDuringExecution"][0];
	assert_eq!(term["topologyKey"], "kubernetes.io/hostname");
	assert_eq!(term["labelSelector"]["matchLabels"][DEAL_LABEL], "42");
}

#[test]
fn web_deployment_snapshot() {
	let web = web();
	let hash = manifest_hash_hex(&web.manifest_hash);
	let deployment = serde_json::to_value(&web.deployment).expect("json");
	let spec = &deployment["spec"];
	assert_eq!(deployment["apiVersion"], "apps/v1");
	assert_eq!(deployment["kind"], "Deployment");
	assert_eq!(deployment["metadata"]["name"], "app");
	assert_eq!(spec["replicas"], 1);
	assert_eq!(spec["selector"], json!({"matchLabels": {DEAL_LABEL: "7"}}));
	assert_eq!(spec["strategy"], json!({"type": "Recreate"}));
	let template = &spec["template"];
	assert_eq!(template["metadata"]["annotations"], json!({MANIFEST_HASH_ANNOTATION: hash}));
	assert_eq!(template["metadata"]["labels"][DEAL_LABEL], "7");
	let pod: &Value = &template["spec"];
	assert_eq!(pod["automountServiceAccountToken"], false);
	assert_eq!(pod["enableServiceLinks"], false);
	assert_eq!(
		pod["securityContext"],
		json!({
			"runAsNonRoot": true, "runAsUser": 65534, "runAsGroup": 65534, "fsGroup": 65534,
			"seccompProfile": {"type": "RuntimeDefault"},
		})
	);
	assert_eq!(pod.get("affinity"), None);
	assert_eq!(
		pod["containers"],
		json!([{
			"name": "httpd",
			"image": "localhost/podchain-demo:latest",
			"command": ["httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/www"],
			"ports": [{"containerPort": 8080, "protocol": "TCP"}],
			"resources": {
				"limits": {"cpu": "100m", "ephemeral-storage": "1Gi", "memory": "64Mi"},
				"requests": {"cpu": "100m", "ephemeral-storage": "1Gi", "memory": "64Mi"},
			},
			"securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
			"terminationMessagePolicy": "FallbackToLogsOnError",
		}])
	);
}

#[test]
fn a_new_manifest_changes_the_pod_template() {
	let before = web();
	let mut manifest = fixture("web.yaml");
	manifest.containers[0].args = vec!["-v".into()];
	let after = build(&spec(7, manifest, None), &BuildOptions::default()).expect("builds");
	assert_ne!(before.manifest_hash, after.manifest_hash);
	let annotation = |o: &DealObjects| {
		let template = &o.deployment.spec.as_ref().expect("spec").template;
		template.metadata.as_ref().and_then(|m| m.annotations.clone()).expect("annotations")
	};
	assert_ne!(annotation(&before), annotation(&after));
	// Same input, same objects.
	assert_eq!(
		serde_json::to_value(web().deployment).ok(),
		serde_json::to_value(before.deployment).ok()
	);
}

#[test]
fn services_and_ingress() {
	let full = full();
	let services: Vec<Value> =
		full.services.iter().map(|s| serde_json::to_value(s).expect("json")).collect();
	let summary: Vec<_> = services
		.iter()
		.map(|s| {
			(
				s["metadata"]["name"].clone(),
				s["spec"]["type"].clone(),
				s["spec"]["ports"][0]["port"].clone(),
			)
		})
		.collect();
	assert_eq!(
		summary,
		[
			(json!("http-8443"), json!("ClusterIP"), json!(8443)),
			(json!("tcp-5432"), json!("NodePort"), json!(5432)),
		]
	);
	assert_eq!(services[0]["spec"]["selector"], json!({DEAL_LABEL: "42"}));
	let ingress = serde_json::to_value(full.ingress.as_ref().expect("ingress")).expect("json");
	assert_eq!(ingress["metadata"]["name"], "http");
	assert_eq!(
		ingress["spec"],
		json!({
			"ingressClassName": "nginx",
			"rules": [{"host": "shop.provider.example", "http": {"paths": [{
				"path": "/", "pathType": "Prefix",
				"backend": {"service": {"name": "http-8443", "port": {"number": 8443}}},
			}]}}],
		})
	);
	// No registered name, no ingress; the Services stay.
	let unnamed =
		build(&spec(42, fixture("full.yaml"), None), &BuildOptions::default()).expect("builds");
	assert!(unnamed.ingress.is_none());
	assert_eq!(unnamed.services.len(), 2);
	let lb =
		BuildOptions { tcp_service_type: TcpServiceType::LoadBalancer, ..BuildOptions::default() };
	let lb = build(&spec(42, fixture("full.yaml"), None), &lb).expect("builds");
	assert_eq!(lb.services[1].spec.as_ref().and_then(|s| s.type_.as_deref()), Some("LoadBalancer"));
}

#[test]
fn network_policy_isolates_the_namespace() {
	let full = full();
	let policy = serde_json::to_value(&full.network_policy).expect("json");
	let spec = &policy["spec"];
	assert_eq!(spec["podSelector"], json!({}));
	assert_eq!(spec["policyTypes"], json!(["Ingress", "Egress"]));
	assert_eq!(
		spec["ingress"][0]["from"],
		json!([
			{"podSelector": {}},
			{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}},
		])
	);
	// Exposed TCP ports from any source.
	assert_eq!(spec["ingress"][1], json!({"ports": [{"port": 5432, "protocol": "TCP"}]}));
	// Egress: the namespace, the cluster DNS on port 53, and public addresses only; no rule
	// opens other namespaces or the cluster's private networks.
	assert_eq!(
		spec["egress"],
		json!([
			{"to": [{"podSelector": {}}]},
			{
				"to": [{
					"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
					"podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
				}],
				"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
			},
			{"to": [
				{"ipBlock": {"cidr": "0.0.0.0/0", "except": [
					"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
				]}},
				{"ipBlock": {"cidr": "::/0", "except": ["fc00::/7", "fe80::/10", "fd00:ec2::254/128"]}},
			]},
		])
	);
	// The DNS and the denied ranges are the provider's to set.
	let options = BuildOptions {
		dns_namespace: "dns".into(),
		dns_pod_labels: BTreeMap::from([("app".into(), "coredns".into())]),
		egress_denied_cidrs: vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
		..BuildOptions::default()
	};
	let custom = build(&self::spec(42, fixture("full.yaml"), None), &options).expect("builds");
	let custom = serde_json::to_value(&custom.network_policy).expect("json");
	let egress = &custom["spec"]["egress"];
	assert_eq!(
		egress[1]["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
		"dns"
	);
	assert_eq!(egress[1]["to"][0]["podSelector"], json!({"matchLabels": {"app": "coredns"}}));
	assert_eq!(
		egress[2]["to"],
		json!([
			{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}},
			{"ipBlock": {"cidr": "::/0", "except": ["2001:db8::/32"]}},
		])
	);
	// The ingress rules are the same for any options.
	assert_eq!(custom["spec"]["ingress"], spec["ingress"]);
	// Without TCP exposures, only the first ingress rule.
	let web = serde_json::to_value(web().network_policy).expect("json");
	assert_eq!(web["spec"]["ingress"].as_array().map(Vec::len), Some(1));
}

#[test]
fn http_route_serves_only_the_registered_name() {
	let yaml = "version: podchain/v1
containers:
  - name: web
    image: nginx
    ports: [{port: 8080}, {port: 9090}]
    resources: {cpu: 100m, memory: 64Mi}
expose:
  - http: {port: 8080}
  - http: {host: other, port: 9090}
";
	let manifest = Manifest::from_yaml(yaml).expect("parses");
	let objects = build(&spec(1, manifest.clone(), Some("mine.example")), &BuildOptions::default())
		.expect("builds");
	let ingress = serde_json::to_value(objects.ingress).expect("json");
	assert_eq!(
		ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
		"http-8080"
	);
	assert_eq!(objects.services.len(), 2);
	// Once the deal's name is `other`, both exposures want it on different ports.
	let err = build(&spec(1, manifest.clone(), Some("other.example")), &BuildOptions::default())
		.expect_err("conflict");
	assert_eq!(
		err,
		BuildError::ConflictingHttpPorts {
			host: "other.example".into(),
			first: 8080,
			second: 9090
		}
	);
	let err = build(&spec(1, manifest, Some("Not_A_Host")), &BuildOptions::default())
		.expect_err("bad host");
	assert_eq!(err, BuildError::InvalidHost("Not_A_Host".into()));
}

#[test]
fn build_errors() {
	let no_gpu = BuildOptions { gpu_resource: None, ..BuildOptions::default() };
	let err = build(&spec(42, fixture("full.yaml"), None), &no_gpu).expect_err("no gpu");
	assert_eq!(err, BuildError::NoGpuResource { container: "app".into() });
	// Without GPUs in the manifest, no GPU resource is fine and the quota does not name one.
	let web = build(&spec(7, fixture("web.yaml"), None), &no_gpu).expect("builds");
	let hard = quantities(&web.quota.spec.as_ref().expect("spec").hard);
	assert!(!hard.keys().any(|k| k.contains("gpu")), "{hard:?}");

	let mut small = spec(7, fixture("web.yaml"), None);
	small.reserved.memory_mib = 63;
	assert_eq!(
		build(&small, &BuildOptions::default()).expect_err("too small"),
		BuildError::ExceedsReservation { resource: "memory MiB", needed: 64, reserved: 63 }
	);
	let mut bad = spec(7, fixture("web.yaml"), None);
	bad.provider = "not a label".into();
	assert!(matches!(
		build(&bad, &BuildOptions::default()),
		Err(BuildError::InvalidLabelValue { what: "provider", .. })
	));
}

#[test]
fn manifest_hash_hex_round_trips() {
	let hash: [u8; 32] = core::array::from_fn(|i| (i * 9) as u8);
	let hex = manifest_hash_hex(&hash);
	assert_eq!(hex.len(), 64);
	assert!(hex.starts_with("000912"), "{hex}");
	assert_eq!(manifest_hash_from_hex(&hex), Some(hash));
	assert_eq!(manifest_hash_from_hex(&hex.to_uppercase()), Some(hash));
	assert_eq!(manifest_hash_from_hex(&hex[1..]), None);
	assert_eq!(manifest_hash_from_hex(&format!("{}zz", &hex[2..])), None);
	assert_eq!(manifest_hash_from_hex(&format!("+{}", &hex[1..])), None);
}
