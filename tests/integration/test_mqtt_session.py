#!/usr/bin/env python3
"""The broker session and reconnects, with both clients (mqtt.client native and paho) and a
real mosquitto: readings published with QoS 1 while the agent is stopped arrive once it is
back (persistent session, the default), and not with mqtt.clean_session: true; after the
broker restarts the agent is back within mqtt.backoff_max and counts and logs the gap."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

READINGS = 100
CLIENTS = ("native", "paho")


class MqttSessionTest(harness.IntegrationTest):
    needs = ("agent",)

    def start_agent_with(self, mq, client, **env):
        agent = self.own(harness.Agent(self.tmp, mq, node_id="node-" + client))
        agent.process.env = dict(os.environ, EDGE_AGENT_MQTT_CLIENT=client, **env)
        return agent.start()

    def received_while_stopped(self, client, **env):
        """Readings the agent receives after a restart, of READINGS published while it was
        stopped (SIGTERM)."""
        mq = self.start_mosquitto()
        agent = self.start_agent_with(mq, client, **env)
        agent.wait_ingesting()
        rc, _ = agent.terminate(timeout=15)
        self.assertEqual(rc, 0)
        harness.publish_many(mq.port, [("sensors/away-%d/temp" % (i % 10),
                                        harness.reading(20.0 + i, harness.now_ms()))
                                       for i in range(READINGS)])
        agent.start()
        harness.wait_until(lambda: agent.metric("edge_agent_mqtt_connected") == 1, 20,
                           what="the agent connected again")
        # Whatever the broker kept arrives right after the SUBACK: wait until the count
        # settles (a persistent session gives all of them; a clean one none).
        last, stable_since = -1, time.monotonic()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            n = agent.metric("edge_agent_readings_received_total")
            if n == READINGS:
                return n
            if n != last:
                last, stable_since = n, time.monotonic()
            elif time.monotonic() - stable_since > 3:
                break
            time.sleep(0.1)
        return agent.metric("edge_agent_readings_received_total")

    def test_readings_published_while_the_agent_is_stopped_arrive_after_its_restart(self):
        for client in CLIENTS:
            with self.subTest(client=client):
                self.assertEqual(self.received_while_stopped(client), READINGS)

    def test_a_clean_session_gets_nothing_of_what_was_published_while_stopped(self):
        for client in CLIENTS:
            with self.subTest(client=client):
                self.assertEqual(
                    self.received_while_stopped(client, EDGE_AGENT_MQTT_CLEAN_SESSION="true"), 0)

    def test_after_a_broker_restart_the_agent_is_back_within_backoff_max(self):
        for client in CLIENTS:
            with self.subTest(client=client):
                mq = self.start_mosquitto()
                agent = self.start_agent_with(mq, client, EDGE_AGENT_MQTT_BACKOFF_MAX="300ms")
                agent.wait_ingesting()
                stopped = time.monotonic()
                mq.stop()
                harness.wait_until(lambda: agent.metric("edge_agent_mqtt_connected") == 0, 20,
                                   0.02, what="the agent noticed the broker stopped")
                harness.wait_until(
                    lambda: agent.metric("edge_agent_mqtt_connects_total", result="failed") >= 5,
                    20, 0.02, what="five failed reconnect attempts")
                mq.start()
                up = time.monotonic()
                harness.wait_until(lambda: agent.metric("edge_agent_mqtt_connected") == 1, 20,
                                   0.02, what="the agent reconnected")
                # The cap is 300 ms (plus the connect and the SUBACK); after five failures
                # the default cap of 10 s would draw the next delay from 0 to 3.2 s.
                back = time.monotonic()
                self.assertLess(back - up, 2.0)
                gap = agent.metric("edge_agent_mqtt_disconnected_seconds_total")
                self.assertGreater(gap, 0.0)
                self.assertLessEqual(gap, back - stopped + 0.1)
                self.assertRegex(agent.process.log_text(),
                                 r"mqtt: reconnected to \S+ after \d+ ms without a connection "
                                 r"\(\d+ failed attempts\)")
                agent.wait_ingesting()


if __name__ == "__main__":
    harness.main()
