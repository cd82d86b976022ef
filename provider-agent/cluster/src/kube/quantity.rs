//! Reading what the cluster writes: resource quantities (`12345678n`, `250m`, `1234Ki`).

/// Decimal suffixes as powers of ten.
const DECIMAL: [(&str, i32); 10] = [
	("n", -9),
	("u", -6),
	("m", -3),
	("", 0),
	("k", 3),
	("M", 6),
	("G", 9),
	("T", 12),
	("P", 15),
	("E", 18),
];
/// Binary suffixes as powers of two.
const BINARY: [(&str, u32); 6] =
	[("Ki", 10), ("Mi", 20), ("Gi", 30), ("Ti", 40), ("Pi", 50), ("Ei", 60)];

/// A quantity in billionths of its unit (nanocores for CPU, nanobytes for memory), rounded up;
/// `None` if it is not a non-negative quantity or does not fit.
pub(super) fn nanos(text: &str) -> Option<u128> {
	let text = text.strip_prefix('+').unwrap_or(text);
	let end = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
	let (number, suffix) = text.split_at(end);
	let (int, frac) = number.split_once('.').unwrap_or((number, ""));
	if (int.is_empty() && frac.is_empty()) || frac.contains('.') || int.len() + frac.len() > 30 {
		return None;
	}
	let digits: u128 = format!("{int}{frac}").parse().ok()?;
	// The value is digits * 2^two * 10^ten.
	let frac_len = i32::try_from(frac.len()).ok()?;
	let (two, ten) = if let Some(&(_, two)) = BINARY.iter().find(|(s, _)| *s == suffix) {
		(two, 9 - frac_len)
	} else if let Some(&(_, ten)) = DECIMAL.iter().find(|(s, _)| *s == suffix) {
		(0, 9 + ten - frac_len)
	} else {
		// An exponent: `1e3`, `5E-3`.
		let exponent = suffix.strip_prefix(['e', 'E'])?;
		if exponent.is_empty() || exponent.len() > 4 {
			return None;
		}
		(0, 9 + exponent.parse::<i32>().ok()? - frac_len)
	};
	let scaled = digits.checked_mul(1u128.checked_shl(two)?)?;
	if ten >= 0 {
		scaled.checked_mul(10u128.checked_pow(u32::try_from(ten).ok()?)?)
	} else {
		// Below a billionth: rounds up, like the cluster's own arithmetic.
		let divisor = 10u128.checked_pow(ten.unsigned_abs());
		Some(divisor.map_or(u128::from(scaled > 0), |d| scaled.div_ceil(d)))
	}
}

/// A quantity of whole units (bytes), rounded up.
pub(super) fn units(text: &str) -> Option<u64> {
	u64::try_from(nanos(text)?.div_ceil(1_000_000_000)).ok()
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn cpu_quantities() {
		for (text, nanocores) in [
			("12345678n", 12_345_678),
			("250m", 250_000_000),
			("1", 1_000_000_000),
			("1.5", 1_500_000_000),
			("0", 0),
			("3u", 3_000),
			("1e3", 1_000_000_000_000),
			("5E-3", 5_000_000),
			("2k", 2_000_000_000_000),
			("0.5n", 1),
			("+100m", 100_000_000),
		] {
			assert_eq!(nanos(text), Some(nanocores), "{text}");
		}
		for text in ["", "m", "-1", "1x", "1.2.3", "1e", "1e99999", "1 ", "1Ki1", "ﾑ"] {
			assert_eq!(nanos(text), None, "{text}");
		}
	}

	#[test]
	fn byte_quantities() {
		for (text, bytes) in [
			("1234Ki", 1234 * 1024),
			("64Mi", 64 << 20),
			("1.5Gi", 3 << 29),
			("500M", 500_000_000),
			("1024", 1024),
			("1E", 1_000_000_000_000_000_000),
			("1500m", 2),
		] {
			assert_eq!(units(text), Some(bytes), "{text}");
		}
		assert_eq!(units("100Ei"), None, "beyond u64");
	}
}
