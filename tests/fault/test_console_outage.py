#!/usr/bin/env python3
"""Console down for a minute while sensors keep publishing, then back.

Every alert event the agent counted arrives exactly once and the outbox drains to 0.
EDGE_FAULT_OUTAGE_S shortens the outage for local runs (default 60).
"""

import os
import time

import fault_util
from fault_util import harness

OUTAGE_S = float(os.environ.get("EDGE_FAULT_OUTAGE_S", "60"))


class ConsoleOutageTest(harness.IntegrationTest):
    needs = ("agent", "console")

    def test_alerts_counted_during_an_outage_arrive_exactly_once(self):
        mq = self.start_mosquitto()
        console = self.start_console()
        agent = self.start_agent(mq, console)
        agent.wait_ingesting()
        stream = fault_util.SteadyStream(mq.port, sensors=10, period=0.2, workdir=self.tmp)
        stream.start()
        try:
            harness.wait_until(lambda: agent.metric("edge_agent_alerts_raised_total") >= 10, 20,
                               what="alerts before the outage")
            console.stop()
            down_at = time.monotonic()
            raised_at_stop = agent.metric("edge_agent_alerts_raised_total")
            time.sleep(OUTAGE_S)
            pending = agent.metric("edge_agent_outbox_pending")
            raised_during = agent.metric("edge_agent_alerts_raised_total") - raised_at_stop
            self.assertGreater(raised_during, 0)
            self.assertGreater(pending, 0, "nothing buffered while the console was down")
            console.restart()
            self.assertGreaterEqual(fault_util.elapsed(down_at), OUTAGE_S)
        finally:
            stream.stop()
        time.sleep(0.5)  # the last readings reach the pipeline
        fault_util.wait_drained(agent, 30)
        m = agent.metrics()
        raised = agent.metric("edge_agent_alerts_raised_total", m)
        resolved = agent.metric("edge_agent_alerts_resolved_total", m)
        alerts = console.alerts(node="node-1")
        fault_util.check_exactly_once(self, alerts, raised, resolved)
        self.assertEqual(len(alerts), raised + resolved)
        self.assertEqual(agent.metric("edge_agent_alerts_dropped_total", m), 0)


if __name__ == "__main__":
    harness.main()
