#!/usr/bin/env python3
"""console.require_tls: an http:// console.url to a host off this node stops the agent at
start with a message that says why (nothing is sent: the check runs before any
connection)."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class ConsoleRequireTlsTest(harness.IntegrationTest):
    needs = ("agent",)

    def run_agent(self, console_url, require_tls):
        token = os.path.join(self.tmp, "node.token")
        with open(token, "w") as f:
            f.write("t0ken\n")
        env = dict(os.environ, EDGE_AGENT_CONSOLE_REQUIRE_TLS=require_tls)
        argv = [harness.EDGE_AGENT_BIN, "run", "--node-id", "node-1",
                "--db", os.path.join(self.tmp, "node.db"), "--http", "127.0.0.1:0",
                "--mqtt", "tcp://127.0.0.1:%d" % harness.free_port(),
                "--console", console_url, "--token-file", token]
        return subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=20, check=False)

    def test_remote_http_console_is_refused_when_tls_is_required(self):
        res = self.run_agent("http://edge-console.edge.svc.cluster.local:8080", "true")
        out = res.stdout.decode("utf-8", "replace")
        self.assertEqual(res.returncode, 2, out)
        self.assertIn("console.url: is http:// to a host off this node", out)
        self.assertIn("console.require_tls", out)


if __name__ == "__main__":
    harness.main()
