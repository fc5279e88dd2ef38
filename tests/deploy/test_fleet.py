#!/usr/bin/env python3
"""A fleet of five edge nodes against one console, one node's uplink cut and restored.

Each node is a network namespace with two links to the host: "mgmt0" (the site network:
its MQTT broker, and the test reading the node's /metrics and /readyz) and "wan0" (the
uplink: the console, through a relay on the host that stands for the site's router). Each
node runs its own edge-agent (own process, database, node name and token) from
tests/integration/harness.py's Agent inside its namespace; one mosquitto and one
edge-console run on the host.

The test: all five deliver alerts; node 2's uplink link goes down for OUTAGE_S seconds
while every node keeps raising alerts; the other four keep delivering within seconds, node
2 stays ready and buffers (outbox_pending grows, uploads retried); after the link comes
back node 2 drains every alert exactly once; GET /v1/nodes lists all five with their
counts and last-seen times. Needs root (ip netns); skipped otherwise.
"""

import os
import re
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402

NODES = 5
CUT = 2            # index of the node whose uplink is cut
OUTAGE_S = 12
MGMT_NET = "10.231"    # 10.231.<i>.0/30: host .1, node .2
WAN_NET = "10.232"     # 10.232.<i>.0/30: host .1 (console relay), node .2
NS_PREFIX = "edge-fleet-"

POLICY = """\
rules:
  - id: overheat
    match: "site/+/+/temp"
    kind: threshold
    above: 50
    clear: 45
    for: 0s
    severity: critical
"""


def ip(*args, check=True):
    res = subprocess.run(["ip"] + [str(a) for a in args], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=20, check=False)
    if check and res.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(map(str, args)), res.stdout.decode()))
    return res.stdout.decode()


def netns_usable():
    if os.geteuid() != 0 or not harness.shutil.which("ip"):
        return False
    probe = "%sprobe-%d" % (NS_PREFIX, os.getpid())
    try:
        ip("netns", "add", probe)
        ip("netns", "del", probe)
        return True
    except (RuntimeError, OSError, subprocess.SubprocessError):
        return False


def remove_stale_namespaces():
    """Namespaces left by a killed run of this test (their pid is gone)."""
    for line in ip("netns", "list", check=False).splitlines():
        m = re.match(r"(%s(\d+)-\d+)" % re.escape(NS_PREFIX), line)
        if m and not os.path.exists("/proc/%s" % m.group(2)):
            ip("netns", "del", m.group(1), check=False)


class Node:
    """One edge node: a network namespace with a site link and an uplink."""

    def __init__(self, index):
        self.index = index
        self.name = "node-%d" % index
        self.ns = "%s%d-%d" % (NS_PREFIX, os.getpid(), index)
        tag = "%d%d" % (os.getpid() % 10000, index)
        self.host_mgmt = "efm" + tag      # host ends of the two links (<= 15 characters)
        self.host_wan = "efw" + tag
        self.mgmt_host_ip = "%s.%d.1" % (MGMT_NET, index)
        self.mgmt_node_ip = "%s.%d.2" % (MGMT_NET, index)
        self.wan_host_ip = "%s.%d.1" % (WAN_NET, index)
        self.wan_node_ip = "%s.%d.2" % (WAN_NET, index)

    def create(self):
        ip("netns", "add", self.ns)
        ip("-n", self.ns, "link", "set", "lo", "up")
        for host_end, node_end, host_ip, node_ip in (
                (self.host_mgmt, "mgmt0", self.mgmt_host_ip, self.mgmt_node_ip),
                (self.host_wan, "wan0", self.wan_host_ip, self.wan_node_ip)):
            ip("link", "add", host_end, "type", "veth", "peer", "name", node_end,
               "netns", self.ns)
            ip("addr", "add", host_ip + "/30", "dev", host_end)
            ip("link", "set", host_end, "up")
            ip("-n", self.ns, "addr", "add", node_ip + "/30", "dev", node_end)
            ip("-n", self.ns, "link", "set", node_end, "up")
        return self

    def uplink(self, up):
        ip("link", "set", self.host_wan, "up" if up else "down")

    def stop(self):
        ip("netns", "del", self.ns, check=False)  # also removes both veth pairs


class Endpoint:
    """What harness.Agent needs of a broker or console: a URL (as the node reaches it),
    the broker's host port for publishing, the console's tokens."""

    def __init__(self, url, port=None, tokens=None):
        self.url = url
        self.port = port
        self.tokens = tokens


class NodeAgent(harness.Agent):
    """harness.Agent run inside the node's namespace, its HTTP port on the site link."""

    def __init__(self, workdir, node, broker, console):
        self.node = node
        super().__init__(workdir, broker, console, node_id=node.name, policy=POLICY,
                         topics=("site/%s/#" % node.name,))
        # A request that hangs on a dead link gives up after 3 s, not the default 10 s.
        self.process.env = dict(os.environ, EDGE_AGENT_CONSOLE_TIMEOUT="3s")

    def _argv(self):
        argv = super()._argv()
        argv[argv.index("--http") + 1] = "%s:%d" % (self.node.mgmt_node_ip, self.http_port)
        return ["ip", "netns", "exec", self.node.ns] + argv

    @property
    def url(self):
        return "http://%s:%d" % (self.node.mgmt_node_ip, self.http_port)


def episodes(node, t0, count, sensor="boiler"):
    """`count` overheat episodes (firing + resolved: 2 alert events each) on one sensor."""
    topic = "site/%s/%s/temp" % (node, sensor)
    out, ts = [], t0
    for _ in range(count):
        for v in (20, 80, 30):
            out.append((topic, harness.reading(v, ts)))
            ts += 1000
    return out


@unittest.skipUnless(netns_usable(), "needs root and ip netns")
class FleetTest(harness.IntegrationTest):
    needs = ("agent", "console")

    def test_one_node_loses_its_uplink(self):
        remove_stale_namespaces()
        nodes = [self.own(Node(i)).create() for i in range(NODES)]
        # One broker for the site, reachable from each node over its site link (and from
        # the test on loopback).
        site_port = harness.free_port()
        mq = self.own(harness.Mosquitto(self.tmp, extra_config=[
            "listener %d %s" % (site_port, n.mgmt_host_ip) for n in nodes])).start()
        console = self.start_console(nodes=[n.name for n in nodes])
        agents = []
        for n in nodes:
            relay = self.own(harness.Relay(console.port, n.wan_host_ip))
            agent = self.own(NodeAgent(
                self.tmp, n,
                Endpoint("tcp://%s:%d" % (n.mgmt_host_ip, site_port), port=mq.port),
                Endpoint("http://%s:%d" % (n.wan_host_ip, relay.port), tokens=console.tokens)))
            agents.append(agent.start(ready=False))
        for a in agents:
            a.wait_ready(30)

        def counted(agent, probe):
            harness.publish(mq.port, "site/%s/probe%d/level" % (agent.node_id, probe), "1")
            return agent.metric("edge_agent_readings_received_total") > 0

        for a in agents:
            harness.wait_until(lambda a=a: counted(a, 0), 20, 0.3,
                               "%s receiving readings" % a.node_id)

        def alerts_of(node):
            return [x for x in console.alerts(node=node) if x["rule"] == "overheat"]

        # Before: one episode per node, delivered everywhere.
        t0 = harness.now_ms() - 3_600_000
        harness.publish_many(mq.port, [m for n in nodes for m in episodes(n.name, t0, 1)])
        for n in nodes:
            harness.wait_until(lambda n=n: len(alerts_of(n.name)) == 2, 20, 0.2,
                               "2 alerts from %s" % n.name)

        # Outage: node 2's uplink goes down; every node raises three more episodes.
        cut = agents[CUT]
        nodes[CUT].uplink(False)
        cut_at = time.monotonic()
        harness.publish_many(mq.port, [m for n in nodes
                                       for m in episodes(n.name, t0 + 100_000, 3, "pump")])
        for i, n in enumerate(nodes):
            if i == CUT:
                continue
            harness.wait_until(lambda n=n: len(alerts_of(n.name)) == 8, 10, 0.2,
                               "%s delivering during node %d's outage" % (n.name, CUT))
        others_done = time.monotonic() - cut_at
        harness.wait_until(lambda: cut.metric("edge_agent_alerts_raised_total") == 4, 10, 0.2,
                           "node %d raising its alerts while cut off" % CUT)
        harness.wait_until(lambda: cut.metric("edge_agent_uploads_total", result="retry") > 0,
                           OUTAGE_S, 0.2, "node %d retrying uploads" % CUT)
        self.assertEqual(len(alerts_of(nodes[CUT].name)), 2, "node 2 reached the console")
        self.assertEqual(cut.metric("edge_agent_outbox_pending"), 6)
        self.assertTrue(cut.ready(), "a lost uplink must not make the agent unready")
        for i, a in enumerate(agents):
            if i != CUT:
                self.assertEqual(a.metric("edge_agent_outbox_pending"), 0, a.node_id)
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - cut_at)))

        # Restored: node 2 drains its outbox, every alert once.
        nodes[CUT].uplink(True)
        restored_at = time.monotonic()
        restored_ms = harness.now_ms()
        harness.wait_until(lambda: len(alerts_of(nodes[CUT].name)) == 8, 30, 0.2,
                           "node %d draining after the outage" % CUT)
        harness.wait_until(lambda: cut.metric("edge_agent_outbox_pending") == 0, 10, 0.2,
                           "node %d's empty outbox" % CUT)
        drained = time.monotonic() - restored_at

        everything = console.alerts()
        ids = [x["id"] for x in everything]
        self.assertEqual(len(ids), len(set(ids)), "an alert stored twice")
        self.assertEqual(len([x for x in everything if x["rule"] == "overheat"]), 8 * NODES)
        fleet = {n["node"]: n for n in console.nodes()}
        for n in nodes:
            self.assertIn(n.name, fleet)
            self.assertEqual(fleet[n.name]["alerts"], 8, n.name)
            self.assertIsNotNone(fleet[n.name]["last_seen_ms"], n.name)
        self.assertGreaterEqual(fleet[nodes[CUT].name]["last_seen_ms"], restored_ms - 1000)
        dbs = {a.db_path for a in agents}
        self.assertEqual(len(dbs), NODES)
        for path in dbs:
            self.assertTrue(os.path.exists(path), path)
        sys.stderr.write("fleet: others delivered %.1fs into the outage; node %d drained "
                         "%.1fs after its uplink came back\n" % (others_done, CUT, drained))


if __name__ == "__main__":
    harness.main()
