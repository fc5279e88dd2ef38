#!/usr/bin/env python3
"""Measures edge-agent's memory and CPU under sensor-sim load (the DaemonSet's sizing).

Not a test: run by hand when the agent changes, and copy the table into docs/deploy.md.

  EDGE_AGENT_BIN=build-deploy/agent/edge-agent \
  EDGE_CONSOLE_BIN=build-deploy/tools/console/edge-console \
  SENSOR_SIM_BIN=build-deploy/tools/sensor-sim/sensor-sim \
  python3 tests/deploy/measure_resources.py [--seconds 30]

For each load (idle; sensors x readings/s), a real mosquitto, edge-console and edge-agent
(harness.py), and sensor-sim publishing json readings with anomalies that raise alerts.
Samples the agent's /proc status every 0.5 s: RSS (mean and peak, VmHWM) and CPU (utime
+ stime over the window, in millicores). The first 5 s of each window are not counted.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402

POLICY = """\
rules:
  - id: hot
    match: "sim/+/+/temperature"
    kind: threshold
    above: 35
    clear: 30
    severity: warning
"""
LOADS = [(0, 0), (50, 1), (200, 5), (500, 10)]
TICKS = os.sysconf("SC_CLK_TCK")


def proc_sample(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime
    status = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            status[key] = value.strip()
    return cpu, int(status["VmRSS"].split()[0]), int(status["VmHWM"].split()[0])


def measure(sensors, rate, seconds, warmup=5.0):
    tmp = tempfile.mkdtemp(prefix="edge-measure-")
    owned = []
    try:
        mq = harness.Mosquitto(tmp).start()
        owned.append(mq)
        console = harness.Console(tmp, nodes=("node-1",)).start()
        owned.append(console)
        agent = harness.Agent(tmp, mq, console, policy=POLICY, topics=("sim/#",))
        owned.append(agent)
        agent.start()
        if sensors:
            sim = harness.Process("sensor-sim", [
                harness.SENSOR_SIM_BIN, "--broker", mq.url, "--sensors", sensors, "--rate", rate,
                "--duration", "%ds" % (seconds + warmup + 5), "--format", "json", "--quiet",
                "--anomalies", max(1, sensors // 4)], os.path.join(tmp, "sim.log")).start()
            owned.append(sim)
        time.sleep(warmup)
        pid = agent.process.pid
        cpu0, _, _ = proc_sample(pid)
        t0 = time.monotonic()
        rss = []
        while time.monotonic() - t0 < seconds:
            time.sleep(0.5)
            _, r, _ = proc_sample(pid)
            rss.append(r)
        cpu1, _, hwm = proc_sample(pid)
        elapsed = time.monotonic() - t0
        m = agent.metrics()
        return {
            "load": "idle" if not sensors else "%d x %g/s" % (sensors, rate),
            "msgs_s": sensors * rate,
            "cpu_m": 1000 * (cpu1 - cpu0) / elapsed,
            "rss_mean_mib": sum(rss) / len(rss) / 1024,
            "rss_peak_mib": hwm / 1024,
            "readings": agent.metric("edge_agent_readings_received_total", _metrics=m),
            "alerts": agent.metric("edge_agent_alerts_raised_total", _metrics=m),
            "dropped": agent.metric("edge_agent_messages_dropped_total", _metrics=m),
        }
    finally:
        for c in reversed(owned):
            try:
                c.stop()
            except Exception:  # pylint: disable=broad-except
                pass
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    for var in ("EDGE_AGENT_BIN", "EDGE_CONSOLE_BIN", "SENSOR_SIM_BIN"):
        if not os.environ.get(var):
            sys.exit("%s is not set" % var)
    print("| load (sensors x readings/s) | msgs/s | CPU (millicores) | RSS mean (MiB) "
          "| RSS peak (MiB) | readings | alerts | dropped |")
    print("|---|---|---|---|---|---|---|---|")
    for sensors, rate in LOADS:
        r = measure(sensors, rate, args.seconds)
        print("| %s | %d | %.0f | %.1f | %.1f | %d | %d | %d |" % (
            r["load"], r["msgs_s"], r["cpu_m"], r["rss_mean_mib"], r["rss_peak_mib"],
            r["readings"], r["alerts"], r["dropped"]))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
