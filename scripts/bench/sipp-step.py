#!/usr/bin/env python3
"""One SIPp rate step of flows.sh, judged by the native harness's rule: sustained = no failed
call, every created call completed, the first RTD's throughput at least 95% of the rate, its p99
at most P99_MAX ms, retransmissions at most 0.1% of the calls. Prints one line in the harness's
summary format (compare.sh reads both) and exits 0 when sustained.

    sipp-step.py STEP_DIR FLOW RATE RTD[,RTD...] P99_MAX_MS
"""
import csv, glob, os, sys

step, flow, rate, rtds, p99max = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4].split(','), float(sys.argv[5])
rows = list(csv.reader(open(os.path.join(step, 'stat.csv')), delimiter=';'))
head, last = rows[0], rows[-1]
def stat(name):
    return int(last[head.index(name)]) if name in head else 0
ok, failed, created = stat('SuccessfulCall(C)'), stat('FailedCall(C)'), stat('TotalCallCreated')
retrans, ooc = stat('Retransmissions(C)'), stat('OutOfCallMsgs(C)')

samples = {}
for f in glob.glob(os.path.join(step, '*_rtt.csv')):
    for r in csv.reader(open(f), delimiter=';'):
        if len(r) >= 3 and not r[0].startswith('Date'):
            samples.setdefault(r[2], []).append((float(r[0]), float(r[1])))

def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))] if values else float('nan')

res = {}
for name in rtds:
    s = samples.get(name, [])
    ms = [x[1] for x in s]
    ts = sorted(x[0] for x in s)
    thr = (len(ts) - 1) / ((ts[-1] - ts[0]) / 1000.0) if len(ts) > 1 and ts[-1] > ts[0] else 0
    res[name] = dict(n=len(ms), p50=pct(ms, 50), p90=pct(ms, 90), p99=pct(ms, 99), max=max(ms) if ms else float('nan'), thr=thr)
main = res[rtds[0]]
sustained = failed == 0 and created > 0 and ok >= created and main['thr'] >= 0.95 * rate and main['p99'] <= p99max and retrans <= 0.001 * created
lat = ' '.join('%s[n=%d p50=%g p90=%g p99=%g max=%g ms]' % (n, res[n]['n'], res[n]['p50'], res[n]['p90'], res[n]['p99'], res[n]['max']) for n in rtds)
print('%-9s rate=%-5d ok=%d failed=%d retrans=%d ooc=%d achieved=%.0f/s %s -> %s' % (flow, rate, ok, failed, retrans, ooc, main['thr'], lat, 'OK' if sustained else 'FAIL'))
sys.exit(0 if sustained else 1)
