//! The canonical encoding of a manifest and its blake2-256 hash, the deal's `manifest_hash`.
//! The format is specified in the crate documentation; change nothing here without changing it
//! there, and know that any change breaks every hash already on chain.

use std::collections::BTreeMap;

use blake2::{digest::consts::U32, Blake2b, Digest};

use crate::model::{EnvValue, Exposure, Image, Manifest};

/// A JSON value with only what the canonical form needs; objects sort their keys by bytes.
enum Canon<'a> {
	Null,
	Bool(bool),
	Int(u64),
	Str(&'a str),
	String(String),
	List(Vec<Canon<'a>>),
	Obj(BTreeMap<&'a str, Canon<'a>>),
}

fn obj<'a, const N: usize>(fields: [(&'a str, Canon<'a>); N]) -> Canon<'a> {
	Canon::Obj(BTreeMap::from(fields))
}

fn strs(items: &[String]) -> Canon<'_> {
	Canon::List(items.iter().map(|s| Canon::Str(s)).collect())
}

fn opt_str(s: &Option<String>) -> Canon<'_> {
	s.as_deref().map_or(Canon::Null, Canon::Str)
}

/// `health` only when set: manifests without it keep the hashes they always had.
fn manifest(m: &Manifest) -> Canon<'_> {
	let mut fields = BTreeMap::from([
		("version", Canon::Str(&m.version)),
		("name", opt_str(&m.name)),
		("containers", Canon::List(m.containers.iter().map(container).collect())),
		("volumes", Canon::List(m.volumes.iter().map(volume).collect())),
		("replicas", replicas(&m.replicas)),
		("expose", Canon::List(m.expose.iter().map(exposure).collect())),
		("secrets", Canon::List(m.secrets.iter().map(secret).collect())),
	]);
	if let Some(h) = &m.health {
		let check = obj([
			("path", Canon::Str(&h.path)),
			("status", Canon::Int(h.status.into())),
			("body", opt_str(&h.body)),
		]);
		fields.insert("health", check);
	}
	Canon::Obj(fields)
}

/// `idle` only when set: manifests without it keep the hashes they always had.
fn replicas(r: &crate::model::Replicas) -> Canon<'static> {
	let mut fields =
		BTreeMap::from([("min", Canon::Int(r.min.into())), ("max", Canon::Int(r.max.into()))]);
	if let Some(idle) = r.idle_seconds {
		fields.insert("idle", Canon::Int(idle.into()));
	}
	Canon::Obj(fields)
}

fn container(c: &crate::model::Container) -> Canon<'_> {
	let env = c
		.env
		.iter()
		.map(|(name, value)| {
			let value = match value {
				EnvValue::Value(v) => Canon::Str(v),
				EnvValue::Secret { secret, key } => {
					obj([("secret", Canon::Str(secret)), ("key", Canon::Str(key))])
				}
			};
			(name.as_str(), value)
		})
		.collect();
	let ports = c
		.ports
		.iter()
		.map(|p| {
			obj([
				("port", Canon::Int(p.port.into())),
				("protocol", Canon::Str(p.protocol.as_str())),
			])
		})
		.collect();
	let mounts = c
		.mounts
		.iter()
		.map(|m| {
			obj([
				("volume", Canon::Str(&m.volume)),
				("path", Canon::Str(&m.path)),
				("read_only", Canon::Bool(m.read_only)),
			])
		})
		.collect();
	let r = &c.resources;
	let cpu = format!("{}m", r.cpu.millis());
	obj([
		("name", Canon::Str(&c.name)),
		("image", image(&c.image)),
		("command", strs(&c.command)),
		("args", strs(&c.args)),
		("env", Canon::Obj(env)),
		("ports", Canon::List(ports)),
		(
			"resources",
			obj([
				("cpu", Canon::String(cpu)),
				("memory", Canon::Int(r.memory.bytes())),
				("gpus", Canon::Int(r.gpus.into())),
			]),
		),
		("mounts", Canon::List(mounts)),
	])
}

fn image(image: &Image) -> Canon<'_> {
	match image {
		Image::Reference(reference) => Canon::Str(reference),
		Image::Delivered(delivered) => obj([
			("name", Canon::Str(&delivered.name)),
			("digest", Canon::String(delivered.digest_text())),
		]),
		// Only the CLI holds these, and resolves them before hashing; providers refuse them.
		Image::Archive(archive) => {
			obj([("archive", Canon::Str(&archive.path)), ("name", opt_str(&archive.name))])
		}
	}
}

fn volume(v: &crate::model::Volume) -> Canon<'_> {
	obj([("name", Canon::Str(&v.name)), ("size", Canon::Int(v.size.bytes()))])
}

fn exposure(e: &Exposure) -> Canon<'_> {
	match e {
		Exposure::Http { host, port } => {
			obj([("http", obj([("host", opt_str(host)), ("port", Canon::Int((*port).into()))]))])
		}
		Exposure::Tcp { port } => obj([("tcp", obj([("port", Canon::Int((*port).into()))]))]),
	}
}

fn secret(s: &crate::model::Secret) -> Canon<'_> {
	let data = s.data.iter().map(|(k, v)| (k.as_str(), Canon::Str(v.expose()))).collect();
	obj([("name", Canon::Str(&s.name)), ("data", Canon::Obj(data))])
}

fn write(value: &Canon<'_>, out: &mut Vec<u8>) {
	match value {
		Canon::Null => out.extend_from_slice(b"null"),
		Canon::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
		Canon::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
		Canon::Str(s) => write_str(s, out),
		Canon::String(s) => write_str(s, out),
		Canon::List(items) => {
			out.push(b'[');
			for (i, item) in items.iter().enumerate() {
				if i > 0 {
					out.push(b',');
				}
				write(item, out);
			}
			out.push(b']');
		}
		Canon::Obj(fields) => {
			out.push(b'{');
			for (i, (key, item)) in fields.iter().enumerate() {
				if i > 0 {
					out.push(b',');
				}
				write_str(key, out);
				out.push(b':');
				write(item, out);
			}
			out.push(b'}');
		}
	}
}

/// `"` and `\` escaped with a backslash; U+0008, U+0009, U+000A, U+000C, U+000D as `\b \t \n \f
/// \r`; other characters below U+0020 as `\u00xx` (lowercase hex); everything else as UTF-8.
fn write_str(s: &str, out: &mut Vec<u8>) {
	out.push(b'"');
	for c in s.chars() {
		match c {
			'"' => out.extend_from_slice(b"\\\""),
			'\\' => out.extend_from_slice(b"\\\\"),
			'\u{8}' => out.extend_from_slice(b"\\b"),
			'\t' => out.extend_from_slice(b"\\t"),
			'\n' => out.extend_from_slice(b"\\n"),
			'\u{c}' => out.extend_from_slice(b"\\f"),
			'\r' => out.extend_from_slice(b"\\r"),
			c if u32::from(c) < 0x20 => {
				out.extend_from_slice(format!("\\u{:04x}", u32::from(c)).as_bytes())
			}
			c => {
				let mut buf = [0; 4];
				out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
			}
		}
	}
	out.push(b'"');
}

/// blake2b with a 32-byte output, as Substrate's `sp_crypto_hashing::blake2_256`.
pub fn blake2_256(data: &[u8]) -> [u8; 32] {
	Blake2b::<U32>::digest(data).into()
}

impl Manifest {
	/// The canonical encoding (see the crate documentation): compact JSON with sorted keys,
	/// every field present, quantities in one spelling. Identical for every spelling of the same
	/// manifest, itself a valid JSON manifest that encodes to the same bytes, and it includes
	/// the secrets' values.
	pub fn canonical_bytes(&self) -> Vec<u8> {
		let mut out = Vec::new();
		write(&manifest(self), &mut out);
		out
	}

	/// blake2-256 of [`Manifest::canonical_bytes`]: the deal's `manifest_hash`.
	pub fn hash(&self) -> [u8; 32] {
		blake2_256(&self.canonical_bytes())
	}

	/// Whether this manifest is the one a deal committed to with `manifest_hash`.
	pub fn matches_hash(&self, manifest_hash: &[u8; 32]) -> bool {
		self.hash() == *manifest_hash
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	fn hex(bytes: &[u8]) -> String {
		bytes.iter().map(|b| format!("{b:02x}")).collect()
	}

	#[test]
	fn blake2_256_known_vectors() {
		assert_eq!(
			hex(&blake2_256(b"")),
			"0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
		);
		// Python: hashlib.blake2b(b"abc", digest_size=32).hexdigest()
		assert_eq!(
			hex(&blake2_256(b"abc")),
			"bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"
		);
	}

	#[test]
	fn string_escapes() {
		let mut out = Vec::new();
		write_str("a\"b\\c\u{8}\t\n\u{c}\r\u{0}\u{1f}\u{7f}/é😀", &mut out);
		assert_eq!(
			String::from_utf8(out).unwrap(),
			"\"a\\\"b\\\\c\\b\\t\\n\\f\\r\\u0000\\u001f\u{7f}/é😀\""
		);
	}

	#[test]
	fn objects_sort_keys_by_bytes() {
		let mut out = Vec::new();
		let value = obj([
			("b", Canon::Int(1)),
			("B", Canon::Null),
			("a_b", Canon::Bool(false)),
			("ab", Canon::List(vec![])),
		]);
		write(&value, &mut out);
		assert_eq!(String::from_utf8(out).unwrap(), r#"{"B":null,"a_b":false,"ab":[],"b":1}"#);
	}
}
