//! Rendering real [`objects::build`] output for podman.

use std::collections::BTreeSet;

use podchain_manifest::Manifest;
use serde_json::Value;

use super::{
	model::{Labels, Pod},
	render::render,
	state::is_current,
};
use crate::{
	objects::{self, BuildOptions, DealSpec, Reserved},
	ClusterError, DealObjects,
};

const MANIFEST: &str = r#"version: podchain/v1
containers:
  - name: web
    image: localhost/podchain-demo:latest
    command: [httpd, -f, -p, "127.0.0.1:8080", -h, /www]
    env:
      GREETING: hello
      TOKEN: { secret: api, key: token }
    ports: [{ port: 8080 }]
    resources: { cpu: 250m, memory: 64Mi }
    mounts: [{ volume: data, path: /data }]
volumes: [{ name: data, size: 1Gi }]
secrets: [{ name: api, data: { token: s3cret } }]
replicas: { min: 2, max: 3 }
expose: [{ http: { port: 8080 } }, { tcp: { port: 8080 } }]
"#;

fn objects(deal: u64, yaml: &str) -> DealObjects {
	let manifest = Manifest::from_yaml(yaml).expect("manifest parses");
	let spec = DealSpec {
		deal,
		provider: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY".into(),
		publisher: "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty".into(),
		manifest_hash: manifest.hash(),
		manifest,
		reserved: Reserved { cpu_millicores: 1000, memory_mib: 1024, storage_gib: 10, gpus: 0 },
		http_host: Some("web.provider.example".into()),
		images: Default::default(),
	};
	objects::build(&spec, &BuildOptions::default()).expect("objects build")
}

/// The documents of a rendered body.
fn documents(yaml: &str) -> Vec<Value> {
	yaml.split("\n---\n").map(|d| serde_json::from_str(d).expect("a JSON document")).collect()
}

#[test]
fn renders_a_claim_and_a_deployment_only() {
	let objects = objects(7, MANIFEST);
	assert!(
		!objects.services.is_empty() && objects.ingress.is_some() && !objects.secrets.is_empty()
	);
	let rendered = render(&objects).expect("renders");
	let docs = documents(&rendered.yaml(&BTreeSet::new()));
	let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
	assert_eq!(kinds, ["PersistentVolumeClaim", "Deployment"]);
	assert_eq!(rendered.replicas, 2);
	assert_eq!(rendered.hash, objects::manifest_hash_hex(&objects.manifest_hash));

	// An existing volume's claim is left out: podman would refuse to create it again.
	let existing = BTreeSet::from(["d7-vol-data".to_owned()]);
	let docs = documents(&rendered.yaml(&existing));
	assert_eq!(docs.len(), 1);
	assert_eq!(docs[0]["kind"], "Deployment");
}

#[test]
fn names_are_made_host_global() {
	let rendered = render(&objects(7, MANIFEST)).expect("renders");
	let docs = documents(&rendered.yaml(&BTreeSet::new()));
	let (claim, deployment) = (&docs[0], &docs[1]);
	assert_eq!(claim["metadata"]["name"], "d7-vol-data");
	assert_eq!(claim["metadata"].get("namespace"), None);
	assert_eq!(claim["metadata"]["labels"]["podchain.io/deal-id"], "7");
	assert_eq!(deployment["metadata"]["name"], "podchain-deal-7");
	assert_eq!(deployment["metadata"].get("namespace"), None);
	let pod = &deployment["spec"]["template"]["spec"];
	assert_eq!(pod["volumes"][0]["name"], "d7-data");
	assert_eq!(pod["volumes"][0]["persistentVolumeClaim"]["claimName"], "d7-vol-data");
	assert_eq!(pod["containers"][0]["volumeMounts"][0]["name"], "d7-data");
	assert_eq!(pod["containers"][0]["volumeMounts"][0]["mountPath"], "/data");
}

#[test]
fn pods_stay_off_the_host_network_and_ports_use_local_images_and_keep_limits() {
	let mut objects = objects(7, MANIFEST);
	if let Some(pod) = objects.deployment.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
		pod.host_network = Some(true);
	}
	let rendered = render(&objects).expect("renders");
	let docs = documents(&rendered.yaml(&BTreeSet::new()));
	let pod = &docs[1]["spec"]["template"]["spec"];
	assert_eq!(pod.get("hostNetwork"), None);
	let web = &pod["containers"][0];
	assert_eq!(web["imagePullPolicy"], "IfNotPresent");
	assert_eq!(web.get("ports"), None, "nothing is published on the host");
	assert_eq!(web["resources"]["limits"]["cpu"], "250m");
	assert_eq!(web["resources"]["limits"]["memory"], "64Mi");
	assert_eq!(pod["securityContext"]["runAsUser"], 65534);
}

#[test]
fn secret_values_are_inlined() {
	let rendered = render(&objects(7, MANIFEST)).expect("renders");
	let docs = documents(&rendered.yaml(&BTreeSet::new()));
	let env = &docs[1]["spec"]["template"]["spec"]["containers"][0]["env"];
	let env: Vec<(&str, &str)> = env
		.as_array()
		.expect("env")
		.iter()
		.map(|v| {
			assert_eq!(v.get("valueFrom"), None);
			(v["name"].as_str().expect("name"), v["value"].as_str().expect("a plain value"))
		})
		.collect();
	assert_eq!(env, [("GREETING", "hello"), ("TOKEN", "s3cret")]);
	assert!(!rendered.yaml(&BTreeSet::new()).contains("\"kind\":\"Secret\""));
}

#[test]
fn labels_and_hash_are_on_the_pods() {
	let objects = objects(7, MANIFEST);
	let rendered = render(&objects).expect("renders");
	let docs = documents(&rendered.yaml(&BTreeSet::new()));
	let hash = objects::manifest_hash_hex(&objects.manifest_hash);
	let labels = &docs[1]["spec"]["template"]["metadata"]["labels"];
	assert_eq!(labels["podchain.io/deal-id"], "7");
	assert_eq!(labels["podchain.io/provider"], "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY");
	assert_eq!(labels["app.kubernetes.io/managed-by"], "podchain-agent");
	assert_eq!(labels["podchain.io/manifest-hash"], hash.as_str());
	assert_eq!(labels["podchain.io/replicas"], "2");
	assert_eq!(docs[1]["metadata"]["annotations"]["podchain.io/manifest-hash"], hash.as_str());
}

#[test]
fn secrets_podman_cannot_carry_are_refused() {
	let mut missing = objects(7, MANIFEST);
	missing.secrets.clear();
	let err = render(&missing).unwrap_err();
	assert!(
		matches!(&err, ClusterError::Refused(m) if m.contains("secret-api/token is missing")),
		"{err}"
	);

	let mut volume = objects(7, MANIFEST);
	let pod = volume.deployment.spec.as_mut().and_then(|s| s.template.spec.as_mut()).expect("pod");
	let volumes = pod.volumes.as_mut().expect("volumes");
	volumes[0].persistent_volume_claim = None;
	volumes[0].secret = Some(Default::default());
	let err = render(&volume).unwrap_err();
	assert!(matches!(&err, ClusterError::Refused(m) if m.contains("secret volumes")), "{err}");

	let mut host = objects(7, MANIFEST);
	let pod = host.deployment.spec.as_mut().and_then(|s| s.template.spec.as_mut()).expect("pod");
	let volumes = pod.volumes.as_mut().expect("volumes");
	volumes[0].persistent_volume_claim = None;
	volumes[0].host_path = Some(Default::default());
	assert!(matches!(render(&host), Err(ClusterError::Refused(_))));
}

#[test]
fn current_means_same_hash_all_replicas_up_on_the_deals_network() {
	let rendered = render(&objects(7, MANIFEST)).expect("renders");
	let pod = |name: &str, hash: &str, status: &str| Pod {
		id: name.to_owned(),
		name: name.to_owned(),
		status: status.to_owned(),
		labels: Labels::from([(objects::MANIFEST_HASH_ANNOTATION.to_owned(), hash.to_owned())]),
		networks: vec!["podchain-deal-7".to_owned()],
		..Pod::default()
	};
	let h = rendered.hash.as_str();
	let on_host = Pod { networks: Vec::new(), ..pod("p1", h, "Running") };
	assert!(
		!is_current(&[pod("p0", h, "Running"), on_host], &rendered),
		"a pod an older agent ran on the host's network is replaced"
	);
	let up = [pod("p0", h, "Running"), pod("p1", h, "Degraded")];
	assert!(is_current(&up, &rendered));
	assert!(!is_current(&up[..1], &rendered), "a replica is missing");
	assert!(!is_current(&[pod("p0", h, "Running"), pod("p1", "other", "Running")], &rendered));
	assert!(!is_current(&[pod("p0", h, "Running"), pod("p1", h, "Created")], &rendered));
	assert!(!is_current(&[pod("p0", h, "Running"), pod("p1", h, "Exited")], &rendered));
}
