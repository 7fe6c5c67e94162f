#!/usr/bin/env bash
# One command, one run: the same SIPp flows against Kamailio + its native sca.so and against
# Kamailio + sca-service (kamailio/kamailio.cfg), stepping rates until failure, then a table per
# flow: each side's highest sustained rate, the ratio, p50/p99 of request→reply and
# request→NOTIFY at our best rate, and CPU per flow (one SIPp call) of Kamailio and of the service (µs, /proc).
#
#   scripts/bench/compare.sh [-d SECONDS_PER_STEP] [-t "callinfo lineseize call refresh admit"] [-o OUTDIR] [-H]
#
# -H adds the HA configuration to the same run: (a) and (b) again against one leader (ha_enabled)
# on a 3-node MariaDB Galera cluster on this box (scripts/bench/galera-up.ts), its SCA tables
# emptied before each step (the lease and fence stay: each step's node is a new term).
#
# "Sustained" is the native harness's rule: no failed call, at least 95% of the rate, p99 <= 100 ms,
# retransmissions <= 0.1%. Flows:
#   callinfo   (a) a SUBSCRIBE, its 202 and NOTIFY, a new subscriber each call;
#   lineseize  (b) seize and release, 2 other members per line get the group NOTIFYs;
#   call       (c) a full shared-line call: seize, INVITE with Call-Info, 180, 200, ACK, BYE;
#   refresh    (d) 10,000 lines of 10 subscribers restored from the store, refreshed in dialog;
#   admit      (e) calls through the stock call_control.so (init, start, stop), against the same
#              proxy without call control (no native call-control server exists to run here).
# (a) and (b) run in the harness ../shared/bench/native/run.sh (or $NATIVE_BENCH) with its own
# cfg for the native side; (c)-(e) in scripts/bench/flows.sh with kamailio/native-oracle.cfg (the
# same proxy as ours, with sca.so). Rates: RATES_CALLINFO / RATES_LINESEIZE (run.sh), RATES_CALL /
# RATES_REFRESH / RATES_ADMIT (flows.sh). SIPp (Debian's sip-tester) is installed when missing
# (as root), the service built.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NATIVE=${NATIVE_BENCH:-$(cd "$ROOT/../shared/bench/native" 2>/dev/null && pwd)}
DUR=10; TESTS="callinfo lineseize call refresh admit"; OUT=""; HA=0
while getopts "d:t:o:H" o; do case $o in d) DUR=$OPTARG;; t) TESTS=$OPTARG;; o) OUT=$OPTARG;; H) HA=1;; *) sed -n '2,27p' "$0"; exit 2;; esac; done
[ -n "$NATIVE" ] && [ -x "$NATIVE/run.sh" ] || { echo "compare.sh: the SIPp harness is not at ../shared/bench/native; set NATIVE_BENCH" >&2; exit 1; }
# shellcheck source=scripts/deps.sh
. "$ROOT/scripts/deps.sh"
command -v sipp >/dev/null || apt_install /tmp/sca-bench-apt.log sip-tester || exit 1
ensure_kamailio "$ROOT/kamailio/kamailio.cfg" "$NATIVE/kamailio-native-sca.cfg" || exit 1
ensure_npm "$ROOT" && ensure_build "$ROOT" || exit 1
OUT=${OUT:-$ROOT/.tap/bench/$(date +%Y%m%d-%H%M%S)}; mkdir -p "$OUT/native" "$OUT/ours"

# Steps up to past native's limits on this box (the harness's own defaults stop at 4000 and 1000/s;
# on a quiet day native sustains 6000 and 2000).
export RATES_CALLINFO=${RATES_CALLINFO:-"2000 4000 5000 6000 7000 8000 10000 12000"}
export RATES_LINESEIZE=${RATES_LINESEIZE:-"500 1000 1250 1500 2000 2500 3000 4000"}
export RATES_CALL=${RATES_CALL:-"100 200 400 600 800 1000 1500 2000 3000"}
export RATES_REFRESH=${RATES_REFRESH:-"1000 2000 4000 6000 8000 10000 12000"}
export RATES_ADMIT=${RATES_ADMIT:-"200 400 600 800 1000 1500 2000 3000"}
HARNESS=$(for t in $TESTS; do case $t in callinfo|lineseize) printf '%s ' "$t";; esac; done)
FLOWS=$(for t in $TESTS; do case $t in call|refresh|admit) printf '%s ' "$t";; esac; done)
export SVC_ROOT="$ROOT" SVC_ENTRY="$ROOT/dist/service/main.js"
# The harnesses subscribe a line's other members from one SIPp socket with a Contact elsewhere (their
# responder), which no phone does: with NOTIFYs sent to the SUBSCRIBE's flow (D36, the default)
# the group NOTIFYs would go to that socket, unanswered, and tm would retransmit them. The module's
# rule (to the Contact) keeps both sides doing the same work on the wire.
export BENCH_SETS=${BENCH_SETS:-"--set notify_to_flow=false"}
# SIPp 3.6 can hang past its own -timeout when a step overloads it (seen at native's 4,000
# line-seize/s): a watchdog kills any SIPp that outlives a step by far; that step then fails.
( while sleep 10; do
    for p in $(pgrep -x sipp); do [ "$(ps -o etimes= -p "$p" | tr -d ' ')" -gt $((DUR * 3 + 120)) ] 2>/dev/null && kill -KILL "$p"; done
  done ) & WATCHDOG=$!
trap 'kill $WATCHDOG 2>/dev/null' EXIT
if [ -n "$HARNESS" ]; then
  echo "== native sca.so ($HARNESS, ${DUR}s per step)" >&2
  "$NATIVE/run.sh" -c "$NATIVE/kamailio-native-sca.cfg" -b - -t "$HARNESS" -d "$DUR" -o "$OUT/native" 2>&1 | grep -E 'rate=|sustained' >&2
  echo "== sca-service (kamailio/kamailio.cfg + the compiled service)" >&2
  rm -f "$OUT/ours/service-cpu.txt"
  SVC_CPU_FILE="$OUT/ours/service-cpu.txt" READY_URL=http://127.0.0.1:18091/readyz "$NATIVE/run.sh" -c "$ROOT/kamailio/kamailio.cfg" -b - -t "$HARNESS" -d "$DUR" -o "$OUT/ours" \
    -k '-A SIP_DOMAIN="127.0.0.1" -A WITHOUT_CC -A WITHOUT_TLS' -x "$ROOT/scripts/bench/service-helper.sh" 2>&1 | grep -E 'rate=|sustained' >&2
fi
if [ -n "$HARNESS" ] && [ "$HA" = 1 ]; then
  echo "== sca-service HA: one leader on a 3-node Galera cluster" >&2
  mkdir -p "$OUT/ours-ha"; rm -f "$OUT/galera.env" "$OUT/ours-ha/service-cpu.txt"
  node --import tsx "$ROOT/scripts/bench/galera-up.ts" "$OUT/galera.env" 2>"$OUT/galera.log" & GALERA=$!
  while [ ! -s "$OUT/galera.env" ] && kill -0 "$GALERA" 2>/dev/null; do sleep 1; done
  if [ -s "$OUT/galera.env" ]; then
    # shellcheck disable=SC1091
    . "$OUT/galera.env"
    RESET="mariadb $GALERA_CLIENT -N -e \"SELECT CONCAT('DELETE FROM ', table_name, ';') FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN ('sca_subscriptions', 'sca_subscription_flows', 'sca_appearances', 'sca_lines')\" | mariadb $GALERA_CLIENT"
    SVC_DB_URL=$GALERA_URL SVC_DB_RESET=$RESET SVC_SETS="--set ha_enabled=true --set ha_node_id=bench --set db_hosts=$GALERA_HOSTS" \
      SVC_CPU_FILE="$OUT/ours-ha/service-cpu.txt" READY_URL=http://127.0.0.1:18091/readyz "$NATIVE/run.sh" -c "$ROOT/kamailio/kamailio.cfg" -b - -t "$HARNESS" -d "$DUR" -o "$OUT/ours-ha" \
      -k '-A SIP_DOMAIN="127.0.0.1" -A WITHOUT_CC -A WITHOUT_TLS' -x "$ROOT/scripts/bench/service-helper.sh" 2>&1 | grep -E 'rate=|sustained' >&2
  else
    echo "compare.sh: the Galera cluster did not start (see $OUT/galera.log)" >&2
  fi
  kill -TERM "$GALERA" 2>/dev/null; wait "$GALERA" 2>/dev/null
fi
if [ -n "$FLOWS" ]; then
  echo "== flows $FLOWS: native side (kamailio/native-oracle.cfg; for admit: no call control)" >&2
  "$ROOT/scripts/bench/flows.sh" -s native -t "$FLOWS" -d "$DUR" -o "$OUT/native-flows" 2>&1 | grep -E 'rate=' >&2
  echo "== flows $FLOWS: sca-service" >&2
  "$ROOT/scripts/bench/flows.sh" -s ours -t "$FLOWS" -d "$DUR" -o "$OUT/ours-flows" 2>&1 | grep -E 'rate=' >&2
fi

python3 - "$OUT" "$DUR" <<'PY' | tee "$OUT/compare.txt"
import re, sys, os
out, dur = sys.argv[1], float(sys.argv[2])
def steps(*dirs):
    rows = []
    for d in dirs:
        path = os.path.join(out, d, 'summary.txt')
        if not os.path.exists(path): continue
        for line in open(path):
            m = re.match(r'(\S+)\s+rate=(\d+)\s+ok=(\d+) failed=(\d+).*achieved=(\d+)/s (.*) -> (OK|FAIL) kamailio_cpu=(\d+)%', line)
            if not m: continue
            rtd = {k: (float(p50), float(p99)) for k, p50, p99 in re.findall(r'(\w+)\[n=\d+ p50=([\d.na]+) p90=[\d.na]+ p99=([\d.na]+)', m.group(6))}
            extra = dict(re.findall(r'(\w+)=(\d+)', line[m.end():]))
            rows.append(dict(test=m.group(1), rate=int(m.group(2)), ok=int(m.group(3)), sustained=m.group(7) == 'OK', kcpu=int(m.group(8)), rtd=rtd,
                             kus=int(extra['kamailio_us']) if 'kamailio_us' in extra else None, svc_us=int(extra['service_us']) if 'service_us' in extra else None))
    return rows
native, ours, ours_ha = steps('native', 'native-flows'), steps('ours', 'ours-flows'), steps('ours-ha')
# The harness's steps (a, b): the service's CPU comes from the helper, one number per step in order.
for side, rows in (('ours', ours), ('ours-ha', ours_ha)):
    cpu_file = os.path.join(out, side, 'service-cpu.txt')
    svc = [int(x) for x in open(cpu_file).read().split()] if os.path.exists(cpu_file) else []
    for i, r in enumerate([r for r in rows if r['svc_us'] is None]): r['svc_us'] = svc[i] if i < len(svc) else None
names = {
    'callinfo': ('(a) call-info SUBSCRIBE -> 202 + NOTIFY', 'sub', 'ntf'),
    'lineseize': ('(b) line-seize seize + release, group NOTIFYs', 'lsub', 'lntf'),
    'call': ('(c) shared-line call: seize, INVITE, 180, 200, ACK, BYE', 'seize', 'ring'),
    'refresh': ('(d) refresh, 10,000 lines x 10 subscribers', 'refresh', 'rntf'),
    'admit': ('(e) call control init/start/stop (native column: same proxy without call control)', 'ring', 'answer'),
}
print('| flow | native sustained (p99) | sca-service sustained (p99) | ratio | ours at best: reply p50/p99, second RTD p50/p99 (ms) | CPU per flow at best: Kamailio native / ours, service (µs) |')
print('|---|---|---|---|---|---|')
rows = [(test, title, reply, second, ours) for test, (title, reply, second) in names.items()]
rows += [(test, f"{title}, HA (one leader, Galera)", reply, second, ours_ha) for test, (title, reply, second) in names.items() if ours_ha]
for test, title, reply, second, side in rows:
    if not [r for r in native + side if r['test'] == test]: continue
    if side is ours_ha and not [r for r in side if r['test'] == test]: continue  # -H runs (a) and (b) only
    n = [r for r in native if r['test'] == test and r['sustained']]
    o = [r for r in side if r['test'] == test and r['sustained']]
    nb = max(n, key=lambda r: r['rate']) if n else None
    ob = max(o, key=lambda r: r['rate']) if o else None
    fmt = lambda b, k: f"{b['rate']}/s ({b['rtd'][k][1]:g} ms)" if b else 'none'
    ratio = f"{ob['rate'] / nb['rate']:.2f}" if nb and ob else '-'
    lat = f"{ob['rtd'][reply][0]:g}/{ob['rtd'][reply][1]:g}, {ob['rtd'][second][0]:g}/{ob['rtd'][second][1]:g}" if ob else '-'
    calls = lambda b: max(1, b['ok'])
    kus = lambda b: b['kus'] if b['kus'] is not None else b['kcpu'] / 100 * dur * 1e6
    kn = f"{kus(nb) / calls(nb):.0f}" if nb else '-'
    ko = f"{kus(ob) / calls(ob):.0f}" if ob else '-'
    so = f"{ob['svc_us'] / calls(ob):.0f}" if ob and ob.get('svc_us') else '-'
    print(f"| {title} | {fmt(nb, reply)} | {fmt(ob, reply)} | {ratio} | {lat} | {kn} / {ko}, {so} |")
print(f"\nsteps: {out}/*/summary.txt; SIPp RTDs come in ~4 ms steps on this box (p50 0 = under 4 ms).")
PY
