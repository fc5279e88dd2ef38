#!/usr/bin/env python3
"""SIGKILL mid-burst: every alert counted as raised reaches the console, none twice."""

import collections
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SENSORS = 20
EPISODES = 15  # per sensor and burst


def burst(t0, episodes):
    msgs = []
    for s in range(SENSORS):
        ts = t0
        for _ in range(episodes):
            for v in (20, 90, 25):
                msgs.append(("sensors/k%d/temp" % s, harness.reading(v, ts)))
                ts += 1000
    return msgs


class AgentKillTest(harness.IntegrationTest):
    needs = ("agent", "console")

    def test_kill_9_then_restart(self):
        mq = self.start_mosquitto()
        console = self.start_console()
        agent = self.start_agent(mq, console)
        agent.wait_ingesting()
        t0 = harness.now_ms() - 3_600_000

        # Burst 1 completes, so the kill below lands on a database with history.
        first = SENSORS * EPISODES
        harness.publish_many(mq.port, burst(t0, EPISODES))
        harness.wait_until(lambda: agent.metric("edge_agent_alerts_raised_total") >= first, 30,
                           what="burst 1 raised")

        # Burst 2 in the background; kill while it is being processed.
        errors = []

        def publish_burst_2():
            try:
                harness.publish_many(mq.port, burst(t0 + 1_000_000, EPISODES))
            except Exception as e:  # pylint: disable=broad-except
                errors.append(e)

        publisher = threading.Thread(target=publish_burst_2, daemon=True)
        publisher.start()
        harness.wait_until(lambda: agent.metric("edge_agent_alerts_raised_total") > first + 10,
                           30, 0.02, what="burst 2 under way")
        raised_before_kill = agent.metric("edge_agent_alerts_raised_total")
        resolved_before_kill = agent.metric("edge_agent_alerts_resolved_total")
        agent.kill(signal.SIGKILL)
        publisher.join(60)
        self.assertFalse(errors, errors)
        self.assertGreater(raised_before_kill, first)

        agent.restart()
        # Firing events counted before the kill were committed: all must arrive.
        def delivered():
            alerts = console.alerts(node="node-1")
            firing = sum(1 for a in alerts if a["state"] == "firing")
            resolved = len(alerts) - firing
            return (firing >= raised_before_kill and resolved >= resolved_before_kill
                    and agent.metric("edge_agent_outbox_pending") == 0)

        harness.wait_until(delivered, 60, 0.5, what="pre-kill alerts at the console")
        time.sleep(1.5)
        alerts = console.alerts(node="node-1")

        ids = [a["id"] for a in alerts]
        dup_ids = [i for i, n in collections.Counter(ids).items() if n > 1]
        self.assertEqual(dup_ids, [], "ids stored twice")
        keys = collections.Counter((a["rule"], a["sensor"], a["ts_ms"], a["state"])
                                   for a in alerts)
        dups = [k for k, n in keys.items() if n > 1]
        self.assertEqual(dups, [], "events raised twice (re-processed after restart)")
        self.assertGreaterEqual(sum(1 for a in alerts if a["state"] == "firing"),
                                raised_before_kill)
        # Never more than the input can produce.
        self.assertLessEqual(len(alerts), 2 * 2 * SENSORS * EPISODES)


if __name__ == "__main__":
    harness.main()
