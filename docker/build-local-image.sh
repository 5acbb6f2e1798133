#!/usr/bin/env bash
# Builds the remas image without pulling anything: a Debian bookworm base made with debootstrap (this host's apt
# sources copied in, so apt-get works inside the build), and the release binary built on this host, packed by the
# Dockerfile's `prebuilt` target. For sites whose hosts cannot reach an image registry; needs Debian's podman,
# runc and debootstrap (installed when missing) and the Swift toolchain.
#
#   docker/build-local-image.sh [IMAGE]     IMAGE defaults to localhost/remas:latest
#   REMAS_BASE_IMAGE=...                    the base to build on (made with debootstrap when it does not exist)
#
# Then: REMAS_IMAGE=localhost/remas:latest docker-compose -f docker/compose.yaml up -d --no-build (see the README).
source "$(dirname "$0")/../scripts/lib/common.sh"
cd "$REPO_ROOT"

IMAGE="${1:-localhost/remas:latest}"
BASE="${REMAS_BASE_IMAGE:-localhost/remas/base:bookworm}"
ensure_swift
ensure_packages podman runc debootstrap tar

if ! podman image exists "$BASE"; then
    # Cached under .data/ for a week.
    CACHE="$REPO_ROOT/.data/bookworm-minbase.tar"
    if [ ! -s "$CACHE" ] || [ -n "$(find "$CACHE" -mtime +7 2>/dev/null)" ]; then
        log "debootstrap --variant=minbase bookworm (a few minutes)"
        mkdir -p "$REPO_ROOT/.data"
        ROOTFS="$(mktemp -d /tmp/remas-rootfs.XXXXXX)"
        trap 'rm -rf "$ROOTFS"' EXIT
        MIRROR="$(grep -hoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
            | grep -v security | awk '{print $2}' | head -1 || true)"
        debootstrap --variant=minbase bookworm "$ROOTFS" "${MIRROR:-http://deb.debian.org/debian}" >"$ROOTFS.log" 2>&1 \
            || { tail -30 "$ROOTFS.log" >&2; exit 1; }
        rm -f "$ROOTFS.log" "$ROOTFS/etc/apt/sources.list"
        cp -a /etc/apt/sources.list "$ROOTFS/etc/apt/" 2>/dev/null || true
        for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
            [ -e "$f" ] && cp -a "$f" "$ROOTFS/etc/apt/sources.list.d/"
        done
        cp -a /etc/apt/apt.conf.d/. "$ROOTFS/etc/apt/apt.conf.d/"
        tar -C "$ROOTFS" -cf "$CACHE.tmp" . && mv "$CACHE.tmp" "$CACHE"
    fi
    log "importing the base image $BASE"
    podman import -q --change 'CMD ["/bin/bash"]' "$CACHE" "$BASE" >/dev/null
fi

log "building the release binary"
BIN="$(build_release)"
install -D -m 755 "$BIN" .build/image/remas
strip --strip-debug .build/image/remas  # keeps the symbol table for crash backtraces
log "building $IMAGE (Dockerfile target prebuilt)"
podman build -q -f docker/Dockerfile --target prebuilt --build-arg RUNTIME_IMAGE="$BASE" --build-arg SWIFT_IMAGE="$BASE" \
    -t "$IMAGE" . >/dev/null
rm -rf .build/image
log "built $IMAGE"
