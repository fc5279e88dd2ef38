#!/usr/bin/env python3
"""Push to applied: how long a new policy version takes to be applied by every agent.

Starts a private mosquitto, edge-console (with a signing key) and N edge-agent processes
(labels site=plant-1, each holding the policy WebSocket), then pushes M versions one after
the other with `PUT /v1/policies/bench`. For every version and agent, the latency is the
console's `updated_ms` of the agent's `applied` report minus the version's `created_ms`
(both from the console's clock). The baseline, measured in the same run, is the PUT
request itself (validation, signing, storing, fan-out), timed by this script.

  tools/bench/policy_push.py --agent build/agent/edge-agent \
      --console build/tools/console/edge-console --agents 50 --pushes 20
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))


def policy(version):
    return ("rules:\n  - id: hot-%d\n    match: \"sensors/+/temp\"\n    kind: threshold\n"
            "    above: %d\n" % (version, 50 + version))


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agent", required=True)
    ap.add_argument("--console", required=True)
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--pushes", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per push")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--max-p99-ms", type=float, default=1000.0)
    args = ap.parse_args()
    os.environ["EDGE_AGENT_BIN"] = os.path.abspath(args.agent)
    os.environ["EDGE_CONSOLE_BIN"] = os.path.abspath(args.console)
    import harness  # noqa: E402 (reads the binaries from the environment)

    tmp = tempfile.mkdtemp(prefix="edge-policy-push-")
    owned = []
    try:
        priv, pub = os.path.join(tmp, "c.key"), os.path.join(tmp, "c.pub")
        subprocess.run([args.console, "keygen", "--private", priv, "--public", pub],
                       check=True, capture_output=True, timeout=30)
        mosquitto = harness.Mosquitto(tmp).start()
        owned.append(mosquitto)
        nodes = ["node-%03d" % i for i in range(args.agents)]
        console = harness.Console(tmp, nodes, ["--signing-key", priv]).start()
        owned.append(console)
        extra = ("labels: \"site=plant-1\"\nsync:\n  policy_key: %s\n" % json.dumps(pub))
        started = time.monotonic()
        agents = []
        for node in nodes:
            agent = harness.Agent(tmp, mosquitto, console, node_id=node, policy="rules: []\n",
                                  extra_config=extra)
            agent.start(ready=False)
            owned.append(agent)
            agents.append(agent)
        for agent in agents:
            agent.wait_ready(60)

        def channels():
            return harness.parse_prometheus(
                harness.http_request(console.url + "/metrics")[1].decode())

        def connected():
            m = channels()
            return sum(v for (n, _), v in m.items() if n == "edge_console_policy_channels")

        harness.wait_until(lambda: connected() >= args.agents, 60, 0.2,
                           "%d policy channels" % args.agents)
        print("%d agents up and connected in %.1f s" % (args.agents,
                                                        time.monotonic() - started))

        latencies, put_ms = [], []
        for i in range(args.pushes):
            body = {"body": policy(i + 1), "selector": "site=plant-1"}
            t0 = time.monotonic()
            status, reply = console.request("PUT", "/v1/policies/bench",
                                            token=console.admin_token, body=body)
            put_ms.append((time.monotonic() - t0) * 1000)
            if status != 201:
                raise RuntimeError("PUT: %d %r" % (status, reply))
            version = reply["version"]

            def all_applied():
                st, doc = console.request("GET", "/v1/policies/bench",
                                          token=console.admin_token)
                if st != 200:
                    return None
                ok = [n for n in doc["nodes"]
                      if n["state"] == "applied" and n["applied_version"] == version]
                return doc if len(ok) == args.agents else None

            doc = harness.wait_until(all_applied, args.timeout, 0.02,
                                     "every agent to apply version %d" % version)
            created = next(v["created_ms"] for v in doc["versions"] if v["version"] == version)
            latencies += [n["updated_ms"] - created for n in doc["nodes"]]

        out = {
            "agents": args.agents,
            "pushes": args.pushes,
            "samples": len(latencies),
            "push_to_applied_ms": {"p50": percentile(latencies, 50),
                                   "p99": percentile(latencies, 99), "max": max(latencies)},
            "put_request_ms": {"p50": round(percentile(put_ms, 50), 1),
                               "p99": round(percentile(put_ms, 99), 1),
                               "max": round(max(put_ms), 1)},
            "cores": os.cpu_count(),
        }
        print(json.dumps(out, indent=2))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=2)
        p99 = out["push_to_applied_ms"]["p99"]
        print("push -> applied p99 %d ms over %d samples (target < %d ms): %s"
              % (p99, len(latencies), args.max_p99_ms,
                 "met" if p99 < args.max_p99_ms else "NOT met"))
        return 0 if p99 < args.max_p99_ms else 1
    finally:
        for o in reversed(owned):
            try:
                o.stop()
            except Exception as e:  # pylint: disable=broad-except
                sys.stderr.write("stopping: %s\n" % e)
        if not os.environ.get("EDGE_BENCH_KEEP"):
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
