#!/usr/bin/env python3
"""SIGKILL in the middle of alert storms: every alert event the agent counted reaches the
console exactly once.

40 sensors cross the threshold together every 50 ms (firing, then resolved): 800 alert
events a second arriving in bursts, so that most wait for the group commit's window
(store.alert_commit_window) and share one outbox commit. The agent is killed 5 times at
random moments, whatever is waiting in memory; an event counts only once committed, so
none counted may be missing and none may arrive twice.
"""

import os
import random
import signal
import time

import fault_util
from fault_util import harness

KILLS = int(os.environ.get("EDGE_FAULT_KILLS", "5"))


class KillMidStormTest(harness.IntegrationTest):
    needs = ("agent", "console")

    def test_kills_mid_storm_lose_and_double_nothing(self):
        rng = random.Random(int(os.environ.get("EDGE_FAULT_SEED", "7")))
        mq = self.start_mosquitto()
        console = self.start_console()
        agent = self.start_agent(mq, console)
        agent.wait_ingesting()
        stream = fault_util.SteadyStream(mq.port, sensors=40, period=0.05, workdir=self.tmp,
                                         prefix="storm", cycle=(20, 90))
        stream.start()
        counted_firing = 0
        counted_resolved = 0
        shared = False
        start = time.monotonic()
        try:
            for _ in range(KILLS):
                time.sleep(rng.uniform(0.5, 1.5))
                m = agent.metrics()
                firing = agent.metric("edge_agent_alerts_raised_total", m)
                resolved = agent.metric("edge_agent_alerts_resolved_total", m)
                commits = agent.metric("edge_agent_store_commit_seconds_count", m, kind="outbox")
                # The storm's events share commits.
                shared = shared or (commits > 0 and firing + resolved > 2 * commits)
                counted_firing += firing
                counted_resolved += resolved
                agent.kill(signal.SIGKILL)
                agent.restart()
        finally:
            stream.stop()
        self.assertGreater(counted_firing, 40 * KILLS)
        self.assertTrue(shared, "no outbox commit carried more than two alert events")
        time.sleep(0.5)
        fault_util.wait_drained(agent, 60)
        m = agent.metrics()
        counted_firing += agent.metric("edge_agent_alerts_raised_total", m)
        counted_resolved += agent.metric("edge_agent_alerts_resolved_total", m)
        alerts = console.alerts(node="node-1", limit=10000)
        fault_util.check_exactly_once(self, alerts, counted_firing, counted_resolved)
        self.assertLess(fault_util.elapsed(start), 90)


if __name__ == "__main__":
    harness.main()
