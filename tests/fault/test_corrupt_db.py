#!/usr/bin/env python3
"""A corrupt database file at start is moved aside and replaced; the agent runs."""

import glob
import os

from fault_util import harness


class CorruptDatabaseTest(harness.IntegrationTest):
    needs = ("agent", "console")

    def test_garbage_file_is_moved_aside_and_alerts_flow(self):
        mq = self.start_mosquitto()
        console = self.start_console()
        agent = self.own(harness.Agent(self.tmp, mq, console))
        with open(agent.db_path, "wb") as f:
            f.write(b"SQLite format 3\0" + os.urandom(16384))  # a header, then noise
        agent.start()
        agent.wait_ingesting()
        self.assertEqual(agent.metric("edge_agent_store_recoveries_total"), 1)
        self.assertEqual(len(glob.glob(agent.db_path + ".corrupt-*")), 1)
        harness.publish(mq.port, "sensors/c1/temp", harness.reading(99, harness.now_ms()))
        harness.wait_until(lambda: len(console.alerts(node="node-1")) == 1, 20, 0.2,
                           "the alert at the console")
        self.assertEqual(agent.get("/readyz")[0], 200)


if __name__ == "__main__":
    harness.main()
