# Shared by podchain's scripts: paths, logging, and the one cargo target dir every build reuses.

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/podchain/target}"
NODE_BIN="$CARGO_TARGET_DIR/release/podchain-node"
AGENT_BIN="$CARGO_TARGET_DIR/release/podchain-agent"
CLI_BIN="$CARGO_TARGET_DIR/release/podchain"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Runs a command and prints how long it took.
timed() {
	local label="$1" start=$SECONDS
	shift
	"$@"
	log "$label took $((SECONDS - start)) s"
}
