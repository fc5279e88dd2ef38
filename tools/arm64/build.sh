#!/usr/bin/env bash
# Cross-compiles edge-agent and edge-console for linux/arm64 with Debian's aarch64 toolchain:
# installs the toolchain and qemu-user if missing, makes the arm64 sysroot
# (tools/arm64/sysroot.sh), configures BUILD_DIR with tools/arm64/toolchain.cmake and builds.
# Run the result with `qemu-aarch64 -L SYSROOT BUILD_DIR/agent/edge-agent ...`.
#
# Usage: tools/arm64/build.sh [BUILD_DIR [TARGET...]]   (default build-arm64 in the
#        repository, edge-agent and edge-console; the sysroot is tools/arm64/sysroot.sh's
#        default, or $EDGE_ARM64_SYSROOT)
set -euo pipefail
ROOT=$(realpath "$(dirname "$(realpath "$0")")/../..")
BUILD=$(realpath -m "${1:-$ROOT/build-arm64}")  # resolved where the caller stands
[ $# -gt 0 ] && shift
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(edge-agent edge-console)
SYSROOT=$("$ROOT/tools/arm64/sysroot.sh" --path)
cd "$ROOT"
tools/setup.sh g++-aarch64-linux-gnu qemu-user file
tools/arm64/sysroot.sh "$SYSROOT"
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
# Libraries found in another sysroot stay in a build directory's cache: start it afresh.
if [ -f "$BUILD/CMakeCache.txt" ] &&
   ! grep -qx "EDGE_ARM64_SYSROOT:UNINITIALIZED=$SYSROOT" "$BUILD/CMakeCache.txt"; then
  rm -rf "$BUILD/CMakeCache.txt" "$BUILD/CMakeFiles"
fi
cmake -S . -B "$BUILD" -DCMAKE_TOOLCHAIN_FILE=tools/arm64/toolchain.cmake \
  -DEDGE_ARM64_SYSROOT="$SYSROOT" -DEDGE_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"${JOBS:-2}" --target "${TARGETS[@]}"
echo "arm64 build: $(file -b "$BUILD/agent/edge-agent" | cut -d, -f1-2); sysroot $SYSROOT"
