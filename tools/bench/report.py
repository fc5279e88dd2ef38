"""Writes bench-report/report.md and its PNG charts from the suite's results.

Charts need python3-matplotlib (tools/setup.sh installs it); without it the report is
written with its tables only and says so.
"""

import contextlib
import os

from delivery import report_lines as ack_report
from wear import report_lines as wear_report
from modbus_cost import report_lines as modbus_report
from storm import report_lines as storm_report

MB = 1024 * 1024


def _f(v, fmt="%.1f"):
    return "n/a" if v is None else fmt % v


def _n(v):
    return "n/a" if v is None else "{:,.0f}".format(v)


def _met(ok):
    return "met" if ok else "**not met**"


def charts_available():
    try:
        import matplotlib  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
        return True
    except ImportError:
        return False


def _charts(results, out):
    """PNG files written (relative names); empty if matplotlib is missing."""
    try:
        import matplotlib  # pylint: disable=import-outside-toplevel
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    except ImportError:
        return None
    made = {}

    @contextlib.contextmanager
    def figure(name, title, xlabel, ylabel=None, height=3.5):
        """Axes to plot on; on leaving, labelled and saved as NAME.png."""
        fig, ax = plt.subplots(figsize=(7, height))
        yield ax
        ax.set_xlabel(xlabel)
        if ylabel:
            ax.set_ylabel(ylabel)
        ax.set_title(title)
        fig.tight_layout()
        fig.savefig(os.path.join(out, name + ".png"), dpi=100)
        plt.close(fig)
        made[name] = name + ".png"

    r = results.get("ingest")
    if r:
        s = r["series"]
        with figure("ingest", "1. QoS 0 flood: messages received over time", "s",
                    "messages received") as ax:
            a0 = s["agent"][0] if s["agent"] else 0
            ax.plot(s["sub_t"], s["sub"], label="mosquitto_sub (baseline)")
            ax.plot(s["t"], [c - a0 for c in s["agent"]], label="edge-agent")
            ax.legend()
    r = results.get("cost")
    if r:
        s = r["series"]
        with figure("cost", "2. 10,000 sensors at 1/s: CPU and RSS", "s", "% of one core") as ax:
            t, cpu, mq = s["t"], s["cpu"], s["mq_cpu"]
            pct = [100 * (cpu[i] - cpu[i - 1]) / (t[i] - t[i - 1]) for i in range(1, len(t))]
            mpct = [100 * (mq[i] - mq[i - 1]) / (t[i] - t[i - 1]) for i in range(1, len(t))]
            ax.plot(t[1:], pct, label="edge-agent CPU %")
            ax.plot(t[1:], mpct, label="mosquitto CPU % (baseline)")
            ax2 = ax.twinx()
            ax2.plot(t, [(v or 0) / MB for v in s["rss"]], "k--", label="edge-agent RSS")
            ax2.set_ylabel("RSS MiB")
            ax.legend(loc="upper left")
            ax2.legend(loc="lower right")
    r = results.get("latency")
    if r:
        with figure("latency", "3. Latency CDF (broker hop = baseline)", "ms after publish",
                    "fraction of alerts") as ax:
            for rate, res in r.items():
                if not isinstance(res, dict) or "raw" not in res:
                    continue
                for hop in ("broker", "outbox", "console"):
                    vals = sorted(res["raw"][hop])
                    if vals:
                        ax.plot(vals, [(i + 1) / len(vals) for i in range(len(vals))],
                                label="%s/s %s" % (rate, hop))
            ax.set_xscale("symlog", linthresh=1)
            ax.legend(fontsize=7)
    r = results.get("drain")
    if r:
        s = r["series"]
        with figure("drain", "4. Drain after an outage", "s after the console was started",
                    "rows") as ax:
            ax.plot(s["t"], s["pending"], label="outbox rows pending")
            ax.plot(s["t"], s["acked"], label="rows acknowledged")
            ax.legend()
    r = results.get("bandwidth")
    if r:
        with figure("bandwidth", "5. Bytes in and out, standard sensor-sim scenario", "KiB",
                    height=3) as ax:
            names = ["ingested", "forward all (gzip)", "edge-agent uplink"]
            vals = [r["ingest_bytes"], r["forward_gzip_bytes"], r["uplink_bytes"]]
            ax.barh(names, [v / 1024 for v in vals])
    return made


def write(results, out, targets):
    charts = _charts(results, out)
    m = results["machine"]
    L = []
    add = L.append

    def heading(title):
        add(title)
        add("")

    def table(*columns):
        add("| %s |" % " | ".join(columns))
        add("|" + "---|" * len(columns))

    add("# edge-agent benchmark report%s" % (" (smoke run: figures are not meaningful)"
                                             if results.get("smoke") else ""))
    add("")
    add("Run %s at commit %s, %.0f s. Machine: %s, **%d cores**, %.1f GiB, Linux %s." % (
        results["started"], results["commit"], results["elapsed_s"], m["cpu"], m["cores"],
        m["mem_gib"], m["kernel"]))
    add("Every figure is next to a baseline measured in the same run. CPU figures are CPU "
        "time from /proc (user + system, all threads), not wall time.")
    add("")
    table("scenario", "seconds", "load average before", "after")
    for name, ld in results.get("load", {}).items():
        add("| %s | %.0f | %s | %s |" % (name, ld["seconds"], " ".join("%.2f" % x for x in ld["before"]),
                                        " ".join("%.2f" % x for x in ld["after"])))
    add("")
    if charts is None:
        add("(charts skipped: python3-matplotlib is not installed)")
        add("")
    charts = charts or {}
    for name, why in results.get("failures", {}).items():
        add("**%s FAILED**: `%s`" % (name, why))
        add("")

    def chart(key):
        if key in charts:
            add("![%s](%s)" % (key, charts[key]))
            add("")

    r = results.get("ingest")
    if r:
        heading("## 1. Max ingest (QoS 0 flood, 1,000 sensors x 5 rules, readings ring on)")
        table("figure", "edge-agent", "baseline: mosquitto_sub", "target")
        add("| messages/s received (while the flood lasted) | %s | %s | agent >= %.0f%% of baseline: "
            "%.1f%% %s |" % (_n(r["agent_rate"]), _n(r["sub_rate"]), 100 * targets["ingest_ratio"],
                            100 * r["ratio"], _met(r["ratio"] >= targets["ingest_ratio"])))
        add("| messages received of %s published (sensor-sim at %s/s) | %s | %s | |" % (
            _n(r["published"]), _n(r["publisher_rate"]), _n(r["agent_received"]),
            _n(r["sub_received"])))
        add("| dropped: ingest queue full / rejected by decoder | %s / %s | | |" % (
            _n(r["agent_queue_drops"]), _n(r["agent_rejected"])))
        add("| unaccounted (published - received - queue drops) | %s | %s | 0: %s |" % (
            _n(r["unaccounted"]), _n(r["published"] - r["sub_received"]),
            _met(r["unaccounted"] == 0)))
        add("| CPU seconds over the flood | %.2f | %s (mosquitto broker %.2f) | |" % (
            r["agent_cpu_s"], _f(r["sub_cpu_s"], "%.2f"), r["mosquitto_cpu_s"]))
        add("| readings stored in the ring | %s | | |" % _n(r["agent_readings_stored"]))
        add("| peak RSS | %.1f MiB | | |" % (r["agent_peak_rss"] / MB))
        add("")
        chart("ingest")
    r = results.get("cost")
    if r:
        heading("## 2. Cost per reading (10,000 sensors at 1/s, 5 rules each, %d s)"
                % r["duration_s"])
        table("figure", "edge-agent", "baseline: mosquitto (same messages)", "target")
        add("| readings processed | %s (sensor-sim published %s at %s/s) | | |" % (
            _n(r["readings"]), _n(r["published"]), _n(r["publisher_rate"])))
        add("| CPU seconds per million readings | %s | %s (edge-console %s) | <= %.0f: %s |" % (
            _f(r["cpu_s_per_million"], "%.2f"), _f(r["mosquitto_cpu_s_per_million"], "%.2f"),
            _f(r["console_cpu_s_per_million"], "%.2f"), targets["cpu_s_per_million"],
            _met(r["cpu_s_per_million"] is not None
                 and r["cpu_s_per_million"] <= targets["cpu_s_per_million"])))
        add("| RSS under load (max / end) | %.1f / %.1f MiB | mosquitto %.1f MiB | <= %.0f MiB: %s |" % (
            r["load_rss_max"] / MB, (r["load_rss_end"] or 0) / MB, r["mosquitto_rss_max"] / MB,
            targets["rss_load_mb"], _met(r["load_rss_max"] <= targets["rss_load_mb"] * MB)))
        add("| RSS idle (policy loaded, no readings yet) | %.1f MiB | | <= %.0f MiB: %s |" % (
            r["idle_rss"] / MB, targets["rss_idle_mb"], _met(r["idle_rss"] <= targets["rss_idle_mb"] * MB)))
        add("")
        if r["duration_s"] < 600:
            add("The rolling 5-minute zscore and 10-minute flatline windows are not full after "
                "%d s; `--cost-seconds 660` runs until they are (docs/performance.md has the "
                "steady state)." % r["duration_s"])
            add("")
        chart("cost")
    r = results.get("latency")
    if r:
        heading("## 3. Latency: publish -> outbox commit -> console")
        add("Probe alerts on fresh sensors on top of sensor-sim load. Broker hop (publish -> "
            "arrival at a subscriber on the same broker) is the baseline. Outbox: the agent's "
            "`alert firing` log line, written right after the outbox commit (µs timestamp) "
            "minus the publish time taken by the probe client (same clock). "
            "Console: `received_ms` of the alert at the console minus its `ts_ms`.")
        add("")
        table("load", "hop", "n", "p50 ms", "p99 ms", "max ms", "target p99")
        for rate, res in r.items():
            if not isinstance(res, dict) or "raw" not in res:
                continue
            for hop, tgt in (("broker", None), ("outbox", targets["outbox_p99_ms"]),
                             ("console", targets["console_p99_ms"])):
                s = res[hop]
                if not s:
                    add("| %s/s (measured %s/s) | %s | 0 | | | | |" % (rate, _n(res["load_rate"]), hop))
                    continue
                t = "" if tgt is None else "< %.0f: %s" % (tgt, _met(s["p99"] < tgt))
                add("| %s/s (measured %s/s, agent %.0f%% CPU) | %s | %d of %d | %.2f | %.2f | %.2f | %s |" % (
                    rate, _n(res["load_rate"]), 100 * res["agent_cpu_share"], hop, s["n"],
                    res["sent"], s["p50"], s["p99"], s["max"], t))
        add("")
        for rate, res in r.items():
            c = res.get("outbox_commits") if isinstance(res, dict) else None
            if c:
                add("Outbox commits while probing at %s/s (`edge_agent_store_commit_seconds`): "
                    "%s, %.1f%% within 2 ms, %.1f%% within 5 ms, the slowest at most %g ms." % (
                        rate, _n(c["n"]), 100 * c["within_2ms"], 100 * c["within_5ms"],
                        c["slowest_le_ms"]))
                add("")
        chart("latency")
    r = results.get("drain")
    if r:
        heading("## 4. Outage and drain")
        table("figure", "edge-agent -> console", "baseline: plain client -> console", "target")
        add("| backlog (outbox rows: alert events + rollups) | %s (%s events, %s rollups) | | |" % (
            _n(r["backlog"]), _n(r["events"]), _n(r["rollups"])))
        add("| drain rate, rows/s | %s (%.1f s; first ack %.1f s after the console was "
            "started) | %s (gzip batches of 500 alerts, one connection) | >= %s: %s |" % (
                _n(r["drain_rate"]), r["drain_s"], r["first_ack_after_s"], _n(r["direct_rate"]),
                _n(targets["drain_rate"]), _met(r["drain_rate"] >= targets["drain_rate"])))
        p = r["probes"]
        for hop in ("broker", "outbox", "console"):
            s = p[hop]
            if s:
                add("| new alert during the drain, %s: p50 / p99 / max ms | %.0f / %.0f / %.0f (%d of %d) | | |"
                    % (hop, s["p50"], s["p99"], s["max"], s["n"], p["sent"]))
        add("")
        chart("drain")
    r = results.get("bandwidth")
    if r:
        heading("## 5. Bandwidth (standard sensor-sim scenario, %d s)" % r["duration_s"])
        heading("50 sensors at 1/s, mixed formats, anomalies injected, seed 1, "
                "tools/demo/policy.yaml.")
        table("figure", "edge-agent", "baseline: forward every payload, gzip", "target")
        add("| bytes ingested (MQTT payloads) | %s | | |" % _n(r["ingest_bytes"]))
        add("| bytes uplinked | %s | %s | |" % (_n(r["uplink_bytes"]), _n(r["forward_gzip_bytes"])))
        add("| uplinked / ingested | %s | %s | <= %.0f%%: %s |" % (
            _f(100 * r["ratio"] if r["ratio"] is not None else None, "%.1f%%"),
            _f(100 * r["forward_ratio"] if r["forward_ratio"] is not None else None, "%.1f%%"),
            100 * targets["bandwidth_ratio"], _met(r["met"])))
        add("| readings / alert events (firing, resolved) / rollups | %s / %s, %s / %s | | |" % (
            _n(r["readings"]), _n(r["alerts_raised"]), _n(r["alerts_resolved"]), _n(r["rollups"])))
        add("| uploads: batches / status heartbeats | %s / %s | | |" % (
            _n(r["uploads"]), _n(r["status_reports"])))
        add("")
        chart("bandwidth")
    if results.get("storm"):
        L.extend(storm_report(results["storm"], targets))
    if results.get("ack"):
        L.extend(ack_report(results["ack"]))
    if results.get("wear"):
        L.extend(wear_report(results["wear"]))
    if results.get("modbus"):
        L.extend(modbus_report(results["modbus"]))
    r = results.get("micro")
    if r:
        heading("## Micro-benchmarks (Google Benchmark)")
        table("benchmark", "CPU time", "items/s (CPU)", "bytes/s", "notes")
        for binary, rows in r.items():
            if isinstance(rows, dict):
                add("| %s | not built | | | |" % binary)
                continue
            for b in rows:
                notes = []
                if b.get("bytes_per_sensor_rule"):
                    notes.append("%.0f B per sensor-rule (%.0f without windows)" % (
                        b["bytes_per_sensor_rule"], b["bytes_per_sensor_rule_no_windows"]))
                if b.get("readings_per_msg"):
                    notes.append("%.0f readings/msg" % b["readings_per_msg"])
                if b.get("error_message"):
                    notes.append("error: " + b["error_message"])
                add("| %s | %.3g %s | %s | %s | %s |" % (
                    b["name"], b["cpu_time"], b["time_unit"], _n(b.get("items_per_second")),
                    _f((b.get("bytes_per_second") or 0) / MB, "%.0f MiB/s")
                    if b.get("bytes_per_second") else "", "; ".join(notes)))
        add("")
    path = os.path.join(out, "report.md")
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")
    return path
