//! How the market scales with the number of active deals.
//!
//! Fills the real runtime's storage with 10k, 100k and 1M active deployments, each reserved one
//! with its exhaustion block in the deadline queue, and prints, at each size: the market's
//! per-block hook weight and native time when idle and when a full page of deals runs out of
//! funds (neither may grow with deals), the benchmarked weight of one usage report, how many
//! reports fit in a 6 s block under the normal dispatch class limit (next to the figure before
//! batched payouts), and the native time of a 1000-report batch against that storage.
//!
//! Every scenario is timed twice from the same committed state (nothing it reads is left in the
//! overlay by its setup): in memory, and in a ParityDB database opened as the node opens its own,
//! with the node's trie cache (`database.rs`): cold (the first run after opening it) and warm
//! (the median of later runs). Exits non-zero if the full-page hook's time in the database,
//! cold or warm, at the largest size is more than twice that at the smallest, or above its
//! weight. Run: `cargo bench -p podchain-runtime --bench market_scale`
//! (`MARKET_SCALE_SIZES=10000,100000` for other sizes).

mod database;

use frame_support::{
	dispatch::DispatchClass,
	storage::{with_transaction, TransactionOutcome},
	traits::Hooks,
	weights::Weight,
};
use pallet_market::{
	BillingMode, DealLimits, DeploymentState, Deployments, ExpiryCursor, ExpiryPages,
	NextDeploymentId, UsageReport,
};
use pallet_registry::{CapacityInput, EndpointInput, RegionInput, Registration};
use podchain_primitives::{Prices, Resources};
use podchain_runtime::{
	configs::RuntimeBlockWeights, currency::POD, AccountId, BalancesConfig, BlockTimeConfig,
	Market, Registry, Runtime, RuntimeGenesisConfig, RuntimeOrigin, System,
};
use sp_runtime::{BuildStorage, Percent};
use std::time::Instant;

/// Deals that report usage in every round (and so hold real escrow).
const REPORTING_DEALS: u32 = 1000;
/// tfchain's `bill_contract_for_block`, per contract, for comparison.
const TFCHAIN_NS_PER_CONTRACT: u64 = 82_000;
/// One report's weight and the reports per block before payouts were batched per call
/// (two held transfers per report), measured with this benchmark.
const BEFORE_US_PER_REPORT: u64 = 276;
const BEFORE_REPORTS_PER_BLOCK: u64 = 5_415;
/// Blocks over which the filled deals' exhaustion blocks are spread.
const DEADLINE_SPREAD: u64 = 10_000;
/// Runs of each hook measurement; the median is printed.
const RUNS: usize = 7;

fn account(i: u32) -> AccountId {
	let mut raw = [0u8; 32];
	raw[..4].copy_from_slice(&i.to_le_bytes());
	raw[4] = 0xaa;
	AccountId::from(raw)
}

fn provider() -> AccountId {
	account(u32::MAX)
}

fn bytes(b: &[u8]) -> pallet_registry::InputBytes {
	b.to_vec().try_into().expect("fits")
}

fn genesis() -> sp_io::TestExternalities {
	let mut balances: Vec<_> = (0..REPORTING_DEALS).map(|i| (account(i), 1_000 * POD)).collect();
	balances.push((provider(), 1_000 * POD));
	balances.push((podchain_runtime::configs::TreasuryAccount::get(), POD));
	RuntimeGenesisConfig {
		balances: BalancesConfig { balances, ..Default::default() },
		block_time: BlockTimeConfig { slot_duration_millis: 6000, ..Default::default() },
		..Default::default()
	}
	.build_storage()
	.expect("genesis builds")
	.into()
}

fn small() -> Resources {
	Resources { cpu_millicores: 100, memory_mib: 128, storage_gib: 1, gpus: 0 }
}

/// Registers the provider and creates the deals that report.
fn setup() {
	System::set_block_number(1);
	let big = Resources {
		cpu_millicores: u32::MAX,
		memory_mib: u32::MAX,
		storage_gib: u32::MAX,
		gpus: 0,
	};
	let one = 1u128;
	Registry::register_provider(
		RuntimeOrigin::signed(provider()),
		Registration {
			capacity: CapacityInput { resources: big, gpu_model: bytes(b"") },
			prices: Prices {
				cpu_per_millicore_second: one,
				memory_per_mib_second: one,
				storage_per_gib_second: one,
				gpu_per_second: one,
				egress_per_byte: one,
			},
			rent_discount: Percent::zero(),
			region: RegionInput { country: *b"DE", location: None },
			endpoint: EndpointInput {
				peer_id: bytes(b"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"),
				multiaddrs: vec![bytes(b"/ip4/127.0.0.1/tcp/4001")].try_into().expect("fits"),
			},
			gateway_url: bytes(b"http://127.0.0.1:8080"),
			ingress_domain: bytes(b"apps.provider.test"),
		},
	)
	.expect("provider registers");
	for i in 0..REPORTING_DEALS {
		Market::create_deployment(
			RuntimeOrigin::signed(account(i)),
			provider(),
			[1u8; 32],
			small(),
			BillingMode::Metered,
			None,
			any_price(),
			100 * POD,
		)
		.expect("deal is created");
		Market::accept_deployment(RuntimeOrigin::signed(provider()), i.into()).expect("accepted");
	}
}

fn any_price() -> DealLimits<u128> {
	let max = u128::MAX;
	DealLimits {
		max_prices: Prices {
			cpu_per_millicore_second: max,
			memory_per_mib_second: max,
			storage_per_gib_second: max,
			gpu_per_second: max,
			egress_per_byte: max,
		},
		max_egress_bytes_per_second: 1 << 30,
	}
}

/// Adds copies of deal 0 until `total` deals exist: every other one reserved, with its
/// exhaustion block queued somewhere in the next `DEADLINE_SPREAD` blocks. Storage size, and
/// the queue's, is what matters.
fn fill_to(total: u64, now: u32) {
	let template = Deployments::<Runtime>::get(0).expect("deal 0 exists");
	let mut next = NextDeploymentId::<Runtime>::get();
	while next < total {
		let mut deal = template.clone();
		deal.state = DeploymentState::Active { accepted_at: 1 };
		if next.is_multiple_of(2) {
			deal.billing = BillingMode::Reserved;
			deal.settled_until = now;
			// Escrow that runs out at `runs_out`.
			let runs_out = now as u64 + 1_000 + next % DEADLINE_SPREAD;
			let per_second = deal.prices.per_second(&deal.resources).expect("priced");
			deal.escrow = per_second * 6 * (runs_out - now as u64) as u128;
			pallet_market::Pallet::<Runtime>::schedule_expiry(runs_out as u32, next);
		}
		Deployments::<Runtime>::insert(next, deal);
		next += 1;
	}
	NextDeploymentId::<Runtime>::put(next);
}

/// Reserved deals whose escrow runs out at `at`: a full page of the queue's work.
fn exhaust_page(at: u32, first: u64) {
	use frame_support::traits::Get;
	let page: u32 = <Runtime as pallet_market::Config>::MaxExpiriesPerBlock::get();
	let page = u64::from(page);
	for id in (first..).step_by(2).take(page as usize) {
		Deployments::<Runtime>::mutate(id, |deal| {
			let deal = deal.as_mut().expect("filled");
			let per_second = deal.prices.per_second(&deal.resources).expect("priced");
			deal.settled_until = at - 10;
			deal.escrow = per_second * 6 * 10;
		});
		pallet_market::Pallet::<Runtime>::schedule_expiry(at, id);
	}
}

/// Runs `f` in a storage transaction that is rolled back.
pub(crate) fn rolled_back<R>(f: &mut impl FnMut() -> R) -> R {
	with_transaction(|| TransactionOutcome::Rollback(Ok::<_, sp_runtime::DispatchError>(f())))
		.expect("runs")
}

/// Median native time of `f` run `RUNS` times in memory, each rolled back, in microseconds.
fn median_time<R>(mut f: impl FnMut() -> R) -> (R, f64) {
	let mut times = Vec::new();
	let mut result = None;
	for _ in 0..RUNS {
		let t = Instant::now();
		result = Some(rolled_back(&mut f));
		times.push(t.elapsed().as_secs_f64() * 1e6);
	}
	times.sort_by(|a, b| a.total_cmp(b));
	(result.expect("RUNS > 0"), times[RUNS / 2])
}

/// The committed state of `ext`, as a genesis storage.
fn storage_of(ext: &mut sp_io::TestExternalities) -> sp_storage::Storage {
	use sp_state_machine::Backend as _;
	let backend = ext.as_backend();
	let mut top = std::collections::BTreeMap::new();
	for pair in backend.pairs(Default::default()).expect("the state iterates") {
		let (key, value) = pair.expect("a pair");
		top.insert(key, value);
	}
	sp_storage::Storage { top, children_default: Default::default() }
}

/// One scenario's native times: in memory (median), in the database cold and warm.
#[derive(Clone, Copy)]
struct Times {
	memory: f64,
	cold: f64,
	warm: f64,
}

impl Times {
	fn ms(self) -> String {
		format!("{:.2} / {:.2} / {:.2}", self.memory / 1e3, self.cold / 1e3, self.warm / 1e3)
	}
}

fn reports(start: u32, end: u32) -> Vec<UsageReport<u32>> {
	(0..REPORTING_DEALS as u64)
		.map(|deployment| UsageReport {
			deployment,
			period_start: start,
			period_end: end,
			cpu_millicore_seconds: 50 * 6 * (end - start) as u64,
			memory_mib_seconds: 64 * 6 * (end - start) as u64,
			storage_gib_seconds: 6 * (end - start) as u64,
			gpu_seconds: 0,
			egress_bytes: 1_000,
		})
		.collect()
}

fn main() {
	use frame_support::traits::Get;
	let sizes: Vec<u64> = std::env::var("MARKET_SCALE_SIZES")
		.ok()
		.map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
		.unwrap_or_else(|| vec![10_000, 100_000, 1_000_000]);

	let block_weights = RuntimeBlockWeights::get();
	let normal = block_weights.get(DispatchClass::Normal);
	let normal_limit = normal.max_total.unwrap_or(block_weights.max_block);
	let batch_weight = Market::report_usage_weight(REPORTING_DEALS, 0);
	let per_report = batch_weight.saturating_sub(Market::report_usage_weight(0, 0)).ref_time()
		/ REPORTING_DEALS as u64;
	// A batch's weight includes the extrinsic's base weight, shared by its reports.
	let batch = batch_weight.saturating_add(normal.base_extrinsic).ref_time();
	let fit = normal_limit.ref_time() * REPORTING_DEALS as u64 / batch;

	println!("podchain market scale benchmark (weights: benchmarked; times: native, in memory and in ParityDB)");
	println!(
		"normal class limit {} ms ref-time; one report {} us ref-time (before: {} us; tfchain bills a contract in {} us)",
		normal_limit.ref_time() / 1_000_000_000,
		per_report / 1_000_000,
		BEFORE_US_PER_REPORT,
		TFCHAIN_NS_PER_CONTRACT / 1_000
	);
	println!(
		"usage reports per 6 s block (batches of {REPORTING_DEALS}): {fit}  (before: {BEFORE_REPORTS_PER_BLOCK}; goal: at least 10000)"
	);
	println!();
	println!(
		"weights and times in ms; times: in memory (median of {RUNS}) / ParityDB cold / ParityDB warm (median)"
	);
	println!(
		"{:>9} | {:>8} | {:>22} | {:>10} | {:>22} | {:>22} | {:>8}",
		"deals", "idle w", "idle hook", "page w", "full-page hook", "1000 reports", "filled"
	);

	let mut ext = genesis();
	ext.execute_with(setup);
	let mut block = 1u32;
	let mut hook_costs = Vec::new();
	for size in &sizes {
		let started = Instant::now();
		ext.execute_with(|| fill_to(*size, block));
		let start = block;
		block += 10;
		let page_block = block + 1;
		ext.execute_with(|| {
			// The hook's cursor is up to date, as on a live chain; deadlines are queued for a
			// later block than the current one: the next.
			ExpiryCursor::<Runtime>::put((block, 0));
			assert_eq!(ExpiryPages::<Runtime>::get(page_block), 0, "no deadline here yet");
			exhaust_page(page_block, REPORTING_DEALS as u64 + (REPORTING_DEALS as u64 % 2));
		});
		// Committed, so every scenario reads what it touches from the backend.
		ext.commit_all().expect("storage commits");
		let filled = started.elapsed();
		let db = database::Database::create(storage_of(&mut ext));

		let idle = || {
			System::set_block_number(block);
			Market::on_initialize(block)
		};
		let page = || {
			System::set_block_number(page_block);
			Market::on_initialize(page_block)
		};
		let batch: frame_support::BoundedVec<_, _> =
			reports(start, block).try_into().expect("batch fits");
		let report = || {
			System::set_block_number(block);
			Market::report_usage(RuntimeOrigin::signed(provider()), batch.clone())
				.expect("reports settle")
		};
		let timed = |ext: &mut sp_io::TestExternalities, f: &dyn Fn() -> Weight| {
			let (weight, memory) = ext.execute_with(|| median_time(f));
			let (cold, warm) = db.time(RUNS, f);
			(weight, Times { memory, cold, warm })
		};
		let (idle_w, idle_t) = timed(&mut ext, &idle);
		let (page_w, page_t) = timed(&mut ext, &page);
		let (_, report_t) = timed(&mut ext, &|| {
			report();
			Weight::zero()
		});
		// The reports land for real: the next size bills the next period.
		ext.execute_with(|| {
			report();
			let settled = Deployments::<Runtime>::get(0).expect("deal 0").settled_until;
			assert_eq!(settled, block, "every report settled");
		});
		ext.commit_all().expect("storage commits");
		hook_costs.push((page_t, page_w));
		println!(
			"{:>9} | {:>8.2} | {:>22} | {:>10.2} | {:>22} | {:>22} | {:>6.1} s",
			size,
			idle_w.ref_time() as f64 / 1e9,
			idle_t.ms(),
			page_w.ref_time() as f64 / 1e9,
			page_t.ms(),
			report_t.ms(),
			filled.as_secs_f64()
		);
	}
	let page: u32 = <Runtime as pallet_market::Config>::MaxExpiriesPerBlock::get();
	if let (Some((first, _)), Some((last, weight))) = (hook_costs.first(), hook_costs.last()) {
		let weight_us = weight.ref_time() as f64 / 1e6;
		println!();
		println!(
			"full-page hook ({page} deadlines) in ParityDB, cold / warm: {:.1} / {:.1} us at {} deals, {:.1} / {:.1} us at {} deals; weight {:.1} us",
			first.cold,
			first.warm,
			sizes[0],
			last.cold,
			last.warm,
			sizes[sizes.len() - 1],
			weight_us
		);
		// Constant cost: twice the smallest size's time leaves room for cache effects.
		let grew = last.cold > 2.0 * first.cold.max(1.0) || last.warm > 2.0 * first.warm.max(1.0);
		let over_weight = last.cold.max(last.warm) > weight_us;
		if grew || over_weight {
			eprintln!("the hook's cost grows with the number of deals or exceeds its weight");
			std::process::exit(1);
		}
	}
}
