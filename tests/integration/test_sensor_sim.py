#!/usr/bin/env python3
"""sensor-sim against a real mosquitto: delivery, truth file, determinism, failures."""

import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SIM = harness.SENSOR_SIM_BIN


def summary_of(text):
    lines = [l for l in text.splitlines() if l.startswith("{")]
    return json.loads(lines[-1])


class SensorSimTest(harness.IntegrationTest):
    needs = ("sim",)

    def run_sim(self, *args, timeout=60):
        return subprocess.run([SIM] + [str(a) for a in args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout, check=False)

    def test_publishes_every_reading_and_writes_truth(self):
        mq = self.start_mosquitto()
        sub = self.own(harness.Subscriber(self.tmp, mq.port, "simt/#")).start()
        truth = os.path.join(self.tmp, "truth.jsonl")
        start = time.monotonic()
        res = self.run_sim("--broker", mq.url, "--prefix", "simt", "--sensors", 6, "--rate", 10,
                           "--duration", "3s", "--format", "mixed", "--qos", 1, "--seed", 11,
                           "--anomalies", 2, "--truth", truth)
        elapsed = time.monotonic() - start
        self.assertEqual(res.returncode, 0, res.stderr)
        s = summary_of(res.stdout.decode())
        self.assertEqual(s["errors"], 0)
        self.assertGreater(s["messages"], 0)
        self.assertLessEqual(s["messages"], 6 * 10 * 3)
        self.assertGreater(s["bytes"], 0)
        self.assertGreater(elapsed, 2.5, "paced over the duration")
        lines = harness.wait_until(lambda: len(sub.lines()) >= s["messages"] and sub.lines(), 10,
                                   what="all messages at the subscriber")
        self.assertEqual(len(lines), s["messages"])
        topics = {l.split(" ", 1)[0] for l in lines}
        self.assertIn("simt/line-0/dev-0/temperature", topics)  # plain
        self.assertIn("simt/z2m/dev-2", topics)  # z2m
        for line in lines:
            topic, payload = line.split(" ", 1)
            if topic.startswith("simt/z2m/"):
                obj = json.loads(payload)
                self.assertEqual(sorted(obj), ["humidity", "linkquality", "temperature"])
            elif int(topic.split("/dev-")[1].split("/")[0]) % 3 == 1:  # mixed: json
                obj = json.loads(payload)
                self.assertEqual(sorted(obj), ["ts", "value"])
            else:
                float(payload)
        with open(truth) as f:
            anomalies = [json.loads(l) for l in f if l.strip()]
        self.assertEqual(len(anomalies), 2)
        for a in anomalies:
            self.assertIn(a["anomaly"], ("spike", "drift", "stuck", "silence"))
            self.assertLess(a["start_ms"], a["end_ms"])
            self.assertTrue(a["sensor"].startswith("simt/"))
            self.assertIn("peak", a)

    def test_same_seed_same_values(self):
        def dry(seed):
            res = self.run_sim("--dry-run", "--sensors", 8, "--rate", 2, "--duration", "2m",
                               "--format", "mixed", "--seed", seed, "--anomalies", 4)
            self.assertEqual(res.returncode, 0, res.stderr)
            return re.sub(r'"ts":\d+', '"ts":T', res.stdout.decode())

        a, b, c = dry(5), dry(5), dry(6)
        self.assertEqual(a, b)
        self.assertNotEqual(a, c)
        self.assertEqual(len(a.splitlines()) > 1000, True)

    def test_dead_broker_exits_1(self):
        port = harness.free_port()
        start = time.monotonic()
        res = self.run_sim("--broker", "tcp://127.0.0.1:%d" % port, "--duration", "5s", timeout=20)
        self.assertEqual(res.returncode, 1)
        self.assertLess(time.monotonic() - start, 8)
        self.assertIn("cannot connect", res.stderr.decode())
        self.assertIn(str(port), res.stderr.decode())

    def test_sigterm_prints_summary(self):
        mq = self.start_mosquitto()
        proc = subprocess.Popen([SIM, "--broker", mq.url, "--duration", "60s", "--rate", "5",
                                 "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            time.sleep(1.5)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 0, err)
        s = summary_of(out.decode())
        self.assertTrue(s["interrupted"])
        self.assertGreater(s["messages"], 0)

    def test_count_bounds_a_flood(self):
        mq = self.start_mosquitto()
        res = self.run_sim("--broker", mq.url, "--sensors", 50, "--rate", 100000, "--count", 20000,
                           "--quiet")
        self.assertEqual(res.returncode, 0, res.stderr)
        s = summary_of(res.stdout.decode())
        self.assertEqual(s["messages"], 20000)
        self.assertEqual(s["errors"], 0)


if __name__ == "__main__":
    harness.main()
