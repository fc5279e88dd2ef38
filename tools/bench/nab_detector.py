#!/usr/bin/env python3
"""Prototype of a tuning-free `anomaly` rule kind, scored on nab-dev with nab_score.py.

One pass, fixed state per sensor (about 1.4 KiB with float32 in C++), the same defaults for
every sensor; one knob, `sensitivity` (default 1.0). Per reading:

1. Baseline: the last N=200 values in a ring buffer; every REFRESH=8 readings its median
   `med` and scale `scale = max(1.4826 * MAD, 1.2533 * mean|x - med|, 1e-9 * max(1, |med|))`
   are recomputed by selection (the mean absolute deviation keeps count series whose MAD is
   0 from giving infinite scores).
2. Seasonal baseline: 24 hour-of-day slots (UTC), each an outlier-clamped exponentially
   weighted mean `sm` and mean absolute deviation `sd`; weight per reading
   `max(1/count, 1/(7 * readings per slot per day))` (about one week of memory).
3. Deviation `dev = (x - med) / scale`; once the slot has seen two days, the seasonal
   deviation `(x - sm) / max(1.2533 * sd, scale / 4)` replaces it when smaller: a reading
   is unusual only if it is unusual both for the last N readings and for its time of day.
4. Surprise: `s = |dev|`; `p` = share of the decayed histogram of past s (64 bins of
   log2 s from -6 in steps of 1/4, half-life 4000 readings) at or above s's bin, i.e. how
   often this sensor has deviated at least this much.
5. Bad when, after a warm-up of 32 + 100 readings, `s >= 3` and `p <= alpha`,
   `alpha = 0.003 * sensitivity`. Fires on the first bad reading of an episode (outside
   the hold-off); the episode resolves on the first reading that is not bad with
   `p > 10 * alpha`; then a hold-off of 12 h event time.

  tools/bench/nab_detector.py [--sensitivity 1.0] [--out detections.json] [--sweep]
"""

import argparse
import bisect
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nab_score  # noqa: E402

HOUR_MS = 3600_000
DAY_MS = 24 * HOUR_MS

# Constants (the same for every sensor).
RING = 200             # baseline ring buffer, values
REFRESH = 8            # baseline median/scale recomputed every REFRESH readings
MIN_BASELINE = 32      # readings in the ring before any score
WARMUP_SCORES = 100    # scores seen before the rule decides
SLOTS = 24             # seasonal slots per day (hour of day, UTC)
SEASON_DAYS = 7.0      # seasonal memory, days
SEASON_MIN_DAYS = 2    # seasonal slot used once it has seen this many days
CLAMP = 3.0            # seasonal update clamps x to sm +- CLAMP * sd
HIST_BINS = 64
HIST_LO = -6.0         # log2 of the lowest bin edge
HIST_STEP = 0.25       # bin width in log2 units
HIST_HALF_LIFE = 4000  # readings
MIN_SCORE = 3.0
ALPHA = 0.003          # at sensitivity 1
CLEAR_FACTOR = 10.0
HOLD_OFF_MS = 12 * HOUR_MS


class AnomalyDetector:
    """State of one (rule, sensor). update(ts_ms, value) -> True when an alert fires."""

    def __init__(self, sensitivity=1.0, season=True, ring=RING, refresh=REFRESH):
        self.alpha = ALPHA * sensitivity
        self.season = season
        self.n_ring = ring
        self.refresh = refresh
        self.ring = [0.0] * ring  # FIFO of the last values
        self.head = 0
        self.count = 0
        self.med = 0.0
        self.scale = 1.0
        self.since_refresh = refresh  # forces a refresh at the first use
        self.sm = [0.0] * SLOTS
        self.sd = [0.0] * SLOTS
        self.sc = [0.0] * SLOTS
        self.last_ts = None
        self.dt = None  # EW reporting interval, ms
        self.hist = [0.0] * HIST_BINS
        self.hist_total = 0.0
        self.decay = 0.5 ** (1.0 / HIST_HALF_LIFE)
        self.scored = 0
        self.firing = False
        self.hold_until = -1

    def _refresh(self):
        a = sorted(self.ring[:self.count])  # C++: nth_element twice on a scratch copy
        m = len(a)
        med = a[m // 2]
        d = sorted(abs(x - med) for x in a)
        mad = d[m // 2]
        meanad = sum(d) / m
        self.med = med
        self.scale = max(1.4826 * mad, 1.2533 * meanad, 1e-9 * max(1.0, abs(med)))

    def _bin(self, s):
        if s <= 0.0:
            return 0
        b = int(math.floor((math.log2(s) - HIST_LO) / HIST_STEP))
        return min(max(b, 0), HIST_BINS - 1)

    def update(self, ts, x):
        if self.last_ts is not None and ts > self.last_ts:
            d = ts - self.last_ts
            self.dt = d if self.dt is None else self.dt + 0.05 * (min(d, 4 * self.dt) - self.dt)
        self.last_ts = ts
        fired = False
        if self.count >= MIN_BASELINE:
            if self.since_refresh >= self.refresh:
                self._refresh()
                self.since_refresh = 0
            self.since_refresh += 1
            med, scale = self.med, self.scale
            dev = (x - med) / scale
            if self.season and self.dt:
                k = int((ts % DAY_MS) * SLOTS // DAY_MS)
                per = DAY_MS / SLOTS / self.dt  # readings per slot and day
                if self.sc[k] >= SEASON_MIN_DAYS * per:
                    sdev = (x - self.sm[k]) / max(1.2533 * self.sd[k], 0.25 * scale,
                                                  1e-9 * max(1.0, abs(med)))
                    if abs(sdev) < abs(dev):
                        dev = sdev
                self.sc[k] += 1
                w = max(1.0 / self.sc[k], 1.0 / (per * SEASON_DAYS))
                if self.sc[k] == 1:
                    self.sm[k] = x
                    self.sd[k] = scale
                else:
                    lim = CLAMP * self.sd[k]
                    xc = min(max(x, self.sm[k] - lim), self.sm[k] + lim)
                    self.sd[k] += w * (abs(xc - self.sm[k]) - self.sd[k])
                    self.sm[k] += w * (xc - self.sm[k])
            s = abs(dev)
            b = self._bin(s)
            p = sum(self.hist[b:]) / self.hist_total if self.hist_total > 0 else 1.0
            self.scored += 1
            bad = self.scored >= WARMUP_SCORES and s >= MIN_SCORE and p <= self.alpha
            if self.firing:
                if not bad and p > CLEAR_FACTOR * self.alpha:
                    self.firing = False
                    self.hold_until = ts + HOLD_OFF_MS
            elif bad and ts >= self.hold_until:
                self.firing = True
                fired = True
            for i in range(HIST_BINS):  # C++: lazy scaling makes this O(1)
                self.hist[i] *= self.decay
            self.hist_total = self.hist_total * self.decay + 1.0
            self.hist[b] += 1.0
        self.ring[self.head] = x
        self.head = (self.head + 1) % self.n_ring
        if self.count < self.n_ring:
            self.count += 1
        return fired


def detect(corpus, make):
    """Runs a fresh detector per file; returns ({file: [rows]}, readings, seconds)."""
    det = {}
    n = 0
    t0 = time.time()
    for f in corpus.files:
        d = make()
        rows = []
        prev = None
        for i, (t, v) in enumerate(zip(corpus.ts[f], corpus.values[f])):
            if prev == (t, v):  # a duplicate, ignored as by the agent
                continue
            prev = (t, v)
            n += 1
            if d.update(t, v):
                rows.append(i)
        det[f] = rows
    return det, n, time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default=nab_score.DEFAULT_CORPUS)
    ap.add_argument("--sensitivity", type=float, default=1.0)
    ap.add_argument("--no-season", action="store_true")
    ap.add_argument("--sweep", action="store_true",
                    help="also score sensitivity one notch (x1.5) lower and higher")
    ap.add_argument("--per-file", action="store_true")
    ap.add_argument("--out", help="write the detections as JSON {file: [timestamps]}")
    args = ap.parse_args()
    corpus = nab_score.Corpus(args.corpus)
    sens = [args.sensitivity]
    if args.sweep:
        sens = [args.sensitivity / 1.5, args.sensitivity, args.sensitivity * 1.5]
    for s in sens:
        det, n, dt = detect(corpus, lambda: AnomalyDetector(s, not args.no_season))
        nab_score.report(corpus, det, "anomaly, sensitivity %.3g (%.1f us/reading in Python)"
                         % (s, dt / n * 1e6), args.per_file)
        if args.out and s == args.sensitivity:
            with open(args.out, "w") as f:
                json.dump({k: [corpus.ts[k][i] for i in v] for k, v in det.items()}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
