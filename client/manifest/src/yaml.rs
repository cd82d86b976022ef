//! YAML to [`Node`], from saphyr-parser's event stream.
//!
//! Events (rather than a ready-made document tree) give every key and value its position and let
//! us refuse, before anything is expanded, what a manifest never needs and a hostile one could
//! abuse: aliases (exponential "billion laughs" expansion), tags, several documents, deep nesting.
//! Plain scalars are typed with the YAML 1.2 core schema, so `yes` and `no` stay strings.

use saphyr_parser::{Event, Parser, ScalarStyle, Span, StrInput};

use crate::{
	error::{Diagnostic, Pos},
	limits::MAX_DEPTH,
	tree::{Entry, Node, Value},
};

type Result<T> = std::result::Result<T, Diagnostic>;

/// Parses one YAML document into a tree. The first problem stops it: after a syntax error the
/// rest of the text cannot be trusted.
pub(crate) fn parse(src: &str) -> Result<Node> {
	let mut reader = Reader { parser: Parser::new_from_str(src) };
	reader.expect_stream_start()?;
	let (event, span) = reader.next()?;
	match event {
		Event::DocumentStart(_) => {}
		Event::StreamEnd => {
			return Err(Diagnostic::new(String::new(), None, "invalid YAML: the manifest is empty"))
		}
		other => return Err(unexpected(&other, &span)),
	}
	let (event, span) = reader.next()?;
	let root = reader.node(event, span, 0)?;
	let (event, span) = reader.next()?;
	if !matches!(event, Event::DocumentEnd) {
		return Err(unexpected(&event, &span));
	}
	match reader.next()? {
		(Event::StreamEnd, _) => Ok(root),
		(_, span) => Err(error(pos(&span), "only one YAML document is allowed")),
	}
}

struct Reader<'a> {
	parser: Parser<'a, StrInput<'a>>,
}

impl<'a> Reader<'a> {
	fn next(&mut self) -> Result<(Event<'a>, Span)> {
		match self.parser.next_event() {
			Some(Ok(ev)) => Ok(ev),
			Some(Err(e)) => {
				let m = e.marker();
				Err(error(Pos { line: m.line(), column: m.col() + 1 }, e.info()))
			}
			// The parser ends with StreamEnd; running past it would be our bug, reported as such.
			None => Err(error(Pos { line: 1, column: 1 }, "unexpected end of input")),
		}
	}

	fn expect_stream_start(&mut self) -> Result<()> {
		match self.next()? {
			(Event::StreamStart, _) => Ok(()),
			(other, span) => Err(unexpected(&other, &span)),
		}
	}

	/// Builds the node that starts with `event`, `depth` collections deep. Recursion is bounded by
	/// [`MAX_DEPTH`].
	fn node(&mut self, event: Event<'a>, span: Span, depth: usize) -> Result<Node> {
		let at = pos(&span);
		let collection = matches!(event, Event::SequenceStart(..) | Event::MappingStart(..));
		if collection && depth >= MAX_DEPTH {
			return Err(error(at, format!("nested too deeply (at most {MAX_DEPTH} levels)")));
		}
		let value = match event {
			Event::Scalar(text, style, anchor, tag) => {
				refuse_extras(at, anchor, tag.is_some())?;
				if style == ScalarStyle::Plain {
					resolve_plain(&text)
				} else {
					Value::Str(text.into_owned())
				}
			}
			Event::SequenceStart(anchor, tag) => {
				refuse_extras(at, anchor, tag.is_some())?;
				let mut items = Vec::new();
				loop {
					let (event, span) = self.next()?;
					if matches!(event, Event::SequenceEnd) {
						break;
					}
					items.push(self.node(event, span, depth + 1)?);
				}
				Value::Seq(items)
			}
			Event::MappingStart(anchor, tag) => {
				refuse_extras(at, anchor, tag.is_some())?;
				let mut entries = Vec::new();
				loop {
					let (event, span) = self.next()?;
					let key_pos = pos(&span);
					let key = match event {
						Event::MappingEnd => break,
						Event::Scalar(text, _, anchor, tag) => {
							refuse_extras(key_pos, anchor, tag.is_some())?;
							text.into_owned()
						}
						Event::Alias(_) => return Err(alias(key_pos)),
						_ => return Err(error(key_pos, "mapping keys must be plain strings")),
					};
					let (event, span) = self.next()?;
					let value = self.node(event, span, depth + 1)?;
					entries.push(Entry { key, key_pos, value });
				}
				Value::Map(entries)
			}
			Event::Alias(_) => return Err(alias(at)),
			other => return Err(unexpected(&other, &span)),
		};
		Ok(Node { pos: at, value })
	}
}

/// Types a plain (unquoted) scalar with the YAML 1.2 core schema.
fn resolve_plain(text: &str) -> Value {
	match text {
		"" | "~" | "null" | "Null" | "NULL" => Value::Null,
		"true" | "True" | "TRUE" => Value::Bool(true),
		"false" | "False" | "FALSE" => Value::Bool(false),
		_ if is_core_int(text) => Value::Int(text.to_owned()),
		_ if is_core_float(text) => Value::Float(text.to_owned()),
		_ => Value::Str(text.to_owned()),
	}
}

/// `[-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+`
fn is_core_int(t: &str) -> bool {
	if let Some(oct) = t.strip_prefix("0o") {
		return !oct.is_empty() && oct.bytes().all(|b| (b'0'..=b'7').contains(&b));
	}
	if let Some(hex) = t.strip_prefix("0x") {
		return !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
	}
	let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
	!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? | [-+]?\.(inf|Inf|INF) | \.(nan|NaN|NAN)`
fn is_core_float(t: &str) -> bool {
	if matches!(t, ".nan" | ".NaN" | ".NAN") {
		return true;
	}
	let t = t.strip_prefix(['-', '+']).unwrap_or(t);
	if matches!(t, ".inf" | ".Inf" | ".INF") {
		return true;
	}
	let (mantissa, exponent) = match t.find(['e', 'E']) {
		Some(i) => (&t[..i], Some(&t[i + 1..])),
		None => (t, None),
	};
	let (int, frac) = match mantissa.split_once('.') {
		Some((int, frac)) => (int, Some(frac)),
		None => (mantissa, None),
	};
	let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
	let mantissa_ok = match frac {
		Some(frac) => all_digits(int) && all_digits(frac) && !(int.is_empty() && frac.is_empty()),
		None => !int.is_empty() && all_digits(int),
	};
	// `.5` needs its fraction digits: YAML's `\.[0-9]+` branch.
	let frac_ok = !(int.is_empty() && frac.is_some_and(str::is_empty));
	let exponent_ok = exponent.is_none_or(|e| {
		let e = e.strip_prefix(['-', '+']).unwrap_or(e);
		!e.is_empty() && all_digits(e)
	});
	mantissa_ok && frac_ok && exponent_ok
}

fn refuse_extras(at: Pos, anchor: usize, tagged: bool) -> Result<()> {
	if anchor != 0 {
		return Err(error(at, "YAML anchors (&name) are not supported in manifests"));
	}
	if tagged {
		return Err(error(at, "YAML tags (!tag) are not supported in manifests"));
	}
	Ok(())
}

fn alias(at: Pos) -> Diagnostic {
	error(at, "YAML aliases (*name) are not supported in manifests")
}

fn unexpected(event: &Event<'_>, span: &Span) -> Diagnostic {
	error(pos(span), format!("unexpected YAML event {event:?}"))
}

fn pos(span: &Span) -> Pos {
	Pos { line: span.start.line(), column: span.start.col() + 1 }
}

fn error(at: Pos, message: impl AsRef<str>) -> Diagnostic {
	Diagnostic::new(String::new(), Some(at), format!("invalid YAML: {}", message.as_ref()))
}

#[cfg(test)]
mod tests {
	use super::*;

	fn str_node(line: usize, column: usize, s: &str) -> Node {
		Node { pos: Pos { line, column }, value: Value::Str(s.into()) }
	}

	#[test]
	fn builds_tree_with_positions() {
		let node = parse("# c\na: x\nb:\n  - 'y'\n").unwrap();
		let Value::Map(entries) = node.value else { panic!("not a map") };
		assert_eq!(entries.len(), 2);
		assert_eq!(entries[0].key, "a");
		assert_eq!(entries[0].key_pos, Pos { line: 2, column: 1 });
		assert_eq!(entries[0].value, str_node(2, 4, "x"));
		assert_eq!(entries[1].value.value, Value::Seq(vec![str_node(4, 5, "y")]));
	}

	#[test]
	fn core_schema_typing() {
		for (text, expected) in [
			("~", Value::Null),
			("", Value::Null),
			("True", Value::Bool(true)),
			("yes", Value::Str("yes".into())),
			("no", Value::Str("no".into())),
			("0x1F", Value::Int("0x1F".into())),
			("0o17", Value::Int("0o17".into())),
			("-12", Value::Int("-12".into())),
			("1.5", Value::Float("1.5".into())),
			(".5", Value::Float(".5".into())),
			("5.", Value::Float("5.".into())),
			("1e3", Value::Float("1e3".into())),
			("-.inf", Value::Float("-.inf".into())),
			(".NaN", Value::Float(".NaN".into())),
			(".", Value::Str(".".into())),
			("1e", Value::Str("1e".into())),
			("0x", Value::Str("0x".into())),
			("500m", Value::Str("500m".into())),
			("1.2.3", Value::Str("1.2.3".into())),
		] {
			assert_eq!(resolve_plain(text), expected, "{text:?}");
		}
		// Quoted scalars are always strings.
		assert_eq!(parse("'1'").unwrap().value, Value::Str("1".into()));
	}

	#[test]
	fn refuses_aliases_tags_and_documents() {
		let cases = [
			("a: &x 1\nb: *x\n", "1:4: invalid YAML: YAML anchors (&name) are not supported"),
			("a: !!str 1\n", "1:4: invalid YAML: YAML tags (!tag) are not supported"),
			("a: 1\n---\nb: 2\n", "2:1: invalid YAML: only one YAML document is allowed"),
			("", "invalid YAML: the manifest is empty"),
			("# only a comment\n", "invalid YAML: the manifest is empty"),
			("? [a]\n: 1\n", "1:3: invalid YAML: mapping keys must be plain strings"),
		];
		for (src, expected) in cases {
			let err = parse(src).unwrap_err().to_string();
			assert!(err.starts_with(expected), "{src:?}: {err}");
		}
	}

	#[test]
	fn syntax_error_has_position() {
		let err = parse("a: b\n  c: d\n").unwrap_err();
		assert_eq!(err.pos.map(|p| p.line), Some(2));
		assert!(err.message.starts_with("invalid YAML: "), "{}", err.message);
	}

	#[test]
	fn nesting_is_bounded() {
		let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
		let err = parse(&deep).unwrap_err();
		assert!(err.message.contains("nested too deeply"), "{}", err.message);
		let ok = "[".repeat(MAX_DEPTH) + "1" + &"]".repeat(MAX_DEPTH);
		assert!(parse(&ok).is_ok());
	}
}
