#!/usr/bin/env python3
"""CPU of each kind of Kamailio process over a window: which process a flow's cost lands in.

    scripts/bench/kamailio-cpu.py CTL_SOCKET SECONDS [--after SECONDS] [--service-pid PID]

Reads the process list from Kamailio's ctl socket (kamcmd core.psx: pid and description), waits
--after seconds (a step's warm-up), samples utime+stime of each process from /proc, waits
SECONDS, samples again, and prints the CPU share of a core per description (receivers, evapi
dispatcher and workers, timers, ...), summed over processes of one kind, and of the service's
process when given. Used beside a step of the SIPp harness (scripts/bench/profile-step.sh).
"""
import argparse
import os
import re
import subprocess
import sys
import time

HZ = os.sysconf('SC_CLK_TCK')


def processes(ctl):
    out = subprocess.run(['kamcmd', '-s', ctl, 'core.psx'], capture_output=True, text=True, timeout=10).stdout
    procs, cur = {}, {}
    for line in out.splitlines():
        m = re.match(r'\s*(IDX|PID|DSC):\s*(.*)', line)
        if not m:
            continue
        cur[m.group(1)] = m.group(2).strip()
        if m.group(1) == 'DSC':
            procs[int(cur['PID'])] = cur['DSC']
            cur = {}
    return procs


def ticks(pid):
    try:
        fields = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except OSError:
        return None


def kind(desc):
    # "udp receiver child=3 sock=127.0.0.1:5060" -> "udp receiver"; "EVAPI Worker #2" -> "EVAPI Worker"
    desc = re.sub(r'\s+(child|sock)=\S+', '', desc)
    return re.sub(r'\s*#?\d+$', '', desc).strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('ctl')
    ap.add_argument('seconds', type=float)
    ap.add_argument('--after', type=float, default=0)
    ap.add_argument('--service-pid', type=int)
    a = ap.parse_args()
    procs = processes(a.ctl)
    if not procs:
        sys.exit(f'kamailio-cpu: no process list from {a.ctl}')
    if a.service_pid:
        procs[a.service_pid] = 'sca-service (node)'
    time.sleep(a.after)
    t0 = time.monotonic()
    before = {p: ticks(p) for p in procs}
    time.sleep(a.seconds)
    after = {p: ticks(p) for p in procs}
    wall = time.monotonic() - t0
    by_kind = {}
    for p, d in procs.items():
        if before[p] is None or after[p] is None:
            continue
        k = kind(d)
        n, t = by_kind.get(k, (0, 0))
        by_kind[k] = (n + 1, t + after[p] - before[p])
    total = 0
    for k, (n, t) in sorted(by_kind.items(), key=lambda kv: -kv[1][1]):
        share = t / HZ / wall
        if k != 'sca-service (node)':
            total += share
        print(f'{share * 100:6.1f}%  {k} ({n})')
    print(f'{total * 100:6.1f}%  Kamailio, all processes')


if __name__ == '__main__':
    main()
