//! JSON (RFC 8259, strict) to [`Node`].
//!
//! A small hand-written parser because serde_json reports positions only for syntax errors, and
//! every value needs one here. It accepts exactly what serde_json accepts (a differential test
//! checks this), up to [`MAX_DEPTH`] levels of nesting.

use crate::{
	error::{Diagnostic, Pos},
	limits::MAX_DEPTH,
	tree::{Entry, Node, Value},
};

type Result<T> = std::result::Result<T, Diagnostic>;

/// Parses one JSON value, surrounded by optional whitespace, into a tree.
pub(crate) fn parse(src: &str) -> Result<Node> {
	let mut p = JsonParser { src: src.as_bytes(), at: 0, line: 1, column: 1 };
	p.skip_ws();
	let node = p.value(0)?;
	p.skip_ws();
	if p.at < p.src.len() {
		return Err(p.error("trailing characters after the manifest"));
	}
	Ok(node)
}

struct JsonParser<'a> {
	src: &'a [u8],
	at: usize,
	line: usize,
	column: usize,
}

impl JsonParser<'_> {
	fn pos(&self) -> Pos {
		Pos { line: self.line, column: self.column }
	}

	fn error(&self, message: &str) -> Diagnostic {
		Diagnostic::new(String::new(), Some(self.pos()), format!("invalid JSON: {message}"))
	}

	fn peek(&self) -> Option<u8> {
		self.src.get(self.at).copied()
	}

	/// Moves past one byte, keeping the line and the column (in characters) current.
	fn bump(&mut self) {
		if let Some(&b) = self.src.get(self.at) {
			self.at += 1;
			if b == b'\n' {
				self.line += 1;
				self.column = 1;
			} else if b & 0xC0 != 0x80 {
				// Continuation bytes belong to the character already counted.
				self.column += 1;
			}
		}
	}

	fn skip_ws(&mut self) {
		while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
			self.bump();
		}
	}

	fn eat(&mut self, byte: u8) -> bool {
		if self.peek() == Some(byte) {
			self.bump();
			true
		} else {
			false
		}
	}

	fn value(&mut self, depth: usize) -> Result<Node> {
		let pos = self.pos();
		let value = match self.peek() {
			Some(b'{') => self.object(depth)?,
			Some(b'[') => self.array(depth)?,
			Some(b'"') => Value::Str(self.string()?),
			Some(b'-' | b'0'..=b'9') => self.number()?,
			Some(b't') => self.literal("true", Value::Bool(true))?,
			Some(b'f') => self.literal("false", Value::Bool(false))?,
			Some(b'n') => self.literal("null", Value::Null)?,
			Some(_) => return Err(self.error("expected a value")),
			None => return Err(self.error("unexpected end of input, expected a value")),
		};
		Ok(Node { pos, value })
	}

	fn enter(&self, depth: usize) -> Result<()> {
		if depth >= MAX_DEPTH {
			return Err(self.error(&format!("nested too deeply (at most {MAX_DEPTH} levels)")));
		}
		Ok(())
	}

	fn object(&mut self, depth: usize) -> Result<Value> {
		self.enter(depth)?;
		self.bump();
		let mut entries = Vec::new();
		self.skip_ws();
		if self.eat(b'}') {
			return Ok(Value::Map(entries));
		}
		loop {
			self.skip_ws();
			let key_pos = self.pos();
			if self.peek() != Some(b'"') {
				return Err(self.error("expected a string key in double quotes"));
			}
			let key = self.string()?;
			self.skip_ws();
			if !self.eat(b':') {
				return Err(self.error("expected ':' after the key"));
			}
			self.skip_ws();
			let value = self.value(depth + 1)?;
			entries.push(Entry { key, key_pos, value });
			self.skip_ws();
			if self.eat(b'}') {
				return Ok(Value::Map(entries));
			}
			if !self.eat(b',') {
				return Err(self.error("expected ',' or '}'"));
			}
		}
	}

	fn array(&mut self, depth: usize) -> Result<Value> {
		self.enter(depth)?;
		self.bump();
		let mut items = Vec::new();
		self.skip_ws();
		if self.eat(b']') {
			return Ok(Value::Seq(items));
		}
		loop {
			self.skip_ws();
			items.push(self.value(depth + 1)?);
			self.skip_ws();
			if self.eat(b']') {
				return Ok(Value::Seq(items));
			}
			if !self.eat(b',') {
				return Err(self.error("expected ',' or ']'"));
			}
		}
	}

	fn literal(&mut self, word: &str, value: Value) -> Result<Value> {
		for &b in word.as_bytes() {
			if !self.eat(b) {
				return Err(self.error("expected a value"));
			}
		}
		Ok(value)
	}

	/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, kept as text.
	fn number(&mut self) -> Result<Value> {
		let start = self.at;
		self.eat(b'-');
		match self.peek() {
			Some(b'0') => self.bump(),
			Some(b'1'..=b'9') => self.digits(),
			_ => return Err(self.error("invalid number")),
		}
		let mut float = false;
		if self.eat(b'.') {
			float = true;
			if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
				return Err(self.error("invalid number: expected a digit after '.'"));
			}
			self.digits();
		}
		if matches!(self.peek(), Some(b'e' | b'E')) {
			float = true;
			self.bump();
			if matches!(self.peek(), Some(b'+' | b'-')) {
				self.bump();
			}
			if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
				return Err(self.error("invalid number: expected a digit in the exponent"));
			}
			self.digits();
		}
		// Only ASCII was consumed, so this slice is valid UTF-8.
		let text = String::from_utf8_lossy(&self.src[start..self.at]).into_owned();
		Ok(if float { Value::Float(text) } else { Value::Int(text) })
	}

	fn digits(&mut self) {
		while self.peek().is_some_and(|b| b.is_ascii_digit()) {
			self.bump();
		}
	}

	fn string(&mut self) -> Result<String> {
		self.bump(); // the opening quote
		let mut out = Vec::new();
		loop {
			match self.peek() {
				None => return Err(self.error("unterminated string")),
				Some(b'"') => {
					self.bump();
					// The input is a &str and escapes push whole characters, so this is UTF-8.
					return String::from_utf8(out).map_err(|_| self.error("invalid UTF-8"));
				}
				Some(b'\\') => {
					self.bump();
					let c = self.escape()?;
					let mut buf = [0; 4];
					out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
				}
				Some(b) if b < 0x20 => {
					return Err(self.error("control character in string (escape it)"))
				}
				Some(b) => {
					out.push(b);
					self.bump();
				}
			}
		}
	}

	/// The character after a backslash.
	fn escape(&mut self) -> Result<char> {
		let c = match self.peek() {
			Some(b'"') => '"',
			Some(b'\\') => '\\',
			Some(b'/') => '/',
			Some(b'b') => '\u{8}',
			Some(b'f') => '\u{c}',
			Some(b'n') => '\n',
			Some(b'r') => '\r',
			Some(b't') => '\t',
			Some(b'u') => {
				self.bump();
				return self.unicode_escape();
			}
			_ => return Err(self.error("invalid escape in string")),
		};
		self.bump();
		Ok(c)
	}

	/// `XXXX` after `\u`, joining a UTF-16 surrogate pair; a lone surrogate is an error.
	fn unicode_escape(&mut self) -> Result<char> {
		let first = self.hex4()?;
		let code = match first {
			0xD800..=0xDBFF => {
				if !(self.eat(b'\\') && self.eat(b'u')) {
					return Err(self.error("lone surrogate in \\u escape"));
				}
				let second = self.hex4()?;
				if !(0xDC00..=0xDFFF).contains(&second) {
					return Err(self.error("lone surrogate in \\u escape"));
				}
				0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
			}
			0xDC00..=0xDFFF => return Err(self.error("lone surrogate in \\u escape")),
			code => code,
		};
		char::from_u32(code).ok_or_else(|| self.error("invalid \\u escape"))
	}

	fn hex4(&mut self) -> Result<u32> {
		let mut code = 0;
		for _ in 0..4 {
			let digit = self
				.peek()
				.and_then(|b| char::from(b).to_digit(16))
				.ok_or_else(|| self.error("invalid \\u escape: expected 4 hex digits"))?;
			code = code * 16 + digit;
			self.bump();
		}
		Ok(code)
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn values_and_positions() {
		let node =
			parse("{\n  \"a\": [1, -2.5e3, true, null],\n\t\"é\": \"x\\u00e9\\ud83d\\ude00\"\n}")
				.unwrap();
		let Value::Map(entries) = node.value else { panic!("not a map") };
		assert_eq!(entries[0].key_pos, Pos { line: 2, column: 3 });
		let Value::Seq(items) = &entries[0].value.value else { panic!("not a seq") };
		assert_eq!(items[0].value, Value::Int("1".into()));
		assert_eq!(items[1].value, Value::Float("-2.5e3".into()));
		assert_eq!(items[1].pos, Pos { line: 2, column: 12 });
		assert_eq!(items[2].value, Value::Bool(true));
		assert_eq!(items[3].value, Value::Null);
		assert_eq!(entries[1].key, "é");
		// Columns count characters: `é` is two bytes but one column.
		assert_eq!(entries[1].value.pos, Pos { line: 3, column: 7 });
		assert_eq!(entries[1].value.value, Value::Str("xé😀".into()));
	}

	#[test]
	fn errors_are_located() {
		for (src, expected) in [
			("{\"a\": 1,}", "1:9: invalid JSON: expected a string key in double quotes"),
			("{\"a\" 1}", "1:6: invalid JSON: expected ':' after the key"),
			("[1 2]", "1:4: invalid JSON: expected ',' or ']'"),
			("{\n\"a\": 01}", "2:7: invalid JSON: expected ',' or '}'"),
			("\"\\ud800\"", "1:8: invalid JSON: lone surrogate in \\u escape"),
			("\"a\nb\"", "1:3: invalid JSON: control character in string (escape it)"),
			("{} {}", "1:4: invalid JSON: trailing characters after the manifest"),
			("", "1:1: invalid JSON: unexpected end of input, expected a value"),
			("[1.]", "1:4: invalid JSON: invalid number: expected a digit after '.'"),
			("tru", "1:4: invalid JSON: expected a value"),
			("\"\\x\"", "1:3: invalid JSON: invalid escape in string"),
		] {
			assert_eq!(parse(src).unwrap_err().to_string(), expected, "{src:?}");
		}
	}

	/// The tree as serde_json would build it (numbers through f64/i64, as serde_json does).
	fn to_serde(node: &Node) -> serde_json::Value {
		use serde_json::Value as J;
		match &node.value {
			Value::Null => J::Null,
			Value::Bool(b) => J::Bool(*b),
			Value::Int(t) | Value::Float(t) => serde_json::from_str(t).unwrap(),
			Value::Str(s) => J::String(s.clone()),
			Value::Seq(items) => J::Array(items.iter().map(to_serde).collect()),
			// Last duplicate wins, as in serde_json.
			Value::Map(entries) => {
				J::Object(entries.iter().map(|e| (e.key.clone(), to_serde(&e.value))).collect())
			}
		}
	}

	fn json_value() -> impl Strategy<Value = serde_json::Value> {
		use serde_json::Value as J;
		let leaf = prop_oneof![
			Just(J::Null),
			any::<bool>().prop_map(J::Bool),
			any::<i64>().prop_map(J::from),
			any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(J::from),
			any::<String>().prop_map(J::String),
		];
		leaf.prop_recursive(6, 64, 6, |inner| {
			prop_oneof![
				prop::collection::vec(inner.clone(), 0..6).prop_map(J::Array),
				prop::collection::btree_map(any::<String>(), inner, 0..6)
					.prop_map(|m| J::Object(m.into_iter().collect())),
			]
		})
	}

	/// Small edits from JSON's own alphabet, so that most mutants are near-misses.
	fn mutate(text: &str, edits: &[(prop::sample::Index, u8, usize)]) -> String {
		const ALPHABET: &[char] = &[
			'{', '}', '[', ']', ',', ':', '"', '\\', ' ', '\n', '\t', '0', '1', '9', '-', '+', '.',
			'e', 'E', 'u', 'd', '8', 't', 'n', 'f', 'a', 'l', '\u{1}', '\u{1f}', '/', 'é',
		];
		let mut chars: Vec<char> = text.chars().collect();
		for (at, op, c) in edits {
			let i = at.index(chars.len() + 1);
			let c = ALPHABET[c % ALPHABET.len()];
			match op {
				0 => chars.insert(i, c),
				1 if i < chars.len() => {
					chars.remove(i);
				}
				_ if i < chars.len() => chars[i] = c,
				_ => {}
			}
		}
		chars.into_iter().collect()
	}

	use proptest::prelude::*;

	proptest! {
		#![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

		/// Whatever serde_json writes, compact or pretty, reads back as serde_json reads it.
		#[test]
		fn reads_what_serde_json_writes(value in json_value()) {
			for text in [serde_json::to_string(&value).unwrap(), serde_json::to_string_pretty(&value).unwrap()] {
				let node = parse(&text).map_err(|e| format!("{e}: {text}"));
				// Compared with serde_json's reading, not `value`: its float parsing does not
				// always round-trip, and numbers go through it on both sides.
				let theirs: serde_json::Value = serde_json::from_str(&text).unwrap();
				prop_assert_eq!(node.map(|n| to_serde(&n)), Ok(theirs));
			}
		}

		/// On near-miss input, accepts exactly what serde_json accepts.
		#[test]
		fn accepts_what_serde_json_accepts(
			value in json_value(),
			edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<usize>()), 1..4),
		) {
			let text = mutate(&serde_json::to_string(&value).unwrap(), &edits);
			let theirs = serde_json::from_str::<serde_json::Value>(&text);
			// serde_json refuses numbers beyond f64; the manifest keeps their text instead.
			if theirs.as_ref().is_err_and(|e| e.to_string().starts_with("number out of range")) {
				return Ok(());
			}
			let ours = parse(&text);
			prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "{:?}: ours {:?}, serde_json {:?}", text, ours.err(), theirs.err());
		}
	}

	#[test]
	fn raw_control_characters_in_strings_are_refused() {
		for c in (0u8..0x20).map(char::from) {
			let err = parse(&format!("\"a{c}\"")).unwrap_err().to_string();
			assert_eq!(err, "1:3: invalid JSON: control character in string (escape it)", "{c:?}");
		}
		assert!(parse("\"\u{7f}\"").is_ok());
	}

	#[test]
	fn nesting_is_bounded() {
		let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
		assert!(parse(&deep).unwrap_err().message.contains("nested too deeply"));
		let ok = "[".repeat(MAX_DEPTH) + "1" + &"]".repeat(MAX_DEPTH);
		assert!(parse(&ok).is_ok());
	}
}
