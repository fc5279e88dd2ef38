#!/usr/bin/env python3
"""The linux/arm64 agent, cross-compiled (tools/arm64/), run under qemu-user against a real
mosquitto and the real console (both native): it connects, decodes JSON and Sparkplug B
messages, and its alerts arrive at the console. Run by tools/test.sh after the arm64 build,
with EDGE_AGENT_ARM64_BIN (the arm64 edge-agent) and EDGE_ARM64_SYSROOT (the sysroot the
binary's libraries and dynamic loader are in, qemu's -L); fails without them."""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import sparkplug_node  # noqa: E402  (its protobuf encoder)

ARM64_BIN = os.environ.get("EDGE_AGENT_ARM64_BIN", "")
SYSROOT = os.environ.get("EDGE_ARM64_SYSROOT", "")
QEMU = shutil.which("qemu-aarch64")
POLICY = """\
rules:
  - id: overheat
    match: "sensors/+/temp"
    kind: threshold
    above: 50
    clear: 45
    severity: critical
  - id: sparkplug-hot
    match: "spBv1.0/+/+/Temperature"
    kind: threshold
    above: 90
    severity: critical
"""


class Arm64Test(harness.IntegrationTest):
    needs = ("agent", "console")

    def setUp(self):
        super().setUp()
        missing = [name for name, v in (("EDGE_AGENT_ARM64_BIN", ARM64_BIN),
                                         ("EDGE_ARM64_SYSROOT", SYSROOT),
                                         ("qemu-aarch64", QEMU)) if not v]
        self.assertEqual(missing, [], "needed for the arm64 test")

    def test_the_arm64_agent_raises_alerts_at_the_console(self):
        machine = subprocess.run(["file", "-b", ARM64_BIN], stdout=subprocess.PIPE,
                                 check=False).stdout.decode()
        self.assertIn("ARM aarch64", machine)
        mq = self.start_mosquitto()
        console = self.start_console()
        agent = self.own(harness.Agent(self.tmp, mq, console, policy=POLICY,
                                       topics=("sensors/#", "spBv1.0/#")))
        native_argv = agent._argv  # pylint: disable=protected-access
        agent._argv = lambda: [QEMU, "-L", SYSROOT, ARM64_BIN] + native_argv()[1:]
        agent.start(timeout=60)  # emulated: slower to start

        harness.publish(mq.port, "sensors/boiler/temp", '{"value": 72.5}')
        node = sparkplug_node
        birth = node.payload([node.metric("bdSeq", None, node.INT64, 0),
                              node.metric("Temperature", 1, node.DOUBLE, 95.0)], seq=0)
        harness.publish(mq.port, "spBv1.0/plant/NBIRTH/press1", birth)
        harness.wait_until(lambda: len(console.alerts(node="node-1")) >= 2, 60,
                           what="both alerts from the arm64 agent at the console")
        got = {(a["rule"], a["sensor"], a["value"]) for a in console.alerts(node="node-1")}
        self.assertEqual(got, {("overheat", "sensors/boiler/temp", 72.5),
                               ("sparkplug-hot", "spBv1.0/plant/press1/Temperature", 95.0)})
        self.assertEqual(agent.metric("edge_agent_sparkplug_messages_total", type="NBIRTH"), 1)
        self.assertEqual(agent.process.stop(20), 0)  # SIGTERM: drains and exits 0


if __name__ == "__main__":
    harness.main()
