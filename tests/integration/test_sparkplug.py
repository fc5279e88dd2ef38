#!/usr/bin/env python3
"""Sparkplug B end to end: a real mosquitto, the real console and agent, and an edge node
(sparkplug_node.py) that publishes NBIRTH, DBIRTH and DDATA by alias with its NDEATH as the
MQTT will. A Double metric of 95 raises the threshold alert; 300 DDATA cross the seq wrap
without a gap; the node killed with SIGKILL makes the broker publish the will, and the
stale rule fires for all its sensors at once (its `after` is an hour); the node's rebirth
resolves them. Malformed and out-of-order Sparkplug messages are counted, not fatal.
Needs python3-paho-mqtt (Debian's /usr/bin/python3)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

try:
    import paho.mqtt.client  # noqa: F401  pylint: disable=unused-import
    HAVE_PAHO = True
except ImportError:
    HAVE_PAHO = False

NODE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sparkplug_node.py")
POLICY = """\
rules:
  - id: hot
    match: "spBv1.0/+/+/+/Temperature"
    kind: threshold
    above: 90
    clear: 85
    severity: critical
  - id: offline
    match: "spBv1.0/#"
    kind: stale
    after: 1h
    severity: warning
"""
PREFIX = "spBv1.0/plant/press1/"
SENSORS = {PREFIX + "Uptime", PREFIX + "dev1/Temperature", PREFIX + "dev1/Speed"}


class SparkplugTest(harness.IntegrationTest):
    needs = ("agent", "console")

    def setUp(self):
        super().setUp()
        if not HAVE_PAHO:
            self.skipTest("python3-paho-mqtt is not installed")

    def edge_node(self, mq, bdseq, ddata, last_temperature):
        node = harness.Process(
            "sparkplug-node-%d" % bdseq,
            [sys.executable, NODE_SCRIPT, "--port", mq.port, "--bdseq", bdseq,
             "--ddata", ddata, "--last-temperature", last_temperature],
            os.path.join(self.tmp, "sparkplug-node-%d.log" % bdseq))
        self.own(node).start()
        harness.wait_until(lambda: "published" in node.log_text() or not node.alive(), 60,
                           what="the edge node's messages")
        node.check_alive()
        return node

    def alerts(self, console, rule, state):
        return [a for a in console.alerts(node="node-1")
                if a["rule"] == rule and a["state"] == state]

    def test_birth_data_death_and_rebirth(self):
        mq = self.start_mosquitto()
        console = self.start_console()
        agent = self.start_agent(mq, console, policy=POLICY, topics=("spBv1.0/#",))

        # Malformed and premature messages first: counted, and nothing breaks.
        harness.publish(mq.port, "spBv1.0/plant/NDATA/press1", "not protobuf \xff")
        harness.publish(mq.port, "spBv1.0/plant/NDATA/ghost", "")
        harness.wait_until(
            lambda: agent.metric("edge_agent_sparkplug_rejected_total", reason="before_birth") >= 1
            and agent.metric("edge_agent_sparkplug_rejected_total", reason="not_protobuf") >= 1,
            30, what="the two refused messages counted")

        node = self.edge_node(mq, bdseq=0, ddata=300, last_temperature=95)
        harness.wait_until(lambda: self.alerts(console, "hot", "firing"), 30,
                           what="the threshold alert on the Double metric of 95")
        hot = self.alerts(console, "hot", "firing")
        self.assertEqual(len(hot), 1, hot)
        self.assertEqual(hot[0]["sensor"], PREFIX + "dev1/Temperature")
        self.assertEqual(hot[0]["value"], 95)
        self.assertEqual(agent.metric("edge_agent_sparkplug_messages_total", type="DDATA"), 300)
        self.assertEqual(agent.metric("edge_agent_sparkplug_seq_gaps_total"), 0)
        self.assertEqual(agent.metric("edge_agent_sparkplug_nodes"), 1)
        self.assertEqual(self.alerts(console, "offline", "firing"), [])

        # The node dies without a DISCONNECT: the broker publishes its will (NDEATH).
        node.kill()
        harness.wait_until(lambda: len(self.alerts(console, "offline", "firing")) >= 3, 30,
                           what="offline alerts for the node's three sensors")
        offline = self.alerts(console, "offline", "firing")
        self.assertEqual({a["sensor"] for a in offline}, SENSORS)
        self.assertEqual(agent.metric("edge_agent_sparkplug_messages_total", type="NDEATH"), 1)
        self.assertEqual(agent.metric("edge_agent_sparkplug_nodes"), 0)

        # Its rebirth (the next session, bdSeq 1) brings the sensors back.
        self.edge_node(mq, bdseq=1, ddata=1, last_temperature=20)
        harness.wait_until(lambda: len(self.alerts(console, "offline", "resolved")) >= 3, 30,
                           what="the offline alerts resolved by the rebirth")
        self.assertEqual({a["sensor"] for a in self.alerts(console, "offline", "resolved")},
                         SENSORS)
        self.assertEqual(len(self.alerts(console, "offline", "firing")), 3)  # not again
        agent.process.check_alive()


if __name__ == "__main__":
    harness.main()
