#!/usr/bin/env python3
"""The broker user name and password read from files (mqtt.username_file,
mqtt.password_file), with both clients, against a mosquitto with a password file and an ACL
that lets only that user read: the right pair connects and the agent receives; a wrong
password is refused at every attempt."""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PASSWD = shutil.which("mosquitto_passwd")
USER = "node-auth"
PASSWORD = "s3cret-pass"
CLIENTS = ("native", "paho")


class MqttAuthTest(harness.IntegrationTest):
    needs = ("agent",)

    def setUp(self):
        super().setUp()
        if PASSWD is None:
            self.skipTest("mosquitto_passwd is not installed")
        self.passwords = os.path.join(self.tmp, "passwords")
        subprocess.run([PASSWD, "-c", "-b", self.passwords, USER, PASSWORD], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def agent_with(self, mq, client, password):
        """An agent whose user name and password come from files (with a trailing newline, as
        a Secret often has)."""
        user_file = self.write("user-%s" % client, USER + "\n")
        pass_file = self.write("pass-%s-%s" % (client, password), password + "\n")
        agent = self.own(harness.Agent(self.tmp, mq, node_id="node-%s" % client))
        agent.process.env = dict(os.environ, EDGE_AGENT_MQTT_CLIENT=client,
                                 EDGE_AGENT_MQTT_USERNAME_FILE=user_file,
                                 EDGE_AGENT_MQTT_PASSWORD_FILE=pass_file)
        return agent

    def start_broker(self):
        # Anonymous clients (the tests' publishers) may connect and publish, not read; a
        # client that names a user must give its password, and only the user may read.
        acl = self.write("acl", "topic write sensors/#\n\nuser %s\ntopic read sensors/#\n" % USER)
        return self.start_mosquitto(extra_config=("password_file " + self.passwords,
                                                  "acl_file " + acl))

    def test_the_right_user_and_password_from_files_connect(self):
        for client in CLIENTS:
            with self.subTest(client=client):
                mq = self.start_broker()
                agent = self.agent_with(mq, client, PASSWORD).start()
                agent.wait_ingesting()
                self.assertEqual(agent.metric("edge_agent_mqtt_connected"), 1)

    def test_a_wrong_password_is_refused(self):
        for client in CLIENTS:
            with self.subTest(client=client):
                mq = self.start_broker()
                agent = self.agent_with(mq, client, "wrong").start(ready=False)

                def refused(a=agent):
                    try:  # the HTTP endpoint comes up shortly after the start
                        return a.metric("edge_agent_mqtt_connects_total", result="failed") >= 2
                    except OSError:
                        return False

                harness.wait_until(refused, 30, what="refused connection attempts")
                self.assertFalse(agent.ready())  # /readyz: mqtt not connected
                self.assertEqual(agent.metric("edge_agent_mqtt_connected"), 0)
                self.assertEqual(agent.metric("edge_agent_mqtt_connects_total", result="ok"), 0)


if __name__ == "__main__":
    harness.main()
