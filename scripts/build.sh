#!/usr/bin/env bash
# Builds podchain-node (release) into the shared target dir.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
log "building podchain-node into $CARGO_TARGET_DIR (a cold build takes about 25 minutes on 2 cores)"
timed "building the node" cargo build --release --locked -p podchain-node
