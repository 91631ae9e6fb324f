#!/usr/bin/env bash
# bench/idle.sh: the memory an idle keep-alive client connection costs canary
# and nginx, measured the same way: N connections each send one request, get
# the answer, then stay open and idle; the growth of the proxy process's
# VmRSS (nginx: its single worker) divided by N.
#
# Usage: bash bench/idle.sh            # or N=20000 BUILD=0 bash bench/idle.sh
# Both proxies forward to one nginx backend (`return 200 "ok"`), both with one
# worker, started as bench/run.sh starts them (bench/lib.sh). Uses 127.0.0.1
# only; every process started is stopped on exit.
#
# Environment (defaults in brackets): N [10000] BUILD [1]
#   NGINX [/usr/sbin/nginx] OUT [bench/out/idle-<UTC timestamp>]
set -euo pipefail

N=${N:-10000}
BUILD=${BUILD:-1}
NGINX=${NGINX:-/usr/sbin/nginx}
die() { echo "idle: $*" >&2; exit 1; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$ROOT/bench/out/idle-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT/logs"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/canary-idle.XXXXXX")
BENCH=idle
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

# Each process holds N sockets plus a few: as many as the hard limit allows.
FILES=$((N * 2 + 1024))
HARD=$(ulimit -Hn)
[[ $HARD != unlimited ]] && ((HARD < FILES)) && FILES=$HARD
((FILES > N + 256)) || die "ulimit -Hn $HARD is too low for N=$N"
ulimit -n "$FILES"
NGINX_NOFILE=$FILES NGINX_CONNECTIONS=$((FILES - 64))

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CANARY_BIN=$TARGET/release/canary
IDLE_CONNS=$TARGET/release/examples/idle_conns
if [[ $BUILD == 1 ]]; then
    (cd "$ROOT" && cargo build --release -p canary --bins --examples) >"$OUT/build.log" 2>&1 ||
        die "build failed: $OUT/build.log"
fi
[[ -x $CANARY_BIN && -x $IDLE_CONNS ]] || die "no binaries under $TARGET/release (run with BUILD=1)"

start_backend
start_nginx_proxy 0
start_canary canary 1

{
    echo "machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(uname -sr)"
    echo "canary $(cd "$ROOT" && git rev-parse --short HEAD), $("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"
    echo "== nginx (worker pid $NGINX_WORKER)"
    "$IDLE_CONNS" "127.0.0.1:$NGINX_PORT" "$NGINX_WORKER" "$N"
    echo "== canary (pid $CANARY_PID)"
    "$IDLE_CONNS" "127.0.0.1:$CANARY_PORT" "$CANARY_PID" "$N"
} | tee "$OUT/summary.txt"
