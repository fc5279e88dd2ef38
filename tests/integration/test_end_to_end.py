#!/usr/bin/env python3
"""Readings over MQTT -> threshold rule -> outbox -> console: exactly the expected alerts."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

RULE = "overheat"  # harness.DEFAULT_POLICY: above 50, clear 45, for 0s, critical


class EndToEndTest(harness.IntegrationTest):
    needs = ("agent", "console")

    def test_threshold_alerts_reach_console(self):
        mq = self.start_mosquitto()
        console = self.start_console()
        agent = self.start_agent(mq, console)
        agent.wait_ingesting()
        m0 = agent.metrics()
        received0 = agent.metric("edge_agent_readings_received_total", _metrics=m0)
        raised0 = agent.metric("edge_agent_alerts_raised_total", _metrics=m0)

        t0 = harness.now_ms() - 120_000
        series = {
            # fires at 55, stays through 60/52 (above clear 45), resolves at 40,
            # fires again at 70 and resolves at 44.
            "sensors/a/temp": [20, 30, 55, 60, 52, 40, 20, 70, 44],
            # 47 and 46 are inside the hysteresis band: still firing until 30.
            "sensors/b/temp": [49, 51, 47, 46, 30],
            # No rule matches humidity: received, never alerted.
            "sensors/c/humidity": [99, 99],
        }
        messages = []
        ts_of = {}
        for topic, values in series.items():
            for i, v in enumerate(values):
                ts = t0 + i * 1000
                ts_of[(topic, v)] = ts
                messages.append((topic, harness.reading(v, ts)))
        harness.publish_many(mq.port, messages)

        expected = [
            ("sensors/a/temp", "firing", 55), ("sensors/a/temp", "resolved", 40),
            ("sensors/a/temp", "firing", 70), ("sensors/a/temp", "resolved", 44),
            ("sensors/b/temp", "firing", 51), ("sensors/b/temp", "resolved", 30),
        ]
        harness.wait_until(lambda: len(console.alerts(node="node-1")) >= len(expected), 30,
                           what="%d alerts at the console" % len(expected))
        harness.wait_until(lambda: agent.metric("edge_agent_outbox_pending") == 0, 10,
                           what="empty outbox")
        time.sleep(1.0)  # nothing else may trickle in
        alerts = console.alerts(node="node-1")

        self.assertEqual(len(alerts), len(expected), alerts)
        self.assertEqual(len({a["id"] for a in alerts}), len(alerts))
        got = sorted((a["sensor"], a["ts_ms"], a["state"], a["value"]) for a in alerts)
        want = sorted((s, ts_of[(s, v)], st, v) for s, st, v in expected)
        self.assertEqual(got, want)
        for a in alerts:
            self.assertEqual(a["rule"], RULE)
            self.assertEqual(a["severity"], "critical")
            self.assertEqual(a["node"], "node-1")
            self.assertTrue(a["id"].startswith("node-1:"), a["id"])
        # A resolved event belongs to the episode its firing event started.
        firing = {(a["sensor"], a["ts_ms"]) for a in alerts if a["state"] == "firing"}
        for a in alerts:
            if a["state"] == "resolved":
                self.assertIn((a["sensor"], a["started_ms"]), firing, a)

        m = agent.metrics()
        self.assertEqual(agent.metric("edge_agent_readings_received_total", _metrics=m) - received0,
                         sum(len(v) for v in series.values()))
        self.assertEqual(agent.metric("edge_agent_alerts_raised_total", _metrics=m) - raised0, 3)
        self.assertEqual(agent.metric("edge_agent_alerts_raised_total", _metrics=m, rule=RULE,
                                      severity="critical"), 3)
        if agent.has_metric("edge_agent_alerts_resolved_total", _metrics=m):
            self.assertEqual(agent.metric("edge_agent_alerts_resolved_total", _metrics=m), 3)
        self.assertEqual(agent.metric("edge_agent_readings_rejected_total", _metrics=m), 0)
        self.assertEqual(agent.metric("edge_agent_mqtt_connected", _metrics=m), 1)
        self.assertGreater(agent.metric("edge_agent_uploads_total", _metrics=m, result="ok"), 0)
        self.assertEqual(agent.metric("edge_agent_outbox_pending", _metrics=m), 0)

        nodes = {n["node"]: n for n in console.nodes()}
        self.assertEqual(nodes["node-1"]["alerts"], len(expected))


if __name__ == "__main__":
    harness.main()
