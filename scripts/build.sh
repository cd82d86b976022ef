#!/usr/bin/env bash
# Builds podchain-node, podchain-agent and the podchain CLI (release) into the shared target dir.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
log "building podchain-node, podchain-agent and podchain into $CARGO_TARGET_DIR (a cold build takes about 30 minutes on 2 cores)"
timed "building" cargo build --release --locked -p podchain-node -p podchain-agent -p podchain-cli
