#!/usr/bin/env python3
"""A per-node storage quota at edge-console, and how a real agent lives with it.

Once a node's stored items reach --node-quota-bytes, new items are refused with 429 and a
Retry-After: the agent keeps the rows in its outbox and retries after the delay, without
dead-lettering anything and without spinning. Other nodes are not affected, and a batch of
items the console already holds (a lost acknowledgement) is still acknowledged.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

QUOTA = 4096


def other_item(node, seq, size=900):
    return {"id": "%s:00000000feedf00d:%d" % (node, seq), "kind": "other",
            "created_ms": harness.now_ms(), "payload": {"blob": "x" * size}}


def episodes(sensor, t0, count):
    out = []
    ts = t0
    for _ in range(count):
        for v in (20, 80, 30):
            out.append((sensor, harness.reading(v, ts)))
            ts += 1000
    return out


class ConsoleQuotaTest(harness.IntegrationTest):
    needs = ("console",)

    def batches(self, console, result):
        return console.metric("edge_console_batches_total", result=result)

    def test_items_beyond_the_quota_are_refused_with_429(self):
        console = self.start_console(nodes=("node-1", "node-2"),
                                     extra_args=["--node-quota-bytes", str(QUOTA)])
        stored = []
        seq = 0
        deadline = time.monotonic() + 20
        while True:
            self.assertLess(time.monotonic(), deadline)
            seq += 1
            item = other_item("node-1", seq)
            status, body = console.post_batch("node-1", [item])
            if status != 200:
                break
            stored.append(item)
        self.assertEqual(status, 429, body)
        self.assertIn("quota", body["error"])
        self.assertGreaterEqual(len(stored), 2)
        self.assertLess(len(stored), 6)
        # The same ids again (the agent lost an ack): acknowledged, nothing new stored.
        status, body = console.post_batch("node-1", stored)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["accepted"], 0)
        # Another node has its own quota.
        status, body = console.post_batch("node-2", [other_item("node-2", 1)])
        self.assertEqual(status, 200, body)
        self.assertEqual(self.batches(console, "over_quota"), 1)

        # The quota holds across a restart (the byte count is stored, not recounted).
        console.restart()
        status, _ = console.post_batch("node-1", [other_item("node-1", 1000)])
        self.assertEqual(status, 429)

    def test_agent_keeps_rows_and_backs_off_at_the_quota(self):
        self.needs_agent()
        mq = self.start_mosquitto()
        console = self.start_console(extra_args=["--node-quota-bytes", str(QUOTA)])
        agent = self.start_agent(mq, console)
        t0 = harness.now_ms() - 600_000
        harness.publish_many(mq.port, episodes("sensors/a/temp", t0, 1))
        harness.wait_until(lambda: len(console.alerts()) == 2, 30, what="first episode stored")
        harness.publish_many(mq.port, episodes("sensors/b/temp", t0 + 10_000, 19))
        harness.wait_until(lambda: agent.metric("edge_agent_alerts_raised_total") == 20
                           and agent.metric("edge_agent_alerts_resolved_total") == 20, 30,
                           what="20 episodes raised and resolved")
        harness.wait_until(lambda: self.batches(console, "over_quota") >= 1, 30,
                           what="a batch refused over quota")
        stored = len(console.alerts())
        self.assertLess(stored, 40)
        # The agent honours Retry-After (60 s, capped at the harness's console.backoff_max of
        # 2 s) instead of retrying at once: its delay is exactly the cap, not a jittered one.
        harness.wait_until(lambda: agent.metric("edge_agent_uplink_backoff_seconds") == 2.0, 10,
                           what="the agent backing off for Retry-After")
        first_refusal = self.batches(console, "over_quota")
        harness.wait_until(lambda: self.batches(console, "over_quota") > first_refusal, 10,
                           what="the agent retrying after the delay")
        self.assertEqual(agent.metric("edge_agent_outbox_dead_lettered_total"), 0)
        self.assertGreaterEqual(agent.metric("edge_agent_uploads_total", result="retry"), 1)
        self.assertEqual(len(console.alerts()), stored)

    def needs_agent(self):
        harness.require_binary(harness.EDGE_AGENT_BIN, "EDGE_AGENT_BIN")


if __name__ == "__main__":
    harness.main()
