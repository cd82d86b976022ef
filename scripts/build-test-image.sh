#!/usr/bin/env bash
# Builds the registry-free test image localhost/podchain-demo:latest (Debian's static busybox)
# into the provider agent's own podman store, installing missing Debian packages first.
#
# Which store: the agent's podman state directory, where PodmanBackend::start writes
# containers.conf and storage.conf:
#   PODCHAIN_PODMAN_DIR=/path/to/state scripts/build-test-image.sh
# or the two files themselves: CONTAINERS_CONF=... CONTAINERS_STORAGE_CONF=...
#
# Idempotent: a no-op (about 0.1 s) when the image exists at the current IMAGE_VERSION.
#
# The publisher's side: ARCHIVE=/path/app.oci.tar writes the image as an OCI archive instead
# (what `podchain deploy` sends for `image: {archive: ...}`), built in a throwaway store, in two
# layers: the busybox base, byte-identical on every build (so deals share it), and a layer with
# /www/index.html holding PAGE (default "podchain-demo ok") and, with FILLER_MIB=N, N MiB of
# random bytes in /www/filler.bin (a large layer). No agent store is needed then.
#
# Other environment (all optional):
#   IMAGE=...   tag to build (default localhost/podchain-demo:latest)
#   FORCE=1     rebuild even if the image is current
#   SKIP_APT=1  never call apt-get: fail if a package is missing (tests use this)
#   VERIFY=1    then serve 127.0.0.1:$VERIFY_PORT (default 18080) from it and fetch a page
#
# The image: /bin/busybox and one symlink per applet, PATH=/bin:/sbin, /www/index.html
# ("podchain-demo ok"), /etc/passwd and /etc/group with root and nobody, and /data owned by
# nobody (65534, the user deals run as) so a volume mounted there is writable: podman gives a
# new volume the owner of the image's directory it is mounted on.
# Default command: httpd -f -p 127.0.0.1:8080 -h /www. busybox httpd as PID 1 ignores SIGTERM:
# stop it with a timeout of 0 (podman rm -f -t 0).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IMAGE="${IMAGE:-localhost/podchain-demo:latest}"
# Bump when the image's content changes: stores holding an older build rebuild it.
IMAGE_VERSION=2
VERSION_LABEL=org.podchain.test-image

[[ "$(id -u)" -eq 0 ]] || die "podman runs as root here (its store and the image's file owners): run as root"

# podman: the engine. runc: the runtime our containers.conf names (podman alone may bring
# crun only). catatonit: podman builds its pods' infra image from it. busybox-static: the payload.
packages=(podman runc catatonit busybox-static)
[[ "${VERIFY:-0}" == 1 ]] && packages+=(curl)
missing=()
for pkg in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
	[[ "${SKIP_APT:-0}" != 1 ]] || die "missing Debian packages: ${missing[*]} (run scripts/build-test-image.sh without SKIP_APT=1, as root)"
	log "installing Debian packages: ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The busybox root file system in directory $1.
base_rootfs() {
	local root="$1"
	mkdir -p "$root"/{bin,sbin,etc,www,tmp,proc,sys,dev,run,var,data,root}
	chmod 1777 "$root/tmp"
	chown 65534:65534 "$root/data"
	install -m 0755 /bin/busybox "$root/bin/busybox"
	local applet
	for applet in $(/bin/busybox --list); do
		[[ "$applet" == busybox ]] || ln -sf busybox "$root/bin/$applet"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
}

if [[ -n "${ARCHIVE:-}" ]]; then
	work="$(mktemp -d)"
	trap 'rm -rf "$work"' EXIT
	# A store of its own: the publisher's machine has no agent store. Its runtime directory and
	# networks are its own too: the `system reset` below removes them, and builds run in
	# parallel (tests) must not remove each other's (a shared /run/libpod/alive, for one).
	printf '[storage]\ndriver = "vfs"\nrunroot = "%s/run"\ngraphroot = "%s/root"\n' "$work" "$work" >"$work/storage.conf"
	export CONTAINERS_STORAGE_CONF="$work/storage.conf"
	if [[ -z "${CONTAINERS_CONF:-}" ]]; then
		printf '[engine]\ntmp_dir = "%s/tmp"\n\n[network]\nnetwork_config_dir = "%s/networks"\n' "$work" "$work" >"$work/containers.conf"
		export CONTAINERS_CONF="$work/containers.conf"
	fi
	base_rootfs "$work/rootfs"
	# The base layer, the same bytes on every build: sorted, numeric owners, fixed times.
	tar -C "$work/rootfs" --numeric-owner --sort=name --mtime=@0 -cf "$work/base.tar" .
	podman import \
		--change 'ENV=PATH=/bin:/sbin' \
		--change 'WORKDIR=/' \
		--change 'CMD=["/bin/httpd","-f","-p","127.0.0.1:8080","-h","/www"]' \
		"$work/base.tar" localhost/podchain-base:build >"$work/import.log" 2>&1 ||
		{ cat "$work/import.log" >&2; die "podman import failed"; }
	mkdir -p "$work/context"
	printf '%s\n' "${PAGE:-podchain-demo ok}" >"$work/context/index.html"
	printf 'FROM localhost/podchain-base:build\nCOPY index.html /www/index.html\n' >"$work/context/Containerfile"
	if [[ "${FILLER_MIB:-0}" -gt 0 ]]; then
		head -c "$((FILLER_MIB << 20))" /dev/urandom >"$work/context/filler.bin"
		printf 'COPY filler.bin /www/filler.bin\n' >>"$work/context/Containerfile"
	fi
	podman build --quiet --timestamp 0 -t "$IMAGE" "$work/context" >"$work/build.log" 2>&1 ||
		{ cat "$work/build.log" >&2; die "podman build failed"; }
	rm -f "$ARCHIVE"
	podman save --format oci-archive -o "$ARCHIVE" "$IMAGE" >"$work/save.log" 2>&1 ||
		{ cat "$work/save.log" >&2; die "podman save failed"; }
	# The throwaway store's files belong to root and may be read-only: remove them as root.
	podman system reset --force >/dev/null 2>&1 || true
	log "wrote $IMAGE as an OCI archive: $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1))"
	exit 0
fi

if [[ -n "${PODCHAIN_PODMAN_DIR:-}" ]]; then
	export CONTAINERS_CONF="$PODCHAIN_PODMAN_DIR/containers.conf"
	export CONTAINERS_STORAGE_CONF="$PODCHAIN_PODMAN_DIR/storage.conf"
fi
[[ -n "${CONTAINERS_CONF:-}" && -n "${CONTAINERS_STORAGE_CONF:-}" ]] ||
	die "set PODCHAIN_PODMAN_DIR to the agent's podman state directory (or CONTAINERS_CONF and CONTAINERS_STORAGE_CONF); never the host's default store"
for conf in "$CONTAINERS_CONF" "$CONTAINERS_STORAGE_CONF"; do
	[[ -f "$conf" ]] || die "$conf is missing: start the agent's podman backend once on that directory to write it"
done

image_version() { podman image inspect --format "{{index .Labels \"$VERSION_LABEL\"}}" "$1" 2>/dev/null || true; }
image_id() { podman image inspect --format '{{.Id}}' "$1" 2>/dev/null | cut -c1-12 || true; }

work=""
trap '[[ -z "$work" ]] || rm -rf "$work"' EXIT

build_image() {
	work="$(mktemp -d)"
	local root="$work/rootfs"
	base_rootfs "$root"
	printf 'podchain-demo ok\n' >"$root/www/index.html"
	tar -C "$root" --numeric-owner -cf "$work/rootfs.tar" .

	local old_id
	old_id="$(image_id "$IMAGE")"
	# podman import prints progress on stderr even with --quiet: show it only on failure.
	podman import \
		--change 'ENV=PATH=/bin:/sbin' \
		--change 'WORKDIR=/' \
		--change 'CMD=["/bin/httpd","-f","-p","127.0.0.1:8080","-h","/www"]' \
		--change "LABEL=$VERSION_LABEL=$IMAGE_VERSION" \
		--change "LABEL=org.podchain.busybox-static=$(dpkg-query -W -f='${Version}' busybox-static)" \
		--message "podchain busybox-static test image" \
		"$work/rootfs.tar" "$IMAGE" >"$work/import.log" 2>&1 ||
		{ cat "$work/import.log" >&2; die "podman import failed"; }
	# Drop the previous build if re-tagging left it dangling (kept if a container uses it).
	if [[ -n "$old_id" && "$old_id" != "$(image_id "$IMAGE")" ]]; then
		podman rmi "$old_id" >/dev/null 2>&1 || true
	fi
	log "built $IMAGE ($(image_id "$IMAGE"))"
}

if [[ "${FORCE:-0}" != 1 && "$(image_version "$IMAGE")" == "$IMAGE_VERSION" ]]; then
	log "$IMAGE is current ($(image_id "$IMAGE")); FORCE=1 rebuilds it"
else
	build_image
fi

if [[ "${VERIFY:-0}" == 1 ]]; then
	port="${VERIFY_PORT:-18080}"
	name="podchain-demo-verify-$$"
	podman run -d --rm --name "$name" --network host "$IMAGE" httpd -f -p "127.0.0.1:$port" -h /www >/dev/null
	ok=0
	for _ in $(seq 1 50); do
		[[ "$(curl -fsS "http://127.0.0.1:$port/" 2>/dev/null)" == "podchain-demo ok" ]] && { ok=1; break; }
		sleep 0.1
	done
	podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
	((ok)) || die "VERIFY failed: nothing served on 127.0.0.1:$port"
	log "VERIFY ok: $IMAGE served 127.0.0.1:$port"
fi
