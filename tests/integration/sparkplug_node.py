#!/usr/bin/env python3
"""A Sparkplug B edge node for the tests, following the specification's examples: it connects
with its NDEATH (bdSeq) as the MQTT will, publishes NBIRTH, a DBIRTH for each device, then
DDATA by alias, counting seq from 0 and wrapping after 255; it prints "published" and stays
connected until a signal ends it (without DISCONNECT, so the broker publishes the will).

The protobuf payloads are encoded here by hand from the specification's field numbers, so
that the agent's decoder (generated from its own .proto) is checked against an independent
encoder.

  sparkplug_node.py --port P --group plant --node press1 --device dev1 --bdseq 0 \
      --ddata 300 --last-temperature 95
Needs python3-paho-mqtt (run with Debian's /usr/bin/python3)."""

import argparse
import struct
import sys
import time

# Sparkplug B datatypes (specification 3.0, "Datatypes").
INT16, INT64, UINT32, DOUBLE, BOOLEAN = 2, 4, 7, 10, 11


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(number, wire_type, body):
    return varint(number << 3 | wire_type) + body


def length_delimited(number, data):
    return field(number, 2, varint(len(data)) + data)


def metric(name=None, alias=None, datatype=None, value=None, timestamp=None):
    """Payload.Metric: name 1, alias 2, timestamp 3, datatype 4, int_value 10, long_value 11,
    double_value 13 (fixed64), boolean_value 14."""
    out = b""
    if name is not None:
        out += length_delimited(1, name.encode())
    if alias is not None:
        out += field(2, 0, varint(alias))
    if timestamp is not None:
        out += field(3, 0, varint(timestamp))
    if datatype is not None:
        out += field(4, 0, varint(datatype))
    if value is not None:
        kind = datatype
        if kind == DOUBLE:
            out += field(13, 1, struct.pack("<d", value))
        elif kind == BOOLEAN:
            out += field(14, 0, varint(1 if value else 0))
        elif kind == INT64:
            out += field(11, 0, varint(value & 0xFFFFFFFFFFFFFFFF))
        else:  # Int8..Int32 two's complement in 32 bits, UInt8..UInt32
            out += field(10, 0, varint(value & 0xFFFFFFFF))
    return out


def payload(metrics, seq=None, timestamp=None):
    """Payload: timestamp 1, metrics 2, seq 3."""
    out = field(1, 0, varint(timestamp if timestamp is not None else int(time.time() * 1000)))
    for m in metrics:
        out += length_delimited(2, m)
    if seq is not None:
        out += field(3, 0, varint(seq))
    return out


class Node:
    def __init__(self, args):
        import paho.mqtt.client as mqtt  # pylint: disable=import-outside-toplevel
        self.args = args
        self.seq = 0
        self.topic = "spBv1.0/%s/%%s/%s" % (args.group, args.node)
        self.client = mqtt.Client(client_id="sparkplug-%s" % args.node, clean_session=True)
        death = payload([metric("bdSeq", None, INT64, args.bdseq)])
        self.client.will_set(self.topic % "NDEATH", death, qos=1, retain=False)

    def next_seq(self):
        seq = self.seq
        self.seq = (self.seq + 1) % 256
        return seq

    def publish(self, kind, metrics, device=None):
        topic = self.topic % kind + ("/" + device if device else "")
        info = self.client.publish(topic, payload(metrics, self.next_seq()), qos=1)
        info.wait_for_publish(10)
        if not info.is_published():
            sys.exit("publish to %s timed out" % topic)

    def run(self):
        a = self.args
        self.client.connect("127.0.0.1", a.port, keepalive=30)
        self.client.loop_start()
        self.publish("NBIRTH", [
            metric("bdSeq", None, INT64, a.bdseq),
            metric("Node Control/Rebirth", None, BOOLEAN, False),
            metric("Uptime", 1, UINT32, 12),
        ])
        self.publish("DBIRTH", [
            metric("Temperature", 2, DOUBLE, 20.0),
            metric("Speed", 3, INT16, -40),
        ], a.device)
        for i in range(a.ddata):
            last = i == a.ddata - 1
            temperature = a.last_temperature if last else 20.0 + (i % 7) * 0.5
            self.publish("DDATA", [metric(None, 2, DOUBLE, temperature)], a.device)
        print("published", flush=True)
        while True:  # connected until a signal ends the process (no DISCONNECT: the will)
            time.sleep(60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--group", default="plant")
    ap.add_argument("--node", default="press1")
    ap.add_argument("--device", default="dev1")
    ap.add_argument("--bdseq", type=int, default=0)
    ap.add_argument("--ddata", type=int, default=10)
    ap.add_argument("--last-temperature", type=float, default=20.0)
    Node(ap.parse_args()).run()


if __name__ == "__main__":
    main()
