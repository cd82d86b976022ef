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
