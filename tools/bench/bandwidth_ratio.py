#!/usr/bin/env python3
"""Bytes uplinked / bytes ingested in the standard sensor-sim scenario.

Starts a private mosquitto, edge-console and edge-agent (default store settings: rollups
every minute, raw readings never uplinked) with tools/demo/policy.yaml, runs sensor-sim
(mixed formats, anomalies injected) and prints the agent's byte counters. Exits 1 if the
ratio is above --max-ratio.

  tools/bench/bandwidth_ratio.py --agent build/agent/edge-agent \
      --console build/tools/console/edge-console --sim build/tools/sensor-sim/sensor-sim
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agent", required=True)
    p.add_argument("--console", required=True)
    p.add_argument("--sim", required=True)
    p.add_argument("--sensors", type=int, default=50)
    p.add_argument("--rate", type=float, default=1.0)
    p.add_argument("--duration", type=int, default=150, help="seconds")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-ratio", type=float, default=0.05)
    p.add_argument("--no-policy", action="store_true", help="no rules: rollups and status only")
    args = p.parse_args()
    os.environ["EDGE_AGENT_BIN"] = os.path.abspath(args.agent)
    os.environ["EDGE_CONSOLE_BIN"] = os.path.abspath(args.console)
    import harness  # pylint: disable=import-outside-toplevel

    harness.EDGE_AGENT_BIN = os.environ["EDGE_AGENT_BIN"]
    harness.EDGE_CONSOLE_BIN = os.environ["EDGE_CONSOLE_BIN"]
    with open(os.path.join(ROOT, "tools", "demo", "policy.yaml")) as f:
        policy = f.read() if not args.no_policy else "rules: []\n"
    with tempfile.TemporaryDirectory(prefix="edge-bandwidth-") as tmp:
        mq = harness.Mosquitto(tmp).start()
        console = harness.Console(tmp).start()
        agent = harness.Agent(tmp, mq, console, policy=policy, topics=("sim/#",)).start()
        try:
            subprocess.run([args.sim, "--broker", mq.url, "--sensors", str(args.sensors),
                            "--rate", str(args.rate), "--duration", "%ds" % args.duration,
                            "--seed", str(args.seed), "--format", "mixed", "--quiet"],
                           check=True, stdout=subprocess.DEVNULL)
            time.sleep(3)  # the last uploads (a rollup window may close right now)
            m = agent.metrics()
        finally:
            agent.stop()
            console.stop()
            mq.stop()
    ingest = agent.metric("edge_agent_ingest_bytes_total", m)
    uplink = agent.metric("edge_agent_uplink_bytes_total", m)
    print("messages       %d" % agent.metric("edge_agent_messages_received_total", m))
    print("readings       %d" % agent.metric("edge_agent_readings_received_total", m))
    print("alerts raised  %d" % agent.metric("edge_agent_alerts_raised_total", m))
    print("rollups        %d" % agent.metric("edge_agent_rollups_total", m))
    print("uploads        %d batches, %d status reports" % (
        agent.metric("edge_agent_uploads_total", m, result="ok"),
        agent.metric("edge_agent_status_reports_total", m, result="ok")))
    print("ingest bytes   %d" % ingest)
    print("uplink bytes   %d" % uplink)
    ratio = uplink / ingest if ingest else float("inf")
    print("ratio          %.2f%%" % (100 * ratio))
    return 0 if ratio <= args.max_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
