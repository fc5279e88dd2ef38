#!/usr/bin/env python3
"""edge-console's request framing and field limits, over raw sockets.

Only a single `chunked` transfer coding is accepted, and never beside Content-Length:
anything else is refused (400 or 501) and the connection closed, instead of reading the
body by its length (request smuggling). An alert's sensor id may be up to 1,024 bytes; a
longer one is refused with a 400 that names the limit.
"""

import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MAX_SENSOR_BYTES = 1024  # docs/protocol.md, "Limits"


def alert_item(node, seq, sensor="plant/boiler1/temp"):
    ts = harness.now_ms()
    return {"id": "%s:00000000abcdef01:%d" % (node, seq), "kind": "alert", "created_ms": ts,
            "payload": {"node": node, "rule": "overheat", "sensor": sensor,
                        "severity": "critical", "state": "firing", "value": 90.0,
                        "ts_ms": ts, "started_ms": ts}}


def exchange(port, raw, timeout=5.0):
    """Sends `raw`, reads until the console closes (or times out); returns (reply, closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        data = b""
        closed = False
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    closed = True
                    break
                data += chunk
        except socket.timeout:
            pass
        except ConnectionResetError:
            closed = True
        return data, closed


class ConsoleFramingTest(harness.IntegrationTest):
    needs = ("console",)

    def setUp(self):
        super().setUp()
        self.console = self.start_console()
        self.seq = 0

    def upload(self, transfer_encoding, content_length=True, chunked_body=False):
        self.seq += 1
        body = json.dumps({"node": "node-1", "sent_ms": harness.now_ms(),
                           "items": [alert_item("node-1", self.seq)]}).encode()
        head = ("POST /v1/batches HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                "Content-Type: application/json\r\nAuthorization: Bearer %s\r\n"
                % self.console.tokens["node-1"])
        for value in transfer_encoding:
            head += "Transfer-Encoding: %s\r\n" % value
        if content_length:
            head += "Content-Length: %d\r\n" % len(body)
        head += "\r\n"
        payload = body
        if chunked_body:
            payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        return exchange(self.console.port, head.encode() + payload)

    def assert_refused(self, reply, closed, *statuses):
        self.assertTrue(any(reply.startswith(b"HTTP/1.1 %d " % s) for s in statuses),
                        reply[:200])
        self.assertTrue(closed, "connection left open after %r" % reply[:60])

    def test_transfer_encoding_beside_content_length_is_refused(self):
        for te in (["chunked, identity"], ["xchunked"], ["chunked"], ["identity"]):
            reply, closed = self.upload(te)
            self.assert_refused(reply, closed, 400)
        self.assertEqual(self.console.alerts(), [])

    def test_transfer_codings_other_than_one_chunked_are_refused(self):
        for te in (["chunked, identity"], ["gzip, chunked"], ["xchunked"], ["chunked", "chunked"],
                   ["identity"]):
            reply, closed = self.upload(te, content_length=False, chunked_body=True)
            # 501 from the console's own check; Beast's parser refuses some first (400).
            self.assert_refused(reply, closed, 400, 501)
        self.assertEqual(self.console.alerts(), [])
        metrics = harness.parse_prometheus(self.console.request("GET", "/metrics")[1])
        self.assertEqual(metrics[("edge_console_requests_refused_total",
                                  (("reason", "bad_framing"),))], 5)

    def test_a_single_chunked_coding_is_read(self):
        reply, _ = self.upload(["Chunked"], content_length=False, chunked_body=True)
        self.assertTrue(reply.startswith(b"HTTP/1.1 200 "), reply[:200])
        self.assertEqual(len(self.console.alerts()), 1)

    def test_sensor_id_limit_is_1024_bytes_and_named_in_the_error(self):
        status, body = self.console.post_batch(
            "node-1", [alert_item("node-1", 1, sensor="s" * MAX_SENSOR_BYTES)])
        self.assertEqual(status, 200, body)
        status, body = self.console.post_batch(
            "node-1", [alert_item("node-1", 2, sensor="s" * (MAX_SENSOR_BYTES + 1))])
        self.assertEqual(status, 400, body)
        self.assertIn("'sensor' is too long", body["error"])
        self.assertIn("1025 bytes", body["error"])
        self.assertIn("at most 1024", body["error"])


if __name__ == "__main__":
    harness.main()
