#!/usr/bin/env python3
"""Signed policy distribution with real processes: one edge-console, three edge-agents
with different labels, a real mosquitto. The adversarial cases (tampered body, another
key, an older version) need a console that misbehaves; a small poll-only console in this
file serves documents signed with `openssl pkeyutl`, and the agent falls back to polling
because it refuses the WebSocket upgrade."""

import base64
import http.server
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

# The local policy file: never fires at the values published here.
LOCAL_POLICY = """\
rules:
  - id: local
    match: "sensors/+/temp"
    kind: threshold
    above: 1000
"""


def hot_policy(above):
    return """\
rules:
  - id: hot
    match: "sensors/+/temp"
    kind: threshold
    above: %d
    for: 0s
    severity: critical
""" % above


INVALID_POLICY = """\
rules:
  - id: hot
    match: "sensors/+/temp"
    kind: threshold
    abov: 50
"""


def keygen(tmp, tag):
    priv = os.path.join(tmp, "%s.key" % tag)
    pub = os.path.join(tmp, "%s.pub" % tag)
    subprocess.run([harness.EDGE_CONSOLE_BIN, "keygen", "--private", priv, "--public", pub],
                   check=True, capture_output=True, timeout=30)
    return priv, pub


class FleetTest(harness.IntegrationTest):
    needs = ("agent", "console")

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def start_fleet(self, labels, keys=None, console_key=None, claims=None):
        """Console signing with console_key (a fresh key by default), one agent per entry
        of `labels` ({node: "k=v,..."}, bound in the console's token file), each trusting
        keys[node] (default: the console's public key) and claiming claims[node] (default:
        its bound labels) in its hello."""
        self.priv, self.pub = keygen(self.tmp, "console")
        self.mosquitto = self.start_mosquitto()
        self.console = self.start_console(
            tuple(labels), extra_args=["--signing-key", console_key or self.priv],
            labels=labels)
        self.admin_file = self.write("admin.token", self.console.admin_token + "\n")
        self.agents = {}
        for node, bound in labels.items():
            key = (keys or {}).get(node, self.pub)
            text = (claims or {}).get(node, bound)
            extra = ("labels: %s\nsync:\n  policy_key: %s\n  policy_poll_interval: 1s\n"
                     % (json.dumps(text), json.dumps(key)))
            self.agents[node] = self.start_agent(self.mosquitto, self.console, node_id=node,
                                                 policy=LOCAL_POLICY, extra_config=extra)
        for agent in self.agents.values():
            agent.wait_ingesting()

    def cli(self, *args):
        argv = [harness.EDGE_CONSOLE_BIN, "policy"] + list(args) + [
            "--url", self.console.url, "--token-file", self.admin_file]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return proc.returncode, proc.stdout + proc.stderr

    def push(self, name, body, *opts):
        rc, out = self.cli("push", self.write("%s.yaml" % name, body), "--name", name, *opts)
        self.assertEqual(rc, 0, out)
        return out

    def status(self, name):
        status, body = self.console.request("GET", "/v1/policies/" + name,
                                            token=self.console.admin_token)
        self.assertEqual(status, 200, body)
        return body

    def node_state(self, name, node):
        for n in self.status(name)["nodes"]:
            if n["node"] == node:
                return n
        return None

    def wait_state(self, name, node, state, version, timeout=15):
        def reached():
            n = self.node_state(name, node)
            return n is not None and n["state"] == state and (
                state == "rejected" or n["applied_version"] == version)

        harness.wait_until(reached, timeout, 0.1,
                           "%s to report %s %s@%d" % (node, state, name, version))
        return self.node_state(name, node)

    def hot_fired(self, agent):
        return agent.metric("edge_agent_alerts_raised_total", rule="hot")

    def publish_hot(self, sensor, value=60):
        harness.publish(self.mosquitto.port, "sensors/%s/temp" % sensor, str(value), qos=1)

    def wait_fired(self, agent, at_least, timeout=10):
        harness.wait_until(lambda: self.hot_fired(agent) >= at_least, timeout, 0.1,
                           "%s to fire rule hot %d times" % (agent.node_id, at_least))

    def test_push_reaches_matching_nodes_then_rollback_and_restart_without_console(self):
        self.start_fleet({"plant1-a": "site=plant-1,line=a",
                          "plant1-b": "site=plant-1,line=b",
                          "plant2-a": "site=plant-2,line=a"})
        a, b, c = (self.agents[n] for n in ("plant1-a", "plant1-b", "plant2-a"))

        self.push("boilers", hot_policy(50), "--selector", "site=plant-1")
        for node in ("plant1-a", "plant1-b"):
            self.wait_state("boilers", node, "applied", 1)
        for agent in (a, b):
            self.assertEqual(agent.metric("edge_agent_policy_version"), 1)
        self.assertEqual(c.metric("edge_agent_policy_version"), 0)
        c_state = self.node_state("boilers", "plant2-a")
        self.assertTrue(c_state is None or c_state["applied_version"] is None, c_state)

        # The new rule fires on the selected nodes only.
        self.publish_hot("s1")
        self.wait_fired(a, 1)
        self.wait_fired(b, 1)
        harness.wait_until(
            lambda: {x["node"] for x in self.console.alerts() if x.get("rule") == "hot"}
            >= {"plant1-a", "plant1-b"}, 15, 0.2, "hot alerts of both plant-1 nodes")
        self.assertEqual(self.hot_fired(c), 0)

        # Version 2 raises the threshold: the same reading no longer fires.
        self.push("boilers", hot_policy(1000), "--selector", "site=plant-1")
        for node in ("plant1-a", "plant1-b"):
            self.wait_state("boilers", node, "applied", 2)
        fired_a, fired_b = self.hot_fired(a), self.hot_fired(b)
        received = {x: x.metric("edge_agent_readings_received_total") for x in (a, b)}
        self.publish_hot("s2")
        for x in (a, b):
            harness.wait_until(
                lambda x=x: x.metric("edge_agent_readings_received_total") > received[x], 10,
                0.1, "the reading at %s" % x.node_id)
        time.sleep(0.5)  # past the group commit that would count an alert
        self.assertEqual(self.hot_fired(a), fired_a)
        self.assertEqual(self.hot_fired(b), fired_b)

        # Rollback to version 1 is version 3 with version 1's rules, on both nodes.
        rc, out = self.cli("rollback", "boilers", "--to", "1")
        self.assertEqual(rc, 0, out)
        for node in ("plant1-a", "plant1-b"):
            self.wait_state("boilers", node, "applied", 3)
        self.publish_hot("s3")
        self.wait_fired(a, fired_a + 1)
        self.wait_fired(b, fired_b + 1)
        self.assertEqual(self.hot_fired(c), 0)

        # Console gone, agent restarted: it runs the last applied console policy.
        self.console.stop()
        a.restart()
        a.wait_ingesting()
        self.assertEqual(a.metric("edge_agent_policy_version"), 3)
        self.publish_hot("s4")
        self.wait_fired(a, 1)  # counters start again at 0 in the new process

    def test_a_node_claiming_another_sites_labels_gets_only_its_own_policy(self):
        # "spy" is bound to site=plant-1 with a free line label, and claims site=secret.
        self.start_fleet({"spy": "site=plant-1,line=*", "vault": "site=secret"},
                         claims={"spy": "site=secret,line=b,role=admin"})
        self.push("secret", hot_policy(50), "--selector", "site=secret")
        self.wait_state("secret", "vault", "applied", 1)
        self.push("lines", hot_policy(70), "--selector", "site=plant-1,line=b")
        self.wait_state("lines", "spy", "applied", 1)  # the free label was taken
        spy = self.agents["spy"]
        self.assertEqual(spy.metric("edge_agent_policy_version"), 1)
        self.assertIsNone(self.node_state("secret", "spy"))
        nodes = {n["node"]: n for n in self.status("lines")["nodes"]}
        self.assertEqual(nodes["spy"]["labels"], {"site": "plant-1", "line": "b"})
        self.assertGreaterEqual(self.console.metric("edge_console_policy_labels_refused_total"), 1)

    def test_invalid_policy_is_rejected_and_the_previous_keeps_firing(self):
        self.start_fleet({"n1": "site=plant-1", "n2": "site=plant-1"})
        self.push("p", hot_policy(50))
        for node in ("n1", "n2"):
            self.wait_state("p", node, "applied", 1)
        self.push("p", INVALID_POLICY, "--skip-validation")
        for node in ("n1", "n2"):
            state = self.wait_state("p", node, "rejected", 2)
            self.assertEqual(state["reason"], "invalid")
            self.assertIn("console:p@2", state["detail"])
        for agent in self.agents.values():
            self.assertEqual(agent.metric("edge_agent_policy_rejected_total", reason="invalid"), 1)
            self.assertEqual(agent.metric("edge_agent_policy_version"), 1)
        self.publish_hot("s1")
        for agent in self.agents.values():
            self.wait_fired(agent, 1)

    def test_canary_that_rejects_halts_the_rollout_and_one_that_applies_promotes_it(self):
        _, other_pub = keygen(self.tmp, "other")
        self.start_fleet({"line-a": "site=plant-1,line=a",
                          "line-b": "site=plant-1,line=b",
                          "line-c": "site=plant-1,line=c"},
                         keys={"line-a": other_pub})  # line-a trusts another key

        out = self.push("halts", hot_policy(50), "--selector", "site=plant-1",
                        "--canary", "line=a", "--canary-wait", "1")
        state = self.wait_state("halts", "line-a", "rejected", 1)
        self.assertEqual(state["reason"], "signature")
        harness.wait_until(lambda: self.status("halts")["versions"][0]["rollout"] == "halted",
                           10, 0.1, "rollout halted")
        time.sleep(2.5)  # well past the canary wait: the rest never received it
        for node in ("line-b", "line-c"):
            n = self.node_state("halts", node)
            self.assertTrue(n is None or n["applied_version"] is None, (out, n))
            self.assertEqual(self.agents[node].metric("edge_agent_policy_version"), 0)

        self.push("promotes", hot_policy(50), "--selector", "site=plant-1",
                  "--canary", "line=b", "--canary-wait", "1")
        self.wait_state("promotes", "line-b", "applied", 1)
        self.wait_state("promotes", "line-c", "applied", 1)  # after the promotion
        self.assertEqual(self.status("promotes")["versions"][0]["rollout"], "released")
        self.assertEqual(self.wait_state("promotes", "line-a", "rejected", 1)["reason"],
                         "signature")


class PollOnlyConsole:
    """Refuses the WebSocket upgrade (404), serves `doc` to POST /v1/policy/poll and keeps
    every report; batches are answered 503 (they stay in the agent's outbox)."""

    def __init__(self):
        self.doc = None
        self.ignore_cursor = False
        self.reports = []
        self.polls = 0
        self.lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, code, body=None):
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                if data:
                    self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self.reply(404, {"error": "no websocket here"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with owner.lock:
                    if self.path.endswith("/v1/policy/poll"):
                        owner.polls += 1
                        hello = json.loads(body)
                        doc = owner.doc
                        applied = hello.get("applied") or {}
                        if doc is None or (not owner.ignore_cursor and
                                           (applied.get("name"), applied.get("version"))
                                           == (doc["name"], doc["version"])):
                            return self.reply(204)
                        return self.reply(200, doc)
                    if self.path.endswith("/v1/policy/report"):
                        owner.reports.append(json.loads(body))
                        return self.reply(204)
                    if self.path.endswith("/v1/status"):
                        return self.reply(200, {"stored": True, "received_ms": harness.now_ms()})
                self.reply(503, {"error": "busy"})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d" % self.port
        self.tokens = {"n1": "poll-token"}

    def serve(self, doc, ignore_cursor=False):
        with self.lock:
            self.doc = doc
            self.ignore_cursor = ignore_cursor

    def report_for(self, name, version):
        with self.lock:
            for r in reversed(self.reports):
                if r["name"] == name and r["version"] == version:
                    return r
        return None

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def sign(key, name, version, seq, body, tmp):
    msg = os.path.join(tmp, "msg.bin")
    with open(msg, "wb") as f:
        f.write(("edge-policy/2\n%s\n%d\n%d\n" % (name, version, seq)).encode() + body.encode())
    raw = subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", key, "-in", msg],
                         check=True, capture_output=True, timeout=30).stdout
    return base64.b64encode(raw).decode()


class AdversarialConsoleTest(harness.IntegrationTest):
    needs = ("agent", "console")

    def doc(self, key, name, version, body):
        """A version as the console creates it: each gets the next fleet sequence."""
        self.seq = getattr(self, "seq", 1000) + 1
        return {"type": "policy", "name": name, "version": version, "seq": self.seq,
                "body": body, "signature": sign(key, name, version, self.seq, body, self.tmp),
                "created_ms": harness.now_ms()}

    def test_tampered_foreign_stale_and_replayed_versions(self):
        priv, pub = keygen(self.tmp, "console")
        other_priv, _ = keygen(self.tmp, "other")
        mosquitto = self.start_mosquitto()
        console = self.own(PollOnlyConsole())
        extra = ("labels: \"site=plant-1\"\nsync:\n  policy_key: %s\n"
                 "  policy_poll_interval: 1s\n" % json.dumps(pub))
        agent = self.start_agent(mosquitto, console, node_id="n1", policy=LOCAL_POLICY,
                                 extra_config=extra)
        agent.wait_ingesting()

        def judged(name, version, state, reason=""):
            r = harness.wait_until(lambda: console.report_for(name, version), 15, 0.1,
                                   "a report on %s@%d" % (name, version))
            self.assertEqual((r["state"], r["reason"]), (state, reason), r)
            return r

        def fires(sensor, expected):
            harness.publish(mosquitto.port, "sensors/%s/temp" % sensor, "60", qos=1)
            harness.wait_until(
                lambda: agent.metric("edge_agent_alerts_raised_total", rule="hot") >= expected,
                10, 0.1, "rule hot to fire %d times" % expected)

        # Versions in the order the console created them: p@1, then q@1, then p@2.
        p1 = self.doc(priv, "p", 1, hot_policy(5000))
        q1 = self.doc(priv, "q", 1, hot_policy(5000))
        p2 = self.doc(priv, "p", 2, hot_policy(50))

        # A good version 2 (over polling: the agent got 404 on the upgrade).
        console.serve(p2)
        judged("p", 2, "applied")
        self.assertEqual(agent.metric("edge_agent_policy_version"), 2)
        fires("s1", 1)

        # Tampered: signed, then the threshold changed.
        tampered = self.doc(priv, "p", 3, hot_policy(50))
        tampered["body"] = hot_policy(5000)
        console.serve(tampered)
        judged("p", 3, "rejected", "signature")

        # Signed by a key the agent does not trust.
        console.serve(self.doc(other_priv, "p", 4, hot_policy(5000)))
        judged("p", 4, "rejected", "signature")

        # Validly signed, but older than what runs.
        console.serve(p1)
        judged("p", 1, "rejected", "stale")

        # Validly signed, another name, older than what runs: a replay across names.
        console.serve(q1)
        judged("q", 1, "rejected", "stale")

        # Unsigned: refused, and the console is told.
        unsigned = self.doc(priv, "p", 5, hot_policy(5000))
        del unsigned["signature"]
        console.serve(unsigned)
        judged("p", 5, "rejected", "signature")

        # The version in force again: a replay, answered applied, not applied twice.
        applied_before = agent.metric("edge_agent_policy_applied_total")
        with console.lock:
            console.reports.clear()
        console.serve(p2, ignore_cursor=True)
        judged("p", 2, "applied")
        self.assertEqual(agent.metric("edge_agent_policy_applied_total"), applied_before)

        m = agent.metrics()
        self.assertEqual(agent.metric("edge_agent_policy_rejected_total", m, reason="signature"), 3)
        self.assertEqual(agent.metric("edge_agent_policy_rejected_total", m, reason="stale"), 2)
        self.assertEqual(agent.metric("edge_agent_policy_version", m), 2)
        fires("s2", 2)  # version 2's rule still runs

        # After a restart the sequence still protects: q@1 stays refused.
        with console.lock:
            console.reports.clear()
        console.serve(q1)
        agent.restart()
        agent.wait_ingesting()
        judged("q", 1, "rejected", "stale")
        self.assertEqual(agent.metric("edge_agent_policy_version"), 2)


if __name__ == "__main__":
    harness.main()
