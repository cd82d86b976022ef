//! The rules a decoded manifest must follow: names, references between its parts, uniqueness,
//! ranges and the limits in [`crate::limits`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::{
	decode::suggest,
	error::Diagnostic,
	limits::*,
	model::{Container, EnvValue, Exposure, Image, Manifest, Protocol, VERSION_V1},
	names::{
		check_env_name, check_image, check_mount_path, check_reference_scope,
		check_repository_name, check_secret_key, dns_label_error, is_dns_label,
	},
	tree::{Path, Positions},
};

/// Every broken rule of `m`, located through `positions` (empty for a manifest built in code).
pub(crate) fn check(m: &Manifest, positions: &Positions) -> Vec<Diagnostic> {
	let mut v = Validator { positions, diags: Vec::new() };
	v.manifest(m);
	v.diags
}

/// The `archive` images of a manifest that should have been resolved to digests.
pub(crate) fn unresolved_archives(m: &Manifest, positions: &Positions) -> Vec<Diagnostic> {
	let mut v = Validator { positions, diags: Vec::new() };
	for (i, c) in m.containers.iter().enumerate() {
		if let Image::Archive(archive) = &c.image {
			let path = Path::root().key("containers").index(i).key("image");
			let message = format!(
				"archive {:?} is a file on the publisher's machine: `podchain deploy` sends the \
				 image and pins its digest",
				archive.path
			);
			v.error(&path, message);
		}
	}
	v.diags
}

struct Validator<'p> {
	positions: &'p Positions,
	diags: Vec<Diagnostic>,
}

impl Validator<'_> {
	fn error(&mut self, path: &Path, message: impl Into<String>) {
		let pos = self.positions.find(path);
		self.diags.push(Diagnostic::new(path.to_string(), pos, message));
	}

	fn count(&mut self, path: &Path, n: usize, max: usize, what: &str) {
		if n > max {
			self.error(path, format!("too many {what}: {n} (at most {max})"));
		}
	}

	fn label(&mut self, path: &Path, value: &str, what: &str) {
		if !is_dns_label(value) {
			self.error(path, dns_label_error(value, what));
		}
	}

	fn no_nul(&mut self, path: &Path, value: &str, what: &str) {
		// execve cannot pass a NUL; the runtime would fail later and less clearly.
		if value.contains('\0') {
			self.error(path, format!("{what} must not contain NUL characters"));
		}
	}

	fn manifest(&mut self, m: &Manifest) {
		let root = Path::root();
		if m.version != VERSION_V1 {
			let message = format!("unsupported version {:?} (supported: {VERSION_V1})", m.version);
			self.error(&root.key("version"), message);
		}
		if let Some(name) = &m.name {
			self.label(&root.key("name"), name, "name");
		}
		self.containers(m);
		self.volumes(m);
		self.replicas(m);
		self.expose(m);
		self.health(m);
		self.secrets(m);
		if let Err(overflow) = m.resources() {
			let message = format!(
				"the deal's total {} does not fit the registry's units (u32); lower replicas.max \
				 or the requests",
				overflow.resource
			);
			self.error(&root.key("replicas").key("max"), message);
		}
		let size = m.canonical_bytes().len();
		if size > MAX_CANONICAL_BYTES {
			let message = format!(
				"the canonical manifest is {size} bytes, more than the limit of \
				 {MAX_CANONICAL_BYTES}"
			);
			self.diags.push(Diagnostic::new(String::new(), None, message));
		}
	}

	fn image(&mut self, path: &Path, image: &Image) {
		match image {
			Image::Reference(reference) => {
				if let Err(e) =
					check_image(reference).and_then(|()| check_reference_scope(reference))
				{
					self.error(path, e);
				}
			}
			Image::Delivered(delivered) => {
				if let Err(e) = check_repository_name(&delivered.name) {
					self.error(&path.key("name"), e);
				}
			}
			Image::Archive(archive) => {
				if archive.path.is_empty() || archive.path.len() > MAX_PATH_LEN {
					let message = format!("must be a path of 1 to {MAX_PATH_LEN} bytes");
					self.error(&path.key("archive"), message);
				}
				if let Some(name) = &archive.name {
					if let Err(e) = check_repository_name(name) {
						self.error(&path.key("name"), e);
					}
				}
			}
		}
	}

	fn containers(&mut self, m: &Manifest) {
		let path = Path::root().key("containers");
		if m.containers.is_empty() {
			self.error(&path, "at least one container is required");
		}
		self.count(&path, m.containers.len(), MAX_CONTAINERS, "containers");
		let mut names: HashMap<&str, Path> = HashMap::new();
		// Containers share the pod's network namespace, so ports are unique across all of them.
		let mut ports: HashMap<(u16, Protocol), Path> = HashMap::new();
		for (i, c) in m.containers.iter().enumerate() {
			let path = path.index(i);
			let name_path = path.key("name");
			self.label(&name_path, &c.name, "container name");
			if let Some(first) = names.get(c.name.as_str()) {
				let message = format!("duplicate container name {:?} (also {first})", c.name);
				self.error(&name_path, message);
			} else {
				names.insert(&c.name, name_path);
			}
			self.image(&path.key("image"), &c.image);
			self.arguments(&path, "command", &c.command);
			self.arguments(&path, "args", &c.args);
			self.env(m, &path, c);
			self.count(&path.key("ports"), c.ports.len(), MAX_PORTS, "ports");
			for (j, p) in c.ports.iter().enumerate() {
				let port_path = path.key("ports").index(j).key("port");
				if p.port == 0 {
					self.error(&port_path, "must be an integer from 1 to 65535, found 0");
				} else if let Some(first) = ports.get(&(p.port, p.protocol)) {
					let message =
						format!("port {}/{} is already declared at {first}", p.port, p.protocol);
					self.error(&port_path, message);
				} else {
					ports.insert((p.port, p.protocol), port_path);
				}
			}
			self.resources(&path.key("resources"), c);
			self.mounts(m, &path, c);
		}
	}

	fn arguments(&mut self, container: &Path, field: &str, items: &[String]) {
		let path = container.key(field);
		self.count(&path, items.len(), MAX_ARGS, "items");
		for (i, item) in items.iter().enumerate() {
			self.no_nul(&path.index(i), item, "an argument");
		}
	}

	fn env(&mut self, m: &Manifest, container: &Path, c: &Container) {
		let path = container.key("env");
		self.count(&path, c.env.len(), MAX_ENV, "environment variables");
		for (name, value) in &c.env {
			let path = path.key(name);
			if let Err(e) = check_env_name(name) {
				self.error(&path, e);
			}
			match value {
				EnvValue::Value(v) => self.no_nul(&path, v, "a value"),
				EnvValue::Secret { secret, key } => {
					let Some(found) = m.secrets.iter().find(|s| &s.name == secret) else {
						let names: Vec<&str> = m.secrets.iter().map(|s| s.name.as_str()).collect();
						let message = unknown("secret", secret, &names);
						self.error(&path.key("secret"), message);
						continue;
					};
					if !found.data.contains_key(key) {
						let keys: Vec<&str> = found.data.keys().map(String::as_str).collect();
						let message =
							format!("{} in secret {secret:?}", unknown("key", key, &keys));
						self.error(&path.key("key"), message);
					}
				}
			}
		}
	}

	fn resources(&mut self, path: &Path, c: &Container) {
		let r = &c.resources;
		let millis = r.cpu.millis();
		if millis == 0 {
			self.error(&path.key("cpu"), "must be more than 0: every container reserves CPU");
		} else if millis > MAX_CPU_MILLICORES {
			let message =
				format!("{} is more than the limit of {} cores", r.cpu, MAX_CPU_MILLICORES / 1000);
			self.error(&path.key("cpu"), message);
		}
		let bytes = r.memory.bytes();
		if bytes == 0 {
			self.error(&path.key("memory"), "must be more than 0: every container reserves memory");
		} else if bytes > MAX_MEMORY_BYTES {
			let message = format!("{} is more than the limit of 4Ti", r.memory);
			self.error(&path.key("memory"), message);
		}
		if r.gpus > MAX_GPUS {
			let message = format!("{} is more than the limit of {MAX_GPUS}", r.gpus);
			self.error(&path.key("gpus"), message);
		}
	}

	fn mounts(&mut self, m: &Manifest, container: &Path, c: &Container) {
		let path = container.key("mounts");
		self.count(&path, c.mounts.len(), MAX_MOUNTS, "mounts");
		let volumes: Vec<&str> = m.volumes.iter().map(|v| v.name.as_str()).collect();
		let mut paths: HashMap<&str, Path> = HashMap::new();
		for (i, mount) in c.mounts.iter().enumerate() {
			let path = path.index(i);
			if !volumes.contains(&mount.volume.as_str()) {
				self.error(&path.key("volume"), unknown("volume", &mount.volume, &volumes));
			}
			let mount_path = path.key("path");
			if let Err(e) = check_mount_path(&mount.path) {
				self.error(&mount_path, e);
			} else if let Some(first) = paths.get(mount.path.as_str()) {
				let message = format!("{:?} is already mounted at {first}", mount.path);
				self.error(&mount_path, message);
			} else {
				paths.insert(&mount.path, mount_path);
			}
		}
	}

	fn volumes(&mut self, m: &Manifest) {
		let path = Path::root().key("volumes");
		self.count(&path, m.volumes.len(), MAX_VOLUMES, "volumes");
		let mut names: HashMap<&str, Path> = HashMap::new();
		for (i, v) in m.volumes.iter().enumerate() {
			let path = path.index(i);
			let name_path = path.key("name");
			self.label(&name_path, &v.name, "volume name");
			if let Some(first) = names.get(v.name.as_str()) {
				self.error(
					&name_path,
					format!("duplicate volume name {:?} (also {first})", v.name),
				);
			} else {
				names.insert(&v.name, name_path);
			}
			let bytes = v.size.bytes();
			if bytes == 0 {
				self.error(&path.key("size"), "must be more than 0");
			} else if bytes > MAX_VOLUME_BYTES {
				let message = format!("{} is more than the limit of 64Ti", v.size);
				self.error(&path.key("size"), message);
			}
		}
	}

	fn replicas(&mut self, m: &Manifest) {
		let path = Path::root().key("replicas");
		let r = m.replicas;
		if let Some(idle) = r.idle_seconds {
			// Scale to zero: one pod, stopped while idle, started by a request to its name.
			if r.min != 0 || r.max != 1 {
				self.error(&path, "scaling to zero (idle) needs min 0 and max 1");
			}
			if !(MIN_IDLE_SECONDS..=MAX_IDLE_SECONDS).contains(&idle) {
				let message =
					format!("must be from {MIN_IDLE_SECONDS} s to {} h", MAX_IDLE_SECONDS / 3600);
				self.error(&path.key("idle"), message);
			}
			if !m.expose.iter().any(|e| matches!(e, crate::model::Exposure::Http { .. })) {
				self.error(&path.key("idle"), "scaling to zero needs an http exposure to wake it");
			}
			return;
		}
		if r.min < 1 {
			self.error(&path.key("min"), "must be at least 1 (0 only with idle, to scale to zero)");
		}
		if r.max < r.min {
			let message = format!("must not be less than replicas.min ({})", r.min);
			self.error(&path.key("max"), message);
		} else if r.max > MAX_REPLICAS {
			self.error(&path.key("max"), format!("must be at most {MAX_REPLICAS}"));
		}
	}

	fn expose(&mut self, m: &Manifest) {
		let path = Path::root().key("expose");
		self.count(&path, m.expose.len(), MAX_EXPOSE, "exposures");
		let tcp_ports: BTreeSet<u16> = m
			.containers
			.iter()
			.flat_map(|c| &c.ports)
			.filter(|p| p.protocol == Protocol::Tcp)
			.map(|p| p.port)
			.collect();
		let mut hosts: HashMap<Option<&str>, Path> = HashMap::new();
		let mut tcp: HashMap<u16, Path> = HashMap::new();
		for (i, e) in m.expose.iter().enumerate() {
			let path = path.index(i);
			let (kind, port) = match e {
				Exposure::Http { .. } => ("http", e.port()),
				Exposure::Tcp { port } => ("tcp", *port),
			};
			let port_path = path.key(kind).key("port");
			if !tcp_ports.contains(&port) {
				let declared: Vec<String> = tcp_ports.iter().map(u16::to_string).collect();
				let declared =
					if declared.is_empty() { "none".into() } else { declared.join(", ") };
				let message =
					format!("no container declares TCP port {port} (declared: {declared})");
				self.error(&port_path, message);
			}
			match e {
				Exposure::Http { host, .. } => {
					// Without a host, the exposure itself is what repeats.
					let host_path = match host {
						Some(_) => path.key("http").key("host"),
						None => path.key("http"),
					};
					if let Some(h) = host {
						self.label(&host_path, h, "host label");
					}
					let host = host.as_deref();
					if let Some(first) = hosts.get(&host) {
						let what = match host {
							Some(h) => format!("host {h:?}"),
							None => "the deal's name (no host)".into(),
						};
						self.error(&host_path, format!("{what} is already exposed by {first}"));
					} else {
						hosts.insert(host, path.clone());
					}
				}
				Exposure::Tcp { port } => {
					if let Some(first) = tcp.get(port) {
						let message = format!("TCP port {port} is already exposed by {first}");
						self.error(&port_path, message);
					} else {
						tcp.insert(*port, path.clone());
					}
				}
			}
		}
	}

	/// Probers reach the pod through the gateway by the deal's name, so the check needs the
	/// http exposure that serves it, and must fit the deal's SLA terms on chain.
	fn health(&mut self, m: &Manifest) {
		let Some(h) = &m.health else { return };
		let path = Path::root().key("health");
		let check_path = path.key("path");
		if !h.path.starts_with('/') {
			self.error(&check_path, "must start with /");
		} else if h.path.len() > MAX_HEALTH_PATH_LEN {
			self.error(&check_path, format!("is longer than {MAX_HEALTH_PATH_LEN} bytes"));
		} else if !h.path.bytes().all(|b| b.is_ascii_graphic()) {
			self.error(
				&check_path,
				"must be visible ASCII, without spaces (percent-encode others)",
			);
		}
		if let Some(body) = &h.body {
			if body.is_empty() || body.len() > MAX_HEALTH_BODY_LEN {
				let message = format!("must be 1 to {MAX_HEALTH_BODY_LEN} bytes");
				self.error(&path.key("body"), message);
			} else if !body.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
				self.error(&path.key("body"), "must be visible ASCII or spaces");
			}
		}
		if !m.expose.iter().any(|e| matches!(e, Exposure::Http { host: None, .. })) {
			let message = "a health check needs an http exposure without host (probers reach \
			               the pod by the deal's name)";
			self.error(&path, message);
		}
	}

	fn secrets(&mut self, m: &Manifest) {
		let path = Path::root().key("secrets");
		self.count(&path, m.secrets.len(), MAX_SECRETS, "secrets");
		let mut names: BTreeMap<&str, Path> = BTreeMap::new();
		for (i, s) in m.secrets.iter().enumerate() {
			let path = path.index(i);
			let name_path = path.key("name");
			self.label(&name_path, &s.name, "secret name");
			if let Some(first) = names.get(s.name.as_str()) {
				self.error(
					&name_path,
					format!("duplicate secret name {:?} (also {first})", s.name),
				);
			} else {
				names.insert(&s.name, name_path);
			}
			let data = path.key("data");
			self.count(&data, s.data.len(), MAX_SECRET_KEYS, "keys");
			for (key, value) in &s.data {
				let path = data.key(key);
				if let Err(e) = check_secret_key(key) {
					self.error(&path, e);
				}
				// Secrets reach containers through env, which cannot hold a NUL.
				self.no_nul(&path, value.expose(), "a secret value");
			}
		}
	}
}

/// `unknown volume "dta" (did you mean "data"?)`, or the declared names when none is close.
fn unknown(what: &str, name: &str, declared: &[&str]) -> String {
	// Past the count limits (reported on their own) a hint costs more than it helps.
	if declared.len() > MAX_SECRET_KEYS {
		return format!("unknown {what} {name:?}");
	}
	match suggest(name, declared) {
		Some(s) => format!("unknown {what} {name:?} (did you mean {s:?}?)"),
		None if declared.is_empty() => format!("unknown {what} {name:?} (none are declared)"),
		None => format!("unknown {what} {name:?} (declared: {})", declared.join(", ")),
	}
}

impl Manifest {
	/// Checks every rule of the format on a manifest built in code (parsing already did). The
	/// diagnostics carry paths but no positions.
	pub fn validate(&self) -> Result<(), crate::Diagnostics> {
		let diags = check(self, &Positions::default());
		if diags.is_empty() {
			Ok(())
		} else {
			Err(crate::Diagnostics::new(diags))
		}
	}
}
