#!/usr/bin/env bash
# `npm test`: installs what the tests need, then runs every suite and ends with one
# "N passed, N failed" line. A missing dependency is installed or reported with its fix.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LOGDIR="$ROOT/.tap/logs"; mkdir -p "$LOGDIR"

say() { printf '[test] %s\n' "$*" >&2; }
die() { printf '[test] FATAL: %s\n' "$*" >&2; exit 1; }

# shellcheck source=scripts/deps.sh
. "$ROOT/scripts/deps.sh"
export DEPS_LOG="$LOGDIR/deps.log"

# --- npm dependencies, Kamailio 5.6 (the real proxy the e2e tests run), the compiled service ------
ensure_npm "$ROOT" || die "npm dependencies"
ensure_kamailio kamailio/kamailio.cfg kamailio/native-oracle.cfg || die "Kamailio 5.6 with evapi/jansson/htable/dialog/call_control is needed for the end-to-end tests"
[ -f /usr/share/kamailio/db_sqlite/sca-create.sql ] || die "Kamailio's sqlite schema is missing: apt-get install -y kamailio-sqlite-modules"
ensure_build "$ROOT" || die "the build"

# --- Chromium (live view test), python3-yaml (compose check), systemd-analyze (unit check),
# --- promtool (the Grafana dashboard's queries parse as PromQL; Debian's prometheus package) ---
apt_need=()
command -v promtool >/dev/null || apt_need+=(prometheus)
[ -x /usr/bin/chromium ] || apt_need+=(chromium)
/usr/bin/python3 -c 'import yaml' 2>/dev/null || apt_need+=(python3-yaml)
command -v systemd-analyze >/dev/null || apt_need+=(systemd)
if [ ${#apt_need[@]} -gt 0 ]; then apt_install "$LOGDIR/apt2.log" "${apt_need[@]}" || die "missing ${apt_need[*]}"; fi

# --- MariaDB on 127.0.0.1:3306 (root, no password) for the MySQL store tests ---------------------
mariadb_ok() { node -e "require('mysql2/promise').createConnection({uri:'mysql://root@127.0.0.1:3306'}).then(c=>c.end().then(()=>process.exit(0)),()=>process.exit(1))" 2>/dev/null; }
if ! mariadb_ok; then
  [ -x /usr/sbin/mariadbd ] || apt_install "$LOGDIR/apt3.log" mariadb-server || true
  [ -x /usr/sbin/mariadbd ] || die "MariaDB is needed for the MySQL store tests: as root on Debian run apt-get install -y mariadb-server"
  say "starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd >/dev/null 2>&1 || true
  for i in $(seq 60); do mariadb_ok && break; sleep 0.5; done
  mariadb_ok || die "MariaDB does not answer on 127.0.0.1:3306 as root without password; start it with: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"
fi
command -v mariadb-install-db >/dev/null || die "mariadb-install-db is missing (the outage test runs a private server): apt-get install -y mariadb-server"

passed=0; failed=0
suite() { # suite NAME COMMAND... : runs a tap suite, adds its counts
  local name=$1; shift
  say "suite: $name"
  "$@" >"$LOGDIR/$name.tap" 2>&1; local rc=$?
  local line; line=$(grep -E '^# \{ total: ' "$LOGDIR/$name.tap" | tail -1)
  local total pass fail
  total=$(sed -E 's/.*total: ([0-9]+).*/\1/' <<<"$line"); pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$line")
  fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$line")
  total=${total:-0}; pass=${pass:-0}; fail=${fail:-0}
  if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
  if [ "$total" -eq 0 ]; then fail=$((fail + 1)); say "$name ran no test"; fi
  passed=$((passed + pass)); failed=$((failed + fail))
  if [ "$fail" -ne 0 ]; then
    grep -E 'not ok|Error|found:|wanted:|fast-check seed' "$LOGDIR/$name.tap" | head -40 >&2
    say "$name: FAILED (full log: $LOGDIR/$name.tap)"
  else
    say "$name: $pass passed"
  fi
}

# `npm test -- e2e` runs the end-to-end suites only (after the same checks of what they need).
only=${1:-all}
want() { [ "$only" = all ] || [ "$only" = "$1" ]; }

if want unit; then
  say "type-check (tsc --noEmit)"
  if ! npx tsc --noEmit -p . >"$LOGDIR/tsc.log" 2>&1; then cat "$LOGDIR/tsc.log" >&2; failed=$((failed + 1)); fi
  suite unit npx tap --reporter=tap --disable-coverage 'test/unit/**/*.test.ts'
fi
# End-to-end files, with bounded concurrency: tap's default (all cores but one up to 4, then 3/4
# of them) let bursts of 5,000 requests share the loopback and the CPU with tests that wait on
# timers. The burst files run first, one at a time, alone; then the others, E2E_JOBS at a time
# (1 on up to 3 cores, 2 above). Each file starts its own Kamailio and service.
E2E_JOBS=${E2E_JOBS:-$(( $(nproc) >= 4 ? 2 : 1 ))}
bursts=(test/e2e/restore-many.test.ts test/e2e/races.test.ts test/e2e/latency.test.ts)
mapfile -t others < <(for f in test/e2e/*.test.ts; do case " ${bursts[*]} " in *" $f "*) ;; *) echo "$f";; esac; done)
if want e2e; then
  say "e2e: ${#bursts[@]} burst files alone, then ${#others[@]} files $E2E_JOBS at a time"
  suite e2e-bursts npx tap --reporter=tap --disable-coverage --timeout=240 --jobs=1 "${bursts[@]}"
  suite e2e npx tap --reporter=tap --disable-coverage --timeout=240 --jobs="$E2E_JOBS" "${others[@]}"
fi
want conformance && suite conformance npx tap --reporter=tap --disable-coverage --timeout=1500 --jobs=1 'test/conformance/**/*.test.ts'
want conformance && grep -A80 '# conformance table:' "$LOGDIR/conformance.tap" | sed -n '2,80p' | grep -E '^\s*#' | sed 's/^\s*# */[conformance] /' >&2 || true
want e2e && [ -f .tap/e2e-latency.json ] && say "SUBSCRIBE->NOTIFY latency (e2e): $(tr -d ' \n' < .tap/e2e-latency.json)"

echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
