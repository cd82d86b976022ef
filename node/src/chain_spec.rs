//! Chain specifications built from the runtime's genesis presets.

use podchain_runtime::{currency::DECIMALS, WASM_BINARY};
use sc_service::ChainType;

/// The chain specification of podchain.
pub type ChainSpec = sc_service::GenericChainSpec;

/// Token symbol shown by wallets and polkadot.js Apps.
const TOKEN_SYMBOL: &str = "POD";
/// SS58 address format: generic Substrate addresses.
const SS58_FORMAT: u16 = 42;

fn properties() -> sc_chain_spec::Properties {
	let mut properties = sc_chain_spec::Properties::new();
	properties.insert("tokenSymbol".into(), TOKEN_SYMBOL.into());
	properties.insert("tokenDecimals".into(), DECIMALS.into());
	properties.insert("ss58Format".into(), SS58_FORMAT.into());
	properties
}

fn wasm() -> Result<&'static [u8], String> {
	WASM_BINARY.ok_or_else(|| "the runtime's wasm binary is not available".to_string())
}

/// Single-validator development chain (Alice), 1 s blocks.
pub fn development_chain_spec() -> Result<ChainSpec, String> {
	Ok(ChainSpec::builder(wasm()?, None)
		.with_name("podchain development")
		.with_id("podchain_dev")
		.with_chain_type(ChainType::Development)
		.with_genesis_config_preset_name(podchain_runtime::DEVELOPMENT_PRESET)
		.with_properties(properties())
		.build())
}

/// Local network of four validators (Alice, Bob, Charlie, Dave), 6 s blocks.
pub fn local_chain_spec() -> Result<ChainSpec, String> {
	Ok(ChainSpec::builder(wasm()?, None)
		.with_name("podchain local testnet")
		.with_id("podchain_local_testnet")
		.with_chain_type(ChainType::Local)
		.with_genesis_config_preset_name(podchain_runtime::LOCAL_TESTNET_PRESET)
		.with_properties(properties())
		.build())
}
