#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite with ctest.
# Usage: tools/test.sh [--quick | --long] [ctest args...]
#   1. optimized build (build/, -O1): every ctest test, the container test, and the
#      benchmark suite in smoke mode;
#   2. ASan/UBSan build (build-asan/, -O0 with asserts on): unit and integration tests
#      (the fault and deploy labels run in step 1 only: they exercise processes and
#      images, not new code paths). It is compiled at the lowest CPU priority while step
#      1's tests run: they mostly wait on processes and sockets, and it takes the idle CPU;
#   3. the libFuzzer targets for a bounded time (build-fuzz/, clang) and the unit tests
#      under ThreadSanitizer (build-tsan/, -O1), both built at the lowest priority while
#      step 2's tests run;
#   4. the agent cross-compiled for linux/arm64 (build-arm64/, tools/arm64/build.sh), built
#      while step 3's tests run, then run under qemu-user against a real mosquitto and
#      console (tests/integration/test_arm64.py); then the arm64 images and a manifest list
#      naming both architectures (tools/deploy-test.sh --arm64). EDGE_ARM64=0 skips step 4
#      (it needs the arm64 package index: dpkg --add-architecture arm64).
#   --quick      only step 1
#   --long       the long modes as well: the SIGKILL loop 100 times instead of 20, 1,000
#                simulated power cuts instead of 200 (PowerCut unit test), each
#                fuzz target for 5 minutes instead of 20 s, and the full benchmark suite
#                (tools/bench/run.sh, into bench-report/) instead of its smoke run
# Exit status: non-zero if any build step or test fails.
set -euo pipefail
cd "$(dirname "$0")/.."

SANITIZE=1
LONG=0
if [ "${1:-}" = "--quick" ]; then SANITIZE=0; shift; fi
if [ "${1:-}" = "--long" ]; then LONG=1; shift; fi
if [ "$LONG" = 1 ]; then
  export EDGE_FAULT_KILLS=${EDGE_FAULT_KILLS:-100}
  export EDGE_POWER_CUTS=${EDGE_POWER_CUTS:-1000}
  export EDGE_FUZZ_SECONDS=${EDGE_FUZZ_SECONDS:-300}
fi

tools/setup.sh

JOBS=${JOBS:-2}
# ccache keeps its own default directory (outside the clone) so that a fresh clone reuses
# what earlier builds compiled; paths under the clone are hashed relative to it.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
CTEST_ARGS=("$@")
START=$SECONDS
stage() { echo "== test.sh: $1 ($((SECONDS - START)) s so far)"; }

build() {
  local dir=$1; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j"$JOBS"
}

stage "optimized build"
# -O1 without debug info compiles in about 60% of the time of -O2 -g (measured on the
# heaviest source, the uplink); the published figures come from tools/bench's Release build.
build build -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g0 -DNDEBUG" -DEDGE_BUILD_BENCH=ON
# One build at a time runs in the background at nice 19, in a session of its own so that
# stopping it stops every compiler it started; its output goes to BG_LOG.
BG_PID=""
BG_LOG=$(mktemp)
trap 'if [ -n "$BG_PID" ]; then kill -- "-$BG_PID" 2>/dev/null; fi; rm -f "$BG_LOG"' EXIT
background() {  # background COMMAND...
  JOBS=$JOBS setsid nice -n 19 "$@" >"$BG_LOG" 2>&1 &
  BG_PID=$!
}
wait_background() {  # wait_background WHAT: fails the script if that build failed
  local rc=0
  wait "$BG_PID" || rc=$?
  BG_PID=""
  tail -n 30 "$BG_LOG"
  if [ "$rc" != 0 ]; then
    echo "test.sh: the $1 failed (exit $rc)" >&2
    exit 1
  fi
}

if [ "$SANITIZE" = 1 ]; then
  stage "ASan/UBSan build started in the background (nice 19)"
  # -O0: under ASan the coroutine-heavy sources compile 2.5x faster than at -O1 (73 s
  # against 180 s of CPU for the uplink); the tests are I/O-bound and barely slower.
  background bash -c "$(declare -f build); build build-asan -DEDGE_SANITIZE=ON \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO='-O0 -g0'"
fi
stage "ctest (optimized)"
(cd build && ctest --output-on-failure -j"$JOBS" --timeout 300 "${CTEST_ARGS[@]}")
stage "container test"
# Container images built with podman from the binaries just built, run and checked.
tools/deploy-test.sh --prebuilt build
if [ "$LONG" = 1 ]; then
  stage "benchmark (full, Release build)"
  tools/bench/run.sh
else
  stage "benchmark smoke"
  # Every benchmark scenario for a few seconds, on the binaries just built, so the harness
  # cannot rot (figures from this build are not the published ones: see
  # docs/performance.md).
  SMOKE_OUT=$(mktemp -d)
  tools/bench/run.sh --no-build --build-dir build --smoke --out "$SMOKE_OUT"
  rm -rf "$SMOKE_OUT"
fi

if [ "$SANITIZE" = 1 ]; then
  stage "ASan/UBSan build (waiting for the background build)"
  wait_background "ASan/UBSan build"
  # libFuzzer targets (clang): the policy parser, the payload decoder, the Sparkplug B
  # decoder and the MQTT codec,
  # bounded in time; then the unit tests under ThreadSanitizer (only the unit tests: the
  # integration tests run processes whose threads the unit tests already cover). Built in
  # the background, one after the other, while the ASan tests run.
  stage "fuzz and TSan builds started in the background (nice 19)"
  CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGE_BUILD_FUZZ=ON \
    -DEDGE_FUZZ_SECONDS="${EDGE_FUZZ_SECONDS:-20}" >/dev/null
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGE_TSAN=ON \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO='-O1 -g0' >/dev/null
  background bash -c "cmake --build build-fuzz -j$JOBS --target policy_fuzz decoder_fuzz sparkplug_fuzz \
    mqtt_codec_fuzz && cmake --build build-tsan -j$JOBS --target common_unit_tests \
    rules_unit_tests agent_unit_tests cloudsync_unit_tests console_unit_tests"
  stage "ctest (ASan/UBSan)"
  (cd build-asan && ctest --output-on-failure -j"$JOBS" --timeout 300 -LE "fault|deploy" \
    "${CTEST_ARGS[@]}")
  stage "fuzz and TSan builds (waiting for the background build)"
  wait_background "fuzz or TSan build"
  # linux/arm64: the agent cross-compiled (sysroot, toolchain) in the background while the
  # fuzz and TSan tests run.
  if [ "${EDGE_ARM64:-1}" != 0 ]; then
    stage "arm64 cross build started in the background (nice 19)"
    background tools/arm64/build.sh build-arm64
  fi
  stage "fuzz"
  (cd build-fuzz && ctest --output-on-failure -j"$JOBS" -L fuzz)
  stage "ctest (TSan, unit tests)"
  # halt_on_error: the first race fails its test, with both stacks in the output.
  (cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    ctest --output-on-failure -j"$JOBS" --timeout 300 -L unit)
  if [ "${EDGE_ARM64:-1}" != 0 ]; then
    stage "arm64 cross build (waiting for the background build)"
    wait_background "arm64 cross build"
    stage "arm64 agent under qemu-user"
    PY=python3
    [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
    EDGE_AGENT_BIN=$PWD/build/agent/edge-agent EDGE_CONSOLE_BIN=$PWD/build/tools/console/edge-console \
      EDGE_AGENT_ARM64_BIN=$PWD/build-arm64/agent/edge-agent \
      EDGE_ARM64_SYSROOT=$(tools/arm64/sysroot.sh --path) \
      PYTHONDONTWRITEBYTECODE=1 "$PY" tests/integration/test_arm64.py
    stage "container test (arm64 images and the manifest list)"
    tools/deploy-test.sh --prebuilt build --arm64 build-arm64
  fi
fi
stage "all passed"
