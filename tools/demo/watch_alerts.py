#!/usr/bin/env python3
"""Prints alert events as they arrive at an edge-console (GET /v1/alerts, admin token)."""
import argparse
import json
import os
import sys
import time
import urllib.request


def fetch(base, token, since):
    req = urllib.request.Request(f"{base}/v1/alerts?since={since}&limit=10000",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("token")
    ap.add_argument("--until-pid", type=int, help="stop once this process has exited")
    ap.add_argument("--grace", type=float, default=2.0, help="seconds to keep polling after")
    ap.add_argument("--count", action="store_true", help="print the number of alerts and exit")
    a = ap.parse_args()
    if a.count:
        try:
            print(len(fetch(a.base, a.token, 0)))
        except Exception as e:  # the console may be gone at the end of an interrupted demo
            print(f"unavailable ({e})")
        return
    seen = set()
    deadline = None
    while True:
        try:
            for al in fetch(a.base, a.token, 0):
                if al["id"] in seen:
                    continue
                seen.add(al["id"])
                ts = time.strftime("%H:%M:%S", time.gmtime(al["ts_ms"] / 1000))
                print(f"{ts}  {al['state']:8} {al['severity']:8} {al['rule']:14} "
                      f"{al['sensor']:34} value={al['value']:.2f}  [{al['node']}]", flush=True)
        except Exception as e:
            print(f"console poll failed: {e}", file=sys.stderr)
        if a.until_pid and not alive(a.until_pid) and deadline is None:
            deadline = time.time() + a.grace
        if deadline is not None and time.time() >= deadline:
            return
        time.sleep(1)


if __name__ == "__main__":
    main()
