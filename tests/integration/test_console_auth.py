#!/usr/bin/env python3
"""edge-console authenticates on the headers and throttles token guessing.

Unauthenticated uploads are answered 401 from their headers alone: the console neither
waits for nor keeps their bodies, so 40 connections sending 8 MiB bodies without a valid
token do not grow its memory. Wrong tokens from one address are answered 401 up to the
failure limit and 429 (with Retry-After) after it, for every request that needs a token
from that address; other addresses and /healthz are not affected.
"""

import http.client
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BODY_BYTES = 8 * 1024 * 1024
CONNECTIONS = 40
FAILURE_LIMIT = 10  # the console's default --auth-failure-limit
# Under AddressSanitizer (EDGE_SANITIZED=1, set by CMake for an EDGE_SANITIZE build) shadow
# memory and the allocation quarantine make RSS meaningless: the 401s are still checked
# there, the RSS bound only in an ordinary build.
SANITIZED = os.environ.get("EDGE_SANITIZED") == "1"


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def upload_head(port, length, token="wrong-token-0123456789"):
    return ("POST /v1/batches HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n"
            "Authorization: Bearer %s\r\n\r\n" % (port, length, token)).encode()


def status_line(sock, timeout):
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return data.split(b"\r\n", 1)[0]


def request_from(source, port, method, path, token=None, timeout=5.0, forwarded_for=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(source, 0))
    try:
        headers = {"Authorization": "Bearer " + token} if token else {}
        if forwarded_for:
            headers["X-Forwarded-For"] = forwarded_for
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status, dict(resp.getheaders())
    finally:
        conn.close()


class ConsoleAuthTest(harness.IntegrationTest):
    needs = ("console",)

    def test_unauthenticated_upload_is_refused_before_its_body(self):
        console = self.start_console()
        # Each connection from its own address, so that the failure throttle stays out of it.
        socks = []
        try:
            for i in range(CONNECTIONS):
                s = socket.socket()
                s.bind(("127.0.2.%d" % (i + 1), 0))
                s.connect(("127.0.0.1", console.port))
                socks.append(s)
                s.sendall(upload_head(console.port, BODY_BYTES))
            # The 401 comes from the headers alone: not one body byte has been sent.
            for s in socks:
                self.assertEqual(status_line(s, 5.0), b"HTTP/1.1 401 Unauthorized")
        finally:
            for s in socks:
                s.close()

    def test_unauthenticated_bodies_do_not_grow_memory(self):
        console = self.start_console()
        pid = console.process.pid
        baseline = rss_kib(pid)
        peak = [baseline]
        body = b"x" * BODY_BYTES
        statuses = []
        lock = threading.Lock()

        def send(i):
            s = socket.socket()
            try:
                s.bind(("127.0.3.%d" % (i + 1), 0))
                s.settimeout(10)
                s.connect(("127.0.0.1", console.port))
                s.sendall(upload_head(console.port, len(body)))
                try:
                    s.sendall(body)
                except OSError:
                    pass  # the console may close once it has answered
                line = status_line(s, 10)
                with lock:
                    statuses.append(line)
            except OSError as e:
                with lock:
                    statuses.append(repr(e).encode())
            finally:
                s.close()

        threads = [threading.Thread(target=send, args=(i,)) for i in range(CONNECTIONS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            peak[0] = max(peak[0], rss_kib(pid))
            time.sleep(0.02)
        for t in threads:
            t.join(max(0.1, deadline - time.monotonic()))
        peak[0] = max(peak[0], rss_kib(pid))
        grown_mib = (peak[0] - baseline) / 1024
        sys.stderr.write("console RSS %d KiB -> peak %d KiB (+%.1f MiB)\n"
                         % (baseline, peak[0], grown_mib))
        if not SANITIZED:
            self.assertLess(grown_mib, 48, "RSS grew by %.1f MiB" % grown_mib)
        self.assertEqual(statuses.count(b"HTTP/1.1 401 Unauthorized"), CONNECTIONS, statuses)

    def test_token_guessing_is_throttled_per_address(self):
        console = self.start_console()
        port = console.port
        guesses = []
        deadline = time.monotonic() + 20
        for i in range(3 * FAILURE_LIMIT):
            self.assertLess(time.monotonic(), deadline)
            guesses.append(request_from("127.0.4.1", port, "GET", "/v1/alerts",
                                        token="guess-%04d-0123456789" % i))
        codes = [status for status, _ in guesses]
        self.assertEqual(codes[:FAILURE_LIMIT], [401] * FAILURE_LIMIT, codes)
        self.assertEqual(codes[FAILURE_LIMIT:], [429] * (2 * FAILURE_LIMIT), codes)
        retry_after = int(guesses[-1][1]["Retry-After"])
        self.assertGreater(retry_after, 0)
        self.assertLessEqual(retry_after, 60)

        # The right token from the throttled address is refused too (a guess that hit would
        # otherwise show), an upload as well, without its body being read.
        self.assertEqual(request_from("127.0.4.1", port, "GET", "/v1/alerts",
                                      token=console.admin_token)[0], 429)
        s = socket.socket()
        try:
            s.bind(("127.0.4.1", 0))
            s.connect(("127.0.0.1", port))
            s.sendall(upload_head(port, BODY_BYTES, token=console.tokens["node-1"]))
            # Not one body byte has been sent.
            self.assertEqual(status_line(s, 5.0), b"HTTP/1.1 429 Too Many Requests")
        finally:
            s.close()
        # Routes without a token still answer there, and other addresses are not affected.
        self.assertEqual(request_from("127.0.4.1", port, "GET", "/healthz")[0], 200)
        self.assertEqual(request_from("127.0.0.1", port, "GET", "/v1/alerts",
                                      token=console.admin_token)[0], 200)
        status, body = console.post_batch("node-1", [])
        self.assertEqual(status, 200, body)

        self.assertEqual(console.metric("edge_console_requests_refused_total",
                                        reason="auth_throttled"), 2 * FAILURE_LIMIT + 2)
        self.assertEqual(console.metric("edge_console_requests_refused_total",
                                        reason="unauthenticated"), FAILURE_LIMIT)

    def test_behind_a_trusted_proxy_the_forwarded_client_is_throttled(self):
        proxy = "127.0.5.1"
        console = self.start_console(extra_args=["--trusted-proxy", "127.0.5.0/24"])
        port = console.port
        codes = [request_from(proxy, port, "GET", "/v1/alerts", token="guess-%d" % i,
                              forwarded_for="spoofed, 192.0.2.1")[0]
                 for i in range(FAILURE_LIMIT + 2)]
        self.assertEqual(codes, [401] * FAILURE_LIMIT + [429] * 2)
        # Another client through the same proxy is not affected.
        self.assertEqual(request_from(proxy, port, "GET", "/v1/alerts", token=console.admin_token,
                                      forwarded_for="192.0.2.1, 192.0.2.2")[0], 200)
        # The proxy is not held to the per-address connection limit (32).
        socks = []
        try:
            for _ in range(40):
                s = socket.socket()
                s.bind((proxy, 0))
                s.connect(("127.0.0.1", port))
                socks.append(s)
            self.assertEqual(request_from(proxy, port, "GET", "/healthz")[0], 200)
            self.assertEqual(console.metric("edge_console_connections_refused_total",
                                            reason="per_address"), 0)
        finally:
            for s in socks:
                s.close()


if __name__ == "__main__":
    harness.main()
