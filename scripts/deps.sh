# Sourced by scripts/test.sh and scripts/stack.sh: installs what the product needs from Debian's
# packages when it is missing (as root on Debian), or stops with the command that would.

# kamailio-tls-modules: tls.so for the TLS listener; openssl makes its self-signed certificate.
KAM_PKGS=(kamailio kamailio-extra-modules kamailio-json-modules kamailio-utils-modules kamailio-sqlite-modules kamailio-tls-modules openssl)

deps_say() { printf '[deps] %s\n' "$*" >&2; }

# apt_install LOGFILE PKG...: installs the packages, or fails with the command to run.
apt_install() {
  local log=$1; shift
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    deps_say "installing $*"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >"$log" 2>&1 && return 0
    tail -20 "$log" >&2
    deps_say "FATAL: apt-get install $* failed (see $log)"
    return 1
  fi
  deps_say "FATAL: missing $*: as root on Debian run: apt-get update && apt-get install -y $*"
  return 1
}

# ensure_kamailio CFG...: Kamailio 5.6 with the modules the given configurations load.
ensure_kamailio() {
  local log=${DEPS_LOG:-/tmp/sca-deps-apt.log} cfg ok=1
  command -v kamailio >/dev/null || ok=0
  command -v openssl >/dev/null || ok=0
  if [ $ok = 1 ]; then for cfg in "$@"; do kamailio -c -f "$cfg" >/dev/null 2>&1 || ok=0; done; fi
  [ $ok = 1 ] && return 0
  apt_install "$log" "${KAM_PKGS[@]}" || return 1
  for cfg in "$@"; do
    kamailio -c -f "$cfg" >/dev/null 2>&1 || { deps_say "FATAL: Kamailio cannot load $cfg (kamailio -c -f $cfg says why)"; return 1; }
  done
}

# ensure_npm ROOT: the npm dependencies, installed once (npm ci) and again when the lock changes.
ensure_npm() {
  local root=$1 log=${DEPS_LOG:-/tmp/sca-deps-npm.log}
  if [ ! -d "$root/node_modules/.bin" ] || [ "$root/package-lock.json" -nt "$root/node_modules/.package-lock.json" ]; then
    deps_say "installing npm dependencies (npm ci)"
    (cd "$root" && npm ci --no-audit --no-fund) >"$log" 2>&1 || { tail -20 "$log" >&2; deps_say "FATAL: npm ci failed; run 'npm ci' (see $log)"; return 1; }
  fi
}

# ensure_build ROOT: the service compiled to JavaScript (dist/), rebuilt when a source is newer.
ensure_build() {
  local root=$1 log=${DEPS_LOG:-/tmp/sca-deps-build.log}
  if [ ! -f "$root/dist/service/main.js" ] || [ -n "$(find "$root/service" "$root/package.json" -newer "$root/dist/service/main.js" -print -quit 2>/dev/null)" ]; then
    deps_say "compiling the service (npm run build)"
    (cd "$root" && npm run build) >"$log" 2>&1 || { tail -20 "$log" >&2; deps_say "FATAL: npm run build failed (see $log)"; return 1; }
  fi
}
