#!/usr/bin/env python3
"""NAB standard-profile score of binary detections on a labelled corpus (nab-dev).

The corpus (--corpus DIR, or the NAB_CORPUS environment variable; see the corpus's README.md)
holds data/<group>/<name>.csv (timestamp,value) and labels/combined_windows.json; it stays
outside the repository. A detector's
output is, per file, the rows at which it raised an alert ("a row flagged 1", as NAB's
binary detections). Scoring follows NAB v1.1's standard profile (written from its paper
and documented rules, not from its code):

- probation: the first min(floor(0.15 * rows), 750) rows are not scored (detections there
  count nothing, neither true nor false);
- window of r rows (left index L, right index R): the first detection at row i earns
  A_TP * S(pos) / S(-1), pos = -(R - i + 1) / r (-1 at the left edge, about 0 at the right
  edge), S(x) = 2 / (1 + exp(5x)) - 1; the division by S(-1) (as NAB does) makes a
  detection at the left edge worth exactly 1; later detections in the window earn nothing;
- a window without a detection costs A_FN = 1;
- a detection outside every window costs A_FP = 0.11 times: 1 before the first window,
  and -S(d) after a window, d = (i - R_prev) / (r_prev - 1), R_prev, r_prev being the
  previous window's right index and width (S(d) is -1 once d > 3);
- normalisation over the whole corpus as NAB does it: sum the raw scores of all files,
  then 100 * (raw - null) / (perfect - null), the null detector (no detection) scoring
  -(number of windows) and the perfect one (a detection at each window's left edge)
  +(number of windows). Per group the same with the group's sums (undefined for a group
  without windows, where only the false alerts and the raw cost are shown).

Subcommands (each takes --corpus DIR):

  # write the corpus as JSON lines for `edge-agent replay` (sensor nab/<group>/<name>)
  nab_score.py readings OUT.jsonl

  # score the events of `edge-agent replay` (state "firing" = a detection), per rule
  nab_score.py events EVENTS.jsonl [--rule ID] [--merge] [--per-file]

  # replay the corpus through the agent with a policy and score every rule of it
  nab_score.py replay --agent build/agent/edge-agent --policy tools/bench/nab_policy.yaml
      [--merge] [--per-file] [--keep DIR]

  # score a detections file: JSON {"<group>/<name>.csv": [timestamps...]}, a timestamp
  # being "YYYY-MM-DD HH:MM:SS" or epoch milliseconds
  nab_score.py detections DETECTIONS.json [--per-file]

A detection whose timestamp is not exactly a row's is put on the last row at or before
it (the alert fired on that row's reading).
"""

import argparse
import bisect
import calendar
import collections
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time

CORPUS_ENV = "NAB_CORPUS"
SENSOR_PREFIX = "nab/"

# NAB v1.1 standard profile.
A_TP = 1.0
A_FP = 0.11
A_FN = 1.0
PROBATION_FRACTION = 0.15
PROBATION_MAX_ROWS = 750  # = 0.15 * 5000


def scaled_sigmoid(x):
    """NAB's S(x) = 2 / (1 + e^(5x)) - 1, clamped to -1 past x > 3."""
    if x > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


MAX_TP = scaled_sigmoid(-1.0)


def parse_ts_ms(s):
    """'YYYY-MM-DD HH:MM:SS[.ffffff]' (UTC) -> epoch ms."""
    s = s.strip()
    frac = 0
    if "." in s:
        s, f = s.split(".", 1)
        frac = int(round(float("0." + f) * 1000))
    t = time.strptime(s, "%Y-%m-%d %H:%M:%S")
    return calendar.timegm(t) * 1000 + frac


def probation_rows(n):
    """Rows at the start of a file of n rows that are not scored."""
    return min(int(math.floor(PROBATION_FRACTION * n)), PROBATION_MAX_ROWS)


class Corpus:
    """Files, their rows (timestamps in ms, values) and their windows as row indexes."""

    def __init__(self, root):
        self.root = root
        with open(os.path.join(root, "labels", "combined_windows.json")) as f:
            windows = json.load(f)
        self.files = sorted(windows)
        self.ts = {}
        self.values = {}
        self.windows = {}  # file -> [(left_idx, right_idx)]
        for name in self.files:
            ts, vals = [], []
            with open(os.path.join(root, "data", name)) as f:
                r = csv.reader(f)
                next(r)
                for row in r:
                    if not row:
                        continue
                    ts.append(parse_ts_ms(row[0]))
                    vals.append(float(row[1]))
            self.ts[name] = ts
            self.values[name] = vals
            wins = []
            for start, end in windows[name]:
                a, b = parse_ts_ms(start), parse_ts_ms(end)
                lo = bisect.bisect_left(ts, a)
                hi = bisect.bisect_right(ts, b) - 1
                if hi >= lo:
                    wins.append((lo, hi))
            self.windows[name] = sorted(wins)

    @staticmethod
    def group(name):
        """'<group>/<name>.csv' -> '<group>'."""
        return name.split("/", 1)[0]

    @staticmethod
    def sensor(name):
        """'<group>/<name>.csv' -> the sensor id of its readings, 'nab/<group>/<name>'."""
        return SENSOR_PREFIX + name[:-4] if name.endswith(".csv") else SENSOR_PREFIX + name

    def file_of_sensor(self, sensor):
        """The file a sensor id (or file name) stands for; None if not in the corpus."""
        if sensor.startswith(SENSOR_PREFIX):
            sensor = sensor[len(SENSOR_PREFIX):]
        name = sensor if sensor.endswith(".csv") else sensor + ".csv"
        return name if name in self.ts else None

    def rows_of(self, name, timestamps_ms):
        """Detection timestamps -> sorted unique row indexes (last row at or before)."""
        ts = self.ts[name]
        rows = set()
        for t in timestamps_ms:
            i = bisect.bisect_right(ts, t) - 1
            if i >= 0:
                rows.add(i)
        return sorted(rows)


FileScore = collections.namedtuple(
    "FileScore", "raw null perfect windows found missed fp fp_cost tp_score")


def score_file(corpus, name, rows):
    """NAB standard-profile raw score of one file given the detection row indexes."""
    n = len(corpus.ts[name])
    prob = probation_rows(n)
    wins = [w for w in corpus.windows[name] if w[1] >= prob]
    lefts = [w[0] for w in wins]
    best = {}  # window index -> score of its first detection
    fp = 0
    fp_cost = 0.0
    for i in rows:
        if i < prob:
            continue
        k = bisect.bisect_right(lefts, i) - 1  # last window starting at or before i
        if k >= 0 and i <= wins[k][1]:
            if k not in best:
                lo, hi = wins[k]
                width = hi - lo + 1
                pos = -(hi - i + 1) / float(width)
                best[k] = A_TP * scaled_sigmoid(pos) / MAX_TP
            continue
        fp += 1
        if k < 0:
            unweighted = -1.0
        else:
            lo, hi = wins[k]
            width = hi - lo + 1
            d = abs(i - hi) / float(max(width - 1, 1))
            unweighted = scaled_sigmoid(d)
        fp_cost += unweighted * A_FP
    found = len(best)
    missed = len(wins) - found
    tp_score = sum(best.values())
    raw = tp_score - A_FN * missed + fp_cost
    return FileScore(raw, -A_FN * len(wins), A_TP * len(wins), len(wins), found, missed,
                     fp, fp_cost, tp_score)


def normalised(raw, null, perfect):
    """NAB's normalised score, 0 for no detections and 100 for perfect; None without windows."""
    if perfect == null:
        return None
    return 100.0 * (raw - null) / (perfect - null)


def score_all(corpus, detections):
    """detections: {file: [row indexes]} -> ({file: FileScore}, {group: FileScore}, total)."""
    per_file = {}
    for name in corpus.files:
        per_file[name] = score_file(corpus, name, detections.get(name, []))
    groups = collections.OrderedDict()
    for name in corpus.files:
        g = corpus.group(name)
        groups.setdefault(g, []).append(per_file[name])

    def add(scores):
        return FileScore(*[sum(getattr(s, f) for s in scores) for f in FileScore._fields])

    by_group = collections.OrderedDict((g, add(v)) for g, v in groups.items())
    total = add(list(per_file.values()))
    return per_file, by_group, total


def fmt_norm(s):
    """A FileScore's normalised score as text."""
    v = normalised(s.raw, s.null, s.perfect)
    return "n/a" if v is None else "%.1f" % v


def report(corpus, detections, title="", per_file=False, out=sys.stdout):
    """Writes the score table (per group, overall, optionally per file) as Markdown; returns
    (overall normalised score, {group: FileScore}, total FileScore)."""
    files, groups, total = score_all(corpus, detections)
    if title:
        out.write("## %s\n\n" % title)
    out.write("| group | files | score | windows found/total | false alerts | raw |\n")
    out.write("|---|---:|---:|---:|---:|---:|\n")
    counts = collections.Counter(corpus.group(f) for f in corpus.files)
    for g, s in groups.items():
        out.write("| %s | %d | %s | %d/%d | %d | %.2f |\n" % (
            g, counts[g], fmt_norm(s), s.found, s.windows, s.fp, s.raw))
    out.write("| **overall** | %d | **%s** | %d/%d | %d | %.2f |\n" % (
        len(corpus.files), fmt_norm(total), total.found, total.windows, total.fp, total.raw))
    if per_file:
        out.write("\n| file | found/total | false alerts | raw |\n|---|---:|---:|---:|\n")
        for f, s in files.items():
            out.write("| %s | %d/%d | %d | %.2f |\n" % (f, s.found, s.windows, s.fp, s.raw))
    out.write("\n")
    return normalised(total.raw, total.null, total.perfect), groups, total


def write_readings(corpus, path):
    """All files as JSON lines, merged in time order (sensor nab/<group>/<name>)."""
    rows = []
    for name in corpus.files:
        sensor = corpus.sensor(name)
        for t, v in zip(corpus.ts[name], corpus.values[name]):
            rows.append((t, sensor, v))
    rows.sort(key=lambda r: (r[0], r[1]))
    with open(path, "w") as out:
        for t, s, v in rows:
            out.write('{"sensor": %s, "ts": %d, "value": %s}\n' % (json.dumps(s), t, repr(v)))
    return len(rows)


def detections_from_events(corpus, lines, rule=None):
    """edge-agent replay events -> {rule: {file: [rows]}} (firing events only)."""
    per_rule = collections.OrderedDict()
    for line in lines:
        line = line.strip()
        if not line:
            continue
        e = json.loads(line)
        if e.get("state") != "firing":
            continue
        if rule is not None and e.get("rule") != rule:
            continue
        name = corpus.file_of_sensor(e["sensor"])
        if name is None:
            continue
        per_rule.setdefault(e["rule"], collections.defaultdict(list))[name].append(
            int(e["ts_ms"]))
    return collections.OrderedDict(
        (r, {f: corpus.rows_of(f, t) for f, t in d.items()}) for r, d in per_rule.items())


def detections_from_json(corpus, obj):
    """{file or sensor: [timestamps]} -> {file: [rows]}; unknown names are skipped."""
    out = {}
    for name, stamps in obj.items():
        if name not in corpus.ts:
            name = corpus.file_of_sensor(name)
            if name is None:
                continue
        ms = [int(s) if isinstance(s, (int, float)) else parse_ts_ms(s) for s in stamps]
        out[name] = corpus.rows_of(name, ms)
    return out


def merge_rules(per_rule):
    """{rule: {file: [rows]}} -> {"all rules": {file: [rows]}}."""
    out = collections.defaultdict(set)
    for d in per_rule.values():
        for f, rows in d.items():
            out[f].update(rows)
    return {"all rules": {f: sorted(r) for f, r in out.items()}}


def policy_rule_ids(path):
    """The rule ids of a policy file, in order (a line scan for `id:`, not a YAML parse)."""
    ids = []
    for line in open(path):
        if "id:" in line and not line.lstrip().startswith("#"):
            ids.append(line.split("id:")[1].split(",")[0].strip().strip("\"'"))
    return ids


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="Scoring rules and examples: see the module docstring (pydoc nab_score).")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--corpus", default=os.environ.get(CORPUS_ENV),
                        help="the corpus directory (data/, labels/); default: $%s" % CORPUS_ENV)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("readings", parents=[common],
                       help="write the corpus as JSON lines for edge-agent replay")
    p.add_argument("out", help="the JSON-lines file to write")
    p = sub.add_parser("events", parents=[common], help="score edge-agent replay events")
    p.add_argument("events", help="the events replay wrote (JSON lines)")
    p.add_argument("--rule", help="score only this rule id")
    p.add_argument("--merge", action="store_true", help="score all rules as one detector")
    p.add_argument("--per-file", action="store_true", help="also a line per file")
    p = sub.add_parser("replay", parents=[common],
                       help="replay the corpus through edge-agent with a policy and score it")
    p.add_argument("--agent", required=True, help="the edge-agent binary")
    p.add_argument("--policy", required=True, help="the policy file; every rule is scored")
    p.add_argument("--merge", action="store_true", help="score all rules as one detector")
    p.add_argument("--per-file", action="store_true", help="also a line per file")
    p.add_argument("--keep", metavar="DIR",
                   help="keep readings.jsonl and events.jsonl in DIR (default: a temporary "
                        "directory, removed)")
    p = sub.add_parser("detections", parents=[common],
                       help="score a JSON file {file: [timestamps]}")
    p.add_argument("detections", help="the JSON file")
    p.add_argument("--per-file", action="store_true", help="also a line per file")
    args = ap.parse_args(argv)
    if not args.corpus:
        ap.error("no corpus: pass --corpus DIR or set %s" % CORPUS_ENV)

    corpus = Corpus(args.corpus)
    if args.cmd == "readings":
        n = write_readings(corpus, args.out)
        print("%d readings from %d files -> %s" % (n, len(corpus.files), args.out))
        return 0
    if args.cmd == "detections":
        with open(args.detections) as f:
            det = detections_from_json(corpus, json.load(f))
        report(corpus, det, os.path.basename(args.detections), args.per_file)
        return 0
    if args.cmd == "events":
        with open(args.events) as f:
            per_rule = detections_from_events(corpus, f, args.rule)
        if args.merge:
            per_rule = merge_rules(per_rule)
        rules = list(per_rule) if args.merge or not args.rule else [args.rule]
        for r in rules:
            report(corpus, per_rule.get(r, {}), "rule %s" % r, args.per_file)
        return 0
    if args.cmd == "replay":
        tmp = args.keep or tempfile.mkdtemp(prefix="nab-")
        os.makedirs(tmp, exist_ok=True)
        readings = os.path.join(tmp, "readings.jsonl")
        n = write_readings(corpus, readings)
        t0 = time.time()
        rep = subprocess.run([args.agent, "replay", "--policy", args.policy, readings],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
        dt = time.time() - t0
        if args.keep:
            with open(os.path.join(tmp, "events.jsonl"), "wb") as f:
                f.write(rep.stdout)
        else:
            os.remove(readings)
            os.rmdir(tmp)
        summary = rep.stderr.decode().strip().splitlines()
        print("%d readings, %d files; replay %.1f s; %s\n" % (
            n, len(corpus.files), dt, summary[0] if summary else ""))
        per_rule = detections_from_events(corpus, rep.stdout.decode().splitlines())
        if args.merge:
            per_rule = merge_rules(per_rule)
        for r in (list(per_rule) if args.merge else policy_rule_ids(args.policy) or list(per_rule)):
            report(corpus, per_rule.get(r, {}), "rule %s" % r, args.per_file)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
