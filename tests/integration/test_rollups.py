#!/usr/bin/env python3
"""Per-sensor rollups computed by the agent reach the real console and GET /v1/rollups."""

import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SENSOR = "sensors/r1/level"


class RollupsTest(harness.IntegrationTest):
    needs = ("agent", "console")

    def test_rollups_reach_the_console(self):
        # Environment beats the config file; the agent inherits this process's environment.
        os.environ["EDGE_AGENT_STORE_ROLLUP_INTERVAL"] = "1s"
        mq = self.start_mosquitto()
        console = self.start_console()
        agent = self.start_agent(mq, console)
        agent.wait_ingesting()

        values = [10.0, 12.5, 11.0, 9.5]
        deadline = time.monotonic() + 3
        sent = 0
        while time.monotonic() < deadline:
            harness.publish_many(mq.port, [(SENSOR, str(v)) for v in values])
            sent += len(values)
            time.sleep(0.5)

        def rollups():
            path = "/v1/rollups?" + urllib.parse.urlencode({"node": "node-1", "sensor": SENSOR})
            status, body = console.request("GET", path, token=console.admin_token)
            self.assertEqual(status, 200, body)
            return body if sum(r["count"] for r in body) == sent else None

        got = harness.wait_until(rollups, 20, what="rollups covering %d readings" % sent)
        for r in got:
            self.assertEqual(r["node"], "node-1")
            self.assertEqual(r["sensor"], SENSOR)
            self.assertLessEqual(r["start_ms"], r["end_ms"])
            self.assertGreaterEqual(r["min"], 9.5)
            self.assertLessEqual(r["max"], 12.5)
            self.assertLessEqual(r["min"], r["mean"])
            self.assertLessEqual(r["mean"], r["max"])
            self.assertTrue(r["id"].startswith("node-1:"))
        starts = [r["start_ms"] for r in got]
        self.assertEqual(starts, sorted(starts))
        self.assertEqual(len({r["id"] for r in got}), len(got))
        # Rollups are not alerts.
        self.assertEqual([a for a in console.alerts() if a["sensor"] == SENSOR], [])


if __name__ == "__main__":
    harness.main()
