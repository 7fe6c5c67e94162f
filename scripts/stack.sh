#!/usr/bin/env bash
# Starts or stops the whole product: Kamailio with kamailio/kamailio.cfg and sca-service (compiled
# to dist/, on an embedded SQLite store). `npm start` runs `start`; on a fresh Debian machine as
# root it installs Kamailio 5.6 from Debian's packages first (or stops with the command).
#
#   scripts/stack.sh start [--sip-ip 127.0.0.1] [--sip-port 5060] [--tcp-port SIP_PORT] [--tls-port SIP_PORT+1]
#                          [--tls-cert PEM --tls-key PEM] [--evapi-port 8448] [--http-port 8090]
#                          [--jsonrpc-port 5810] [--domain pbx.example.com] [--dir DIR]
#                          [--cc-link] [--auth-db SQLITE_FILE] [--define NAME[=VALUE]]... [--set key=value]...
#   scripts/stack.sh stop  [--sip-port 5060] [--dir DIR]
#   scripts/stack.sh status [--sip-port 5060] [--dir DIR]
#   scripts/stack.sh kill-service|start-service [same options as start]   (crash and restart
#                                                   only the service, e.g. kill -9 mid-call)
#   scripts/stack.sh restart-kamailio [same options as start]   (the service stays up and relinks)
#   scripts/stack.sh kill-kamailio|start-kamailio [same options as start]   (kill -9 Kamailio, every
#                                                   process of it, and start it again)
#
# DIR (default .stack/<sip-port>) holds the pid files, Kamailio's control socket, the call-control
# socket (cc.sock), the logs (kamailio.log, service.log) and the service's store (sca.sqlite).
# Phones register over UDP (--sip-port), TCP (--tcp-port) and TLS (--tls-port); without
# --tls-cert/--tls-key the first start makes a self-signed certificate in DIR/tls/ (openssl).
# Call control goes through Kamailio's stock call_control module, or with --cc-link through
# kamailio/cc-routes.cfg (the service is told which: cc_door, so that it can say when the door
# Kamailio asks is off, e.g. --set call_control_socket=). --auth-db turns digest authentication on (WITH_AUTH), users from the
# subscriber table of that SQLite file. --define passes a define to kamailio.cfg (-A), e.g.
# CC_FAIL_CLOSED or 'CC_PCC_TRUSTED="10.0.0.0/8"'. --set passes service settings (see service/config.ts).
# `start` returns once Kamailio listens and the service is connected to it (/readyz 200).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

cmd=${1:-}; shift || true
SIP_IP=127.0.0.1; SIP_PORT=5060; TCP_PORT=""; TLS_PORT=""; TLS_CERT=""; TLS_KEY=""
EVAPI_PORT=""; HTTP_PORT=""; JSONRPC_PORT=""; DOMAIN=pbx.example.com; DIR=""; SETS=(); KDEFS=(); CC_DOOR=socket
while [ $# -gt 0 ]; do
  case $1 in
    --sip-ip) SIP_IP=$2; shift 2;;
    --sip-port) SIP_PORT=$2; shift 2;;
    --tcp-port) TCP_PORT=$2; shift 2;;
    --tls-port) TLS_PORT=$2; shift 2;;
    --tls-cert) TLS_CERT=$2; shift 2;;
    --tls-key) TLS_KEY=$2; shift 2;;
    --evapi-port) EVAPI_PORT=$2; shift 2;;
    --http-port) HTTP_PORT=$2; shift 2;;
    --jsonrpc-port) JSONRPC_PORT=$2; shift 2;;
    --cc-link) KDEFS+=(-A WITH_CC_LINK); CC_DOOR=link; shift;;
    --auth-db) KDEFS+=(-A WITH_AUTH -A "DB_URL=\"sqlite://$2\""); shift 2;;
    --define) KDEFS+=(-A "$2"); shift 2;;
    --domain) DOMAIN=$2; shift 2;;
    --dir) DIR=$2; shift 2;;
    --set) SETS+=(--set "$2"); shift 2;;
    *) echo "stack.sh: unknown option $1" >&2; sed -n '2,26p' "$0" >&2; exit 2;;
  esac
done
TCP_PORT=${TCP_PORT:-$SIP_PORT}
TLS_PORT=${TLS_PORT:-$((SIP_PORT + 1))}
EVAPI_PORT=${EVAPI_PORT:-$((SIP_PORT + 3388))}
HTTP_PORT=${HTTP_PORT:-$((SIP_PORT + 3030))}
JSONRPC_PORT=${JSONRPC_PORT:-$((SIP_PORT + 750))}
DIR=${DIR:-$ROOT/.stack/$SIP_PORT}
mkdir -p "$DIR"; DIR=$(cd "$DIR" && pwd)
if [ -n "$TLS_CERT" ] || [ -n "$TLS_KEY" ]; then
  [ -n "$TLS_CERT" ] && [ -n "$TLS_KEY" ] || { echo "stack.sh: --tls-cert and --tls-key go together" >&2; exit 2; }
  TLS_CERT=$(cd "$(dirname "$TLS_CERT")" && pwd)/$(basename "$TLS_CERT"); TLS_KEY=$(cd "$(dirname "$TLS_KEY")" && pwd)/$(basename "$TLS_KEY")
else
  TLS_CERT=$DIR/tls/sip-cert.pem; TLS_KEY=$DIR/tls/sip-key.pem
fi

# ensure_cert: a self-signed certificate for the TLS listener, made once (kept in DIR/tls/).
ensure_cert() {
  [ -s "$TLS_CERT" ] && [ -s "$TLS_KEY" ] && return 0
  command -v openssl >/dev/null || { echo "stack.sh: openssl is missing (apt-get install -y openssl), or give --tls-cert/--tls-key" >&2; return 1; }
  mkdir -p "$(dirname "$TLS_CERT")"
  local san="DNS:$DOMAIN"
  [ "$SIP_IP" != 0.0.0.0 ] && san="$san,IP:$SIP_IP"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj "/CN=$DOMAIN" \
    -addext "subjectAltName=$san" -keyout "$TLS_KEY" -out "$TLS_CERT" >"$DIR/tls-cert.log" 2>&1 \
    || { echo "stack.sh: could not make a certificate (see $DIR/tls-cert.log)" >&2; return 1; }
  chmod 600 "$TLS_KEY"
  echo "stack.sh: made a self-signed TLS certificate $TLS_CERT (a real one: --tls-cert/--tls-key)" >&2
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pid() { # stop_pid PIDFILE: TERM, wait up to 5 s, then KILL
  local f=$1 pid i
  alive "$f" || { rm -f "$f"; return 0; }
  pid=$(cat "$f"); kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then pkill -KILL -P "$pid" 2>/dev/null || true; kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$f"
}

start_service() {
  node "$ROOT/dist/service/main.js" --set "evapi_address=127.0.0.1:$EVAPI_PORT" \
    --set "http_port=$HTTP_PORT" --set "db_url=sqlite:$DIR/sca.sqlite" --set "call_control_socket=$DIR/cc.sock" \
    --set "cc_jsonrpc_address=udp:127.0.0.1:$JSONRPC_PORT" --set "cc_door=$CC_DOOR" ${SETS[@]+"${SETS[@]}"} >>"$DIR/service.log" 2>&1 &
  echo $! >"$DIR/service.pid"
}

start_kamailio() {
  kamailio -DD -E -f "$ROOT/kamailio/kamailio.cfg" -m 256 -M 16 -Y "$DIR" \
    -A "SIP_IP=$SIP_IP" -A "SIP_PORT=$SIP_PORT" -A "TCP_PORT=$TCP_PORT" -A "TLS_PORT=$TLS_PORT" \
    -A "TLS_CERT=\"$TLS_CERT\"" -A "TLS_KEY=\"$TLS_KEY\"" \
    -A "SIP_DOMAIN=\"$DOMAIN\"" -A "CTL_SOCK=\"unix:$DIR/kamailio_ctl\"" \
    -A "EVAPI_BIND=\"127.0.0.1:$EVAPI_PORT\"" -A "CC_SOCKET=\"$DIR/cc.sock\"" \
    -A "JSONRPC_SOCK=\"udp:127.0.0.1:$JSONRPC_PORT\"" ${KDEFS[@]+"${KDEFS[@]}"} >>"$DIR/kamailio.log" 2>&1 &
  echo $! >"$DIR/kamailio.pid"
}

wait_ready() {
  for i in $(seq 100); do
    ready && return 0
    alive "$DIR/service.pid" || { echo "stack.sh: the service exited; last log lines:" >&2; tail -20 "$DIR/service.log" >&2; return 1; }
    sleep 0.1
  done
  echo "stack.sh: the service is not ready after 10 s (see $DIR/service.log)" >&2
  return 1
}

ready() {
  node -e "fetch('http://127.0.0.1:$HTTP_PORT/readyz').then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"
}

# The call-control line of the summary, from what the service says in /readyz: its door, its
# socket, and why calls would go uncounted.
cc_summary() {
  node -e "
    const [url, given] = process.argv.slice(1);
    fetch(url).then((r) => r.json()).then((b) => {
      const d = (b.modules && b.modules.cc && b.modules.cc.detail) || {};
      if (d.warning) console.log('  call control         ' + d.warning);
      else if (d.door === 'link') console.log('  call control         the link door (kamailio/cc-routes.cfg)');
      else if (d.door === 'none') console.log('  call control         not used (cc_door=none)');
      else if (d.socket !== given) console.log('  call control         WARNING: the service listens on ' + d.socket + ' but Kamailio\\'s call_control module is given ' + given + ': calls go on uncounted');
      else console.log('  call-control socket  ' + d.socket + ' (Kamailio\\'s call_control module)');
    }, () => console.log('  call control         (unknown: /readyz did not answer)'));
  " "http://127.0.0.1:$HTTP_PORT/readyz" "$DIR/cc.sock"
}

healthy() {
  node -e "fetch('http://127.0.0.1:$HTTP_PORT/healthz').then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"
}

case $cmd in
  start)
    # shellcheck source=scripts/deps.sh
    . "$ROOT/scripts/deps.sh"
    export DEPS_LOG="$DIR/deps.log"
    ensure_npm "$ROOT" || exit 1
    ensure_kamailio "$ROOT/kamailio/kamailio.cfg" || exit 1
    ensure_build "$ROOT" || exit 1
    ensure_cert || exit 1
    if alive "$DIR/kamailio.pid" || alive "$DIR/service.pid"; then echo "stack.sh: already running in $DIR" >&2; exit 1; fi
    # The service first: Kamailio's call_control module connects to its socket when it starts
    # (and waits 10 s before trying again if nothing is there).
    : >"$DIR/service.log"
    start_service
    for i in $(seq 100); do
      healthy && break
      alive "$DIR/service.pid" || { echo "stack.sh: the service exited; last log lines:" >&2; tail -20 "$DIR/service.log" >&2; exit 1; }
      sleep 0.1
    done
    : >"$DIR/kamailio.log"
    start_kamailio
    for i in $(seq 100); do
      if ready; then
        cat <<INFO
stack up: Kamailio + sca-service
  phones register at   udp:$SIP_IP:$SIP_PORT, tcp:$SIP_IP:$TCP_PORT, tls:$SIP_IP:$TLS_PORT, domain $DOMAIN
                       (e.g. user 100, outbound proxy $SIP_IP:$SIP_PORT; behind NAT too;
                       shared line: Polycom reg.1.type=shared, Yealink account.1.shared_line=1)
  TLS certificate      $TLS_CERT$( [ "$TLS_CERT" = "$DIR/tls/sip-cert.pem" ] && echo " (self-signed; a real one: --tls-cert/--tls-key)" )
  live view            http://127.0.0.1:$HTTP_PORT/
  commands             node bin/sca-ctl.js --url http://127.0.0.1:$HTTP_PORT <sca.*|cc.*> (sca-ctl --help)
$(cc_summary)
  logs and store       $DIR (kamailio.log, service.log, sca.sqlite)
  stop with            npm stop$( [ "$SIP_PORT" = 5060 ] || echo " -- --sip-port $SIP_PORT" )    status: npm run status
INFO
        exit 0
      fi
      alive "$DIR/kamailio.pid" || { echo "stack.sh: kamailio exited; last log lines:" >&2; tail -20 "$DIR/kamailio.log" >&2; stop_pid "$DIR/service.pid"; exit 1; }
      alive "$DIR/service.pid" || { echo "stack.sh: the service exited; last log lines:" >&2; tail -20 "$DIR/service.log" >&2; stop_pid "$DIR/kamailio.pid"; exit 1; }
      sleep 0.1
    done
    echo "stack.sh: not ready after 10 s (see $DIR/*.log)" >&2
    stop_pid "$DIR/service.pid"; stop_pid "$DIR/kamailio.pid"; exit 1;;
  stop)
    # Both at once: each takes about 2 s to shut down cleanly, and neither needs the other for it.
    stop_pid "$DIR/service.pid" & stop_pid "$DIR/kamailio.pid" & wait; echo "stack down ($DIR)";;
  kill-service)
    alive "$DIR/service.pid" && kill -KILL "$(cat "$DIR/service.pid")"; rm -f "$DIR/service.pid"; echo "service killed";;
  start-service)
    alive "$DIR/service.pid" && { echo "stack.sh: the service is running" >&2; exit 1; }
    start_service; wait_ready && echo "service up";;
  restart-kamailio)
    # Kamailio stopped (TERM) and started again with the same settings; the service stays up and
    # reconnects on its own. Returns when the service is linked to the new Kamailio again.
    stop_pid "$DIR/kamailio.pid"; start_kamailio
    for i in $(seq 100); do
      sleep 0.1
      alive "$DIR/kamailio.pid" || { echo "stack.sh: kamailio exited; last log lines:" >&2; tail -20 "$DIR/kamailio.log" >&2; exit 1; }
      ready && { echo "kamailio restarted"; exit 0; }
    done
    echo "stack.sh: the service is not linked to the new Kamailio after 10 s" >&2; exit 1;;
  kill-kamailio)
    if alive "$DIR/kamailio.pid"; then pid=$(cat "$DIR/kamailio.pid"); pkill -KILL -P "$pid" 2>/dev/null || true; kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$DIR/kamailio.pid"; echo "kamailio killed";;
  start-kamailio)
    alive "$DIR/kamailio.pid" && { echo "stack.sh: kamailio is running" >&2; exit 1; }
    start_kamailio
    for i in $(seq 100); do
      sleep 0.1
      alive "$DIR/kamailio.pid" || { echo "stack.sh: kamailio exited; last log lines:" >&2; tail -20 "$DIR/kamailio.log" >&2; exit 1; }
      ready && { echo "kamailio started"; exit 0; }
    done
    echo "stack.sh: the service is not linked to the new Kamailio after 10 s" >&2; exit 1;;
  status)
    alive "$DIR/kamailio.pid" && echo "kamailio: running (pid $(cat "$DIR/kamailio.pid"))" || echo "kamailio: stopped"
    alive "$DIR/service.pid" && echo "service: running (pid $(cat "$DIR/service.pid"))" || echo "service: stopped"
    ready && echo "ready: yes" || echo "ready: no";;
  *) sed -n '2,26p' "$0" >&2; exit 2;;
esac
