//! Bounds on manifests, so that a publisher cannot make a provider parse, store or deploy
//! something unreasonably large. Parsing and [`Manifest::validate`](crate::Manifest::validate)
//! enforce every one of them.

/// Largest accepted manifest source, in bytes (YAML or JSON text).
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024;
/// Largest canonical encoding, in bytes. The canonical form is what a publisher delivers and
/// a provider parses, so it must itself be an acceptable source: normalisation can grow a
/// manifest (defaults, escapes such as `\u0000` for YAML's `\0`), and a manifest whose
/// canonical form outgrows the source limit is refused.
pub const MAX_CANONICAL_BYTES: usize = MAX_MANIFEST_BYTES;
/// Deepest nesting of lists and mappings in the source. A valid manifest needs 5.
pub const MAX_DEPTH: usize = 32;

/// Containers in a pod.
pub const MAX_CONTAINERS: usize = 16;
/// Items in a container's `command`, and separately in its `args`.
pub const MAX_ARGS: usize = 256;
/// Environment variables per container.
pub const MAX_ENV: usize = 128;
/// Ports per container.
pub const MAX_PORTS: usize = 32;
/// Volume mounts per container.
pub const MAX_MOUNTS: usize = 16;
/// Volumes in a manifest.
pub const MAX_VOLUMES: usize = 16;
/// Exposures in a manifest.
pub const MAX_EXPOSE: usize = 16;
/// Secrets in a manifest.
pub const MAX_SECRETS: usize = 16;
/// Keys in one secret.
pub const MAX_SECRET_KEYS: usize = 64;

/// Shortest `replicas.idle`: a pod stopped sooner would spend more on starts than it saves.
pub const MIN_IDLE_SECONDS: u32 = 10;
/// Longest `replicas.idle`.
pub const MAX_IDLE_SECONDS: u32 = 24 * 3600;
/// Upper bound of `replicas.max`.
pub const MAX_REPLICAS: u32 = 100;
/// CPU one container may request, in millicores (256 cores).
pub const MAX_CPU_MILLICORES: u32 = 256_000;
/// Memory one container may request, in bytes (4 TiB).
pub const MAX_MEMORY_BYTES: u64 = 4 << 40;
/// GPUs one container may request.
pub const MAX_GPUS: u32 = 16;
/// Size of one volume, in bytes (64 TiB).
pub const MAX_VOLUME_BYTES: u64 = 64 << 40;

/// Longest image reference, in bytes.
pub const MAX_IMAGE_LEN: usize = 512;
/// Longest mount path, in bytes.
pub const MAX_PATH_LEN: usize = 1024;
/// Longest environment variable name, in bytes.
pub const MAX_ENV_NAME_LEN: usize = 128;
/// Longest secret key, in bytes (as Kubernetes).
pub const MAX_SECRET_KEY_LEN: usize = 253;
/// Longest health check path, in bytes (the chain stores it in the deal's SLA terms).
pub const MAX_HEALTH_PATH_LEN: usize = 128;
/// Longest text a health check's body must contain, in bytes.
pub const MAX_HEALTH_BODY_LEN: usize = 64;
