#!/usr/bin/env bash
# Builds the Dockerfile with podman from locally made base images (no registry needed), runs the
# image, talks to it through published ports, and stops it with SIGTERM to check the drain
# (Tests/container/container_test.py). Skips, saying why, only when podman cannot run here.
#   scripts/container-test.sh            build (release, as users do) + test
#   SWIFT_CONFIGURATION=debug ...        build the binary in debug (make test: half the build time)
#   KEEP_IMAGES=1 ...                    keep the built images (for a second run)
set -euo pipefail
cd "$(dirname "$0")/.."

skip() { echo "container test SKIPPED: $*" >&2; exit 0; }

scripts/install-packages.sh podman buildah debootstrap runc uidmap iptables \
  || skip "podman/buildah/debootstrap could not be installed"
export CONTAINERS_CONF="$PWD/Tests/container/containers.conf"
podman info >/dev/null 2>&1 || skip "podman info fails here: $(podman info 2>&1 | tail -1)"
scripts/setup-python.sh

base=localhost/wsgate-test/debian:bookworm
toolchain=localhost/wsgate-test/swift-toolchain:bookworm
image=localhost/wsgate:test

# 1. Base images without a registry: a minimal Debian bookworm root file system, imported.
if ! podman image exists "$base"; then
  rootfs=$(mktemp -d /var/tmp/wsgate-rootfs.XXXXXX)
  echo "debootstrap bookworm (minbase) into $rootfs" >&2
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
  # What debian:bookworm-slim leaves out too: the downloaded packages and apt's caches.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import - "$base" >/dev/null
  rm -rf "$rootfs"
fi
if ! podman image exists "$toolchain"; then
  podman build --network host --build-arg "BASE_IMAGE=$base" -t "$toolchain" -f Tests/container/Containerfile.toolchain Tests/container
fi

# 2. The Dockerfile: lint, then build with the toolchain and package mirror mounted.
.venv-conformance/bin/hadolint Dockerfile
configuration=${SWIFT_CONFIGURATION:-release}
echo "building $image ($configuration build inside the container)" >&2
start=$(date +%s)
podman build --format docker --network host \
  -v /opt/swift:/opt/swift:ro -v /opt/swift-packages:/opt/swift-packages:ro \
  --build-arg "BUILD_IMAGE=$toolchain" --build-arg "RUNTIME_IMAGE=$base" \
  --build-arg "SWIFT_CONFIGURATION=$configuration" \
  -t "$image" .
echo "image built in $(( $(date +%s) - start )) s: $(podman image inspect "$image" --format '{{.Size}}') bytes" >&2

# 3. Run it as an operator would.
.venv-conformance/bin/python Tests/container/container_test.py "$image"

if [[ -z "${KEEP_IMAGES:-}" ]]; then
  podman image rm -f "$image" >/dev/null || true
  podman image prune -f >/dev/null || true   # the build stage
fi
