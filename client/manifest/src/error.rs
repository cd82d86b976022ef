//! Errors: diagnostics with source positions, and the few failures that are not about the text.

use std::{fmt, path::PathBuf};

/// A position in the manifest's source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
	/// Line, starting at 1.
	pub line: usize,
	/// Column, starting at 1, counted in characters (Unicode scalar values), not bytes.
	pub column: usize,
}

impl fmt::Display for Pos {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		write!(f, "{}:{}", self.line, self.column)
	}
}

/// One problem found in a manifest: a syntax error, a schema error (wrong type, unknown or
/// missing field) or a broken rule (an unknown volume, a port used twice, ...).
///
/// Displays as `line:column: path: message`, leaving out the parts it does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostic {
	/// Where the problem is, in the dotted form `containers[0].resources.cpu`; empty for the
	/// document as a whole (syntax errors, size limits).
	pub path: String,
	/// Where the problem is in the text; `None` for a manifest that was not parsed from text
	/// (see [`Manifest::validate`](crate::Manifest::validate)) or for whole-document limits.
	pub pos: Option<Pos>,
	/// What is wrong, for a person; never contains a secret's value.
	pub message: String,
}

impl Diagnostic {
	pub(crate) fn new(path: String, pos: Option<Pos>, message: impl Into<String>) -> Self {
		Diagnostic { path, pos, message: message.into() }
	}
}

impl fmt::Display for Diagnostic {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		if let Some(pos) = self.pos {
			write!(f, "{pos}: ")?;
		}
		if !self.path.is_empty() {
			write!(f, "{}: ", self.path)?;
		}
		f.write_str(&self.message)
	}
}

/// Every problem found in a manifest, sorted by position (problems without one come last).
///
/// Displays one diagnostic per line, each prefixed with the origin (usually the file name) when
/// one is set: `web.yaml:12:9: containers[0].resources.cpu: "2x" is not a CPU quantity ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics {
	origin: Option<String>,
	items: Vec<Diagnostic>,
}

impl Diagnostics {
	/// Collects `items` in source order. Callers never build an empty list.
	pub(crate) fn new(mut items: Vec<Diagnostic>) -> Self {
		// A stable sort keeps rule order for problems at the same place.
		items.sort_by(|a, b| match (a.pos, b.pos) {
			(Some(a), Some(b)) => a.cmp(&b),
			(Some(_), None) => std::cmp::Ordering::Less,
			(None, Some(_)) => std::cmp::Ordering::Greater,
			(None, None) => std::cmp::Ordering::Equal,
		});
		Diagnostics { origin: None, items }
	}

	pub(crate) fn one(item: Diagnostic) -> Self {
		Diagnostics { origin: None, items: vec![item] }
	}

	/// Names where the manifest came from (a file name, `<stdin>`), to prefix every line with.
	#[must_use]
	pub fn with_origin(mut self, origin: impl Into<String>) -> Self {
		self.origin = Some(origin.into());
		self
	}

	/// Where the manifest came from, if set.
	pub fn origin(&self) -> Option<&str> {
		self.origin.as_deref()
	}

	/// The diagnostics, in source order.
	pub fn items(&self) -> &[Diagnostic] {
		&self.items
	}

	/// How many problems were found (at least one).
	pub fn len(&self) -> usize {
		self.items.len()
	}

	/// Always `false`: a `Diagnostics` is only made for at least one problem.
	pub fn is_empty(&self) -> bool {
		self.items.is_empty()
	}

	/// Takes the diagnostics out.
	pub fn into_vec(self) -> Vec<Diagnostic> {
		self.items
	}
}

impl fmt::Display for Diagnostics {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		for (i, item) in self.items.iter().enumerate() {
			if i > 0 {
				f.write_str("\n")?;
			}
			if let Some(origin) = &self.origin {
				write!(f, "{origin}:")?;
				// `file:12:9: msg`, but `file: msg` when there is no position.
				if item.pos.is_none() {
					f.write_str(" ")?;
				}
			}
			write!(f, "{item}")?;
		}
		Ok(())
	}
}

/// Why [`Manifest::from_path`](crate::Manifest::from_path) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
	/// The file could not be read.
	#[error("cannot read {}: {source}", path.display())]
	Io {
		/// The file.
		path: PathBuf,
		/// Why.
		source: std::io::Error,
	},
	/// The file was read but is not a valid manifest.
	#[error(transparent)]
	Invalid(#[from] Diagnostics),
}

/// A resource total that does not fit its unit's `u32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the total {resource} of the deal does not fit in a u32")]
pub struct ResourceOverflow {
	/// Which total overflowed: `"cpu"`, `"memory"`, `"storage"` or `"gpus"`.
	pub resource: &'static str,
}

#[cfg(test)]
mod tests {
	use super::*;

	fn diag(line: usize, path: &str, message: &str) -> Diagnostic {
		Diagnostic::new(path.into(), Some(Pos { line, column: 3 }), message)
	}

	#[test]
	fn display_one_per_line_in_source_order_with_origin() {
		let d = Diagnostics::new(vec![
			Diagnostic::new(String::new(), None, "too big"),
			diag(9, "replicas.max", "too many"),
			diag(2, "", "bad syntax"),
		])
		.with_origin("m.yaml");
		assert_eq!(
			d.to_string(),
			"m.yaml:2:3: bad syntax\nm.yaml:9:3: replicas.max: too many\nm.yaml: too big"
		);
		assert_eq!(d.len(), 3);
		assert!(!d.is_empty());
	}

	#[test]
	fn display_without_origin_or_position() {
		let d = Diagnostics::one(Diagnostic::new("containers".into(), None, "empty"));
		assert_eq!(d.to_string(), "containers: empty");
		assert_eq!(d.origin(), None);
	}
}
