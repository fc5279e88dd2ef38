#!/usr/bin/env python3
"""edge-agent benchmark suite: every scenario against real processes, one report.

Runs mosquitto, edge-agent, edge-console, sensor-sim, mosquitto_sub and the Google
Benchmark micro-benchmarks from a Release build directory, on 127.0.0.1 and ports chosen
at run time, and writes OUT/report.md, OUT/results.json and PNG charts. Each figure is
printed next to a baseline measured in the same run. tools/bench/run.sh builds first and
then calls this script; see docs/performance.md.

  tools/bench/bench.py --build-dir build-release --out bench-report [--smoke]
      [--only ingest,cost,latency,drain,bandwidth,micro,storm,ack,wear,modbus] [--baseline-agent PATH]

Exit status: 0 when every selected scenario ran and produced its figures (targets may be
missed: the report says which), 1 when a scenario failed, 130 on SIGINT/SIGTERM.
"""

import argparse
import datetime
import gzip
import http.client
import json
import os
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402  pylint: disable=wrong-import-position
import delivery as ack_scenario  # noqa: E402  pylint: disable=wrong-import-position
import wear as wear_scenario  # noqa: E402  pylint: disable=wrong-import-position
import modbus_cost as modbus_scenario  # noqa: E402  pylint: disable=wrong-import-position
import storm as storm_scenario  # noqa: E402  pylint: disable=wrong-import-position
from stack import (Stack, active_rate, agent_alert_log_times, commit_buckets,  # noqa: E402
                   commit_summary, log, now_ms, sim_summary)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENARIOS = ("ingest", "cost", "latency", "drain", "bandwidth", "micro", "storm", "ack", "wear",
             "modbus")

# Five rules on every simulated sensor, a different kind each, windows up to 10 minutes
# (rolling zscore over 5 minutes), plus the probe rule the latency scenarios fire on.
BENCH_POLICY = """\
version: bench-1
filters:
  - match: "bench/#"
    valid_range: {min: -100, max: 1000}
rules:
  - {id: hot, match: "bench/+/+/temperature", kind: threshold, above: 90, clear: 85, for: 30s}
  - {id: climb, match: "bench/#", kind: rate, window: 1m, max_rate: 0.5}
  - {id: outlier, match: "bench/+/+/temperature", kind: zscore, window: 5m, z: 6, min_samples: 30}
  - {id: stuck, match: "bench/#", kind: flatline, window: 10m, epsilon: 0.001}
  - {id: silent, match: "bench/#", kind: stale, after: 5m}
  - {id: probe, match: "probe/+/temp", kind: threshold, above: 50, clear: 45, severity: critical}
"""

# Every reading of a drain sensor crosses the threshold one way or the other: one alert
# event (firing or resolved) per reading.
DRAIN_POLICY = """\
version: drain-1
rules:
  - {id: flip, match: "drain/+/temp", kind: threshold, above: 50, clear: 45}
  - {id: probe, match: "probe/+/temp", kind: threshold, above: 50, clear: 45, severity: critical}
"""

TARGETS = {
    "ingest_ratio": 0.95,
    "cpu_s_per_million": 5.0,
    "rss_load_mb": 64.0,
    "rss_idle_mb": 16.0,
    "outbox_p99_ms": 5.0,
    "console_p99_ms": 100.0,
    "drain_rate": 20000.0,
    "bandwidth_ratio": 0.05,
    "storm_cpu_ratio": 1.5,
    "storm_syncs_per_s": 100,
}


class Suite:
    def __init__(self, args):
        self.args = args
        self.smoke = args.smoke
        self.build = os.path.abspath(args.build_dir)
        self.out = os.path.abspath(args.out)
        self.work = os.path.join(self.out, "work")
        self.results = {}
        self.failures = {}
        os.makedirs(self.work, exist_ok=True)

    def bin(self, rel):
        path = os.path.join(self.build, rel)
        if not os.access(path, os.X_OK):
            raise RuntimeError("%s is missing: build it first (tools/bench/run.sh)" % path)
        return path

    # 1 ------------------------------------------------------------------------------
    def ingest(self):
        """QoS 0 flood; the agent (1,000 sensors x 5 rules, readings ring on) against
        mosquitto_sub receiving the same flood."""
        count = 30_000 if self.smoke else 400_000
        st = Stack(self, "ingest")
        try:
            st.start_mosquitto()
            st.start_agent(BENCH_POLICY, ["bench/#", "probe/#"], console=False)
            st.wait_subscribed()
            sub_out = st.path("mosquitto_sub.out")
            sub = st.own(bl.Proc("mosquitto_sub", ["mosquitto_sub", "-h", "127.0.0.1", "-p",
                                                   st.mqtt_port, "-q", "0", "-t", "bench/#"],
                                 sub_out))
            time.sleep(0.5)
            m0 = st.metrics()
            base = {k: st.m(k, metrics=m0) for k in ("edge_agent_messages_received_total",
                                                     "edge_agent_messages_dropped_total",
                                                     "edge_agent_readings_rejected_total")}
            sampler = bl.Sampler({"agent": st.agent.pid, "mosquitto": st.mosquitto.pid,
                                  "sub": sub.pid}, 0.1, st.metrics_url(), {"sub": sub_out})
            sampler.start()
            sim = st.run_sim("--sensors", 1000, "--rate", 1000, "--count", count, "--duration",
                             "120s", "--format", "json", "--anomalies", 0, "--prefix", "bench",
                             timeout=150)
            published = sim["messages"]
            # Both receivers drain what the broker holds for them.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                got = st.m("edge_agent_messages_received_total") - base[
                    "edge_agent_messages_received_total"]
                dropped = st.m("edge_agent_messages_dropped_total") - base[
                    "edge_agent_messages_dropped_total"]
                if got + dropped >= published:
                    break
                time.sleep(0.2)
            time.sleep(1.0)
            samples = sampler.stop()
            m1 = st.metrics()
            with open(sub_out, "rb") as f:
                sub_lines = f.read().count(b"\n")
            sub_bytes = os.path.getsize(sub_out)
        finally:
            st.stop()
        ts = [s["t"] - samples[0]["t"] for s in samples if "m" in s]
        agent_counts = [bl.metric_sum(s["m"], "edge_agent_messages_received_total") for s in samples
                        if "m" in s]
        agent_rate, agent_span = active_rate(ts, agent_counts)
        sub_ts = [s["t"] - samples[0]["t"] for s in samples]
        sub_b = [s["sub.bytes"] for s in samples]
        sub_rate_b, sub_span = active_rate(sub_ts, sub_b)
        sub_rate = sub_rate_b * (sub_lines / sub_bytes) if sub_bytes else 0.0
        received = st.m("edge_agent_messages_received_total", metrics=m1) - base[
            "edge_agent_messages_received_total"]
        q_drops = st.m("edge_agent_messages_dropped_total", metrics=m1) - base[
            "edge_agent_messages_dropped_total"]
        rejected = st.m("edge_agent_readings_rejected_total", metrics=m1) - base[
            "edge_agent_readings_rejected_total"]
        cpu = samples[-1]["agent.cpu"] - samples[0]["agent.cpu"]
        mq_cpu = samples[-1]["mosquitto.cpu"] - samples[0]["mosquitto.cpu"]
        sub_cpu = samples[-1]["sub.cpu"] - samples[0]["sub.cpu"] if samples[-1]["sub.cpu"] else None
        r = {
            "published": published, "publisher_rate": sim["rate_achieved"],
            "agent_received": received, "agent_queue_drops": q_drops, "agent_rejected": rejected,
            "unaccounted": published - received - q_drops, "sub_received": sub_lines,
            "agent_rate": agent_rate, "agent_span_s": agent_span, "sub_rate": sub_rate,
            "sub_span_s": sub_span, "ratio": agent_rate / sub_rate if sub_rate else 0.0,
            "agent_cpu_s": cpu, "mosquitto_cpu_s": mq_cpu, "sub_cpu_s": sub_cpu,
            "agent_readings_stored": st.m("edge_agent_readings_stored_total", metrics=m1),
            "agent_peak_rss": max(s["agent.rss"] or 0 for s in samples),
            "series": {"t": ts, "agent": agent_counts, "sub_t": sub_ts,
                       "sub": [b * (sub_lines / sub_bytes) if sub_bytes else 0 for b in sub_b]},
        }
        r["met"] = r["ratio"] >= TARGETS["ingest_ratio"] and r["unaccounted"] == 0
        return r

    # 2 ------------------------------------------------------------------------------
    def cost(self):
        """10,000 sensors at 1 reading/s, 5 rules each; CPU seconds per million readings
        and RSS, against the broker's own CPU for the same messages."""
        duration = 10 if self.smoke else self.args.cost_seconds
        st = Stack(self, "cost")
        try:
            st.start_mosquitto()
            st.start_console()
            st.start_agent(BENCH_POLICY, ["bench/#", "probe/#"])
            st.wait_subscribed()
            time.sleep(2.0)
            idle_rss, _ = bl.proc_rss(st.agent.pid)
            r0 = st.m("edge_agent_readings_received_total")
            sampler = bl.Sampler({"agent": st.agent.pid, "mosquitto": st.mosquitto.pid,
                                  "console": st.console.pid}, 1.0, st.metrics_url())
            sampler.start()
            sim = st.own(st.sim("--sensors", 10000, "--rate", 1, "--duration", "%ds" % duration,
                                "--format", "json", "--anomalies", 0, "--prefix", "bench"))
            sim.wait(duration + 60)
            simsum = sim_summary(sim)
            st.wait_settled("edge_agent_readings_received_total", 20)
            samples = sampler.stop()
            m1 = st.metrics()
            _, hwm = bl.proc_rss(st.agent.pid)
        finally:
            st.stop()
        readings = st.m("edge_agent_readings_received_total", metrics=m1) - r0

        def per_million(name):
            vals = [s[name + ".cpu"] for s in samples if s.get(name + ".cpu") is not None]
            return (vals[-1] - vals[0]) / readings * 1e6 if readings and vals else None

        t0 = samples[0]["t"]
        r = {
            "readings": readings, "published": simsum["messages"],
            "publisher_rate": simsum["rate_achieved"], "duration_s": duration,
            "cpu_s_per_million": per_million("agent"),
            "mosquitto_cpu_s_per_million": per_million("mosquitto"),
            "console_cpu_s_per_million": per_million("console"),
            "idle_rss": idle_rss, "load_rss_max": max(s["agent.rss"] or 0 for s in samples),
            "load_rss_end": samples[-1]["agent.rss"], "hwm": hwm,
            "mosquitto_rss_max": max(s["mosquitto.rss"] or 0 for s in samples),
            "series": {"t": [s["t"] - t0 for s in samples],
                       "cpu": [s["agent.cpu"] for s in samples],
                       "mq_cpu": [s["mosquitto.cpu"] for s in samples],
                       "rss": [s["agent.rss"] for s in samples]},
        }
        mb = 1024 * 1024
        r["met"] = (r["cpu_s_per_million"] is not None
                    and r["cpu_s_per_million"] <= TARGETS["cpu_s_per_million"]
                    and r["load_rss_max"] <= TARGETS["rss_load_mb"] * mb
                    and r["idle_rss"] <= TARGETS["rss_idle_mb"] * mb)
        return r

    # 3 ------------------------------------------------------------------------------
    def probe_phase(self, st, client, tag, count, interval):
        """Publishes `count` probe alerts (one new sensor each) `interval` s apart;
        returns {topic: publish time (float s)}."""
        sent = {}
        for i in range(count):
            topic = "probe/%s-%d/temp" % (tag, i)
            t = time.time()
            client.publish(topic, json.dumps({"value": 99, "ts": int(t * 1000)}))
            sent[topic] = t
            time.sleep(interval)
        return sent

    def probe_latencies(self, st, client, sent, console=True):
        agent_log = agent_alert_log_times(st.agent.out_path, "probe")
        broker = {}
        for arrival, topic, _ in list(client.received):
            if topic in sent:
                broker.setdefault(topic, (arrival - sent[topic]) * 1000)
        outbox = {tp: agent_log[tp] - sent[tp] * 1000 for tp in sent if tp in agent_log}
        cons = {}
        if console:
            since = int(min(sent.values()) * 1000) - 1 if sent else 0
            for a in st.console_alerts("probe", since):
                if a["sensor"] in sent and a["state"] == "firing":
                    cons[a["sensor"]] = a["received_ms"] - a["ts_ms"]
        return {"sent": len(sent), "broker": bl.summary(list(broker.values())),
                "outbox": bl.summary(list(outbox.values())),
                "console": bl.summary(list(cons.values())) if console else None,
                "raw": {"broker": list(broker.values()), "outbox": list(outbox.values()),
                        "console": list(cons.values())}}

    def latency(self):
        """Publish -> alert committed to the outbox -> alert stored at the console, at
        1k and 10k readings/s of background load; the broker hop as the baseline."""
        duration = 8 if self.smoke else 40
        probes = 15 if self.smoke else 400
        st = Stack(self, "latency")
        out = {}
        try:
            st.start_mosquitto()
            st.start_console()
            st.start_agent(BENCH_POLICY, ["bench/#", "probe/#"])
            st.wait_subscribed()
            client = bl.MqttClient(st.mqtt_port, "bench-probe")
            client.subscribe("probe/#")
            try:
                for sensors in (1000, 10000):
                    sim = st.own(st.sim("--sensors", sensors, "--rate", 1, "--duration",
                                        "%ds" % duration, "--format", "json", "--anomalies", 0,
                                        "--prefix", "bench", name="sim-%d" % sensors))
                    time.sleep(3.0)  # the load is established
                    cpu0 = bl.proc_cpu_seconds(st.agent.pid)
                    commits0 = commit_buckets(st.metrics())
                    t0 = time.monotonic()
                    # Spread over the rest of the run but never past it.
                    interval = max(0.02, min(0.25, (duration - 5.0) / probes))
                    sent = self.probe_phase(st, client, "r%d" % sensors, probes, interval)
                    busy = (bl.proc_cpu_seconds(st.agent.pid) - cpu0) / (time.monotonic() - t0)
                    commits = commit_summary(commits0, commit_buckets(st.metrics()))
                    sim.wait(duration + 60)
                    simsum = sim_summary(sim)
                    time.sleep(2.0)  # the last uploads
                    res = self.probe_latencies(st, client, sent)
                    res["load_rate"] = simsum["rate_achieved"]
                    res["agent_cpu_share"] = busy
                    res["outbox_commits"] = commits
                    out[str(sensors)] = res
            finally:
                client.close()
        finally:
            st.stop()
        ok = True
        for res in out.values():
            if not res["outbox"] or not res["console"]:
                raise RuntimeError("no probe alert observed: %r" % {k: v for k, v in res.items()
                                                                      if k != "raw"})
            ok = ok and res["outbox"]["p99"] < TARGETS["outbox_p99_ms"] and \
                res["console"]["p99"] < TARGETS["console_p99_ms"]
        out["met"] = ok
        return out

    # 4 ------------------------------------------------------------------------------
    def direct_console_rate(self, st, items_total, batch=500):
        """Baseline: alerts/s the console stores when a plain client posts gzip batches
        of `batch` alert items back to back on one keep-alive connection."""
        bodies = []
        seq = 0
        for _ in range(max(1, items_total // batch)):
            items = []
            for _ in range(batch):
                seq += 1
                ts = 1_764_000_000_000 + seq
                items.append({"id": "bench-direct:00000000000000aa:%d" % seq, "kind": "alert",
                              "created_ms": ts, "payload": {
                                  "node": "bench-direct", "rule": "flip",
                                  "sensor": "drain/s%d/temp" % (seq % 1000), "severity": "warning",
                                  "state": "firing", "value": 99.0, "ts_ms": ts, "started_ms": ts,
                                  "episode": "flip|drain/s%d/temp|%d" % (seq % 1000, ts),
                                  "context": [[ts - 1000 * k, 20.0 + k] for k in range(10)]}})
            body = json.dumps({"node": "bench-direct", "sent_ms": now_ms(), "items": items})
            bodies.append(gzip.compress(body.encode(), 6))
        conn = http.client.HTTPConnection("127.0.0.1", st.console_port, timeout=30)
        hdrs = {"Authorization": "Bearer " + st.tokens["bench-direct"],
                "Content-Type": "application/json", "Content-Encoding": "gzip"}
        t0 = time.monotonic()
        for body in bodies:
            conn.request("POST", "/v1/batches", body=body, headers=hdrs)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError("direct batch: %d" % resp.status)
        elapsed = time.monotonic() - t0
        conn.close()
        return len(bodies) * batch / elapsed

    def drain(self):
        """Console down while a backlog of alerts and rollups builds, then up: drain rate
        and the latency of new alerts raised during the drain."""
        events = 6_000 if self.smoke else 100_000
        sensors = 1000
        st = Stack(self, "drain")
        try:
            st.start_mosquitto()
            st.start_console()
            # Rollups every second: the backlog holds rollups next to the alerts.
            st.start_agent(DRAIN_POLICY, ["drain/#", "probe/#"], store_extra=["rollup_interval: 1s"],
                           # Retries at most 2 s apart: the drain starts soon after the
                           # console is back (the default backoff_max is 30 s).
                           console_extra=["backoff_max: 2s"])
            st.wait_subscribed()
            direct = self.direct_console_rate(st, 10_000 if self.smoke else 50_000)
            st.stop_console()
            log("drain: console stopped; publishing %d flipping readings" % events)
            pub = bl.MqttClient(st.mqtt_port, "bench-drain")
            try:
                chunk = 1000
                t0 = time.monotonic()
                for start in range(0, events, chunk):
                    data = b"".join(
                        bl.publish_packet("drain/s%d/temp" % (j % sensors),
                                          b"99" if (j // sensors) % 2 == 0 else b"0")
                        for j in range(start, min(events, start + chunk)))
                    pub.send_raw(data)
                    # Paced at 20k/s: well inside the ingest queue.
                    ahead = (start + chunk) / 20_000.0 - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
            finally:
                pub.close()

            def committed():
                m = st.metrics()
                return (st.m("edge_agent_alerts_raised_total", metrics=m)
                        + st.m("edge_agent_alerts_resolved_total", metrics=m))

            bl.wait_until(lambda: committed() >= events - 1, 60, 0.2, "backlog committed")
            time.sleep(1.5)
            m0 = st.metrics()
            backlog = st.m("edge_agent_outbox_pending", metrics=m0)
            items0 = st.m("edge_agent_uplink_items_total", metrics=m0)
            log("drain: backlog %d rows; console starting" % backlog)
            sampler = bl.Sampler({"agent": st.agent.pid}, 0.1, st.metrics_url())
            sampler.start()
            t_up = time.monotonic()
            st.start_console()
            up_delay = time.monotonic() - t_up
            # Probes start once the drain has: before the first acknowledged batch they would
            # measure the wait for the uplink's next retry (up to backoff_max), not the drain.
            bl.wait_until(lambda: st.m("edge_agent_uplink_items_total") > items0, 30, 0.02,
                          "first batch acknowledged")
            client = bl.MqttClient(st.mqtt_port, "bench-drain-probe")
            sent = {}
            try:
                deadline = time.monotonic() + (60 if self.smoke else 120)
                i = 0
                while time.monotonic() < deadline:
                    topic = "probe/drain-%d/temp" % i
                    t = time.time()
                    client.publish(topic, json.dumps({"value": 99, "ts": int(t * 1000)}))
                    sent[topic] = t
                    i += 1
                    time.sleep(0.1)
                    if st.m("edge_agent_outbox_pending") == 0:
                        break
                time.sleep(1.5)
            finally:
                client.close()
            samples = sampler.stop()
            res = self.probe_latencies(st, client, sent)
            m1 = st.metrics()
        finally:
            st.stop()
        ts = [s["t"] - t_up for s in samples if "m" in s]
        acked = [bl.metric_sum(s["m"], "edge_agent_uplink_items_total") - items0 for s in samples
                 if "m" in s]
        pending = [bl.metric_sum(s["m"], "edge_agent_outbox_pending") for s in samples if "m" in s]
        # Drain: from the last sample before the first ack to the first sample at which
        # the backlog is gone (the live probes after it are not part of the backlog).
        first = next((i for i, a in enumerate(acked) if a > 0), None)
        done = next((i for i, a in enumerate(acked) if a >= backlog), None)
        if first is None or done is None:
            raise RuntimeError("the backlog did not drain: acked %s of %d" % (acked[-1:], backlog))
        start = max(0, first - 1)
        rate = (acked[done] - acked[start]) / (ts[done] - ts[start])
        r = {"backlog": backlog, "events": events,
             "rollups": st.m("edge_agent_rollups_total", metrics=m1),
             "drain_rate": rate, "drain_s": ts[done] - ts[start],
             "first_ack_after_s": ts[first], "console_start_s": up_delay,
             "direct_rate": direct, "probes": res,
             "uploads_ok": st.m("edge_agent_uploads_total", 'result="ok"', m1),
             "series": {"t": ts, "pending": pending, "acked": acked}}
        r["met"] = rate >= TARGETS["drain_rate"]
        return r

    # 5 ------------------------------------------------------------------------------
    def bandwidth(self):
        """Bytes uplinked / bytes ingested in the standard sensor-sim scenario (50
        sensors, 1/s, mixed formats, anomalies, demo policy); baseline: every payload
        forwarded gzip-compressed."""
        duration = 10 if self.smoke else 150
        st = Stack(self, "bandwidth")
        try:
            st.start_mosquitto()
            st.start_console()
            with open(os.path.join(ROOT, "tools", "demo", "policy.yaml")) as f:
                policy = f.read()
            st.start_agent(policy, ["sim/#", "probe/#"])
            st.wait_subscribed()
            sub_out = st.path("payloads.out")
            st.own(bl.Proc("mosquitto_sub", ["mosquitto_sub", "-h", "127.0.0.1", "-p",
                                             st.mqtt_port, "-q", "1", "-t", "sim/#", "-v"], sub_out))
            time.sleep(0.5)
            m0 = st.metrics()
            sim = st.run_sim("--sensors", 50, "--rate", 1, "--duration", "%ds" % duration,
                             "--seed", 1, "--format", "mixed", timeout=duration + 60)
            time.sleep(3.0)  # the last uploads
            m1 = st.metrics()
            with open(sub_out, "rb") as f:
                captured = f.read()
        finally:
            st.stop()

        def delta(name, label=None):
            return st.m(name, label, m1) - st.m(name, label, m0)

        ingest = delta("edge_agent_ingest_bytes_total")
        uplink = delta("edge_agent_uplink_bytes_total")
        forward = len(gzip.compress(captured, 6))
        r = {"duration_s": duration, "messages": sim["messages"],
             "readings": delta("edge_agent_readings_received_total"),
             "alerts_raised": delta("edge_agent_alerts_raised_total"),
             "alerts_resolved": delta("edge_agent_alerts_resolved_total"),
             "rollups": delta("edge_agent_rollups_total"),
             "uploads": delta("edge_agent_uploads_total", 'result="ok"'),
             "status_reports": delta("edge_agent_status_reports_total", 'result="ok"'),
             "ingest_bytes": ingest, "uplink_bytes": uplink,
             "ratio": uplink / ingest if ingest else None,
             "forward_gzip_bytes": forward, "forward_ratio": forward / ingest if ingest else None}
        r["met"] = r["ratio"] is not None and r["ratio"] <= TARGETS["bandwidth_ratio"]
        return r

    # micro --------------------------------------------------------------------------
    def micro(self):
        """The Google Benchmark binaries, JSON output."""
        runs = [("decoder_bench", []), ("rules_bench", []), ("store_bench", []),
                ("uplink_bench", []), ("mqtt_codec_bench", []), ("sparkplug_bench", [])]
        out = {}
        for name, extra in runs:
            path = os.path.join(self.build, "tools", "bench", name)
            if not os.access(path, os.X_OK):
                out[name] = {"missing": True}
                continue
            args = [path, "--benchmark_format=json"] + extra
            if self.smoke:
                filt = {"rules_bench": "Compact", "store_bench": "AppendReadings/100/|AppendOutbox/100/",
                        "decoder_bench": "Plain|JsonValueTs",
                        "uplink_bench": "EncodeBatchBody/500|EncodeBatchBodyViaDom/500",
                        "mqtt_codec_bench": "Qos0",
                        "sparkplug_bench": "DData/10|Json_Object/10"}[name]
                args += ["--benchmark_min_time=0.05", "--benchmark_filter=" + filt]
            else:
                args += ["--benchmark_min_time=0.5"] if name != "rules_bench" else []
            log("micro: %s" % name)
            res = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600,
                                 check=False, start_new_session=True)
            if res.returncode != 0:
                raise RuntimeError("%s failed (%d): %s" % (name, res.returncode,
                                                            res.stderr.decode()[-2000:]))
            data = json.loads(res.stdout)
            out[name] = [{k: b.get(k) for k in ("name", "real_time", "cpu_time", "time_unit",
                                                "items_per_second", "bytes_per_second",
                                                "bytes_per_sensor_rule",
                                                "bytes_per_sensor_rule_no_windows",
                                                "readings_per_msg", "error_message")}
                         for b in data["benchmarks"]]
        return out

    def storm(self):
        """The same readings under a rule that never fires and one that fires on 2%
        (tools/bench/storm.py)."""
        return storm_scenario.run(self, TARGETS)

    def ack(self):
        """The storm scenario's quiet load at QoS 1, acknowledged on receipt and after
        commit (tools/bench/delivery.py)."""
        return ack_scenario.run(self)

    def wear(self):
        """Bytes written to disk per byte of readings stored, at 10,000 readings/s
        (tools/bench/wear.py)."""
        return wear_scenario.run(self)

    def modbus(self):
        """CPU of polling 10 Modbus TCP devices x 100 registers every second, against an idle
        agent (tools/bench/modbus_cost.py)."""
        return modbus_scenario.run(self)

    # --------------------------------------------------------------------------------
    def run(self, selected):
        started = time.time()
        self.results["machine"] = bl.machine()
        self.results["smoke"] = self.smoke
        self.results["started"] = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")
        self.results["commit"] = git_commit()
        self.results["load"] = {}
        for name in selected:
            log("scenario %s (load average %.2f %.2f %.2f)" % ((name,) + bl.loadavg()))
            before = bl.loadavg()
            t0 = time.monotonic()
            try:
                self.results[name] = getattr(self, name)()
            except bl.Interrupted:
                raise
            except Exception as e:  # pylint: disable=broad-except
                self.failures[name] = "%s: %s" % (type(e).__name__, e)
                traceback.print_exc()
            finally:
                bl.stop_all()
            self.results["load"][name] = {"before": before, "after": bl.loadavg(),
                                          "seconds": time.monotonic() - t0}
            log("scenario %s done in %.0fs%s" % (name, time.monotonic() - t0,
                                                 " FAILED" if name in self.failures else ""))
        self.results["failures"] = self.failures
        self.results["elapsed_s"] = time.time() - started
        if bl.live_pids():
            self.failures["cleanup"] = "processes left: %s" % bl.live_pids()


def check_figures(results):
    """Problems with the figures a run must produce (the smoke test's assertions)."""
    problems = []
    need = {
        "ingest": lambda r: r["agent_rate"] > 0 and r["sub_rate"] > 0 and r["published"] > 0,
        "cost": lambda r: r["cpu_s_per_million"] and r["readings"] > 0 and r["idle_rss"],
        "latency": lambda r: all(r[k]["outbox"] and r[k]["console"] and r[k]["broker"]
                                 for k in ("1000", "10000")),
        "drain": lambda r: r["drain_rate"] > 0 and r["direct_rate"] > 0 and r["probes"]["console"],
        "bandwidth": lambda r: r["ratio"] and r["forward_ratio"],
        "storm": lambda r: r["after"]["cpu_ratio"] and r["after"]["storm"]["outbox"],
        "ack": lambda r: r["cpu_ratio"] and r["commit"]["outbox"] and r["receipt"]["outbox"],
        "wear": lambda r: r["after"]["written_per_reading_byte"],
        "modbus": lambda r: r["polling"]["registers_per_s"] > 0,
        "micro": lambda r: all(isinstance(v, list) and v and all(not b.get("error_message")
                                                                  for b in v) for v in r.values()),
    }
    for name, ok in need.items():
        if name in results:
            try:
                if not ok(results[name]):
                    problems.append("%s: a figure is missing or zero" % name)
            except (KeyError, TypeError) as e:
                problems.append("%s: %r" % (name, e))
    return problems


def git_commit():
    if os.environ.get("EDGE_BENCH_COMMIT"):
        return os.environ["EDGE_BENCH_COMMIT"]
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False,
                              timeout=10).stdout.decode().strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build-dir", default=os.path.join(ROOT, "build-release"))
    p.add_argument("--out", default=os.path.join(ROOT, "bench-report"))
    p.add_argument("--smoke", action="store_true",
                   help="tiny durations: checks that every scenario runs and reports")
    p.add_argument("--only", default=",".join(SCENARIOS),
                   help="comma-separated subset of: " + ", ".join(SCENARIOS))
    p.add_argument("--cost-seconds", type=int, default=120,
                   help="length of the cost scenario's load (default 120; 660 fills the "
                        "10-minute windows, for the steady-state RSS)")
    p.add_argument("--storm-seconds", type=int, default=20,
                   help="length of each phase of the storm scenario and of each run of the ack "
                        "scenario (default 20)")
    p.add_argument("--wear-seconds", type=int, default=60,
                   help="measured span of the wear scenario, after a 35 s warm-up (default 60)")
    p.add_argument("--storm-window", default=None,
                   help="store.alert_commit_window of the storm scenario's agent (e.g. 25ms; "
                        "default: the agent's default)")
    p.add_argument("--baseline-agent", default=None,
                   help="an edge-agent binary the storm and wear scenarios also run, as the before")
    p.add_argument("--mqtt-client", choices=("native", "paho"), default=None,
                   help="the agent's mqtt.client (default: the agent's default)")
    args = p.parse_args()
    selected = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in selected if s not in SCENARIOS]
    if unknown:
        p.error("unknown scenario(s): %s" % ", ".join(unknown))
    bl.install_signal_handlers()
    suite = Suite(args)
    try:
        suite.run(selected)
    except bl.Interrupted:
        bl.stop_all()
        log("interrupted; everything started was stopped")
        return 130
    finally:
        bl.stop_all()
    import report  # pylint: disable=import-outside-toplevel
    with open(os.path.join(suite.out, "results.json"), "w") as f:
        json.dump(suite.results, f, indent=1, default=str)
    path = report.write(suite.results, suite.out, TARGETS)
    log("report: %s (%.0fs)" % (path, suite.results["elapsed_s"]))
    for problem in check_figures(suite.results):
        suite.failures.setdefault("figures", problem)
        log("FIGURES: " + problem)
    if args.smoke and not report.charts_available():
        log("note: python3-matplotlib is missing, the report has no charts")
    if suite.failures:
        for name, why in suite.failures.items():
            log("FAILED %s: %s" % (name, why))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
