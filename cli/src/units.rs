//! Amounts of POD and durations, as people type and read them.

use std::time::Duration;

/// Planck in one POD (12 decimals).
pub const PLANCK_PER_POD: u128 = 1_000_000_000_000;

/// Parses an amount of POD: `10`, `2.5`, `0.001` (at most 12 decimals), or planck with a
/// `planck` suffix (`1500planck`).
pub fn parse_pod(text: &str) -> Result<u128, String> {
	let text = text.trim();
	let invalid = || format!("{text:?} is not an amount of POD (e.g. 10, 2.5 or 1500planck)");
	if let Some(planck) = text.strip_suffix("planck") {
		return planck.trim().parse().map_err(|_| invalid());
	}
	let text = text.strip_suffix("POD").unwrap_or(text).trim();
	let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
	if whole.is_empty() && fraction.is_empty()
		|| fraction.len() > 12
		|| !whole.bytes().all(|b| b.is_ascii_digit())
		|| !fraction.bytes().all(|b| b.is_ascii_digit())
	{
		return Err(invalid());
	}
	let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| invalid())? };
	let fraction: u128 = format!("{fraction:0<12}").parse().map_err(|_| invalid())?;
	whole
		.checked_mul(PLANCK_PER_POD)
		.and_then(|w| w.checked_add(fraction))
		.ok_or_else(|| format!("{text} POD is too large"))
}

/// Formats planck as POD with up to 6 decimals, trailing zeros dropped (`2.5 POD`).
pub fn format_pod(planck: u128) -> String {
	let whole = planck / PLANCK_PER_POD;
	let micro = (planck % PLANCK_PER_POD) / 1_000_000;
	if micro == 0 {
		if !planck.is_multiple_of(PLANCK_PER_POD) {
			return format!("{planck} planck");
		}
		return format!("{whole} POD");
	}
	let fraction = format!("{micro:06}");
	format!("{whole}.{} POD", fraction.trim_end_matches('0'))
}

/// A byte count for people: `512 B`, `1.5 KiB`, `200.0 MiB`, `3.2 GiB`.
pub fn format_bytes(bytes: u64) -> String {
	const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
	if bytes < 1024 {
		return format!("{bytes} B");
	}
	let mut value = bytes as f64 / 1024.0;
	let mut unit = 0;
	while value >= 1024.0 && unit < UNITS.len() - 1 {
		value /= 1024.0;
		unit += 1;
	}
	format!("{value:.1} {}", UNITS[unit])
}

/// A rate of bytes per second: a number with an optional binary unit (`500KiB`, `10MiB`,
/// `1GiB`; plain numbers are bytes), `/s` optional.
pub fn parse_bytes_per_second(text: &str) -> Result<u64, String> {
	let trimmed = text.trim();
	let number = trimmed.strip_suffix("/s").unwrap_or(trimmed);
	let invalid = || format!("{text:?} is not a rate (e.g. 500KiB, 10MiB or 1GiB per second)");
	let unit_at = number.find(|c: char| !c.is_ascii_digit()).unwrap_or(number.len());
	let value: u64 = number[..unit_at].parse().map_err(|_| invalid())?;
	let factor: u64 = match &number[unit_at..] {
		"" | "B" => 1,
		"KiB" => 1 << 10,
		"MiB" => 1 << 20,
		"GiB" => 1 << 30,
		_ => return Err(invalid()),
	};
	value.checked_mul(factor).ok_or_else(invalid)
}

/// Parses a duration: a number and a unit, `s`, `m`, `h` or `d` (`90s`, `30m`, `24h`, `7d`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
	let text = text.trim();
	let invalid = || format!("{text:?} is not a duration (e.g. 30m, 24h or 7d)");
	let unit_at = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(invalid)?;
	let (number, unit) = text.split_at(unit_at);
	let number: u64 = number.parse().map_err(|_| invalid())?;
	let seconds = match unit {
		"s" => 1,
		"m" => 60,
		"h" => 3600,
		"d" => 86_400,
		_ => return Err(invalid()),
	};
	let total = number.checked_mul(seconds).filter(|s| *s > 0).ok_or_else(invalid)?;
	Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn byte_counts_read_well() {
		assert_eq!(format_bytes(0), "0 B");
		assert_eq!(format_bytes(1023), "1023 B");
		assert_eq!(format_bytes(1536), "1.5 KiB");
		assert_eq!(format_bytes(200 << 20), "200.0 MiB");
		assert_eq!(format_bytes(u64::MAX), "16777216.0 TiB");
	}

	#[test]
	fn amounts_parse_in_pod_or_planck() {
		assert_eq!(parse_pod("10"), Ok(10 * PLANCK_PER_POD));
		assert_eq!(parse_pod("2.5"), Ok(2_500_000_000_000));
		assert_eq!(parse_pod(".001 POD"), Ok(1_000_000_000));
		assert_eq!(parse_pod("0.000000000001"), Ok(1));
		assert_eq!(parse_pod("1500planck"), Ok(1500));
		for bad in ["", ".", "-1", "1.2.3", "0.0000000000001", "ten", "1e3"] {
			assert!(parse_pod(bad).is_err(), "{bad}");
		}
		assert!(parse_pod("999999999999999999999999999999").is_err());
	}

	#[test]
	fn amounts_print_readably() {
		assert_eq!(format_pod(10 * PLANCK_PER_POD), "10 POD");
		assert_eq!(format_pod(2_500_000_000_000), "2.5 POD");
		assert_eq!(format_pod(1_000_000), "0.000001 POD");
		assert_eq!(format_pod(1500), "1500 planck");
	}

	#[test]
	fn rates_parse_with_binary_units() {
		assert_eq!(parse_bytes_per_second("1500"), Ok(1500));
		assert_eq!(parse_bytes_per_second("10MiB"), Ok(10 << 20));
		assert_eq!(parse_bytes_per_second("2GiB/s"), Ok(2 << 30));
		assert!(parse_bytes_per_second("10MB").is_err());
		assert!(parse_bytes_per_second("fast").is_err());
		assert!(parse_bytes_per_second("99999999999999GiB").is_err());
	}

	#[test]
	fn durations_need_a_unit() {
		assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
		assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
		assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
		for bad in ["24", "h", "0h", "1w", "-1h", "1.5h"] {
			assert!(parse_duration(bad).is_err(), "{bad}");
		}
	}
}
