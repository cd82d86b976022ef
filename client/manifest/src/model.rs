//! The manifest as the agent and the CLI use it: decoded, defaults filled in, quantities exact.

use std::{collections::BTreeMap, fmt};

use crate::{
	error::ResourceOverflow,
	quantity::{ByteSize, Cpu},
};

/// The only manifest version this crate reads.
pub const VERSION_V1: &str = "podchain/v1";

/// A deployment manifest: the pod a deal runs, how many replicas, how it is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
	/// Format version, [`VERSION_V1`].
	pub version: String,
	/// Optional name for people (a DNS label); the deal's id or registered name identifies it.
	pub name: Option<String>,
	/// The pod's containers, in order; they share a network namespace and the volumes.
	pub containers: Vec<Container>,
	/// Volumes, shared by all replicas of the deal.
	pub volumes: Vec<Volume>,
	/// How many copies of the pod run.
	pub replicas: Replicas,
	/// How the pod is reached from outside.
	pub expose: Vec<Exposure>,
	/// Secrets the containers read through `env`.
	pub secrets: Vec<Secret>,
	/// What SLA probers request of the pod through the provider's gateway to find it up.
	pub health: Option<HealthCheck>,
}

/// The deal's health check: validators' probers `GET` this path with the deal's host name
/// through the provider's gateway, and the pod is up when the answer matches. A deal with SLA
/// terms carries it on chain, where the probers read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
	/// Absolute request path, visible ASCII (`/healthz`, `/status?probe=1`).
	pub path: String,
	/// The status the answer must have, 200 by default.
	pub status: u16,
	/// Text the answer's body must contain, if set.
	pub body: Option<String>,
}

/// One container of the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
	/// Unique within the pod, a DNS label (`web`).
	pub name: String,
	/// What the container runs: an image the provider pulls or has, or one the publisher
	/// delivers.
	pub image: Image,
	/// Replaces the image's entrypoint when not empty.
	pub command: Vec<String>,
	/// Replaces the image's default arguments when not empty.
	pub args: Vec<String>,
	/// Environment variables, by name.
	pub env: BTreeMap<String, EnvValue>,
	/// Ports the container listens on.
	pub ports: Vec<Port>,
	/// What the container reserves; billing and quotas are computed from it.
	pub resources: Resources,
	/// Volumes mounted into the container.
	pub mounts: Vec<Mount>,
}

/// A container's image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
	/// An image reference the provider pulls or already has (`docker.io/library/nginx:1.27`,
	/// `localhost/podchain-demo:latest`).
	Reference(String),
	/// An image the publisher delivers to the provider over libp2p, pinned by the digest of its
	/// OCI image manifest (linux/amd64). The deal's manifest hash covers the digest, so the
	/// provider runs exactly that image.
	Delivered(DeliveredImage),
	/// An OCI archive or layout on the publisher's machine. Only `podchain deploy` reads it: it
	/// becomes [`Image::Delivered`] before the manifest is hashed, and providers refuse it.
	Archive(ArchiveImage),
}

/// An image delivered by the publisher: see [`Image::Delivered`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveredImage {
	/// A repository name for people and logs (`app`, `team/api`); the digest identifies it.
	pub name: String,
	/// SHA-256 of the OCI image manifest.
	pub digest: [u8; 32],
}

impl DeliveredImage {
	/// `sha256:<64 lowercase hex digits>`.
	pub fn digest_text(&self) -> String {
		digest_text(&self.digest)
	}
}

/// `sha256:<64 lowercase hex digits>` of a digest.
pub fn digest_text(digest: &[u8; 32]) -> String {
	let mut text = String::with_capacity(71);
	text.push_str("sha256:");
	for byte in digest {
		text.push_str(&format!("{byte:02x}"));
	}
	text
}

/// An image still on the publisher's machine: see [`Image::Archive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveImage {
	/// Path of the OCI archive (`podman save --format oci-archive`) or OCI layout directory,
	/// relative to the manifest's directory unless absolute.
	pub path: String,
	/// Repository name to give the image; by default the archive's own name, else the
	/// container's.
	pub name: Option<String>,
}

impl Image {
	/// The registry reference, for [`Image::Reference`].
	pub fn reference(&self) -> Option<&str> {
		match self {
			Image::Reference(reference) => Some(reference),
			_ => None,
		}
	}

	/// The pinned image, for [`Image::Delivered`].
	pub fn delivered(&self) -> Option<&DeliveredImage> {
		match self {
			Image::Delivered(image) => Some(image),
			_ => None,
		}
	}
}

impl fmt::Display for Image {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		match self {
			Image::Reference(reference) => f.write_str(reference),
			Image::Delivered(image) => write!(f, "{}@{}", image.name, image.digest_text()),
			Image::Archive(archive) => write!(f, "archive {}", archive.path),
		}
	}
}

/// The value of an environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
	/// A literal value.
	Value(String),
	/// The value of `key` in the manifest's secret `secret`.
	Secret {
		/// Name of a secret in [`Manifest::secrets`].
		secret: String,
		/// A key of that secret's data.
		key: String,
	},
}

/// A port a container listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Port {
	/// 1 to 65535.
	pub port: u16,
	/// Transport protocol.
	pub protocol: Protocol,
}

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
	/// TCP, the default.
	#[default]
	Tcp,
	/// UDP.
	Udp,
}

impl Protocol {
	/// `tcp` or `udp`, as written in manifests.
	pub fn as_str(self) -> &'static str {
		match self {
			Protocol::Tcp => "tcp",
			Protocol::Udp => "udp",
		}
	}
}

impl fmt::Display for Protocol {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		f.write_str(self.as_str())
	}
}

/// What one container requests. Requests are also the limits: a deal pays for what it reserves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
	/// CPU, more than 0.
	pub cpu: Cpu,
	/// Memory, more than 0.
	pub memory: ByteSize,
	/// Whole GPUs, 0 by default.
	pub gpus: u32,
}

/// A volume mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
	/// Name of a volume in [`Manifest::volumes`].
	pub volume: String,
	/// Absolute path inside the container.
	pub path: String,
	/// Mount read-only; `false` by default.
	pub read_only: bool,
}

/// A persistent volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
	/// Unique within the manifest, a DNS label.
	pub name: String,
	/// Capacity, more than 0.
	pub size: ByteSize,
}

/// How many copies of the pod run. The deal reserves resources for `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replicas {
	/// At least 1, or 0 to scale to zero; defaults to 1.
	pub min: u32,
	/// At least `min`, at most [`MAX_REPLICAS`](crate::limits::MAX_REPLICAS); defaults to `min`.
	pub max: u32,
	/// Scale to zero: the pod is stopped after this many seconds without a request and
	/// started again by the next one (`min` 0, `max` 1, an HTTP exposure). `None` runs always.
	pub idle_seconds: Option<u32>,
}

impl Replicas {
	/// `min` to `max` pods, always running.
	pub const fn fixed(min: u32, max: u32) -> Self {
		Replicas { min, max, idle_seconds: None }
	}

	/// Whether the pod scales to zero when idle.
	pub const fn scales_to_zero(&self) -> bool {
		self.idle_seconds.is_some()
	}
}

impl Default for Replicas {
	fn default() -> Self {
		Replicas::fixed(1, 1)
	}
}

/// A way the pod is reached from outside. The port must be a TCP port some container declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exposure {
	/// HTTP(S) through the provider's ingress.
	Http {
		/// Host label; `None` uses the name registered for the deal (`register_name`).
		host: Option<String>,
		/// Container port the requests go to.
		port: u16,
	},
	/// A raw TCP port.
	Tcp {
		/// Container port the connections go to.
		port: u16,
	},
}

impl Exposure {
	/// The container port this exposure targets.
	pub fn port(&self) -> u16 {
		match self {
			Exposure::Http { port, .. } | Exposure::Tcp { port } => *port,
		}
	}
}

/// A named set of secret values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
	/// Unique within the manifest, a DNS label.
	pub name: String,
	/// Values by key; keys are `[-._a-zA-Z0-9]+`.
	pub data: BTreeMap<String, SecretValue>,
}

/// A secret's value. `Debug` prints `<redacted>`, and there is no `Display`: reading it takes an
/// explicit [`SecretValue::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
	/// Wraps a value.
	pub fn new(value: impl Into<String>) -> Self {
		SecretValue(value.into())
	}

	/// The value itself, to hand to the container runtime. Never log it.
	pub fn expose(&self) -> &str {
		&self.0
	}
}

impl fmt::Debug for SecretValue {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		f.write_str("<redacted>")
	}
}

impl HealthCheck {
	/// `GET /` answered 200: the check of a manifest that declares none.
	pub fn root() -> Self {
		HealthCheck { path: "/".into(), status: 200, body: None }
	}
}

/// What a deal must reserve for a manifest, in the registry's units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceTotals {
	/// Millicores: the containers' sum times `replicas.max`.
	pub cpu_millicores: u32,
	/// MiB: the containers' sum (each rounded up to whole MiB) times `replicas.max`.
	pub memory_mib: u32,
	/// GiB: the volumes' sum, each rounded up to whole GiB (volumes are not per replica).
	pub storage_gib: u32,
	/// GPUs: the containers' sum times `replicas.max`.
	pub gpus: u32,
}

impl Manifest {
	/// The images the publisher delivers, each digest once, in container order.
	pub fn delivered_images(&self) -> Vec<&DeliveredImage> {
		let mut images: Vec<&DeliveredImage> = Vec::new();
		for image in self.containers.iter().filter_map(|c| c.image.delivered()) {
			if !images.iter().any(|seen| seen.digest == image.digest) {
				images.push(image);
			}
		}
		images
	}

	/// The health check SLA probers use: the declared one, or [`HealthCheck::root`].
	pub fn health_check(&self) -> HealthCheck {
		self.health.clone().unwrap_or_else(HealthCheck::root)
	}

	/// What a deal for this manifest must reserve: each container's requests (memory rounded up
	/// to whole MiB per container) summed over the pod and multiplied by `replicas.max`, plus
	/// the volumes (rounded up to whole GiB each), which all replicas share.
	///
	/// Fails, rather than wrapping, if a total does not fit a `u32`; a parsed manifest never does.
	pub fn resources(&self) -> Result<ResourceTotals, ResourceOverflow> {
		let overflow = |resource| move || ResourceOverflow { resource };
		let replicas = self.replicas.max;
		let (mut cpu, mut memory, mut gpus) = (0u32, 0u32, 0u32);
		for c in &self.containers {
			let r = &c.resources;
			cpu = cpu.checked_add(r.cpu.millis()).ok_or_else(overflow("cpu"))?;
			let mib = u32::try_from(r.memory.mib_ceil()).map_err(|_| overflow("memory")())?;
			memory = memory.checked_add(mib).ok_or_else(overflow("memory"))?;
			gpus = gpus.checked_add(r.gpus).ok_or_else(overflow("gpus"))?;
		}
		let mut storage = 0u32;
		for v in &self.volumes {
			let gib = u32::try_from(v.size.gib_ceil()).map_err(|_| overflow("storage")())?;
			storage = storage.checked_add(gib).ok_or_else(overflow("storage"))?;
		}
		Ok(ResourceTotals {
			cpu_millicores: cpu.checked_mul(replicas).ok_or_else(overflow("cpu"))?,
			memory_mib: memory.checked_mul(replicas).ok_or_else(overflow("memory"))?,
			storage_gib: storage,
			gpus: gpus.checked_mul(replicas).ok_or_else(overflow("gpus"))?,
		})
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn secret_value_is_redacted() {
		let secret = Secret {
			name: "db".into(),
			data: BTreeMap::from([("password".into(), SecretValue::new("hunter2"))]),
		};
		let debug = format!("{secret:?} {secret:#?}");
		assert!(!debug.contains("hunter2"), "{debug}");
		assert!(debug.contains("password") && debug.contains("<redacted>"), "{debug}");
		assert_eq!(secret.data["password"].expose(), "hunter2");
	}
}
