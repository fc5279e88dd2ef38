"""Helpers shared by the fault tests (on top of tests/integration/harness.py)."""

import collections
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402,F401  pylint: disable=wrong-import-position


class SteadyStream:
    """Publishes one reading per sensor every `period` seconds until stopped.

    Sensor i publishes to sensors/<prefix><i>/temp through its own long-running
    `mosquitto_pub -l` (QoS 1), cycling through `cycle`: with the default policy and the
    default cycle (20, 90, 25) every sensor fires and resolves once per three periods. Timestamps are event times that increase
    by one second per reading, so every alert event has a distinct (sensor, ts_ms).
    """

    def __init__(self, port, sensors=10, period=0.2, prefix="f", workdir=None,
                 cycle=(20, 90, 25)):
        self.port = port
        self.sensors = sensors
        self.period = period
        self.prefix = prefix
        self.workdir = workdir
        self.cycle = tuple(cycle)
        self.sent = 0
        self._stop = threading.Event()
        self._procs = []
        self._thread = None
        self._t0 = harness.now_ms() - 3_600_000

    def _spawn(self, i):
        log = open(os.path.join(self.workdir, "pub-%s%d.log" % (self.prefix, i)), "ab") \
            if self.workdir else subprocess.DEVNULL
        return subprocess.Popen(
            [harness.MOSQUITTO_PUB_BIN, "-h", "127.0.0.1", "-p", str(self.port), "-q", "1",
             "-t", "sensors/%s%d/temp" % (self.prefix, i), "-l"],
            stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT)

    def start(self):
        self._procs = [self._spawn(i) for i in range(self.sensors)]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        n = 0
        values = self.cycle
        while not self._stop.is_set():
            line = harness.reading(values[n % len(values)], self._t0 + n * 1000).encode() + b"\n"
            for i, p in enumerate(self._procs):
                if p.poll() is not None:  # broker went away: start a new publisher
                    self._procs[i] = p = self._spawn(i)
                try:
                    p.stdin.write(line)
                    p.stdin.flush()
                except OSError:
                    continue
            self.sent += len(self._procs)
            n += 1
            self._stop.wait(self.period)

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        for p in self._procs:
            try:
                p.stdin.close()
            except OSError:
                pass
        for p in self._procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def check_exactly_once(test, alerts, at_least_firing, at_least_resolved=0):
    """Every counted alert arrived (lower bounds), none twice (by id and by event)."""
    ids = collections.Counter(a["id"] for a in alerts)
    test.assertEqual([i for i, n in ids.items() if n > 1], [], "ids stored twice")
    events = collections.Counter((a["rule"], a["sensor"], a["ts_ms"], a["state"]) for a in alerts)
    test.assertEqual([k for k, n in events.items() if n > 1], [], "events stored twice")
    firing = sum(1 for a in alerts if a["state"] == "firing")
    test.assertGreaterEqual(firing, at_least_firing, "counted firing events missing")
    test.assertGreaterEqual(len(alerts) - firing, at_least_resolved,
                            "counted resolved events missing")


def wait_drained(agent, timeout):
    """Waits until the agent's outbox is empty."""
    return harness.wait_until(lambda: agent.metric("edge_agent_outbox_pending") == 0, timeout,
                              0.5, "outbox_pending to return to 0")


def elapsed(start):
    return time.monotonic() - start
