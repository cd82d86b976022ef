#!/usr/bin/env bash
# Installs what building and testing podchain needs, skipping what is already there:
# Debian packages (protobuf and clang for the node; podman, runc, catatonit and busybox-static
# for the agent's single-machine backend and its test image; curl for the demo; chromium for
# the web console's browser tests), Rust wasm targets and rust-src, the npm packages of the e2e
# tests, the examples and the web console.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

APT_PACKAGES=(protobuf-compiler clang libclang-dev podman runc catatonit busybox-static curl chromium)

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
# Again whenever package-lock.json is newer than the installed tree.
for dir in scripts/e2e console; do
	if [ ! -f "$REPO_ROOT/$dir/node_modules/.package-lock.json" ] ||
		[ "$REPO_ROOT/$dir/package-lock.json" -nt "$REPO_ROOT/$dir/node_modules/.package-lock.json" ]; then
		log "installing the npm packages of $dir"
		(cd "$REPO_ROOT/$dir" && npm ci --no-audit --no-fund --loglevel=error)
	fi
done
log "prerequisites are in place"
