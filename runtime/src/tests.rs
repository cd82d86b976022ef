//! Checks of the runtime's genesis presets and wiring.

use crate::{
	currency::POD, Aura, BlockTime, Runtime, RuntimeGenesisConfig, DEVELOPMENT_PRESET,
	LOCAL_TESTNET_PRESET,
};
use frame_support::{
	genesis_builder_helper::{build_state, get_preset},
	traits::{fungible::Inspect, Get},
};
use serde_json::Value;
use sp_keyring::Sr25519Keyring;

/// Applies a JSON patch to `base` the way chain specs apply presets: objects merge key by key,
/// anything else replaces.
fn merge(base: &mut Value, patch: Value) {
	match (base, patch) {
		(Value::Object(base), Value::Object(patch)) => {
			for (key, value) in patch {
				merge(base.entry(key).or_insert(Value::Null), value);
			}
		}
		(base, patch) => *base = patch,
	}
}

/// Externalities holding the genesis state of a preset, built the way the node builds it.
fn genesis_of(preset: &str) -> sp_io::TestExternalities {
	let patch = get_preset::<RuntimeGenesisConfig>(
		&Some(preset.into()),
		crate::genesis_config_presets::get_preset,
	)
	.expect("the preset exists");
	let mut config = serde_json::to_value(RuntimeGenesisConfig::default()).expect("serializes");
	merge(&mut config, serde_json::from_slice(&patch).expect("the preset is JSON"));
	let config = serde_json::to_vec(&config).expect("serializes");
	let mut ext = sp_io::TestExternalities::default();
	ext.execute_with(|| build_state::<RuntimeGenesisConfig>(config).expect("the preset builds"));
	ext
}

#[test]
fn development_preset_has_one_validator_and_fast_blocks() {
	genesis_of(DEVELOPMENT_PRESET).execute_with(|| {
		assert_eq!(pallet_aura::Authorities::<Runtime>::get().len(), 1);
		assert_eq!(pallet_grandpa::Pallet::<Runtime>::grandpa_authorities().len(), 1);
		assert_eq!(BlockTime::slot_duration(), 1000);
		assert_eq!(Aura::slot_duration(), 1000);
		assert_eq!(<<Runtime as pallet_timestamp::Config>::MinimumPeriod as Get<u64>>::get(), 500);
		let alice = Sr25519Keyring::Alice.to_account_id();
		assert_eq!(pallet_sudo::Key::<Runtime>::get(), Some(alice.clone()));
		assert_eq!(pallet_balances::Pallet::<Runtime>::balance(&alice), 1_000_000 * POD);
		assert_eq!(
			pallet_balances::Pallet::<Runtime>::balance(&Sr25519Keyring::Ferdie.to_account_id()),
			1_000_000 * POD
		);
		// The treasury exists from genesis, so protocol fees of any size can be paid in.
		assert_eq!(
			pallet_balances::Pallet::<Runtime>::balance(&crate::configs::TreasuryAccount::get()),
			POD
		);
	});
}

#[test]
fn local_testnet_preset_has_four_validators_and_six_second_blocks() {
	genesis_of(LOCAL_TESTNET_PRESET).execute_with(|| {
		assert_eq!(pallet_aura::Authorities::<Runtime>::get().len(), 4);
		assert_eq!(pallet_grandpa::Pallet::<Runtime>::grandpa_authorities().len(), 4);
		assert_eq!(Aura::slot_duration(), 6000);
		assert_eq!(<<Runtime as pallet_timestamp::Config>::MinimumPeriod as Get<u64>>::get(), 3000);
	});
}

#[test]
fn unknown_preset_is_refused() {
	assert!(crate::genesis_config_presets::get_preset(&"mainnet".into()).is_none());
}

/// Where the chain client's generated API (`client/chain`) takes the runtime's metadata from.
const CLIENT_METADATA: &str =
	concat!(env!("CARGO_MANIFEST_DIR"), "/../client/chain/metadata/podchain.scale");

/// The agent and the CLI are compiled against `CLIENT_METADATA`: it must describe this runtime.
/// `PODCHAIN_UPDATE_METADATA=1 cargo test --release -p podchain-runtime client_metadata`
/// rewrites it after a runtime change.
#[test]
fn client_metadata_is_current() {
	// Some constants (the slot duration) are read from storage: take them from the dev chain.
	let metadata = genesis_of(DEVELOPMENT_PRESET)
		.execute_with(|| Runtime::metadata_at_version(16))
		.expect("the runtime serves metadata v16");
	let metadata: &[u8] = &metadata;
	assert!(metadata.starts_with(b"meta"), "metadata starts with its magic number");
	if std::env::var_os("PODCHAIN_UPDATE_METADATA").is_some() {
		std::fs::write(CLIENT_METADATA, metadata).expect("writes the client's metadata");
	}
	let committed = std::fs::read(CLIENT_METADATA).unwrap_or_default();
	assert!(
		committed == metadata,
		"{CLIENT_METADATA} is not this runtime's metadata: rerun this test with \
		 PODCHAIN_UPDATE_METADATA=1 and rebuild the clients"
	);
}

/// The market, provider staking, the SLA pallet and the registry working together on the
/// development genesis.
mod stake_and_sla {
	use super::*;
	use crate::{Market, ProviderStaking, Registry, RuntimeOrigin, Sla};
	use codec::Encode;
	use frame_support::{assert_noop, assert_ok, traits::Hooks};
	use pallet_market::{BillingMode, SlaTerms};
	use pallet_registry::{CapacityInput, EndpointInput, InputBytes, RegionInput, Registration};
	use podchain_primitives::{Prices, Resources};
	use sp_core::Pair;
	use sp_runtime::{AccountId32, Percent, Permill};

	fn bytes(b: &[u8]) -> InputBytes {
		b.to_vec().try_into().unwrap()
	}

	fn register(provider: &AccountId32) {
		let registration = Registration {
			capacity: CapacityInput {
				resources: Resources {
					cpu_millicores: 4000,
					memory_mib: 8192,
					storage_gib: 100,
					gpus: 0,
				},
				gpu_model: bytes(b""),
			},
			prices: Prices {
				cpu_per_millicore_second: 1,
				memory_per_mib_second: 1,
				storage_per_gib_second: 1,
				gpu_per_second: 0,
				egress_per_byte: 0,
			},
			rent_discount: Percent::zero(),
			region: RegionInput { country: *b"DE", location: None },
			endpoint: EndpointInput {
				peer_id: bytes(b"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"),
				multiaddrs: vec![bytes(b"/ip4/127.0.0.1/tcp/4001")].try_into().unwrap(),
			},
			gateway_url: bytes(b"http://127.0.0.1:9999"),
			ingress_domain: bytes(b"apps.bob.test"),
		};
		assert_ok!(Registry::register_provider(
			RuntimeOrigin::signed(provider.clone()),
			registration
		));
	}

	/// Limits that admit any quote.
	fn any_price() -> pallet_market::DealLimits<crate::Balance> {
		pallet_market::DealLimits {
			max_prices: Prices {
				cpu_per_millicore_second: crate::Balance::MAX,
				memory_per_mib_second: crate::Balance::MAX,
				storage_per_gib_second: crate::Balance::MAX,
				gpu_per_second: crate::Balance::MAX,
				egress_per_byte: crate::Balance::MAX,
			},
			max_egress_bytes_per_second: crate::configs::MaxEgressBytesPerSecond::get(),
		}
	}

	fn run_to(n: u32) {
		while frame_system::Pallet::<Runtime>::block_number() < n {
			let next = frame_system::Pallet::<Runtime>::block_number() + 1;
			frame_system::Pallet::<Runtime>::set_block_number(next);
			Market::on_initialize(next);
			Sla::on_initialize(next);
		}
	}

	/// Alice, the dev chain's validator and only prober, finds `provider`'s sampled deals up
	/// or down.
	fn probe(provider: &AccountId32, up: bool) {
		let window = Sla::window_of(frame_system::Pallet::<Runtime>::block_number());
		let verdict = if up { pallet_sla::Verdict::Up } else { pallet_sla::Verdict::Down };
		let verdicts: Vec<_> =
			Sla::sample(provider, window).into_iter().map(|id| (id, verdict)).collect();
		let probe = pallet_sla::Probe {
			provider: provider.clone(),
			window,
			prober: 0,
			verdicts: verdicts.try_into().unwrap(),
		};
		let signature = Sr25519Keyring::Alice.pair().sign(&probe.encode());
		assert_ok!(Sla::submit_probe(RuntimeOrigin::none(), probe, signature.into()));
	}

	fn compensated_to(publisher: &AccountId32) -> crate::Balance {
		frame_system::Pallet::<Runtime>::events()
			.into_iter()
			.filter_map(|r| match r.event {
				crate::RuntimeEvent::Sla(pallet_sla::Event::PenaltySlashed {
					deal,
					compensated,
					..
				}) if pallet_sla::Tracked::<Runtime>::get(deal)
					.is_some_and(|d| &d.publisher == publisher) =>
				{
					Some(compensated)
				}
				_ => None,
			})
			.sum()
	}

	/// The provider launders stake to an alternate account through an SLA deal with a huge
	/// penalty: never named running, the deal moves nothing; named and found down, it moves
	/// at most what the alternate account paid. Accepting needs stake for the deal, and the
	/// committed stake cannot leave while it runs.
	#[test]
	fn an_sla_deal_moves_at_most_what_it_paid_and_nothing_unless_measured() {
		genesis_of(DEVELOPMENT_PRESET).execute_with(|| {
			run_to(1);
			let provider = Sr25519Keyring::Bob.to_account_id();
			let alternate = Sr25519Keyring::Charlie.to_account_id();
			register(&provider);
			let terms = SlaTerms {
				uptime_target: Permill::from_percent(99),
				window_blocks: 20,
				penalty_per_window: 1_000 * POD,
				health: podchain_primitives::HealthCheck::root_ok(),
			};
			let resources =
				Resources { cpu_millicores: 1000, memory_mib: 1024, storage_gib: 10, gpus: 0 };
			let create = || {
				Market::create_deployment(
					RuntimeOrigin::signed(alternate.clone()),
					provider.clone(),
					[1; 32],
					resources,
					BillingMode::Reserved,
					Some(terms.clone()),
					any_price(),
					100 * POD,
				)
			};
			assert_noop!(create(), pallet_market::Error::<Runtime>::SlaNotOffered);
			assert_ok!(Sla::offer_terms(
				RuntimeOrigin::signed(provider.clone()),
				Some(pallet_sla::SlaOffer {
					max_uptime_target: Permill::from_percent(99),
					min_window_blocks: 10,
					max_window_blocks: 100,
					max_penalty_per_window: 1_000 * POD,
				})
			));
			assert_ok!(create());

			// 10 base + 10 per core + 1 per GiB of memory + 0.1 per GiB of storage = 22 POD.
			let accept = || Market::accept_deployment(RuntimeOrigin::signed(provider.clone()), 0);
			assert_noop!(accept(), pallet_provider_staking::Error::<Runtime>::InsufficientStake);
			assert_ok!(ProviderStaking::bond(RuntimeOrigin::signed(provider.clone()), 30 * POD));
			assert_ok!(accept());
			assert_noop!(
				ProviderStaking::unbond(RuntimeOrigin::signed(provider.clone()), 20 * POD),
				pallet_provider_staking::Error::<Runtime>::StakeCommitted
			);

			// Never named running (and no name to probe): every window unmeasured.
			for start in [10, 20, 30, 40] {
				run_to(start + 1);
				probe(&provider, false);
			}
			run_to(50);
			assert_eq!(compensated_to(&alternate), 0);
			assert_eq!(ProviderStaking::slashable(&provider), 30 * POD);

			// Named, run, and found down for a whole measurement window (probe windows 6, 7).
			assert_ok!(Market::register_name(
				RuntimeOrigin::signed(alternate.clone()),
				0,
				b"laundry".to_vec().try_into().unwrap()
			));
			assert_ok!(Sla::heartbeat(
				RuntimeOrigin::signed(provider.clone()),
				vec![0].try_into().unwrap()
			));
			let paid_before = pallet_sla::Tracked::<Runtime>::get(0).unwrap().paid_at_settlement;
			for start in [60, 70] {
				run_to(start + 1);
				probe(&provider, false);
			}
			run_to(80);
			let paid_after = pallet_sla::Tracked::<Runtime>::get(0).unwrap().paid_at_settlement;
			let paid = paid_after - paid_before;
			assert!(paid > 0 && paid < 1_000 * POD, "a window costs far less than the penalty");
			assert_eq!(compensated_to(&alternate), paid, "exactly what the window was paid");
			let surcharge = crate::configs::PenaltySurcharge::get() * paid;
			assert_eq!(ProviderStaking::slashable(&provider), 30 * POD - paid - surcharge);

			// Closing releases the committed stake: all of what is left may unbond.
			assert_ok!(Market::close_deployment(
				RuntimeOrigin::signed(alternate.clone()),
				0,
				pallet_market::CloseReason::PublisherRequest
			));
			assert!(!pallet_sla::Tracked::<Runtime>::contains_key(0));
			assert_ok!(ProviderStaking::unbond(
				RuntimeOrigin::signed(provider.clone()),
				ProviderStaking::slashable(&provider)
			));

			Market::do_try_state().expect("market invariants");
			Registry::do_try_state().expect("registry invariants");
			ProviderStaking::do_try_state().expect("staking invariants");
			Sla::do_try_state().expect("SLA invariants");
		});
	}

	/// Runs blocks to `n` with the market's, the SLA's and the storage proofs' hooks, recording
	/// each block's hash as block initialisation does (it seeds challenges).
	fn run_with_proofs_to(n: u32) {
		use sp_runtime::traits::Hash as _;
		while frame_system::Pallet::<Runtime>::block_number() < n {
			let now = frame_system::Pallet::<Runtime>::block_number();
			frame_system::BlockHash::<Runtime>::insert(
				now,
				<Runtime as frame_system::Config>::Hashing::hash(&now.to_le_bytes()),
			);
			frame_system::Pallet::<Runtime>::set_block_number(now + 1);
			Market::on_initialize(now + 1);
			Sla::on_initialize(now + 1);
			crate::StorageProofs::on_initialize(now + 1);
		}
	}

	#[test]
	fn a_failed_storage_proof_slashes_the_provider_to_the_publisher_and_ending_cleans_up() {
		use crate::StorageProofs;
		use pallet_storage_proofs::{ChunkProof, CHUNK_SIZE};
		use podchain_merkle::MerkleTree;
		genesis_of(DEVELOPMENT_PRESET).execute_with(|| {
			run_with_proofs_to(1);
			let provider = Sr25519Keyring::Bob.to_account_id();
			let publisher = Sr25519Keyring::Charlie.to_account_id();
			register(&provider);
			assert_ok!(Sla::offer_terms(
				RuntimeOrigin::signed(provider.clone()),
				Some(pallet_sla::SlaOffer {
					max_uptime_target: Permill::from_percent(99),
					min_window_blocks: 10,
					max_window_blocks: 100,
					max_penalty_per_window: 10 * POD,
				})
			));
			assert_ok!(ProviderStaking::bond(RuntimeOrigin::signed(provider.clone()), 100 * POD));
			let terms = SlaTerms {
				uptime_target: Permill::from_percent(99),
				window_blocks: 100,
				penalty_per_window: 3 * POD,
				health: podchain_primitives::HealthCheck::root_ok(),
			};
			assert_ok!(Market::create_deployment(
				RuntimeOrigin::signed(publisher.clone()),
				provider.clone(),
				[1; 32],
				Resources { cpu_millicores: 1000, memory_mib: 1024, storage_gib: 10, gpus: 0 },
				BillingMode::Reserved,
				Some(terms),
				any_price(),
				100 * POD,
			));
			let volume = || pallet_storage_proofs::VolumeName::truncate_from(b"data".to_vec());
			let data: Vec<u8> = (0..5 * CHUNK_SIZE + 77).map(|i| (i % 253) as u8).collect();
			let tree = MerkleTree::from_data(&data).unwrap();
			let commit = || {
				StorageProofs::commit(
					RuntimeOrigin::signed(provider.clone()),
					0,
					volume(),
					tree.root(),
					tree.chunk_count(),
					data.len() as u64,
				)
			};
			// Not before the deal runs.
			assert_noop!(commit(), pallet_storage_proofs::Error::<Runtime>::UnknownDeal);
			assert_ok!(Market::accept_deployment(RuntimeOrigin::signed(provider.clone()), 0));
			assert_ok!(commit());
			// Right after acceptance nothing is paid yet, so a failure could cost nothing: the
			// penalty is held from the same bill-bounded budget as missed windows.
			run_with_proofs_to(frame_system::Pallet::<Runtime>::block_number() + 30);
			let bound = Sla::penalty_bound(0).unwrap();
			assert!(bound > 0, "the publisher paid for 30 blocks");
			assert_ok!(StorageProofs::challenge(
				RuntimeOrigin::signed(publisher.clone()),
				0,
				volume()
			));
			let held = pallet_storage_proofs::Challenges::<Runtime>::get(0).unwrap().penalty;
			assert_eq!(held, bound.min(3 * POD));
			assert_eq!(Sla::penalty_bound(0), Some(0), "a window now gets what the challenge left");
			let issued_at = frame_system::Pallet::<Runtime>::block_number();
			run_with_proofs_to(issued_at + 2);
			let indices = StorageProofs::challenge_view(0).unwrap().indices.unwrap();
			assert_eq!(indices.len(), 8);
			// The provider kept a corrupted copy.
			let mut corrupted = data.clone();
			for byte in corrupted.iter_mut() {
				*byte ^= 0x55;
			}
			let bad = MerkleTree::from_data(&corrupted).unwrap();
			let proofs: Vec<_> = indices
				.iter()
				.map(|i| {
					let start = *i as usize * CHUNK_SIZE;
					let end = (start + CHUNK_SIZE).min(corrupted.len());
					ChunkProof {
						chunk: corrupted[start..end].to_vec().try_into().unwrap(),
						path: bad.proof(*i).unwrap().try_into().unwrap(),
					}
				})
				.collect();
			let publisher_before = pallet_balances::Pallet::<Runtime>::free_balance(&publisher);
			let stake_before = ProviderStaking::slashable(&provider);
			assert_ok!(StorageProofs::answer(
				RuntimeOrigin::signed(provider.clone()),
				0,
				proofs.try_into().unwrap()
			));
			assert_eq!(
				pallet_balances::Pallet::<Runtime>::free_balance(&publisher) - publisher_before,
				held,
				"the held penalty compensates the publisher"
			);
			assert_eq!(stake_before - ProviderStaking::slashable(&provider), held);
			assert_eq!(pallet_sla::Tracked::<Runtime>::get(0).unwrap().penalty_spent, held);

			// A second challenge, open when the deal closes: the commitments go, the challenge
			// stays until its deadline and, unanswered, still costs the provider.
			run_with_proofs_to(issued_at + crate::configs::ChallengePeriod::get());
			assert_ok!(StorageProofs::challenge(
				RuntimeOrigin::signed(publisher.clone()),
				0,
				volume()
			));
			let held_again = pallet_storage_proofs::Challenges::<Runtime>::get(0).unwrap().penalty;
			assert!(held_again > 0);
			assert_ok!(Market::close_deployment(
				RuntimeOrigin::signed(publisher.clone()),
				0,
				pallet_market::CloseReason::PublisherRequest
			));
			assert_eq!(pallet_storage_proofs::Commitments::<Runtime>::iter().count(), 0);
			assert!(pallet_storage_proofs::Challenges::<Runtime>::contains_key(0));
			let deadline = pallet_storage_proofs::Challenges::<Runtime>::get(0).unwrap().deadline;
			run_with_proofs_to(deadline + 1);
			assert!(!pallet_storage_proofs::Challenges::<Runtime>::contains_key(0));
			assert_eq!(stake_before - ProviderStaking::slashable(&provider), held + held_again);
			assert_noop!(commit(), pallet_storage_proofs::Error::<Runtime>::UnknownDeal);

			StorageProofs::do_try_state().expect("storage-proofs invariants");
			Market::do_try_state().expect("market invariants");
			ProviderStaking::do_try_state().expect("staking invariants");
		});
	}

	#[test]
	fn alices_prober_key_is_the_dev_chains_prober() {
		genesis_of(DEVELOPMENT_PRESET).execute_with(|| {
			let probers = pallet_sla::Probers::<Runtime>::get();
			assert_eq!(probers.len(), 1);
			assert_eq!(probers[0], Sr25519Keyring::Alice.public().into());
			assert!(pallet_sla::AllowLocalTargets::<Runtime>::get(), "dev providers run locally");
		});
	}
}

/// The registry's `attest` with the runtime's real DCAP verifier, on Intel's genuine sample
/// TDX quote: it passes every check of the quote itself and is refused at the binding (it was
/// not made for a podchain provider), which is only checked once the quote has verified.
mod attestation {
	use super::*;
	use crate::{Registry, RuntimeOrigin};
	use frame_support::{assert_noop, assert_ok};
	use pallet_registry::{
		CapacityInput, EndpointInput, Error, InputBytes, QuoteBytes, RegionInput, Registration,
		TeeType,
	};
	use podchain_attestation::{samples, verify_quote, INTEL_SGX_ROOT_CA_DER};
	use podchain_primitives::{Prices, Resources};
	use sp_runtime::{AccountId32, Percent};

	fn bytes(b: &[u8]) -> InputBytes {
		b.to_vec().try_into().unwrap()
	}

	fn register(provider: &AccountId32) {
		let registration = Registration {
			capacity: CapacityInput {
				resources: Resources {
					cpu_millicores: 4000,
					memory_mib: 8192,
					storage_gib: 100,
					gpus: 0,
				},
				gpu_model: bytes(b""),
			},
			prices: Prices {
				cpu_per_millicore_second: 1,
				memory_per_mib_second: 1,
				storage_per_gib_second: 1,
				gpu_per_second: 0,
				egress_per_byte: 0,
			},
			rent_discount: Percent::zero(),
			region: RegionInput { country: *b"DE", location: None },
			endpoint: EndpointInput {
				peer_id: bytes(b"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"),
				multiaddrs: vec![bytes(b"/ip4/127.0.0.1/tcp/4001")].try_into().unwrap(),
			},
			gateway_url: bytes(b"http://127.0.0.1:9999"),
			ingress_domain: bytes(b"apps.bob.test"),
		};
		assert_ok!(Registry::register_provider(
			RuntimeOrigin::signed(provider.clone()),
			registration
		));
	}

	fn set_time(unix_secs: u64) {
		pallet_timestamp::Now::<Runtime>::put(unix_secs * 1000);
	}

	fn attest(who: &AccountId32, quote: &[u8]) -> sp_runtime::DispatchResult {
		let quote: QuoteBytes = quote.to_vec().try_into().unwrap();
		Registry::attest(
			RuntimeOrigin::signed(who.clone()),
			quote,
			samples::tdx_collateral(),
			[5; 32],
		)
	}

	#[test]
	fn intels_sample_quote_verifies_through_attest_and_is_refused_at_the_binding() {
		genesis_of(DEVELOPMENT_PRESET).execute_with(|| {
			frame_system::Pallet::<Runtime>::set_block_number(1);
			let provider: AccountId32 = Sr25519Keyring::Ferdie.to_account_id();
			assert_noop!(attest(&provider, samples::TDX_QUOTE), Error::<Runtime>::NotProvider);
			register(&provider);

			// Today the sample's collateral has long expired.
			set_time(
				std::time::SystemTime::now()
					.duration_since(std::time::UNIX_EPOCH)
					.unwrap()
					.as_secs(),
			);
			assert_noop!(
				attest(&provider, samples::TDX_QUOTE),
				Error::<Runtime>::CollateralExpired
			);

			// When it was valid: it verifies (UpToDate, accepted by default), then its
			// measurement is not allowed...
			set_time(samples::SAMPLE_TIME);
			assert_noop!(
				attest(&provider, samples::TDX_QUOTE),
				Error::<Runtime>::MeasurementNotAllowed
			);
			let measurement = verify_quote(
				samples::TDX_QUOTE,
				&samples::tdx_collateral(),
				INTEL_SGX_ROOT_CA_DER,
				samples::SAMPLE_TIME,
			)
			.expect("the sample verifies")
			.measurement;
			assert_ok!(Registry::allow_measurement(
				RuntimeOrigin::root(),
				TeeType::IntelTdx,
				bytes(&measurement)
			));
			// ... and once allowed, its report data binds no podchain provider.
			assert_noop!(
				attest(&provider, samples::TDX_QUOTE),
				Error::<Runtime>::AttestationBindingMismatch
			);
			// An altered quote never gets that far.
			let mut altered = samples::TDX_QUOTE.to_vec();
			altered[48 + 520] ^= 1;
			assert_noop!(attest(&provider, &altered), Error::<Runtime>::QuoteUntrusted);
			assert!(!Registry::provider_view(&provider).unwrap().attested);
		});
	}
}
