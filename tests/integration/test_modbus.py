#!/usr/bin/env python3
"""Modbus TCP polling against real servers (pymodbus, modbus_server.py): a device whose
holding registers (int16 scaled, float32 big word order, uint32 little word order), input
register and coils become readings and raise an alert at the console; a device that answers
an exception for one register while the others are read; a port where nothing listens
(connect failures) and one that accepts and never answers (timeouts), both counted per
device and reason. The first device's server killed with SIGKILL takes its sensors offline
at once (the stale rule's `after` is an hour); restarted, they come back.
Needs python3-pymodbus (Debian's /usr/bin/python3)."""

import json
import os
import socket
import struct
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

try:
    import pymodbus.server  # noqa: F401  pylint: disable=unused-import
    HAVE_PYMODBUS = True
except ImportError:
    HAVE_PYMODBUS = False

SERVER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "modbus_server.py")
POLICY = """\
rules:
  - id: fast
    match: "plant/press1/flow"
    kind: threshold
    above: 20
    clear: 15
    severity: warning
  - id: offline
    match: "plant/#"
    kind: stale
    after: 1h
    severity: critical
"""


def words_f32_big(v):
    hi, lo = struct.unpack(">HH", struct.pack(">f", v))
    return [hi, lo]


def words_u32_little(v):
    hi, lo = struct.unpack(">HH", struct.pack(">I", v))
    return [lo, hi]


# hr[0] = -123 (int16, scale 0.1: -12.3), hr[1..2] = 21.5 (float32, high word first),
# hr[3..4] = 100000 (uint32, low word first).
HOLDING = [65536 - 123] + words_f32_big(21.5) + words_u32_little(100000)
EXPECTED = {"temp": -12.3, "flow": 21.5, "count": 100000, "level": 42, "run": 1, "idle": 0,
            "door": 1, "alarm": 1}


class ModbusTest(harness.IntegrationTest):
    needs = ("agent", "console")

    def setUp(self):
        super().setUp()
        if not HAVE_PYMODBUS:
            self.skipTest("python3-pymodbus is not installed")

    def server(self, name, port, **tables):
        argv = [sys.executable, SERVER_SCRIPT, "--port", port]
        for table, values in tables.items():
            argv += ["--" + table, json.dumps(values)]
        proc = self.own(harness.Process(name, argv, os.path.join(self.tmp, name + ".log")))
        proc.start()
        harness.wait_until(lambda: "listening" in proc.log_text() or not proc.alive(), 30,
                           what="%s listening" % name)
        proc.check_alive()
        return proc

    def reading(self, agent, sensor):
        status, text = agent.get("/v1/readings?sensor=" + urllib.parse.quote(sensor, safe=""))
        if status != 200:
            return None
        readings = json.loads(text)["readings"]
        return readings[-1][1] if readings else None

    def alerts(self, console, rule, state):
        return [a for a in console.alerts(node="node-1")
                if a["rule"] == rule and a["state"] == state]

    def test_registers_become_readings_and_failures_are_counted(self):
        press_port, broken_port, dead_port = (harness.free_port() for _ in range(3))
        hung = socket.socket()
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)  # accepts connections (the kernel does), never answers
        self.addCleanup(hung.close)
        press = self.server("modbus-press1", press_port, holding=HOLDING, input=[42],
                            coils=[1, 0, 0, 1], discrete=[0, 1])
        self.server("modbus-broken", broken_port, holding=[7, 8])

        def device(name, port, registers, interval="200ms"):
            lines = ["  - name: %s" % name, "    host: 127.0.0.1", "    port: %d" % port,
                     "    interval: %s" % interval, "    timeout: 300ms",
                     "    prefix: plant/%s" % name, "    registers:"]
            for reg in registers:
                lines.append("      - {%s}" % ", ".join("%s: %s" % kv for kv in reg.items()))
            return "\n".join(lines)

        modbus = "\n".join([
            "modbus:",
            device("press1", press_port, [
                {"name": "temp", "address": 0, "type": "int16", "scale": 0.1},
                {"name": "flow", "address": 1, "type": "float32"},
                {"name": "count", "address": 3, "type": "uint32", "word_order": "little"},
                {"name": "level", "table": "input", "address": 0},
                {"name": "run", "table": "coil", "address": 0},
                {"name": "idle", "table": "coil", "address": 2},
                {"name": "door", "table": "coil", "address": 3},
                {"name": "alarm", "table": "discrete", "address": 1}]),
            device("broken", broken_port, [
                {"name": "ok", "address": 0},
                {"name": "missing", "address": 100}]),
            device("dead", dead_port, [{"name": "x", "address": 0}], interval="100ms"),
            device("hung", hung.getsockname()[1], [{"name": "x", "address": 0}],
                   interval="100ms"),
        ]) + "\n"
        mq = self.start_mosquitto()
        console = self.start_console()
        agent = self.start_agent(mq, console, policy=POLICY, extra_config=modbus)

        for name, value in EXPECTED.items():
            sensor = "plant/press1/" + name
            harness.wait_until(lambda s=sensor: self.reading(agent, s) is not None, 30,
                               what="a reading of " + sensor)
            self.assertAlmostEqual(self.reading(agent, sensor), value, places=5, msg=sensor)
        harness.wait_until(lambda: self.reading(agent, "plant/broken/ok") == 7, 30,
                           what="the broken device's good register")
        harness.wait_until(
            lambda: agent.metric("edge_agent_modbus_polls_total", device="broken",
                                 result="exception") >= 2
            and agent.metric("edge_agent_modbus_polls_total", device="dead",
                             result="connect") >= 2
            and agent.metric("edge_agent_modbus_polls_total", device="hung",
                             result="timeout") >= 2,
            30, what="exceptions, refused connections and timeouts counted")
        self.assertIsNone(self.reading(agent, "plant/broken/missing"))
        self.assertEqual(agent.metric("edge_agent_modbus_connected", device="press1"), 1)
        self.assertEqual(agent.metric("edge_agent_modbus_connected", device="dead"), 0)
        self.assertGreaterEqual(agent.metric("edge_agent_modbus_polls_total", device="press1",
                                             result="ok"), 2)
        harness.wait_until(lambda: self.alerts(console, "fast", "firing"), 30,
                           what="the alert on the float32 register")
        self.assertEqual(self.alerts(console, "offline", "firing"), [])

        # The device goes away: after offline_after (3) failed polls its sensors are offline,
        # not after the stale rule's hour.
        press.kill()
        harness.wait_until(
            lambda: len(self.alerts(console, "offline", "firing")) >= len(EXPECTED), 30,
            what="offline alerts for press1's sensors")
        self.assertEqual({a["sensor"] for a in self.alerts(console, "offline", "firing")},
                         {"plant/press1/" + n for n in EXPECTED})
        # Back on the same port: the next good poll resolves them.
        self.server("modbus-press1-again", press_port, holding=HOLDING, input=[42],
                    coils=[1, 0, 0, 1], discrete=[0, 1])
        harness.wait_until(
            lambda: len(self.alerts(console, "offline", "resolved")) >= len(EXPECTED), 90,
            what="offline alerts resolved")
        agent.process.check_alive()


if __name__ == "__main__":
    harness.main()
