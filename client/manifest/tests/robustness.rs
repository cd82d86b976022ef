//! Property tests: no input makes parsing panic, and any valid manifest, written as YAML or JSON
//! with any key order, quoting and quantity spelling, decodes to itself and hashes the same.

use std::{collections::BTreeMap, path::Path};

use podchain_manifest::{
	ByteSize, Container, Cpu, DeliveredImage, EnvValue, Exposure, Image, Manifest, Mount, Port,
	Protocol, Replicas, Resources, Secret, SecretValue, Volume,
};
use proptest::{prelude::*, sample::Index};

fn fixture(name: &str) -> String {
	let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
	std::fs::read_to_string(path).unwrap()
}

/// What a parse that succeeded must satisfy.
fn check_accepted(m: &Manifest) {
	assert_eq!(m.validate(), Ok(()));
	assert!(m.resources().is_ok());
	let canonical = m.canonical_bytes();
	let again = Manifest::from_bytes(&canonical).expect("canonical form parses");
	assert_eq!(again.canonical_bytes(), canonical);
}

proptest! {
	#![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

	#[test]
	fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
		if let Ok(m) = Manifest::from_bytes(&bytes) {
			check_accepted(&m);
		}
		let text = String::from_utf8_lossy(&bytes);
		let _ = Manifest::from_yaml(&text);
		let _ = Manifest::from_json(&text);
	}

	#[test]
	fn yaml_and_json_shaped_text_never_panics(
		text in "[-:{}\\[\\],&*!|>'\"%@`#?~\\\\\n \ta-z0-9.]{0,300}"
	) {
		for m in [Manifest::from_yaml(&text), Manifest::from_json(&text)].into_iter().flatten() {
			check_accepted(&m);
		}
	}

	#[test]
	fn mutated_fixtures_never_panic(
		which in 0usize..5,
		edits in prop::collection::vec((any::<Index>(), 0u8..3, any::<char>()), 1..6),
	) {
		let name = ["web.yaml", "web.json", "web-respelled.yaml", "full.yaml", "full.json"][which];
		let mut chars: Vec<char> = fixture(name).chars().collect();
		for (at, op, c) in edits {
			let i = at.index(chars.len() + 1);
			match op {
				0 => chars.insert(i, c),
				1 if i < chars.len() => { chars.remove(i); },
				_ if i < chars.len() => chars[i] = c,
				_ => {},
			}
		}
		let text: String = chars.into_iter().collect();
		if let Ok(m) = Manifest::parse(&text) {
			check_accepted(&m);
		}
	}
}

proptest! {
	#![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

	#[test]
	fn any_spelling_decodes_to_itself_and_hashes_the_same(m in manifest(), seed in any::<u64>()) {
		prop_assert_eq!(m.validate(), Ok(()));
		let tree = to_tree(&m, &mut Rng(seed));
		let yaml = to_yaml(&tree);
		let json = to_json(&tree);
		let from_yaml = Manifest::from_yaml(&yaml).map_err(|e| format!("{e}\n{yaml}"));
		let from_json = Manifest::from_json(&json).map_err(|e| format!("{e}\n{json}"));
		prop_assert_eq!(from_yaml.as_ref(), Ok(&m), "{}", yaml);
		prop_assert_eq!(from_json.as_ref(), Ok(&m), "{}", json);
		let other = to_tree(&m, &mut Rng(seed ^ 0x9e37_79b9_7f4a_7c15));
		prop_assert_eq!(Manifest::from_yaml(&to_yaml(&other)).unwrap().hash(), m.hash());
		prop_assert_eq!(Manifest::from_json(&to_json(&other)).unwrap().hash(), m.hash());
		check_accepted(&m);
	}
}

// ---- Valid manifests ----------------------------------------------------------------------

/// Any text without NUL (which the format refuses in arguments and values).
fn text() -> impl Strategy<Value = String> {
	prop_oneof![
		"[a-z][a-z0-9-]{0,8}",
		"\\PC{0,12}",
		prop::collection::vec(any::<char>(), 0..8).prop_map(|v| v.into_iter().collect()),
	]
	.prop_map(|s: String| s.replace('\0', ""))
}

fn manifest() -> impl Strategy<Value = Manifest> {
	let secrets = prop::collection::vec(
		prop::collection::btree_map("[a-zA-Z0-9._-]{1,6}", text(), 1..4),
		0..3,
	)
	.prop_map(|data| {
		data.into_iter()
			.filter(|d| !d.contains_key(".") && !d.contains_key(".."))
			.enumerate()
			.map(|(i, d)| Secret {
				name: format!("s{i}"),
				data: d.into_iter().map(|(k, v)| (k, SecretValue::new(v))).collect(),
			})
			.collect::<Vec<_>>()
	});
	let volumes = prop::collection::vec(1u64..(64 << 40), 0..3).prop_map(|sizes| {
		sizes
			.into_iter()
			.enumerate()
			.map(|(i, s)| Volume { name: format!("v{i}"), size: ByteSize::from_bytes(s) })
			.collect::<Vec<_>>()
	});
	let containers = prop::collection::vec(container(), 1..4);
	let ports = prop::collection::btree_set(1u16..=65535, 0..6);
	(secrets, volumes, containers, ports, 1u32..=3, 0u32..5, any::<bool>(), any::<u64>()).prop_map(
		|(secrets, volumes, parts, ports, min, extra, named, seed)| {
			let mut rng = Rng(seed);
			let ports: Vec<u16> = ports.into_iter().collect();
			let mut containers = Vec::new();
			for (i, part) in parts.into_iter().enumerate() {
				containers.push(part.build(i, &ports, &secrets, &volumes, &mut rng));
			}
			let tcp: Vec<u16> = containers
				.iter()
				.flat_map(|c| &c.ports)
				.filter(|p| p.protocol == Protocol::Tcp)
				.map(|p| p.port)
				.collect();
			let mut expose = Vec::new();
			for (i, port) in tcp.iter().enumerate() {
				match rng.below(3) {
					0 => expose.push(Exposure::Tcp { port: *port }),
					1 => expose.push(Exposure::Http { host: Some(format!("h{i}")), port: *port }),
					_ if !expose.iter().any(|e| matches!(e, Exposure::Http { host: None, .. })) => {
						expose.push(Exposure::Http { host: None, port: *port })
					}
					_ => {}
				}
			}
			Manifest {
				version: "podchain/v1".into(),
				name: named.then(|| "app".into()),
				containers,
				volumes,
				replicas: Replicas::fixed(min, min + extra),
				expose,
				secrets,
				health: None,
			}
		},
	)
}

/// A container's random parts; references are resolved once the manifest's parts exist.
#[derive(Debug, Clone)]
struct ContainerParts {
	image: &'static str,
	command: Vec<String>,
	args: Vec<String>,
	env: BTreeMap<String, (bool, String, Index, Index)>,
	cpu: u32,
	memory: u64,
	gpus: u32,
	mounts: Vec<(Index, bool)>,
}

fn container() -> impl Strategy<Value = ContainerParts> {
	let images = prop::sample::select(vec![
		"busybox",
		"localhost/podchain-demo:latest",
		"registry.example.com:5000/a/b-c:1.0",
		"docker.io/library/nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		// Delivered by the publisher: `name@digest` here, a `{digest, name}` mapping in the source.
		"team/app@sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
	]);
	let env = prop::collection::btree_map(
		"[A-Z_][A-Z0-9_]{0,6}",
		(any::<bool>(), text(), any::<Index>(), any::<Index>()),
		0..4,
	);
	(
		images,
		prop::collection::vec(text(), 0..3),
		prop::collection::vec(text(), 0..3),
		env,
		1u32..=256_000,
		1u64..=(4 << 40),
		0u32..=16,
		prop::collection::vec((any::<Index>(), any::<bool>()), 0..3),
	)
		.prop_map(|(image, command, args, env, cpu, memory, gpus, mounts)| ContainerParts {
			image,
			command,
			args,
			env,
			cpu,
			memory,
			gpus,
			mounts,
		})
}

impl ContainerParts {
	fn build(
		self,
		i: usize,
		ports: &[u16],
		secrets: &[Secret],
		volumes: &[Volume],
		rng: &mut Rng,
	) -> Container {
		let env = self
			.env
			.into_iter()
			.map(|(name, (secret, value, s, k))| {
				let value = if secret && !secrets.is_empty() {
					let s = &secrets[s.index(secrets.len())];
					let keys: Vec<&String> = s.data.keys().collect();
					EnvValue::Secret {
						secret: s.name.clone(),
						key: keys[k.index(keys.len())].clone(),
					}
				} else {
					EnvValue::Value(value)
				};
				(name, value)
			})
			.collect();
		// Ports are unique in the pod: container i takes every third one from offset i.
		let ports = ports
			.iter()
			.skip(i)
			.step_by(3)
			.map(|&port| {
				let protocol = if rng.below(4) == 0 { Protocol::Udp } else { Protocol::Tcp };
				Port { port, protocol }
			})
			.collect();
		let mounts = if volumes.is_empty() {
			Vec::new()
		} else {
			self.mounts
				.into_iter()
				.enumerate()
				.map(|(j, (v, read_only))| Mount {
					volume: volumes[v.index(volumes.len())].name.clone(),
					path: format!("/m{j}"),
					read_only,
				})
				.collect()
		};
		Container {
			name: format!("c{i}"),
			image: match self.image.split_once('@') {
				Some((name, digest)) if !name.contains('.') => Image::Delivered(DeliveredImage {
					name: name.into(),
					digest: podchain_manifest::parse_digest(digest).unwrap(),
				}),
				_ => Image::Reference(self.image.into()),
			},
			command: self.command,
			args: self.args,
			env,
			ports,
			resources: Resources {
				cpu: Cpu::from_millis(self.cpu),
				memory: ByteSize::from_bytes(self.memory),
				gpus: self.gpus,
			},
			mounts,
		}
	}
}

// ---- Writing a manifest in many spellings -------------------------------------------------

/// A tiny deterministic generator, so one proptest seed picks every spelling choice.
struct Rng(u64);

impl Rng {
	fn below(&mut self, n: u64) -> u64 {
		// SplitMix64.
		self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
		let mut z = self.0;
		z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
		z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
		(z ^ (z >> 31)) % n
	}
}

/// A document to write as YAML or JSON.
enum T {
	Null,
	Bool(bool),
	/// An integer; YAML may write it in hex.
	Int(u64),
	/// A number written as is (a quantity like `1.5`), unquoted.
	Number(String),
	Str(String),
	List(Vec<T>),
	Map(Vec<(String, T)>),
}

fn s(v: &str) -> T {
	T::Str(v.into())
}

/// `fields` in a random order, dropping the optional ones (`Some(default)`) half the time.
fn map(rng: &mut Rng, mut fields: Vec<(&str, T, bool)>) -> T {
	fields.retain(|(_, _, omittable)| !omittable || rng.below(2) == 0);
	let mut out = Vec::new();
	while !fields.is_empty() {
		let (k, v, _) = fields.remove(rng.below(fields.len() as u64) as usize);
		out.push((k.to_string(), v));
	}
	T::Map(out)
}

fn cpu(rng: &mut Rng, millis: u32) -> T {
	match rng.below(4) {
		0 => s(&format!("{millis}m")),
		1 if millis.is_multiple_of(1000) => T::Int(u64::from(millis / 1000)),
		2 => T::Number(format!("{}.{:03}", millis / 1000, millis % 1000)),
		_ => s(&format!("{}.{:03}", millis / 1000, millis % 1000)),
	}
}

fn bytes(rng: &mut Rng, n: u64) -> T {
	match rng.below(4) {
		0 => T::Int(n),
		1 if n.is_multiple_of(1 << 20) => s(&format!("{}Mi", n >> 20)),
		2 if n.is_multiple_of(1000) => s(&format!("{}k", n / 1000)),
		_ => s(&n.to_string()),
	}
}

fn to_tree(m: &Manifest, rng: &mut Rng) -> T {
	let list = |items: Vec<T>| T::List(items);
	let containers = m
		.containers
		.iter()
		.map(|c| {
			let env = c
				.env
				.iter()
				.map(|(k, v)| {
					let v = match v {
						EnvValue::Value(v) => s(v),
						EnvValue::Secret { secret, key } => {
							map(rng, vec![("secret", s(secret), false), ("key", s(key), false)])
						}
					};
					(k.clone(), v)
				})
				.collect();
			let ports = c
				.ports
				.iter()
				.map(|p| {
					let protocol = match (p.protocol, rng.below(2)) {
						(Protocol::Tcp, 0) => s("TCP"),
						(p, _) => s(p.as_str()),
					};
					let default = p.protocol == Protocol::Tcp;
					map(
						rng,
						vec![
							("port", T::Int(p.port.into()), false),
							("protocol", protocol, default),
						],
					)
				})
				.collect();
			let mounts = c
				.mounts
				.iter()
				.map(|mt| {
					map(
						rng,
						vec![
							("volume", s(&mt.volume), false),
							("path", s(&mt.path), false),
							("read_only", T::Bool(mt.read_only), !mt.read_only),
						],
					)
				})
				.collect();
			let r = &c.resources;
			let (cpu, memory) = (cpu(rng, r.cpu.millis()), bytes(rng, r.memory.bytes()));
			let resources = map(
				rng,
				vec![
					("cpu", cpu, false),
					("memory", memory, false),
					("gpus", T::Int(r.gpus.into()), r.gpus == 0),
				],
			);
			let image = match &c.image {
				Image::Delivered(d) => map(
					rng,
					vec![("name", s(&d.name), false), ("digest", s(&d.digest_text()), false)],
				),
				other => s(&other.to_string()),
			};
			map(
				rng,
				vec![
					("name", s(&c.name), false),
					("image", image, false),
					(
						"command",
						list(c.command.iter().map(|a| s(a)).collect()),
						c.command.is_empty(),
					),
					("args", list(c.args.iter().map(|a| s(a)).collect()), c.args.is_empty()),
					("env", T::Map(env), c.env.is_empty()),
					("ports", T::List(ports), c.ports.is_empty()),
					("resources", resources, false),
					("mounts", T::List(mounts), c.mounts.is_empty()),
				],
			)
		})
		.collect();
	let volumes = m
		.volumes
		.iter()
		.map(|v| {
			let size = bytes(rng, v.size.bytes());
			map(rng, vec![("name", s(&v.name), false), ("size", size, false)])
		})
		.collect();
	let expose = m
		.expose
		.iter()
		.map(|e| match e {
			Exposure::Http { host, port } => {
				let host = host.as_deref().map_or(T::Null, s);
				let omit = matches!(host, T::Null);
				let http =
					map(rng, vec![("host", host, omit), ("port", T::Int((*port).into()), false)]);
				T::Map(vec![("http".into(), http)])
			}
			Exposure::Tcp { port } => {
				T::Map(vec![("tcp".into(), T::Map(vec![("port".into(), T::Int((*port).into()))]))])
			}
		})
		.collect();
	let secrets = m
		.secrets
		.iter()
		.map(|sec| {
			let data = sec.data.iter().map(|(k, v)| (k.clone(), s(v.expose()))).collect();
			map(rng, vec![("name", s(&sec.name), false), ("data", T::Map(data), false)])
		})
		.collect();
	let replicas = map(
		rng,
		vec![
			("min", T::Int(m.replicas.min.into()), m.replicas.min == 1),
			("max", T::Int(m.replicas.max.into()), m.replicas.max == m.replicas.min),
		],
	);
	let default_replicas = m.replicas == Replicas::default();
	let name = m.name.as_deref().map_or(T::Null, s);
	let no_name = m.name.is_none();
	map(
		rng,
		vec![
			("version", s(&m.version), false),
			("name", name, no_name),
			("containers", T::List(containers), false),
			("volumes", T::List(volumes), m.volumes.is_empty()),
			("replicas", replicas, default_replicas),
			("expose", T::List(expose), m.expose.is_empty()),
			("secrets", T::List(secrets), m.secrets.is_empty()),
		],
	)
}

fn to_json(t: &T) -> String {
	match t {
		T::Null => "null".into(),
		T::Bool(b) => b.to_string(),
		T::Int(n) => n.to_string(),
		T::Number(n) => n.clone(),
		T::Str(v) => serde_json::to_string(v).unwrap(),
		T::List(items) => format!("[{}]", items.iter().map(to_json).collect::<Vec<_>>().join(", ")),
		T::Map(entries) => {
			let entries: Vec<String> = entries
				.iter()
				.map(|(k, v)| format!("{}:\n {}", serde_json::to_string(k).unwrap(), to_json(v)))
				.collect();
			format!("{{ {} }}", entries.join(",\n\t"))
		}
	}
}

/// Block-style YAML: strings double-quoted with YAML escapes (or plain when that is safe).
fn to_yaml(t: &T) -> String {
	let mut out = String::from("# generated\n");
	yaml_block(t, 0, &mut out);
	out
}

fn yaml_scalar(t: &T) -> Option<String> {
	Some(match t {
		T::Null => "~".into(),
		T::Bool(b) => b.to_string(),
		// Hex for some integers: the core schema reads it as the same number.
		T::Int(n) if n % 7 == 3 => format!("0x{n:x}"),
		T::Int(n) => n.to_string(),
		T::Number(n) => n.clone(),
		T::Str(v) if is_plain_safe(v) => v.clone(),
		T::Str(v) => yaml_quote(v),
		T::List(items) if items.is_empty() => "[]".into(),
		T::Map(entries) if entries.is_empty() => "{}".into(),
		_ => return None,
	})
}

fn is_plain_safe(v: &str) -> bool {
	let mut chars = v.chars();
	chars.next().is_some_and(|c| c.is_ascii_lowercase())
		&& chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
		&& !matches!(v, "null" | "true" | "false")
}

fn yaml_quote(v: &str) -> String {
	let mut out = String::from("\"");
	for c in v.chars() {
		match c {
			'"' => out.push_str("\\\""),
			'\\' => out.push_str("\\\\"),
			' '..='~' => out.push(c),
			c if u32::from(c) <= 0xFFFF => out.push_str(&format!("\\u{:04x}", u32::from(c))),
			c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
		}
	}
	out.push('"');
	out
}

fn yaml_block(t: &T, indent: usize, out: &mut String) {
	let pad = " ".repeat(indent);
	match t {
		T::Map(entries) => {
			for (k, v) in entries {
				let key = if is_plain_safe(k) { k.clone() } else { yaml_quote(k) };
				match yaml_scalar(v) {
					Some(scalar) => out.push_str(&format!("{pad}{key}: {scalar}\n")),
					None => {
						out.push_str(&format!("{pad}{key}:\n"));
						yaml_block(v, indent + 2, out);
					}
				}
			}
		}
		T::List(items) => {
			for item in items {
				match yaml_scalar(item) {
					Some(scalar) => out.push_str(&format!("{pad}- {scalar}\n")),
					None => {
						out.push_str(&format!("{pad}-\n"));
						yaml_block(item, indent + 2, out);
					}
				}
			}
		}
		scalar => {
			let text = yaml_scalar(scalar).unwrap_or_default();
			out.push_str(&format!("{pad}{text}\n"));
		}
	}
}
