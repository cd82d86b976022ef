#!/usr/bin/env bash
# The main job: install prerequisites, build the node, start a development chain on 127.0.0.1.
# Extra arguments go to podchain-node (e.g. `--base-path ./chain` to keep state across restarts).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
"$REPO_ROOT/scripts/setup.sh"
"$REPO_ROOT/scripts/build.sh"

RPC_PORT="${RPC_PORT:-9944}"
cat >&2 <<MSG

podchain development chain
  RPC endpoint     ws://127.0.0.1:$RPC_PORT   (HTTP on the same port)
  polkadot.js Apps https://polkadot.js.org/apps/?rpc=ws://127.0.0.1:$RPC_PORT
  Prometheus       http://127.0.0.1:9615/metrics
  Accounts         //Alice (validator, sudo), //Bob, //Charlie, //Dave, //Eve, //Ferdie: 1,000,000 POD each
  Blocks           every second, finalized by GRANDPA; state is thrown away on exit unless --base-path is given
Stop with Ctrl-C.

MSG
base_args=(--tmp)
for arg in "$@"; do [[ "$arg" == --base-path* || "$arg" == -d ]] && base_args=(); done
exec "$NODE_BIN" --dev "${base_args[@]}" --rpc-port "$RPC_PORT" --rpc-cors all \
	--listen-addr /ip4/127.0.0.1/tcp/30333 --no-mdns --no-telemetry "$@"
