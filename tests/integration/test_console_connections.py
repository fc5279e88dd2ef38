#!/usr/bin/env python3
"""edge-console keeps answering while its connection slots are under attack.

Idle TCP connections that never send headers, hundreds of policy-channel upgrades with one
node token, and a fleet of more than 256 policy channels: uploads from another node,
/healthz and /metrics must keep answering while those connections are open. The attacking
connections come from other loopback addresses (127.0.0.2, 127.0.0.3) than the legitimate
clients (127.0.0.1), as they would from other hosts.
"""

import base64
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CHANNEL_UPGRADES = 300
FLEET = 300


def descriptor_budget(wanted):
    """Raises this process's open-file limit towards `wanted` + headroom; returns how many
    connections it can hold (a CI runner may have a soft limit of 1024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted + CHANNEL_UPGRADES + 128
    if soft != resource.RLIM_INFINITY and soft < target:
        new_soft = target if hard == resource.RLIM_INFINITY else min(target, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
        soft = new_soft
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(100, min(wanted, soft - CHANNEL_UPGRADES - 128))


IDLE_CONNECTIONS = descriptor_budget(1000)


def other_item(node, seq):
    return {"id": "%s:00000000cafebabe:%d" % (node, seq), "kind": "other",
            "created_ms": harness.now_ms(), "payload": {"n": seq}}


def connect_from(source, port, timeout=2.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def upgrade_request(port, token):
    key = base64.b64encode(os.urandom(16)).decode()
    return ("GET /v1/policy/channel HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n"
            % (port, key, token)).encode()


def read_head(sock, timeout=5.0):
    """The response head (up to the blank line), or what arrived before EOF/timeout."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return data


class ConsoleConnectionsTest(harness.IntegrationTest):
    needs = ("console",)

    def setUp(self):
        super().setUp()
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        super().tearDown()

    def assert_console_answers(self, console, node, first_seq):
        """Five uploads, /healthz and /metrics, each within the client's 5 s timeout."""
        for seq in range(first_seq, first_seq + 5):
            status, body = console.post_batch(node, [other_item(node, seq)])
            self.assertEqual(status, 200, body)
        self.assertEqual(console.request("GET", "/healthz")[0], 200)
        self.assertEqual(console.request("GET", "/metrics")[0], 200)

    def test_idle_connections_and_channel_floods_do_not_starve_requests(self):
        console = self.start_console(nodes=("node-1", "node-2"))
        # 1,000 connections that never send a byte.
        deadline = time.monotonic() + 30
        for _ in range(IDLE_CONNECTIONS):
            self.assertLess(time.monotonic(), deadline, "opening idle connections took too long")
            try:
                self.socks.append(connect_from("127.0.0.2", console.port))
            except OSError:
                pass  # a refused connect is fine; the console is what is under test
        self.assert_console_answers(console, "node-1", 1)

        # 300 channel upgrades with node-2's token, all kept open.
        upgraded = 0
        for _ in range(CHANNEL_UPGRADES):
            self.assertLess(time.monotonic(), deadline, "upgrading took too long")
            try:
                s = connect_from("127.0.0.3", console.port)
            except OSError:
                continue
            self.socks.append(s)
            s.sendall(upgrade_request(console.port, console.tokens["node-2"]))
            if read_head(s).startswith(b"HTTP/1.1 101"):
                upgraded += 1
        self.assertGreater(upgraded, 0)
        self.assert_console_answers(console, "node-1", 10)

        self.assertGreater(
            console.metric("edge_console_connections_refused_total", reason="per_address"), 0)
        # One channel per node: every upgrade after the first replaced the one before.
        self.assertEqual(console.metric("edge_console_channels_replaced_total"), upgraded - 1)
        self.assertLessEqual(console.metric("edge_console_open_connections", pool="channels"), 1)
        # Refusals are logged at most once a second per reason, not once per connection.
        lines = [l for l in console.process.log_text().splitlines() if "connection refused" in l]
        self.assertLess(len(lines), 30, "%d refusal lines logged" % len(lines))

        # Idle connections are closed once the header timeout (5 s) has passed.
        harness.wait_until(
            lambda: console.metric("edge_console_connections_refused_total",
                                   reason="header_timeout") > 0,
            15, 0.2, "idle connections closed by the header timeout")

    def test_a_fleet_larger_than_the_request_slots_holds_channels(self):
        nodes = ["node-%d" % i for i in range(FLEET)] + ["uploader"]
        console = self.start_console(nodes=nodes)
        deadline = time.monotonic() + 30
        for node in nodes[:FLEET]:
            self.assertLess(time.monotonic(), deadline, "opening channels took too long")
            s = connect_from("127.0.0.1", console.port)
            self.socks.append(s)
            s.sendall(upgrade_request(console.port, console.tokens[node]))
            head = read_head(s)
            self.assertTrue(head.startswith(b"HTTP/1.1 101"), (node, head[:200]))
        self.assert_console_answers(console, "uploader", 1)
        self.assertEqual(console.metric("edge_console_open_connections", pool="channels"), FLEET)


if __name__ == "__main__":
    harness.main()
