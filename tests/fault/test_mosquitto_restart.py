#!/usr/bin/env python3
"""mosquitto restarted: the agent reconnects and resubscribes by itself; the gap shows."""

import time

from fault_util import harness


class MosquittoRestartTest(harness.IntegrationTest):
    needs = ("agent",)

    def test_reconnects_resubscribes_and_counts_the_gap(self):
        mq = self.start_mosquitto()
        agent = self.start_agent(mq)
        agent.wait_ingesting()
        self.assertEqual(agent.metric("edge_agent_mqtt_connects_total", result="ok"), 1)
        mq.stop()
        harness.wait_until(lambda: agent.metric("edge_agent_mqtt_connected") == 0, 10, 0.1,
                           "the agent to notice the broker is gone")
        self.assertEqual(agent.get("/readyz")[0], 503)
        time.sleep(3)  # a gap long enough for failed attempts
        mq.start()
        harness.wait_until(lambda: agent.ready(), 30, 0.2, "ready again")
        m = agent.metrics()
        self.assertEqual(agent.metric("edge_agent_mqtt_connects_total", m, result="ok"), 2)
        self.assertGreaterEqual(agent.metric("edge_agent_mqtt_connects_total", m,
                                             result="failed"), 1)
        agent.wait_ingesting()  # the subscription came back with the connection


if __name__ == "__main__":
    harness.main()
