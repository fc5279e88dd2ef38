#!/usr/bin/env python3
"""Console down for 20 s while alerts are raised: each arrives exactly once afterwards."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

OUTAGE_S = 20


def episodes(sensor, t0, count):
    """`count` fire/resolve episodes on one sensor: 2*count alert events."""
    out = []
    ts = t0
    for _ in range(count):
        for v in (20, 80, 30):
            out.append((sensor, harness.reading(v, ts)))
            ts += 1000
    return out


class ConsoleOutageTest(harness.IntegrationTest):
    needs = ("agent", "console")

    def test_outage_delivers_every_alert_once(self):
        mq = self.start_mosquitto()
        console = self.start_console()
        agent = self.start_agent(mq, console)
        agent.wait_ingesting()
        t0 = harness.now_ms() - 600_000

        # Before the outage: one episode, delivered normally.
        harness.publish_many(mq.port, episodes("sensors/pre/temp", t0, 1))
        harness.wait_until(lambda: len(console.alerts()) == 2, 20, what="2 alerts before outage")

        console.stop()
        down_at = time.monotonic()
        # During the outage: 6 sensors x 3 episodes, in two waves.
        for wave in range(2):
            msgs = []
            for s in range(6):
                msgs += episodes("sensors/s%d/temp" % s, t0 + 100_000 * (wave + 1), 3 - wave)
            harness.publish_many(mq.port, msgs)
            time.sleep(2)
        expected_raised = 1 + 6 * 3 + 6 * 2
        harness.wait_until(
            lambda: agent.metric("edge_agent_alerts_raised_total") == expected_raised, 20,
            what="%d alerts raised" % expected_raised)
        harness.wait_until(lambda: agent.metric("edge_agent_uploads_total", result="retry") > 0,
                           max(1.0, OUTAGE_S - (time.monotonic() - down_at)),
                           what="upload retries while the console is down")
        self.assertGreater(agent.metric("edge_agent_outbox_pending"), 0)
        self.assertTrue(agent.ready(), "console outage must not make the agent unready")
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))

        console.start()  # same port, same database
        total = 2 * expected_raised
        harness.wait_until(lambda: len(console.alerts()) >= total, 30,
                           what="%d alerts after the outage" % total)
        harness.wait_until(lambda: agent.metric("edge_agent_outbox_pending") == 0, 15,
                           what="empty outbox")
        time.sleep(1.0)

        alerts = console.alerts()
        m = agent.metrics()
        raised = agent.metric("edge_agent_alerts_raised_total", _metrics=m)
        ids = [a["id"] for a in alerts]
        self.assertEqual(len(ids), len(set(ids)), "duplicate ids at the console")
        self.assertEqual(len(alerts), total)
        self.assertEqual(sum(1 for a in alerts if a["state"] == "firing"), raised)
        self.assertEqual(raised, expected_raised)
        keys = [(a["rule"], a["sensor"], a["ts_ms"], a["state"]) for a in alerts]
        self.assertEqual(len(keys), len(set(keys)), "the same event stored twice")
        self.assertGreater(agent.metric("edge_agent_uploads_total", _metrics=m, result="retry"), 0)
        self.assertEqual(agent.metric("edge_agent_outbox_pending", _metrics=m), 0)


if __name__ == "__main__":
    harness.main()
