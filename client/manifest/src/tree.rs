//! The format-neutral source tree that YAML and JSON are both read into, with a position on
//! every node, and the paths (`containers[0].image`) that diagnostics name.

use std::{collections::BTreeMap, fmt};

use crate::error::Pos;

/// A parsed value and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
	pub pos: Pos,
	pub value: Value,
}

/// A value as written. Numbers keep their text so that nothing is lost to floats and so that a
/// quantity like `1.50` reads the same from YAML and JSON.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
	Null,
	Bool(bool),
	/// An integer literal: JSON `-?[0-9]+`, or YAML 1.2 core schema (also `0x..`, `0o..`, `+`).
	Int(String),
	/// Any other number literal (fraction, exponent, YAML `.inf`, `.nan`).
	Float(String),
	Str(String),
	Seq(Vec<Node>),
	/// Entries in source order; duplicate keys are kept here and reported by the decoder.
	Map(Vec<Entry>),
}

/// A mapping entry. Keys are always strings: JSON's are, and YAML keys must be scalars, whose
/// text is taken as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
	pub key: String,
	pub key_pos: Pos,
	pub value: Node,
}

impl Value {
	/// How a diagnostic names what was found; `reveal` adds the literal for scalars.
	pub fn describe(&self, reveal: bool) -> String {
		match self {
			Value::Null => "nothing (null)".into(),
			Value::Bool(b) if reveal => format!("the boolean {b}"),
			Value::Bool(_) => "a boolean".into(),
			Value::Int(t) | Value::Float(t) if reveal => format!("the number {t}"),
			Value::Int(_) | Value::Float(_) => "a number".into(),
			Value::Str(_) => "a string".into(),
			Value::Seq(_) => "a list".into(),
			Value::Map(_) => "a mapping".into(),
		}
	}
}

/// One step of a [`Path`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Seg {
	Key(String),
	Index(usize),
}

/// Where a value sits in the manifest: `containers[0].env.PORT`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Path(Vec<Seg>);

impl Path {
	pub fn root() -> Self {
		Path(Vec::new())
	}

	pub fn key(&self, key: &str) -> Self {
		let mut segs = self.0.clone();
		segs.push(Seg::Key(key.to_owned()));
		Path(segs)
	}

	pub fn index(&self, index: usize) -> Self {
		let mut segs = self.0.clone();
		segs.push(Seg::Index(index));
		Path(segs)
	}

	fn parent(&self) -> Option<Self> {
		let (_, rest) = self.0.split_last()?;
		Some(Path(rest.to_vec()))
	}
}

impl fmt::Display for Path {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		for (i, seg) in self.0.iter().enumerate() {
			match seg {
				Seg::Index(n) => write!(f, "[{n}]")?,
				// Keys that are not plain words (`tls.crt`) are quoted so the path stays readable.
				Seg::Key(k) if is_word(k) => {
					if i > 0 {
						f.write_str(".")?;
					}
					f.write_str(k)?;
				}
				Seg::Key(k) => write!(f, "[{k:?}]")?,
			}
		}
		Ok(())
	}
}

fn is_word(s: &str) -> bool {
	let mut chars = s.chars();
	chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
		&& chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Where each decoded value came from, so that rules checked on the decoded [`Manifest`] can
/// still point into the text.
///
/// [`Manifest`]: crate::Manifest
#[derive(Debug, Default)]
pub(crate) struct Positions(BTreeMap<Path, Pos>);

impl Positions {
	pub fn insert(&mut self, path: &Path, pos: Pos) {
		self.0.insert(path.clone(), pos);
	}

	/// The position of `path`, or of its nearest recorded ancestor (a defaulted field has none
	/// of its own, its parent mapping does).
	pub fn find(&self, path: &Path) -> Option<Pos> {
		let mut path = Some(path.clone());
		while let Some(p) = path {
			if let Some(pos) = self.0.get(&p) {
				return Some(*pos);
			}
			path = p.parent();
		}
		None
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn path_display() {
		let p = Path::root().key("containers").index(0).key("env").key("DB_PASS");
		assert_eq!(p.to_string(), "containers[0].env.DB_PASS");
		let p = Path::root().key("secrets").index(1).key("data").key("tls.crt");
		assert_eq!(p.to_string(), r#"secrets[1].data["tls.crt"]"#);
		assert_eq!(Path::root().to_string(), "");
	}

	#[test]
	fn positions_fall_back_to_ancestors() {
		let mut positions = Positions::default();
		let container = Path::root().key("containers").index(0);
		positions.insert(&container, Pos { line: 4, column: 5 });
		assert_eq!(positions.find(&container.key("mounts")), Some(Pos { line: 4, column: 5 }));
		assert_eq!(positions.find(&Path::root().key("volumes")), None);
	}
}
