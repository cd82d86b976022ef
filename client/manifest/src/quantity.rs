//! Kubernetes-style resource quantities, parsed into exact integers.
//!
//! Only the integers are kept: they are what the canonical form hashes, and rendering a pod from
//! them ([`Cpu`] and [`ByteSize`] display as valid Kubernetes quantities) means the provider runs
//! exactly what the chain committed to, whatever spelling the publisher used.

use std::{fmt, str::FromStr};

/// A CPU amount in millicores: `500m` = 500, `1.5` = 1500, `2` = 2000.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cpu(u32);

/// An amount of bytes (memory or storage): `64Mi`, `1Gi`, `500M`, `1073741824`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(u64);

/// Why a quantity string was refused. The message names the text and gives examples.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
	/// Not of the form `<decimal><suffix>` with a suffix this kind of quantity accepts.
	#[error("{text:?} is not a {kind} quantity (examples: {examples})")]
	Syntax {
		/// The text as written.
		text: String,
		/// `CPU`, `memory` or `storage`.
		kind: &'static str,
		/// Valid examples for this kind.
		examples: &'static str,
	},
	/// A CPU amount with a fraction of a millicore.
	#[error("{text:?} is finer than one millicore (1m)")]
	TooPrecise {
		/// The text as written.
		text: String,
	},
	/// Larger than the integer it is stored in.
	#[error("{text:?} is too large")]
	TooLarge {
		/// The text as written.
		text: String,
	},
}

const CPU_EXAMPLES: &str = "500m, 1.5, 2";
const BYTE_EXAMPLES: &str = "64Mi, 1Gi, 500M";

/// Binary suffixes, largest first (for display).
const BINARY: [(&str, u64); 5] =
	[("Pi", 1 << 50), ("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)];
const DECIMAL: [(&str, u64); 6] = [
	("k", 1_000),
	("K", 1_000),
	("M", 1_000_000),
	("G", 1_000_000_000),
	("T", 1_000_000_000_000),
	("P", 1_000_000_000_000_000),
];

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

impl Cpu {
	/// `millis` millicores.
	pub const fn from_millis(millis: u32) -> Self {
		Cpu(millis)
	}

	/// The amount in millicores.
	pub const fn millis(self) -> u32 {
		self.0
	}

	/// Parses `500m`, `1.5`, `2`, `0.25`: a decimal number of cores, or of millicores with the
	/// suffix `m`. Sub-millicore precision is refused, not rounded, so that no two spellings
	/// mean different things to the chain and to Kubernetes.
	pub fn parse(text: &str) -> Result<Self, QuantityError> {
		let syntax =
			|| QuantityError::Syntax { text: text.into(), kind: "CPU", examples: CPU_EXAMPLES };
		let (digits, scale, suffix) = split_decimal(text).ok_or_else(syntax)?;
		let per_unit: u128 = match suffix {
			"" => 1000,
			"m" => 1,
			_ => return Err(syntax()),
		};
		let too_large = || QuantityError::TooLarge { text: text.into() };
		let scaled = digits.checked_mul(per_unit).ok_or_else(too_large)?;
		if scaled % scale != 0 {
			return Err(QuantityError::TooPrecise { text: text.into() });
		}
		u32::try_from(scaled / scale).map(Cpu).map_err(|_| too_large())
	}
}

impl ByteSize {
	/// `bytes` bytes.
	pub const fn from_bytes(bytes: u64) -> Self {
		ByteSize(bytes)
	}

	/// The amount in bytes.
	pub const fn bytes(self) -> u64 {
		self.0
	}

	/// The amount in MiB, rounded up.
	pub const fn mib_ceil(self) -> u64 {
		self.0.div_ceil(MIB)
	}

	/// The amount in GiB, rounded up.
	pub const fn gib_ceil(self) -> u64 {
		self.0.div_ceil(GIB)
	}

	/// Parses a decimal number of bytes with an optional suffix: binary `Ki Mi Gi Ti Pi` or
	/// decimal `k K M G T P`. A fractional byte count is rounded up (`0.5Ki` = 512, `1.3Gi` =
	/// 1395864372), as Kubernetes does. `kind` (`memory`, `storage`) names the quantity in errors.
	pub fn parse(text: &str, kind: &'static str) -> Result<Self, QuantityError> {
		let syntax = || QuantityError::Syntax { text: text.into(), kind, examples: BYTE_EXAMPLES };
		let (digits, scale, suffix) = split_decimal(text).ok_or_else(syntax)?;
		let multiplier = if suffix.is_empty() {
			1
		} else {
			BINARY
				.iter()
				.chain(DECIMAL.iter())
				.find(|(s, _)| *s == suffix)
				.map(|(_, m)| *m)
				.ok_or_else(syntax)?
		};
		let too_large = || QuantityError::TooLarge { text: text.into() };
		let bytes = digits.checked_mul(u128::from(multiplier)).ok_or_else(too_large)?;
		u64::try_from(bytes.div_ceil(scale)).map(ByteSize).map_err(|_| too_large())
	}
}

/// Splits `12.50Mi` into (1250, 100, "Mi"): the digits as an integer, the power of ten they are
/// scaled by, and the suffix. `None` unless the number is `D+`, `D+.D*` or `.D+`.
fn split_decimal(text: &str) -> Option<(u128, u128, &str)> {
	let end = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
	let (number, suffix) = text.split_at(end);
	let (int, frac) = number.split_once('.').unwrap_or((number, ""));
	if int.is_empty() && frac.is_empty() || frac.contains('.') {
		return None;
	}
	// Bounded so that the integers below cannot overflow u128 (10^38); longer is not plausible.
	if int.len() + frac.len() > 30 {
		return None;
	}
	let mut digits: u128 = 0;
	for b in int.bytes().chain(frac.bytes()) {
		digits = digits * 10 + u128::from(b - b'0');
	}
	let scale = 10u128.pow(frac.len() as u32);
	Some((digits, scale, suffix))
}

impl fmt::Display for Cpu {
	/// `2` for whole cores, `1500m` otherwise: valid Kubernetes quantities.
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		if self.0.is_multiple_of(1000) {
			write!(f, "{}", self.0 / 1000)
		} else {
			write!(f, "{}m", self.0)
		}
	}
}

impl fmt::Display for ByteSize {
	/// The largest binary suffix that divides the amount exactly (`64Mi`), else bytes.
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		let suffix = BINARY.iter().find(|(_, m)| self.0 != 0 && self.0.is_multiple_of(*m));
		match suffix {
			Some((s, m)) => write!(f, "{}{s}", self.0 / m),
			None => write!(f, "{}", self.0),
		}
	}
}

impl FromStr for Cpu {
	type Err = QuantityError;

	fn from_str(s: &str) -> Result<Self, Self::Err> {
		Cpu::parse(s)
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn cpu_values() {
		for (text, millis) in [
			("500m", 500),
			("1.5", 1500),
			("2", 2000),
			("0.25", 250),
			(".5", 500),
			("5.", 5000),
			("1.50", 1500),
			("0", 0),
			("0.001", 1),
			("1000m", 1000),
			("4294967m", 4_294_967),
			("4294967.295", u32::MAX),
		] {
			assert_eq!(Cpu::parse(text), Ok(Cpu(millis)), "{text}");
		}
	}

	#[test]
	fn cpu_errors() {
		for text in ["2x", "", ".", "1..2", "-1", "+1", "1e3", "1 ", "1.2.3", "500M", "0x10", "ﾑ"]
		{
			assert_eq!(
				Cpu::parse(text).unwrap_err().to_string(),
				format!("{text:?} is not a CPU quantity (examples: 500m, 1.5, 2)")
			);
		}
		assert_eq!(
			Cpu::parse("0.0005").unwrap_err().to_string(),
			"\"0.0005\" is finer than one millicore (1m)"
		);
		assert!(matches!(Cpu::parse("1.5m"), Err(QuantityError::TooPrecise { .. })));
		assert!(matches!(Cpu::parse("4294967.296"), Err(QuantityError::TooLarge { .. })));
		assert!(matches!(Cpu::parse(&"9".repeat(31)), Err(QuantityError::Syntax { .. })));
		assert!(matches!(Cpu::parse(&"9".repeat(30)), Err(QuantityError::TooLarge { .. })));
	}

	#[test]
	fn byte_values() {
		for (text, bytes) in [
			("64Mi", 64 << 20),
			("1Gi", 1 << 30),
			("1.5Gi", 3 << 29),
			("0.5Ki", 512),
			("1.3Gi", 1_395_864_372), // 1395864371.2 rounded up
			("500M", 500_000_000),
			("1k", 1000),
			("1K", 1000),
			("2T", 2_000_000_000_000),
			("1Pi", 1 << 50),
			("1024", 1024),
			("0", 0),
			("0.1", 1),
		] {
			assert_eq!(ByteSize::parse(text, "memory"), Ok(ByteSize(bytes)), "{text}");
		}
	}

	#[test]
	fn byte_errors() {
		for text in ["2x", "128m", "1Mb", "1 Gi", "Gi", "-1Gi", "1E", "1ki"] {
			assert_eq!(
				ByteSize::parse(text, "memory").unwrap_err().to_string(),
				format!("{text:?} is not a memory quantity (examples: 64Mi, 1Gi, 500M)")
			);
		}
		assert!(matches!(
			ByteSize::parse("16384Pi", "storage"),
			Err(QuantityError::TooLarge { .. })
		));
		assert_eq!(ByteSize::parse("16383Pi", "storage"), Ok(ByteSize(16383 << 50)));
	}

	#[test]
	fn rounding_up_to_units() {
		assert_eq!(ByteSize(1).mib_ceil(), 1);
		assert_eq!(ByteSize(MIB).mib_ceil(), 1);
		assert_eq!(ByteSize(MIB + 1).mib_ceil(), 2);
		assert_eq!(ByteSize(0).mib_ceil(), 0);
		assert_eq!(ByteSize(10 * GIB - 1).gib_ceil(), 10);
		assert_eq!(ByteSize(u64::MAX).gib_ceil(), 1 << 34);
	}

	#[test]
	fn display_round_trips() {
		for millis in [0, 1, 100, 999, 1000, 1500, 2000, u32::MAX] {
			let cpu = Cpu(millis);
			assert_eq!(Cpu::parse(&cpu.to_string()), Ok(cpu));
		}
		assert_eq!(Cpu(2000).to_string(), "2");
		assert_eq!(Cpu(1500).to_string(), "1500m");
		for bytes in [0, 1, 1000, 1024, 3 << 29, 64 << 20, 1 << 50, u64::MAX] {
			let size = ByteSize(bytes);
			assert_eq!(ByteSize::parse(&size.to_string(), "memory"), Ok(size));
		}
		assert_eq!(ByteSize(64 << 20).to_string(), "64Mi");
		assert_eq!(ByteSize(3 << 29).to_string(), "1536Mi");
		assert_eq!(ByteSize(1000).to_string(), "1000");
	}
}
