#!/usr/bin/env python3
"""Hot reload of the local policy file with the real agent and a real broker: a valid
change is applied without a restart and keeps the state of unchanged rules; an invalid
change is rejected, counted, and the running policy keeps firing."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

POLICY_V1 = """\
version: v1
rules:
  - {id: overheat, match: "sensors/+/temp", kind: threshold, above: 50, severity: critical}
"""

POLICY_V2 = """\
version: v2
rules:
  - {id: overheat, match: "sensors/+/temp", kind: threshold, above: 50, severity: critical}
  - {id: freezing, match: "sensors/+/temp", kind: threshold, below: 0}
"""

POLICY_BAD = """\
version: v3
rules:
  - {id: overheat, match: "sensors/+/temp", kind: threshold, above: 50, severity: critical}
  - {id: silent, match: "sensors/#", kind: stale, after: 5 minutes}
"""


class PolicyReloadTest(harness.IntegrationTest):
    needs = ("agent",)

    def write_policy(self, agent, text):
        # Replace by rename, as editors and configuration tools do.
        tmp = agent.policy_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, agent.policy_path)

    def test_valid_change_applied_with_state_kept_invalid_change_rejected(self):
        mq = self.start_mosquitto()
        agent = self.start_agent(mq, policy=POLICY_V1)
        agent.wait_ingesting()
        ts = [harness.now_ms() - 60_000]

        def send(value):
            ts[0] += 1000
            harness.publish(mq.port, "sensors/a/temp", harness.reading(value, ts[0]))

        def raised(rule):
            return agent.metric("edge_agent_alerts_raised_total", rule=rule)

        def resolved(rule):
            return agent.metric("edge_agent_alerts_resolved_total", rule=rule)

        send(60)
        harness.wait_until(lambda: raised("overheat") == 1, 20, what="overheat firing")
        self.assertEqual(agent.metric("edge_agent_policy_rules"), 1)

        # A valid change: one rule added, overheat unchanged.
        self.write_policy(agent, POLICY_V2)
        harness.wait_until(
            lambda: agent.metric("edge_agent_policy_reloads_total", result="applied") == 1,
            20, what="policy v2 applied")
        self.assertEqual(agent.metric("edge_agent_policy_rules"), 2)
        self.assertTrue(agent.alive())

        # overheat kept its firing episode: a hotter reading adds no second firing.
        send(70)
        send(-5)  # resolves overheat, fires the new rule
        harness.wait_until(lambda: raised("freezing") == 1, 20, what="new rule firing")
        harness.wait_until(lambda: resolved("overheat") == 1, 20, what="overheat resolved")
        self.assertEqual(raised("overheat"), 1)

        # An invalid change: rejected, counted, the running policy stays.
        self.write_policy(agent, POLICY_BAD)
        harness.wait_until(
            lambda: agent.metric("edge_agent_policy_reloads_total", result="rejected") == 1,
            20, what="invalid policy rejected")
        time.sleep(1.5)  # a few more polls: counted once, never applied
        self.assertEqual(agent.metric("edge_agent_policy_reloads_total", result="rejected"), 1)
        self.assertEqual(agent.metric("edge_agent_policy_reloads_total", result="applied"), 1)
        self.assertEqual(agent.metric("edge_agent_policy_rules"), 2)
        self.assertIn("5 minutes", agent.process.log_text())

        send(80)  # the old policy still fires
        harness.wait_until(lambda: raised("overheat") == 2, 20, what="overheat firing again")
        harness.wait_until(lambda: resolved("freezing") == 1, 20, what="freezing resolved")
        self.assertTrue(agent.alive())


if __name__ == "__main__":
    harness.main()
