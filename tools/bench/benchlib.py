"""Process control, sampling and a minimal MQTT client for the benchmark suite.

Every process the suite starts runs in a process group of its own, is registered here,
and is stopped by its PID's group: SIGTERM, then SIGKILL after a grace period. The
registry is emptied on normal exit, on an exception, at interpreter exit, and on
SIGINT/SIGTERM/SIGHUP (which raise Interrupted so that `finally` blocks run). Children
also get PR_SET_PDEATHSIG, so a SIGKILL of the suite itself takes them along.

Only the standard library is used. Network traffic is on 127.0.0.1 only.
"""

import atexit
import ctypes
import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

_LIVE = {}  # pid -> Proc, every process started and not yet reaped
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Interrupted(Exception):
    """SIGINT, SIGTERM or SIGHUP arrived; processes are being stopped."""


def _on_signal(signum, _frame):
    raise Interrupted("signal %d" % signum)


def install_signal_handlers():
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)


def _child_setup():
    # Between fork and exec: a group of its own (so the whole group can be signalled),
    # and killed by the kernel if the suite dies without cleaning up.
    os.setpgid(0, 0)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # pylint: disable=broad-except
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(pred, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


class Proc:
    """One child process (and its group), output to a file, stopped by PID."""

    def __init__(self, name, argv, out_path, stdin=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.out_path = out_path
        self.stdin = stdin
        self.popen = None

    def start(self):
        with open(self.out_path, "ab") as out:
            self.popen = subprocess.Popen(self.argv, stdin=self.stdin or subprocess.DEVNULL,
                                          stdout=out, stderr=subprocess.STDOUT,
                                          preexec_fn=_child_setup)
        _LIVE[self.popen.pid] = self
        return self

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def check_alive(self):
        if not self.alive():
            raise RuntimeError("%s exited with %s; last output:\n%s"
                               % (self.name, self.popen.returncode, self.tail()))

    def tail(self, n=30):
        try:
            with open(self.out_path, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return ""

    def wait(self, timeout):
        rc = self.popen.wait(timeout=timeout)
        _LIVE.pop(self.popen.pid, None)
        return rc

    def stop(self, grace=5.0, sig=signal.SIGTERM):
        """Signals the process group, then SIGKILLs it after `grace` seconds."""
        if self.popen is None:
            return None
        pid = self.popen.pid
        if self.popen.poll() is None:
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the group (the leader or anything it forked) goes now.
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        _LIVE.pop(pid, None)
        return self.popen.returncode


def stop_all():
    for proc in reversed(list(_LIVE.values())):
        proc.stop(grace=3.0)


def live_pids():
    return [p.pid for p in _LIVE.values() if p.alive()]


atexit.register(stop_all)


# ---------------------------------------------------------------------------- /proc


def proc_cpu_seconds(pid):
    """User + system CPU seconds of a process (all threads), None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss(pid):
    """(VmRSS, VmHWM) in bytes, or (None, None)."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0]) * 1024
    except OSError:
        return None, None
    return out.get("VmRSS"), out.get("VmHWM")


def loadavg():
    with open("/proc/loadavg") as f:
        return tuple(float(x) for x in f.read().split()[:3])


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return {"cpu": model, "cores": os.cpu_count(), "mem_gib": mem_kb / 1024 / 1024,
            "kernel": os.uname().release}


# ------------------------------------------------------------------------------ HTTP


def http(url, method="GET", token=None, body=None, headers=None, timeout=5.0):
    """(status, body bytes); never raises on 4xx/5xx."""
    hdrs = dict(headers or {})
    if token:
        hdrs["Authorization"] = "Bearer " + token
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=body, headers=hdrs, method=method)
    try:
        with _HTTP.open(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def parse_metrics(text):
    """Prometheus text -> {name: {labels-string: value}} (labels kept as the raw text)."""
    out = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        head, _, value = line.rpartition(" ")
        brace = head.find("{")
        name, labels = (head[:brace], head[brace:]) if brace >= 0 else (head, "")
        try:
            out.setdefault(name, {})[labels] = float(value)
        except ValueError:
            pass
    return out


def metric_sum(m, name, label=None):
    """Sum of `name` over its series, or only those whose label text contains `label`."""
    return sum(v for k, v in m.get(name, {}).items() if label is None or label in k)


# ---------------------------------------------------------------------------- Sampler


class Sampler(threading.Thread):
    """Samples CPU and RSS of named processes (and optionally the agent's /metrics) at
    a fixed interval until stopped. Samples: dicts with `t` (monotonic seconds)."""

    def __init__(self, pids, interval=0.2, metrics_url=None, files=None):
        super().__init__(daemon=True)
        self.pids = dict(pids)
        self.interval = interval
        self.metrics_url = metrics_url
        self.files = dict(files or {})
        self.samples = []
        self._stop_event = threading.Event()

    def sample(self):
        s = {"t": time.monotonic()}
        for name, pid in self.pids.items():
            s[name + ".cpu"] = proc_cpu_seconds(pid)
            s[name + ".rss"] = proc_rss(pid)[0]
        for name, path in self.files.items():
            try:
                s[name + ".bytes"] = os.path.getsize(path)
            except OSError:
                s[name + ".bytes"] = 0
        if self.metrics_url:
            try:
                status, raw = http(self.metrics_url, timeout=2.0)
                if status == 200:
                    s["m"] = parse_metrics(raw.decode())
            except OSError:
                pass
        return s

    def run(self):
        while not self._stop_event.is_set():
            self.samples.append(self.sample())
            self._stop_event.wait(self.interval)

    def stop(self):
        self._stop_event.set()
        self.join(timeout=10)
        self.samples.append(self.sample())
        return self.samples


# ------------------------------------------------------------------------------ MQTT


def _remaining_length(n):
    out = bytearray()
    while True:
        byte = n % 128
        n //= 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _mqtt_str(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def publish_packet(topic, payload, qos=0, packet_id=1):
    """An MQTT PUBLISH packet, QoS 0 or (with `packet_id`) 1."""
    if isinstance(payload, str):
        payload = payload.encode()
    if qos:
        body = _mqtt_str(topic) + struct.pack("!H", packet_id) + payload
        return b"\x32" + _remaining_length(len(body)) + body
    body = _mqtt_str(topic) + payload
    return b"\x30" + _remaining_length(len(body)) + body


class MqttClient:
    """A minimal MQTT 3.1.1 client over one socket: QoS 0 publish, one QoS 0
    subscription whose messages a reader thread timestamps on arrival (time.time())."""

    def __init__(self, port, client_id, keepalive=120):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        var = _mqtt_str("MQTT") + bytes([4, 0x02]) + struct.pack("!H", keepalive)
        body = var + _mqtt_str(client_id)
        self.sock.sendall(b"\x10" + _remaining_length(len(body)) + body)
        ack = self._read_exact(4)
        if ack[0] != 0x20 or ack[3] != 0:
            raise RuntimeError("MQTT CONNACK refused: %r" % ack)
        self.received = []  # (arrival time.time(), topic, payload bytes)
        self._reader = None
        self._lock = threading.Lock()

    def _read_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            buf += chunk
        return buf

    def start_reader(self):
        """Reads and drops what the broker sends (the PUBACKs of QoS 1 publishes), so that
        its writes to this client never block."""
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    def subscribe(self, topic_filter):
        body = struct.pack("!H", 1) + _mqtt_str(topic_filter) + b"\x00"
        self.sock.sendall(b"\x82" + _remaining_length(len(body)) + body)
        self.sock.settimeout(10)
        ack = self._read_exact(5)
        if ack[0] != 0x90 or ack[4] == 0x80:
            raise RuntimeError("MQTT SUBACK refused: %r" % ack)
        self.sock.settimeout(None)
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    def _read_loop(self):
        try:
            while True:
                first = self._read_exact(1)[0]
                mult, length = 1, 0
                while True:
                    b = self._read_exact(1)[0]
                    length += (b & 0x7F) * mult
                    mult *= 128
                    if not b & 0x80:
                        break
                body = self._read_exact(length) if length else b""
                now = time.time()
                if first >> 4 == 3:
                    tlen = struct.unpack("!H", body[:2])[0]
                    topic = body[2:2 + tlen].decode()
                    self.received.append((now, topic, body[2 + tlen:]))
        except (OSError, ConnectionError, ValueError):
            return

    def publish(self, topic, payload, qos=0):
        with self._lock:
            self.sock.sendall(publish_packet(topic, payload, qos, 65535))

    def send_raw(self, data):
        with self._lock:
            self.sock.sendall(data)

    def close(self):
        try:
            with self._lock:
                self.sock.sendall(b"\xe0\x00")  # DISCONNECT
        except OSError:
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


# ------------------------------------------------------------------------ statistics


def percentile(values, p):
    """Nearest-rank percentile of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def summary(values):
    if not values:
        return None
    return {"n": len(values), "p50": percentile(values, 50), "p99": percentile(values, 99),
            "max": max(values), "mean": sum(values) / len(values)}
