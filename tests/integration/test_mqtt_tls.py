#!/usr/bin/env python3
"""MQTT over TLS, with both clients (mqtt.client native and paho): a broker whose
certificate, signed by the trusted CA, names another host is refused (no connection, no
reading); with a certificate for localhost/127.0.0.1 the agent connects and receives.
The CA and the certificates are made with openssl in the test's directory."""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

OPENSSL = shutil.which("openssl")
TOPIC = "sensors/tls/temp"


class TlsMosquitto(harness.Mosquitto):
    """A mosquitto whose one listener speaks TLS with the given certificate."""

    def __init__(self, workdir, ca, cert, key):
        super().__init__(workdir, extra_config=("cafile " + ca, "certfile " + cert,
                                                "keyfile " + key))

    @property
    def url(self):
        return "ssl://localhost:%d" % self.port


class MtlsMosquitto(TlsMosquitto):
    """A TLS mosquitto that requires a client certificate signed by the CA and takes its
    common name as the user name that `acl` applies to."""

    def __init__(self, workdir, ca, cert, key, acl):
        harness.Mosquitto.__init__(
            self, workdir, extra_config=("cafile " + ca, "certfile " + cert, "keyfile " + key,
                                         "require_certificate true",
                                         "use_identity_as_username true", "acl_file " + acl))


class MqttTlsTest(harness.IntegrationTest):
    needs = ("agent",)

    def setUp(self):
        super().setUp()
        if OPENSSL is None:
            self.skipTest("openssl is not installed")
        self.ca_key = os.path.join(self.tmp, "ca.key")
        self.ca = os.path.join(self.tmp, "ca.pem")
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-nodes", "-keyout", self.ca_key, "-out", self.ca, "-days", "2", "-subj",
                     "/CN=edge test CA")

    def openssl(self, *args):
        subprocess.run([OPENSSL] + list(args), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)

    def server_cert(self, name, san):
        """(cert, key) signed by the test CA for subjectAltName `san`."""
        key = os.path.join(self.tmp, name + ".key")
        csr = os.path.join(self.tmp, name + ".csr")
        cert = os.path.join(self.tmp, name + ".pem")
        ext = os.path.join(self.tmp, name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\n" % san)
        self.openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", key, "-out", csr, "-subj", "/CN=" + name)
        self.openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                     "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext)
        return cert, key

    def start_tls_broker(self, name, san):
        cert, key = self.server_cert(name, san)
        return self.own(TlsMosquitto(self.tmp, self.ca, cert, key)).start()

    def start_agent(self, mq, client, node_id=None, topics=("sensors/#",), **env):
        agent = self.own(harness.Agent(self.tmp, mq, node_id=node_id or "node-" + client,
                                       topics=topics))
        agent.process.env = dict(os.environ, EDGE_AGENT_MQTT_CLIENT=client,
                                 EDGE_AGENT_MQTT_CA_FILE=self.ca, **env)
        return agent.start(ready=False)

    def publish_tls(self, mq, value, insecure=False):
        """One retained reading over TLS: a client that connects later still gets it."""
        argv = [harness.MOSQUITTO_PUB_BIN, "-h", "localhost", "-p", str(mq.port), "--cafile",
                self.ca, "-q", "1", "-r", "-t", TOPIC, "-m", harness.reading(value, 1)]
        if insecure:
            argv.append("--insecure")  # this test's publisher only: the name is wrong
        subprocess.run(argv, check=True, timeout=30)

    def test_certificate_for_another_host_is_refused(self):
        for client in ("paho", "native"):
            with self.subTest(client=client):
                mq = self.start_tls_broker("elsewhere-" + client, "DNS:broker.example")
                self.publish_tls(mq, 21.5, insecure=True)
                agent = self.start_agent(mq, client)

                def attempts():
                    agent.process.check_alive()
                    try:
                        m = agent.metrics()
                    except OSError:  # the HTTP port is not up yet
                        return False
                    return (agent.metric("edge_agent_mqtt_connects_total", m, result="ok") or
                            agent.metric("edge_agent_mqtt_connects_total", m,
                                         result="failed") >= 3)

                harness.wait_until(attempts, 20, 0.1, what="three connection attempts")
                m = agent.metrics()
                self.assertEqual(agent.metric("edge_agent_mqtt_connects_total", m, result="ok"),
                                 0, "%s connected to a broker with another host's certificate"
                                 % client)
                self.assertEqual(agent.metric("edge_agent_mqtt_connected", m), 0)
                self.assertEqual(agent.metric("edge_agent_readings_received_total", m), 0)

    def test_certificate_for_this_host_connects_and_delivers(self):
        for client in ("paho", "native"):
            with self.subTest(client=client):
                mq = self.start_tls_broker("server-" + client, "DNS:localhost,IP:127.0.0.1")
                self.publish_tls(mq, 22.5)
                agent = self.start_agent(mq, client)
                agent.wait_ready(20)
                harness.wait_until(
                    lambda: agent.metric("edge_agent_readings_received_total") >= 1, 15, 0.1,
                    what="the retained reading over TLS")


    def test_a_broker_requiring_certificates_admits_each_node_by_its_own_under_its_acl(self):
        server_cert, server_key = self.server_cert("server-mtls", "DNS:localhost,IP:127.0.0.1")
        pub_cert, pub_key = self.server_cert("publisher", "DNS:publisher")
        acl = os.path.join(self.tmp, "acl")
        with open(acl, "w") as f:
            f.write("user publisher\ntopic write #\n\npattern read sites/%u/#\n")
        mq = self.own(MtlsMosquitto(self.tmp, self.ca, server_cert, server_key, acl)).start()

        def publish(topic, value, retain=False):
            argv = [harness.MOSQUITTO_PUB_BIN, "-h", "localhost", "-p", str(mq.port),
                    "--cafile", self.ca, "--cert", pub_cert, "--key", pub_key, "-q", "1",
                    "-t", topic, "-m", harness.reading(value, harness.now_ms())]
            subprocess.run(argv + (["-r"] if retain else []), check=True, timeout=30)

        for client in ("paho", "native"):
            with self.subTest(client=client):
                node = "mtls-" + client
                cert, key = self.server_cert(node, "DNS:" + node)
                # Retained readings for this node, for another node and for no node.
                for topic in ("sites/%s/temp" % node, "sites/mtls-other/temp", "sites/x"):
                    publish(topic, 20.5, retain=True)

                # Without a certificate: refused at the handshake, again and again.
                bare = self.start_agent(mq, client, node_id=node + "-bare",
                                        topics=("sites/#",))
                def refused_twice():
                    bare.process.check_alive()
                    try:
                        return bare.metric("edge_agent_mqtt_connects_total", result="failed") >= 2
                    except OSError:  # the HTTP port is not up yet
                        return False

                harness.wait_until(refused_twice, 20, 0.1,
                                   what="two refused connects without a certificate")
                self.assertEqual(bare.metric("edge_agent_mqtt_connects_total", result="ok"), 0)
                bare.stop()

                # With its certificate: connected, and only its own topics are delivered.
                agent = self.start_agent(mq, client, node_id=node, topics=("sites/#",),
                                         EDGE_AGENT_MQTT_CERT_FILE=cert,
                                         EDGE_AGENT_MQTT_KEY_FILE=key)
                def received_own():
                    agent.process.check_alive()
                    try:
                        return agent.metric("edge_agent_readings_received_total") >= 1
                    except OSError:
                        return False

                harness.wait_until(received_own, 20, 0.1, what="the node's own retained reading")
                # One more on its own topic: by the time it is counted, anything else the
                # broker would have delivered (the retained ones came first) is counted too.
                publish("sites/%s/temp" % node, 21.5)
                harness.wait_until(
                    lambda: agent.metric("edge_agent_readings_received_total") >= 2, 20, 0.1,
                    what="the node's second reading")
                self.assertEqual(agent.metric("edge_agent_readings_received_total"), 2)
                self.assertEqual(agent.metric("edge_agent_mqtt_connects_total", result="failed"),
                                 0)
                agent.stop()


if __name__ == "__main__":
    harness.main()
