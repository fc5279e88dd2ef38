#!/usr/bin/env python3
"""`edge-agent replay` end to end on the CLI: the real binary over recorded files in
tests/replay/ prints the expected alert events on stdout and a summary on stderr."""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "replay")


def replay(*args, timeout=60):
    if not harness.EDGE_AGENT_BIN:
        raise unittest.SkipTest("EDGE_AGENT_BIN is not set")
    res = subprocess.run([harness.EDGE_AGENT_BIN, "replay"] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                         check=False)
    events = [json.loads(line) for line in res.stdout.decode().splitlines() if line.strip()]
    return res.returncode, events, res.stderr.decode("utf-8", "replace")


class ReplayCliTest(unittest.TestCase):
    def test_csv_with_iso_timestamps_gives_expected_alerts(self):
        rc, events, err = replay("--policy", os.path.join(DATA, "policy.yaml"),
                                 "--sensor", "plant/boiler/temp",
                                 os.path.join(DATA, "boiler.csv"))
        self.assertEqual(rc, 0, err)
        got = [(e["rule"], e["state"], e["ts_ms"], e["value"]) for e in events]
        self.assertEqual(got, [
            ("hot", "firing", 1391782200000, 95.0),      # 2014-02-07 14:10:00
            ("hot", "resolved", 1391782800000, 80.0),    # 80 <= clear 85
            ("quiet", "firing", 1391787000000, 80.0),    # 65 min gap, after 30 min
            ("quiet", "resolved", 1391787000000, 22.0),  # the reading that ended it
        ])
        self.assertEqual(events[2]["started_ms"], 1391782800000 + 30 * 60 * 1000)
        self.assertTrue(all(e["sensor"] == "plant/boiler/temp" for e in events))
        self.assertIn("boiler.csv:7: skipped: bad value", err)
        self.assertIn("replay: 6 readings", err)
        self.assertIn("2 firing, 2 resolved", err)

    def test_sensor_column_epoch_timestamps_and_json_lines(self):
        with tempfile.TemporaryDirectory() as tmp:
            csv_path = os.path.join(tmp, "multi.csv")
            with open(csv_path, "w") as f:
                f.write("sensor,value,timestamp\n")
                f.write("plant/a/temp,95,1391782200\n")        # epoch seconds
                f.write("plant/b/temp,10,1391782200000\n")     # epoch milliseconds
                f.write('"plant/a/temp",50,2014-02-07T14:15:00Z\n')
            jsonl_path = os.path.join(tmp, "b.jsonl")
            with open(jsonl_path, "w") as f:
                f.write('{"sensor": "plant/b/temp", "ts": "2014-02-07T14:20:00Z", "value": 99}\n')
            rc, events, err = replay("--policy", os.path.join(DATA, "policy.yaml"),
                                     csv_path, jsonl_path)
        self.assertEqual(rc, 0, err)
        got = [(e["sensor"], e["state"], e["ts_ms"]) for e in events if e["rule"] == "hot"]
        self.assertEqual(got, [("plant/a/temp", "firing", 1391782200000),
                               ("plant/a/temp", "resolved", 1391782500000),
                               ("plant/b/temp", "firing", 1391782800000)])

    def test_sensor_defaults_to_file_base_name(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "boiler7.csv")
            with open(path, "w") as f:
                f.write("timestamp,value\n2014-02-07 14:00:00,100\n")
            policy = os.path.join(tmp, "p.yaml")
            with open(policy, "w") as f:
                f.write('rules:\n  - {id: hot, match: "+", kind: threshold, above: 90}\n')
            rc, events, err = replay("--policy", policy, path)
        self.assertEqual(rc, 0, err)
        self.assertEqual([e["sensor"] for e in events], ["boiler7"])

    def test_invalid_policy_and_missing_columns_exit_2(self):
        with tempfile.TemporaryDirectory() as tmp:
            bad_policy = os.path.join(tmp, "bad.yaml")
            with open(bad_policy, "w") as f:
                f.write("rules:\n  - {id: a, match: x, kind: rate, window: 5 minutes, "
                        "max_rate: 1}\n")
            rc, _, err = replay("--policy", bad_policy, os.path.join(DATA, "boiler.csv"))
            self.assertEqual(rc, 2)
            self.assertIn("bad.yaml:2:", err)
            no_value = os.path.join(tmp, "x.csv")
            with open(no_value, "w") as f:
                f.write("timestamp,reading\n2014-02-07 14:00:00,1\n")
            rc, _, err = replay("--policy", os.path.join(DATA, "policy.yaml"), no_value)
            self.assertEqual(rc, 2)
            self.assertIn("x.csv:1: the CSV header must name a timestamp and a value", err)

    def test_a_month_of_five_minute_data_well_under_a_second(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "month.csv")
            start = 1391212800  # 2014-02-01
            with open(path, "w") as f:
                f.write("timestamp,value\n")
                for i in range(31 * 24 * 12):
                    f.write("%d,%.2f\n" % (start + i * 300, 20 + (i % 12) * 0.5))
            policy = os.path.join(tmp, "p.yaml")
            with open(policy, "w") as f:
                f.write('rules:\n'
                        '  - {id: hot, match: "#", kind: threshold, above: 90}\n'
                        '  - {id: z, match: "#", kind: zscore, window: 1d, z: 4}\n'
                        '  - {id: r, match: "#", kind: rate, window: 1h, max_rate: 1}\n'
                        '  - {id: s, match: "#", kind: stale, after: 1h}\n'
                        '  - {id: f, match: "#", kind: flatline, window: 2h}\n')
            t0 = time.monotonic()
            rc, _, err = replay("--policy", policy, "--sensor", "m", path)
            elapsed = time.monotonic() - t0
        self.assertEqual(rc, 0, err)
        self.assertIn("replay: 8928 readings", err)
        self.assertLess(elapsed, 1.0, err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
