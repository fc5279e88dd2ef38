#!/usr/bin/env bash
# Builds the edge-agent and edge-console images with podman and runs the container test
# (tests/deploy/test_container.py) against them.
#
# Usage: tools/deploy-test.sh [--compile | --prebuilt BIN_DIR] [--arm64 ARM64_BIN_DIR]
#                             [--keep-images]
#   --compile          the images compile both binaries themselves (the Dockerfile's default
#                      path, what operators run); the slow path on a cold machine
#   --prebuilt BIN_DIR the images take edge-agent and edge-console from BIN_DIR (built on
#                      this Debian 12 host); the default, with BIN_DIR = build-deploy, which
#                      is configured and built (Release, no tests) here if needed
#   --arm64 DIR        also the linux/arm64 images, from the arm64 binaries in DIR (built by
#                      tools/arm64/build.sh) and their sysroot (tools/arm64/sysroot.sh
#                      --path): checks that they are arm64, that each image's own files run
#                      its binary (under qemu-user), and makes a manifest list
#                      naming the amd64 and arm64 agent images
#   --keep-images      leave the images in podman's store afterwards
#
# Installs what is missing (podman, buildah, runc, debootstrap, ...), sets the podman
# options this kind of machine needs, and makes the Debian base image locally with
# debootstrap when podman does not have it yet (no registry is reachable). The base image
# is kept between runs; the images and containers this script creates are removed.
# Needs root. Prints the image sizes and the time each step took.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

MODE=prebuilt
BIN_DIR=$ROOT/build-deploy
KEEP=0
ARM64_DIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --compile) MODE=compile ;;
    --prebuilt) MODE=prebuilt; BIN_DIR=$(realpath "$2"); shift ;;
    --arm64) ARM64_DIR=$(realpath "$2"); shift ;;
    --keep-images) KEEP=1 ;;
    *) echo "usage: $0 [--compile | --prebuilt BIN_DIR] [--arm64 DIR] [--keep-images]" >&2; exit 2 ;;
  esac
  shift
done

[ "$(id -u)" -eq 0 ] || { echo "deploy-test: needs root (rootful podman, debootstrap)" >&2; exit 1; }

BASE_IMAGE=docker.io/library/debian:bookworm
TAG=deploy-test-$$
AGENT_IMAGE=localhost/edge-agent:$TAG
CONSOLE_IMAGE=localhost/edge-console:$TAG
AGENT_ARM64_IMAGE=localhost/edge-agent:$TAG-arm64
CONSOLE_ARM64_IMAGE=localhost/edge-console:$TAG-arm64
MANIFEST=localhost/edge-agent:$TAG-multiarch
T0=$(date +%s)
step() { echo "deploy-test: [$(( $(date +%s) - T0 ))s] $*"; }

# ------------------------------------------------------------------ packages and podman
tools/setup.sh podman buildah runc fuse-overlayfs uidmap slirp4netns debootstrap
# runc, not crun (crun fails on this kind of host's hybrid cgroups); container ulimits
# within the host's hard limit.
NOFILE=$(ulimit -Hn)
mkdir -p /etc/containers/containers.conf.d
CONF=/etc/containers/containers.conf.d/50-edge-agent-deploy-test.conf
WANT=$(printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=32768:32768"]\n\n[engine]\nruntime = "runc"\n' "$NOFILE" "$NOFILE")
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$WANT" ]; then
  printf '%s\n' "$WANT" > "$CONF"
fi

# ------------------------------------------------------------------------- base image
if ! podman image exists "$BASE_IMAGE"; then
  MIRROR=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/* *$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
  MIRROR=${MIRROR:-http://deb.debian.org/debian}
  step "making $BASE_IMAGE with debootstrap from $MIRROR"
  ROOTFS=$(mktemp -d /var/tmp/edge-debian-rootfs.XXXXXX)
  trap 'rm -rf "$ROOTFS"' EXIT
  debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR" >/dev/null
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s-security bookworm-security main\n' \
    "$MIRROR" "$MIRROR" "$MIRROR" > "$ROOTFS/etc/apt/sources.list"
  rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
  tar -C "$ROOTFS" -c . | podman import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$ROOTFS"
  trap - EXIT
fi

# ----------------------------------------------------------------------------- images
cleanup() {
  local rc=$?
  rm -rf "${CONTEXT:-}" "${STAGE:-}" "${ARM64_STAGE:-}" "${ROOTFS_CHECK:-}"
  if [ "$KEEP" = 0 ]; then
    podman manifest rm "$MANIFEST" >/dev/null 2>&1 || true
    podman rmi -f "$AGENT_IMAGE" "$CONSOLE_IMAGE" "$AGENT_ARM64_IMAGE" "$CONSOLE_ARM64_IMAGE" \
      >/dev/null 2>&1 || true
    # Intermediate stages of this build (untagged); the base image stays.
    podman image prune -f >/dev/null 2>&1 || true
  fi
  exit $rc
}
trap cleanup EXIT

# Both images are built from one snapshot of the sources (the files .dockerignore lets
# through), so that the second build reuses every stage of the first even while the
# working tree changes.
CONTEXT=$(mktemp -d /var/tmp/edge-context.XXXXXX)
tar -c CMakeLists.txt common rules cloud-sync agent tools/CMakeLists.txt tools/console \
  tools/sensor-sim tools/arm64 deploy/image deploy/Dockerfile .dockerignore | tar -C "$CONTEXT" -x
BUILD_ARGS=(--pull=never -f "$CONTEXT/deploy/Dockerfile" --build-arg BINARIES="$MODE")
if [ "$MODE" = prebuilt ]; then
  if [ "$BIN_DIR" = "$ROOT/build-deploy" ]; then
    step "building the binaries in build-deploy (Release, no tests)"
    export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$ROOT}
    cmake -S . -B build-deploy -DCMAKE_BUILD_TYPE=Release -DEDGE_BUILD_TESTS=OFF -DEDGE_WERROR=OFF >/dev/null
    cmake --build build-deploy -j"${JOBS:-2}" --target edge-agent edge-console \
      >/tmp/deploy-test-cmake-$$.log 2>&1 || { tail -50 /tmp/deploy-test-cmake-$$.log; exit 1; }
    rm -f /tmp/deploy-test-cmake-$$.log
  fi
  STAGE=$(mktemp -d /var/tmp/edge-prebuilt.XXXXXX)
  for b in agent/edge-agent tools/console/edge-console; do
    src=$BIN_DIR/$b
    [ -x "$src" ] || src=$BIN_DIR/$(basename "$b")
    [ -x "$src" ] || { echo "deploy-test: no $(basename "$b") in $BIN_DIR" >&2; exit 1; }
    cp "$src" "$STAGE/"
  done
  BUILD_ARGS+=(-v "$STAGE:/prebuilt:ro")
fi

step "building $AGENT_IMAGE ($MODE)"
podman build "${BUILD_ARGS[@]}" --target agent -t "$AGENT_IMAGE" "$CONTEXT" >/tmp/deploy-test-build-$$.log 2>&1 \
  || { tail -50 /tmp/deploy-test-build-$$.log; exit 1; }
step "building $CONSOLE_IMAGE ($MODE, cached stages)"
podman build "${BUILD_ARGS[@]}" --target console -t "$CONSOLE_IMAGE" "$CONTEXT" >>/tmp/deploy-test-build-$$.log 2>&1 \
  || { tail -50 /tmp/deploy-test-build-$$.log; exit 1; }
rm -f /tmp/deploy-test-build-$$.log
for img in "$AGENT_IMAGE" "$CONSOLE_IMAGE"; do
  size=$(podman image inspect -f '{{.Size}}' "$img")
  step "image $img: $size bytes ($(( size / 1024 / 1024 )) MiB uncompressed)"
done

# ----------------------------------------------------------------------- container test
step "container test"
AGENT_IMAGE=$AGENT_IMAGE CONSOLE_IMAGE=$CONSOLE_IMAGE \
  PYTHONDONTWRITEBYTECODE=1 \
  python3 tests/deploy/test_container.py

# ----------------------------------------------------------------------- linux/arm64
if [ -n "$ARM64_DIR" ]; then
  tools/setup.sh qemu-user
  SYSROOT=$(tools/arm64/sysroot.sh --path)
  [ -d "$SYSROOT/usr/lib/aarch64-linux-gnu" ] \
    || { echo "deploy-test: no arm64 sysroot at $SYSROOT (tools/arm64/sysroot.sh)" >&2; exit 1; }
  ARM64_STAGE=$(mktemp -d /var/tmp/edge-prebuilt-arm64.XXXXXX)
  cp "$ARM64_DIR/agent/edge-agent" "$ARM64_DIR/tools/console/edge-console" "$ARM64_STAGE/"
  ARM64_ARGS=(--pull=never -f "$CONTEXT/deploy/Dockerfile" --build-arg BINARIES=prebuilt
              --platform linux/arm64 --build-arg BUILDPLATFORM=linux/amd64
              -v "$ARM64_STAGE:/prebuilt:ro" -v "$SYSROOT:/sysroot:ro")
  step "building $AGENT_ARM64_IMAGE and $CONSOLE_ARM64_IMAGE (cross-compiled, prebuilt)"
  podman build "${ARM64_ARGS[@]}" --target agent -t "$AGENT_ARM64_IMAGE" "$CONTEXT" \
    >/tmp/deploy-test-build-$$.log 2>&1 || { tail -50 /tmp/deploy-test-build-$$.log; exit 1; }
  podman build "${ARM64_ARGS[@]}" --target console -t "$CONSOLE_ARM64_IMAGE" "$CONTEXT" \
    >>/tmp/deploy-test-build-$$.log 2>&1 || { tail -50 /tmp/deploy-test-build-$$.log; exit 1; }
  rm -f /tmp/deploy-test-build-$$.log
  for img in "$AGENT_ARM64_IMAGE" "$CONSOLE_ARM64_IMAGE"; do
    arch=$(podman image inspect -f '{{.Os}}/{{.Architecture}}' "$img")
    [ "$arch" = linux/arm64 ] || { echo "deploy-test: $img is $arch, not linux/arm64" >&2; exit 1; }
    size=$(podman image inspect -f '{{.Size}}' "$img")
    step "image $img: $arch, $size bytes ($(( size / 1024 / 1024 )) MiB uncompressed)"
  done
  # No binfmt_misc here to run an arm64 container: the image's own files, unpacked, are
  # the only root qemu-user gets, so a missing library fails this.
  ROOTFS_CHECK=$(mktemp -d /var/tmp/edge-arm64-rootfs.XXXXXX)
  for img in "$AGENT_ARM64_IMAGE" "$CONSOLE_ARM64_IMAGE"; do
    ctr=$(podman create --platform linux/arm64 "$img")
    mkdir -p "$ROOTFS_CHECK/$ctr"
    podman export "$ctr" | tar -C "$ROOTFS_CHECK/$ctr" -x
    podman rm "$ctr" >/dev/null
    bin=$(ls "$ROOTFS_CHECK/$ctr/usr/local/bin/")
    out=$(qemu-aarch64 -L "$ROOTFS_CHECK/$ctr" "$ROOTFS_CHECK/$ctr/usr/local/bin/$bin" --version 2>&1) \
      || { echo "deploy-test: $bin from $img did not run: $out" >&2; exit 1; }
    [[ "$out" =~ ^(edge-[a-z]+ )?[0-9]+\.[0-9]+\.[0-9]+$ ]] \
      || { echo "deploy-test: $bin --version from $img printed: $out" >&2; exit 1; }
    step "$img: $bin --version printed \"$out\", run from the image's own files under qemu-user"
  done
  step "manifest list $MANIFEST"
  podman manifest create "$MANIFEST" >/dev/null
  podman manifest add "$MANIFEST" "containers-storage:$AGENT_IMAGE" >/dev/null
  podman manifest add "$MANIFEST" "containers-storage:$AGENT_ARM64_IMAGE" >/dev/null
  platforms=$(podman manifest inspect "$MANIFEST" | python3 -c '
import json, sys
print(" ".join(sorted("%s/%s" % (m["platform"]["os"], m["platform"]["architecture"])
                      for m in json.load(sys.stdin)["manifests"])))')
  [ "$platforms" = "linux/amd64 linux/arm64" ] \
    || { echo "deploy-test: manifest list names '$platforms'" >&2; exit 1; }
  step "manifest list names $platforms"
fi
step "passed"
