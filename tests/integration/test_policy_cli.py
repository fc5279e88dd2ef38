#!/usr/bin/env python3
"""`edge-console keygen` and `edge-console policy ...` against a real console process."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

VALID_POLICY = """\
rules:
  - id: hot
    match: "sensors/+/temperature"
    kind: threshold
    above: 80
"""

# Line 4, column 5: a misspelt key.
INVALID_POLICY = """\
rules:
  - id: hot
    match: "sensors/+/temperature"
    abov: 80
    kind: threshold
"""


class PolicyCliTest(harness.IntegrationTest):
    needs = ("console",)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def cli(self, *args, url=None):
        argv = [harness.EDGE_CONSOLE_BIN] + list(args)
        if args and args[0] == "policy":
            argv += ["--url", url or self.console.url, "--token-file", self.token_file]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return proc.returncode, proc.stdout + proc.stderr

    def start_signed_console(self):
        self.private_key = os.path.join(self.tmp, "policy.key")
        self.public_key = os.path.join(self.tmp, "policy.pub")
        rc, out = self.cli("keygen", "--private", self.private_key, "--public", self.public_key)
        self.assertEqual(rc, 0, out)
        self.assertEqual(os.stat(self.private_key).st_mode & 0o777, 0o600)
        with open(self.public_key) as f:
            self.assertIn("BEGIN PUBLIC KEY", f.read())
        console = self.start_console(("node-1", "node-2"),
                                     extra_args=["--signing-key", self.private_key],
                                     labels={"node-1": "site=plant-1"})
        self.console = console
        self.token_file = self.write("admin.token", console.admin_token + "\n")
        return console

    def test_keygen_refuses_to_overwrite(self):
        key = self.write("exists.key", "x")
        rc, out = self.cli("keygen", "--private", key, "--public",
                           os.path.join(self.tmp, "new.pub"))
        self.assertNotEqual(rc, 0)
        self.assertIn("exists", out)

    def test_push_status_rollback_list(self):
        console = self.start_signed_console()
        policy = self.write("boilers.yaml", VALID_POLICY)

        rc, out = self.cli("policy", "list")
        self.assertEqual(rc, 0, out)
        self.assertIn("no policies", out)

        rc, out = self.cli("policy", "push", policy, "--name", "boilers", "--selector",
                           "site=plant-1")
        self.assertEqual(rc, 0, out)
        self.assertIn("policy boilers version 1 created (rollout: released)", out)

        # A node polls (the fallback transport) and reports.
        hello = {"type": "hello", "node": "node-1", "labels": {"site": "plant-1"},
                 "agent_version": "it", "applied": None}
        status, body = console.request("POST", "/v1/policy/poll", token=console.tokens["node-1"],
                                       body=hello)
        self.assertEqual(status, 200, body)
        self.assertEqual((body["name"], body["version"]), ("boilers", 1))
        self.assertEqual(len(body["signature"]), 88)
        status, _ = console.request("POST", "/v1/policy/report", token=console.tokens["node-1"],
                                    body={"type": "report", "name": "boilers", "version": 1,
                                          "state": "applied", "reason": "", "detail": ""})
        self.assertEqual(status, 204)

        rc, out = self.cli("policy", "push", policy, "--name", "boilers", "--selector",
                           "site=plant-1")
        self.assertEqual(rc, 0, out)
        self.assertIn("version 2", out)
        self.assertIn("released to: node-1", out)

        rc, out = self.cli("policy", "status", "boilers")
        self.assertEqual(rc, 0, out)
        self.assertIn("policy boilers", out)
        lines = [l.split() for l in out.splitlines()]
        self.assertIn(["node-1", "no", "2", "1", "pending", "-"], lines)
        self.assertTrue(any(l[:3] == ["2", "released", "site=plant-1"] for l in lines), out)

        rc, out = self.cli("policy", "rollback", "boilers", "--to", "1")
        self.assertEqual(rc, 0, out)
        self.assertIn("policy boilers version 3 created (rollout: released)", out)

        rc, out = self.cli("policy", "list")
        self.assertEqual(rc, 0, out)
        rows = [l.split() for l in out.splitlines()]
        self.assertIn(["boilers", "3", "released", "site=plant-1", "-"], rows)

        rc, out = self.cli("policy", "rollback", "boilers", "--to", "9")
        self.assertEqual(rc, 1, out)
        self.assertIn("HTTP 400", out)
        self.assertIn("no version 9", out)

        rc, out = self.cli("policy", "status", "nothing")
        self.assertEqual(rc, 1, out)
        self.assertIn("HTTP 404", out)

    def test_errors_exit_non_zero_with_the_reason(self):
        self.start_signed_console()
        good = self.write("good.yaml", VALID_POLICY)
        bad = self.write("bad.yaml", INVALID_POLICY)

        rc, out = self.cli("policy", "push", good, "--name", "boilers", "--selector",
                           "site in (a,b")
        self.assertEqual(rc, 1, out)
        self.assertIn("HTTP 400", out)
        self.assertIn("selector", out)
        self.assertIn("missing ')'", out)

        rc, out = self.cli("policy", "push", bad, "--name", "boilers")
        self.assertEqual(rc, 1, out)
        self.assertIn("HTTP 400: console:boilers@1:4:5:", out)

        rc, out = self.cli("policy", "push", bad, "--name", "boilers", "--skip-validation")
        self.assertEqual(rc, 0, out)
        self.assertIn("version 1", out)

        rc, out = self.cli("policy", "push", good, "--name", "boilers", "--canary", "line=a")
        self.assertEqual(rc, 1, out)
        self.assertIn("no known node matches", out)

        self.token_file = self.write("wrong.token", "not-the-admin-token\n")
        rc, out = self.cli("policy", "list")
        self.assertEqual(rc, 1, out)
        self.assertIn("HTTP 401", out)

        rc, out = self.cli("policy", "list", url="http://127.0.0.1:%d" % harness.free_port())
        self.assertEqual(rc, 1, out)
        self.assertIn("connect", out)

    def test_without_signing_key_push_is_503(self):
        console = self.start_console()
        self.console = console
        self.token_file = self.write("admin.token", console.admin_token + "\n")
        rc, out = self.cli("policy", "push", self.write("p.yaml", VALID_POLICY), "--name", "p")
        self.assertEqual(rc, 1, out)
        self.assertIn("HTTP 503", out)
        rc, out = self.cli("policy", "list")
        self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    harness.main()
