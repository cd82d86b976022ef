#!/usr/bin/env bash
# Node throughput benchmark: how many balance transfers per second a podchain `--dev` node
# includes, beside a chain of the polkadot-sdk solochain template's runtime at the same
# stable2609 release, one after the other on this machine. Prints transfers per second and per
# block for both and their ratio (goal: podchain >= 0.95x). docs/architecture.md ("Node
# throughput") says how it works and what it measured.
#
# Not part of scripts/test.sh or CI: it builds the reference runtime on request, into its own
# target dir, and takes a few minutes per run.
#
# Usage: scripts/throughput.sh [--runs N] [--senders N] [--per-sender N] [--connections N]
#                              [--only podchain|reference] [--no-6s]
#                              [--pool-type single-state|fork-aware]
#
# Each run drives three chains: `podchain` (the `--dev` chain, 1 s slots), `reference` (the
# template's runtime, 6 s slots) and `podchain-6s` (podchain's dev chain with the template's
# 6 s slot, to compare the runtimes at one block time; --no-6s leaves it out).
#
# The template node is not published on crates.io, so the reference chain is the runtime in
# scripts/throughput/reference-runtime (the template's pallets and parameters, from the same
# crates podchain pins), run by the podchain node binary from a chain spec: both chains then
# share the node side (transaction pool, block authoring, database) and differ only in what
# the issue measures, the runtime and its block time.
#
# Environment: CARGO_TARGET_DIR (podchain's node, as in scripts/lib.sh),
# PODCHAIN_REFERENCE_TARGET (default ~/.cache/podchain/target-template),
# PODCHAIN_THROUGHPUT_OUT (results dir, default a fresh temp dir), PODCHAIN_THROUGHPUT_NODE_ARGS
# (extra flags for every node, e.g. `-l txpool=debug`).

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=2
SENDERS=500
PER_SENDER=100
CONNECTIONS=4
ONLY=""
WITH_6S=1
# Both chains use the same pool: the single-state one. The node's default, fork-aware, leaves
# part of such a burst in its mempool for good at this release, whichever runtime
# (docs/architecture.md, "Node throughput"): `--pool-type fork-aware` shows it.
POOL_TYPE=single-state
while [ $# -gt 0 ]; do
	case "$1" in
	--runs) RUNS="$2"; shift 2 ;;
	--senders) SENDERS="$2"; shift 2 ;;
	--per-sender) PER_SENDER="$2"; shift 2 ;;
	--connections) CONNECTIONS="$2"; shift 2 ;;
	--only) ONLY="$2"; shift 2 ;;
	--no-6s) WITH_6S=0; shift ;;
	--pool-type) POOL_TYPE="$2"; shift 2 ;;
	-h | --help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument: $1" ;;
	esac
done

BENCH_DIR="$REPO_ROOT/scripts/throughput"
REFERENCE_DIR="$BENCH_DIR/reference-runtime"
REFERENCE_TARGET="${PODCHAIN_REFERENCE_TARGET:-$HOME/.cache/podchain/target-template}"
REFERENCE_WASM="$REFERENCE_TARGET/release/wbuild/podchain-reference-runtime/podchain_reference_runtime.compact.compressed.wasm"
OUT="${PODCHAIN_THROUGHPUT_OUT:-$(mktemp -d -t podchain-throughput.XXXXXX)}"
mkdir -p "$OUT"
RPC_PORT=19944
P2P_PORT=19333
# Both nodes' pools hold the whole load (SENDERS * PER_SENDER transfers of ~140 bytes) in
# either queue, so neither drops a transfer for want of room. The future queue, which holds a
# sender's transfer until the one with the nonce before it arrives (transfers validated in
# parallel arrive out of order), gets a tenth of --pool-limit and --pool-kbytes.
TOTAL=$((SENDERS * PER_SENDER))
POOL_LIMIT=$((TOTAL * 10 + 10000))
POOL_KBYTES=$((TOTAL * 3 + 20480))

command -v node >/dev/null || die "node (>= 20) is needed for the load generator"

if [ ! -x "$NODE_BIN" ]; then
	log "building the podchain node into $CARGO_TARGET_DIR"
	(cd "$REPO_ROOT" && timed "podchain-node build" cargo build --release --locked -p podchain-node)
fi

if [ "$ONLY" != podchain ]; then
	log "building the reference runtime into $REFERENCE_TARGET (a no-op when it is up to date)"
	(cd "$REFERENCE_DIR" && CARGO_TARGET_DIR="$REFERENCE_TARGET" WASM_BUILD_WORKSPACE_HINT="$REFERENCE_DIR" \
		timed "reference runtime build" cargo build --release --locked)
	[ -f "$REFERENCE_WASM" ] || die "the reference runtime's wasm is missing: $REFERENCE_WASM"
fi

if [ ! -d "$BENCH_DIR/node_modules/@polkadot/api" ]; then
	log "installing the load generator's npm packages"
	(cd "$BENCH_DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi

NODE_PID=""
stop_node() {
	if [ -n "$NODE_PID" ]; then
		kill "$NODE_PID" 2>/dev/null || true
		wait "$NODE_PID" 2>/dev/null || true
		NODE_PID=""
	fi
}
trap stop_node EXIT

# run_chain LABEL RUN [node args...]: starts a node, drives the load, stops the node.
run_chain() {
	local label="$1" run="$2"
	shift 2
	local node_log="$OUT/$label-$run.node.log"
	log "run $run: $label node ($*)"
	"$NODE_BIN" "$@" --tmp --no-mdns --no-telemetry --no-prometheus \
		--rpc-port "$RPC_PORT" --listen-addr "/ip4/127.0.0.1/tcp/$P2P_PORT" \
		${POOL_TYPE:+--pool-type "$POOL_TYPE"} --pool-limit "$POOL_LIMIT" --pool-kbytes "$POOL_KBYTES" ${PODCHAIN_THROUGHPUT_NODE_ARGS:-} >"$node_log" 2>&1 &
	NODE_PID=$!
	local tries=0
	until curl -sf -H 'content-type: application/json' \
		-d '{"jsonrpc":"2.0","id":1,"method":"system_health","params":[]}' \
		"http://127.0.0.1:$RPC_PORT" >/dev/null; do
		tries=$((tries + 1))
		kill -0 "$NODE_PID" 2>/dev/null || { tail -20 "$node_log" >&2; die "the $label node exited"; }
		[ "$tries" -lt 120 ] || die "the $label node did not answer RPC in 60 s"
		sleep 0.5
	done
	local load_before
	load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
	node "$BENCH_DIR/load.mjs" --ws "ws://127.0.0.1:$RPC_PORT" --label "$label" \
		--senders "$SENDERS" --per-sender "$PER_SENDER" --connections "$CONNECTIONS" \
		--out "$OUT/result-$label-$run.json" | tee "$OUT/$label-$run.txt"
	local load_after
	load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
	log "load average before / after the $label run: $load_before / $load_after"
	stop_node
	# Why the author closed each block that held transfers, from its log: HitDeadline (the
	# proposal time of the slot ran out), HitBlockWeightLimit, HitBlockSizeLimit or
	# NoMoreTransactions.
	local block_ends
	block_ends="$(grep -o 'end: [A-Za-z]*; extrinsics_count: [0-9]*' "$node_log" |
		awk '{ end = $2; sub(";", "", end); n = $4 + 0; if (n > 1) { count[end]++; sum[end] += n } }
			END { for (e in count) { printf "%s%s %d blocks of %d extrinsics on average", sep, e, count[e], sum[e] / count[e]; sep = ", " } }')"
	log "$label blocks with transfers ended on: $block_ends"
	# The machine's 1-minute load at the end of the run and the block ends go with the figures.
	node -e 'const fs=require("fs");const p=process.argv[1];const r=JSON.parse(fs.readFileSync(p));r.load=process.argv[2];r.loadBefore=process.argv[3];r.blockEnds=process.argv[4];fs.writeFileSync(p,JSON.stringify(r,null,2))' \
		"$OUT/result-$label-$run.json" "${load_after%% *}" "$load_before" "$block_ends"
}

if [ "$ONLY" != podchain ]; then
	node "$BENCH_DIR/chain-spec.mjs" "$REFERENCE_WASM" "$OUT/reference-spec.json" >/dev/null
fi
if [ "$ONLY" != reference ] && [ "$WITH_6S" = 1 ]; then
	# podchain's development chain spec with the slot the template uses.
	"$NODE_BIN" export-chain-spec --chain dev --output "$OUT/podchain-dev.json" 2>/dev/null
	# Edited as text: balances above 2^53 would not survive a JavaScript JSON round trip.
	sed -e 's/"slotDurationMillis": *1000/"slotDurationMillis": 6000/' -e 's/"id": *"podchain_dev"/"id": "podchain_dev_6s"/' \
		"$OUT/podchain-dev.json" >"$OUT/podchain-6s-spec.json"
	grep -q '"slotDurationMillis": 6000' "$OUT/podchain-6s-spec.json" || die "could not set the 6 s slot in podchain's dev spec"
fi

for run in $(seq 1 "$RUNS"); do
	[ "$ONLY" = reference ] || run_chain podchain "$run" --dev
	[ "$ONLY" = podchain ] || run_chain reference "$run" --dev --chain "$OUT/reference-spec.json"
	[ "$ONLY" = reference ] || [ "$WITH_6S" = 0 ] || run_chain podchain-6s "$run" --dev --chain "$OUT/podchain-6s-spec.json"
done

log "results in $OUT"
node "$BENCH_DIR/compare.mjs" "$OUT"/result-*.json
