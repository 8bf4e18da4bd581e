#!/usr/bin/python3
"""Modbus peer for Outpost's tests and benchmarks (Debian's pymodbus 3.0, run with /usr/bin/python3).

    modbus_peer.py tcp PORT [--map default|bench:N] [--tick MS]
    modbus_peer.py rtu PTY BAUD [--units 1,2]

Default map, units 1 and 2 (unit 2 adds 2000 to holding registers):
  HR 0..199 = i*10; HR 200..201 = float32 12.5 (ABCD); HR 300..309 and 320..329 = 3000+i (hole 310..319);
  IR 0..99 = 1000+i; coils 0..99 = i odd; discrete 0..99 = i even.
bench:N: unit 1, HR 0..N-1 = i, IR = 3i (mod 65536), coils/discrete 0..N-1; --tick MS adds 1 to every HR every MS milliseconds.

Prints "ready" once serving. On SIGUSR1 prints one JSON line {"requests": {...}} with the requests
served per function code since start (counted where the server validates each request).
"""
import asyncio
import json
import logging
import signal
import struct
import sys

from pymodbus.datastore import (ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext,
                                ModbusSparseDataBlock)
from pymodbus.server import StartAsyncSerialServer, StartAsyncTcpServer

logging.basicConfig(level=logging.CRITICAL)
COUNTS = {}


class CountingContext(ModbusSlaveContext):
    def validate(self, fc_as_hex, address, count=1):
        key = f"fc{fc_as_hex}"
        COUNTS[key] = COUNTS.get(key, 0) + 1
        return super().validate(fc_as_hex, address, count)


def default_unit(unit):
    hr = {i: (i * 10 + (2000 if unit == 2 else 0)) & 0xFFFF for i in range(200)}
    hi, lo = struct.unpack('>HH', struct.pack('>f', 12.5))
    hr[200], hr[201] = hi, lo
    for i in list(range(300, 310)) + list(range(320, 330)):
        hr[i] = 3000 + i
    return CountingContext(
        hr=ModbusSparseDataBlock(hr),
        ir=ModbusSequentialDataBlock(0, [1000 + i for i in range(100)]),
        co=ModbusSequentialDataBlock(0, [i % 2 == 1 for i in range(100)]),
        di=ModbusSequentialDataBlock(0, [i % 2 == 0 for i in range(100)]),
        zero_mode=True,
    )


def bench_unit(n):
    return CountingContext(
        hr=ModbusSequentialDataBlock(0, [i & 0xFFFF for i in range(n)]),
        ir=ModbusSequentialDataBlock(0, [(i * 3) & 0xFFFF for i in range(n)]),
        co=ModbusSequentialDataBlock(0, [i % 3 == 0 for i in range(n)]),
        di=ModbusSequentialDataBlock(0, [i % 5 == 0 for i in range(n)]),
        zero_mode=True,
    )


def arg(name, default=None):
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return default


async def tick(block, ms):
    while True:
        await asyncio.sleep(ms / 1000)
        block.values = [(v + 1) & 0xFFFF for v in block.values]


async def main():
    mode = sys.argv[1]
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: print(json.dumps({"requests": COUNTS}), flush=True))
    mapping = arg('--map', 'default')
    if mapping.startswith('bench:'):
        unit = bench_unit(int(mapping.split(':')[1]))
        slaves = {1: unit}
        ms = arg('--tick')
        if ms:
            asyncio.ensure_future(tick(unit.store['h'], int(ms)))
    else:
        units = [int(u) for u in arg('--units', '1,2').split(',')]
        slaves = {u: default_unit(u) for u in units}
    context = ModbusServerContext(slaves=slaves, single=False)
    if mode == 'tcp':
        port = int(sys.argv[2])
        server = await StartAsyncTcpServer(context=context, address=('127.0.0.1', port), allow_reuse_address=True,
                                           defer_start=True)
        task = asyncio.ensure_future(server.serve_forever())
        await server.serving
        print('ready', flush=True)
        await task
    else:
        from pymodbus.framer.rtu_framer import ModbusRtuFramer
        server = await StartAsyncSerialServer(context=context, framer=ModbusRtuFramer, port=sys.argv[2],
                                              baudrate=int(sys.argv[3]), defer_start=True)
        await server.start()
        print('ready', flush=True)
        await server.serve_forever()


asyncio.run(main())
