//! The pallets whose benchmarks the node's `benchmark pallet` command runs.

frame_benchmarking::define_benchmarks!(
	[frame_benchmarking, BaselineBench::<Runtime>]
	[frame_system, SystemBench::<Runtime>]
	[pallet_balances, Balances]
	[pallet_timestamp, Timestamp]
	[pallet_sudo, Sudo]
	[pallet_registry, Registry]
	[pallet_market, Market]
	[pallet_provider_staking, ProviderStaking]
	[pallet_sla, Sla]
	[pallet_storage_proofs, StorageProofs]
);
