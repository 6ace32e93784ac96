#!/bin/sh
# A Debian 12 (bookworm) base image made from Debian's packages, for a machine that reaches Debian's
# archive but no container registry (the test's machine; an air-gapped build host with a Debian mirror).
# It stands in for `python:3.11-slim-bookworm`, the Dockerfile's default base: the same release, so the
# Dockerfile runs the same steps on both. Usage (as root): docker/make-base-image.sh [IMAGE] [MIRROR]
set -eu
IMAGE=${1:-slf-local/debian:bookworm}
MIRROR=${2:-http://deb.debian.org/debian}
DOCKER=${DOCKER:-docker}

if $DOCKER image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "$IMAGE exists"; exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }
ROOT=$(mktemp -d /tmp/slf-base-rootfs.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >"$ROOT.log" 2>&1 \
    || { tail -20 "$ROOT.log" >&2; rm -f "$ROOT.log"; exit 1; }
rm -f "$ROOT.log"
# The suites the slim images use: the release, its updates and its security fixes.
rm -f "$ROOT/etc/apt/sources.list"
cat >"$ROOT/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
# As in Debian's official images: no apt caches or docs kept in layers.
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*
tar --numeric-owner -C "$ROOT" -c . | $DOCKER import --change 'CMD ["bash"]' - "$IMAGE" >/dev/null
echo "$IMAGE imported"
