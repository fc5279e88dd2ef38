#!/usr/bin/env python3
"""SIGKILL at random moments during a steady stream: 20 times, or EDGE_FAULT_KILLS
(`tools/test.sh --long` runs 100).

Zero alert events counted as raised are missing at the console, and none arrives twice.
"""

import os
import random
import signal
import time

import fault_util
from fault_util import harness

KILLS = int(os.environ.get("EDGE_FAULT_KILLS", "20"))


class KillLoopTest(harness.IntegrationTest):
    needs = ("agent", "console")

    def test_kills_lose_and_double_nothing(self):
        rng = random.Random(int(os.environ.get("EDGE_FAULT_SEED", "4")))
        mq = self.start_mosquitto()
        console = self.start_console()
        agent = self.start_agent(mq, console)
        agent.wait_ingesting()
        stream = fault_util.SteadyStream(mq.port, sensors=8, period=0.05, workdir=self.tmp,
                                         cycle=(20, 20, 20, 90, 25))
        stream.start()
        counted_firing = 0
        counted_resolved = 0
        start = time.monotonic()
        try:
            for _ in range(KILLS):
                time.sleep(rng.uniform(0.3, 2.0))
                m = agent.metrics()
                counted_firing += agent.metric("edge_agent_alerts_raised_total", m)
                counted_resolved += agent.metric("edge_agent_alerts_resolved_total", m)
                agent.kill(signal.SIGKILL)
                agent.restart()
        finally:
            stream.stop()
        self.assertGreater(counted_firing, KILLS)
        time.sleep(0.5)
        fault_util.wait_drained(agent, 60)
        m = agent.metrics()
        counted_firing += agent.metric("edge_agent_alerts_raised_total", m)
        counted_resolved += agent.metric("edge_agent_alerts_resolved_total", m)
        alerts = console.alerts(node="node-1")
        fault_util.check_exactly_once(self, alerts, counted_firing, counted_resolved)
        # Each kill loses at most what was committed after the last /metrics read.
        self.assertLessEqual(len(alerts), 2 * stream.sent)
        # About 2.5 s per cycle (the wait, the kill, the restart), 6 s allowed.
        self.assertLess(fault_util.elapsed(start), 6 * KILLS)


if __name__ == "__main__":
    harness.main()
