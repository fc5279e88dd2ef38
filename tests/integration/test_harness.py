#!/usr/bin/env python3
"""Checks of the harness itself: private broker, publishing helpers, metrics parser."""

import os
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class HarnessTest(harness.IntegrationTest):

    def test_broker_publish_and_publish_many(self):
        mq = self.start_mosquitto()
        sub = self.own(harness.Subscriber(self.tmp, mq.port, "t/#")).start()
        harness.publish(mq.port, "t/one", "21.5")
        harness.publish(mq.port, "t/bin", b"\xff\xfe\x00abc", qos=0)
        msgs = [("t/a", "%d" % i) for i in range(300)] + [("t/b", "x"), ("t/b", ""),
                                                             ("t/b", "two\nlines"), ("t/a", "end")]
        harness.publish_many(mq.port, msgs)
        want = 2 + len(msgs) + 1  # the two-line payload prints as two lines
        lines = harness.wait_until(lambda: len(sub.lines()) >= want and sub.lines(), 10,
                                   what="subscriber lines")
        self.assertEqual(lines[0], "t/one 21.5")
        a_values = [l.split(" ", 1)[1] for l in lines if l.startswith("t/a ")]
        self.assertEqual(a_values, ["%d" % i for i in range(300)] + ["end"])
        self.assertIn("t/b x", lines)

    def test_broker_stop_and_restart_on_same_port(self):
        mq = self.start_mosquitto()
        port, pid = mq.port, mq.process.pid
        self.assertTrue(harness.port_open(port))
        mq.stop()
        self.assertFalse(mq.alive())
        harness.wait_until(lambda: not harness.port_open(port), 5, what="port closed")
        mq.start()
        self.assertNotEqual(mq.process.pid, pid)
        harness.publish(port, "t/x", "1")

    def test_process_stop_escalates_to_sigkill(self):
        # A child that ignores SIGTERM is still stopped, and within the timeout.
        proc = self.own(harness.Process(
            "stubborn", [sys.executable, "-c",
                         "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                         "print('up', flush=True); time.sleep(60)"],
            os.path.join(self.tmp, "stubborn.log"))).start()
        harness.wait_until(lambda: "up" in proc.log_text().splitlines(), 10, what="child up")
        start = time.monotonic()
        rc = proc.stop(timeout=1)
        self.assertEqual(rc, -signal.SIGKILL)
        self.assertLess(time.monotonic() - start, 5)
        self.assertNotIn(proc.pid, harness._LIVE)  # pylint: disable=protected-access

    def test_free_port_is_bindable(self):
        port = harness.free_port()
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))

    def test_wait_until(self):
        self.assertEqual(harness.wait_until(lambda: 5, 1), 5)
        with self.assertRaises(TimeoutError):
            harness.wait_until(lambda: 0, 0.3, 0.05, "never")


class PrometheusParserTest(unittest.TestCase):

    def test_parse(self):
        text = "\n".join([
            "# HELP edge_agent_uploads_total Upload attempts by result",
            "# TYPE edge_agent_uploads_total counter",
            'edge_agent_uploads_total{result="ok"} 3',
            'edge_agent_uploads_total{result="retry"} 2 1700000000000',
            'odd{a="x,y}",b="q\\"uote\\\\"} 1.5e2',
            "edge_agent_outbox_pending 0",
            "edge_agent_mqtt_connected\t1",
            "",
        ])
        m = harness.parse_prometheus(text)
        self.assertEqual(m[("edge_agent_uploads_total", (("result", "ok"),))], 3.0)
        self.assertEqual(m[("edge_agent_uploads_total", (("result", "retry"),))], 2.0)
        self.assertEqual(m[("odd", (("a", "x,y}"), ("b", 'q"uote\\')))], 150.0)
        self.assertEqual(m[("edge_agent_outbox_pending", ())], 0.0)
        self.assertEqual(m[("edge_agent_mqtt_connected", ())], 1.0)
        agent = harness.Agent.__new__(harness.Agent)
        self.assertEqual(agent.metric("edge_agent_uploads_total", _metrics=m), 5.0)
        self.assertEqual(agent.metric("edge_agent_uploads_total", _metrics=m, result="retry"), 2.0)
        self.assertEqual(agent.metric("missing", _metrics=m), 0.0)


if __name__ == "__main__":
    harness.main()
