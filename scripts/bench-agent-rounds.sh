#!/usr/bin/env bash
# Times the agent's reconcile rounds on real podman with 10, 50 and 100 small deals against a
# dev node, and prints the mean and p99 round time and the podman API requests per round, with
# the goal line (at most 100 ms per round at 100 deals). About 10 minutes; not part of
# scripts/test.sh. Needs root (podman).
#
#   scripts/bench-agent-rounds.sh                       # 10, 50 and 100 deals, 60 s each
#   PODCHAIN_BENCH_DEALS=10,20 PODCHAIN_BENCH_SECONDS=20 scripts/bench-agent-rounds.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
"$REPO_ROOT/scripts/setup.sh"
cd "$REPO_ROOT"

[ -x "$NODE_BIN" ] || "$REPO_ROOT/scripts/build.sh"
timed "building the benchmark" cargo bench --locked --workspace --bench podman_rounds --no-run

# The binaries the run starts, copied: a build in the shared target dir meanwhile leaves them be.
bin="$(mktemp -d /tmp/podchain-bench-bin-XXXXXX)"
trap 'rm -rf "$bin"' EXIT
cp "$NODE_BIN" "$AGENT_BIN" "$bin/"
log "agent rounds on podman (deals: ${PODCHAIN_BENCH_DEALS:-10,50,100}; ${PODCHAIN_BENCH_SECONDS:-60} s steady each)"
PODCHAIN_NODE="$bin/podchain-node" PODCHAIN_AGENT_BIN="$bin/podchain-agent" \
	timed "agent rounds benchmark" cargo bench --locked --workspace --bench podman_rounds
