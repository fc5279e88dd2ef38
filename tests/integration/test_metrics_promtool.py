#!/usr/bin/env python3
"""GET /metrics is valid Prometheus text: `promtool check metrics` reports nothing."""

import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PROMTOOL = shutil.which("promtool")

FAMILIES = [
    "edge_agent_readings_received_total",
    "edge_agent_readings_rejected_total",
    "edge_agent_alerts_raised_total",
    "edge_agent_outbox_pending",
    "edge_agent_uploads_total",
    "edge_agent_mqtt_connected",
]


@unittest.skipUnless(PROMTOOL, "promtool not found (Debian package `prometheus`); "
                     "cannot lint /metrics")
class MetricsPromtoolTest(harness.IntegrationTest):
    needs = ("agent", "console")

    def test_metrics_pass_promtool(self):
        mq = self.start_mosquitto()
        console = self.start_console()
        agent = self.start_agent(mq, console)
        agent.wait_ingesting()
        # Give labelled series something to show: an alert, a rejection, an upload.
        ts = harness.now_ms()
        harness.publish_many(mq.port, [("sensors/m/temp", harness.reading(v, ts + i * 1000))
                                       for i, v in enumerate((20, 99, 10))])
        harness.publish(mq.port, "sensors/m/temp", "not a number")
        harness.wait_until(lambda: len(console.alerts()) == 2, 20, what="alerts uploaded")

        status, body, headers = harness.http_request(agent.url + "/metrics")
        self.assertEqual(status, 200)
        ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        self.assertTrue(ctype.startswith("text/plain"), ctype)
        text = body.decode("utf-8")

        res = subprocess.run([PROMTOOL, "check", "metrics"], input=body,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30,
                             check=False)
        output = res.stdout.decode("utf-8", "replace").strip()
        self.assertEqual(res.returncode, 0, output)
        self.assertEqual(output, "", "promtool found problems:\n" + output)

        m = harness.parse_prometheus(text)
        names = {n for n, _ in m}
        for family in FAMILIES:
            self.assertIn(family, names)
            self.assertIn("# TYPE %s " % family, text)
            self.assertIn("# HELP %s " % family, text)
        self.assertEqual(agent.metric("edge_agent_alerts_raised_total", _metrics=m), 1)
        self.assertGreaterEqual(agent.metric("edge_agent_readings_rejected_total", _metrics=m), 1)


if __name__ == "__main__":
    harness.main()
