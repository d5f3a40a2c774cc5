#!/usr/bin/env python3
"""CPU a uml_switch uses under paced traffic (not a throughput test).

One client sends 64-byte frames to another through the switch at a fixed
rate for a few seconds; prints frames delivered and the switch's CPU use
(utime + stime from /proc). Compares the cost of polling against sleeping
at rates a switch cannot batch.

    benches/switch_cpu_paced.py PROGRAM RATE [SECONDS]
    for r in 1000 10000 30000; do
        for p in target/release/uml_switch /usr/bin/uml_switch; do
            benches/switch_cpu_paced.py $p $r
        done
    done
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time


def main():
    prog, rate = sys.argv[1], int(sys.argv[2])
    secs = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
    tmp = tempfile.mkdtemp()
    ctl = os.path.join(tmp, "ctl")
    sw = subprocess.Popen([prog, "-unix", ctl],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while not os.path.exists(ctl):
            if time.time() > deadline:
                sys.exit(f"{prog}: no control socket after 10 s")
            time.sleep(0.01)
        time.sleep(0.1)

        keep = []

        def join(i):
            ctl_sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            ctl_sock.connect(ctl)
            data = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            # The kernel's layout: {0, pad, pid, tag}, 108 bytes in all.
            name = b"\0" + struct.pack("=xxxii", os.getpid(), 1000 + i)
            name += b"\0" * (108 - len(name))
            data.bind(name)
            req = struct.pack("=IIiH", 0xFEEDFACE, 3, 0, socket.AF_UNIX)
            ctl_sock.sendall(req + name + b"\0\0")
            reply = ctl_sock.recv(110)
            keep.append(ctl_sock)
            return data, reply[2:]

        a, to_a = join(0)
        b, to_b = join(1)
        mac_a, mac_b = bytes([2, 0, 0, 0, 0, 1]), bytes([2, 0, 0, 0, 0, 2])
        pad = b"\x88\xb5" + b"\0" * 46
        b.sendto(b"\xff" * 6 + mac_b + pad, to_b)
        a.sendto(b"\xff" * 6 + mac_a + pad, to_a)
        time.sleep(0.1)
        b.setblocking(False)
        a.setblocking(False)
        while True:
            try:
                b.recv(2048)
            except BlockingIOError:
                break

        def cpu():
            fields = open(f"/proc/{sw.pid}/stat").read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        frame = mac_b + mac_a + pad
        c0, t0 = cpu(), time.perf_counter()
        sent = got = 0
        due = t0
        while time.perf_counter() - t0 < secs:
            if time.perf_counter() >= due:
                try:
                    a.sendto(frame, to_a)
                    sent += 1
                except BlockingIOError:
                    pass
                due += 1.0 / rate
            try:
                while True:
                    b.recv(2048)
                    got += 1
            except BlockingIOError:
                pass
        elapsed = time.perf_counter() - t0
        c1 = cpu()
        print(f"{prog}: {sent / elapsed:.0f} frames/s sent, {got} of {sent} "
              f"delivered, switch CPU {100 * (c1 - c0) / elapsed:.1f} %")
    finally:
        sw.kill()
        sw.wait()


if __name__ == "__main__":
    main()
