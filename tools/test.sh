#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite with ctest.
# Usage: tools/test.sh [--quick] [ctest args...]
#   Runs the suite twice, in an optimized build (build/) and an ASan/UBSan build
#   (build-asan/), then the libFuzzer targets for a bounded time (build-fuzz/, clang).
#   --quick      only the optimized build
# Exit status: non-zero if any build step or test fails.
set -euo pipefail
cd "$(dirname "$0")/.."

SANITIZE=1
if [ "${1:-}" = "--quick" ]; then SANITIZE=0; shift; fi

tools/setup.sh

JOBS=${JOBS:-2}
export CCACHE_DIR=${CCACHE_DIR:-$PWD/.ccache}

run_suite() {
  local dir=$1; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j"$JOBS"
  (cd "$dir" && ctest --output-on-failure -j"$JOBS" --timeout 300 "${CTEST_ARGS[@]}")
}

CTEST_ARGS=("$@")
run_suite build
# Container images built with podman from the binaries just built, run and checked.
tools/deploy-test.sh --prebuilt build
if [ "$SANITIZE" = 1 ]; then
  run_suite build-asan -DEDGE_SANITIZE=ON
  # libFuzzer targets (clang): the policy parser and the payload decoder, bounded in time.
  CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGE_BUILD_FUZZ=ON \
    -DEDGE_FUZZ_SECONDS="${EDGE_FUZZ_SECONDS:-20}" >/dev/null
  cmake --build build-fuzz -j"$JOBS" --target policy_fuzz decoder_fuzz
  (cd build-fuzz && ctest --output-on-failure -j"$JOBS" -L fuzz)
fi
