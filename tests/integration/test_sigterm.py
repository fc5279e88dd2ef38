#!/usr/bin/env python3
"""SIGTERM: exit 0 within 5 s, an alert raised just before is not lost, and the readings
waiting in open blocks are written."""

import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

STOP_LIMIT_S = 5.0


class SigtermTest(harness.IntegrationTest):
    needs = ("agent", "console")

    def raise_alert_then_sigterm(self, mq, agent, ts):
        harness.publish(mq.port, "sensors/t/temp", harness.reading(88.5, ts))
        harness.wait_until(lambda: agent.metric("edge_agent_alerts_raised_total") == 1, 15, 0.02,
                           what="alert raised")
        rc, elapsed = agent.terminate(timeout=15)
        self.assertEqual(rc, 0, "exit code after SIGTERM")
        self.assertLess(elapsed, STOP_LIMIT_S, "seconds to stop after SIGTERM")

    def assert_one_alert(self, console, ts):
        alerts = console.alerts(node="node-1")
        self.assertEqual(len(alerts), 1, alerts)
        self.assertEqual((alerts[0]["sensor"], alerts[0]["state"], alerts[0]["value"],
                          alerts[0]["ts_ms"]), ("sensors/t/temp", "firing", 88.5, ts))

    def test_sigterm_with_console_up(self):
        mq = self.start_mosquitto()
        console = self.start_console()
        agent = self.start_agent(mq, console)
        agent.wait_ingesting()
        ts = harness.now_ms()
        self.raise_alert_then_sigterm(mq, agent, ts)
        if len(console.alerts()) == 0:
            # Not uploaded before the stop: it must have been committed and go out now.
            agent.restart()
            harness.wait_until(lambda: console.alerts(), 20, what="alert after restart")
            harness.wait_until(lambda: agent.metric("edge_agent_outbox_pending") == 0, 10,
                               what="empty outbox")
        self.assert_one_alert(console, ts)

    def test_sigterm_while_console_down(self):
        # Shutdown must not wait for an uplink in backoff; the alert waits on disk.
        mq = self.start_mosquitto()
        console = self.start_console()
        agent = self.start_agent(mq, console)
        agent.wait_ingesting()
        console.stop()
        ts = harness.now_ms()
        self.raise_alert_then_sigterm(mq, agent, ts)

        console.start()
        agent.restart()
        harness.wait_until(lambda: console.alerts(), 20, what="alert after restart")
        harness.wait_until(lambda: agent.metric("edge_agent_outbox_pending") == 0, 10,
                           what="empty outbox")
        self.assert_one_alert(console, ts)
        # The restarted agent re-raises nothing.
        self.assertEqual(agent.metric("edge_agent_alerts_raised_total"), 0)

    def test_sigterm_writes_every_open_reading_block(self):
        # Readings wait in per-sensor open blocks, kept durable by the journal, until a block
        # fills or ages (15 s and more); a clean stop writes them all and empties the journal.
        mq = self.start_mosquitto()
        agent = self.start_agent(mq)
        agent.wait_ingesting()
        base = agent.metric("edge_agent_readings_stored_total")
        ts = harness.now_ms() - 120_000
        messages = [("sensors/s%d/temp" % (i % 5), harness.reading(20.0 + i, ts + i * 100))
                    for i in range(50)]
        harness.publish_many(mq.port, messages)
        harness.wait_until(
            lambda: agent.metric("edge_agent_readings_stored_total") - base == len(messages), 15,
            what="readings committed")
        db = sqlite3.connect(agent.db_path)
        try:
            journal_before = db.execute("SELECT count(*) FROM reading_journal").fetchone()[0]
        finally:
            db.close()
        self.assertGreater(journal_before, 0, "readings still in open blocks before the stop")

        rc, elapsed = agent.terminate(timeout=15)
        self.assertEqual(rc, 0, "exit code after SIGTERM")
        self.assertLess(elapsed, STOP_LIMIT_S, "seconds to stop after SIGTERM")
        db = sqlite3.connect(agent.db_path)
        try:
            journal = db.execute("SELECT count(*) FROM reading_journal").fetchone()[0]
            blocks = db.execute(
                "SELECT s.name, sum(b.n) FROM reading_blocks b JOIN sensors s ON s.id = b.sensor"
                " WHERE s.name LIKE 'sensors/s%' GROUP BY s.name ORDER BY s.name").fetchall()
        finally:
            db.close()
        self.assertEqual(journal, 0, "journal rows left after a clean stop")
        self.assertEqual(blocks, [("sensors/s%d/temp" % i, 10) for i in range(5)])


if __name__ == "__main__":
    harness.main()
