"""The `storm` scenario of bench.py: what an alert storm costs the agent.

One agent, 1,000 sensors at 10 readings/s each (10,000 readings/s of plain payloads from
this script, pre-built packets paced every 10 ms), in two phases of the same readings:
`quiet`, under a threshold rule that never fires, then `storm`, under one that every 50th
reading of each sensor crosses and the next clears (2% of readings: 200 firing and 200
resolved events a second). Probe alerts (one new sensor each) published during each phase
give publish -> outbox commit latencies (the agent's `alert firing` log line, as in the
latency scenario). Per phase: agent CPU per million readings, context switches and bytes
written (/proc), and, when `perf stat` can count tracepoints, syscalls and syncs
(fsync + fdatasync) of the agent's threads. CPU per alert event is the storm phase's CPU
beyond the quiet phase's cost of its readings, divided by its events.

With --baseline-agent the same run is made first with that edge-agent binary (the
"before"), then with the build directory's (with --storm-window, its
store.alert_commit_window).
"""

import glob
import os
import subprocess
import time

import benchlib as bl
from stack import Stack, agent_alert_log_times, log

SENSORS = 1000
READINGS_PER_S = 10_000
TICK_S = 0.01
FIRE_EVERY = 50  # a sensor's every 50th reading crosses the threshold: 2% of readings

POLICY = """\
version: storm-1
rules:
  - {id: calm, match: "calm/+/temp", kind: threshold, above: 1000, clear: 45}
  - {id: storm, match: "storm/+/temp", kind: threshold, above: 50, clear: 45}
  - {id: probe, match: "probe/+/temp", kind: threshold, above: 50, clear: 45, severity: critical}
"""


def ctx_switches(pid):
    """Voluntary + involuntary context switches of all threads of `pid`."""
    total = 0
    for path in glob.glob("/proc/%d/task/*/status" % pid):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def write_bytes(pid):
    try:
        with open("/proc/%d/io" % pid) as f:
            for line in f:
                if line.startswith("write_bytes:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


PERF_EVENTS = ("syscalls:sys_enter_fsync", "syscalls:sys_enter_fdatasync", "raw_syscalls:sys_enter")


def start_perf(pid, out_path):
    """`perf stat` counting the agent's syscalls and syncs until stopped; None without perf."""
    try:
        return subprocess.Popen(["perf", "stat", "-x", ",", "-o", out_path, "-e",
                                 ",".join(PERF_EVENTS), "-p", str(pid)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return None


def stop_perf(proc, out_path):
    """{event: count} of a `perf stat` started by start_perf, or {}."""
    if proc is None:
        return {}
    proc.send_signal(2)  # SIGINT: perf prints its counts and exits
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        return {}
    out = {}
    try:
        with open(out_path) as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) > 2 and parts[2] in PERF_EVENTS and parts[0].isdigit():
                    out[parts[2]] = int(parts[0])
    except OSError:
        pass
    return out


def publish_phase(client, prefix, seconds, probe_tag, probes, qos=0, calm_value="20"):
    """Publishes the readings of one phase and `probes` probe alerts spread over it, at
    `qos` (0 or 1); a reading under the threshold is `calm_value` (a string, or a function
    of the sensor's number). Returns {probe topic: publish time (float s)}."""
    calm = calm_value if callable(calm_value) else (lambda _: calm_value)
    per_tick = int(READINGS_PER_S * TICK_S)
    # With QoS 1 each packet has an id of its own; the broker acknowledges each as it reads
    # it, so an id is free again long before the packet is sent again.
    packets = {(i, high): bl.publish_packet("%s/s%d/temp" % (prefix, i),
                                            "99" if high else calm(i), qos, 1 + 2 * i + int(high))
               for i in range(SENSORS) for high in (False, True)}
    ticks = int(seconds / TICK_S)
    probe_every = max(1, ticks // max(1, probes))
    sent = {}
    start = time.monotonic()
    n = 0
    for tick in range(ticks):
        delay = start + tick * TICK_S - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        batch = []
        for _ in range(per_tick):
            sensor, k = n % SENSORS, n // SENSORS
            batch.append(packets[(sensor, (k + sensor) % FIRE_EVERY == 0)])
            n += 1
        client.send_raw(b"".join(batch))
        if tick % probe_every == probe_every // 2 and len(sent) < probes:
            topic = "probe/%s-%d/temp" % (probe_tag, len(sent))
            sent[topic] = time.time()
            client.publish(topic, "99", qos)
    return sent


def measure_phase(st, client, name, seconds, probes, qos=0, prefix=None):
    pid = st.agent.pid
    perf_out = st.path("perf-%s.txt" % name)
    m0 = st.metrics()
    cpu0, cs0, wb0 = bl.proc_cpu_seconds(pid), ctx_switches(pid), write_bytes(pid)
    perf = start_perf(pid, perf_out)
    t0 = time.monotonic()
    sent = publish_phase(client, prefix or ("calm" if name == "quiet" else "storm"), seconds, name,
                         probes, qos)
    st.wait_settled("edge_agent_readings_received_total", 20, quiet=0.5)
    elapsed = time.monotonic() - t0
    counts = stop_perf(perf, perf_out)
    m1 = st.metrics()
    cpu = bl.proc_cpu_seconds(pid) - cpu0

    def delta(metric, label=None):
        return st.m(metric, label, metrics=m1) - st.m(metric, label, metrics=m0)

    readings = delta("edge_agent_readings_received_total")
    events = (delta("edge_agent_alerts_raised_total") +
              delta("edge_agent_alerts_resolved_total"))
    wb1 = write_bytes(pid)
    syncs = (counts["syscalls:sys_enter_fsync"] + counts["syscalls:sys_enter_fdatasync"]
             if "syscalls:sys_enter_fdatasync" in counts else None)
    agent_log = agent_alert_log_times(st.agent.out_path, "probe")
    outbox = [agent_log[tp] - sent[tp] * 1000 for tp in sent if tp in agent_log]
    return {
        "seconds": elapsed, "readings": readings, "alert_events": events, "cpu_s": cpu,
        "cpu_s_per_million": cpu / readings * 1e6 if readings else None,
        "outbox_commits": delta("edge_agent_store_commit_seconds_count", 'kind="outbox"'),
        "uploads": delta("edge_agent_uploads_total"),
        "ctx_switches": ctx_switches(pid) - cs0,
        "write_bytes_per_s": (wb1 - wb0) / elapsed if wb0 is not None and wb1 is not None
        else None,
        "syscalls": counts.get("raw_syscalls:sys_enter"), "syncs": syncs,
        "syncs_per_s": syncs / elapsed if syncs is not None else None,
        "probes": len(sent), "outbox": bl.summary(outbox),
    }


def run_one(suite, name, agent_bin, seconds, probes, store_extra=()):
    st = Stack(suite, "storm-" + name)
    try:
        st.start_mosquitto()
        st.start_console()
        st.start_agent(POLICY, ["calm/#", "storm/#", "probe/#"], agent_bin=agent_bin,
                       store_extra=store_extra)
        st.wait_subscribed()
        client = bl.MqttClient(st.mqtt_port, "bench-storm")
        try:
            quiet = measure_phase(st, client, "quiet", seconds, probes)
            storm = measure_phase(st, client, "storm", seconds, probes)
        finally:
            client.close()
        # Nothing lost: every event the agent counted reaches the console once.
        counted = st.m("edge_agent_alerts_raised_total", 'rule="storm"')
        bl.wait_until(lambda: len([a for a in st.console_alerts("storm")
                                   if a["state"] == "firing"]) >= counted, 60, 0.5,
                      "the storm's alerts at the console")
        at_console = len([a for a in st.console_alerts("storm") if a["state"] == "firing"])
    finally:
        st.stop()
    r = {"quiet": quiet, "storm": storm, "firing_counted": counted, "firing_at_console": at_console}
    q, s = quiet, storm
    if q["cpu_s_per_million"] and s["cpu_s_per_million"] and s["alert_events"]:
        r["cpu_ratio"] = s["cpu_s_per_million"] / q["cpu_s_per_million"]
        extra = s["cpu_s"] - q["cpu_s_per_million"] * s["readings"] / 1e6
        r["cpu_us_per_event"] = extra / s["alert_events"] * 1e6
        for key in ("ctx_switches", "syscalls", "syncs"):
            if s[key] is not None and q[key] is not None:
                r[key + "_per_event"] = (s[key] - q[key] * s["readings"] / max(q["readings"], 1)) \
                    / s["alert_events"]
    log("storm %s: %r" % (name, {k: v for k, v in r.items() if k not in ("quiet", "storm")}))
    return r


def run(suite, targets):
    seconds = 3 if suite.smoke else suite.args.storm_seconds
    probes = 10 if suite.smoke else 100
    out = {}
    if suite.args.baseline_agent:
        out["before"] = run_one(suite, "before", os.path.abspath(suite.args.baseline_agent),
                                seconds, probes)
    window = suite.args.storm_window
    out["after"] = run_one(suite, "after", None, seconds, probes,
                           ["alert_commit_window: %s" % window] if window else ())
    a = out["after"]
    out["met"] = bool(a.get("cpu_ratio") and a["cpu_ratio"] <= targets["storm_cpu_ratio"]
                      and a["storm"]["outbox"]
                      and a["storm"]["outbox"]["p99"] <= targets["outbox_p99_ms"]
                      and (a["storm"]["syncs_per_s"] is None
                           or a["storm"]["syncs_per_s"] <= targets["storm_syncs_per_s"])
                      and a["firing_at_console"] == a["firing_counted"])
    return out


def report_lines(r, targets):
    """The storm section of report.md: before (when measured) and after, side by side."""
    runs = [k for k in ("before", "after") if k in r]

    def row(label, get, fmt="%.2f"):
        cells = []
        for k in runs:
            try:
                v = get(r[k])
            except (KeyError, TypeError):
                v = None
            cells.append(fmt % v if v is not None else "n/a")
        return "| %s | %s |" % (label, " | ".join(cells))

    def p(phase, q):
        return lambda x: x[phase]["outbox"][q]

    out = ["## Alert storm (%d sensors, %d readings/s, 2%% crossing)" % (SENSORS, READINGS_PER_S),
           "", "| figure | %s |" % " | ".join(runs), "|---|%s" % ("---|" * len(runs)),
           row("quiet: agent CPU s per million readings", lambda x: x["quiet"]["cpu_s_per_million"]),
           row("storm: agent CPU s per million readings", lambda x: x["storm"]["cpu_s_per_million"]),
           row("storm / quiet CPU (target <= %.1f)" % targets["storm_cpu_ratio"],
               lambda x: x["cpu_ratio"]),
           row("CPU per alert event, us", lambda x: x["cpu_us_per_event"], "%.0f"),
           row("alert events / s", lambda x: x["storm"]["alert_events"] / x["storm"]["seconds"],
               "%.0f"),
           row("syncs / s in the storm (target <= %d)" % targets["storm_syncs_per_s"],
               lambda x: x["storm"]["syncs_per_s"], "%.0f"),
           row("outbox commits / s in the storm",
               lambda x: x["storm"]["outbox_commits"] / x["storm"]["seconds"], "%.0f"),
           row("uploads / s in the storm",
               lambda x: x["storm"]["uploads"] / x["storm"]["seconds"], "%.0f"),
           row("syncs per alert event", lambda x: x["syncs_per_event"]),
           row("syscalls per alert event", lambda x: x["syscalls_per_event"], "%.1f"),
           row("context switches per alert event", lambda x: x["ctx_switches_per_event"]),
           row("storm: publish -> outbox p50 ms", p("storm", "p50"), "%.1f"),
           row("storm: publish -> outbox p99 ms (target <= %.0f)" % targets["outbox_p99_ms"],
               p("storm", "p99"), "%.1f"),
           row("quiet: publish -> outbox p50 / p99 ms",
               lambda x: "%.1f / %.1f" % (x["quiet"]["outbox"]["p50"],
                                          x["quiet"]["outbox"]["p99"]), "%s"),
           row("storm: bytes written / s", lambda x: x["storm"]["write_bytes_per_s"], "%.0f"),
           row("quiet: bytes written / s", lambda x: x["quiet"]["write_bytes_per_s"], "%.0f"),
           row("firing events counted / at the console",
               lambda x: "%d / %d" % (x["firing_counted"], x["firing_at_console"]), "%s"),
           ""]
    return out
