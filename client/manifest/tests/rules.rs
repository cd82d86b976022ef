//! Semantic rules and limits, on parsed manifests and on manifests built in code.

use podchain_manifest::{
	limits, ByteSize, Container, Cpu, Manifest, Replicas, ResourceOverflow, Resources, Volume,
};

/// One valid container, for building manifests in text.
const CONTAINER: &str = "{name: c, image: busybox, resources: {cpu: 1, memory: 1Gi}}";

/// Asserts `src` has exactly one problem, ending with `message` (after its position).
fn only(src: &str, message: &str) {
	let found = problems(src);
	assert!(found.len() == 1 && found[0].ends_with(message), "{found:?}, expected {message:?}");
}

fn problems(src: &str) -> Vec<String> {
	match Manifest::parse(src) {
		Ok(_) => Vec::new(),
		Err(d) => d.items().iter().map(ToString::to_string).collect(),
	}
}

fn web() -> Manifest {
	Manifest::from_yaml(&format!("version: podchain/v1\ncontainers: [{CONTAINER}]\n")).unwrap()
}

#[test]
fn validate_in_code_reports_paths_without_positions() {
	let mut m = web();
	assert_eq!(m.validate(), Ok(()));
	m.replicas = Replicas::fixed(0, 0);
	m.containers[0].ports.push(podchain_manifest::Port { port: 0, protocol: Default::default() });
	let err = m.validate().unwrap_err();
	assert!(err.items().iter().all(|d| d.pos.is_none()));
	assert_eq!(
		err.to_string(),
		"containers[0].ports[0].port: must be an integer from 1 to 65535, found 0\n\
		 replicas.min: must be at least 1 (0 only with idle, to scale to zero)"
	);
}

#[test]
fn scale_to_zero_needs_one_pod_an_idle_time_in_range_and_an_http_exposure() {
	let exposed = format!(
		"version: podchain/v1\ncontainers: [{}]\nexpose: [{{http: {{port: 8080}}}}]\n",
		CONTAINER.replace("resources", "ports: [{port: 8080}], resources")
	);
	let with = |replicas: &str| format!("{exposed}replicas: {replicas}\n");
	let m = Manifest::from_yaml(&with("{min: 0, max: 1, idle: 5m}")).expect("valid");
	assert_eq!(m.replicas.idle_seconds, Some(300));
	assert!(m.replicas.scales_to_zero());
	assert_eq!(
		Manifest::from_yaml(&with("{min: 0, idle: 90}")).map(|m| m.replicas.idle_seconds),
		Ok(Some(90))
	);
	// The canonical form carries it (as seconds) and reads back the same.
	let canonical = String::from_utf8(m.canonical_bytes()).expect("UTF-8");
	assert!(canonical.contains(r#""replicas":{"idle":300,"max":1,"min":0}"#), "{canonical}");
	assert_eq!(Manifest::from_json(&canonical).expect("valid").hash(), m.hash());
	// Without it, the canonical form is what it always was.
	let always = Manifest::from_yaml(&exposed).expect("valid");
	let canonical = String::from_utf8(always.canonical_bytes()).expect("UTF-8");
	assert!(canonical.contains(r#""replicas":{"max":1,"min":1}"#), "{canonical}");

	only(
		&with("{min: 0, max: 2, idle: 5m}"),
		"replicas: scaling to zero (idle) needs min 0 and max 1",
	);
	only(
		&with("{min: 1, max: 1, idle: 5m}"),
		"replicas: scaling to zero (idle) needs min 0 and max 1",
	);
	only(&with("{min: 0, max: 1, idle: 5s}"), "replicas.idle: must be from 10 s to 24 h");
	only(&with("{min: 0, max: 1, idle: 25h}"), "replicas.idle: must be from 10 s to 24 h");
	assert_eq!(problems(&with("{min: 0, max: 1, idle: 5 minutes}")).len(), 1);
	only(
		&with("{min: 0, max: 1}"),
		"replicas.min: must be at least 1 (0 only with idle, to scale to zero)",
	);
	let unexposed = format!(
		"version: podchain/v1\ncontainers: [{CONTAINER}]\nreplicas: {{min: 0, max: 1, idle: 5m}}\n"
	);
	only(&unexposed, "replicas.idle: scaling to zero needs an http exposure to wake it");
}

#[test]
fn count_limits() {
	let many = vec![CONTAINER; limits::MAX_CONTAINERS + 1].join(", ");
	let src = format!("version: podchain/v1\ncontainers: [{many}]\n");
	let errs = problems(&src);
	assert!(errs.contains(&"2:13: containers: too many containers: 17 (at most 16)".into()));
	// The others are the duplicate names: every rule is still checked.
	assert_eq!(errs.len(), 1 + limits::MAX_CONTAINERS);

	let ok = format!("version: podchain/v1\ncontainers: [{CONTAINER}]\nreplicas: {{max: 100}}\n");
	assert_eq!(problems(&ok), Vec::<String>::new());
	let over = ok.replace("max: 100", "max: 101");
	assert_eq!(problems(&over), ["3:17: replicas.max: must be at most 100"]);
}

#[test]
fn resource_totals_that_overflow_are_refused() {
	// 16 containers at the 4Ti per-container limit, 100 replicas: 6.7e9 MiB.
	let big = (0..16)
		.map(|i| format!("{{name: c{i}, image: busybox, resources: {{cpu: 1, memory: 4Ti}}}}"))
		.collect::<Vec<_>>()
		.join(", ");
	let src = format!("version: podchain/v1\ncontainers: [{big}]\nreplicas: {{max: 100}}\n");
	assert_eq!(
		problems(&src),
		["3:17: replicas.max: the deal's total memory does not fit the registry's units (u32); \
		  lower replicas.max or the requests"]
	);
	// A manifest built in code is not checked until asked, so resources() checks itself.
	let mut m = web();
	m.containers[0].resources.cpu = Cpu::from_millis(u32::MAX);
	m.replicas.max = 2;
	assert_eq!(m.resources(), Err(ResourceOverflow { resource: "cpu" }));
	m.replicas.max = 1;
	m.containers.push(m.containers[0].clone());
	assert_eq!(m.resources(), Err(ResourceOverflow { resource: "cpu" }));
	let mut m = web();
	m.volumes = vec![Volume { name: "v".into(), size: ByteSize::from_bytes(u64::MAX) }];
	assert_eq!(m.resources(), Err(ResourceOverflow { resource: "storage" }));
}

#[test]
fn resource_totals_round_up_per_container() {
	let mut m = web();
	let one = |cpu, memory| Container {
		resources: Resources {
			cpu: Cpu::from_millis(cpu),
			memory: ByteSize::from_bytes(memory),
			gpus: 1,
		},
		..m.containers[0].clone()
	};
	m.containers = vec![one(1, 1), one(999, (1 << 20) + 1)];
	m.replicas = Replicas::fixed(1, 3);
	m.volumes = vec![
		Volume { name: "a".into(), size: ByteSize::from_bytes(1) },
		Volume { name: "b".into(), size: ByteSize::from_bytes(1 << 30) },
	];
	let r = m.resources().unwrap();
	assert_eq!((r.cpu_millicores, r.memory_mib, r.storage_gib, r.gpus), (3000, 9, 2, 6));
}

#[test]
fn canonical_size_is_bounded() {
	let mut m = web();
	m.containers[0].args = vec!["x".repeat(limits::MAX_CANONICAL_BYTES)];
	let err = m.validate().unwrap_err().to_string();
	assert!(err.starts_with("the canonical manifest is 6"), "{err}");
	assert!(err.ends_with("bytes, more than the limit of 65536"), "{err}");
}

#[test]
fn names_references_and_duplicates() {
	let src = r#"
version: podchain/v1
containers:
  - name: c
    image: busybox
    args: ["a\0b"]
    env: {X: {secret: s, key: k}}
    resources: {cpu: 1, memory: 1Gi}
    ports: [{port: 80}, {port: 80, protocol: udp}, {port: 53, protocol: udp}]
    mounts:
      - {volume: v, path: /data}
      - {volume: v, path: /data}
volumes:
  - {name: v, size: 1Gi}
  - {name: v, size: 0}
expose:
  - tcp: {port: 80}
  - tcp: {port: 80}
  - http: {host: a, port: 80}
  - http: {host: a, port: 53}
"#;
	assert_eq!(
		problems(src),
		[
			"6:12: containers[0].args[0]: an argument must not contain NUL characters",
			"7:23: containers[0].env.X.secret: unknown secret \"s\" (none are declared)",
			"12:27: containers[0].mounts[1].path: \"/data\" is already mounted at \
			 containers[0].mounts[0].path",
			"15:12: volumes[1].name: duplicate volume name \"v\" (also volumes[0].name)",
			"15:21: volumes[1].size: must be more than 0",
			"18:17: expose[1].tcp.port: TCP port 80 is already exposed by expose[0]",
			"20:18: expose[3].http.host: host \"a\" is already exposed by expose[2]",
			"20:27: expose[3].http.port: no container declares TCP port 53 (declared: 80)",
		]
	);
}

#[test]
fn secrets_rules() {
	let src = format!(
		"version: podchain/v1\ncontainers: [{CONTAINER}]\nsecrets:\n  - name: s\n    data: \
		 {{\"a/b\": x, ok: \"nul\\0here\"}}\n  - name: s\n    data: {{}}\n"
	);
	assert_eq!(
		problems(&src),
		[
			"5:12: secrets[0].data[\"a/b\"]: \"a/b\" is not a valid secret key (letters, digits, \
			 '-', '.' and '_')",
			"5:22: secrets[0].data.ok: a secret value must not contain NUL characters",
			"6:11: secrets[1].name: duplicate secret name \"s\" (also secrets[0].name)",
		]
	);
}

#[test]
fn resource_limits_and_minimums() {
	let src = "version: podchain/v1\ncontainers:\n  - {name: c, image: busybox, resources: {cpu: \
	           256001m, memory: 4097Gi, gpus: 16}}\nvolumes: [{name: v, size: 65Ti}]\n";
	assert_eq!(
		problems(src),
		[
			"3:48: containers[0].resources.cpu: 256001m is more than the limit of 256 cores",
			"3:65: containers[0].resources.memory: 4097Gi is more than the limit of 4Ti",
			"4:27: volumes[0].size: 65Ti is more than the limit of 64Ti",
		]
	);
}

#[test]
fn yaml_features_that_are_refused() {
	let base = format!("version: podchain/v1\ncontainers: [{CONTAINER}]\n");
	assert_eq!(
		problems(&format!("{base}x: &a 1\n")),
		["3:4: invalid YAML: YAML anchors (&name) are not supported in manifests"]
	);
	assert_eq!(
		problems(&format!("{base}---\n{base}")),
		["3:1: invalid YAML: only one YAML document is allowed"]
	);
	assert_eq!(problems("[]"), ["1:1: expected a mapping, found a list"]);
	assert_eq!(problems("null"), ["1:1: expected a mapping, found nothing (null)"]);
}

#[test]
fn health_check_needs_a_visible_path_a_status_in_range_and_the_deal_name_exposure() {
	let exposed = |expose: &str, health: &str| {
		format!(
			"version: podchain/v1\ncontainers: [{}]\nexpose: [{expose}]\nhealth: {health}\n",
			CONTAINER.replace("resources", "ports: [{port: 8080}], resources")
		)
	};
	let by_name = "{http: {port: 8080}}";
	let m = Manifest::from_yaml(&exposed(by_name, "{path: /healthz}")).expect("valid");
	let check = m.health.clone().expect("health");
	assert_eq!((check.path.as_str(), check.status, check.body), ("/healthz", 200, None));
	let m2 = Manifest::from_yaml(&exposed(by_name, "{path: /s?x=1, status: 204, body: ok}"))
		.expect("valid");
	assert_eq!(
		m2.health.as_ref().map(|h| (h.status, h.body.clone())),
		Some((204, Some("ok".into())))
	);
	// The canonical form carries it, reads back the same, and pins it in the hash.
	let canonical = String::from_utf8(m.canonical_bytes()).expect("UTF-8");
	assert!(
		canonical.contains(r#""health":{"body":null,"path":"/healthz","status":200}"#),
		"{canonical}"
	);
	assert_eq!(Manifest::from_json(&canonical).expect("valid").hash(), m.hash());
	assert_ne!(m.hash(), m2.hash());
	let mut without = m.clone();
	without.health = None;
	let canonical = String::from_utf8(without.canonical_bytes()).expect("UTF-8");
	assert!(!canonical.contains("health"), "{canonical}");
	// Undeclared, it is `GET /` answered 200.
	assert_eq!(without.health_check(), podchain_manifest::HealthCheck::root());
	assert_eq!(Some(m.health_check()), m.health.clone());

	only(&exposed(by_name, "{path: healthz}"), "health.path: must start with /");
	only(
		&exposed(by_name, "{path: /a b}"),
		"health.path: must be visible ASCII, without spaces (percent-encode others)",
	);
	only(
		&exposed(by_name, "{path: /é}"),
		"health.path: must be visible ASCII, without spaces (percent-encode others)",
	);
	let long = format!("{{path: /{}}}", "a".repeat(limits::MAX_HEALTH_PATH_LEN));
	only(&exposed(by_name, &long), "health.path: is longer than 128 bytes");
	only(
		&exposed(by_name, "{path: /, status: 99}"),
		"health.status: must be an integer from 100 to 599, found 99",
	);
	only(
		&exposed(by_name, "{path: /, status: 600}"),
		"health.status: must be an integer from 100 to 599, found 600",
	);
	only(&exposed(by_name, "{path: /, body: ''}"), "health.body: must be 1 to 64 bytes");
	let long = format!("{{path: /, body: {}}}", "b".repeat(limits::MAX_HEALTH_BODY_LEN + 1));
	only(&exposed(by_name, &long), "health.body: must be 1 to 64 bytes");
	only(&exposed(by_name, "{path: /, body: é}"), "health.body: must be visible ASCII or spaces");
	only(&exposed(by_name, "{status: 200}"), "health: missing required field \"path\"");
	only(
		&exposed(by_name, "{path: /, code: 200}"),
		"health: unknown field \"code\" (expected one of: path, status, body)",
	);
	let needs = "health: a health check needs an http exposure without host (probers reach the \
	             pod by the deal's name)";
	only(&exposed("{http: {host: api, port: 8080}}", "{path: /}"), needs);
	only(&exposed("{tcp: {port: 8080}}", "{path: /}"), needs);
}

fn with_image(image: &str) -> String {
	format!(
		"version: podchain/v1\ncontainers: [{}]\n",
		CONTAINER.replace("image: busybox", &format!("image: {image}"))
	)
}

const DIGEST: &str = "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

#[test]
fn delivered_images_are_pinned_by_digest_and_hash_with_it() {
	use podchain_manifest::Image;
	let m = Manifest::from_yaml(&with_image(&format!("{{name: team/app, digest: {DIGEST}}}")))
		.expect("valid");
	let Image::Delivered(image) = &m.containers[0].image else { panic!("{:?}", m.containers) };
	assert_eq!((image.name.as_str(), image.digest_text()), ("team/app", DIGEST.to_string()));
	assert_eq!(m.containers[0].image.to_string(), format!("team/app@{DIGEST}"));
	assert_eq!(m.delivered_images().len(), 1);
	let canonical = String::from_utf8(m.canonical_bytes()).expect("UTF-8");
	assert!(canonical.contains(&format!(r#""image":{{"digest":"{DIGEST}","name":"team/app"}}"#)));
	// Providers read the canonical form back to the same hash.
	assert_eq!(Manifest::from_bytes(canonical.as_bytes()).expect("valid").hash(), m.hash());
	// Another digest is another manifest.
	let other = with_image(&format!("{{name: team/app, digest: {}}}", DIGEST.replace("00", "01")));
	assert_ne!(Manifest::from_yaml(&other).unwrap().hash(), m.hash());
	// References keep their canonical form (and so the hashes deals already recorded).
	let plain = String::from_utf8(web().canonical_bytes()).unwrap();
	assert!(plain.contains(r#""image":"busybox""#), "{plain}");
}

#[test]
fn image_mappings_are_checked() {
	only(&with_image("{name: app}"), "an image mapping needs exactly one of \"digest\" (an image the publisher delivers) or \"archive\" (a local OCI archive)");
	only(
		&with_image(&format!("{{name: app, digest: {DIGEST}, archive: a.tar}}")),
		"an image mapping needs exactly one of \"digest\" (an image the publisher delivers) or \"archive\" (a local OCI archive)",
	);
	only(
		&with_image("{name: app, digest: sha512:00}"),
		"\"sha512:00\" is not a digest: write sha256:<64 lowercase hex digits>",
	);
	only(
		&with_image(&format!("{{name: app, digest: {}}}", DIGEST.to_uppercase())),
		"is not a digest: write sha256:<64 lowercase hex digits>",
	);
	only(&with_image(&format!("{{digest: {DIGEST}}}")), "missing required field \"name\"");
	only(
		&with_image(&format!("{{name: App, digest: {DIGEST}}}")),
		"at most 128 bytes, no tag or digest",
	);
	only(
		&with_image(&format!("{{name: 'app:1', digest: {DIGEST}}}")),
		"at most 128 bytes, no tag or digest",
	);
	only(
		&with_image("{archive: ./app.tar, tag: x}"),
		"unknown field \"tag\" (expected one of: name, digest, archive)",
	);
	only(&with_image("[busybox]"), "expected a string or a mapping, found a list");
}

#[test]
fn archives_are_the_publishers_and_providers_refuse_them() {
	let src = with_image("{archive: ./app.oci.tar}");
	let m = Manifest::from_yaml(&src).expect("the publisher's side reads it");
	assert!(
		matches!(&m.containers[0].image, podchain_manifest::Image::Archive(a) if a.path == "./app.oci.tar" && a.name.is_none())
	);
	let err = Manifest::from_bytes(src.as_bytes()).unwrap_err().to_string();
	assert_eq!(
		err,
		"2:31: containers[0].image: archive \"./app.oci.tar\" is a file on the publisher's \
		 machine: `podchain deploy` sends the image and pins its digest"
	);
	// Its canonical form too.
	let err = Manifest::from_bytes(&m.canonical_bytes()).unwrap_err().to_string();
	assert!(err.contains("is a file on the publisher's machine"), "{err}");
	only(
		&with_image("{archive: ''}"),
		"containers[0].image.archive: must be a path of 1 to 1024 bytes",
	);
}

#[test]
fn references_cannot_reach_other_deals_images() {
	for reserved in [
		"podchain-deal-7/app:abc",
		"localhost/podchain-deal-7/app",
		&format!("podchain-deal-7/app@{DIGEST}"),
	] {
		let found = problems(&with_image(reserved));
		assert!(
			found.len() == 1 && found[0].contains("reserves for delivered images"),
			"{reserved}: {found:?}"
		);
	}
	for id in ["abc123", "0123456789ab", "sha256:0123", "a"] {
		let found = problems(&with_image(id));
		assert!(
			found.len() == 1 && found[0].contains("could be read as an image id"),
			"{id}: {found:?}"
		);
	}
	// A registry's own repository of that name, a tag, and a name with letters past f are fine.
	for fine in ["docker.io/podchain-deal-7/app", "abc123:latest", "library/abc", "cafeg"] {
		assert_eq!(problems(&with_image(fine)), Vec::<String>::new(), "{fine}");
	}
}
