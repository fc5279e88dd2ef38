#!/usr/bin/env python3
"""Acknowledge after commit (mqtt.ack: commit, the native client's default), with a real
mosquitto and the agent killed for real:

- readings the broker delivered but the agent had not committed when it was killed
  (SIGKILL) arrive after the restart: the broker sends them again; with mqtt.ack: receipt
  they are lost;
- readings the agent committed whose acknowledgements never reached the broker (a TCP relay
  between them swallows what the agent sends) are sent again after the restart, recognised
  and not counted twice."""

import json
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

READINGS = 5  # fewer than the client's early-commit threshold (8 owed acks)


class Broker:
    """What harness.Agent needs of a broker: the URL it connects to, the port it publishes to."""

    def __init__(self, url, port):
        self.url = url
        self.port = port


class MqttAckTest(harness.IntegrationTest):
    needs = ("agent",)

    def agent(self, broker, commit_interval, **env):
        agent = self.own(harness.Agent(self.tmp, broker, node_id="node-ack",
                                       topics=("sensors/#", "ack/#"),
                                       store={"commit_interval": commit_interval}))
        agent.process.env = dict(os.environ, **env)
        return agent

    def stored(self, agent, sensor):
        """The readings of `sensor` in the agent's ring (GET /v1/readings)."""
        status, text = agent.get("/v1/readings?sensor=" + urllib.parse.quote(sensor, safe=""))
        self.assertEqual(status, 200, text)
        return json.loads(text)["readings"]

    def publish_readings(self, port, prefix):
        harness.publish_many(port, [("%s/s%d/temp" % (prefix, i), harness.reading(i, harness.now_ms()))
                                    for i in range(READINGS)])

    def received_after_a_kill(self, ack):
        """Readings of READINGS published, delivered and not committed when the agent was
        killed, that are in its ring after the restart."""
        mq = self.start_mosquitto()
        prefix = "ack/%s" % ack
        first = self.agent(mq, "30s", EDGE_AGENT_MQTT_ACK=ack).start()
        first.wait_ingesting()
        before = first.metric("edge_agent_readings_received_total")
        self.publish_readings(mq.port, prefix)
        harness.wait_until(
            lambda: first.metric("edge_agent_readings_received_total") >= before + READINGS,
            20, what="the agent received the readings")
        first.kill()
        second = self.agent(mq, "100ms", EDGE_AGENT_MQTT_ACK=ack).start()
        second.wait_ingesting()
        # Everything it received since the restart (a resend comes first) is committed.
        harness.wait_until(
            lambda: second.metric("edge_agent_readings_stored_total")
            >= second.metric("edge_agent_readings_received_total"), 20,
            what="the readings commit")
        return sum(len(self.stored(second, "%s/s%d/temp" % (prefix, i)))
                   for i in range(READINGS))

    def test_readings_not_committed_before_a_kill_arrive_after_the_restart(self):
        self.assertEqual(self.received_after_a_kill("commit"), READINGS)

    def test_with_ack_on_receipt_they_are_lost(self):
        self.assertEqual(self.received_after_a_kill("receipt"), 0)

    def test_committed_readings_sent_again_after_a_kill_are_not_counted_twice(self):
        mq = self.start_mosquitto()
        relay = harness.Relay(mq.port)
        self.addCleanup(relay.stop)
        first = self.agent(Broker(relay.url, mq.port), "100ms").start()
        first.wait_ingesting()
        relay.swallow.set()  # the broker hears nothing more from this agent
        self.publish_readings(mq.port, "ack/dup")
        harness.wait_until(
            lambda: sum(len(self.stored(first, "ack/dup/s%d/temp" % i))
                        for i in range(READINGS)) == READINGS,
            20, what="the readings committed")
        first.kill()
        second = self.agent(mq, "100ms").start()
        harness.wait_until(
            lambda: second.metric("edge_agent_mqtt_duplicates_total") >= READINGS, 20,
            what="the broker's resend recognised")
        second.wait_ingesting()
        self.assertEqual(second.metric("edge_agent_mqtt_duplicates_total"), READINGS)
        for i in range(READINGS):
            self.assertEqual(len(self.stored(second, "ack/dup/s%d/temp" % i)), 1)
        self.assertEqual(second.metric("edge_agent_readings_rejected_total"), 0)


if __name__ == "__main__":
    harness.main()
