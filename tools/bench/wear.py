"""The `wear` scenario of bench.py: bytes the agent writes to disk per byte of readings it
stores in the readings ring, because edge nodes run on SD cards and eMMC.

The storm scenario's quiet load (1,000 sensors at 10 readings/s, a rule that never fires,
plain QoS 0 payloads) for a warm-up (the ring's first blocks fill and are written, the
write-ahead log reaches its size), then a measured span: write_bytes of the agent process
from /proc/<pid>/io (what reaches the block device, page-cache writeback included) over
the readings stored in that span, each counted as 20 bytes (4-byte sensor id, 8-byte
timestamp, 8-byte value), and over the ring's own growth (edge_agent_store_content_bytes).

Run as a scenario, or alone to compare store settings:
  python3 tools/bench/wear.py --build-dir build-release [--seconds 60] [--store 'key: value']
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402  pylint: disable=wrong-import-position
import storm  # noqa: E402  pylint: disable=wrong-import-position
from stack import Stack, log  # noqa: E402  pylint: disable=wrong-import-position

READING_BYTES = 20
TARGET = 3.0  # bytes written per byte of readings


def ring_bytes(st, metrics):
    return st.m("edge_agent_store_content_bytes", 'part="readings"', metrics=metrics)


def decimal_value(sensor):
    """A two-place decimal per sensor, as a temperature sensor sends: 20.00 to 29.99."""
    return "%.2f" % (20 + (sensor * 37 % 1000) / 100)


def run_one(suite, seconds, warmup, store_extra=(), agent_bin=None, values="20"):
    st = Stack(suite, "wear")
    try:
        st.start_mosquitto()
        st.start_agent(storm.POLICY, ["calm/#", "probe/#"], console=False, store_extra=store_extra,
                       agent_bin=agent_bin)
        st.wait_subscribed()
        client = bl.MqttClient(st.mqtt_port, "bench-wear")
        try:
            storm.publish_phase(client, "calm", warmup, "warm", 0, calm_value=values)
            pid = st.agent.pid
            m0 = st.metrics()
            wb0 = storm.write_bytes(pid)
            t0 = time.monotonic()
            storm.publish_phase(client, "calm", seconds, "wear", 0, calm_value=values)
            st.wait_settled("edge_agent_readings_received_total", 20, quiet=0.5)
            elapsed = time.monotonic() - t0
            wb1 = storm.write_bytes(pid)
            m1 = st.metrics()
        finally:
            client.close()
    finally:
        st.stop()
    stored = (st.m("edge_agent_readings_stored_total", metrics=m1) -
              st.m("edge_agent_readings_stored_total", metrics=m0))
    written = wb1 - wb0 if wb0 is not None and wb1 is not None else None
    r = {
        "seconds": elapsed, "readings_stored": stored,
        "readings_per_s": stored / elapsed if elapsed else None,
        "write_bytes_per_s": written / elapsed if written is not None else None,
        "reading_bytes_per_s": stored * READING_BYTES / elapsed if elapsed else None,
        "ring_growth_bytes": ring_bytes(st, m1) - ring_bytes(st, m0),
        "store_extra": list(store_extra),
    }
    r["written_per_reading_byte"] = (written / (stored * READING_BYTES)
                                     if written is not None and stored else None)
    r["written_per_ring_byte"] = (written / r["ring_growth_bytes"]
                                  if written is not None and r["ring_growth_bytes"] > 0 else None)
    r["met"] = bool(r["written_per_reading_byte"] and r["written_per_reading_byte"] <= TARGET)
    log("wear %s%s: %r" % ("before" if agent_bin else "after",
                          "" if isinstance(values, str) else ", decimals", r))
    return r


def run(suite, seconds=None, warmup=None, store_extra=()):
    """With the suite's --baseline-agent, that binary first (the before), then the build's,
    alternating for two rounds each; the report shows each one's lower figure."""
    seconds = seconds or (5 if suite.smoke else suite.args.wear_seconds)
    warmup = warmup if warmup is not None else (3 if suite.smoke else 35)
    baseline = getattr(suite.args, "baseline_agent", None)
    rounds = 1 if suite.smoke or not baseline else 2
    runs = {"before": [], "after": []}
    for _ in range(rounds):
        if baseline:
            runs["before"].append(run_one(suite, seconds, warmup, store_extra,
                                          os.path.abspath(baseline)))
        runs["after"].append(run_one(suite, seconds, warmup, store_extra))
    # The same with two-place decimals ("23.71"): a value then takes a byte more.
    runs["after, decimals"] = [run_one(suite, seconds, warmup, store_extra,
                                       values=decimal_value)]
    out = {k: min(v, key=lambda r: r["write_bytes_per_s"] or float("inf"))
           for k, v in runs.items() if v}
    out["by_round"] = {k: [r["written_per_reading_byte"] for r in v] for k, v in runs.items()}
    out["met"] = out["after"]["met"]
    return out


def report_lines(r):
    runs = [k for k in ("before", "after", "after, decimals") if k in r]

    def row(label, key, fmt, target=""):
        cells = [fmt % r[k][key] if r[k].get(key) is not None else "n/a" for k in runs]
        return "| %s | %s | %s |" % (label, " | ".join(cells), target)

    return ["## Flash wear (%d sensors, %d readings/s)" % (storm.SENSORS, storm.READINGS_PER_S),
            "",
            "| figure | %s | target |" % " | ".join(runs), "|---|%s---|" % ("---|" * len(runs)),
            row("readings stored / s", "readings_per_s", "%.0f"),
            row("bytes written / s (/proc/<pid>/io)", "write_bytes_per_s", "%.0f"),
            row("bytes of readings / s (20 each)", "reading_bytes_per_s", "%.0f"),
            row("written per byte of readings", "written_per_reading_byte", "%.2f",
                "<= %.0f" % TARGET),
            row("written per byte the ring grew", "written_per_ring_byte", "%.2f"),
            "", "Written per byte of readings by round: %s." % "; ".join(
                "%s %s" % (k, ", ".join("%.2f" % v for v in r["by_round"][k] if v is not None))
                for k in runs), ""]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build-dir", default="build-release")
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--warmup", type=int, default=35)
    p.add_argument("--baseline-agent", default=None,
                   help="an edge-agent binary to measure first, as the before")
    p.add_argument("--store", action="append", default=[],
                   help="a store.* line of the agent's config, e.g. 'commit_interval: 1s'")
    args = p.parse_args()

    class Suite:  # what Stack needs of bench.py's suite
        smoke = False
        work = "/tmp/edge-bench-wear"

        def __init__(self):
            self.args = argparse.Namespace(mqtt_client=None, baseline_agent=args.baseline_agent)

        @staticmethod
        def bin(rel):
            root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            return os.path.join(root, args.build_dir, rel)

    os.makedirs(Suite.work, exist_ok=True)
    try:
        r = run(Suite(), args.seconds, args.warmup, args.store)
        print("\n".join(report_lines(r)))
    finally:
        bl.stop_all()


if __name__ == "__main__":
    main()
