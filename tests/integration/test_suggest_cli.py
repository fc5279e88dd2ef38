#!/usr/bin/env python3
"""`edge-agent suggest --db` on the readings ring of a running agent: readings published over
MQTT and committed by the agent are read back through a second connection while the agent
runs, and a threshold set inside their noise is retuned to meet the budget."""

import json
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

POLICY = """\
rules:
  - id: hot
    match: "sensors/+/temp"
    kind: threshold
    above: 20.5
"""
READINGS = 600
START_MS = 1_700_000_000_000


class SuggestCliTest(harness.IntegrationTest):
    needs = ("agent",)

    def test_stored_readings_of_a_running_agent_are_tuned(self):
        mq = self.start_mosquitto()
        agent = self.start_agent(mq, policy=POLICY)
        agent.wait_ingesting()
        rng = random.Random(11)
        harness.publish_many(mq.port, [
            ("sensors/boiler/temp",
             json.dumps({"value": round(20 + rng.gauss(0, 0.5), 3), "ts": START_MS + i * 60_000}))
            for i in range(READINGS)])
        harness.wait_until(
            lambda: agent.metric("edge_agent_readings_stored_total") >= READINGS, 30,
            what="the readings committed to the ring")
        policy = os.path.join(self.tmp, "tune.yaml")
        with open(policy, "w") as f:
            f.write(POLICY)
        res = subprocess.run([harness.EDGE_AGENT_BIN, "suggest", "--policy", policy, "--db",
                              agent.db_path, "--budget", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                             check=False)
        out = res.stdout.decode()
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        # All the published readings (and the probe of wait_ingesting, another sensor).
        self.assertIn("# Backtest on %d readings of 2 sensor(s)" % (READINGS + 1), out)
        row = [line for line in out.splitlines() if line.startswith("| hot |")]
        self.assertEqual(len(row), 1, out)
        cells = [c.strip() for c in row[0].strip("|").split("|")]
        self.assertEqual(cells[2], "1")  # one sensor matched
        self.assertGreater(float(cells[5]), 1)  # alerts per sensor-day now: over the budget
        self.assertLessEqual(float(cells[8]), 1)  # suggested: within it
        self.assertEqual(cells[10], "yes")
        self.assertIn("@@ rule hot (threshold, sensors/+/temp) @@", out)
        self.assertTrue(any(line.startswith(("+    above: ", "+    for: "))
                            for line in out.splitlines()), out)
        agent.process.check_alive()


if __name__ == "__main__":
    harness.main()
