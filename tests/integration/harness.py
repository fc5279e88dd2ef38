"""Integration test harness: real mosquitto, edge-console and edge-agent processes.

Everything a test starts is owned by the test: it lives in the test's temporary
directory, listens on ports chosen at run time, is stopped by PID in tearDown (and
again at interpreter exit), and has its output in a log file that is printed when the
test fails. Only the standard library is used.

Binaries come from the environment (set by ctest):
  EDGE_AGENT_BIN, EDGE_CONSOLE_BIN, SENSOR_SIM_BIN
Set EDGE_IT_KEEP=1 to keep the temporary directories for inspection.
"""

import atexit
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

EDGE_AGENT_BIN = os.environ.get("EDGE_AGENT_BIN", "")
EDGE_CONSOLE_BIN = os.environ.get("EDGE_CONSOLE_BIN", "")
SENSOR_SIM_BIN = os.environ.get("SENSOR_SIM_BIN", "")
MOSQUITTO_BIN = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PUB_BIN = shutil.which("mosquitto_pub") or "mosquitto_pub"

# mosquitto_pub -l -q 1 stops early past 65,535 lines (message id wrap in 2.0.11).
PUB_BATCH_LINES = 50_000

# Every process started through this module, so that atexit can reap stragglers.
_LIVE = {}

# No proxy for loopback requests, whatever the environment says.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def now_ms():
    return int(time.time() * 1000)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(pred, timeout, interval=0.1, what=None):
    """Polls pred() until it returns something truthy and returns that value.

    Raises TimeoutError (naming `what`, or the last value seen) after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise TimeoutError(
                "timed out after %.1fs waiting for %s (last value: %r)"
                % (timeout, what or getattr(pred, "__name__", "condition"), last))
        time.sleep(interval)


def _die_with_parent():
    # Runs in the child between fork and exec: if the test process dies (ctest timeout,
    # SIGKILL), the kernel kills the child too.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # pylint: disable=broad-except
        pass


class Process:
    """A child process with its stdout+stderr in a log file, stopped by PID."""

    def __init__(self, name, argv, log_path, cwd=None, env=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.cwd = cwd
        self.env = env
        self.proc = None
        self.returncode = None

    def start(self):
        if self.alive():
            raise RuntimeError("%s is already running" % self.name)
        log = open(self.log_path, "ab")
        log.write(("\n=== %s start: %s\n" % (time.strftime("%H:%M:%S"),
                                            " ".join(self.argv))).encode())
        log.flush()
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.cwd, env=self.env,
                                         preexec_fn=_die_with_parent)
        finally:
            log.close()
        self.returncode = None
        _LIVE[self.proc.pid] = self.proc
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _reap(self):
        self.returncode = self.proc.returncode
        _LIVE.pop(self.proc.pid, None)
        return self.returncode

    def send_signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def wait(self, timeout):
        """Waits for exit; returns the exit code (negative: killed by that signal)."""
        self.proc.wait(timeout=timeout)
        return self._reap()

    def kill(self, sig=signal.SIGKILL, timeout=10):
        """Sends `sig` and waits for the process to end; returns its exit code."""
        if self.proc is None:
            return None
        if self.alive():
            os.kill(self.proc.pid, sig)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            return self.wait(timeout)

    def stop(self, timeout=5):
        """SIGTERM, then SIGKILL after `timeout` seconds. Returns the exit code."""
        if self.proc is None:
            return None
        if not self.alive():
            return self._reap()
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            return self.wait(timeout)

    def check_alive(self):
        if not self.alive():
            raise RuntimeError("%s exited with %s\n%s" % (self.name, self.proc.returncode,
                                                          self.log_tail()))

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=60):
        return "\n".join(self.log_text().splitlines()[-lines:])


def _reap_all():
    for pid, proc in list(_LIVE.items()):
        if proc.poll() is None:
            try:
                os.kill(pid, signal.SIGKILL)
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        _LIVE.pop(pid, None)


atexit.register(_reap_all)


def http_request(url, method="GET", token=None, body=None, headers=None, timeout=5.0):
    """One HTTP request. Returns (status, body bytes, headers); never raises on 4xx/5xx."""
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
    if token is not None:
        hdrs["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with _HTTP.open(req, timeout=timeout) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as e:
        payload = e.read()
        return e.code, payload, dict(e.headers or {})


# --------------------------------------------------------------------------- mosquitto


class Mosquitto:
    """A private mosquitto broker on 127.0.0.1 and a port chosen at run time."""

    def __init__(self, workdir, port=None, extra_config=()):
        self.workdir = workdir
        self.port = port or free_port()
        self.conf_path = os.path.join(workdir, "mosquitto-%d.conf" % self.port)
        lines = [
            # Listener first: in 2.0 the per-listener options follow their listener,
            # and without per_listener_settings the rest are global.
            "listener %d 127.0.0.1" % self.port,
            "allow_anonymous true",
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            # Unlimited in-flight and queued QoS 1 messages: tests send bursts.
            "max_inflight_messages 0",
            "max_queued_messages 0",
            "message_size_limit 0",
        ]
        if os.geteuid() == 0:
            # Started as root mosquitto would switch to the `mosquitto` user, which
            # also clears the parent-death signal; stay as we are.
            lines.append("user root")
        lines.extend(extra_config)
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.process = Process("mosquitto", [MOSQUITTO_BIN, "-c", self.conf_path],
                               os.path.join(workdir, "mosquitto.log"))

    @property
    def url(self):
        return "tcp://127.0.0.1:%d" % self.port

    def start(self, timeout=10):
        self.process.start()

        def up():
            self.process.check_alive()
            return port_open(self.port)

        wait_until(up, timeout, 0.05, "mosquitto to accept on port %d" % self.port)
        return self

    def stop(self):
        return self.process.stop()

    def restart(self):
        self.stop()
        return self.start()

    def alive(self):
        return self.process.alive()


class Relay:
    """A TCP relay: listen_host:port (chosen at run time) -> 127.0.0.1:target_port, one thread
    per direction. While `swallow` is set, what the client sends is dropped instead of passed
    on (its acknowledgements among them), as a connection that dies with them unsent."""

    def __init__(self, target_port, listen_host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((listen_host, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.target_port = target_port
        self.swallow = threading.Event()
        self.conns = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self):
        """As an MQTT URL."""
        return "tcp://127.0.0.1:%d" % self.port

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            self.conns += [client, upstream]
            for a, b, up in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(a, b, up), daemon=True).start()

    def _pump(self, src, dst, up):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if up and self.swallow.is_set():
                    continue
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        self.closed = True
        for s in [self.sock] + self.conns:
            try:
                s.close()
            except OSError:
                pass


def publish(port, topic, payload, qos=1, retain=False, timeout=30):
    """Publishes one message with mosquitto_pub. `payload` may be str or bytes (any bytes)."""
    if isinstance(payload, str):
        payload = payload.encode()
    # -s sends stdin as one message (any bytes); -n sends an empty one.
    argv = [MOSQUITTO_PUB_BIN, "-h", "127.0.0.1", "-p", str(port), "-q", str(qos), "-t", topic,
            "-s" if payload else "-n"]
    if retain:
        argv.append("-r")
    res = subprocess.run(argv, input=payload, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=timeout, check=False)
    if res.returncode != 0:
        raise RuntimeError("mosquitto_pub to %s failed (%d): %s"
                           % (topic, res.returncode, res.stdout.decode("utf-8", "replace")))


def _line_safe(payload):
    # mosquitto_pub -l splits on LF, and a NUL byte cuts a line short or loses it.
    return payload and not any(b in payload for b in (b"\n", b"\r", b"\x00"))


def publish_many(port, messages, qos=1, timeout=120):
    """Publishes [(topic, payload), ...] in order.

    Runs of messages on one topic go through a single `mosquitto_pub -l` (one line per
    message, batches below the 65,535 message-id wrap); payloads that cannot be a line
    (empty, containing CR, LF or NUL) are published one by one.
    """
    run_topic = None
    run = []

    def flush():
        for start in range(0, len(run), PUB_BATCH_LINES):
            chunk = run[start:start + PUB_BATCH_LINES]
            argv = [MOSQUITTO_PUB_BIN, "-h", "127.0.0.1", "-p", str(port), "-q", str(qos), "-t",
                    run_topic, "-l"]
            res = subprocess.run(argv, input=b"\n".join(chunk) + b"\n", stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=timeout, check=False)
            if res.returncode != 0:
                raise RuntimeError("mosquitto_pub -l to %s failed (%d): %s"
                                   % (run_topic, res.returncode,
                                      res.stdout.decode("utf-8", "replace")))
        run.clear()

    for topic, payload in messages:
        if isinstance(payload, str):
            payload = payload.encode()
        if not _line_safe(payload):
            if run:
                flush()
            publish(port, topic, payload, qos=qos, timeout=timeout)
            continue
        if topic != run_topic and run:
            flush()
        run_topic = topic
        run.append(payload)
    if run:
        flush()


class Subscriber:
    """mosquitto_sub in the background, collecting `topic payload` lines in a file."""

    def __init__(self, workdir, port, topic, name="mosquitto_sub"):
        self.out_path = os.path.join(workdir, "%s-%d.out" % (name, port))
        self.process = Process(name, [shutil.which("mosquitto_sub") or "mosquitto_sub", "-h",
                                      "127.0.0.1", "-p", str(port), "-t", topic, "-v", "-q", "1"],
                               self.out_path)

    def start(self):
        self.process.start()
        time.sleep(0.3)
        return self

    def lines(self):
        return [l for l in self.process.log_text().splitlines()
                if l and not l.startswith("=== ")]

    def stop(self):
        return self.process.stop()


# ----------------------------------------------------------------------------- console


class Console:
    """edge-console with a tokens file for the given nodes plus `admin`; `labels` binds node
    labels in the tokens file ({node: "k=v,k2=*"})."""

    def __init__(self, workdir, nodes=("node-1",), extra_args=(), labels=None):
        if not EDGE_CONSOLE_BIN:
            raise unittest.SkipTest("EDGE_CONSOLE_BIN is not set")
        self.workdir = workdir
        self.extra_args = list(extra_args)  # e.g. ["--signing-key", path]
        self.db_path = os.path.join(workdir, "console.db")
        self.tokens_path = os.path.join(workdir, "console-tokens")
        self.port_file = os.path.join(workdir, "console.port")
        self.tokens = {node: os.urandom(16).hex() for node in nodes}
        self.tokens["admin"] = os.urandom(16).hex()
        with open(self.tokens_path, "w") as f:
            f.write("# node-id  token  [labels]\n")
            for node, tok in self.tokens.items():
                bound = (labels or {}).get(node)
                f.write("%s %s%s\n" % (node, tok, " " + bound if bound else ""))
        self.port = None
        self.process = None

    @property
    def admin_token(self):
        return self.tokens["admin"]

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def token_file(self, node):
        """A file holding just the node's token (what the agent reads)."""
        path = os.path.join(self.workdir, "%s.token" % node)
        with open(path, "w") as f:
            f.write(self.tokens[node] + "\n")
        return path

    def start(self, timeout=20):
        listen = "127.0.0.1:%d" % (self.port or 0)
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.process = Process("edge-console",
                               [EDGE_CONSOLE_BIN, "--listen", listen, "--port-file", self.port_file,
                                "--db", self.db_path, "--tokens", self.tokens_path]
                               + self.extra_args,
                               os.path.join(self.workdir, "console.log"))
        self.process.start()

        def port_written():
            self.process.check_alive()
            try:
                with open(self.port_file) as f:
                    text = f.read().strip()
                return int(text) if text else None
            except (OSError, ValueError):
                return None

        port = wait_until(port_written, timeout, 0.05, "edge-console port file")
        if self.port is not None and port != self.port:
            raise RuntimeError("edge-console came back on port %d, not %d" % (port, self.port))
        self.port = port
        wait_until(lambda: self.healthy(), timeout, 0.05, "edge-console /healthz")
        return self

    def healthy(self):
        try:
            return self.request("GET", "/healthz")[0] == 200
        except OSError:
            return False

    def stop(self):
        return self.process.stop() if self.process else None

    def restart(self, timeout=20):
        """Stops (if running) and starts again on the same port with the same database."""
        self.stop()
        return self.start(timeout)

    def alive(self):
        return self.process is not None and self.process.alive()

    def request(self, method, path, token=None, body=None, headers=None, timeout=5.0):
        """Returns (status, parsed JSON or text)."""
        status, raw, _ = http_request(self.url + path, method, token, body, headers, timeout)
        try:
            return status, json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return status, raw.decode("utf-8", "replace")

    def _admin_get(self, path, params):
        query = {k: v for k, v in params.items() if v is not None}
        if query:
            path += "?" + urllib.parse.urlencode(query)
        status, body = self.request("GET", path, token=self.admin_token)
        if status != 200:
            raise RuntimeError("GET %s: %d %r" % (path, status, body))
        return body

    def alerts(self, node=None, since=None, limit=10000):
        """GET /v1/alerts as admin: a list of alert objects, oldest first."""
        return self._admin_get("/v1/alerts", {"node": node, "since": since, "limit": limit})

    def nodes(self):
        """GET /v1/nodes as admin."""
        return self._admin_get("/v1/nodes", {})

    def metric(self, name, **labels):
        """Sum of the series of `name` in GET /metrics whose labels include `labels`."""
        status, text = self.request("GET", "/metrics", token=self.admin_token)
        if status != 200:
            raise RuntimeError("GET /metrics: %d %r" % (status, text))
        return sum(value for (n, lbls), value in parse_prometheus(text).items()
                   if n == name and all(dict(lbls).get(k) == str(v) for k, v in labels.items()))

    def post_batch(self, node, items, token=None, sent_ms=None):
        """POST /v1/batches as `node` (with its own token unless `token` is given)."""
        body = {"node": node, "sent_ms": sent_ms or now_ms(), "items": items}
        return self.request("POST", "/v1/batches",
                            token=self.tokens.get(node) if token is None else token, body=body)


# ------------------------------------------------------------------------------- agent

DEFAULT_POLICY = """\
rules:
  - id: overheat
    match: "sensors/+/temp"
    kind: threshold
    above: 50
    clear: 45
    for: 0s
    severity: critical
"""


def parse_prometheus(text):
    """Parses Prometheus text format into {(name, ((label, value), ...)): float}."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        labels = []
        brace = line.find("{")
        space = len(line)
        for ws in (" ", "\t"):
            if ws in line:
                space = min(space, line.index(ws))
        if 0 <= brace < space:
            name, rest = line[:brace], line[brace + 1:]
            i = 0
            while True:
                while i < len(rest) and rest[i] in ", ":
                    i += 1
                if rest[i] == "}":
                    rest = rest[i + 1:]
                    break
                eq = rest.index("=", i)
                key = rest[i:eq].strip()
                if rest[eq + 1] != '"':
                    raise ValueError("bad label in %r" % line)
                j = eq + 2
                val = []
                while rest[j] != '"':
                    if rest[j] == "\\":
                        j += 1
                        val.append({"n": "\n", "\\": "\\", '"': '"'}.get(rest[j], rest[j]))
                    else:
                        val.append(rest[j])
                    j += 1
                labels.append((key, "".join(val)))
                i = j + 1
            fields = rest.split()
        else:
            parts = line.split()
            name, fields = parts[0], parts[1:]
        if not fields:
            raise ValueError("no value in %r" % line)
        out[(name.strip(), tuple(sorted(labels)))] = float(fields[0])
    return out


class Agent:
    """edge-agent run with a config file, a policy file and the brief's flags."""

    def __init__(self, workdir, mosquitto, console=None, node_id="node-1", policy=DEFAULT_POLICY,
                 topics=("sensors/#",), token=None, extra_config="", extra_args=(), store=None):
        if not EDGE_AGENT_BIN:
            raise unittest.SkipTest("EDGE_AGENT_BIN is not set")
        self.workdir = workdir
        self.mosquitto = mosquitto
        self.console = console
        self.node_id = node_id
        self.topics = list(topics)
        self.db_path = os.path.join(workdir, "%s.db" % node_id)
        self.http_port = free_port()
        self.policy_path = os.path.join(workdir, "%s-policy.yaml" % node_id)
        self.config_path = os.path.join(workdir, "%s-config.yaml" % node_id)
        self.token_path = None
        if console is not None:
            self.token_path = os.path.join(workdir, "%s.token" % node_id)
            with open(self.token_path, "w") as f:
                f.write((token if token is not None else console.tokens[node_id]) + "\n")
        with open(self.policy_path, "w") as f:
            f.write(policy)
        self.extra_args = list(extra_args)
        self.store = dict(store or {})  # more store.* keys: {"max_bytes": "1MiB"}
        self._write_config(extra_config)
        self.process = Process("edge-agent", self._argv(),
                               os.path.join(workdir, "agent-%s.log" % node_id))

    def _write_config(self, extra):
        topics = ", ".join(json.dumps(t) for t in self.topics)
        text = [
            "node_id: %s" % self.node_id,
            "mqtt:",
            "  url: %s" % json.dumps(self.mosquitto.url),
            "  topics: [%s]" % topics,
            "store:",
            "  path: %s" % json.dumps(self.db_path),
        ]
        store = dict({"commit_interval": "100ms"}, **self.store)
        text += ["  %s: %s" % (k, json.dumps(str(v))) for k, v in store.items()]
        text += [
            "http:",
            "  listen: \"127.0.0.1:%d\"" % self.http_port,
        ]
        if self.console is not None:
            text += [
                "console:",
                "  url: %s" % json.dumps(self.console.url),
                "  token_file: %s" % json.dumps(self.token_path),
                "  backoff_initial: 200ms",
                "  backoff_max: 2s",
            ]
        text.append("policy: %s" % json.dumps(self.policy_path))
        with open(self.config_path, "w") as f:
            f.write("\n".join(text) + "\n" + extra)

    def _argv(self):
        argv = [EDGE_AGENT_BIN, "run", "--config", self.config_path, "--node-id", self.node_id,
                "--mqtt", self.mosquitto.url, "--db", self.db_path,
                "--http", "127.0.0.1:%d" % self.http_port, "--policy", self.policy_path]
        for t in self.topics:
            argv += ["--topic", t]
        if self.console is not None:
            argv += ["--console", self.console.url, "--token-file", self.token_path]
        return argv + self.extra_args

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.http_port

    def start(self, ready=True, timeout=30):
        self.process.argv = self._argv()  # the console port is known by now
        self.process.start()
        if ready:
            self.wait_ready(timeout)
        return self

    def restart(self, ready=True, timeout=30):
        """Starts again with the same config, database and HTTP port (stopping it first)."""
        if self.process.alive():
            self.process.stop(10)
        return self.start(ready, timeout)

    def alive(self):
        return self.process.alive()

    def get(self, path, timeout=5.0):
        """GET on the agent's HTTP endpoint: (status, text)."""
        status, raw, _ = http_request(self.url + path, timeout=timeout)
        return status, raw.decode("utf-8", "replace")

    def ready(self):
        try:
            return self.get("/readyz", timeout=2.0)[0] == 200
        except OSError:
            return False

    def wait_ready(self, timeout=30):
        def is_ready():
            self.process.check_alive()
            return self.ready()

        return wait_until(is_ready, timeout, 0.1, "edge-agent /readyz")

    def metrics_text(self):
        status, text = self.get("/metrics")
        if status != 200:
            raise RuntimeError("GET /metrics: %d %s" % (status, text))
        return text

    def metrics(self):
        """{(name, ((label, value), ...)): value} from GET /metrics."""
        return parse_prometheus(self.metrics_text())

    def metric(self, name, _metrics=None, **labels):
        """Sum of the series of `name` whose labels include `labels` (0.0 if none)."""
        m = _metrics if _metrics is not None else self.metrics()
        total = 0.0
        for (n, lbls), value in m.items():
            if n == name and all(dict(lbls).get(k) == str(v) for k, v in labels.items()):
                total += value
        return total

    def has_metric(self, name, _metrics=None):
        m = _metrics if _metrics is not None else self.metrics()
        return any(n == name for n, _ in m)

    def wait_ingesting(self, timeout=20):
        """Publishes probe readings until the agent counts one (subscription is live)."""
        before = self.metric("edge_agent_readings_received_total")
        topic = "sensors/probe-%d/level" % os.getpid()

        def counted():
            publish(self.mosquitto.port, topic, "1", qos=1)
            return self.metric("edge_agent_readings_received_total") > before

        wait_until(counted, timeout, 0.3, "edge-agent to receive a probe reading")
        # An earlier probe may still be on its way: wait until the count settles, so
        # that tests can take their baseline now.
        last = self.metric("edge_agent_readings_received_total")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.5)
            current = self.metric("edge_agent_readings_received_total")
            if current == last:
                break
            last = current
        return True

    def kill(self, sig=signal.SIGKILL):
        """Sends `sig` and waits for the exit; returns the exit code."""
        return self.process.kill(sig)

    def terminate(self, timeout=10):
        """SIGTERM; returns (exit code, seconds until exit). SIGKILL after `timeout`."""
        start = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            rc = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            rc = self.process.kill(signal.SIGKILL)
        return rc, time.monotonic() - start

    def stop(self):
        return self.process.stop(10)

    def check(self, *files, timeout=30):
        """`edge-agent check FILE...`: (exit code, combined output)."""
        res = subprocess.run([EDGE_AGENT_BIN, "check"] + [str(f) for f in files],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                             check=False)
        return res.returncode, res.stdout.decode("utf-8", "replace")


def agent_check(*files, timeout=30):
    """`edge-agent check FILE...` without an Agent instance: (exit code, output)."""
    if not EDGE_AGENT_BIN:
        raise unittest.SkipTest("EDGE_AGENT_BIN is not set")
    res = subprocess.run([EDGE_AGENT_BIN, "check"] + [str(f) for f in files],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                         check=False)
    return res.returncode, res.stdout.decode("utf-8", "replace")


def reading(value, ts_ms):
    return json.dumps({"value": value, "ts": ts_ms})


# -------------------------------------------------------------------------- test base


def require_binary(path, env_name):
    if not path:
        raise unittest.SkipTest("%s is not set (run through ctest)" % env_name)
    if not os.access(path, os.X_OK):
        raise unittest.SkipTest("%s=%s is not an executable" % (env_name, path))


class IntegrationTest(unittest.TestCase):
    """Gives each test a temporary directory and stops everything it started.

    Start components with self.start_mosquitto() / self.start_console() /
    self.start_agent(); they are stopped by PID in tearDown even when the test fails,
    and their logs are printed if it did.
    """

    needs = ()  # any of "agent", "console", "sim"

    def setUp(self):
        for need in self.needs:
            path, env = {"agent": (EDGE_AGENT_BIN, "EDGE_AGENT_BIN"),
                         "console": (EDGE_CONSOLE_BIN, "EDGE_CONSOLE_BIN"),
                         "sim": (SENSOR_SIM_BIN, "SENSOR_SIM_BIN")}[need]
            require_binary(path, env)
        self.tmp = tempfile.mkdtemp(prefix="edge-it-%s-" % self._testMethodName)
        self._owned = []

    def own(self, component):
        self._owned.append(component)
        return component

    def start_mosquitto(self, **kw):
        return self.own(Mosquitto(self.tmp, **kw)).start()

    def start_console(self, nodes=("node-1",), extra_args=(), labels=None):
        return self.own(Console(self.tmp, nodes, extra_args, labels)).start()

    def start_agent(self, mosquitto, console=None, ready=True, **kw):
        agent = self.own(Agent(self.tmp, mosquitto, console, **kw))
        return agent.start(ready=ready)

    def tearDown(self):
        for component in reversed(self._owned):
            try:
                component.stop()
            except Exception as e:  # pylint: disable=broad-except
                sys.stderr.write("stopping %r: %s\n" % (component, e))

    def run(self, result=None):
        if result is None:
            result = self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        try:
            return super().run(result)
        finally:
            tmp = getattr(self, "tmp", None)
            if tmp and os.path.isdir(tmp):
                if len(result.failures) + len(result.errors) > before:
                    self._dump_logs(tmp)
                if os.environ.get("EDGE_IT_KEEP"):
                    sys.stderr.write("kept %s\n" % tmp)
                else:
                    shutil.rmtree(tmp, ignore_errors=True)

    @staticmethod
    def _dump_logs(tmp):
        for name in sorted(os.listdir(tmp)):
            if not (name.endswith(".log") or name.endswith(".out")):
                continue
            path = os.path.join(tmp, name)
            with open(path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            sys.stderr.write("\n----- %s (last %d of %d lines) -----\n"
                             % (name, min(len(lines), 80), len(lines)))
            sys.stderr.write("\n".join(lines[-80:]) + "\n")


def main():
    unittest.main(verbosity=2)
