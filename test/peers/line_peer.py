#!/usr/bin/python3
"""A line device on a pseudo-terminal, for Outpost's serial tests (pyserial, /usr/bin/python3).

    line_peer.py TTY [--stream MS] [--silent-on WORD]

Answers CR LF terminated requests:  READ?  -> $TEMP,21.5,C*hh   (NMEA checksum)
                                    ID?    -> ID,OUTPOST-PEER,0x2A
                                    other  -> ACK <text>
--stream MS also sends $GPGGA,... sentences every MS milliseconds; --silent-on WORD never answers
requests containing WORD. Prints "ready", "rx <line>" for every request, and on SIGUSR1 a JSON line
{"requests": N}.
"""
import json
import signal
import sys
import threading
import time

import serial


def arg(name, default=None):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def nmea(body):
    x = 0
    for c in body:
        x ^= ord(c)
    return f"${body}*{x:02X}\r\n"


port = serial.Serial(sys.argv[1], 115200, timeout=0.05)
lock = threading.Lock()
stats = {"requests": 0}
signal.signal(signal.SIGUSR1, lambda *_: print(json.dumps(stats), flush=True))
silent = arg('--silent-on')


def send(text):
    with lock:
        port.write(text.encode('latin1'))
        port.flush()


def stream(ms):
    n = 0
    while True:
        time.sleep(ms / 1000)
        n += 1
        send(nmea(f"GPGGA,120000.00,4807.038,N,01131.000,E,1,{8 + n % 3:02d},0.9,545.4,M,46.9,M,,"))


if arg('--stream'):
    threading.Thread(target=stream, args=(int(arg('--stream')),), daemon=True).start()
print('ready', flush=True)
buf = b''
while True:
    try:
        buf += port.read(256)
    except serial.SerialException:
        sys.exit(0)
    while b'\r\n' in buf:
        line, buf = buf.split(b'\r\n', 1)
        text = line.decode('latin1')
        stats["requests"] += 1
        print(f"rx {text}", flush=True)
        if silent and silent in text:
            continue
        if text == 'READ?':
            send(nmea('TEMP,21.5,C'))
        elif text == 'ID?':
            send('ID,OUTPOST-PEER,0x2A\r\n')
        else:
            send(f"ACK {text}\r\n")
