#!/usr/bin/env python3
"""Detection quality per rule kind on a labelled set from sensor-sim.

sensor-sim --dry-run writes readings and its truth file (the injected anomalies); the
readings are converted to JSON lines and replayed with `edge-agent replay` and
tools/bench/detection_policy.yaml. A firing counts as a detection of an anomaly on the same
sensor if it falls in [start, end + grace); any other firing is a false alert. Prints a
Markdown table (docs/performance.md).

  tools/bench/detection_quality.py --sim build/tools/sensor-sim/sensor-sim \
      --agent build/agent/edge-agent [--seed 7] [--hours 6]
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile

KINDS = ("spike", "drift", "stuck", "silence")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sim", required=True)
    ap.add_argument("--agent", required=True)
    ap.add_argument("--policy", default=os.path.join(os.path.dirname(__file__),
                                                     "detection_policy.yaml"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--sensors", type=int, default=40)
    ap.add_argument("--rate", default="0.2")
    ap.add_argument("--hours", type=int, default=6)
    ap.add_argument("--anomalies", type=int, default=80)
    ap.add_argument("--grace-ms", type=int, default=60_000)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        truth_path = os.path.join(tmp, "truth.jsonl")
        sim = subprocess.run(
            [args.sim, "--dry-run", "--format", "json", "--sensors", str(args.sensors),
             "--rate", args.rate, "--duration", "%dh" % args.hours, "--seed", str(args.seed),
             "--anomalies", str(args.anomalies), "--truth", truth_path],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
        readings_path = os.path.join(tmp, "readings.jsonl")
        n = 0
        with open(readings_path, "w") as out:
            for line in sim.stdout.decode().splitlines():
                topic, _, payload = line.partition(" ")
                p = json.loads(payload)
                out.write(json.dumps({"sensor": topic, "ts": p["ts"], "value": p["value"]}))
                out.write("\n")
                n += 1
        truth = [json.loads(l) for l in open(truth_path) if l.strip()]
        rep = subprocess.run([args.agent, "replay", "--policy", args.policy, readings_path],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
        events = [json.loads(l) for l in rep.stdout.decode().splitlines() if l.strip()]
        summary = rep.stderr.decode().splitlines()[0]

    by_sensor = collections.defaultdict(list)
    for a in truth:
        by_sensor[a["sensor"]].append(a)
    rules = []
    detected = collections.defaultdict(set)  # rule -> indexes of truth anomalies
    false_alerts = collections.Counter()
    for e in events:
        if e["rule"] not in rules:
            rules.append(e["rule"])
        if e["state"] != "firing":
            continue
        hit = False
        for a in by_sensor.get(e["sensor"], []):
            if a["start_ms"] <= e["ts_ms"] < a["end_ms"] + args.grace_ms:
                detected[e["rule"]].add(id(a))
                hit = True
        if not hit:
            false_alerts[e["rule"]] += 1
    policy_rules = [l.split("id:")[1].split(",")[0].strip()
                    for l in open(args.policy) if "id:" in l]
    total = collections.Counter(a["anomaly"] for a in truth)
    hours = args.hours * args.sensors
    print("%d readings, %d sensors, %d h; %d anomalies: %s" % (
        n, args.sensors, args.hours, len(truth),
        ", ".join("%d %s" % (total[k], k) for k in KINDS)))
    print(summary)
    print()
    print("| rule | " + " | ".join("%s (%d)" % (k, total[k]) for k in KINDS) +
          " | false alerts | per sensor-day |")
    print("|---" * (len(KINDS) + 3) + "|")
    for rule in policy_rules:
        cells = []
        for k in KINDS:
            hit = sum(1 for a in truth if a["anomaly"] == k and id(a) in detected[rule])
            cells.append(str(hit))
        fa = false_alerts[rule]
        print("| %s | %s | %d | %.2f |" % (rule, " | ".join(cells), fa, fa * 24.0 / hours))
    return 0


if __name__ == "__main__":
    sys.exit(main())
