#!/usr/bin/env bash
# Runs every test: pallet and runtime unit tests, the benchmark test suites, the web console's
# unit tests, and the end-to-end tests against real nodes (dev chain through @polkadot/api; four
# local validators; the web console in chromium against a node, an agent on podman and the CLI).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
"$REPO_ROOT/scripts/setup.sh"
cd "$REPO_ROOT"

# One profile (release) for the unit tests and the e2e node, so dependencies compile once. The
# node's integration tests make this build $NODE_BIN too, with the very artifacts the tests use,
# so the end-to-end tests below need no second build.
log "unit and integration tests (cargo test --release --workspace)"
timed "unit tests" cargo test --release --locked --workspace

log "benchmark test suites (runtime-benchmarks feature)"
timed "benchmark tests" cargo test --release --locked -p pallet-registry -p pallet-market \
	-p pallet-provider-staking -p pallet-sla -p pallet-storage-proofs \
	--features pallet-registry/runtime-benchmarks,pallet-market/runtime-benchmarks,pallet-provider-staking/runtime-benchmarks,pallet-sla/runtime-benchmarks,pallet-storage-proofs/runtime-benchmarks \
	benchmarking

log "agent reconcile benchmark (1,000 deals, in-memory Kubernetes API)"
timed "reconcile benchmark" cargo bench --locked --workspace --bench reconcile

log "agent gateway benchmark (a tenant on podman: direct vs through the gateway, cold starts)"
timed "gateway benchmark" cargo bench --locked --workspace --bench gateway

log "image transfer benchmark (a 200 MB image pushed over libp2p on loopback; goal >= 50 MB/s)"
timed "image transfer benchmark" cargo bench --locked --workspace --bench image_transfer

log "web console unit tests (vitest)"
(cd "$REPO_ROOT/console" && timed "console unit tests" npm test --silent)

[ -x "$NODE_BIN" ] || die "cargo test did not leave $NODE_BIN"
log "end-to-end tests against $NODE_BIN"
cd "$REPO_ROOT/scripts/e2e"
PODCHAIN_NODE="$NODE_BIN" timed "end-to-end tests" node --test --test-concurrency=1 tests/*.test.mjs
