//! What the CLI prints: tables and progress for people, one JSON document for scripts.

use serde_json::Value;
use std::{io::Write, time::Instant};

/// Where results and progress go. Results go to stdout; progress goes to stderr, and only for
/// people (with `--json`, stdout carries exactly one JSON document).
pub struct Output {
	json: bool,
	started: Instant,
}

impl Output {
	/// Output for people, or JSON for scripts.
	pub fn new(json: bool) -> Self {
		Self { json, started: Instant::now() }
	}

	/// Whether results are JSON.
	pub fn is_json(&self) -> bool {
		self.json
	}

	/// One stage of a long command, with the time since it started.
	pub fn stage(&self, text: impl AsRef<str>) {
		if !self.json {
			let elapsed = self.started.elapsed().as_secs_f64();
			eprintln!("[{elapsed:>6.1}s] {}", text.as_ref());
		}
	}

	/// The command's result: `json` for scripts, `human` for people.
	pub fn result(&self, json: Value, human: impl FnOnce() -> String) {
		let mut stdout = std::io::stdout().lock();
		let text = if self.json {
			serde_json::to_string_pretty(&json).unwrap_or_default()
		} else {
			human()
		};
		let _ = writeln!(stdout, "{}", text.trim_end());
	}
}

/// Lays out rows under a header, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
	let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
	for row in rows {
		for (width, cell) in widths.iter_mut().zip(row) {
			*width = (*width).max(cell.chars().count());
		}
	}
	let line = |cells: Vec<&str>| {
		let padded: Vec<String> =
			cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}", w = *w)).collect();
		padded.join("  ").trim_end().to_owned()
	};
	let mut out = vec![line(header.to_vec())];
	out.extend(rows.iter().map(|r| line(r.iter().map(String::as_str).collect())));
	out.join("\n")
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn tables_align_columns() {
		let text = table(
			&["ID", "STATE"],
			&[vec!["7".into(), "active".into()], vec!["12".into(), "pending".into()]],
		);
		assert_eq!(text, "ID  STATE\n7   active\n12  pending");
	}
}
