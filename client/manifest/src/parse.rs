//! Entry points: text or a file in, a valid [`Manifest`] or every problem out.

use std::{io::Read, path::Path};

use crate::{
	decode,
	error::{Diagnostic, Diagnostics, Error, Pos},
	json,
	limits::MAX_MANIFEST_BYTES,
	model::Manifest,
	validate, yaml,
};

/// A manifest's source format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
	/// YAML 1.2, one document, without anchors, aliases or tags.
	Yaml,
	/// JSON (RFC 8259).
	Json,
}

impl Format {
	/// JSON if the first character after whitespace (and a byte order mark) is `{`, else YAML.
	/// A YAML flow mapping (`{a: 1}`) is therefore read as JSON: use [`Manifest::from_yaml`].
	pub fn detect(src: &str) -> Format {
		let src = src.strip_prefix('\u{feff}').unwrap_or(src);
		if src.trim_start().starts_with('{') {
			Format::Json
		} else {
			Format::Yaml
		}
	}
}

impl Manifest {
	/// Parses and validates a YAML manifest.
	pub fn from_yaml(src: &str) -> Result<Manifest, Diagnostics> {
		Manifest::parse_as(src, Format::Yaml)
	}

	/// Parses and validates a JSON manifest.
	pub fn from_json(src: &str) -> Result<Manifest, Diagnostics> {
		Manifest::parse_as(src, Format::Json)
	}

	/// Parses and validates a manifest in the format [`Format::detect`] finds.
	pub fn parse(src: &str) -> Result<Manifest, Diagnostics> {
		Manifest::parse_as(src, Format::detect(src))
	}

	/// Parses and validates a manifest received as bytes (the agent's case): UTF-8, format
	/// detected. A received manifest must be resolved: an `archive` image (a file on the
	/// publisher's machine) is refused.
	pub fn from_bytes(bytes: &[u8]) -> Result<Manifest, Diagnostics> {
		check_size(bytes.len())?;
		let src = std::str::from_utf8(bytes).map_err(|e| {
			// Lossless: the bytes before valid_up_to are valid UTF-8.
			let before = String::from_utf8_lossy(&bytes[..e.valid_up_to()]);
			let line = before.matches('\n').count() + 1;
			let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
			Diagnostics::one(Diagnostic::new(
				String::new(),
				Some(Pos { line, column }),
				"the manifest is not valid UTF-8",
			))
		})?;
		Manifest::parse_checked(src, Format::detect(src), Sources::Resolved)
	}

	/// Reads, parses and validates a manifest file: `.json` as JSON, `.yaml` and `.yml` as
	/// YAML, anything else as detected. Diagnostics are prefixed with the path.
	pub fn from_path(path: &Path) -> Result<Manifest, Error> {
		let io = |source| Error::Io { path: path.to_owned(), source };
		// Read at most one byte past the limit: a huge file (or endless pipe) is never loaded.
		let mut bytes = Vec::new();
		std::fs::File::open(path)
			.and_then(|f| f.take(MAX_MANIFEST_BYTES as u64 + 1).read_to_end(&mut bytes))
			.map_err(io)?;
		let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
		let parsed = match (extension.as_deref(), std::str::from_utf8(&bytes)) {
			(Some("json"), Ok(src)) => Manifest::from_json(src),
			(Some("yaml" | "yml"), Ok(src)) => Manifest::from_yaml(src),
			// Another extension, or bad UTF-8 (which from_bytes locates).
			_ => Manifest::from_bytes(&bytes),
		};
		Ok(parsed.map_err(|d| d.with_origin(path.display().to_string()))?)
	}

	/// Parses and validates `src` as `format`.
	pub fn parse_as(src: &str, format: Format) -> Result<Manifest, Diagnostics> {
		Manifest::parse_checked(src, format, Sources::Local)
	}

	fn parse_checked(src: &str, format: Format, sources: Sources) -> Result<Manifest, Diagnostics> {
		check_size(src.len())?;
		let tree = match format {
			Format::Yaml => yaml::parse(src),
			Format::Json => json::parse(src.strip_prefix('\u{feff}').unwrap_or(src)),
		}
		.map_err(Diagnostics::one)?;
		let (manifest, positions) = decode::decode(&tree).map_err(Diagnostics::new)?;
		let mut problems = validate::check(&manifest, &positions);
		if sources == Sources::Resolved {
			problems.extend(validate::unresolved_archives(&manifest, &positions));
		}
		if problems.is_empty() {
			Ok(manifest)
		} else {
			Err(Diagnostics::new(problems))
		}
	}
}

/// Whether a manifest may still name files on the publisher's machine.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sources {
	/// The publisher's own manifest: `archive` images are allowed (the CLI resolves them).
	Local,
	/// A manifest received by a provider: every image is a reference or a pinned digest.
	Resolved,
}

fn check_size(len: usize) -> Result<(), Diagnostics> {
	if len > MAX_MANIFEST_BYTES {
		let message = format!("the manifest is larger than {MAX_MANIFEST_BYTES} bytes");
		return Err(Diagnostics::one(Diagnostic::new(String::new(), None, message)));
	}
	Ok(())
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn detects_format() {
		assert_eq!(Format::detect("  \n{\"a\": 1}"), Format::Json);
		assert_eq!(Format::detect("\u{feff}{}"), Format::Json);
		assert_eq!(Format::detect("a: {b: 1}"), Format::Yaml);
		assert_eq!(Format::detect(""), Format::Yaml);
	}

	#[test]
	fn size_is_bounded_before_parsing() {
		let big = "#".repeat(MAX_MANIFEST_BYTES + 1);
		let err = Manifest::parse(&big).unwrap_err().to_string();
		assert_eq!(err, "the manifest is larger than 65536 bytes");
		// Exactly at the limit is accepted as far as size goes (and is then an empty manifest).
		let err = Manifest::parse(&"#".repeat(MAX_MANIFEST_BYTES)).unwrap_err().to_string();
		assert_eq!(err, "invalid YAML: the manifest is empty");
	}

	#[test]
	fn invalid_utf8_is_located() {
		let err = Manifest::from_bytes(b"version: x\nname: \xff\n").unwrap_err();
		assert_eq!(err.to_string(), "2:7: the manifest is not valid UTF-8");
	}
}
