//! How the market scales with the number of active deals.
//!
//! Fills the real runtime's storage with 10k, 100k and 1M active deployments and prints, at each
//! size: the market's per-block hook weight (it must not grow with deals), the benchmarked
//! weight of one usage report, how many reports fit in a 6 s block under the normal dispatch
//! class limit, and the measured native time of the hook and of a 1000-report batch against
//! that storage. Run: `cargo bench -p podchain-runtime --bench market_scale`
//! (`MARKET_SCALE_SIZES=10000,100000` for other sizes).

use frame_support::{dispatch::DispatchClass, traits::Hooks, weights::Weight};
use pallet_market::{
	BillingMode, DeploymentState, Deployments, NextDeploymentId, UsageReport, WeightInfo,
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

type MarketWeights = <Runtime as pallet_market::Config>::WeightInfo;

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
			health_url: bytes(b"http://127.0.0.1:8080/healthz"),
			attestation: None,
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
			100 * POD,
		)
		.expect("deal is created");
		Market::accept_deployment(RuntimeOrigin::signed(provider()), i.into()).expect("accepted");
	}
}

/// Adds inactive copies of deal 0 until `total` deals exist (storage size is what matters).
fn fill_to(total: u64) {
	let template = Deployments::<Runtime>::get(0).expect("deal 0 exists");
	let mut next = NextDeploymentId::<Runtime>::get();
	while next < total {
		let mut deal = template.clone();
		deal.state = DeploymentState::Active { accepted_at: 1 };
		Deployments::<Runtime>::insert(next, deal);
		next += 1;
	}
	NextDeploymentId::<Runtime>::put(next);
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
	let sizes: Vec<u64> = std::env::var("MARKET_SCALE_SIZES")
		.ok()
		.map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
		.unwrap_or_else(|| vec![10_000, 100_000, 1_000_000]);

	let block_weights = RuntimeBlockWeights::get();
	let normal = block_weights.get(DispatchClass::Normal);
	let normal_limit = normal.max_total.unwrap_or(block_weights.max_block);
	let per_report = MarketWeights::report_usage(REPORTING_DEALS)
		.saturating_sub(MarketWeights::report_usage(0))
		.ref_time()
		/ REPORTING_DEALS as u64;
	// A batch's weight includes the extrinsic's base weight, shared by its reports.
	let batch = MarketWeights::report_usage(REPORTING_DEALS)
		.saturating_add(normal.base_extrinsic)
		.ref_time();
	let fit = normal_limit.ref_time() * REPORTING_DEALS as u64 / batch;

	println!("podchain market scale benchmark (weights: benchmarked, times: native, in-memory)");
	println!(
		"normal class limit {} ms ref-time; one report {} us ref-time (tfchain bills a contract in {} us)",
		normal_limit.ref_time() / 1_000_000_000,
		per_report / 1_000_000,
		TFCHAIN_NS_PER_CONTRACT / 1_000
	);
	println!(
		"usage reports per 6 s block (batches of {REPORTING_DEALS}): {fit}  [goal: at least 5000]"
	);
	println!();
	println!(
		"{:>10} | {:>18} | {:>16} | {:>22} | {:>18}",
		"deals", "hook weight (us)", "hook time (us)", "1000 reports time (ms)", "per report (us)"
	);

	let mut ext = genesis();
	ext.execute_with(setup);
	let mut block = 1u32;
	for size in sizes {
		let started = Instant::now();
		ext.execute_with(|| fill_to(size));
		ext.commit_all().expect("storage commits");
		let filled = started.elapsed();

		let (hook_weight, hook_time, report_time) = ext.execute_with(|| {
			let start = block;
			block += 10;
			System::set_block_number(block);
			let t = Instant::now();
			let hook_weight: Weight = Market::on_initialize(block);
			let hook_time = t.elapsed();
			let batch = reports(start, block).try_into().expect("batch fits");
			let t = Instant::now();
			Market::report_usage(RuntimeOrigin::signed(provider()), batch).expect("reports settle");
			let report_time = t.elapsed();
			let settled = Deployments::<Runtime>::get(0).expect("deal 0").settled_until;
			assert_eq!(settled, block, "every report settled");
			(hook_weight, hook_time, report_time)
		});
		ext.commit_all().expect("storage commits");
		println!(
			"{:>10} | {:>18.1} | {:>16.1} | {:>22.1} | {:>18.2}   (filled in {:.1} s)",
			size,
			hook_weight.ref_time() as f64 / 1e6,
			hook_time.as_secs_f64() * 1e6,
			report_time.as_secs_f64() * 1e3,
			report_time.as_secs_f64() * 1e6 / REPORTING_DEALS as f64,
			filled.as_secs_f64()
		);
	}
}
