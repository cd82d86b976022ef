//! podchain deployment manifests, shared by the publisher CLI (`podchain`) and the provider agent
//! (`podchain-agent`): parsing from YAML or JSON, validation with line-precise errors, the
//! resources a deal must reserve, and the canonical form whose blake2-256 hash a deal records
//! on chain as its `manifest_hash`.
//!
//! ```
//! use podchain_manifest::Manifest;
//!
//! let yaml = "version: podchain/v1
//! containers:
//!   - name: web
//!     image: localhost/podchain-demo:latest
//!     ports: [{ port: 8080 }]
//!     resources: { cpu: 100m, memory: 64Mi }
//! expose:
//!   - http: { port: 8080 }
//! ";
//! let manifest = Manifest::from_yaml(yaml).unwrap();
//! assert_eq!(manifest.resources().unwrap().memory_mib, 64);
//! let manifest_hash: [u8; 32] = manifest.hash();
//! # let _ = manifest_hash;
//!
//! let err = Manifest::from_yaml("version: podchain/v1\ncontainers: []\n").unwrap_err();
//! assert_eq!(err.to_string(), "2:13: containers: at least one container is required");
//! ```
//!
//! # Format (`podchain/v1`)
//!
//! YAML 1.2 (one document; no anchors, aliases or tags) or JSON. Unknown fields are errors. An
//! optional field set to `null` (in YAML, a key with nothing after it) is the same as leaving it
//! out. Strings must be strings: write `"8080"`, not `8080`, where text is expected.
//!
//! | field | type | |
//! | --- | --- | --- |
//! | `version` | string | required, `podchain/v1` |
//! | `name` | string | optional DNS label, for people |
//! | `containers` | list of container | required, 1 to 16 |
//! | `volumes` | list of `{name, size}` | `name` a DNS label, `size` a byte quantity |
//! | `replicas` | `{min, max, idle?}` | `min` default 1, `max` default `min`; `1 <= min <= max <= 100`; or, to scale to zero, `{min: 0, max: 1, idle}` (`max` default 1 there) |
//! | `expose` | list of `{http: {host?, port}}` or `{tcp: {port}}` | port: a TCP container port |
//! | `secrets` | list of `{name, data}` | `data`: key to string value |
//! | `health` | `{path, status?, body?}` | optional; what SLA probers request, see below |
//!
//! A container has `name` (DNS label, unique), `image` (see below), `command` and
//! `args` (lists of strings, replacing the image's entrypoint and arguments), `env` (variable
//! name to either a string or `{secret, key}`), `ports` (list of `{port, protocol}`, protocol
//! `tcp` (default) or `udp`, unique in the pod), `resources` (required: `cpu` and `memory`, more
//! than 0, and `gpus`, default 0) and `mounts` (list of `{volume, path, read_only}`, `read_only`
//! default false). An HTTP exposure without `host` is served under the name registered for the
//! deal. The limits on counts and sizes are in [`limits`].
//!
//! Images: `image` is either
//! - a Docker/OCI reference the provider pulls or already has (`docker.io/library/nginx:1.27`).
//!   It may not name the repositories providers keep delivered images in (`podchain-deal-*`,
//!   [`DELIVERED_PREFIX`]) nor read as an image id (all hex, or `sha256:...`), so that no deal
//!   can run another deal's image from a provider's shared store;
//! - `{digest: sha256:<hex>, name: app}`: an image the publisher delivers over libp2p, pinned by
//!   the SHA-256 of its OCI image manifest (linux/amd64). `name` is a repository name for
//!   people (lowercase path components); the digest is what runs;
//! - `{archive: ./app.oci.tar, name?: app}`: an OCI archive or layout directory on the
//!   publisher's machine. `podchain deploy` reads it, replaces it with `{digest, name}` and
//!   sends the image. Only the publisher's side accepts it: [`Manifest::from_bytes`], which
//!   providers use, refuses it.
//!
//! Scale to zero: `replicas: {min: 0, max: 1, idle: 5m}` stops the pod after `idle` (integer
//! seconds, or a whole number with `s`, `m` or `h`; 10 s to 24 h) without a request through the
//! provider's gateway, and the next request starts it again; it needs an `http` exposure.
//!
//! Health check: `health: {path: /healthz, status: 200, body: ok}` is what validators' SLA
//! probers request of the pod through the provider's gateway, under the deal's name: the pod is
//! up when the answer has `status` (default 200) and, if `body` is set, its body contains that
//! text. `path` starts with `/`, is visible ASCII and at most 128 bytes; `body` is 1 to 64
//! bytes of visible ASCII or spaces. It needs an `http` exposure without `host`. A manifest
//! without `health` is held to `GET /` answered 200 ([`Manifest::health_check`]). A deal with
//! SLA terms carries the check on chain (the CLI copies it into the terms), and the provider's
//! agent names the deal running only when that check is its manifest's and its pods pass it.
//!
//! Quantities: CPU is a decimal number of cores or of millicores with `m` (`1.5`, `500m`, `2`),
//! at most millicore precision. Memory and sizes are a decimal number of bytes with an optional
//! suffix `Ki Mi Gi Ti Pi` (powers of 1024) or `k K M G T P` (powers of 1000), rounded up to a
//! whole byte. Both may be written as strings or numbers, without exponents; an integer means
//! its value however YAML spells it (`0x400` is 1024).
//!
//! # Errors
//!
//! Every problem is reported, not only the first, as `line:column: path: message` (see
//! [`Diagnostics`]). Lines and columns start at 1; columns count characters. A syntax error stops
//! parsing; otherwise all schema errors (types, unknown, duplicate and missing fields,
//! quantities) are reported, and if there are none, all broken rules.
//!
//! # Canonical form
//!
//! [`Manifest::canonical_bytes`] encodes the *decoded* manifest, so source format, key order,
//! comments, whitespace, quoting, number and quantity spelling and omitted defaults do not
//! change it. It is JSON (RFC 8259) in UTF-8 with:
//!
//! - no whitespace outside strings;
//! - object keys sorted by their UTF-8 bytes, every field present, in the shape below;
//! - integers in decimal, without sign, leading zeros, fraction or exponent;
//! - strings escaped as follows and not otherwise: `"` as `\"`, `\` as `\\`, U+0008 `\b`,
//!   U+0009 `\t`, U+000A `\n`, U+000C `\f`, U+000D `\r`, other U+0000 to U+001F as `\u00xx`
//!   with lowercase hex; everything else, including `/`, U+007F and non-ASCII, as its UTF-8
//!   bytes;
//! - lists in the manifest's order; `env` and secret `data` as objects (sorted by key).
//!
//! The shape, with each field's value:
//!
//! ```text
//! {"containers":[{"args":[string...],"command":[string...],
//!                 "env":{NAME: string | {"key":string,"secret":string}},
//!                 "image":string | {"digest":"sha256:<hex>","name":string},
//!                 "mounts":[{"path":string,"read_only":bool,"volume":string}],
//!                 "name":string,
//!                 "ports":[{"port":int,"protocol":"tcp"|"udp"}],
//!                 "resources":{"cpu":"<millicores>m","gpus":int,"memory":int}}],
//!  "expose":[{"http":{"host":string|null,"port":int}} | {"tcp":{"port":int}}],
//!  "health":{"body":string|null,"path":string,"status":int},
//!  "name":string|null,
//!  "replicas":{"idle":int,"max":int,"min":int},
//!  "secrets":[{"data":{KEY:string},"name":string}],
//!  "version":"podchain/v1",
//!  "volumes":[{"name":string,"size":int}]}
//! ```
//!
//! Defaults are written out: `args`, `command`, `mounts`, `ports`, `expose`, `secrets`,
//! `volumes` as `[]`, `env` as `{}`, `gpus` 0, `protocol` `"tcp"`, `read_only` false, `replicas`
//! `{"max":1,"min":1}` (or `max` = `min`), absent `name`, `host` and health `body` as `null`.
//! `replicas.idle` and `health` are the only fields left out when absent (manifests without
//! them keep the hashes they had before they existed); `idle` is an integer of seconds (`5m` is
//! 300) and health `status` is written out (default 200). `protocol` is lowercase even when
//! written `TCP`. `cpu` is the string of the amount in millicores followed
//! by `m` (`1.5` and `1500m` are `"1500m"`, `2` is `"2000m"`); `memory` and `size` are integers
//! of bytes (`64Mi` is 67108864, `1.3Gi` is 1395864372, `1.5G` is 1500000000).
//!
//! The canonical form is itself a valid JSON manifest, and it encodes to the same bytes.
//!
//! In Python, given the normalised object `m`, the canonical bytes are
//! `json.dumps(m, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()` and the
//! hash `hashlib.blake2b(that, digest_size=32).digest()`.
//!
//! [`Manifest::hash`] is blake2b with a 32-byte output over those bytes, as Substrate's
//! `blake2_256`. Secrets' values are part of the canonical form (the provider must be able to
//! check them), so the canonical bytes are as secret as the manifest.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod canonical;
mod decode;
mod error;
mod json;
pub mod limits;
mod model;
mod names;
mod parse;
pub mod quantity;
mod tree;
mod validate;
mod yaml;

pub use canonical::blake2_256;
pub use decode::parse_digest;
pub use error::{Diagnostic, Diagnostics, Error, Pos, ResourceOverflow};
pub use model::{
	digest_text, ArchiveImage, Container, DeliveredImage, EnvValue, Exposure, HealthCheck, Image,
	Manifest, Mount, Port, Protocol, Replicas, ResourceTotals, Resources, Secret, SecretValue,
	Volume, VERSION_V1,
};
pub use names::DELIVERED_PREFIX;
pub use parse::Format;
pub use quantity::{ByteSize, Cpu};
