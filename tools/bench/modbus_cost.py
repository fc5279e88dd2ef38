"""The `modbus` scenario of bench.py: the agent's CPU for polling 10 Modbus TCP devices of
100 holding registers each once a second (1,000 readings/s), against the same agent with no
devices, measured alternately in one run.

The devices are 10 unit ids on one pymodbus server (tests/integration/modbus_server.py, run
with Debian's python3), each polled over its own connection. CPU is utime + stime of the
agent process from /proc/<pid>/stat over the measured span, after a warm-up; the server's
own CPU is not counted. The figure is (polling - idle) / span, in percent of one core.

Run as a scenario, or alone:
  python3 tools/bench/modbus_cost.py --build-dir build-release [--seconds 60]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402  pylint: disable=wrong-import-position
from stack import Stack, log  # noqa: E402  pylint: disable=wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVER = os.path.join(ROOT, "tests", "integration", "modbus_server.py")
DEVICES = 10
REGISTERS = 100
TARGET_PCT = 1.0  # of one core
POLICY = """\
rules:
  - id: high
    match: "modbus/#"
    kind: threshold
    above: 1000000
"""


def modbus_config(port):
    lines = ["modbus:"]
    for unit in range(1, DEVICES + 1):
        lines += ["  - name: dev%d" % unit, "    host: 127.0.0.1", "    port: %d" % port,
                  "    unit: %d" % unit, "    interval: 1s", "    timeout: 500ms",
                  "    registers:"]
        lines += ["      - {name: r%d, address: %d}" % (a, a) for a in range(REGISTERS)]
    return lines


def python3():
    return "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


def run_one(suite, seconds, warmup, polling):
    st = Stack(suite, "modbus-%s" % ("poll" if polling else "idle"))
    try:
        st.start_mosquitto()
        extra = []
        if polling:
            port = bl.free_port()
            server = st.own(bl.Proc("modbus-server", [
                python3(), SERVER, "--port", str(port),
                "--holding", "[%s]" % ", ".join(str(100 + i) for i in range(REGISTERS))],
                st.path("modbus-server.log")))
            bl.wait_until(lambda: bl.port_open(port), 30, 0.1, "the Modbus server")
            extra = modbus_config(port)
        st.start_agent(POLICY, ["probe/#"], console=False, extra_config=extra)
        pid = st.agent.pid
        time.sleep(warmup)  # connections made, first polls done, steady state
        m0 = st.metrics()
        c0 = bl.proc_cpu_seconds(pid)
        t0 = time.monotonic()
        time.sleep(seconds)
        c1 = bl.proc_cpu_seconds(pid)
        elapsed = time.monotonic() - t0
        m1 = st.metrics()
        if polling:
            server.check_alive()
    finally:
        st.stop()
    read = (st.m("edge_agent_modbus_registers_read_total", metrics=m1) -
            st.m("edge_agent_modbus_registers_read_total", metrics=m0))
    ok = (st.m("edge_agent_modbus_polls_total", 'result="ok"', metrics=m1) -
          st.m("edge_agent_modbus_polls_total", 'result="ok"', metrics=m0))
    r = {"seconds": elapsed, "cpu_s": c1 - c0, "registers_per_s": read / elapsed,
         "polls_ok_per_s": ok / elapsed}
    log("modbus %s: %r" % ("polling" if polling else "idle", r))
    return r


def run(suite, seconds=None, warmup=None):
    """Idle and polling agents alternate for two rounds (one in smoke mode); the report
    takes each one's lower CPU."""
    seconds = seconds or (3 if suite.smoke else 60)
    warmup = warmup if warmup is not None else (2 if suite.smoke else 5)
    rounds = 1 if suite.smoke else 2
    idle, polling = [], []
    for _ in range(rounds):
        idle.append(run_one(suite, seconds, warmup, False))
        polling.append(run_one(suite, seconds, warmup, True))
    i = min(idle, key=lambda r: r["cpu_s"])
    p = min(polling, key=lambda r: r["cpu_s"])
    pct = 100 * (p["cpu_s"] / p["seconds"] - i["cpu_s"] / i["seconds"])
    return {"idle": i, "polling": p, "devices": DEVICES, "registers": REGISTERS,
            "cpu_pct_of_core": pct,
            "cpu_us_per_register": (1e6 * (p["cpu_s"] - i["cpu_s"] * p["seconds"] / i["seconds"])
                                    / (p["registers_per_s"] * p["seconds"])
                                    if p["registers_per_s"] else None),
            "by_round": {"idle_cpu_s": [r["cpu_s"] for r in idle],
                         "polling_cpu_s": [r["cpu_s"] for r in polling]},
            "met": pct < TARGET_PCT and p["registers_per_s"] >= 0.95 * DEVICES * REGISTERS}


def report_lines(r):
    return ["## Modbus polling (%d devices x %d registers, every second)"
            % (r["devices"], r["registers"]), "",
            "| figure | idle agent | polling agent | target |", "|---|---|---|---|",
            "| CPU-s over %.0f s | %.3f | %.3f | |" % (r["polling"]["seconds"],
                                                      r["idle"]["cpu_s"], r["polling"]["cpu_s"]),
            "| registers read / s | 0 | %.0f | %d |" % (r["polling"]["registers_per_s"],
                                                        r["devices"] * r["registers"]),
            "| polls / s | 0 | %.1f | %d |" % (r["polling"]["polls_ok_per_s"], r["devices"]),
            "| CPU for polling, %% of one core | | %.2f | < %.0f |" % (r["cpu_pct_of_core"],
                                                                      TARGET_PCT),
            "| CPU per register read, us | | %s | |" % (
                "%.1f" % r["cpu_us_per_register"] if r["cpu_us_per_register"] else "n/a"),
            ""]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build-dir", default="build-release")
    p.add_argument("--seconds", type=int, default=60)
    args = p.parse_args()

    class Suite:  # what Stack needs of bench.py's suite
        smoke = False
        work = "/tmp/edge-bench-modbus"

        def __init__(self):
            self.args = argparse.Namespace(mqtt_client=None)

        def bin(self, rel):
            return os.path.join(os.path.abspath(args.build_dir), rel)

    os.makedirs(Suite.work, exist_ok=True)
    r = run(Suite(), seconds=args.seconds)
    print("\n".join(report_lines(r)))


if __name__ == "__main__":
    main()
