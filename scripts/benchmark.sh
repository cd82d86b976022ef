#!/usr/bin/env bash
# Regenerates the pallets' weights.rs from their benchmarks, run in the real runtime (wasm) by
# a node built with the `runtime-benchmarks` feature.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
"$REPO_ROOT/scripts/setup.sh"
cd "$REPO_ROOT"

# The benchmark CLI carries a test runtime for `benchmark storage`, which podchain does not run;
# its wasm cannot be located from this workspace's metadata, so it is not built.
export SKIP_FRAME_STORAGE_ACCESS_TEST_RUNTIME_WASM_BUILD=1

PALLETS=("${@:-pallet_registry}")
log "building podchain-node with runtime-benchmarks (its own features: expect a long first build)"
timed "benchmark node build" cargo build --release --locked -p podchain-node --features runtime-benchmarks
# Keep the benchmarking build apart: the plain node binary must never carry benchmark code.
BENCH_BIN="$CARGO_TARGET_DIR/release/podchain-node-benchmarks"
cp "$NODE_BIN" "$BENCH_BIN"
# Put the plain node back where scripts and tests look for it (cached: only relinks).
cargo build --release --locked -p podchain-node

for pallet in "${PALLETS[@]}"; do
	dir="pallets/${pallet#pallet_}"
	dir="${dir//_/-}"
	[ -d "$dir" ] || die "no folder $dir for $pallet"
	log "benchmarking $pallet into $dir/src/weights.rs"
	# `exec -a` keeps the machine's paths out of the command recorded in weights.rs. Each
	# coefficient is the larger of the min-squares and median-slopes fits: with several
	# components, one fit alone can under-price a component measured beside another's noise.
	(exec -a podchain-node "$BENCH_BIN" benchmark pallet \
		--chain dev \
		--pallet "$pallet" \
		--extrinsic '*' \
		--steps 50 \
		--repeat 20 \
		--wasm-execution compiled \
		--heap-pages 4096 \
		--output-analysis max \
		--template scripts/weight-template.hbs \
		--output "$dir/src/weights.rs")
done
log "weights regenerated; review them with git diff"
