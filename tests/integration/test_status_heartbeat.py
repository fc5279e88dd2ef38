#!/usr/bin/env python3
"""The agent's status heartbeat reaches the real console and shows up in GET /v1/nodes."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

POLICY = "version: it-policy-7\n" + harness.DEFAULT_POLICY


class StatusHeartbeatTest(harness.IntegrationTest):
    needs = ("agent", "console")

    def node_status(self, console):
        for node in console.nodes():
            if node["node"] == "node-1" and node["status"] is not None:
                return node
        return None

    def test_heartbeat_shows_up_in_nodes(self):
        mq = self.start_mosquitto()
        console = self.start_console(nodes=("node-1", "node-2"))
        agent = self.start_agent(mq, console, policy=POLICY,
                                 extra_config="sync:\n  status_interval: 1s\n")
        agent.wait_ingesting()

        first = harness.wait_until(lambda: self.node_status(console), 15,
                                   what="a status for node-1 in /v1/nodes")
        status = first["status"]
        self.assertIsInstance(status["agent_version"], str)
        self.assertTrue(status["agent_version"])
        self.assertEqual(status["policy_version"], "it-policy-7")
        self.assertEqual(status["policy_rules"], 1)
        self.assertGreaterEqual(status["uptime_s"], 0)
        self.assertIsInstance(status["mqtt_connected"], bool)
        self.assertGreater(status["db_bytes"], 0)
        for section in ("backlog", "evicted", "dead_lettered"):
            self.assertTrue(set(status[section]).issuperset({"alert", "rollup", "status"}),
                            section)
        self.assertEqual(set(status["drops"]), {"queue_full", "rejected", "alerts"})
        self.assertIsNotNone(first["last_seen_ms"])
        self.assertGreaterEqual(first["last_seen_ms"], first["status_ms"])

        # Garbage on MQTT shows up as a drop in a later heartbeat, which replaces the first.
        harness.publish(mq.port, "sensors/x/temp", "not a number")
        later = harness.wait_until(
            lambda: (lambda n: n if n and n["status"]["drops"]["rejected"] >= 1
                     and n["status"]["mqtt_connected"] else None)(self.node_status(console)),
            15, what="a later status counting the rejected message")
        self.assertGreater(later["status_ms"], first["status_ms"])
        self.assertGreaterEqual(later["status"]["uptime_s"], status["uptime_s"])
        self.assertGreater(agent.metric("edge_agent_status_reports_total", result="ok"), 1)

        # A reloaded policy is reported by the next heartbeats.
        with open(agent.policy_path + ".tmp", "w") as f:
            f.write(POLICY.replace("it-policy-7", "it-policy-8"))
        os.replace(agent.policy_path + ".tmp", agent.policy_path)
        harness.wait_until(
            lambda: (self.node_status(console) or {}).get("status", {}).get("policy_version")
            == "it-policy-8", 20, what="the reloaded policy version in a status")

        # node-2 never reported.
        other = [n for n in console.nodes() if n["node"] == "node-2"][0]
        self.assertIsNone(other["status"])
        self.assertIsNone(other["status_ms"])

        # The dashboard shows the reported versions.
        status_code, raw, _ = harness.http_request(console.url + "/", token=console.admin_token)
        self.assertEqual(status_code, 200)
        html = raw.decode("utf-8")
        self.assertIn("it-policy-8", html)
        self.assertIn(status["agent_version"], html)


if __name__ == "__main__":
    harness.main()
