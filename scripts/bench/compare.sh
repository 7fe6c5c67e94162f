#!/usr/bin/env bash
# One command, one run: the same SIPp flows against Kamailio + its native sca.so and against
# Kamailio + sca-service (kamailio/kamailio.cfg), stepping rates until failure, then a table per
# flow: each side's highest sustained rate, the ratio, p50/p99 of request→reply and
# request→NOTIFY at our best rate, and CPU per flow (one SIPp call) of Kamailio and of the service (µs, /proc).
#
#   scripts/bench/compare.sh [-d SECONDS_PER_STEP] [-t "callinfo lineseize"] [-o OUTDIR]
#
# The harness is ../shared/bench/native/run.sh (or $NATIVE_BENCH): "sustained" = no failed call,
# at least 95% of the rate, p99 <= 100 ms, retransmissions <= 0.1%. Flows: callinfo (a SUBSCRIBE,
# its 202 and NOTIFY, a new subscriber each call), lineseize (seize and release, 2 other members
# per line get the group NOTIFYs). Rates: RATES_CALLINFO / RATES_LINESEIZE as run.sh takes them.
# SIPp (Debian's sip-tester) is installed when missing (as root), the service built.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NATIVE=${NATIVE_BENCH:-$(cd "$ROOT/../shared/bench/native" 2>/dev/null && pwd)}
DUR=10; TESTS="callinfo lineseize"; OUT=""
while getopts "d:t:o:" o; do case $o in d) DUR=$OPTARG;; t) TESTS=$OPTARG;; o) OUT=$OPTARG;; *) sed -n '2,16p' "$0"; exit 2;; esac; done
[ -n "$NATIVE" ] && [ -x "$NATIVE/run.sh" ] || { echo "compare.sh: the SIPp harness is not at ../shared/bench/native; set NATIVE_BENCH" >&2; exit 1; }
# shellcheck source=scripts/deps.sh
. "$ROOT/scripts/deps.sh"
command -v sipp >/dev/null || apt_install /tmp/sca-bench-apt.log sip-tester || exit 1
ensure_kamailio "$ROOT/kamailio/kamailio.cfg" "$NATIVE/kamailio-native-sca.cfg" || exit 1
ensure_npm "$ROOT" && ensure_build "$ROOT" || exit 1
OUT=${OUT:-$ROOT/.tap/bench/$(date +%Y%m%d-%H%M%S)}; mkdir -p "$OUT/native" "$OUT/ours"

echo "== native sca.so ($TESTS, ${DUR}s per step)" >&2
"$NATIVE/run.sh" -c "$NATIVE/kamailio-native-sca.cfg" -b - -t "$TESTS" -d "$DUR" -o "$OUT/native" 2>&1 | grep -E 'rate=|sustained' >&2

echo "== sca-service (kamailio/kamailio.cfg + the compiled service)" >&2
export SVC_ROOT="$ROOT" SVC_CPU_FILE="$OUT/ours/service-cpu.txt" SVC_ENTRY="$ROOT/dist/service/main.js" READY_URL=http://127.0.0.1:18091/readyz
rm -f "$SVC_CPU_FILE"
"$NATIVE/run.sh" -c "$ROOT/kamailio/kamailio.cfg" -b - -t "$TESTS" -d "$DUR" -o "$OUT/ours" \
  -k '-A SIP_DOMAIN="127.0.0.1"' -x "$ROOT/scripts/bench/service-helper.sh" 2>&1 | grep -E 'rate=|sustained' >&2

python3 - "$OUT" "$DUR" <<'PY' | tee "$OUT/compare.txt"
import re, sys, os
out, dur = sys.argv[1], float(sys.argv[2])
def steps(side):
    rows = []
    for line in open(os.path.join(out, side, 'summary.txt')):
        m = re.match(r'(\S+)\s+rate=(\d+)\s+ok=(\d+) failed=(\d+).*achieved=(\d+)/s (.*) -> (OK|FAIL) kamailio_cpu=(\d+)%', line)
        if not m: continue
        rtd = {k: (float(p50), float(p99)) for k, p50, p99 in re.findall(r'(\w+)\[n=\d+ p50=([\d.]+) p90=[\d.]+ p99=([\d.]+)', m.group(6))}
        rows.append(dict(test=m.group(1), rate=int(m.group(2)), ok=int(m.group(3)), sustained=m.group(7) == 'OK', kcpu=int(m.group(8)), rtd=rtd))
    return rows
native, ours = steps('native'), steps('ours')
cpu_file = os.path.join(out, 'ours', 'service-cpu.txt')
svc = [int(x) for x in open(cpu_file).read().split()] if os.path.exists(cpu_file) else []
for i, r in enumerate(ours): r['svc_us'] = svc[i] if i < len(svc) else None
names = {'callinfo': ('call-info SUBSCRIBE -> 202 + NOTIFY', 'sub', 'ntf'), 'lineseize': ('line-seize seize + release, group NOTIFYs', 'lsub', 'lntf')}
print('| flow | native sustained (p99) | sca-service sustained (p99) | ratio | ours at best: reply p50/p99, NOTIFY p50/p99 (ms) | CPU per flow at best: Kamailio native / ours, service (µs) |')
print('|---|---|---|---|---|---|')
for test, (title, reply, notify) in names.items():
    n = [r for r in native if r['test'] == test and r['sustained']]
    o = [r for r in ours if r['test'] == test and r['sustained']]
    if not [r for r in native + ours if r['test'] == test]: continue
    nb = max(n, key=lambda r: r['rate']) if n else None
    ob = max(o, key=lambda r: r['rate']) if o else None
    fmt = lambda b, k: f"{b['rate']}/s ({b['rtd'][k][1]:g} ms)" if b else 'none'
    ratio = f"{ob['rate'] / nb['rate']:.2f}" if nb and ob else '-'
    lat = f"{ob['rtd'][reply][0]:g}/{ob['rtd'][reply][1]:g}, {ob['rtd'][notify][0]:g}/{ob['rtd'][notify][1]:g}" if ob else '-'
    calls = lambda b: max(1, b['ok'])
    kn = f"{nb['kcpu'] / 100 * dur * 1e6 / calls(nb):.0f}" if nb else '-'
    ko = f"{ob['kcpu'] / 100 * dur * 1e6 / calls(ob):.0f}" if ob else '-'
    so = f"{ob['svc_us'] / calls(ob):.0f}" if ob and ob.get('svc_us') else '-'
    print(f"| {title} | {fmt(nb, reply)} | {fmt(ob, reply)} | {ratio} | {lat} | {kn} / {ko}, {so} |")
print(f"\nsteps: {out}/native/summary.txt, {out}/ours/summary.txt; SIPp RTDs come in ~4 ms steps on this box (p50 0 = under 4 ms).")
PY
