#!/usr/bin/python3
"""Byte relay between two pseudo-terminals that injects faults, for serial and Modbus RTU fault tests.

    pty_relay.py DEVICE_SIDE CLIENT_SIDE [--corrupt-every N] [--garbage-every N] [--delay-ms MS]

Copies bytes both ways. Bytes going from DEVICE_SIDE to CLIENT_SIDE (the device's answers) are
faulted: every Nth chunk gets one byte flipped (--corrupt-every), every Nth chunk is preceded by
random garbage bytes (--garbage-every), and every chunk is held back --delay-ms. Prints "ready",
and on SIGUSR1 a JSON line {"chunks":..,"corrupted":..,"garbage":..}.
"""
import json
import os
import random
import select
import signal
import sys
import termios
import time
import tty


def arg(name, default):
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def open_raw(path):
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    return fd


dev = open_raw(sys.argv[1])
cli = open_raw(sys.argv[2])
corrupt_every = arg('--corrupt-every', 0)
garbage_every = arg('--garbage-every', 0)
delay = arg('--delay-ms', 0) / 1000.0
rng = random.Random(7)
stats = {"chunks": 0, "corrupted": 0, "garbage": 0}
signal.signal(signal.SIGUSR1, lambda *_: print(json.dumps(stats), flush=True))
print('ready', flush=True)

while True:
    try:
        ready, _, _ = select.select([dev, cli], [], [], 1.0)
    except InterruptedError:
        continue
    for fd in ready:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            continue
        except OSError:
            sys.exit(0)
        if not data:
            continue
        if fd == cli:
            os.write(dev, data)
            continue
        stats["chunks"] += 1
        out = bytearray(data)
        if corrupt_every and stats["chunks"] % corrupt_every == 0:
            i = rng.randrange(len(out))
            out[i] ^= 0x5A
            stats["corrupted"] += 1
        if garbage_every and stats["chunks"] % garbage_every == 0:
            out = bytearray(rng.randrange(256) for _ in range(rng.randrange(3, 9))) + out
            stats["garbage"] += 1
        if delay:
            time.sleep(delay)
        os.write(cli, bytes(out))
