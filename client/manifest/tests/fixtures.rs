//! The fixtures in `fixtures/`: valid ones decode to what they say, invalid ones fail with exactly
//! these messages, at these lines and columns.

use std::path::{Path, PathBuf};

use podchain_manifest::{
	ByteSize, Cpu, EnvValue, Error, Exposure, Image, Manifest, Port, Protocol, Replicas,
	ResourceTotals,
};

fn fixture(name: &str) -> PathBuf {
	Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

fn load(name: &str) -> Manifest {
	Manifest::from_path(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The diagnostics for an invalid fixture, without the (machine-dependent) directory.
fn problems(name: &str) -> String {
	let path = fixture(name);
	let err = Manifest::from_path(&path).expect_err(name).to_string();
	err.replace(&format!("{}", path.parent().unwrap().display()), "")
}

#[test]
fn web_decodes_to_the_demo_pod() {
	let m = load("web.yaml");
	assert_eq!(m.version, "podchain/v1");
	assert_eq!(m.name.as_deref(), Some("web"));
	assert_eq!(m.containers.len(), 1);
	let c = &m.containers[0];
	assert_eq!(c.name, "httpd");
	assert_eq!(c.image, Image::Reference("localhost/podchain-demo:latest".into()));
	assert_eq!(c.command, ["httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/www"]);
	assert!(c.args.is_empty() && c.env.is_empty() && c.mounts.is_empty());
	assert_eq!(c.ports, [Port { port: 8080, protocol: Protocol::Tcp }]);
	assert_eq!(c.resources.cpu, Cpu::from_millis(100));
	assert_eq!(c.resources.memory, ByteSize::from_bytes(64 << 20));
	assert_eq!(c.resources.gpus, 0);
	assert_eq!(m.replicas, Replicas::fixed(1, 1));
	assert_eq!(m.expose, [Exposure::Http { host: None, port: 8080 }]);
	assert!(m.volumes.is_empty() && m.secrets.is_empty());
	assert_eq!(
		m.resources(),
		Ok(ResourceTotals { cpu_millicores: 100, memory_mib: 64, storage_gib: 0, gpus: 0 })
	);
}

#[test]
fn yaml_and_json_twins_decode_equal() {
	let yaml = load("web.yaml");
	assert_eq!(yaml, load("web.json"));
	assert_eq!(yaml, load("web-respelled.yaml"));
	assert_eq!(load("full.yaml"), load("full.json"));
}

#[test]
fn full_decodes_every_feature() {
	let m = load("full.yaml");
	let app = &m.containers[0];
	assert_eq!(app.args[1], "tab\there\nnewline\u{1}ctl\u{7f}del");
	assert_eq!(app.env["LOG_LEVEL"], EnvValue::Value("info".into()));
	assert_eq!(
		app.env["TLS_CERT"],
		EnvValue::Secret { secret: "tls".into(), key: "tls.crt".into() }
	);
	assert_eq!(app.ports[1], Port { port: 5353, protocol: Protocol::Udp });
	assert!(app.mounts[1].read_only && !app.mounts[0].read_only);
	assert_eq!(m.expose[0], Exposure::Http { host: Some("shop".into()), port: 8443 });
	assert_eq!(m.expose[2], Exposure::Tcp { port: 5432 });
	assert_eq!(m.volumes[1].size, ByteSize::from_bytes(1_500_000_000));
	assert_eq!(m.secrets[0].data["password"].expose(), "s3cr\u{e9}t");
	assert_eq!(
		m.secrets[1].data["tls.crt"].expose(),
		"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	);
	// Per replica 1750m, 1536 + 477 MiB (500M rounded up), 1 GPU; times 5. Storage 10 + 2 GiB.
	assert_eq!(
		m.resources(),
		Ok(ResourceTotals { cpu_millicores: 8750, memory_mib: 10065, storage_gib: 12, gpus: 5 })
	);
}

#[test]
fn secrets_stay_out_of_debug_output() {
	let m = load("full.yaml");
	let debug = format!("{m:?}");
	assert!(!debug.contains("s3cr") && !debug.contains("MIIB"), "{debug}");
}

#[test]
fn bad_cpu() {
	assert_eq!(
		problems("invalid/bad-cpu.yaml"),
		"/bad-cpu.yaml:6:12: containers[0].resources.cpu: \"2x\" is not a CPU quantity \
		 (examples: 500m, 1.5, 2)"
	);
}

#[test]
fn typos() {
	assert_eq!(
		problems("invalid/typos.yaml"),
		[
			"/typos.yaml:3:5: containers[0]: missing required field \"image\"",
			"/typos.yaml:4:5: containers[0]: unknown field \"imgae\" (did you mean \"image\"?)",
			"/typos.yaml:9:9: containers[0].mounts[0]: unknown field \"readOnly\" (did you mean \
			 \"read_only\"?)",
			"/typos.yaml:10:1: unknown field \"replica\" (did you mean \"replicas\"?)",
			"/typos.yaml:14:5: volumes[0]: unknown field \"kind\" (expected one of: name, size)",
		]
		.join("\n")
	);
}

#[test]
fn syntax_errors() {
	assert_eq!(
		problems("invalid/syntax.yaml"),
		"/syntax.yaml:5:4: invalid YAML: while parsing a block collection, did not find expected \
		 '-' indicator"
	);
	assert_eq!(
		problems("invalid/syntax.json"),
		"/syntax.json:4:40: invalid JSON: expected a string key in double quotes"
	);
}

#[test]
fn rules_yaml() {
	let label =
		"use 1 to 63 lowercase letters, digits or '-', starting and ending with a letter or \
	             digit";
	assert_eq!(
		problems("invalid/rules.yaml"),
		[
			format!("/rules.yaml:2:7: name: \"My-App\" is not a valid name: {label}"),
			"/rules.yaml:7:38: containers[0].env.DB_PASSWORD.key: unknown key \"pasword\" (did you \
			 mean \"password\"?) in secret \"db\""
				.into(),
			"/rules.yaml:8:16: containers[0].env.API-KEY: \"API-KEY\" is not a valid environment \
			 variable name (letters, digits and '_', not starting with a digit)"
				.into(),
			"/rules.yaml:8:25: containers[0].env.API-KEY.secret: unknown secret \"api\" (declared: \
			 db)"
				.into(),
			"/rules.yaml:11:36: containers[0].resources.memory: must be more than 0: every \
			 container reserves memory"
				.into(),
			"/rules.yaml:13:17: containers[0].mounts[0].volume: unknown volume \"dta\" (did you \
			 mean \"data\"?)"
				.into(),
			"/rules.yaml:14:15: containers[0].mounts[0].path: mount path \"data\" must be absolute \
			 (start with '/')"
				.into(),
			"/rules.yaml:15:11: containers[1].name: duplicate container name \"web\" (also \
			 containers[0].name)"
				.into(),
			"/rules.yaml:16:12: containers[1].image: \"Busybox\" is not a valid image reference: \
			 the repository path must be lowercase (examples: localhost/app:latest, \
			 docker.io/library/nginx:1.27)"
				.into(),
			"/rules.yaml:18:15: containers[1].ports[0].port: port 8080/tcp is already declared at \
			 containers[0].ports[0].port"
				.into(),
			"/rules.yaml:19:22: containers[1].resources.cpu: must be more than 0: every container \
			 reserves CPU"
				.into(),
			"/rules.yaml:25:8: replicas.max: must not be less than replicas.min (3)".into(),
			format!("/rules.yaml:27:18: expose[0].http.host: \"API\" is not a valid host label: {label}"),
			"/rules.yaml:27:29: expose[0].http.port: no container declares TCP port 9090 \
			 (declared: 8080)"
				.into(),
		]
		.join("\n")
	);
}

#[test]
fn rules_json() {
	assert_eq!(
		problems("invalid/rules.json"),
		[
			"/rules.json:2:14: version: unsupported version \"podchain/v2\" (supported: \
			 podchain/v1)",
			"/rules.json:8:28: containers[0].resources.cpu: 300 is more than the limit of 256 cores",
			"/rules.json:8:45: containers[0].resources.memory: 8Ti is more than the limit of 4Ti",
			"/rules.json:8:60: containers[0].resources.gpus: 17 is more than the limit of 16",
			"/rules.json:11:23: replicas.max: must be at most 100",
			"/rules.json:12:32: expose[0].http.port: no container declares TCP port 8080 \
			 (declared: none)",
			"/rules.json:12:49: expose[1].http: the deal's name (no host) is already exposed by \
			 expose[0]",
			"/rules.json:12:58: expose[1].http.port: no container declares TCP port 8080 \
			 (declared: none)",
		]
		.join("\n")
	);
}

#[test]
fn types_json() {
	assert_eq!(
		problems("invalid/types.json"),
		[
			"/types.json:7:18: containers[0].command: expected a list, found a string",
			"/types.json:8:23: containers[0].env.PORT: expected a string or {secret, key}, found \
			 the number 8080 (put it in quotes to make it a string)",
			"/types.json:9:26: containers[0].ports[0].port: expected an integer, found a string",
			"/types.json:10:28: containers[0].resources.cpu: expected a quantity, found the \
			 boolean true",
			"/types.json:10:44: containers[0].resources.memory: expected a quantity, found nothing \
			 (null)",
			"/types.json:13:15: replicas: expected a mapping, found the number 2",
		]
		.join("\n")
	);
}

#[test]
fn rules_never_print_secret_values() {
	let err = problems("invalid/rules.yaml");
	assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn unreadable_file_is_an_io_error() {
	let err = Manifest::from_path(&fixture("missing.yaml")).unwrap_err();
	assert!(matches!(err, Error::Io { .. }), "{err:?}");
	assert!(err.to_string().starts_with("cannot read "), "{err}");
	assert!(err.to_string().ends_with("missing.yaml: No such file or directory (os error 2)"));
}

#[test]
fn every_problem_has_a_position_when_parsed() {
	for name in ["bad-cpu.yaml", "typos.yaml", "rules.yaml", "rules.json", "types.json"] {
		let err = match Manifest::from_path(&fixture(&format!("invalid/{name}"))) {
			Err(Error::Invalid(d)) => d,
			other => panic!("{name}: {other:?}"),
		};
		assert!(err.items().iter().all(|d| d.pos.is_some()), "{name}: {err}");
	}
}
