#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite with ctest.
# Usage: tools/test.sh [--quick] [ctest args...]
#   Runs the suite twice: an optimized build (build/) and an ASan/UBSan build (build-asan/).
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
if [ "$SANITIZE" = 1 ]; then
  run_suite build-asan -DEDGE_SANITIZE=ON
fi
