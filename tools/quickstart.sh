#!/usr/bin/env bash
# Live demo on loopback: installs what is missing, builds Release, starts mosquitto,
# edge-console, edge-agent and sensor-sim, prints alerts as they reach the console, and a
# summary at the end. Stops everything it started after --duration seconds or on Ctrl-C.
#
# Usage: tools/quickstart.sh [--duration SECONDS] [--sensors N] [--rate R] [--seed S]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=60
SENSORS=50
RATE=2
SEED=42
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --sensors) SENSORS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done

tools/setup.sh
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$ROOT}
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DEDGE_BUILD_TESTS=OFF >/dev/null
cmake --build build-release -j"${JOBS:-2}" --target edge-agent edge-console sensor-sim

BIN=$ROOT/build-release
RUN=$ROOT/.run/quickstart
rm -rf "$RUN"
mkdir -p "$RUN"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MQTT_PORT=$(free_port)
AGENT_PORT=$(free_port)

PIDS=()
cleanup() {
  trap - EXIT INT TERM
  for ((i=${#PIDS[@]}-1; i>=0; i--)); do kill -TERM "${PIDS[$i]}" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; summary; exit 130' INT TERM

wait_for() {  # wait_for SECONDS CMD...
  local t=$1; shift
  for _ in $(seq $((t * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "timed out waiting for: $*" >&2
  return 1
}

# Broker
cat >"$RUN/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
max_inflight_messages 0
max_queued_messages 100000
CONF
mosquitto -c "$RUN/mosquitto.conf" 2>"$RUN/mosquitto.log" &
PIDS+=($!)
wait_for 10 bash -c "echo > /dev/tcp/127.0.0.1/$MQTT_PORT"

# Console
ADMIN_TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
NODE_TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf 'demo-node %s\nadmin %s\n' "$NODE_TOKEN" "$ADMIN_TOKEN" >"$RUN/tokens"
printf '%s\n' "$NODE_TOKEN" >"$RUN/node-token"
"$BIN/tools/console/edge-console" --listen 127.0.0.1:0 --port-file "$RUN/console.port" \
  --db "$RUN/console.db" --tokens "$RUN/tokens" >"$RUN/console.log" 2>&1 &
PIDS+=($!)
wait_for 10 test -s "$RUN/console.port"
CONSOLE_PORT=$(cat "$RUN/console.port")

# Agent
cat >"$RUN/agent.yaml" <<CONF
node_id: demo-node
mqtt:
  url: tcp://127.0.0.1:$MQTT_PORT
  topics: ["sim/#"]
store:
  path: $RUN/agent.db
http:
  listen: 127.0.0.1:$AGENT_PORT
console:
  url: http://127.0.0.1:$CONSOLE_PORT
  token_file: $RUN/node-token
policy: $ROOT/tools/demo/policy.yaml
CONF
"$BIN/agent/edge-agent" run --config "$RUN/agent.yaml" >"$RUN/agent.log" 2>&1 &
PIDS+=($!)
wait_for 15 curl -sf "http://127.0.0.1:$AGENT_PORT/readyz"

echo "broker   tcp://127.0.0.1:$MQTT_PORT"
echo "console  http://127.0.0.1:$CONSOLE_PORT/   (admin token in $RUN/tokens)"
echo "agent    http://127.0.0.1:$AGENT_PORT/metrics"
echo "sensors  $SENSORS at $RATE/s each for ${DURATION}s (seed $SEED); truth in $RUN/truth.jsonl"
echo

"$BIN/tools/sensor-sim/sensor-sim" --broker "tcp://127.0.0.1:$MQTT_PORT" --sensors "$SENSORS" \
  --rate "$RATE" --duration "${DURATION}s" --seed "$SEED" --format mixed \
  --truth "$RUN/truth.jsonl" --quiet >"$RUN/sim.log" 2>&1 &
SIM_PID=$!
PIDS+=($SIM_PID)

metric() {  # metric NAME -> sum over all label sets
  curl -sf "http://127.0.0.1:$AGENT_PORT/metrics" |
    awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%.0f", s }'
}
summary() {
  echo
  echo "== summary"
  echo "readings received      $(metric edge_agent_readings_received_total)"
  echo "payloads rejected      $(metric edge_agent_readings_rejected_total)"
  echo "alerts raised          $(metric edge_agent_alerts_raised_total)"
  echo "alerts resolved        $(metric edge_agent_alerts_resolved_total)"
  echo "alert events @console  $(python3 "$ROOT/tools/demo/watch_alerts.py" --count \
    "http://127.0.0.1:$CONSOLE_PORT" "$ADMIN_TOKEN")"
  local in out
  in=$(metric edge_agent_ingest_bytes_total)
  out=$(metric edge_agent_uplink_bytes_total)
  echo "bytes ingested         $in"
  echo "bytes uplinked         $out"
  python3 -c "import sys; i,o=int(sys.argv[1]),int(sys.argv[2]); print('uplinked/ingested      %.2f%%' % (100.0*o/i if i else 0))" "$in" "$out"
  echo "anomalies injected     $(wc -l <"$RUN/truth.jsonl" 2>/dev/null || echo 0)"
  echo "logs and databases in  $RUN"
}

python3 "$ROOT/tools/demo/watch_alerts.py" "http://127.0.0.1:$CONSOLE_PORT" "$ADMIN_TOKEN" \
  --until-pid "$SIM_PID" --grace 3
summary
