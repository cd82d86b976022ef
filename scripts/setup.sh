#!/usr/bin/env bash
# Installs what building and testing podchain needs, skipping what is already there:
# Debian packages (protobuf and clang for the node; podman, runc, catatonit and busybox-static
# for the agent's single-machine backend and its test image; curl for the demo), Rust wasm
# targets and rust-src, the e2e tests' and examples' npm packages.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

APT_PACKAGES=(protobuf-compiler clang libclang-dev podman runc catatonit busybox-static curl)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing Debian packages: ${missing[*]}"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || die "cargo not found: install Rust with rustup first"
installed_targets="$(rustup target list --installed)"
for target in wasm32-unknown-unknown wasm32v1-none; do
	grep -qx "$target" <<<"$installed_targets" || { log "adding Rust target $target"; rustup target add "$target"; }
done
installed_components="$(rustup component list --installed)"
grep -q '^rust-src' <<<"$installed_components" || { log "adding rust-src"; rustup component add rust-src; }

command -v node >/dev/null || die "node not found: install Node.js 20 or newer"
if [ ! -d "$REPO_ROOT/scripts/e2e/node_modules/@polkadot/api" ]; then
	log "installing the e2e tests' npm packages"
	(cd "$REPO_ROOT/scripts/e2e" && npm ci --no-audit --no-fund --loglevel=error)
fi
log "prerequisites are in place"
