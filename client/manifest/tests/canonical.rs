//! The canonical form and the hash: same manifest, same bytes, whatever the spelling; any change
//! of meaning, different bytes. The pinned values were reproduced independently by a Python
//! script written from the crate documentation only (json.dumps with sort_keys and compact
//! separators, hashlib.blake2b with digest_size=32).

use std::path::Path;

use podchain_manifest::{blake2_256, Manifest};

fn load(name: &str) -> Manifest {
	let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
	Manifest::from_path(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn hex(bytes: &[u8]) -> String {
	bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const WEB_CANONICAL: &str = concat!(
	r#"{"containers":[{"args":[],"command":["httpd","-f","-p","127.0.0.1:8080","-h","/www"],"#,
	r#""env":{},"image":"localhost/podchain-demo:latest","mounts":[],"name":"httpd","#,
	r#""ports":[{"port":8080,"protocol":"tcp"}],"resources":{"cpu":"100m","gpus":0,"#,
	r#""memory":67108864}}],"expose":[{"http":{"host":null,"port":8080}}],"name":"web","#,
	r#""replicas":{"max":1,"min":1},"secrets":[],"version":"podchain/v1","volumes":[]}"#
);
const WEB_HASH: &str = "036be9ce64629618df3fc1779ba06f5b99cb6f3f01ac9f73ed1a8d18a7f4babf";
const FULL_HASH: &str = "7deb3ec37746ecfe45418a65c36977b6d95aa126c02307e13c4f7a62d9c0671f";

#[test]
fn web_canonical_bytes_and_hash_are_pinned() {
	let m = load("web.yaml");
	assert_eq!(String::from_utf8(m.canonical_bytes()).unwrap(), WEB_CANONICAL);
	assert_eq!(hex(&m.hash()), WEB_HASH);
	assert_eq!(m.hash(), blake2_256(WEB_CANONICAL.as_bytes()));
}

#[test]
fn every_spelling_hashes_the_same() {
	for name in ["web.yaml", "web.json", "web-respelled.yaml"] {
		assert_eq!(hex(&load(name).hash()), WEB_HASH, "{name}");
	}
	for name in ["full.yaml", "full.json"] {
		assert_eq!(hex(&load(name).hash()), FULL_HASH, "{name}");
	}
}

#[test]
fn canonical_form_is_a_manifest_with_the_same_canonical_form() {
	for name in ["web.yaml", "full.yaml"] {
		let m = load(name);
		let canonical = m.canonical_bytes();
		let again = Manifest::from_bytes(&canonical).unwrap();
		assert_eq!(again, m, "{name}");
		assert_eq!(again.canonical_bytes(), canonical, "{name}");
	}
}

#[test]
fn canonical_form_agrees_with_serde_json_sorted_compact() {
	// serde_json's Value keeps keys sorted (BTreeMap) and writes compact JSON with the escapes
	// the canonical form specifies: re-encoding must not change a byte.
	for name in ["web.yaml", "full.yaml"] {
		let canonical = load(name).canonical_bytes();
		let value: serde_json::Value = serde_json::from_slice(&canonical).unwrap();
		assert_eq!(serde_json::to_vec(&value).unwrap(), canonical, "{name}");
	}
}

#[test]
fn comments_whitespace_and_key_order_do_not_matter() {
	let a = "version: podchain/v1\ncontainers:\n- {name: a, image: busybox, resources: {cpu: 1, \
	         memory: 1Gi}}\n";
	let b = "# a comment\n\ncontainers:   # another\n  -   resources:\n        memory: \
	         \"1073741824\"\n        cpu: '1000m'\n      image: \"busybox\"\n      name: a\n\
	         version:    'podchain/v1'\nreplicas: {}\n";
	let c = r#"  { "containers" : [ { "image":"busybox","name":"a","resources":{"cpu":1.000,"memory":"1024Mi"} } ],
		"version" : "podchain/v1", "expose": null }  "#;
	let hash = Manifest::parse(a).unwrap().hash();
	assert_eq!(Manifest::parse(b).unwrap().hash(), hash);
	assert_eq!(Manifest::parse(c).unwrap().hash(), hash);
}

#[test]
fn byte_order_marks_and_crlf_line_ends_do_not_matter() {
	let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
	for name in ["web.yaml", "web.json"] {
		let text = std::fs::read_to_string(dir.join(name)).unwrap();
		let windows = format!("\u{feff}{}", text.replace('\n', "\r\n"));
		let m = Manifest::from_bytes(windows.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
		assert_eq!(hex(&m.hash()), WEB_HASH, "{name}");
	}
	// Positions still count lines by LF.
	let err = Manifest::from_yaml("version: podchain/v1\r\ncontainers: []\r\n").unwrap_err();
	assert_eq!(err.to_string(), "2:13: containers: at least one container is required");
}

#[test]
fn every_change_of_meaning_changes_the_hash() {
	let base = load("full.yaml");
	let hash = base.hash();
	let mut changes: Vec<Manifest> = Vec::new();
	let mut change = |f: &dyn Fn(&mut Manifest)| {
		let mut m = base.clone();
		f(&mut m);
		changes.push(m);
	};
	change(&|m| m.name = None);
	change(&|m| m.containers.swap(0, 1));
	change(&|m| m.containers[0].args.pop().map(drop).unwrap_or(()));
	change(&|m| m.containers[0].command.push(String::new()));
	change(&|m| m.containers[0].resources.cpu = podchain_manifest::Cpu::from_millis(1501));
	change(&|m| m.containers[1].resources.gpus = 1);
	change(&|m| m.containers[0].mounts[0].read_only = true);
	change(&|m| m.containers[0].ports[1].protocol = podchain_manifest::Protocol::Tcp);
	change(&|m| m.replicas.max = 4);
	change(&|m| m.expose.pop().map(drop).unwrap_or(()));
	change(&|m| {
		m.secrets[0].data.insert("password".into(), podchain_manifest::SecretValue::new("other"));
	});
	change(&|m| m.volumes[0].size = podchain_manifest::ByteSize::from_bytes(1));
	let mut seen = std::collections::BTreeSet::from([hash]);
	for (i, m) in changes.iter().enumerate() {
		assert!(seen.insert(m.hash()), "change {i} did not change the hash (or collided)");
		assert!(!m.matches_hash(&hash));
	}
	assert!(base.matches_hash(&hash));
}

#[test]
fn hash_is_blake2_256() {
	// blake2_256(b"") as Substrate computes it.
	assert_eq!(
		hex(&blake2_256(b"")),
		"0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
	);
	let m = load("full.yaml");
	assert_eq!(m.hash(), blake2_256(&m.canonical_bytes()));
}
