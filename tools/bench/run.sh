#!/usr/bin/env bash
# The benchmark suite in one command: installs what is missing, builds the Release binaries
# and micro-benchmarks (ccache in its default directory), runs every scenario against real mosquitto,
# edge-agent and edge-console processes, and writes bench-report/report.md with charts.
#
# Usage: tools/bench/run.sh [--smoke] [--only ingest,cost,latency,drain,bandwidth,micro,storm,ack,wear]
#                           [--no-build] [--build-dir DIR] [--out DIR] [--cost-seconds N]
#                           [--storm-seconds N] [--baseline-agent PATH]
#   --smoke     tiny durations (under 2 minutes): checks that every scenario runs and
#               reports figures, not that targets are met
#   --no-build  use the binaries already in the build directory
#   --cost-seconds N  length of the cost scenario (default 120; 660 for the steady state)
#   --storm-seconds N  length of each phase of the storm scenario (default 20)
#   --baseline-agent PATH  an edge-agent binary the storm and wear scenarios also run, as the
#               before
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

BUILD=build-release
BUILD_STEP=1
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD_STEP=0; shift ;;
    --build-dir) BUILD=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done

if [ "$BUILD_STEP" = 1 ]; then
  tools/setup.sh
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$ROOT}
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DEDGE_BUILD_BENCH=ON \
    -DEDGE_BUILD_TESTS=OFF >/dev/null
  cmake --build "$BUILD" -j"${JOBS:-2}" --target edge-agent edge-console sensor-sim \
    decoder_bench rules_bench store_bench uplink_bench mqtt_codec_bench sparkplug_bench
fi
# Debian's interpreter: its python3-matplotlib draws the charts (a python3 earlier in PATH,
# such as a pyenv one, would not see it).
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
exec "$PY" tools/bench/bench.py --build-dir "$BUILD" "${ARGS[@]}"
