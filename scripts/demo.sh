#!/usr/bin/env bash
# The main job: a whole podchain market on this machine, bound to 127.0.0.1.
#
#   1. a development chain (podchain-node --dev);
#   2. a provider: //Charlie registered on chain, its agent running pods with podman;
#   3. a publisher, //Dave, deploying a small web server with `podchain deploy`, from an image
#      it builds itself (an OCI archive): the deal is created, the manifest and the image
#      delivered over libp2p, the deal accepted; the deal is named `demo` and the
#      server answers through the agent's HTTP gateway at http://demo.localhost:GATEWAY_PORT/
#      (it runs on a podman network of its own, not on the host's);
#   4. the deal's status and itemised bill once the agent has billed some usage;
#   5. the web console (`podchain console`, with //Dave's key) on http://127.0.0.1:CONSOLE_PORT/.
#
# Then it keeps running (the chain on ws://127.0.0.1:9944 for polkadot.js Apps and the CLI)
# until Ctrl-C, which closes the deal, stops the agent and the node, and removes everything.
# Installs and builds what it needs first (scripts/setup.sh, scripts/build.sh); must run as
# root (podman here). Ports: RPC_PORT (9944), GATEWAY_PORT (8480), AGENT_P2P_PORT (30555),
# AGENT_HTTP_PORT (9655), CONSOLE_PORT (8490).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ "$(id -u)" -eq 0 ]] || die "the demo runs podman as root: run it as root (with Rust installed for root)"
"$REPO_ROOT/scripts/setup.sh"
"$REPO_ROOT/scripts/build.sh"

RPC_PORT="${RPC_PORT:-9944}"
GATEWAY_PORT="${GATEWAY_PORT:-8480}"
DEMO_HOST="demo.localhost"
AGENT_P2P_PORT="${AGENT_P2P_PORT:-30555}"
AGENT_HTTP_PORT="${AGENT_HTTP_PORT:-9655}"
CONSOLE_PORT="${CONSOLE_PORT:-8490}"
RPC="ws://127.0.0.1:$RPC_PORT"
work="$(mktemp -d /tmp/podchain-demo-XXXXXX)"
node_pid="" agent_pid="" console_pid="" deal=""

podman_store() {
	CONTAINERS_CONF="$work/agent/podman/containers.conf" \
		CONTAINERS_STORAGE_CONF="$work/agent/podman/storage.conf" podman "$@"
}

stop() {
	local status=$?
	trap - INT TERM EXIT
	echo >&2
	if [[ -n "$deal" && -n "$agent_pid" ]]; then
		log "closing deal $deal"
		"$CLI_BIN" --rpc "$RPC" --key-file "$work/publisher.key" close "$deal" || true
		for _ in $(seq 1 30); do
			curl -fsS -H "Host: $DEMO_HOST" "http://127.0.0.1:$GATEWAY_PORT/" >/dev/null 2>&1 || break
			sleep 1
		done
	fi
	log "stopping the agent and the node"
	local pid
	for pid in $console_pid $agent_pid $node_pid; do
		kill "$pid" 2>/dev/null || continue
		for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
		kill -9 "$pid" 2>/dev/null || true
	done
	if [[ -f "$work/agent/podman/containers.conf" ]]; then
		podman_store pod rm --all --force --time 0 >/dev/null 2>&1 || true
		podman_store volume rm --all --force >/dev/null 2>&1 || true
		podman_store network prune --force >/dev/null 2>&1 || true
		pkill -f "podman system service .*$work/agent/podman/podman.sock" 2>/dev/null || true
		grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount 2>/dev/null || true
	fi
	if ((status != 0 && ! interrupted)); then
		mkdir -p "$work.logs" && cp "$work"/*.log "$work.logs/" 2>/dev/null || true
		log "logs kept in $work.logs"
	fi
	rm -rf "$work"
	log "stopped; everything is removed"
}
interrupted=0
on_signal() {
	interrupted=1
	stop
	exit 0
}
trap on_signal INT TERM
trap stop EXIT

wait_until() { # what, seconds, command...
	local what="$1" seconds="$2"
	shift 2
	for _ in $(seq 1 "$seconds"); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 1
	done
	die "timed out waiting for $what (logs in $work)"
}

log "starting the development chain on $RPC (log: $work/node.log)"
# Sessions of their own: Ctrl-C reaches this script alone, which closes the deal through them
# before stopping them.
setsid "$NODE_BIN" --dev --tmp --rpc-port "$RPC_PORT" --rpc-cors all \
	--listen-addr /ip4/127.0.0.1/tcp/30333 --no-mdns --no-telemetry >"$work/node.log" 2>&1 &
node_pid=$!
node_up() { kill -0 "$node_pid" && "$CLI_BIN" --rpc "$RPC" providers; }
wait_until "the node (is another one using port $RPC_PORT?)" 120 node_up

log "provider //Charlie: registering its agent's endpoint"
printf '//Charlie\n' >"$work/provider.key"
chmod 600 "$work/provider.key"
agent=("$AGENT_BIN" --rpc-url "$RPC" --key-file "$work/provider.key" --data-dir "$work/agent"
	--p2p-listen "/ip4/127.0.0.1/tcp/$AGENT_P2P_PORT" --http-listen "127.0.0.1:$AGENT_HTTP_PORT"
	--sample-seconds 2 --report-every-blocks 5
	--ingress-domain localhost --gateway-listen "127.0.0.1:$GATEWAY_PORT")
peer_id="$("${agent[@]}" peer-id)"
PODCHAIN_RPC="$RPC" PROVIDER_SECRET=//Charlie PEER_ID="$peer_id" \
	MULTIADDR="/ip4/127.0.0.1/tcp/$AGENT_P2P_PORT" GATEWAY_URL="http://127.0.0.1:$GATEWAY_PORT" \
	INGRESS_DOMAIN=localhost \
	node "$REPO_ROOT/scripts/e2e/examples/register-provider.mjs" >/dev/null

log "starting the provider agent (podman backend; log: $work/agent.log)"
setsid "${agent[@]}" >"$work/agent.log" 2>&1 &
agent_pid=$!
wait_until "the agent" 90 curl -fsS "http://127.0.0.1:$AGENT_HTTP_PORT/healthz"

log "publisher //Dave: building the web server's image on the publisher's side, deploying it"
# The image is the publisher's own, an OCI archive: `podchain deploy` pins its digest into
# the manifest and sends it to the provider over libp2p. The provider's store starts empty.
ARCHIVE="$work/web.oci.tar" IMAGE=localhost/demo/web:1 PAGE="podchain-demo ok" \
	"$REPO_ROOT/scripts/build-test-image.sh"
podchain=("$CLI_BIN" --rpc "$RPC" --key-file "$work/publisher.key")
"${podchain[@]}" account import //Dave >/dev/null
# The fixture listens on 127.0.0.1; on its own network the server listens on every address of
# the pod, where the gateway reaches it. Its image is the archive built above.
sed -e 's/"127.0.0.1:8080"/"8080"/' \
	-e 's|image: localhost/podchain-demo:latest|image: { archive: ./web.oci.tar, name: demo/web }|' \
	"$REPO_ROOT/client/manifest/fixtures/web.yaml" >"$work/web.yaml"
"${podchain[@]}" deploy "$work/web.yaml" --for 1h
deal="$("${podchain[@]}" --json status | grep -o '"id": [0-9]*' | head -1 | grep -o '[0-9]*$')"
"${podchain[@]}" name register demo "$deal"
gateway_get() { curl -fsS -H "Host: $DEMO_HOST" "http://127.0.0.1:$GATEWAY_PORT/"; }
wait_until "the deal's name to route" 30 gateway_get
log "http://$DEMO_HOST:$GATEWAY_PORT/ answers: $(gateway_get)"

log "waiting for the agent to bill some usage"
for _ in $(seq 1 60); do
	# Until a settled period charged something (the first ones may precede any sample).
	"${podchain[@]}" --json bill "$deal" | grep -q '"total": "[1-9]' && break
	sleep 1
done
"${podchain[@]}" status "$deal"
echo
"${podchain[@]}" bill "$deal"

log "starting the web console (log: $work/console.log)"
setsid "${podchain[@]}" console --listen "127.0.0.1:$CONSOLE_PORT" >"$work/console.log" 2>&1 &
console_pid=$!
wait_until "the console (is another one using port $CONSOLE_PORT?)" 30 curl -fsS "http://127.0.0.1:$CONSOLE_PORT/"
# The URL with the token of this run: the console's local API answers nothing without it.
console_url="$(grep -o 'http://[^ ]*?token=[0-9a-f]*' "$work/console.log" | head -1)"

cat >&2 <<MSG

podchain is running on this machine:
  chain         $RPC   (polkadot.js Apps: https://polkadot.js.org/apps/?rpc=$RPC)
  deal $deal        http://$DEMO_HOST:$GATEWAY_PORT/   (or curl -H "Host: $DEMO_HOST" http://127.0.0.1:$GATEWAY_PORT/)
  console       $console_url
                (the web console; its local API delivers manifests and reads logs as //Dave)
  agent         http://127.0.0.1:$AGENT_HTTP_PORT/metrics
  try           $CLI_BIN --rpc $RPC --key-file $work/publisher.key status $deal
Stop with Ctrl-C: the deal is closed and everything is removed.
MSG
while kill -0 "$node_pid" 2>/dev/null && kill -0 "$agent_pid" 2>/dev/null && kill -0 "$console_pid" 2>/dev/null; do
	sleep 2
done
die "the node, the agent or the console stopped (logs in $work)"
