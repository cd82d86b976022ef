//! How a deal's pods are doing, as the agent tells its publisher in
//! [`LogChunk::deal_status`](crate::protocol::LogChunk::deal_status).
//!
//! The wire form is text, so that agents and CLIs of different versions still understand each
//! other: `absent`, `starting <ready>/<wanted>`, `updating <ready>/<wanted>`,
//! `degraded <ready>/<wanted>: <reason>`, `running`, `idle`, `failed: <reason>`. Only `failed` is
//! terminal; a client waiting for a deal waits through the others. Text it does not know (from
//! a newer agent) is [`PodsStatus::Other`], which is not terminal either.
//!
//! The text comes from the provider: [`PodsStatus::parse`] keeps no control characters (no
//! terminal escapes reach a publisher's screen) and at most [`MAX_REASON_CHARS`] of a reason.

use std::fmt;

/// Most characters of a reason kept by [`PodsStatus::parse`].
pub const MAX_REASON_CHARS: usize = 1024;

/// A deal's pods as the provider sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodsStatus {
	/// Nothing of the deal runs.
	Absent,
	/// The first pods are coming up.
	Starting {
		/// Ready replicas.
		ready: u32,
		/// Replicas wanted.
		wanted: u32,
	},
	/// Pods of a new manifest are replacing the old ones.
	Updating {
		/// Ready replicas of the new manifest.
		ready: u32,
		/// Replicas wanted.
		wanted: u32,
	},
	/// Not all replicas are ready, for a reason that may pass on its own.
	Degraded {
		/// Ready replicas.
		ready: u32,
		/// Replicas wanted.
		wanted: u32,
		/// What the provider's cluster reported.
		reason: String,
	},
	/// Every replica runs and is ready.
	Running,
	/// Scaled to zero while idle: the next request to the deal's name starts it.
	Idle,
	/// The pods will not run without a change (a new manifest, an image that exists).
	Failed {
		/// What the provider's cluster reported.
		reason: String,
	},
	/// A status this version does not know, as sent (made printable).
	Other(String),
}

impl PodsStatus {
	/// Reads the wire form. Never fails: unknown text is [`PodsStatus::Other`].
	pub fn parse(text: &str) -> Self {
		let text = text.trim();
		let (head, reason) = match text.split_once(':') {
			Some((head, reason)) => (head.trim(), Some(printable(reason.trim()))),
			None => (text, None),
		};
		let mut words = head.split_ascii_whitespace();
		let (word, counts) = (words.next().unwrap_or(""), words.next());
		let extra = words.next().is_some();
		let counts = counts.and_then(|c| {
			let (ready, wanted) = c.split_once('/')?;
			Some((ready.parse().ok()?, wanted.parse().ok()?))
		});
		match (word, counts, reason, extra) {
			("absent", None, None, false) => PodsStatus::Absent,
			("running", None, None, false) => PodsStatus::Running,
			("idle", None, None, false) => PodsStatus::Idle,
			("starting", Some((ready, wanted)), None, false) => {
				PodsStatus::Starting { ready, wanted }
			}
			("updating", Some((ready, wanted)), None, false) => {
				PodsStatus::Updating { ready, wanted }
			}
			("degraded", Some((ready, wanted)), Some(reason), false) => {
				PodsStatus::Degraded { ready, wanted, reason }
			}
			("failed", None, Some(reason), false) => PodsStatus::Failed { reason },
			_ => PodsStatus::Other(printable(text)),
		}
	}

	/// Whether the pods will not run without a change.
	pub fn is_terminal(&self) -> bool {
		matches!(self, PodsStatus::Failed { .. })
	}
}

impl fmt::Display for PodsStatus {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		match self {
			PodsStatus::Absent => f.write_str("absent"),
			PodsStatus::Starting { ready, wanted } => write!(f, "starting {ready}/{wanted}"),
			PodsStatus::Updating { ready, wanted } => write!(f, "updating {ready}/{wanted}"),
			PodsStatus::Degraded { ready, wanted, reason } => {
				write!(f, "degraded {ready}/{wanted}: {reason}")
			}
			PodsStatus::Running => f.write_str("running"),
			PodsStatus::Idle => f.write_str("idle"),
			PodsStatus::Failed { reason } => write!(f, "failed: {reason}"),
			PodsStatus::Other(text) => f.write_str(text),
		}
	}
}

/// `text` without control characters (line breaks and escapes become spaces), cut to
/// [`MAX_REASON_CHARS`] characters.
fn printable(text: &str) -> String {
	let mut out: String =
		text.chars().take(MAX_REASON_CHARS).map(|c| if c.is_control() { ' ' } else { c }).collect();
	if text.chars().nth(MAX_REASON_CHARS).is_some() {
		out.push_str(" [cut]");
	}
	out
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn every_status_reads_back() {
		let all = [
			PodsStatus::Absent,
			PodsStatus::Starting { ready: 0, wanted: 1 },
			PodsStatus::Updating { ready: 1, wanted: 3 },
			PodsStatus::Degraded {
				ready: 0,
				wanted: 1,
				reason: "FailedCreate: pods \"app-x\" is forbidden: exceeded quota: reserved"
					.into(),
			},
			PodsStatus::Running,
			PodsStatus::Idle,
			PodsStatus::Failed { reason: "app-x/web: CrashLoopBackOff: back-off 40s".into() },
		];
		for status in all {
			assert_eq!(PodsStatus::parse(&status.to_string()), status, "{status}");
		}
	}

	#[test]
	fn only_failed_is_terminal() {
		assert!(PodsStatus::parse("failed: pod p has no containers").is_terminal());
		for text in [
			"absent",
			"starting 0/1",
			"updating 0/1",
			"degraded 0/1: exceeded quota",
			"running",
			"resizing 1/2",
			"",
		] {
			assert!(!PodsStatus::parse(text).is_terminal(), "{text}");
		}
	}

	#[test]
	fn unknown_or_malformed_text_is_other() {
		for text in [
			"starting",
			"starting 1",
			"starting x/1",
			"starting 1/2 extra",
			"running: oddly",
			"failed",
			"degraded 0/1",
			"hibernating",
		] {
			assert!(matches!(PodsStatus::parse(text), PodsStatus::Other(_)), "{text}");
		}
		// An agent of this version's older sibling said `failed: ...` too: still terminal.
		assert_eq!(
			PodsStatus::parse("failed: container p/web exited with code 2"),
			PodsStatus::Failed { reason: "container p/web exited with code 2".into() }
		);
	}

	#[test]
	fn provider_text_is_made_printable() {
		let status = PodsStatus::parse("failed: \u{1b}[2J\u{1b}]0;owned\u{7}line\nnext\r");
		let PodsStatus::Failed { reason } = &status else { panic!("{status:?}") };
		assert!(!reason.chars().any(char::is_control), "{reason:?}");
		assert!(reason.contains("line next"), "{reason:?}");
		let long = format!("degraded 0/1: {}", "é".repeat(5000));
		let PodsStatus::Degraded { reason, .. } = PodsStatus::parse(&long) else {
			panic!("degraded")
		};
		assert_eq!(reason.chars().count(), MAX_REASON_CHARS + " [cut]".len());
		let other = PodsStatus::parse("weird\u{1b}[31m");
		assert!(!other.to_string().chars().any(char::is_control));
	}
}
