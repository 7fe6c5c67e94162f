#!/usr/bin/env bash
# The SIPp harness's helper (-x): runs sca-service with a fresh embedded store for one rate step,
# and writes the CPU the service used while ready (µs of user+system) to $SVC_CPU_FILE when the
# harness stops it. Settings: SVC_EVAPI (127.0.0.1:8448), SVC_HTTP_PORT (18091), SVC_DIR (a
# temp dir), SVC_ENTRY (the service's entry: service/main.ts under tsx, or dist/service/main.js).
set -u
ROOT=${SVC_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
DIR=${SVC_DIR:-$(mktemp -d)}; mkdir -p "$DIR"; rm -f "$DIR"/sca.sqlite*
# SVC_SEED: a store file to start from (the comparison's seeded subscriptions), copied in.
[ -n "${SVC_SEED:-}" ] && cp "$SVC_SEED" "$DIR/sca.sqlite"
# BENCH_SETS: settings every step gets (compare.sh sets notify_to_flow=false, see there).
# SVC_DB_URL: a MySQL/Galera store instead (compare.sh -H); SVC_DB_RESET, a command run first that
# empties its SCA tables, so each step starts as fresh as with SQLite.
DB_URL="sqlite:$DIR/sca.sqlite"
if [ -n "${SVC_DB_URL:-}" ]; then
  DB_URL=$SVC_DB_URL
  [ -n "${SVC_DB_RESET:-}" ] && bash -c "$SVC_DB_RESET"
fi
PORT=${SVC_HTTP_PORT:-18091}
ENTRY=${SVC_ENTRY:-$ROOT/service/main.ts}
LOADER=(); case $ENTRY in *.ts) LOADER=(--import tsx);; esac
cd "$ROOT"
node ${SVC_NODE_ARGS:-} "${LOADER[@]}" "$ENTRY" --set "evapi_address=${SVC_EVAPI:-127.0.0.1:8448}" --set "http_port=$PORT" \
  --set "db_url=$DB_URL" --set log_level=warn ${SVC_SETS:-} ${BENCH_SETS:-} &
PID=$!
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%d", ($14+$15)*1000000/hz}' "/proc/$PID/stat" 2>/dev/null; }
for i in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
START=$(cpu)
# A trace of the CPU used per second, to tell the traffic from start-up and idle time.
if [ -n "${SVC_CPU_FILE:-}" ]; then
  ( prev=$START; while kill -0 "$PID" 2>/dev/null; do sleep 1; now=$(cpu); [ -n "$now" ] && echo "$(date +%s) $((now - prev))" >> "$SVC_CPU_FILE.trace"; prev=$now; done ) &
fi
finish() {
  END=$(cpu)
  [ -n "${SVC_CPU_FILE:-}" ] && echo "$((END - START))" >> "$SVC_CPU_FILE"
  kill -TERM "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; exit 0
}
trap finish TERM INT
wait "$PID"
