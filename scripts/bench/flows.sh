#!/usr/bin/env bash
# Flows (c), (d) and (e) of the comparison, stepped through rates like the native harness
# (../shared/bench/native/run.sh, which has only (a) and (b)), on one side per invocation:
#
#   scripts/bench/flows.sh -s native|ours [-t "call refresh admit"] [-d SECONDS] [-H HOLD_MS] [-o OUTDIR]
#
#   call     (c) a full outgoing call on a shared line: line-seize, INVITE with Call-Info, 180, 200,
#            ACK, hold, BYE; 2 other call-info members per line get the group NOTIFYs
#            (sipp/shared-call-uac.xml against sipp/callee-uas.xml). native: the same proxy with
#            Kamailio's sca.so (kamailio/native-oracle.cfg); ours: kamailio/kamailio.cfg -A WITHOUT_CC
#            and the service.
#   refresh  (d) 10,000 lines of 10 call-info subscribers each, restored from the store at start
#            (seed-refresh.ts writes the same subscriptions for both), refreshed in dialog
#            (sipp/refresh.xml). native: native-oracle.cfg; ours: kamailio.cfg -A WITHOUT_CC + the service.
#   admit    (e) calls through Kamailio's stock call_control.so (init at the INVITE, start at the
#            answer, stop at the BYE; sipp/call-uac.xml), 1,000 accounts of 100 parallel calls.
#            There is no native call-control server to run here (AG Projects' callcontrol is not in
#            Debian), so the "native" side is the same proxy and service without call control
#            (-A WITHOUT_CC) and the ratio is the price of admission; ours: kamailio.cfg + the service
#            as the call_control socket server.
#
# Each step starts everything fresh, runs SIPp for -d seconds at the rate, stops at the first
# rate that is not sustained (the harness's rule, sipp-step.py), and appends one line per step to
# OUTDIR/summary.txt with Kamailio's and the service's CPU over the SIPp run (µs, /proc).
# Rates: RATES_CALL, RATES_REFRESH, RATES_ADMIT. Needs sipp, kamailio, a built service (dist/).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NATIVE=${NATIVE_BENCH:-$(cd "$ROOT/../shared/bench/native" 2>/dev/null && pwd)}
SIPP_DIR="$ROOT/scripts/bench/sipp"
SIDE=""; FLOWS="call refresh admit"; DUR=10; HOLD=1000; OUT=""; P99MAX=100
while getopts "s:t:d:H:o:" o; do case $o in
  s) SIDE=$OPTARG;; t) FLOWS=$OPTARG;; d) DUR=$OPTARG;; H) HOLD=$OPTARG;; o) OUT=$OPTARG;;
  *) sed -n '2,29p' "$0"; exit 2;; esac; done
case $SIDE in native|ours) ;; *) echo "flows.sh: -s native|ours" >&2; exit 2;; esac
[ -f "$NATIVE/kamailio-native-sca.cfg" ] || { echo "flows.sh: the native harness is not at ../shared/bench/native; set NATIVE_BENCH" >&2; exit 1; }
[ -f "$ROOT/dist/service/main.js" ] || { echo "flows.sh: build the service first (npm run build)" >&2; exit 1; }
RATES_CALL=${RATES_CALL:-"50 100 200 300 400 500 750 1000"}
RATES_REFRESH=${RATES_REFRESH:-"500 1000 1500 2000 3000 4000"}
RATES_ADMIT=${RATES_ADMIT:-"100 200 300 500 750 1000 1500"}
IP=127.0.0.1; PORT=5060; UAS_IP=127.0.0.2; UAC_PORT=5070; PRELOAD_PORT=5071; UAS_PORT=5080; RESP_PORT=5090
HTTP=18091; BUF=4194304; NAORS=1000; LINES=10000; PER_LINE=10
OUT=${OUT:-$ROOT/.tap/bench/flows-$SIDE-$(date +%Y%m%d-%H%M%S)}; mkdir -p "$OUT"; OUT=$(readlink -f "$OUT")
SUMMARY="$OUT/summary.txt"; touch "$SUMMARY"
KPID=""; HPID=""; RPID=""; UPID=""

log() { echo "[$(date +%T)] $*" >&2; }
stop_pid() {  # PID [grace seconds]: TERM, wait, then KILL it and its children
  local pid=$1 grace=${2:-10} i
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < grace * 10; i++)); do kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }; sleep 0.1; done
  pkill -KILL -P "$pid" 2>/dev/null; kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; return 0
}
cleanup() { stop_pid "$UPID" 2; stop_pid "$RPID" 2; stop_pid "$KPID" 8; stop_pid "$HPID" 5; UPID=""; RPID=""; KPID=""; HPID=""; }
trap 'cleanup; exit 130' INT TERM
trap cleanup EXIT
# CPU (µs of user + system) of the given processes.
cpu_us() { for p in "$@"; do cat "/proc/$p/stat" 2>/dev/null; done | awk -v hz="$(getconf CLK_TCK)" '{s += $14 + $15} END {printf "%d", s * 1000000 / hz}'; }
kam_pids() { echo "$KPID" $(ps -o pid= --ppid "$KPID" 2>/dev/null); }

python3 -c "import sys; open(sys.argv[1], 'w').write('SEQUENTIAL\n' + ''.join('aor%d;\n' % i for i in range(int(sys.argv[2]))))" "$OUT/aors.csv" "$NAORS"

# What runs where: the native cfg, or kamailio/kamailio.cfg (with or without call control) and the service.
setup_of() {  # FLOW -> "native" | "ours-nocc" | "ours-cc"
  case "$SIDE:$1" in native:call|native:refresh) echo native;; native:admit|ours:call|ours:refresh) echo ours-nocc;; ours:admit) echo ours-cc;; esac
}

start_stack() {  # SETUP RUNDIR TAG [store seed]
  local setup=$1 run=$2 tag=$3 seed=${4:-} i args=()
  rm -rf "$run"; mkdir -p "$run"
  if [ "$setup" = native ]; then
    if [ -n "$seed" ]; then cp "$seed" "$run/sca.sqlite"; else
      cat /usr/share/kamailio/db_sqlite/standard-create.sql /usr/share/kamailio/db_sqlite/sca-create.sql | sqlite3 "$run/sca.sqlite"; fi
    kamailio -DD -E -f "$ROOT/kamailio/native-oracle.cfg" -A SIP_PORT=$PORT -A 'SIP_DOMAIN="127.0.0.1"' -A "SCA_DBURL=\"sqlite://$run/sca.sqlite\"" \
      -A "CTL_SOCK=\"unix:$run/kamailio_ctl\"" -m 1024 -M "$([ -n "$seed" ] && echo 512 || echo 32)" -Y "$run" > "$OUT/kamailio-$tag.log" 2>&1 & KPID=$!
  else
    SVC_ROOT="$ROOT" SVC_ENTRY="$ROOT/dist/service/main.js" SVC_DIR="$run/svc" SVC_HTTP_PORT=$HTTP SVC_SEED="$seed" \
      SVC_SETS="--set call_control_socket=$run/cc.sock" bash "$ROOT/scripts/bench/service-helper.sh" > "$OUT/service-$tag.log" 2>&1 & HPID=$!
    args=(-A 'SIP_DOMAIN="127.0.0.1"' -A WITHOUT_TLS -A "CC_SOCKET=\"$run/cc.sock\""); [ "$setup" = ours-nocc ] && args+=(-A WITHOUT_CC)
    for ((i = 0; i < 600; i++)); do curl -sf "http://$IP:$HTTP/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    kamailio -DD -E -f "$ROOT/kamailio/kamailio.cfg" -A SIP_PORT=$PORT -A "CTL_SOCK=\"unix:$run/kamailio_ctl\"" "${args[@]}" \
      -m 1024 -M "$([ -n "$seed" ] && echo 512 || echo 32)" -Y "$run" > "$OUT/kamailio-$tag.log" 2>&1 & KPID=$!
  fi
  for ((i = 0; i < 300; i++)); do ss -lun 2>/dev/null | grep -q "$IP:$PORT " && break; kill -0 "$KPID" 2>/dev/null || break; sleep 0.1; done
  ss -lun 2>/dev/null | grep -q "$IP:$PORT " || { log "kamailio did not start: $OUT/kamailio-$tag.log"; return 1; }
  if [ "$setup" != native ]; then
    for ((i = 0; i < 300; i++)); do curl -sf "http://$IP:$HTTP/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
    curl -sf "http://$IP:$HTTP/readyz" >/dev/null 2>&1 || { log "the service is not ready: $OUT/service-$tag.log"; return 1; }
  fi
  sleep 0.5
}

rpc() { curl -sf -H 'content-type: application/json' --data "$1" "http://$IP:$HTTP/rpc"; }

# The callee (SIPp server) for flows call and admit, on another loopback address (the proxy's
# domain is 127.0.0.1 on any port), registered with the proxy.
start_callee() {  # DIR
  local dir=$1
  ( cd "$dir" && sipp $IP:$PORT -i $UAS_IP -p $UAS_PORT -sf "$SIPP_DIR/register-callee.xml" -m 1 -nostdin -timeout 10s > register.out 2>&1 ) \
    || { log "the callee did not register (see $dir/register.out)"; return 1; }
  ( cd "$dir" && exec sipp -i $UAS_IP -p $UAS_PORT -sf "$SIPP_DIR/callee-uas.xml" -buff_size $BUF -nostdin -timeout $((DUR * 3 + 60))s \
      -trace_err -error_file "$dir/callee-errors.log" > callee.out 2>&1 ) & UPID=$!
}

# Two other call-info members per line, their Contact the harness's NOTIFY responder.
start_members() {  # DIR RATE
  local dir=$1 rate=$2
  node "$NATIVE/notify_responder.js" $RESP_PORT "$dir/responder.json" 2> "$dir/responder.log" & RPID=$!
  sleep 0.5
  ( cd "$dir" && sipp $IP:$PORT -i $IP -p $PRELOAD_PORT -sf "$NATIVE/sca_callinfo_preload.xml" -inf "$OUT/aors.csv" -key run "p$rate" \
      -key nport $RESP_PORT -key expires 3600 -buff_size $BUF -r 400 -m $((NAORS * 2)) -nostdin -timeout 60s > preload.out 2>&1 ) \
    || log "the members' preload had failures (see $dir/preload.out)"
  sleep 1
}

accounts() {  # N accounts aor0..aorN-1@127.0.0.1, 100 parallel calls each, postpaid
  node -e '
    const n = Number(process.argv[1]), url = process.argv[2];
    const set = (i) => fetch(url, { method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: i, method: "cc.account_set", params: { account: `aor${i}@127.0.0.1`, max_calls: 100 } }) })
      .then((r) => r.json()).then((j) => { if (j.error) throw new Error(JSON.stringify(j.error)); });
    (async () => { for (let i = 0; i < n; i += 50) await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, k) => set(i + k))); })()
      .catch((e) => { console.error(e.message); process.exit(1); });' "$NAORS" "http://$IP:$HTTP/rpc"
}

SEED=""
for flow in $FLOWS; do
  case $flow in
    call) scen=shared-call-uac.xml; rtds="seize,ring,answer,bye"; rates=$RATES_CALL;;
    refresh) scen=refresh.xml; rtds="refresh,rntf"; rates=$RATES_REFRESH;;
    admit) scen=call-uac.xml; rtds="ring,answer,bye"; rates=$RATES_ADMIT;;
    *) log "unknown flow $flow"; continue;;
  esac
  setup=$(setup_of "$flow")
  if [ "$flow" = refresh ] && [ -z "$SEED" ]; then
    SEED="$OUT/seed"; log "seeding $((LINES * PER_LINE)) subscriptions on $LINES lines"
    ( cd "$ROOT" && node --import tsx scripts/bench/seed-refresh.ts --dir "$SEED" --port $UAC_PORT --lines $LINES --per-line $PER_LINE ) >&2 || exit 1
  fi
  for rate in $rates; do
    tag="$flow-$rate"; dir="$OUT/$tag"; run="$OUT/run"; rm -rf "$dir"; mkdir -p "$dir"
    seed=""; [ "$flow" = refresh ] && { [ "$setup" = native ] && seed="$SEED/native.sqlite" || seed="$SEED/ours.sqlite"; }
    # sca-service NOTIFYs every restored call-info subscriber (D18): answer those on SIPp's port
    # and wait for the last before the refreshes start (the native module sends none at start).
    restore_wait=""
    if [ "$flow" = refresh ] && [ "$setup" != native ]; then
      node "$NATIVE/notify_responder.js" $UAC_PORT "$dir/restore-notifies.json" 2> "$dir/responder.log" & RPID=$!
    fi
    start_stack "$setup" "$run" "$tag" "$seed" || { cleanup; break; }
    if [ -n "$RPID" ] && [ "$flow" = refresh ]; then
      t0=$(date +%s.%N)
      for ((i = 0; i < 1200; i++)); do
        done_n=$(curl -sf "http://$IP:$HTTP/metrics" | awk '/^sca_notify_total\{/ {s += $2} END {printf "%d", s}')
        [ "${done_n:-0}" -ge $((LINES * PER_LINE)) ] && break; sleep 0.1
      done
      restore_wait=" restore_notifies=${done_n:-0}/$(python3 -c "print(round($(date +%s.%N) - $t0, 1))")s"
      stop_pid "$RPID" 2; RPID=""
    fi
    extra=(-inf "$OUT/aors.csv" -key run "r$rate")
    case $flow in
      call) start_members "$dir" "$rate"; start_callee "$dir" || { cleanup; break; }; extra+=(-key uip $UAS_IP -key uport $UAS_PORT -d "$HOLD" -aa);;
      refresh) extra=(-inf "$SEED/refresh.csv" -cid_str "ref-%u@bench");;
      admit) start_callee "$dir" || { cleanup; break; }; extra+=(-key uip $UAS_IP -key uport $UAS_PORT -d "$HOLD")
             if [ "$setup" = ours-cc ]; then accounts || { log "accounts were not created"; cleanup; break; }; fi;;
    esac
    SVC=""; [ -n "$HPID" ] && SVC=$(pgrep -P "$HPID" -x node | head -1)
    k0=$(cpu_us $(kam_pids)); s0=$([ -n "$SVC" ] && cpu_us "$SVC" || echo 0)
    log "$SIDE $flow @ $rate/s ..."
    # SIPp 3.6 can hang past its -timeout when overloaded: killed after that and a margin.
    ( cd "$dir" && exec timeout -s KILL $((DUR * 3 + 90)) sipp $IP:$PORT -i $IP -p $UAC_PORT -sf "$SIPP_DIR/$scen" -r "$rate" -m $((rate * DUR)) -l $((rate * 5 + 500)) \
        -buff_size $BUF -timeout $((DUR * 3 + 30))s -nostdin -trace_stat -stf "$dir/stat.csv" -trace_rtt -rtt_freq 100 \
        -trace_err -error_file "$dir/errors.log" "${extra[@]}" ${SIPP_EXTRA:-} > "$dir/sipp.out" 2>&1 )
    sleep 1
    k1=$(cpu_us $(kam_pids)); s1=$([ -n "$SVC" ] && cpu_us "$SVC" || echo 0)
    check=""
    if [ "$setup" = ours-cc ]; then
      check=" admitted=$(curl -sf "http://$IP:$HTTP/metrics" | awk '/^cc_decisions_total\{result="admitted"\}/ {s += $2} END {printf "%d", s}')"
    fi
    cleanup
    line=$(python3 "$ROOT/scripts/bench/sipp-step.py" "$dir" "$flow" "$rate" "$rtds" "$P99MAX"); arc=$?
    line="$line kamailio_cpu=$(( (k1 - k0) / (DUR * 10000) ))% kamailio_us=$((k1 - k0)) service_us=$((s1 - s0)) setup=$setup$check$restore_wait"
    [ -f "$dir/responder.json" ] && line="$line responder=$(cat "$dir/responder.json")"
    echo "$line" | tee -a "$SUMMARY" >&2
    [ $arc -eq 0 ] || break
  done
done
