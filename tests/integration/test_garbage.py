#!/usr/bin/env python3
"""A flood of garbage payloads: the agent stays ready, counts every rejection by reason,
and still alerts on a valid reading afterwards."""

import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TOPIC = "sensors/g/temp"  # matched by the overheat rule: a mis-parse would alert
FLOOD = 10_000


def odd_payloads():
    """Payloads that must each be rejected (published one message each)."""
    return [
        b"",  # empty
        b"9" * 200_000,  # larger than the default 64 KiB limit (and a number if parsed)
        b"[" * 5000 + b"]" * 5000,  # deep nesting
        b'{"a":' * 3000 + b"1" + b"}" * 3000,
        b"nan", b"NaN", b"-inf", b"Infinity", b"1e999", b'{"value": NaN}',
        b'{"value": 1e999}',
        b"{}", b"[]", b"null", b'{"value": null}', b'{"name": "boiler"}',
        b'{"value": 2', b'{"temperature":', b'{"value":60,', b"[1, 2",  # truncated
        b"\xc3\x28", b'{"value": "\xff\xfe"}', b"\xff\xfe\xfd",  # not UTF-8
        b"   ", b"\x00\x00\x00",
        b"hello world", b"<xml>55</xml>", b"55 degrees",
    ]


def flood_payloads(n, seed=1234):
    """Random byte lines (no NUL, CR, LF: one mosquitto_pub -l line each) that are never
    numbers or JSON: each starts with 0xFF."""
    rng = random.Random(seed)
    alphabet = bytes(b for b in range(256) if b not in (0x00, 0x0A, 0x0D))
    out = []
    for _ in range(n):
        size = rng.randint(1, 120)
        out.append(b"\xff" + bytes(rng.choice(alphabet) for _ in range(size)))
    return out


class GarbageTest(harness.IntegrationTest):
    needs = ("agent", "console")

    def test_garbage_flood(self):
        mq = self.start_mosquitto()
        console = self.start_console()
        agent = self.start_agent(mq, console)
        agent.wait_ingesting()
        m0 = agent.metrics()
        rejected0 = agent.metric("edge_agent_readings_rejected_total", _metrics=m0)
        received0 = agent.metric("edge_agent_readings_received_total", _metrics=m0)

        odd = odd_payloads()
        for p in odd:
            harness.publish(mq.port, TOPIC, p)
        flood = flood_payloads(FLOOD - len(odd))
        harness.publish_many(mq.port, [(TOPIC, p) for p in flood])
        total = len(odd) + len(flood)

        harness.wait_until(
            lambda: agent.metric("edge_agent_readings_rejected_total") - rejected0 >= total, 60,
            0.25, what="%d rejections" % total)
        agent.wait_ready(5)

        m = agent.metrics()
        by_reason = {dict(labels).get("reason"): v for (name, labels), v in m.items()
                     if name == "edge_agent_readings_rejected_total"}
        self.assertEqual(sum(by_reason.values()) - rejected0, total, by_reason)
        self.assertNotIn(None, by_reason, "every rejection carries a reason label")
        # The flood alone spans at least these reasons.
        self.assertGreaterEqual(sum(1 for v in by_reason.values() if v > 0), 3, by_reason)
        self.assertEqual(agent.metric("edge_agent_readings_received_total", _metrics=m),
                         received0, "no garbage may count as a reading")
        self.assertEqual(agent.metric("edge_agent_alerts_raised_total", _metrics=m), 0)
        self.assertEqual(agent.metric("edge_agent_mqtt_connected", _metrics=m), 1)

        # Still working: one valid reading fires the rule.
        ts = harness.now_ms()
        harness.publish(mq.port, TOPIC, harness.reading(75.5, ts))
        harness.wait_until(lambda: agent.metric("edge_agent_alerts_raised_total") == 1, 15,
                           what="alert after garbage")
        alerts = harness.wait_until(lambda: console.alerts(node="node-1"), 15,
                                    what="alert at the console")
        self.assertEqual(len(alerts), 1, alerts)
        self.assertEqual((alerts[0]["sensor"], alerts[0]["state"], alerts[0]["value"],
                          alerts[0]["ts_ms"]), (TOPIC, "firing", 75.5, ts))
        self.assertTrue(agent.alive())


if __name__ == "__main__":
    harness.main()
