#!/usr/bin/env python3
"""A row the real console rejects (400) is dead-lettered by the agent; every other row flows.

The poison row is written into the agent's outbox with Python's sqlite3 while the console is
down (an alert payload without "rule", which edge-console refuses), between two waves of
real alerts, so that it sits in the middle of the backlog the agent drains afterwards.
"""

import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ALERT_PRIORITY = 2  # agent/include/edge/agent/store.h, Priority::kAlert


def episodes(sensor, t0, count):
    """`count` fire/resolve episodes on one sensor: 2*count alert events."""
    out = []
    ts = t0
    for _ in range(count):
        for v in (20, 80, 30):
            out.append((sensor, harness.reading(v, ts)))
            ts += 1000
    return out


def insert_poison(db_path):
    """One alert row the console rejects on its own; returns its sequence number."""
    payload = '{"node":"node-1","sensor":"sensors/poison/temp","severity":"critical",' \
              '"state":"firing","ts_ms":%d}' % harness.now_ms()
    conn = sqlite3.connect(db_path, timeout=10)
    try:
        with conn:
            cur = conn.execute(
                "INSERT INTO outbox(kind, priority, created_ms, payload) VALUES (?, ?, ?, ?)",
                ("alert", ALERT_PRIORITY, harness.now_ms(), payload))
            return cur.lastrowid
    finally:
        conn.close()


def query(db_path, sql):
    conn = sqlite3.connect(db_path, timeout=10)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


class DeadLetterTest(harness.IntegrationTest):
    needs = ("agent", "console")

    def test_poison_row_is_dead_lettered_and_the_rest_flows(self):
        mq = self.start_mosquitto()
        console = self.start_console()
        agent = self.start_agent(mq, console)
        agent.wait_ingesting()
        t0 = harness.now_ms() - 600_000

        console.stop()
        harness.publish_many(mq.port, episodes("sensors/a/temp", t0, 3))
        harness.wait_until(lambda: agent.metric("edge_agent_alerts_raised_total") == 3, 20,
                           what="first wave committed")
        poison_seq = insert_poison(agent.db_path)
        harness.publish_many(mq.port, episodes("sensors/b/temp", t0 + 100_000, 3))
        harness.wait_until(lambda: agent.metric("edge_agent_alerts_raised_total") == 6, 20,
                           what="second wave committed")
        seqs = [row[0] for row in query(agent.db_path, "SELECT seq FROM outbox ORDER BY seq")]
        self.assertIn(poison_seq, seqs)
        self.assertLess(seqs[0], poison_seq, "the poison row should sit inside the backlog")
        self.assertGreater(seqs[-1], poison_seq)

        console.start()  # same port, same database
        expected = 12  # 6 episodes, a firing and a resolved event each
        harness.wait_until(lambda: len(console.alerts()) >= expected, 30,
                           what="%d alerts at the console" % expected)
        harness.wait_until(
            lambda: agent.metric("edge_agent_outbox_dead_lettered_total", kind="alert",
                                 reason="malformed") == 1, 15, what="one dead-lettered row")
        harness.wait_until(lambda: query(agent.db_path, "SELECT count(*) FROM outbox")[0][0] == 0,
                           15, what="an empty outbox")

        alerts = console.alerts()
        ids = [a["id"] for a in alerts]
        self.assertEqual(len(ids), expected)
        self.assertEqual(len(set(ids)), expected, "duplicate ids at the console")
        self.assertFalse(any(i.endswith(":%d" % poison_seq) for i in ids))
        self.assertEqual({a["sensor"] for a in alerts}, {"sensors/a/temp", "sensors/b/temp"})

        dead = query(agent.db_path, "SELECT seq, kind, reason FROM dead_letter")
        self.assertEqual(len(dead), 1)
        self.assertEqual(dead[0][0], poison_seq)
        self.assertEqual(dead[0][1], "alert")
        self.assertIn("400", dead[0][2])
        self.assertIn("rule", dead[0][2])

        # The console counted the rejected batches (the whole batch, then halves).
        status, text = console.request("GET", "/metrics")
        self.assertEqual(status, 200)
        m = harness.parse_prometheus(text)
        self.assertGreaterEqual(m[("edge_console_batches_total", (("result", "malformed"),))], 1)
        self.assertGreaterEqual(m[("edge_console_batches_total", (("result", "accepted"),))], 2)
        self.assertGreaterEqual(agent.metric("edge_agent_uploads_total", result="rejected"), 1)
        self.assertTrue(agent.ready())

        # The queue keeps moving: a new alert after the poison is delivered too.
        harness.publish_many(mq.port, episodes("sensors/c/temp", t0 + 200_000, 1))
        harness.wait_until(lambda: len(console.alerts()) == expected + 2, 20,
                           what="an alert raised after the dead-lettering")
        time.sleep(0.5)
        self.assertEqual(
            agent.metric("edge_agent_outbox_dead_lettered_total", kind="alert", reason="malformed"),
            1)


if __name__ == "__main__":
    harness.main()
