#!/usr/bin/env python3
"""The store under pressure: the byte bound, SQLite's page limit, a file system that fills.

The agent never crashes and keeps ingesting; eviction follows the documented order
(status, rollups, then alerts, oldest first); /readyz says "not ready" exactly while the
store refuses writes.
"""

import os
import subprocess
import time

import fault_util
from fault_util import harness


def store_refusal_visible(agent):
    """True if the agent reports a refusing store in both /metrics and /readyz."""
    for _ in range(5):
        if agent.metric("edge_agent_store_writable") != 0:
            return False
        status, body = agent.get("/readyz")
        if status == 503 and "store" in body:
            return True
        time.sleep(0.05)
    return False


class DiskFullTest(harness.IntegrationTest):
    needs = ("agent", "console")

    def test_byte_bound_evicts_rollups_before_alerts(self):
        mq = self.start_mosquitto()
        # No console: the outbox only grows, so the bound must do the work.
        agent = self.start_agent(mq, store={"max_bytes": "64KiB", "readings_share": "0.5",
                                            "rollup_interval": "1s"})
        agent.wait_ingesting()
        stream = fault_util.SteadyStream(mq.port, sensors=10, period=0.05, workdir=self.tmp)
        stream.start()
        try:
            harness.wait_until(
                lambda: agent.metric("edge_agent_outbox_evicted_total", kind="alert") > 0, 60,
                0.5, "alerts evicted by the byte bound")
            harness.wait_until(lambda: agent.metric("edge_agent_readings_pruned_total") > 0, 60,
                               0.5, "readings pruned by the ring's share")
            received = agent.metric("edge_agent_readings_received_total")
            time.sleep(1.0)
            self.assertGreater(agent.metric("edge_agent_readings_received_total"), received)
        finally:
            stream.stop()
        m = agent.metrics()
        self.assertGreater(agent.metric("edge_agent_outbox_evicted_total", m, kind="rollup"), 0)
        self.assertLessEqual(agent.metric("edge_agent_store_content_bytes", m, part="outbox"),
                             32 * 1024)
        self.assertLessEqual(agent.metric("edge_agent_store_content_bytes", m, part="readings"),
                             32 * 1024)
        self.assertGreater(agent.metric("edge_agent_readings_pruned_total", m), 0)
        self.assertEqual(agent.get("/readyz")[0], 200)
        self.assertTrue(agent.alive())

    def test_page_limit_cuts_the_readings_ring_and_alerts_still_arrive(self):
        mq = self.start_mosquitto()
        console = self.start_console()
        # No logical bound: the database hits SQLite's page limit (1.2 MiB) instead.
        agent = self.start_agent(mq, console, store={"max_bytes": "0", "max_pages": "300"})
        agent.wait_ingesting()
        # Mostly quiet readings: one alert episode per sensor every 50 readings. Values of nine
        # decimal places take 10 bytes a reading in the ring (a short decimal takes 2 or 3),
        # so the database fills within the wait.
        stream = fault_util.SteadyStream(mq.port, sensors=40, period=0.02, workdir=self.tmp,
                                         cycle=(20.123456789,) * 48 + (90.123456789, 25.123456789))
        stream.start()
        try:
            harness.wait_until(lambda: agent.metric("edge_agent_readings_pruned_total") > 0, 90,
                               0.5, "the ring cut because the database is full")
            received = agent.metric("edge_agent_readings_received_total")
            time.sleep(1.0)
            self.assertGreater(agent.metric("edge_agent_readings_received_total"), received)
        finally:
            stream.stop()
        time.sleep(0.5)
        fault_util.wait_drained(agent, 30)
        m = agent.metrics()
        alerts = console.alerts(node="node-1")
        fault_util.check_exactly_once(self, alerts,
                                      agent.metric("edge_agent_alerts_raised_total", m),
                                      agent.metric("edge_agent_alerts_resolved_total", m))
        self.assertEqual(agent.metric("edge_agent_alerts_dropped_total", m), 0)
        self.assertEqual(agent.get("/readyz")[0], 200)

    def test_full_file_system_never_crashes_and_readyz_is_honest(self):
        if os.geteuid() != 0:
            self.skipTest("mounting a tmpfs needs root")
        disk = os.path.join(self.tmp, "disk")
        os.mkdir(disk)
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", disk],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        if res.returncode != 0:
            self.skipTest("cannot mount a tmpfs: %s" % res.stdout.decode(errors="replace"))
        self.addCleanup(subprocess.run, ["umount", "-l", disk], check=False)
        mq = self.start_mosquitto()
        console = self.start_console()
        # The bound fits the 4 MiB file system once the filler is gone (with the log).
        agent = self.own(harness.Agent(self.tmp, mq, console, store={"max_bytes": "1MiB"}))
        agent.db_path = os.path.join(disk, "node-1.db")
        agent._write_config("")  # pylint: disable=protected-access
        agent.start()
        agent.wait_ingesting()
        stream = fault_util.SteadyStream(mq.port, sensors=20, period=0.05, workdir=self.tmp,
                                         cycle=(20,) * 8 + (90, 25))
        stream.start()
        filler = os.path.join(disk, "filler")
        counted_firing = counted_resolved = 0
        try:
            time.sleep(2.0)
            # Take every free byte. Unbuffered: a buffered file would try again to write what
            # did not fit when it is closed, and raise ENOSPC there.
            with open(filler, "wb", buffering=0) as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                except OSError:
                    pass
            refused_seen = False
            received = agent.metric("edge_agent_readings_received_total")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                self.assertTrue(agent.alive(), "agent died on a full disk")
                if store_refusal_visible(agent):
                    refused_seen = True
                    break
                time.sleep(0.2)
            time.sleep(1.5)
            m = agent.metrics()
            self.assertGreater(agent.metric("edge_agent_readings_received_total", m), received,
                               "ingest stopped while the disk was full")
            if refused_seen:
                self.assertGreater(agent.metric("edge_agent_readings_dropped_total", m,
                                                reason="store_error") +
                                   agent.metric("edge_agent_alerts_uncommitted", m), 0)
            else:
                # Cutting the ring made room every time: then the store never refused.
                self.assertGreater(agent.metric("edge_agent_readings_pruned_total", m), 0)
            os.unlink(filler)
            harness.wait_until(lambda: agent.get("/readyz")[0] == 200, 20, 0.2,
                               "ready again after space came back")
            time.sleep(1.0)
        finally:
            stream.stop()
            if os.path.exists(filler):
                os.unlink(filler)
        time.sleep(0.5)
        fault_util.wait_drained(agent, 30)
        m = agent.metrics()
        counted_firing = agent.metric("edge_agent_alerts_raised_total", m)
        counted_resolved = agent.metric("edge_agent_alerts_resolved_total", m)
        fault_util.check_exactly_once(self, console.alerts(node="node-1"), counted_firing,
                                      counted_resolved)
        self.assertEqual(agent.metric("edge_agent_store_writable", m), 1)


if __name__ == "__main__":
    harness.main()
