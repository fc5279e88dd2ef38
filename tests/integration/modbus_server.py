#!/usr/bin/env python3
"""A Modbus TCP server (slave) for the tests, on pymodbus: holding registers, input registers,
coils and discrete inputs at address 0, from JSON lists on the command line; a read beyond
a table answers with an exception (illegal data address). Prints "listening" when ready;
SIGTERM or SIGKILL stops it.

  modbus_server.py --port P --holding '[65413, 16812, 0]' --input '[42]' --coils '[1, 0, 1]'
Needs python3-pymodbus (Debian's /usr/bin/python3)."""

import argparse
import json
import logging
import socket
import sys
import threading
import time

from pymodbus.datastore import (ModbusSequentialDataBlock, ModbusServerContext,
                                ModbusSlaveContext)
from pymodbus.server import StartTcpServer


def announce_when_listening(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            print("listening", flush=True)
            return
        except OSError:
            time.sleep(0.05)
    print("not listening", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--holding", default="[]")
    ap.add_argument("--input", default="[]")
    ap.add_argument("--coils", default="[]")
    ap.add_argument("--discrete", default="[]")
    args = ap.parse_args()
    logging.basicConfig(level=logging.CRITICAL)  # a client's disconnect logs an ERROR

    def block(text):
        values = json.loads(text)
        return ModbusSequentialDataBlock(0, values if values else [0])

    store = ModbusSlaveContext(hr=block(args.holding), ir=block(args.input),
                               co=block(args.coils), di=block(args.discrete), zero_mode=True)
    threading.Thread(target=announce_when_listening, args=(args.port,), daemon=True).start()
    StartTcpServer(context=ModbusServerContext(slaves=store, single=True),
                   address=("127.0.0.1", args.port))
    sys.exit(1)


if __name__ == "__main__":
    main()
