#!/usr/bin/env python3
"""`edge-agent check FILE...`: exit 0 for valid files, 1 with file:line:col otherwise."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

VALID_CONFIG = """\
node_id: node-1
mqtt:
  url: tcp://127.0.0.1:1883
  topics: ["sensors/#"]
store:
  path: /tmp/edge-agent-check.db
  commit_interval: 100ms
http:
  listen: "127.0.0.1:9102"
console:
  url: http://127.0.0.1:8080
  token_file: /tmp/edge-agent-check.token
  backoff_initial: 200ms
  backoff_max: 2s
policy: /tmp/edge-agent-check-policy.yaml
"""


def replace_line(text, old, new):
    assert old in text, old
    return text.replace(old, new, 1)


def line_of(text, needle):
    """1-based line and column of `needle`."""
    for n, line in enumerate(text.splitlines(), 1):
        col = line.find(needle)
        if col >= 0:
            return n, col + 1
    raise AssertionError(needle)


class CheckCliTest(harness.IntegrationTest):
    needs = ("agent",)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def positions(self, path, output):
        """(line, col) pairs of every `path:line:col:` in the output."""
        return [(int(l), int(c))
                for l, c in re.findall(re.escape(path) + r":(\d+):(\d+):", output)]

    def assert_rejected_at(self, path, text, needle, value=None):
        rc, out = harness.agent_check(path)
        self.assertEqual(rc, 1, out)
        found = self.positions(path, out)
        self.assertTrue(found, "no %s:line:col in output:\n%s" % (path, out))
        line, key_col = line_of(text, needle)
        cols = {key_col}
        if value is not None:
            cols.add(line_of(text, value)[1])
        self.assertIn(line, [l for l, _ in found], out)
        self.assertTrue(any(l == line and c in cols for l, c in found),
                        "expected line %d col in %s:\n%s" % (line, sorted(cols), out))

    def test_valid_config_and_policy(self):
        config = self.write("config.yaml", VALID_CONFIG)
        policy = self.write("policy.yaml", harness.DEFAULT_POLICY)
        for path in (config, policy):
            rc, out = harness.agent_check(path)
            self.assertEqual(rc, 0, out)
        rc, out = harness.agent_check(config, policy)
        self.assertEqual(rc, 0, out)

    def test_misspelled_key(self):
        text = replace_line(VALID_CONFIG, "  commit_interval: 100ms", "  comit_interval: 100ms")
        path = self.write("misspelled.yaml", text)
        self.assert_rejected_at(path, text, "comit_interval")

    def test_misspelled_top_level_key(self):
        text = replace_line(VALID_CONFIG, "store:", "stroe:")
        path = self.write("misspelled-top.yaml", text)
        self.assert_rejected_at(path, text, "stroe")

    def test_bad_value(self):
        text = replace_line(VALID_CONFIG, "  backoff_max: 2s", "  backoff_max: soon")
        path = self.write("bad-value.yaml", text)
        self.assert_rejected_at(path, text, "backoff_max", "soon")

    def test_bad_policy_value(self):
        text = replace_line(harness.DEFAULT_POLICY, "    above: 50", "    above: hot")
        path = self.write("bad-policy.yaml", text)
        self.assert_rejected_at(path, text, "above", "hot")

    def test_one_bad_file_fails_the_run(self):
        good = self.write("good.yaml", VALID_CONFIG)
        text = replace_line(VALID_CONFIG, "  commit_interval: 100ms", "  commit_interval: -5ms")
        bad = self.write("bad.yaml", text)
        rc, out = harness.agent_check(good, bad)
        self.assertEqual(rc, 1, out)
        self.assertTrue(self.positions(bad, out), out)
        self.assertFalse(self.positions(good, out), out)

    def test_missing_file(self):
        rc, out = harness.agent_check(os.path.join(self.tmp, "nope.yaml"))
        self.assertEqual(rc, 1, out)
        self.assertIn("nope.yaml", out)


if __name__ == "__main__":
    harness.main()
