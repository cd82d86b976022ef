//! Genesis presets: `development` (one validator, 1 s blocks) and `local_testnet` (four
//! validators, 6 s blocks, so GRANDPA keeps finalizing with one of them down).

use crate::configs::TreasuryAccount;
use crate::{
	currency::POD, AccountId, Balance, BalancesConfig, BlockTimeConfig, RuntimeGenesisConfig,
	SudoConfig, DEV_SLOT_DURATION, NETWORK_SLOT_DURATION,
};
use alloc::{vec, vec::Vec};
use core::str::FromStr;
use frame_support::build_struct_json_patch;
use pallet_sla::ProberId;
use serde_json::Value;
use sp_consensus_aura::sr25519::AuthorityId as AuraId;
use sp_consensus_grandpa::AuthorityId as GrandpaId;
use sp_genesis_builder::{self, PresetId};
use sp_keyring::{Ed25519Keyring, Sr25519Keyring};

/// Preset of the single-node development chain (`--dev`).
pub const DEVELOPMENT_PRESET: &str = sp_genesis_builder::DEV_RUNTIME_PRESET;
/// Preset of the four-validator local network.
pub const LOCAL_TESTNET_PRESET: &str = sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET;

/// Balance of each endowed development account: one million POD.
const ENDOWMENT: Balance = 1_000_000 * POD;
/// The treasury starts with one POD, so it exists and takes fees of any size.
const TREASURY_ENDOWMENT: Balance = POD;

/// Stake a provider needs on the development chains: 10 POD once anything is committed, plus
/// 10 POD per core, 1 POD per GiB of memory, 0.1 POD per GiB of storage and 100 POD per GPU.
fn stake_requirement() -> pallet_provider_staking::StakeRequirement<Balance> {
	pallet_provider_staking::StakeRequirement {
		base: 10 * POD,
		per_cpu_millicore: 10 * POD / 1000,
		per_memory_mib: POD / 1024,
		per_storage_gib: POD / 10,
		per_gpu: 100 * POD,
	}
}

fn genesis(
	authorities: Vec<(AuraId, GrandpaId, ProberId)>,
	root: AccountId,
	endowed: Vec<AccountId>,
	slot_duration_millis: u64,
) -> Value {
	build_struct_json_patch!(RuntimeGenesisConfig {
		balances: BalancesConfig {
			balances: endowed
				.iter()
				.cloned()
				.map(|k| (k, ENDOWMENT))
				.chain([(TreasuryAccount::get(), TREASURY_ENDOWMENT)])
				.collect::<Vec<_>>(),
		},
		aura: pallet_aura::GenesisConfig {
			authorities: authorities.iter().map(|(aura, ..)| aura.clone()).collect::<Vec<_>>(),
		},
		grandpa: pallet_grandpa::GenesisConfig {
			authorities: authorities
				.iter()
				.map(|(_, grandpa, _)| (grandpa.clone(), 1))
				.collect::<Vec<_>>(),
		},
		sla: pallet_sla::GenesisConfig {
			probers: authorities.iter().map(|(.., prober)| prober.clone()).collect::<Vec<_>>(),
			// Development chains run providers on 127.0.0.1.
			allow_local_targets: true,
		},
		provider_staking: pallet_provider_staking::GenesisConfig {
			requirement: stake_requirement(),
		},
		sudo: SudoConfig { key: Some(root) },
		block_time: BlockTimeConfig { slot_duration_millis },
	})
}

/// Aura (sr25519), GRANDPA (ed25519) and SLA prober (sr25519) keys of a well-known dev
/// validator, as `--alice` etc. put them in the keystore.
fn authority(name: &str) -> (AuraId, GrandpaId, ProberId) {
	let sr = Sr25519Keyring::from_str(name).expect("well-known dev account");
	let ed = Ed25519Keyring::from_str(name).expect("well-known dev account");
	(sr.public().into(), ed.public().into(), sr.public().into())
}

fn dev_accounts() -> Vec<AccountId> {
	Sr25519Keyring::iter().map(|k| k.to_account_id()).collect()
}

/// One validator (Alice), every well-known dev account funded, 1 s blocks.
pub fn development_config_genesis() -> Value {
	genesis(
		vec![authority("Alice")],
		Sr25519Keyring::Alice.to_account_id(),
		dev_accounts(),
		DEV_SLOT_DURATION,
	)
}

/// Four validators (Alice, Bob, Charlie, Dave), dev accounts funded, 6 s blocks.
pub fn local_testnet_genesis() -> Value {
	genesis(
		vec![authority("Alice"), authority("Bob"), authority("Charlie"), authority("Dave")],
		Sr25519Keyring::Alice.to_account_id(),
		dev_accounts(),
		NETWORK_SLOT_DURATION,
	)
}

/// The JSON patch of a named preset.
pub fn get_preset(id: &PresetId) -> Option<Vec<u8>> {
	let patch = match id.as_ref() {
		DEVELOPMENT_PRESET => development_config_genesis(),
		LOCAL_TESTNET_PRESET => local_testnet_genesis(),
		_ => return None,
	};
	Some(
		serde_json::to_string(&patch)
			.expect("serialization to json is expected to work. qed.")
			.into_bytes(),
	)
}

/// Names of the presets this runtime offers.
pub fn preset_names() -> Vec<PresetId> {
	vec![PresetId::from(DEVELOPMENT_PRESET), PresetId::from(LOCAL_TESTNET_PRESET)]
}
