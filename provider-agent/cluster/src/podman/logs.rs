//! Container logs from `GET /libpod/containers/{id}/logs?timestamps=true`.
//!
//! The body is a stream of frames, each an 8-byte header `[stream, 0, 0, 0, len (u32 BE)]`
//! (stream 1 = stdout, 2 = stderr) and `len` bytes of payload. With `timestamps=true` each
//! payload starts with an RFC 3339 time and a space. podman 4.3.1 writes that time with
//! **second** precision (the log file has nanoseconds), while it filters `since` at full
//! precision: lines are complete, their times are truncated to the second.

use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::{ClusterError, LogLine};

/// Largest frame accepted: conmon splits long lines into partial entries far below this, so a
/// bigger one means the stream is not what we think.
const MAX_FRAME: usize = 16 << 20;
/// Length of a frame header.
const HEADER: usize = 8;

/// Decodes one container's log stream into lines.
#[derive(Debug)]
pub(crate) struct Decoder {
	container: String,
	buf: Vec<u8>,
	lines: Vec<LogLine>,
	/// Whether the last line of stdout (0) and stderr (1) is still open: its frame did not end
	/// with a line break, so the next frame of that stream continues it.
	open: [Option<usize>; 2],
}

impl Decoder {
	/// A decoder for the container named `container` (`<pod>/<container>`).
	pub fn new(container: String) -> Self {
		Decoder { container, buf: Vec::new(), lines: Vec::new(), open: [None, None] }
	}

	/// Lines decoded so far.
	pub fn len(&self) -> usize {
		self.lines.len()
	}

	/// Feeds the next bytes of the body, decoding every complete frame.
	pub fn push(&mut self, bytes: &[u8]) -> Result<(), ClusterError> {
		self.buf.extend_from_slice(bytes);
		let mut at = 0;
		while let Some(header) = self.buf.get(at..at + HEADER) {
			let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
			let len = usize::try_from(len).unwrap_or(usize::MAX);
			if len > MAX_FRAME {
				return Err(ClusterError::Other(format!(
					"log of {}: frame of {len} bytes: not a podman log stream",
					self.container
				)));
			}
			let stderr = header[0] != 1;
			let Some(payload) = self.buf.get(at + HEADER..at + HEADER + len) else { break };
			let payload = String::from_utf8_lossy(payload).into_owned();
			at += HEADER + len;
			self.frame(stderr, &payload);
		}
		self.buf.drain(..at);
		Ok(())
	}

	/// The decoded lines, in the stream's order.
	pub fn finish(self) -> Vec<LogLine> {
		self.lines
	}

	fn frame(&mut self, stderr: bool, payload: &str) {
		let stream = usize::from(stderr);
		let (body, terminated) = match payload.strip_suffix('\n') {
			Some(body) => (body, true),
			None => (payload, false),
		};
		for raw in body.split('\n') {
			let raw = raw.strip_suffix('\r').unwrap_or(raw);
			let (timestamp_ms, text) = split_time(raw);
			if let Some(line) = self.open[stream].take().and_then(|i| self.lines.get_mut(i)) {
				line.text.push_str(text);
				continue;
			}
			let timestamp_ms =
				timestamp_ms.or_else(|| self.lines.last().map(|l| l.timestamp_ms)).unwrap_or(0);
			self.lines.push(LogLine {
				container: self.container.clone(),
				timestamp_ms,
				stderr,
				text: text.to_owned(),
			});
		}
		if !terminated {
			self.open[stream] = self.lines.len().checked_sub(1);
		}
	}
}

/// The time a line starts with, and the rest of it; no time if it does not start with one.
fn split_time(line: &str) -> (Option<u64>, &str) {
	let (time, text) = line.split_once(' ').unwrap_or((line, ""));
	match rfc3339_millis(time) {
		Some(ms) => (Some(ms), text),
		None => (None, line),
	}
}

/// Reads `body` into `decoder` until it ends or holds `max_lines` lines (then the rest of the
/// body is dropped unread: the stream is oldest first, so later lines are not needed).
pub(crate) async fn read(
	mut body: Incoming,
	mut decoder: Decoder,
	max_lines: usize,
) -> Result<Vec<LogLine>, ClusterError> {
	while decoder.len() < max_lines {
		let Some(frame) = body.frame().await else { break };
		let frame = frame
			.map_err(|e| ClusterError::Unavailable(format!("reading a podman log stream: {e}")))?;
		if let Ok(data) = frame.into_data() {
			decoder.push(&data)?;
		}
	}
	Ok(decoder.finish())
}

/// The `since` parameter for `since_ms`: Unix seconds with a fraction, which podman compares
/// with the log's nanosecond times.
pub(crate) fn since_param(since_ms: u64) -> String {
	format!("{}.{:03}", since_ms / 1000, since_ms % 1000)
}

/// Milliseconds since the Unix epoch of an RFC 3339 time (`2026-11-21T08:36:14Z`,
/// `2026-11-21T08:36:14.123456789+01:00`), or `None` if it is not one or is before 1970.
pub(crate) fn rfc3339_millis(text: &str) -> Option<u64> {
	let b = text.as_bytes();
	let digits = |from: usize, to: usize| -> Option<u64> {
		let part = b.get(from..to)?;
		part.iter()
			.all(u8::is_ascii_digit)
			.then(|| part.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
	};
	let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
	if separators.iter().any(|&(i, c)| b.get(i) != Some(&c))
		|| !matches!(b.get(10), Some(b'T' | b't' | b' '))
	{
		return None;
	}
	let (year, month, day) = (digits(0, 4)?, digits(5, 7)?, digits(8, 10)?);
	let (hour, minute, second) = (digits(11, 13)?, digits(14, 16)?, digits(17, 19)?);
	if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
		return None;
	}
	if second > 60 {
		return None;
	}
	let mut at = 19;
	let mut millis = 0;
	if b.get(at) == Some(&b'.') {
		let end = (at + 1..b.len()).find(|&i| !b[i].is_ascii_digit()).unwrap_or(b.len());
		if end == at + 1 {
			return None;
		}
		let kept = end.min(at + 4);
		millis = digits(at + 1, kept)? * 10u64.pow(u32::try_from(at + 4 - kept).ok()?);
		at = end;
	}
	let offset_seconds: i64 = match b.get(at) {
		Some(b'Z' | b'z') if at + 1 == b.len() => 0,
		Some(&sign @ (b'+' | b'-')) if at + 6 == b.len() && b[at + 3] == b':' => {
			let minutes =
				i64::try_from(digits(at + 1, at + 3)? * 60 + digits(at + 4, at + 6)?).ok()?;
			if sign == b'+' {
				minutes * 60
			} else {
				-minutes * 60
			}
		}
		_ => return None,
	};
	let days = days_from_civil(i64::try_from(year).ok()?, month, day);
	let seconds =
		days * 86_400 + i64::try_from(hour * 3600 + minute * 60 + second).ok()? - offset_seconds;
	Some(u64::try_from(seconds).ok()? * 1000 + millis)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u64, day: u64) -> i64 {
	let year = if month <= 2 { year - 1 } else { year };
	let era = year.div_euclid(400);
	let year_of_era = year - era * 400;
	let month = i64::try_from(month).unwrap_or(1);
	let day = i64::try_from(day).unwrap_or(1);
	let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
	let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
	era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
	use super::*;

	fn frame(stream: u8, payload: &str) -> Vec<u8> {
		let len = u32::try_from(payload.len()).expect("small").to_be_bytes();
		let mut out = vec![stream, 0, 0, 0];
		out.extend_from_slice(&len);
		out.extend_from_slice(payload.as_bytes());
		out
	}

	fn line(ms: u64, stderr: bool, text: &str) -> LogLine {
		LogLine { container: "p/c".to_owned(), timestamp_ms: ms, stderr, text: text.to_owned() }
	}

	#[test]
	fn frames_as_podman_4_3_sends_them() {
		// Captured from podman 4.3.1: `01 00 00 00 00 00 00 1b "2026-11-21T08:56:27Z hello\n"`...
		let mut body = frame(1, "2026-11-21T08:56:27Z hello\n");
		body.extend(frame(2, "2026-11-21T08:56:27Z oops\n"));
		body.extend(frame(1, "2026-11-21T08:56:28Z uid=65534(nobody)\n"));
		assert_eq!(&body[..8], &[1, 0, 0, 0, 0, 0, 0, 0x1b]);
		let at = 1_795_251_387_000;
		let expected = vec![
			line(at, false, "hello"),
			line(at, true, "oops"),
			line(at + 1000, false, "uid=65534(nobody)"),
		];

		let mut whole = Decoder::new("p/c".to_owned());
		whole.push(&body).expect("decodes");
		assert_eq!(whole.finish(), expected);

		// Any split of the body into chunks gives the same lines.
		for size in [1, 3, 8, 9, 20] {
			let mut decoder = Decoder::new("p/c".to_owned());
			for chunk in body.chunks(size) {
				decoder.push(chunk).expect("decodes");
			}
			assert_eq!(decoder.finish(), expected, "chunks of {size}");
		}
	}

	#[test]
	fn partial_lines_are_joined_per_stream() {
		let mut body = frame(1, "2026-11-21T08:56:27Z first half ");
		body.extend(frame(2, "2026-11-21T08:56:27Z err\n"));
		body.extend(frame(1, "2026-11-21T08:56:28Z second half\n"));
		body.extend(frame(1, "2026-11-21T08:56:28Z a\nb\r\n"));
		let mut decoder = Decoder::new("p/c".to_owned());
		decoder.push(&body).expect("decodes");
		let at = 1_795_251_387_000;
		assert_eq!(
			decoder.finish(),
			vec![
				line(at, false, "first half second half"),
				line(at, true, "err"),
				line(at + 1000, false, "a"),
				line(at + 1000, false, "b"),
			]
		);
	}

	#[test]
	fn lines_without_a_time_take_the_previous_one_and_nothing_panics() {
		let mut decoder = Decoder::new("p/c".to_owned());
		decoder.push(&frame(1, "no time here\n")).expect("decodes");
		decoder.push(&frame(1, "2026-11-21T08:56:27Z\n")).expect("decodes");
		decoder.push(&frame(7, "\u{fffd} odd stream\n")).expect("decodes");
		decoder.push(&[1, 0, 0]).expect("incomplete header waits");
		let lines = decoder.finish();
		assert_eq!(lines[0], line(0, false, "no time here"));
		assert_eq!(lines[1], line(1_795_251_387_000, false, ""));
		assert!(lines[2].stderr);
		assert_eq!(lines.len(), 3);
	}

	#[test]
	fn huge_frames_are_refused() {
		let mut decoder = Decoder::new("p/c".to_owned());
		let err = decoder.push(&[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).unwrap_err();
		assert!(matches!(err, ClusterError::Other(_)));
	}

	#[test]
	fn rfc3339_times() {
		assert_eq!(rfc3339_millis("1970-01-01T00:00:00Z"), Some(0));
		assert_eq!(rfc3339_millis("2026-11-21T08:36:14Z"), Some(1_795_250_174_000));
		assert_eq!(rfc3339_millis("2026-11-21T08:36:14.123456789Z"), Some(1_795_250_174_123));
		assert_eq!(rfc3339_millis("2026-11-21T08:36:14.5Z"), Some(1_795_250_174_500));
		assert_eq!(rfc3339_millis("2026-11-21T09:36:14.5+01:00"), Some(1_795_250_174_500));
		assert_eq!(rfc3339_millis("2026-11-21T07:36:14-01:00"), Some(1_795_250_174_000));
		assert_eq!(rfc3339_millis("2000-02-29T00:00:00Z"), Some(951_782_400_000));
		for bad in [
			"",
			"2026-11-21",
			"2026-11-21T08:36:14",
			"2026-13-21T08:36:14Z",
			"2026-11-21T08:36:14.Z",
			"2026-11-21T08:36:14Zjunk",
			"+026-11-21T08:36:14Z",
			"1969-12-31T23:59:59Z",
			"2026-11-21T08:36:14+0100",
			"2026-11-21T08:3é:14Z",
		] {
			assert_eq!(rfc3339_millis(bad), None, "{bad}");
		}
	}

	#[test]
	fn since_keeps_milliseconds() {
		assert_eq!(since_param(1_795_251_413_500), "1795251413.500");
		assert_eq!(since_param(7), "0.007");
	}
}
