#!/usr/bin/env python3
"""The agent's HTTP port under hostile clients: idle and slow connections cannot lock out
the liveness probe or Prometheus, a connection without complete request headers is closed
at http.header_timeout, and GET /v1/readings needs the bearer token of
http.readings_token_file (loopback clients only without one)."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

IDLE_CONNECTIONS = 200
PROBE_ROUNDS = 6


def get(agent, path, token=None, timeout=3.0):
    """(status, body) of one request; (None, error text) when the connection failed."""
    try:
        status, raw, _ = harness.http_request(agent.url + path, token=token, timeout=timeout)
        return status, raw.decode("utf-8", "replace")
    except OSError as e:  # refused, reset, closed before an answer, timed out
        return None, repr(e)


def closed_by_peer(sock):
    """True once the server has closed `sock` (EOF or reset); False while it is open."""
    try:
        return sock.recv(4096) == b""
    except (BlockingIOError, socket.timeout):
        return False
    except OSError:
        return True


class HttpPortTest(harness.IntegrationTest):
    needs = ("agent",)

    def start_agent_with_env(self, mq, env):
        agent = self.own(harness.Agent(self.tmp, mq))
        agent.process.env = dict(os.environ, **env)
        return agent.start()

    def open_idle_connections(self, agent, count):
        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])
        for i in range(count):
            s = socket.create_connection(("127.0.0.1", agent.http_port), timeout=2)
            if i % 2:
                # Half of them start a request and never finish its headers (slowloris).
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        return socks

    def test_probes_answer_while_200_idle_connections_are_open(self):
        mq = self.start_mosquitto()
        agent = self.start_agent(mq)
        socks = self.open_idle_connections(agent, IDLE_CONNECTIONS)
        started = time.monotonic()
        failures = []
        for i in range(PROBE_ROUNDS):
            for path in ("/healthz", "/metrics"):
                status, body = get(agent, path)
                if status != 200:
                    failures.append("round %d %s: %s %s" % (i, path, status, body[:200]))
        elapsed = time.monotonic() - started
        self.assertEqual(failures, [], "probes with %d idle connections open" % len(socks))
        # All of that happened well inside the header deadline (5 s by default), so the
        # bounds, not the deadline, made the room.
        self.assertLess(elapsed, 4.0)
        self.assertGreater(
            agent.metric("edge_agent_http_connections_rejected_total", reason="client_limit"), 0)

    def test_connection_without_complete_headers_is_closed_at_the_deadline(self):
        mq = self.start_mosquitto()
        agent = self.start_agent_with_env(mq, {"EDGE_AGENT_HTTP_HEADER_TIMEOUT": "500ms"})
        slow = socket.create_connection(("127.0.0.1", agent.http_port), timeout=2)
        self.addCleanup(slow.close)
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        slow.setblocking(False)
        harness.wait_until(lambda: closed_by_peer(slow), 3, 0.05,
                           what="the agent to close a connection without complete headers")
        self.assertEqual(
            agent.metric("edge_agent_http_connections_rejected_total", reason="header_timeout"), 1)

    def test_readings_need_the_token_when_one_is_configured(self):
        mq = self.start_mosquitto()
        token_path = os.path.join(self.tmp, "readings.token")
        with open(token_path, "w") as f:
            f.write("r3adings-t0ken\n")
        agent = self.start_agent_with_env(mq,
                                          {"EDGE_AGENT_HTTP_READINGS_TOKEN_FILE": token_path})
        query = "/v1/readings?sensor=sensors%2Fa%2Ftemp&limit=100000"
        self.assertEqual(get(agent, query)[0], 401)
        self.assertEqual(get(agent, query, token="wrong")[0], 401)
        status, body = get(agent, query, token="r3adings-t0ken")
        self.assertEqual(status, 200, body)
        self.assertIn('"readings"', body)
        self.assertEqual(
            agent.metric("edge_agent_http_readings_refused_total", reason="unauthorized"), 2)
        # The probes and Prometheus stay open.
        self.assertEqual(get(agent, "/healthz")[0], 200)
        self.assertEqual(get(agent, "/metrics")[0], 200)

    def test_readings_answer_loopback_clients_without_a_token_file(self):
        mq = self.start_mosquitto()
        agent = self.start_agent(mq)
        status, body = get(agent, "/v1/readings?sensor=sensors%2Fa%2Ftemp")
        self.assertEqual(status, 200, body)
        self.assertEqual(
            agent.metric("edge_agent_http_readings_refused_total", reason="not_loopback"), 0)


if __name__ == "__main__":
    harness.main()
