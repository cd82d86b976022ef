//! The terms `podchain deploy` asks the chain to hold a provider to: the highest per-unit
//! prices (the quote it showed, or up to `--max-price` per hour), the most egress per second,
//! and a deposit that covers the chain's minimum prepaid time.

use podchain_chain::{runtime::runtime_types as types, Balance};

/// A provider's per-unit prices, as the chain stores them.
pub type Prices = types::podchain_primitives::Prices<Balance>;

/// Egress a deal agrees to pay for unless `--max-egress` says otherwise: 10 MiB/s.
pub const DEFAULT_MAX_EGRESS: u64 = 10 * 1024 * 1024;

/// Highest per-unit prices to accept for a deal the provider quoted `quote` for, costing
/// `quoted_per_hour`. Without `max_per_hour` the quote itself: any rise before the deal
/// executes makes the chain refuse it. With it, every unit may rise in the same proportion
/// as `max_per_hour` is above the quoted hour.
pub fn price_limits(
	quote: &Prices,
	quoted_per_hour: Balance,
	max_per_hour: Option<Balance>,
) -> Result<Prices, String> {
	let Some(max) = max_per_hour else { return Ok(clone(quote)) };
	if max < quoted_per_hour {
		return Err(format!(
			"--max-price is below the provider's quote ({max} < {quoted_per_hour} planck per hour)"
		));
	}
	if quoted_per_hour == 0 {
		return Ok(clone(quote));
	}
	// unit × max / quoted, rounded down, saturating: a limit can only be looser than asked
	// when it is already beyond any price a report could use without overflowing.
	let scale = |unit: Balance| {
		unit.checked_mul(max).map_or(Balance::MAX, |scaled| scaled / quoted_per_hour)
	};
	Ok(Prices {
		cpu_per_millicore_second: scale(quote.cpu_per_millicore_second),
		memory_per_mib_second: scale(quote.memory_per_mib_second),
		storage_per_gib_second: scale(quote.storage_per_gib_second),
		gpu_per_second: scale(quote.gpu_per_second),
		egress_per_byte: scale(quote.egress_per_byte),
	})
}

fn clone(p: &Prices) -> Prices {
	Prices {
		cpu_per_millicore_second: p.cpu_per_millicore_second,
		memory_per_mib_second: p.memory_per_mib_second,
		storage_per_gib_second: p.storage_per_gib_second,
		gpu_per_second: p.gpu_per_second,
		egress_per_byte: p.egress_per_byte,
	}
}

/// The least deposit the chain takes for a deal costing `per_hour`: its resources for
/// `min_prepaid_seconds`, and never below `min_deposit`.
pub fn least_deposit(per_hour: Balance, min_prepaid_seconds: u64, min_deposit: Balance) -> Balance {
	per_hour.saturating_mul(u128::from(min_prepaid_seconds)).div_ceil(3600).max(min_deposit)
}

/// The egress limit to ask for: `asked` (or the default), which must be positive and within
/// what the chain allows any deal.
pub fn egress_limit(asked: Option<u64>, chain_max: u64) -> Result<u64, String> {
	let limit = asked.unwrap_or(DEFAULT_MAX_EGRESS.min(chain_max));
	if limit == 0 {
		return Err("--max-egress must be above 0".into());
	}
	if limit > chain_max {
		return Err(format!(
			"--max-egress {limit} B/s is above the chain's limit of {chain_max} B/s"
		));
	}
	Ok(limit)
}

#[cfg(test)]
mod tests {
	use super::*;

	fn quote() -> Prices {
		Prices {
			cpu_per_millicore_second: 10,
			memory_per_mib_second: 3,
			storage_per_gib_second: 7,
			gpu_per_second: 0,
			egress_per_byte: 1,
		}
	}

	#[test]
	fn without_a_max_price_the_limits_are_the_quote() {
		let limits = price_limits(&quote(), 1_000, None).unwrap();
		assert_eq!(limits.cpu_per_millicore_second, 10);
		assert_eq!(limits.egress_per_byte, 1);
	}

	#[test]
	fn a_max_price_lets_every_unit_rise_in_proportion() {
		// 50% above the quoted hour.
		let limits = price_limits(&quote(), 1_000, Some(1_500)).unwrap();
		assert_eq!(limits.cpu_per_millicore_second, 15);
		assert_eq!(limits.memory_per_mib_second, 4);
		assert_eq!(limits.storage_per_gib_second, 10);
		assert_eq!(limits.gpu_per_second, 0);
		assert_eq!(limits.egress_per_byte, 1);
		assert!(price_limits(&quote(), 1_000, Some(999)).is_err());
		let huge = Prices { cpu_per_millicore_second: Balance::MAX, ..quote() };
		assert_eq!(price_limits(&huge, 1, Some(2)).unwrap().cpu_per_millicore_second, Balance::MAX);
	}

	#[test]
	fn the_least_deposit_covers_the_prepaid_time_and_the_floor() {
		assert_eq!(least_deposit(3_600, 3_600, 1), 3_600);
		assert_eq!(least_deposit(3_600, 60, 1), 60);
		assert_eq!(least_deposit(3_600, 60, 100), 100);
		assert_eq!(least_deposit(1, 1, 0), 1, "rounds up");
	}

	#[test]
	fn egress_limits_stay_within_the_chain() {
		assert_eq!(egress_limit(None, u64::MAX).unwrap(), DEFAULT_MAX_EGRESS);
		assert_eq!(egress_limit(None, 1_000).unwrap(), 1_000);
		assert_eq!(egress_limit(Some(5), 1_000).unwrap(), 5);
		assert!(egress_limit(Some(0), 1_000).is_err());
		assert!(egress_limit(Some(1_001), 1_000).is_err());
	}
}
