#!/usr/bin/env bash
# `npm run ha` and `npm run test:ha` first: Kamailio, the npm packages and the compiled service, as `npm start` needs
# them, and Galera (galera-4, galera-arbitrator-4 with MariaDB's server), installed as root on
# Debian when missing or reported with the command that installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/deps.sh
. "$ROOT/scripts/deps.sh"
mkdir -p "$ROOT/.stack"
export DEPS_LOG="$ROOT/.stack/ha-deps.log"
ensure_npm "$ROOT"
ensure_kamailio "$ROOT/kamailio/kamailio.cfg"
ensure_build "$ROOT"
need=()
[ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
[ -f /usr/lib/galera/libgalera_smm.so ] || need+=(galera-4)
command -v garbd >/dev/null || need+=(galera-arbitrator-4)
command -v rsync >/dev/null || need+=(rsync)
[ -f /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 ] || need+=(faketime) # T11 (npm run test:ha)
if [ ${#need[@]} -gt 0 ]; then apt_install "$DEPS_LOG" "${need[@]}"; fi
