#!/usr/bin/env python3
"""edge-console on its own: batches, dedupe, auth, queries, restart on the same db."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def alert_item(node, seq, state="firing", value=97.5, ts_ms=None, rule="boiler-overheat",
               sensor="plant/boiler1/temp"):
    ts_ms = ts_ms or harness.now_ms()
    started = ts_ms - 10_000
    return {
        "id": "%s:00000000deadbeef:%d" % (node, seq),
        "kind": "alert",
        "created_ms": ts_ms,
        "payload": {
            "node": node,
            "rule": rule,
            "sensor": sensor,
            "severity": "critical",
            "state": state,
            "value": value,
            "ts_ms": ts_ms,
            "started_ms": started,
            "episode": "%s|%s|%d" % (rule, sensor, started),
            "context": [[ts_ms - 1000, value - 1], [ts_ms, value]],
        },
    }


class ConsoleTest(harness.IntegrationTest):
    needs = ("console",)

    def setUp(self):
        super().setUp()
        self.console = self.start_console(nodes=("node-1", "node-2"))

    def test_batches_are_stored_once_and_read_back(self):
        c = self.console
        t0 = harness.now_ms() - 60_000
        first = [alert_item("node-1", 1, ts_ms=t0), alert_item("node-1", 2, "resolved", 40.0,
                                                               ts_ms=t0 + 1000)]
        status, body = c.post_batch("node-1", first)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["accepted"], 2)
        self.assertEqual(body["duplicates"], 0)
        self.assertEqual(sorted(body["acked"]), sorted(i["id"] for i in first))

        # Re-sending (at-least-once) is acknowledged but not stored twice.
        second = first + [alert_item("node-1", 3, ts_ms=t0 + 2000)]
        status, body = c.post_batch("node-1", second)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["accepted"], 1)
        self.assertEqual(body["duplicates"], 2)
        self.assertEqual(sorted(body["acked"]), sorted(i["id"] for i in second))

        alerts = c.alerts(node="node-1")
        self.assertEqual([a["id"] for a in alerts], [i["id"] for i in second])
        a = alerts[1]
        self.assertEqual(a["state"], "resolved")
        self.assertEqual(a["value"], 40.0)
        self.assertEqual(a["rule"], "boiler-overheat")
        self.assertEqual(a["sensor"], "plant/boiler1/temp")
        self.assertEqual(a["node"], "node-1")
        self.assertEqual(a["ts_ms"], t0 + 1000)
        self.assertIn("received_ms", a)

        self.assertEqual([x["id"] for x in c.alerts(since=t0 + 1000)],
                         [i["id"] for i in second[1:]])
        self.assertEqual(c.alerts(node="node-2"), [])

        nodes = {n["node"]: n for n in c.nodes()}
        self.assertEqual(nodes["node-1"]["alerts"], 3)
        self.assertIsNotNone(nodes["node-1"]["last_seen_ms"])
        self.assertEqual(nodes["node-2"]["alerts"], 0)
        self.assertIsNone(nodes["node-2"]["last_seen_ms"])

    def test_auth(self):
        c = self.console
        batch = {"node": "node-1", "sent_ms": harness.now_ms(),
                 "items": [alert_item("node-1", 7)]}
        self.assertEqual(c.request("POST", "/v1/batches", body=batch)[0], 401)
        self.assertEqual(c.request("POST", "/v1/batches", token="nope", body=batch)[0], 401)
        self.assertEqual(c.request("GET", "/v1/alerts")[0], 401)
        self.assertEqual(c.request("GET", "/v1/alerts", token="nope")[0], 401)
        # A node token may not read as admin nor write as another node.
        self.assertEqual(c.request("GET", "/v1/alerts", token=c.tokens["node-1"])[0], 403)
        self.assertEqual(c.request("GET", "/v1/nodes", token=c.tokens["node-1"])[0], 403)
        status, _ = c.post_batch("node-2", [alert_item("node-2", 1)], token=c.tokens["node-1"])
        self.assertEqual(status, 403)
        self.assertEqual(c.alerts(), [])
        self.assertEqual(c.request("GET", "/healthz")[0], 200)

    def test_malformed_batches(self):
        c = self.console
        tok = c.tokens["node-1"]
        status, _ = c.request("POST", "/v1/batches", token=tok, body=b"{not json",
                              headers={"Content-Type": "application/json"})
        self.assertEqual(status, 400)
        status, _ = c.request("POST", "/v1/batches", token=tok, body={"node": "node-1"})
        self.assertEqual(status, 400)
        self.assertEqual(c.alerts(), [])

    def test_restart_keeps_data_port_and_dedupe(self):
        c = self.console
        items = [alert_item("node-1", i) for i in range(1, 6)]
        self.assertEqual(c.post_batch("node-1", items)[0], 200)
        port = c.port
        c.restart()
        self.assertEqual(c.port, port)
        self.assertEqual(len(c.alerts()), 5)
        status, body = c.post_batch("node-1", items)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["accepted"], 0)
        self.assertEqual(body["duplicates"], 5)
        self.assertEqual(len(c.alerts()), 5)


if __name__ == "__main__":
    harness.main()
