"""The processes of one benchmark scenario (mosquitto, edge-console, edge-agent,
sensor-sim), each in the scenario's own directory and stopped by PID, and the helpers
that read their logs and metrics. Used by bench.py."""

import calendar
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402  pylint: disable=wrong-import-position

def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def now_ms():
    return int(time.time() * 1000)


class Stack:
    """mosquitto, edge-console and edge-agent of one scenario, in its own directory."""

    def __init__(self, suite, name):
        self.suite = suite
        self.dir = os.path.join(suite.work, name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.procs = []
        self.mqtt_port = None
        self.console_port = None
        self.tokens = {}
        self.agent = None
        self.agent_port = None
        self.console = None
        self.mosquitto = None

    def path(self, name):
        return os.path.join(self.dir, name)

    def own(self, proc):
        self.procs.append(proc)
        return proc.start()

    def start_mosquitto(self):
        self.mqtt_port = bl.free_port()
        conf = [
            "listener %d 127.0.0.1" % self.mqtt_port,
            "allow_anonymous true",
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            # No limit on queued messages: a QoS 0 flood is not cut by the broker, so
            # every message published reaches both subscribers or is counted by them.
            "max_inflight_messages 0",
            "max_queued_messages 0",
        ]
        if os.geteuid() == 0:
            conf.append("user root")
        with open(self.path("mosquitto.conf"), "w") as f:
            f.write("\n".join(conf) + "\n")
        self.mosquitto = self.own(bl.Proc("mosquitto", ["mosquitto", "-c", self.path("mosquitto.conf")],
                                          self.path("mosquitto.log")))
        bl.wait_until(lambda: self.mosquitto.check_alive() or bl.port_open(self.mqtt_port), 10,
                      what="mosquitto")

    def start_console(self):
        if not self.tokens:
            self.tokens = {n: os.urandom(16).hex() for n in ("bench-node", "bench-direct", "admin")}
            with open(self.path("tokens"), "w") as f:
                for node, tok in self.tokens.items():
                    f.write("%s %s\n" % (node, tok))
            with open(self.path("node.token"), "w") as f:
                f.write(self.tokens["bench-node"] + "\n")
        port_file = self.path("console.port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        listen = "127.0.0.1:%d" % (self.console_port or 0)
        self.console = self.own(bl.Proc(
            "edge-console",
            [self.suite.bin("tools/console/edge-console"), "--listen", listen, "--port-file",
             port_file, "--db", self.path("console.db"), "--tokens", self.path("tokens")],
            self.path("console.log")))

        def port():
            self.console.check_alive()
            try:
                with open(port_file) as f:
                    return int(f.read().strip() or 0)
            except (OSError, ValueError):
                return 0

        self.console_port = bl.wait_until(port, 20, what="edge-console port file")
        bl.wait_until(lambda: self.console_get("/healthz")[0] == 200, 20, what="console /healthz")

    def console_get(self, path):
        try:
            return bl.http("http://127.0.0.1:%d%s" % (self.console_port, path),
                           token=self.tokens["admin"])
        except OSError:
            return 0, b""

    def console_alerts(self, rule=None, since=0):
        """The node's alerts at the console with ts_ms >= since (paged, bounded)."""
        out, seen = [], set()
        for _ in range(100):  # at most 100 pages of 10,000
            status, raw = self.console_get("/v1/alerts?node=bench-node&limit=10000&since=%d" % since)
            if status != 200:
                raise RuntimeError("console /v1/alerts: %d %r" % (status, raw[:200]))
            page = json.loads(raw)
            fresh = [a for a in page if a["id"] not in seen]
            seen.update(a["id"] for a in fresh)
            out.extend(fresh)
            if len(page) < 10000 or not fresh:
                break
            since = page[-1]["ts_ms"]
        return [a for a in out if rule is None or a.get("rule") == rule]

    def stop_console(self):
        self.console.stop()

    def start_agent(self, policy, topics, console=True, store_extra=(), console_extra=(),
                    agent_bin=None, mqtt_extra=(), extra_config=()):
        """`agent_bin`: another edge-agent binary than the build directory's;
        `extra_config`: more top-level lines of the agent's config file."""
        self.agent_port = bl.free_port()
        with open(self.path("policy.yaml"), "w") as f:
            f.write(policy)
        cfg = [
            "node_id: bench-node",
            "mqtt:",
            "  url: tcp://127.0.0.1:%d" % self.mqtt_port,
            "  topics: [%s]" % ", ".join(json.dumps(t) for t in topics),
        ] + (["  client: %s" % self.suite.args.mqtt_client]
             if self.suite.args.mqtt_client else []) + ["  " + line for line in mqtt_extra] + [
            "store:",
            "  path: %s" % json.dumps(self.path("agent.db")),
        ] + ["  " + line for line in store_extra] + [
            "http:",
            "  listen: \"127.0.0.1:%d\"" % self.agent_port,
            # The latency scenario runs 10,000 load sensors (the default sensors.max) plus its
            # probe sensors.
            "sensors:",
            "  max: 20000",
            "policy: %s" % json.dumps(self.path("policy.yaml")),
        ] + list(extra_config)
        if console:
            cfg += ["console:",
                    "  url: http://127.0.0.1:%d" % self.console_port,
                    "  token_file: %s" % json.dumps(self.path("node.token"))]
            cfg += ["  " + line for line in console_extra]
        with open(self.path("agent.yaml"), "w") as f:
            f.write("\n".join(cfg) + "\n")
        self.agent = self.own(bl.Proc("edge-agent", [agent_bin or self.suite.bin("agent/edge-agent"), "run",
                                                     "--config", self.path("agent.yaml")],
                                      self.path("agent.log")))

        def ready():
            self.agent.check_alive()
            try:
                return bl.http(self.metrics_url().replace("/metrics", "/readyz"))[0] == 200
            except OSError:
                return False

        bl.wait_until(ready, 30, 0.1, "edge-agent /readyz")
        bl.wait_until(lambda: bl.metric_sum(self.metrics(), "edge_agent_mqtt_connected") == 1, 15,
                      0.1, "edge-agent MQTT connection")

    def metrics_url(self):
        return "http://127.0.0.1:%d/metrics" % self.agent_port

    def metrics(self):
        status, raw = bl.http(self.metrics_url())
        if status != 200:
            raise RuntimeError("agent /metrics: %d" % status)
        return bl.parse_metrics(raw.decode())

    def m(self, name, label=None, metrics=None):
        return bl.metric_sum(metrics if metrics is not None else self.metrics(), name, label)

    def wait_subscribed(self, topic="probe/warmup/temp"):
        """Publishes a probe until the agent counts it: its subscription is live."""
        client = bl.MqttClient(self.mqtt_port, "bench-warmup-%d" % os.getpid())
        try:
            before = self.m("edge_agent_messages_received_total")

            def counted():
                client.publish(topic, "1")
                time.sleep(0.1)
                return self.m("edge_agent_messages_received_total") > before

            bl.wait_until(counted, 15, 0.2, "edge-agent to receive a probe")
        finally:
            client.close()

    def wait_settled(self, name, timeout, quiet=1.0):
        """Waits until counter `name` stops moving for `quiet` seconds; returns its value."""
        deadline = time.monotonic() + timeout
        last, since = self.m(name), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.2)
            cur = self.m(name)
            if cur != last:
                last, since = cur, time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
        return last

    def sim(self, *args, name="sensor-sim"):
        return bl.Proc(name, [self.suite.bin("tools/sensor-sim/sensor-sim"), "--broker",
                              "tcp://127.0.0.1:%d" % self.mqtt_port, "--quiet"] + list(args),
                       self.path(name + ".out"))

    def run_sim(self, *args, timeout):
        proc = self.own(self.sim(*args))
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.stop()
            raise RuntimeError("sensor-sim did not finish in %ds" % timeout)
        return sim_summary(proc)

    def stop(self):
        for proc in reversed(self.procs):
            proc.stop()
        for name in os.listdir(self.dir):
            if ".db" in name:  # databases can be large; logs stay for inspection
                os.unlink(self.path(name))


def sim_summary(proc):
    for line in reversed(open(proc.out_path).read().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("no summary from sensor-sim:\n" + proc.tail())


def agent_alert_log_times(log_path, rule):
    """{sensor: commit log time in ms (float, microsecond resolution)} of `alert firing`
    lines of `rule` (logged right after the outbox transaction holding the event
    committed)."""
    out = {}
    pat = re.compile(r"alert firing rule=(\S+) sensor=(\S+)")
    with open(log_path, errors="replace") as f:
        for line in f:
            if "alert firing" not in line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            m = pat.search(rec.get("msg", ""))
            if not m or m.group(1) != rule:
                continue
            ts = rec["ts"]  # 2026-11-26T18:21:42.123456Z
            secs = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S"))
            out.setdefault(m.group(2), secs * 1000 + float("0." + ts[20:-1]) * 1000)
    return out


def commit_buckets(m, kind="outbox"):
    """{upper bound in s: cumulative count} of edge_agent_store_commit_seconds{kind}."""
    out = {}
    for labels, v in m.get("edge_agent_store_commit_seconds_bucket", {}).items():
        if 'kind="%s"' % kind not in labels:
            continue
        le = labels.split('le="', 1)[1].split('"', 1)[0]
        out[float("inf") if le == "+Inf" else float(le)] = v
    return out


def commit_summary(before, after):
    """Outbox commits between two scrapes: how many, the share within 2 and 5 ms, and
    the upper bound of the slowest one's bucket (ms)."""
    d = {le: after.get(le, 0) - before.get(le, 0) for le in after}
    n = d.get(float("inf"), 0)
    if not n:
        return None
    slowest = min(le for le, c in d.items() if c >= n)
    return {"n": n, "within_2ms": d.get(0.002, 0) / n, "within_5ms": d.get(0.005, 0) / n,
            "slowest_le_ms": slowest * 1000}


def active_rate(times, counts):
    """Count per second over the interval in which the count moved: from the last sample
    before it first rose to the first sample at its final value."""
    if len(counts) < 2 or counts[-1] == counts[0]:
        return 0.0, 0.0
    first = next(i for i, c in enumerate(counts) if c > counts[0]) - 1
    last = next(i for i, c in enumerate(counts) if c == counts[-1])
    span = times[last] - times[first]
    return (counts[-1] - counts[first]) / span if span > 0 else 0.0, span


# ------------------------------------------------------------------------- scenarios
