//! Source tree to [`Manifest`]: the schema. Wrong types, unknown, duplicate and missing fields
//! and malformed quantities are reported here, all of them, each at its position; the rules that
//! need the whole manifest are in [`validate`](crate::validate).

use std::collections::{BTreeMap, HashMap};

use crate::{
	error::{Diagnostic, Pos},
	model::{
		ArchiveImage, Container, DeliveredImage, EnvValue, Exposure, HealthCheck, Image, Manifest,
		Mount, Port, Protocol, Replicas, Resources, Secret, SecretValue, Volume,
	},
	quantity::{ByteSize, Cpu, QuantityError},
	tree::{Entry, Node, Path, Positions, Value},
};

const MANIFEST_FIELDS: &[&str] =
	&["version", "name", "containers", "volumes", "replicas", "expose", "secrets", "health"];
const CONTAINER_FIELDS: &[&str] =
	&["name", "image", "command", "args", "env", "ports", "resources", "mounts"];
const PORT_FIELDS: &[&str] = &["port", "protocol"];
const RESOURCE_FIELDS: &[&str] = &["cpu", "memory", "gpus"];
const MOUNT_FIELDS: &[&str] = &["volume", "path", "read_only"];
const VOLUME_FIELDS: &[&str] = &["name", "size"];
const REPLICA_FIELDS: &[&str] = &["min", "max", "idle"];
const EXPOSURE_FIELDS: &[&str] = &["http", "tcp"];
const HTTP_FIELDS: &[&str] = &["host", "port"];
const TCP_FIELDS: &[&str] = &["port"];
const SECRET_FIELDS: &[&str] = &["name", "data"];
const SECRET_REF_FIELDS: &[&str] = &["secret", "key"];
const HEALTH_FIELDS: &[&str] = &["path", "status", "body"];
const IMAGE_FIELDS: &[&str] = &["name", "digest", "archive"];

/// `sha256:<64 lowercase hex digits>` to its bytes.
pub fn parse_digest(text: &str) -> Option<[u8; 32]> {
	let hex = text.strip_prefix("sha256:")?;
	if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
		return None;
	}
	let mut digest = [0u8; 32];
	for (i, byte) in digest.iter_mut().enumerate() {
		*byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
	}
	Some(digest)
}

/// Decodes the tree; on failure returns every schema problem found.
pub(crate) fn decode(root: &Node) -> Result<(Manifest, Positions), Vec<Diagnostic>> {
	let mut d = Decoder { diags: Vec::new(), positions: Positions::default() };
	let manifest = d.manifest(root);
	match manifest {
		Some(m) if d.diags.is_empty() => Ok((m, d.positions)),
		_ => Err(d.diags),
	}
}

struct Decoder {
	diags: Vec<Diagnostic>,
	positions: Positions,
}

/// The known fields present in a mapping, after unknown and duplicate keys were reported.
struct Fields<'n> {
	path: Path,
	pos: Pos,
	found: Vec<(&'static str, &'n Node)>,
}

impl<'n> Fields<'n> {
	/// An optional field; `null` counts as absent, so `volumes:` with nothing after it is fine.
	fn get(&self, name: &str) -> Option<&'n Node> {
		self.found
			.iter()
			.find(|(n, node)| *n == name && node.value != Value::Null)
			.map(|(_, node)| *node)
	}

	fn path(&self, name: &str) -> Path {
		self.path.key(name)
	}
}

impl Decoder {
	fn error(&mut self, path: &Path, pos: Pos, message: impl Into<String>) {
		self.diags.push(Diagnostic::new(path.to_string(), Some(pos), message));
	}

	fn type_error(&mut self, node: &Node, path: &Path, expected: &str, reveal: bool) {
		let mut message = format!("expected {expected}, found {}", node.value.describe(reveal));
		let scalar = matches!(node.value, Value::Int(_) | Value::Float(_) | Value::Bool(_));
		if reveal && scalar && expected.starts_with("a string") {
			message.push_str(" (put it in quotes to make it a string)");
		}
		self.error(path, node.pos, message);
	}

	/// Checks that `node` is a mapping of known, distinct keys (reporting the others) and records
	/// its position; `None` if it is not a mapping.
	fn fields<'n>(
		&mut self,
		node: &'n Node,
		path: &Path,
		known: &'static [&'static str],
	) -> Option<Fields<'n>> {
		self.positions.insert(path, node.pos);
		let Value::Map(entries) = &node.value else {
			self.type_error(node, path, "a mapping", true);
			return None;
		};
		let mut found = Vec::new();
		let mut seen = HashMap::new();
		for entry in entries {
			if self.duplicate(path, &mut seen, entry) {
				continue;
			}
			match known.iter().find(|k| **k == entry.key) {
				Some(name) => {
					self.positions.insert(&path.key(name), entry.value.pos);
					found.push((*name, &entry.value));
				}
				None => {
					let message = unknown_field(&entry.key, known);
					self.error(path, entry.key_pos, message);
				}
			}
		}
		// The known fields are still decoded after an unknown or duplicate key, so that their
		// problems are reported too; the error recorded here fails the decode as a whole.
		Some(Fields { path: path.clone(), pos: node.pos, found })
	}

	/// Reports `entry` if an earlier entry of the mapping had the same key; `seen` maps the keys
	/// so far to their lines (a set, not a scan, so a huge mapping stays linear).
	fn duplicate<'n>(
		&mut self,
		path: &Path,
		seen: &mut HashMap<&'n str, usize>,
		entry: &'n Entry,
	) -> bool {
		let Some(first_line) = seen.get(entry.key.as_str()) else {
			seen.insert(&entry.key, entry.key_pos.line);
			return false;
		};
		let message = format!("duplicate key {:?} (first at line {first_line})", entry.key);
		self.error(path, entry.key_pos, message);
		true
	}

	fn require<'n>(&mut self, fields: &Fields<'n>, name: &str) -> Option<&'n Node> {
		match fields.found.iter().find(|(n, _)| *n == name) {
			Some((_, node)) => Some(node),
			None => {
				let message = format!("missing required field {name:?}");
				self.error(&fields.path, fields.pos, message);
				None
			}
		}
	}

	/// Decodes every item of a list (reporting all failures), or `None` if any failed.
	fn list<T>(
		&mut self,
		node: &Node,
		path: &Path,
		mut item: impl FnMut(&mut Self, &Node, &Path) -> Option<T>,
	) -> Option<Vec<T>> {
		self.positions.insert(path, node.pos);
		let Value::Seq(nodes) = &node.value else {
			self.type_error(node, path, "a list", true);
			return None;
		};
		let mut out = Vec::with_capacity(nodes.len());
		let mut ok = true;
		for (i, node) in nodes.iter().enumerate() {
			let path = path.index(i);
			self.positions.insert(&path, node.pos);
			match item(self, node, &path) {
				Some(value) => out.push(value),
				None => ok = false,
			}
		}
		ok.then_some(out)
	}

	/// An optional list: absent or `null` is empty.
	fn opt_list<T>(
		&mut self,
		fields: &Fields<'_>,
		name: &str,
		item: impl FnMut(&mut Self, &Node, &Path) -> Option<T>,
	) -> Option<Vec<T>> {
		match fields.get(name) {
			Some(node) => self.list(node, &fields.path(name), item),
			None => Some(Vec::new()),
		}
	}

	/// A mapping with free-form keys (`env`, secret `data`), each key's position recorded.
	fn map<T>(
		&mut self,
		node: &Node,
		path: &Path,
		mut value: impl FnMut(&mut Self, &Node, &Path) -> Option<T>,
	) -> Option<BTreeMap<String, T>> {
		self.positions.insert(path, node.pos);
		let Value::Map(entries) = &node.value else {
			self.type_error(node, path, "a mapping", true);
			return None;
		};
		let mut out = BTreeMap::new();
		let mut ok = true;
		let mut seen = HashMap::new();
		for entry in entries {
			if self.duplicate(path, &mut seen, entry) {
				ok = false;
				continue;
			}
			let path = path.key(&entry.key);
			// Errors about an entry point at its key, which is what names it.
			self.positions.insert(&path, entry.key_pos);
			match value(self, &entry.value, &path) {
				Some(v) => {
					out.insert(entry.key.clone(), v);
				}
				None => ok = false,
			}
		}
		ok.then_some(out)
	}

	fn string(&mut self, node: &Node, path: &Path) -> Option<String> {
		match &node.value {
			Value::Str(s) => Some(s.clone()),
			_ => {
				self.type_error(node, path, "a string", true);
				None
			}
		}
	}

	fn strings(&mut self, fields: &Fields<'_>, name: &str) -> Option<Vec<String>> {
		self.opt_list(fields, name, |d, node, path| d.string(node, path))
	}

	fn integer(&mut self, node: &Node, path: &Path, min: u64, max: u64) -> Option<u64> {
		let Value::Int(text) = &node.value else {
			self.type_error(node, path, "an integer", true);
			return None;
		};
		let value = int_value(text).and_then(|v| u64::try_from(v).ok());
		match value {
			Some(v) if (min..=max).contains(&v) => Some(v),
			_ => {
				let message = format!("must be an integer from {min} to {max}, found {text}");
				self.error(path, node.pos, message);
				None
			}
		}
	}

	fn u32_field(&mut self, fields: &Fields<'_>, name: &str) -> Option<Option<u32>> {
		match fields.get(name) {
			Some(node) => {
				let value = self.integer(node, &fields.path(name), 0, u32::MAX.into())?;
				u32::try_from(value).ok().map(Some)
			}
			None => Some(None),
		}
	}

	fn port(&mut self, node: &Node, path: &Path) -> Option<u16> {
		let value = self.integer(node, path, 1, u16::MAX.into())?;
		u16::try_from(value).ok()
	}

	fn quantity<T>(
		&mut self,
		node: &Node,
		path: &Path,
		parse: impl FnOnce(&str) -> Result<T, QuantityError>,
	) -> Option<T> {
		let text = match &node.value {
			Value::Str(t) | Value::Float(t) => t.clone(),
			// An integer means its value, however it is spelled (YAML `0x400` is 1024 bytes).
			Value::Int(t) => int_value(t).map_or_else(|| t.clone(), |v| v.to_string()),
			_ => {
				self.type_error(node, path, "a quantity", true);
				return None;
			}
		};
		parse(&text).map_err(|e| self.error(path, node.pos, e.to_string())).ok()
	}

	fn manifest(&mut self, node: &Node) -> Option<Manifest> {
		let f = self.fields(node, &Path::root(), MANIFEST_FIELDS)?;
		let version = self.require(&f, "version").and_then(|n| self.string(n, &f.path("version")));
		let name = match f.get("name") {
			Some(n) => self.string(n, &f.path("name")).map(Some),
			None => Some(None),
		};
		let containers = self
			.require(&f, "containers")
			.and_then(|n| self.list(n, &f.path("containers"), Self::container));
		let volumes = self.opt_list(&f, "volumes", Self::volume);
		let replicas = match f.get("replicas") {
			Some(n) => self.replicas(n, &f.path("replicas")),
			None => Some(Replicas::default()),
		};
		let expose = self.opt_list(&f, "expose", Self::exposure);
		let secrets = self.opt_list(&f, "secrets", Self::secret);
		let health = match f.get("health") {
			Some(n) => self.health(n, &f.path("health")).map(Some),
			None => Some(None),
		};
		Some(Manifest {
			version: version?,
			name: name?,
			containers: containers?,
			volumes: volumes?,
			replicas: replicas?,
			expose: expose?,
			secrets: secrets?,
			health: health?,
		})
	}

	fn health(&mut self, node: &Node, path: &Path) -> Option<HealthCheck> {
		let f = self.fields(node, path, HEALTH_FIELDS)?;
		let check_path = self.require(&f, "path").and_then(|n| self.string(n, &f.path("path")));
		let status = match f.get("status") {
			Some(n) => self.integer(n, &f.path("status"), 100, 599).map(|s| s as u16),
			None => Some(200),
		};
		let body = match f.get("body") {
			Some(n) => self.string(n, &f.path("body")).map(Some),
			None => Some(None),
		};
		Some(HealthCheck { path: check_path?, status: status?, body: body? })
	}

	fn container(&mut self, node: &Node, path: &Path) -> Option<Container> {
		let f = self.fields(node, path, CONTAINER_FIELDS)?;
		let name = self.require(&f, "name").and_then(|n| self.string(n, &f.path("name")));
		let image = self.require(&f, "image").and_then(|n| self.image(n, &f.path("image")));
		let command = self.strings(&f, "command");
		let args = self.strings(&f, "args");
		let env = match f.get("env") {
			Some(n) => self.map(n, &f.path("env"), Self::env_value),
			None => Some(BTreeMap::new()),
		};
		let ports = self.opt_list(&f, "ports", Self::port_spec);
		let resources =
			self.require(&f, "resources").and_then(|n| self.resources(n, &f.path("resources")));
		let mounts = self.opt_list(&f, "mounts", Self::mount);
		Some(Container {
			name: name?,
			image: image?,
			command: command?,
			args: args?,
			env: env?,
			ports: ports?,
			resources: resources?,
			mounts: mounts?,
		})
	}

	/// A reference string, `{digest, name?}` (delivered by the publisher) or `{archive, name?}`
	/// (a local archive the CLI resolves).
	fn image(&mut self, node: &Node, path: &Path) -> Option<Image> {
		match &node.value {
			Value::Str(s) => Some(Image::Reference(s.clone())),
			Value::Map(_) => {
				let f = self.fields(node, path, IMAGE_FIELDS)?;
				let name = match f.get("name") {
					Some(n) => Some(self.string(n, &f.path("name"))?),
					None => None,
				};
				match (f.get("digest"), f.get("archive")) {
					(Some(digest), None) => {
						let text = self.string(digest, &f.path("digest"))?;
						let Some(digest) = parse_digest(&text) else {
							let message = format!(
								"{text:?} is not a digest: write sha256:<64 lowercase hex digits>"
							);
							self.error(&f.path("digest"), digest.pos, message);
							return None;
						};
						let Some(name) = name else {
							self.error(path, f.pos, "missing required field \"name\"");
							return None;
						};
						Some(Image::Delivered(DeliveredImage { name, digest }))
					}
					(None, Some(archive)) => {
						let path = self.string(archive, &f.path("archive"))?;
						Some(Image::Archive(ArchiveImage { path, name }))
					}
					_ => {
						let message = "an image mapping needs exactly one of \"digest\" (an image \
						               the publisher delivers) or \"archive\" (a local OCI archive)";
						self.error(path, f.pos, message);
						None
					}
				}
			}
			_ => {
				self.type_error(node, path, "a string or a mapping", true);
				None
			}
		}
	}

	fn env_value(&mut self, node: &Node, path: &Path) -> Option<EnvValue> {
		match &node.value {
			Value::Str(s) => Some(EnvValue::Value(s.clone())),
			Value::Map(_) => {
				let f = self.fields(node, path, SECRET_REF_FIELDS)?;
				let secret =
					self.require(&f, "secret").and_then(|n| self.string(n, &f.path("secret")));
				let key = self.require(&f, "key").and_then(|n| self.string(n, &f.path("key")));
				Some(EnvValue::Secret { secret: secret?, key: key? })
			}
			_ => {
				self.type_error(node, path, "a string or {secret, key}", true);
				None
			}
		}
	}

	fn port_spec(&mut self, node: &Node, path: &Path) -> Option<Port> {
		let f = self.fields(node, path, PORT_FIELDS)?;
		let port = self.require(&f, "port").and_then(|n| self.port(n, &f.path("port")));
		let protocol = match f.get("protocol") {
			Some(n) => self.protocol(n, &f.path("protocol")),
			None => Some(Protocol::Tcp),
		};
		Some(Port { port: port?, protocol: protocol? })
	}

	fn protocol(&mut self, node: &Node, path: &Path) -> Option<Protocol> {
		let text = self.string(node, path)?;
		// Kubernetes spells them in capitals; both spellings mean the same, canonically lower.
		match text.as_str() {
			"tcp" | "TCP" => Some(Protocol::Tcp),
			"udp" | "UDP" => Some(Protocol::Udp),
			_ => {
				let hint = suggest(&text.to_ascii_lowercase(), &["tcp", "udp"])
					.map(|s| format!("; did you mean {s:?}?"))
					.unwrap_or_default();
				self.error(path, node.pos, format!("unknown protocol {text:?} (tcp or udp{hint})"));
				None
			}
		}
	}

	fn resources(&mut self, node: &Node, path: &Path) -> Option<Resources> {
		let f = self.fields(node, path, RESOURCE_FIELDS)?;
		let cpu =
			self.require(&f, "cpu").and_then(|n| self.quantity(n, &f.path("cpu"), Cpu::parse));
		let memory = self
			.require(&f, "memory")
			.and_then(|n| self.quantity(n, &f.path("memory"), |t| ByteSize::parse(t, "memory")));
		let gpus = self.u32_field(&f, "gpus");
		Some(Resources { cpu: cpu?, memory: memory?, gpus: gpus?.unwrap_or(0) })
	}

	fn mount(&mut self, node: &Node, path: &Path) -> Option<Mount> {
		let f = self.fields(node, path, MOUNT_FIELDS)?;
		let volume = self.require(&f, "volume").and_then(|n| self.string(n, &f.path("volume")));
		let mount_path = self.require(&f, "path").and_then(|n| self.string(n, &f.path("path")));
		let read_only = match f.get("read_only") {
			Some(n) => match n.value {
				Value::Bool(b) => Some(b),
				_ => {
					self.type_error(n, &f.path("read_only"), "true or false", true);
					None
				}
			},
			None => Some(false),
		};
		Some(Mount { volume: volume?, path: mount_path?, read_only: read_only? })
	}

	fn volume(&mut self, node: &Node, path: &Path) -> Option<Volume> {
		let f = self.fields(node, path, VOLUME_FIELDS)?;
		let name = self.require(&f, "name").and_then(|n| self.string(n, &f.path("name")));
		let size = self
			.require(&f, "size")
			.and_then(|n| self.quantity(n, &f.path("size"), |t| ByteSize::parse(t, "storage")));
		Some(Volume { name: name?, size: size? })
	}

	fn replicas(&mut self, node: &Node, path: &Path) -> Option<Replicas> {
		let f = self.fields(node, path, REPLICA_FIELDS)?;
		let min = self.u32_field(&f, "min");
		let max = self.u32_field(&f, "max");
		let idle = match f.get("idle") {
			Some(node) => Some(self.seconds(node, &f.path("idle"))?),
			None => None,
		};
		let min = min?.unwrap_or(1);
		// A deal that scales to zero runs one pod when awake.
		let max = max?.unwrap_or(if idle.is_some() { min.max(1) } else { min });
		Some(Replicas { min, max, idle_seconds: idle })
	}

	/// A duration: integer seconds, or a string of a whole number and a unit, `s`, `m` or `h`.
	fn seconds(&mut self, node: &Node, path: &Path) -> Option<u32> {
		if let Value::Int(_) = &node.value {
			let value = self.integer(node, path, 0, u32::MAX.into())?;
			return u32::try_from(value).ok();
		}
		let Value::Str(text) = &node.value else {
			self.type_error(node, path, "a duration such as 5m", true);
			return None;
		};
		let (number, unit) = text.split_at(text.len().saturating_sub(1));
		let scale = match unit {
			"s" => Some(1u64),
			"m" => Some(60),
			"h" => Some(3600),
			_ => None,
		};
		let value = scale.zip(number.parse::<u64>().ok()).and_then(|(s, n)| n.checked_mul(s));
		match value.and_then(|v| u32::try_from(v).ok()) {
			Some(seconds) => Some(seconds),
			None => {
				let message = format!("expected a duration such as 30s, 5m or 1h, found {text:?}");
				self.error(path, node.pos, message);
				None
			}
		}
	}

	fn exposure(&mut self, node: &Node, path: &Path) -> Option<Exposure> {
		let f = self.fields(node, path, EXPOSURE_FIELDS)?;
		match (f.get("http"), f.get("tcp")) {
			(Some(http), None) => {
				let path = f.path("http");
				let h = self.fields(http, &path, HTTP_FIELDS)?;
				let host = match h.get("host") {
					Some(n) => self.string(n, &h.path("host")).map(Some),
					None => Some(None),
				};
				let port = self.require(&h, "port").and_then(|n| self.port(n, &h.path("port")));
				Some(Exposure::Http { host: host?, port: port? })
			}
			(None, Some(tcp)) => {
				let t = self.fields(tcp, &f.path("tcp"), TCP_FIELDS)?;
				let port = self.require(&t, "port").and_then(|n| self.port(n, &t.path("port")))?;
				Some(Exposure::Tcp { port })
			}
			_ => {
				self.error(path, node.pos, "an exposure needs exactly one of \"http\" or \"tcp\"");
				None
			}
		}
	}

	fn secret(&mut self, node: &Node, path: &Path) -> Option<Secret> {
		let f = self.fields(node, path, SECRET_FIELDS)?;
		let name = self.require(&f, "name").and_then(|n| self.string(n, &f.path("name")));
		let data = self.require(&f, "data").and_then(|n| {
			self.map(n, &f.path("data"), |d, value, path| match &value.value {
				Value::Str(s) => Some(SecretValue::new(s.clone())),
				// Never show what was found: it may be the secret.
				_ => {
					d.type_error(value, path, "a string", false);
					None
				}
			})
		});
		Some(Secret { name: name?, data: data? })
	}
}

/// The value of an integer literal (decimal with optional sign, `0x` hex, `0o` octal).
fn int_value(text: &str) -> Option<i128> {
	if let Some(hex) = text.strip_prefix("0x") {
		return i128::from_str_radix(hex, 16).ok();
	}
	if let Some(oct) = text.strip_prefix("0o") {
		return i128::from_str_radix(oct, 8).ok();
	}
	text.parse().ok()
}

fn unknown_field(key: &str, known: &[&str]) -> String {
	match suggest(key, known) {
		Some(s) => format!("unknown field {key:?} (did you mean {s:?}?)"),
		None => format!("unknown field {key:?} (expected one of: {})", known.join(", ")),
	}
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub(crate) fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
	let word = word.to_ascii_lowercase();
	candidates
		.iter()
		.map(|c| (edit_distance(&word, c), *c))
		.filter(|(d, c)| *d <= (c.len() / 3).max(1))
		.min_by_key(|(d, _)| *d)
		.map(|(_, c)| c)
}

/// Edit distance counting insertions, deletions, substitutions and swaps of neighbours (so
/// `imgae` is one edit from `image`), in characters. Keys are capped at 64 characters to keep the
/// cost trivial whatever the input.
fn edit_distance(a: &str, b: &str) -> usize {
	let a: Vec<char> = a.chars().take(64).collect();
	let b: Vec<char> = b.chars().collect();
	let mut rows = vec![vec![0; b.len() + 1]; a.len() + 1];
	for (i, row) in rows.iter_mut().enumerate() {
		row[0] = i;
	}
	for (j, cell) in rows[0].iter_mut().enumerate() {
		*cell = j;
	}
	for i in 1..=a.len() {
		for j in 1..=b.len() {
			let cost = usize::from(a[i - 1] != b[j - 1]);
			let mut d = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
			if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
				d = d.min(rows[i - 2][j - 2] + 1);
			}
			rows[i][j] = d;
		}
	}
	rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::{error::Diagnostics, yaml};

	fn errors(src: &str) -> Vec<String> {
		let root = yaml::parse(src).unwrap();
		let diags = Diagnostics::new(decode(&root).unwrap_err());
		diags.items().iter().map(ToString::to_string).collect()
	}

	const BASE: &str = "version: podchain/v1\ncontainers:\n  - name: web\n    image: x\n";

	#[test]
	fn suggestions() {
		assert_eq!(suggest("imgae", CONTAINER_FIELDS), Some("image"));
		assert_eq!(suggest("Image", CONTAINER_FIELDS), Some("image"));
		assert_eq!(suggest("readOnly", MOUNT_FIELDS), Some("read_only"));
		assert_eq!(suggest("replica", MANIFEST_FIELDS), Some("replicas"));
		assert_eq!(suggest("zzz", MANIFEST_FIELDS), None);
		assert_eq!(edit_distance("kitten", "sitting"), 3);
		assert_eq!(edit_distance("imgae", "image"), 1);
		assert_eq!(edit_distance("", "abc"), 3);
	}

	#[test]
	fn reports_every_schema_error() {
		let src = format!(
			"{BASE}    imgae: y\n    ports: [{{port: 70000}}, {{port: 80, protocol: tpc}}]\n    \
			 resources: {{cpu: 2x, memory: 1Mb, gpus: -1}}\n    mounts: [{{volume: v, path: /d, \
			 read_only: 'no'}}]\nreplicas: {{min: one}}\nexpose: [{{}}]\n"
		);
		assert_eq!(
			errors(&src),
			[
				"5:5: containers[0]: unknown field \"imgae\" (did you mean \"image\"?)",
				"6:20: containers[0].ports[0].port: must be an integer from 1 to 65535, found 70000",
				"6:49: containers[0].ports[1].protocol: unknown protocol \"tpc\" (tcp or udp; did \
				 you mean \"tcp\"?)",
				"7:22: containers[0].resources.cpu: \"2x\" is not a CPU quantity (examples: 500m, \
				 1.5, 2)",
				"7:34: containers[0].resources.memory: \"1Mb\" is not a memory quantity (examples: \
				 64Mi, 1Gi, 500M)",
				"7:45: containers[0].resources.gpus: must be an integer from 0 to 4294967295, \
				 found -1",
				"8:47: containers[0].mounts[0].read_only: expected true or false, found a string",
				"9:17: replicas.min: expected an integer, found a string",
				"10:10: expose[0]: an exposure needs exactly one of \"http\" or \"tcp\"",
			]
		);
	}

	#[test]
	fn missing_duplicate_and_mistyped() {
		let src = "version: 1\ncontainers:\n  - name: web\n    name: again\n    command: run\n";
		assert_eq!(
			errors(src),
			[
				"1:10: version: expected a string, found the number 1 (put it in quotes to make it \
				 a string)",
				"3:5: containers[0]: missing required field \"image\"",
				"3:5: containers[0]: missing required field \"resources\"",
				"4:5: containers[0]: duplicate key \"name\" (first at line 3)",
				"5:14: containers[0].command: expected a list, found a string",
			]
		);
	}

	#[test]
	fn secret_values_are_never_shown() {
		let src = format!("{BASE}secrets:\n  - name: db\n    data: {{password: 123456}}\n");
		let errs = errors(&src);
		assert!(errs.iter().any(|e| e.contains("secrets[0].data.password: expected a string")));
		assert!(errs.iter().all(|e| !e.contains("123456")), "{errs:?}");
	}

	#[test]
	fn env_forms() {
		let src = format!(
			"{BASE}    resources: {{cpu: 1, memory: 1Gi}}\n    env:\n      A: x\n      B: {{secret: \
			 s, key: k}}\n      C: [1]\n"
		);
		assert_eq!(
			errors(&src),
			["9:10: containers[0].env.C: expected a string or {secret, key}, found a list"]
		);
	}

	#[test]
	fn integer_quantities_mean_their_value() {
		let src =
			"version: podchain/v1\ncontainers:\n  - {name: a, image: b, resources: {cpu: 0x2, \
		           memory: 0o2000}}\n";
		let (m, _) = decode(&yaml::parse(src).unwrap()).unwrap();
		assert_eq!(m.containers[0].resources.cpu, Cpu::from_millis(2000));
		assert_eq!(m.containers[0].resources.memory, ByteSize::from_bytes(1024));
	}

	#[test]
	fn integers_in_all_spellings() {
		assert_eq!(int_value("0x1F90"), Some(8080));
		assert_eq!(int_value("0o17"), Some(15));
		assert_eq!(int_value("+5"), Some(5));
		assert_eq!(int_value("-5"), Some(-5));
		assert_eq!(int_value(&"9".repeat(50)), None);
	}
}
