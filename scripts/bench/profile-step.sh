#!/usr/bin/env bash
# One step of the SIPp harness at one rate, native sca.so or ours, with the CPU of each kind of
# Kamailio process (and of the service) over its middle: where a flow's cost lands.
#
#   scripts/bench/profile-step.sh native|ours callinfo|lineseize RATE [SECONDS]
#
# SVC_NODE_ARGS (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof) is passed to the service's node.
# Prints the harness's result line, then kamailio-cpu.py's table.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NATIVE=${NATIVE_BENCH:-$(cd "$ROOT/../shared/bench/native" 2>/dev/null && pwd)}
SIDE=${1:?native or ours}; TEST=${2:?callinfo or lineseize}; RATE=${3:?rate}; DUR=${4:-12}
OUT=$(mktemp -d /tmp/profile-step.XXXXXX)
if [ "$SIDE" = native ]; then
  ARGS=(-c "$NATIVE/kamailio-native-sca.cfg")
else
  export SVC_ROOT="$ROOT" SVC_ENTRY="$ROOT/dist/service/main.js" READY_URL=http://127.0.0.1:18091/readyz
  ARGS=(-c "$ROOT/kamailio/kamailio.cfg" -k "-A SIP_DOMAIN=\"127.0.0.1\" -A WITHOUT_CC -A WITHOUT_TLS ${KARGS:-}" -x "$ROOT/scripts/bench/service-helper.sh")
fi
"$NATIVE/run.sh" "${ARGS[@]}" -b - -t "$TEST" -r "$RATE" -d "$DUR" -o "$OUT" 2>&1 | grep -E 'rate=' &
RUN=$!
# The sampler starts once SIPp runs, skips 2 s of warm-up and measures the next DUR-4 s.
for _ in $(seq 300); do pgrep -x sipp >/dev/null && [ -S "$OUT/rundir/kamailio_ctl" ] && break; sleep 0.1; done
SVC=""
[ "$SIDE" = ours ] && SVC=$(pgrep -f "dist/service/main.js" | head -1)
python3 "$ROOT/scripts/bench/kamailio-cpu.py" "unix:$OUT/rundir/kamailio_ctl" $((DUR - 4)) --after 2 ${SVC:+--service-pid $SVC}
wait $RUN
echo "(steps in $OUT)"
