//! Runs the built `podchain-node` binary and checks the chain specifications it exports.

use std::process::Command;

fn export(chain: &str) -> serde_json::Value {
	let output = Command::new(env!("CARGO_BIN_EXE_podchain-node"))
		.args(["export-chain-spec", "--chain", chain])
		.output()
		.expect("podchain-node runs");
	assert!(output.status.success(), "export failed: {}", String::from_utf8_lossy(&output.stderr));
	serde_json::from_slice(&output.stdout).expect("the chain spec is JSON")
}

fn check_properties(spec: &serde_json::Value) {
	let properties = &spec["properties"];
	assert_eq!(properties["tokenSymbol"], "POD");
	assert_eq!(properties["tokenDecimals"], 12);
	assert_eq!(properties["ss58Format"], 42);
}

#[test]
fn dev_chain_spec_has_one_validator_and_one_second_blocks() {
	let spec = export("dev");
	assert_eq!(spec["id"], "podchain_dev");
	assert_eq!(spec["chainType"], "Development");
	check_properties(&spec);
	let genesis = &spec["genesis"]["runtimeGenesis"];
	assert!(genesis["code"].as_str().is_some_and(|code| code.starts_with("0x")));
	let patch = &genesis["patch"];
	assert_eq!(patch["blockTime"]["slotDurationMillis"], 1000);
	assert_eq!(patch["aura"]["authorities"].as_array().map(Vec::len), Some(1));
	assert_eq!(patch["grandpa"]["authorities"].as_array().map(Vec::len), Some(1));
}

#[test]
fn local_chain_spec_has_four_validators_and_six_second_blocks() {
	let spec = export("local");
	assert_eq!(spec["id"], "podchain_local_testnet");
	assert_eq!(spec["chainType"], "Local");
	check_properties(&spec);
	let patch = &spec["genesis"]["runtimeGenesis"]["patch"];
	assert_eq!(patch["blockTime"]["slotDurationMillis"], 6000);
	assert_eq!(patch["aura"]["authorities"].as_array().map(Vec::len), Some(4));
	assert_eq!(patch["grandpa"]["authorities"].as_array().map(Vec::len), Some(4));
}

#[test]
fn unknown_chain_spec_file_is_a_clear_error() {
	let output = Command::new(env!("CARGO_BIN_EXE_podchain-node"))
		.args(["export-chain-spec", "--chain", "/nonexistent/spec.json"])
		.output()
		.expect("podchain-node runs");
	assert!(!output.status.success());
	let stderr = String::from_utf8_lossy(&output.stderr);
	assert!(stderr.contains("spec.json"), "names the file: {stderr}");
}
