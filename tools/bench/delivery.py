"""The `ack` scenario of bench.py: what acknowledging after commit costs.

The quiet load of the storm scenario (1,000 sensors, 10,000 readings/s, a threshold rule
that never fires, probe alerts for publish -> outbox latency) published at QoS 1, run
twice in one sitting: first with `mqtt.ack: receipt` (the before: the client acknowledges a
message as it arrives), then with `mqtt.ack: commit` (acknowledged once its readings are
committed), three rounds alternating. Per run: agent CPU per million readings, publish -> outbox p50/p99, bytes
written per second (/proc), and the acknowledgement counters (stalls, duplicates). The
report shows each mode's median run by CPU (and every round's CPU); the ratios are commit
over receipt.
"""

import benchlib as bl
from stack import Stack, log
import storm

MODES = ("receipt", "commit")
ROUNDS = 3


def run_one(suite, mode, seconds, probes):
    st = Stack(suite, "ack-" + mode)
    try:
        st.start_mosquitto()
        st.start_console()
        st.start_agent(storm.POLICY, ["calm/#", "probe/#"], mqtt_extra=["ack: " + mode])
        st.wait_subscribed()
        client = bl.MqttClient(st.mqtt_port, "bench-ack-" + mode)
        client.start_reader()  # the broker's PUBACKs
        try:
            r = storm.measure_phase(st, client, "quiet", seconds, probes, qos=1, prefix="calm")
        finally:
            client.close()
        m = st.metrics()
        r["ack_stalls"] = st.m("edge_agent_mqtt_ack_stalls_total", metrics=m)
        r["duplicates"] = st.m("edge_agent_mqtt_duplicates_total", metrics=m)
    finally:
        st.stop()
    log("ack %s: %r" % (mode, {k: r[k] for k in ("cpu_s_per_million", "outbox",
                                                  "write_bytes_per_s", "ack_stalls")}))
    return r


def median_run(runs):
    """The run whose CPU per million readings is the median of `runs` (the lower middle)."""
    ranked = sorted(runs, key=lambda r: r["cpu_s_per_million"] or 0)
    return ranked[(len(ranked) - 1) // 2]


def run(suite):
    seconds = 3 if suite.smoke else suite.args.storm_seconds
    probes = 10 if suite.smoke else 100
    rounds = 1 if suite.smoke else ROUNDS
    # Alternating, so that a drift of the machine over the sitting falls on both modes.
    runs = {mode: [] for mode in MODES}
    for _ in range(rounds):
        for mode in MODES:
            runs[mode].append(run_one(suite, mode, seconds, probes))
    out = {mode: median_run(runs[mode]) for mode in MODES}
    out["rounds"] = rounds
    out["cpu_by_round"] = {mode: [r["cpu_s_per_million"] for r in runs[mode]] for mode in MODES}
    before, after = out["receipt"], out["commit"]
    if before["cpu_s_per_million"] and after["cpu_s_per_million"]:
        out["cpu_ratio"] = after["cpu_s_per_million"] / before["cpu_s_per_million"]
    if before["outbox"] and after["outbox"]:
        out["p50_ratio"] = after["outbox"]["p50"] / before["outbox"]["p50"]
    if before["write_bytes_per_s"] and after["write_bytes_per_s"]:
        out["write_ratio"] = after["write_bytes_per_s"] / before["write_bytes_per_s"]
    out["met"] = bool(before["outbox"] and after["outbox"] and after["cpu_s_per_million"])
    return out


def report_lines(r):
    """The ack section of report.md: receipt and commit side by side, and their ratio."""

    def row(label, get, fmt="%.2f", ratio=None):
        cells = []
        for mode in MODES:
            try:
                v = get(r[mode])
            except (KeyError, TypeError):
                v = None
            cells.append(fmt % v if v is not None else "n/a")
        cells.append("%.2f" % r[ratio] if ratio and r.get(ratio) is not None else "")
        return "| %s | %s |" % (label, " | ".join(cells))

    return ["## Acknowledge after commit (%d sensors, %d readings/s at QoS 1)"
            % (storm.SENSORS, storm.READINGS_PER_S), "",
            "| figure | receipt | commit | commit / receipt |", "|---|---|---|---|",
            row("agent CPU s per million readings", lambda x: x["cpu_s_per_million"],
                ratio="cpu_ratio"),
            row("publish -> outbox p50 ms", lambda x: x["outbox"]["p50"], "%.1f",
                ratio="p50_ratio"),
            row("publish -> outbox p99 ms", lambda x: x["outbox"]["p99"], "%.1f"),
            row("bytes written / s", lambda x: x["write_bytes_per_s"], "%.0f",
                ratio="write_ratio"),
            row("early commits (ack stalls)", lambda x: x["ack_stalls"], "%.0f"),
            row("resends recognised", lambda x: x["duplicates"], "%.0f"),
            "", "CPU s per million readings by round: receipt %s, commit %s." % tuple(
                ", ".join("%.2f" % v for v in r["cpu_by_round"][m] if v is not None)
                for m in MODES), ""]
