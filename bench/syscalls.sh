#!/usr/bin/env bash
# bench/syscalls.sh: system calls per proxied request, canary against nginx.
# User-space instructions (bench/instructions.sh) leave out the kernel, where
# a proxy on loopback spends most of its CPU: each system call avoided is
# worth more than a thousand instructions saved.
#
# Usage (from anywhere):
#     bash bench/syscalls.sh                # builds canary in release mode first
#     BUILD=0 DURATION=5s bash bench/syscalls.sh
#
# What one run does: starts an nginx backend (1 worker, `return 200 "ok"`),
# then canary (workers = 1, share 50) and an nginx reverse proxy (1 worker,
# upstream keepalive, X-Forwarded-* set as canary sets them), one after the
# other; for each, a WARMUP wrk run, then `strace -c -f` attached to the proxy
# (nginx: its worker) for a measured `wrk -t1 -c8 -d$DURATION`; prints each
# system call's count per request, side by side. strace slows both proxies
# alike; the counts, not the times, are the measure.
#
# With RATE=N the measured load is instead the open-loop generator
# (crates/canary/examples/fixed_rate/) at N requests a second on 32
# connections: at a rate under the proxy's capacity each wake-up carries one
# request, and the counts show what a proxy pays per wake-up, not only per
# request (bench/rate.sh's CPU per request at low rates).
#
# Environment (defaults in brackets): DURATION [5s] WARMUP [2s] BUILD [1] RATE [unset: wrk]
#   NGINX [/usr/sbin/nginx] WRK [/usr/bin/wrk] OUT [bench/out/syscalls-<UTC timestamp>]
# Every process started here is stopped on exit. Only 127.0.0.1 is used.

set -euo pipefail

DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-2s}
BUILD=${BUILD:-1}
RATE=${RATE:-}
NGINX=${NGINX:-/usr/sbin/nginx}
WRK=${WRK:-/usr/bin/wrk}

die() { echo "syscalls: $*" >&2; exit 1; }
for tool in "$NGINX" "$WRK" strace curl python3 ss; do
    command -v "$tool" >/dev/null || die "missing tool: $tool (apt-get install strace nginx wrk curl python3 iproute2)"
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$ROOT/bench/out/syscalls-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT/logs"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/canary-syscalls.XXXXXX")
BENCH=syscalls
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

CANARY_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/canary
if [[ $BUILD == 1 ]]; then
    (cd "$ROOT" && cargo build --release -p canary --bins --examples) >"$OUT/build.log" 2>&1 ||
        die "build failed: $OUT/build.log"
fi
[[ -x $CANARY_BIN ]] || die "no binary at $CANARY_BIN (run with BUILD=1)"
GEN=$(dirname "$CANARY_BIN")/examples/fixed_rate
if [[ -n $RATE ]]; then
    [[ $RATE =~ ^[0-9]+$ ]] && ((RATE >= 1)) || die "RATE must be a whole number of requests a second, got '$RATE'"
    [[ -x $GEN ]] || die "no load generator at $GEN (run with BUILD=1)"
fi

start_backend

# measure NAME URL PID: strace's table for PID during one wrk run, and the requests
measure() {
    local name=$1 url=$2 pid=$3
    "$WRK" -t1 -c8 -d"$WARMUP" -H 'x-user-id: u1' "$url" >/dev/null
    strace -c -f -p "$pid" -o "$OUT/$name.strace" &
    local spid=$!
    sleep 1
    if [[ -n $RATE ]]; then
        # WARMUP 0: every answer counted, as strace counts every call
        "$GEN" "$url" "$RATE" "$(to_seconds "$DURATION")" 32 0 >"$OUT/$name.gen" 2>"$OUT/$name.gen.err" ||
            die "the load generator failed for $name (see $OUT/$name.gen.err)"
        kill -INT "$spid"
        sed -n 's/.* requests=\([0-9]*\) .*/\1/p' "$OUT/$name.gen" >"$OUT/$name.requests"
    else
        "$WRK" -t1 -c8 -d"$DURATION" -H 'x-user-id: u1' "$url" >"$OUT/$name.wrk"
        kill -INT "$spid"
        awk '/requests in/ {print $1}' "$OUT/$name.wrk" >"$OUT/$name.requests"
    fi
    wait "$spid" 2>/dev/null || true
}

start_canary canary 1
measure canary "http://127.0.0.1:$CANARY_PORT/" "$CANARY_PID"
kill "$CANARY_PID"

start_nginx_proxy 1
measure nginx "http://127.0.0.1:$NGINX_PORT/" "$NGINX_WORKER"

python3 - "$OUT" "$(cd "$ROOT" && git rev-parse --short HEAD)" "$RATE" <<'PY' | tee "$OUT/summary.txt"
import re, sys
out, commit = sys.argv[1], sys.argv[2]
def table(name):
    calls = {}
    for line in open(f"{out}/{name}.strace"):
        f = line.split()
        if len(f) >= 5 and re.fullmatch(r"[\d.]+", f[0]) and f[-1] != "total":
            calls[f[-1]] = int(f[3])
    return calls, int(open(f"{out}/{name}.requests").read())
(c, cr), (n, nr) = table("canary"), table("nginx")
load = f"fixed_rate {sys.argv[3]} req/s, 32 connections" if sys.argv[3] else "wrk -t1 -c8"
print(f"system calls per request (strace -c; {load}; canary at {commit}; requests: canary {cr}, nginx {nr})")
print(f"{'syscall':<16} {'canary':>8} {'nginx':>8}")
for s in sorted(set(c) | set(n), key=lambda s: -(c.get(s, 0) / cr + n.get(s, 0) / nr)):
    cv, nv = c.get(s, 0) / cr, n.get(s, 0) / nr
    if cv >= 0.005 or nv >= 0.005:
        print(f"{s:<16} {cv:8.2f} {nv:8.2f}")
print(f"{'total':<16} {sum(c.values()) / cr:8.2f} {sum(n.values()) / nr:8.2f}")
PY
