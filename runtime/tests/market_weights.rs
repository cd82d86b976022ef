//! The market's calls and hook at their worst cases, built here from public calls (not by the
//! benchmarks), run in the real runtime against a state that counts storage accesses as the
//! benchmarks do: each may read and write no more distinct keys than its weight declares in
//! `pallets/market/src/weights.rs`.

use frame_benchmarking::benchmarking;
use frame_support::traits::{Get, Hooks, WhitelistedStorageKeys};
use pallet_market::{BillingMode, CloseReason, DealLimits, Deployments, UsageReport};
use pallet_registry::{CapacityInput, EndpointInput, RegionInput, Registration};
use podchain_primitives::{Prices, Resources, SlaTerms};
use podchain_runtime::{
	currency::POD, AccountId, AllPalletsWithSystem, Balance, BalancesConfig, BlockTimeConfig,
	Market, ProviderStaking, Registry, Runtime, RuntimeGenesisConfig, RuntimeOrigin, Sla, System,
};
use sc_client_db::BenchmarkingState;
use sp_runtime::{traits::BlakeTwo256, BuildStorage, Percent, Permill};
use sp_state_machine::{Ext, OverlayedChanges};

const WEIGHTS: &str = include_str!("../../pallets/market/src/weights.rs");

/// Distinct reads and writes `name` declares for these component values, from the measured
/// (`SubstrateWeight`) implementation.
fn declared(name: &str, components: &[(&str, u64)]) -> (u64, u64) {
	let measured = WEIGHTS
		.split("impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T>")
		.nth(1)
		.expect("weights.rs has the measured implementation");
	let start =
		measured.find(&format!("fn {name}(")).unwrap_or_else(|| panic!("no weight for {name}"));
	let body = &measured[start..];
	let body = &body[..body.find("\n\t}").expect("the function ends")];
	let count = |what: &str| -> u64 {
		body.match_indices(&format!(".{what}("))
			.map(|(at, _)| {
				let args = &body[at + what.len() + 2..];
				let number = |text: &str| -> u64 {
					text.split("_u64").next().unwrap().replace('_', "").parse().unwrap()
				};
				match args.strip_prefix('(') {
					// `(3_u64).saturating_mul(n.into())`: per unit of a component.
					Some(scaled) => {
						let component = scaled
							.split(".saturating_mul(")
							.nth(1)
							.and_then(|rest| rest.split('.').next())
							.expect("a component");
						let value = components
							.iter()
							.find(|(c, _)| *c == component)
							.unwrap_or_else(|| panic!("{name} needs component {component}"))
							.1;
						number(scaled) * value
					}
					None => number(args),
				}
			})
			.sum()
	};
	(count("reads"), count("writes"))
}

fn account(seed: &str, i: u32) -> AccountId {
	let mut raw = [0u8; 32];
	raw[..seed.len().min(28)].copy_from_slice(&seed.as_bytes()[..seed.len().min(28)]);
	raw[28..].copy_from_slice(&i.to_le_bytes());
	AccountId::from(raw)
}

const PROVIDERS: u32 = 64;
const PUBLISHERS: u32 = 64;

fn genesis() -> sp_runtime::Storage {
	let mut balances: Vec<(AccountId, Balance)> = Vec::new();
	for i in 0..PROVIDERS {
		balances.push((account("provider", i), 1_000_000 * POD));
	}
	for i in 0..PUBLISHERS {
		balances.push((account("publisher", i), 1_000_000 * POD));
	}
	balances.push((podchain_runtime::configs::TreasuryAccount::get(), POD));
	RuntimeGenesisConfig {
		balances: BalancesConfig { balances, ..Default::default() },
		block_time: BlockTimeConfig { slot_duration_millis: 6000, ..Default::default() },
		..Default::default()
	}
	.build_storage()
	.expect("genesis builds")
}

fn bytes(b: &[u8]) -> pallet_registry::InputBytes {
	b.to_vec().try_into().expect("fits")
}

/// Dear enough that a grace period's debt is more than a name deposit.
fn dear() -> Resources {
	Resources { cpu_millicores: 1_000_000, memory_mib: 1024, storage_gib: 10, gpus: 0 }
}

fn terms() -> SlaTerms<Balance> {
	let window = <Runtime as pallet_sla::Config>::ProbeWindow::get();
	SlaTerms {
		uptime_target: Permill::from_percent(99),
		window_blocks: window,
		penalty_per_window: POD,
		health: podchain_primitives::HealthCheck::root_ok(),
	}
}

fn any_price() -> DealLimits<Balance> {
	let max = Balance::MAX;
	DealLimits {
		max_prices: Prices {
			cpu_per_millicore_second: max,
			memory_per_mib_second: max,
			storage_per_gib_second: max,
			gpu_per_second: max,
			egress_per_byte: max,
		},
		max_egress_bytes_per_second: 1 << 20,
	}
}

/// Registers provider `i` with room for every scenario, stake, and SLA terms on offer.
fn provider(i: u32) -> AccountId {
	let who = account("provider", i);
	// Room for 16 dear deals; the stake for all of it (a rent) stays within the bond.
	let big =
		Resources { cpu_millicores: 1 << 24, memory_mib: 1 << 20, storage_gib: 1 << 14, gpus: 0 };
	Registry::register_provider(
		RuntimeOrigin::signed(who.clone()),
		Registration {
			capacity: CapacityInput { resources: big, gpu_model: bytes(b"") },
			prices: Prices {
				cpu_per_millicore_second: 1_000,
				memory_per_mib_second: 1,
				storage_per_gib_second: 1,
				gpu_per_second: 1,
				egress_per_byte: 1,
			},
			rent_discount: Percent::from_percent(10),
			region: RegionInput { country: *b"DE", location: None },
			endpoint: EndpointInput {
				peer_id: bytes(b"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"),
				multiaddrs: vec![bytes(b"/ip4/127.0.0.1/tcp/4001")].try_into().expect("fits"),
			},
			gateway_url: bytes(b"http://127.0.0.1:8080"),
			ingress_domain: bytes(b"apps.provider.test"),
		},
	)
	.expect("registers");
	ProviderStaking::bond(RuntimeOrigin::signed(who.clone()), 500_000 * POD).expect("bonds");
	let window = <Runtime as pallet_sla::Config>::ProbeWindow::get();
	Sla::offer_terms(
		RuntimeOrigin::signed(who.clone()),
		Some(pallet_sla::SlaOffer {
			max_uptime_target: Permill::from_percent(99),
			min_window_blocks: window,
			max_window_blocks: window,
			max_penalty_per_window: POD,
		}),
	)
	.expect("offers terms");
	who
}

fn create(
	publisher: &AccountId,
	provider: &AccountId,
	resources: Resources,
	billing: BillingMode,
	deposit: Balance,
) -> u64 {
	let id = pallet_market::NextDeploymentId::<Runtime>::get();
	Market::create_deployment(
		RuntimeOrigin::signed(publisher.clone()),
		provider.clone(),
		[1; 32],
		resources,
		billing,
		Some(terms()),
		any_price(),
		deposit,
	)
	.expect("creates");
	id
}

fn accepted(
	publisher: &AccountId,
	provider: &AccountId,
	resources: Resources,
	billing: BillingMode,
	deposit: Balance,
) -> u64 {
	let id = create(publisher, provider, resources, billing, deposit);
	Market::accept_deployment(RuntimeOrigin::signed(provider.clone()), id).expect("accepts");
	id
}

fn name(id: u64) {
	let publisher = Deployments::<Runtime>::get(id).expect("open").publisher;
	let label = format!("deal-{id}").into_bytes().try_into().expect("fits");
	Market::register_name(RuntimeOrigin::signed(publisher), id, label).expect("names");
}

/// The least deposit for `resources` (an hour at the test providers' prices).
fn prepaid(resources: Resources) -> Balance {
	let seconds: u64 = <Runtime as pallet_market::Config>::MinPrepaidSeconds::get();
	let per_second = 1_000 * resources.cpu_millicores as Balance
		+ resources.memory_mib as Balance
		+ resources.storage_gib as Balance;
	(per_second * seconds as Balance).max(POD)
}

fn set_block(n: u32) {
	System::set_block_number(n);
}

/// A reserved, named deal with SLA terms at the last block of its grace period, nobody having
/// looked at it since its escrow ran out.
fn in_grace(publisher: u32, provider_index: u32) -> (u64, AccountId) {
	let who = provider(provider_index);
	let publisher = account("publisher", publisher);
	let id = accepted(&publisher, &who, dear(), BillingMode::Reserved, prepaid(dear()));
	name(id);
	let bill = Market::bill(id).expect("open");
	let grace: u32 = <Runtime as pallet_market::Config>::GracePeriod::get();
	set_block(bill.funded_until.expect("runs out") + grace - 1);
	(id, who)
}

/// Runs `setup`, then the call it returns with access counting on, as the benchmarks count:
/// the state committed first (so reads are cold), the whitelisted keys not counted. Returns
/// the distinct keys (read, written).
fn measure(setup: impl FnOnce() -> Box<dyn FnOnce()>) -> (u64, u64) {
	let state = BenchmarkingState::<BlakeTwo256>::new(genesis(), None, false, true).expect("state");
	let mut overlay = OverlayedChanges::default();
	let mut ext = Ext::new(&mut overlay, &state, None);
	sp_externalities::set_and_run_with_externalities(&mut ext, || {
		// The keys the benchmark harness itself leaves out: the runtime's, the transactional
		// layer's and two well-known ones (the benchmarks use no whitelisted caller).
		let mut whitelist = AllPalletsWithSystem::whitelisted_storage_keys();
		for key in [
			frame_support::storage::transactional::TRANSACTION_LEVEL_KEY,
			sp_storage::well_known_keys::EXTRINSIC_INDEX,
			sp_storage::well_known_keys::INTRABLOCK_ENTROPY,
		] {
			whitelist.push(key.to_vec().into());
		}
		benchmarking::set_whitelist(whitelist.clone());
		set_block(1);
		let call = setup();
		benchmarking::commit_db();
		for key in &whitelist {
			frame_support::storage::unhashed::get_raw(&key.key);
		}
		benchmarking::reset_read_write_count();
		call();
		benchmarking::commit_db();
		let (reads, _, writes, _) = benchmarking::read_write_count();
		(u64::from(reads), u64::from(writes))
	})
}

fn check(what: &str, used: (u64, u64), declared: (u64, u64)) {
	println!(
		"{what}: used {} reads, {} writes; declared {} reads, {} writes",
		used.0, used.1, declared.0, declared.1
	);
	assert!(
		used.0 <= declared.0 && used.1 <= declared.1,
		"{what} used {used:?} (reads, writes) but declares {declared:?}"
	);
}

#[test]
fn accept_of_a_reserved_deal_with_sla_terms() {
	let used = measure(|| {
		let who = provider(0);
		let id =
			create(&account("publisher", 0), &who, dear(), BillingMode::Reserved, prepaid(dear()));
		Box::new(move || {
			Market::accept_deployment(RuntimeOrigin::signed(who), id).expect("accepts");
		})
	});
	check("accept_deployment", used, declared("accept_deployment", &[]));
}

#[test]
fn accept_of_a_rent() {
	let used = measure(|| {
		let who = provider(0);
		let id = pallet_market::NextDeploymentId::<Runtime>::get();
		Market::create_rent(
			RuntimeOrigin::signed(account("publisher", 0)),
			who.clone(),
			any_price(),
			1_000_000 * POD / 2,
		)
		.expect("rents");
		Box::new(move || {
			Market::accept_deployment(RuntimeOrigin::signed(who), id).expect("accepts");
		})
	});
	check("accept_deployment (rent)", used, declared("accept_deployment", &[]));
}

#[test]
fn provider_closes_a_deal_in_debt() {
	let used = measure(|| {
		let (id, who) = in_grace(0, 0);
		Box::new(move || {
			Market::close_deployment(RuntimeOrigin::signed(who), id, CloseReason::OutOfFunds)
				.expect("closes");
			assert!(pallet_market::UnpaidDebts::<Runtime>::get(account("publisher", 0)).deals == 1);
		})
	});
	check("close_deployment", used, declared("close_deployment", &[]));
}

#[test]
fn top_up_of_a_deal_in_grace() {
	let used = measure(|| {
		let (id, _) = in_grace(0, 0);
		Box::new(move || {
			Market::top_up(RuntimeOrigin::signed(account("publisher", 0)), id, 100_000 * POD)
				.expect("tops up");
		})
	});
	check("top_up", used, declared("top_up", &[]));
}

#[test]
fn settle_after_the_grace_period() {
	let used = measure(|| {
		let (id, _) = in_grace(0, 0);
		set_block(System::block_number() + 1);
		Box::new(move || {
			Market::settle(RuntimeOrigin::signed(account("publisher", 1)), id).expect("settles");
			assert!(Deployments::<Runtime>::get(id).is_none());
		})
	});
	check("settle", used, declared("settle", &[]));
}

#[test]
fn report_batches_that_bill_and_that_end_deals() {
	const N: u64 = 16;
	for ending in [0, N] {
		let used = measure(|| {
			let who = provider(0);
			let start = System::block_number();
			let ids: Vec<u64> = (0..N as u32)
				.map(|i| {
					let publisher = account("publisher", i);
					if u64::from(i) < ending {
						let id = accepted(
							&publisher,
							&who,
							dear(),
							BillingMode::Metered,
							prepaid(dear()),
						);
						name(id);
						id
					} else {
						accepted(
							&publisher,
							&who,
							Resources {
								cpu_millicores: 100,
								memory_mib: 64,
								storage_gib: 1,
								gpus: 0,
							},
							BillingMode::Metered,
							1_000 * POD,
						)
					}
				})
				.collect();
			// Long enough that a dear deal's bill is more than its escrow and name deposit.
			let end = start + 2_000;
			set_block(end);
			for id in ids.iter().take(ending as usize) {
				let publisher = Deployments::<Runtime>::get(id).expect("open").publisher;
				Market::close_deployment(
					RuntimeOrigin::signed(publisher),
					*id,
					CloseReason::PublisherRequest,
				)
				.expect("closes");
			}
			let reports: Vec<UsageReport<u32>> = ids
				.iter()
				.map(|&deployment| {
					let deal = Deployments::<Runtime>::get(deployment).expect("open");
					let seconds = 6 * u64::from(end - start);
					let full = |reserved: u32| u64::from(reserved) * seconds;
					UsageReport {
						deployment,
						period_start: start,
						period_end: end,
						cpu_millicore_seconds: full(deal.resources.cpu_millicores),
						memory_mib_seconds: full(deal.resources.memory_mib),
						storage_gib_seconds: full(deal.resources.storage_gib),
						gpu_seconds: 0,
						egress_bytes: 1_000,
					}
				})
				.collect();
			Box::new(move || {
				Market::report_usage(RuntimeOrigin::signed(who), reports.try_into().expect("fits"))
					.expect("reports");
				let open =
					(0..N).filter(|id| Deployments::<Runtime>::contains_key(id)).count() as u64;
				assert_eq!(open, N - ending, "every ending report ended its deal");
			})
		});
		check(&format!("report_usage({N}, {ending})"), used, {
			// The batch's weight is the sum of its two benchmarks.
			let billing = declared("report_usage_billing", &[("n", N - ending)]);
			let ending = declared("report_usage_ending", &[("e", ending)]);
			(billing.0 + ending.0, billing.1 + ending.1)
		});
	}
}

#[test]
fn the_hook_with_a_page_of_grace_ends_from_distinct_providers() {
	let page: u32 = <Runtime as pallet_market::Config>::MaxExpiriesPerBlock::get();
	let used = measure(|| {
		let grace: u32 = <Runtime as pallet_market::Config>::GracePeriod::get();
		let mut last = 0;
		for i in 0..page {
			set_block(1);
			let who = provider(i);
			let id = accepted(
				&account("publisher", i),
				&who,
				dear(),
				BillingMode::Reserved,
				prepaid(dear()),
			);
			name(id);
			last = Market::bill(id).expect("open").funded_until.expect("runs out");
		}
		// Every deal ran out at the same block; the hook puts them out of funds, then the grace
		// ends.
		for block in 2..=last {
			set_block(block);
			Market::on_initialize(block);
		}
		let grace_ends = last + grace;
		for block in last + 1..grace_ends {
			set_block(block);
			Market::on_initialize(block);
		}
		set_block(grace_ends);
		Box::new(move || {
			Market::on_initialize(grace_ends);
			assert_eq!(Deployments::<Runtime>::iter().count(), 0, "every deal ended");
		})
	});
	check("on_initialize", used, declared("on_initialize", &[("n", u64::from(page))]));
}

#[test]
fn names_and_manifests() {
	let used = measure(|| {
		let who = provider(0);
		let id =
			accepted(&account("publisher", 0), &who, dear(), BillingMode::Metered, prepaid(dear()));
		Box::new(move || name(id))
	});
	check("register_name", used, declared("register_name", &[]));
	let used = measure(|| {
		let who = provider(0);
		let id =
			accepted(&account("publisher", 0), &who, dear(), BillingMode::Metered, prepaid(dear()));
		name(id);
		Box::new(move || {
			Market::release_name(RuntimeOrigin::signed(account("publisher", 0)), id)
				.expect("releases")
		})
	});
	check("release_name", used, declared("release_name", &[]));
	let used = measure(|| {
		let who = provider(0);
		let id =
			accepted(&account("publisher", 0), &who, dear(), BillingMode::Metered, prepaid(dear()));
		Box::new(move || {
			Market::update_manifest(RuntimeOrigin::signed(account("publisher", 0)), id, [2; 32])
				.expect("asks")
		})
	});
	check("update_manifest", used, declared("update_manifest", &[]));
}

#[test]
fn creating_deals_and_rents() {
	let used = measure(|| {
		let who = provider(0);
		Box::new(move || {
			create(&account("publisher", 0), &who, dear(), BillingMode::Reserved, prepaid(dear()));
		})
	});
	check("create_deployment", used, declared("create_deployment", &[]));
	let used = measure(|| {
		let who = provider(0);
		let renter = account("publisher", 0);
		let rent = pallet_market::NextDeploymentId::<Runtime>::get();
		Market::create_rent(
			RuntimeOrigin::signed(renter.clone()),
			who.clone(),
			any_price(),
			1_000_000 * POD / 2,
		)
		.expect("rents");
		Market::accept_deployment(RuntimeOrigin::signed(who.clone()), rent).expect("accepts");
		Box::new(move || {
			create(
				&renter,
				&who,
				Resources { cpu_millicores: 100, ..dear() },
				BillingMode::Metered,
				POD,
			);
		})
	});
	check("create_deployment (in a rent)", used, declared("create_deployment", &[]));
	let used = measure(|| {
		let who = provider(0);
		Box::new(move || {
			Market::create_rent(
				RuntimeOrigin::signed(account("publisher", 0)),
				who,
				any_price(),
				1_000_000 * POD / 2,
			)
			.expect("rents");
		})
	});
	check("create_rent", used, declared("create_rent", &[]));
}
