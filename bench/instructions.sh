#!/usr/bin/env bash
# bench/instructions.sh: user-space instructions per proxied request, canary
# against nginx, counted by valgrind's callgrind. Unlike req/s on a shared
# machine, an instruction count does not move with the neighbours' load, so a
# change to the hot path shows up here even when wall-clock runs are too noisy
# to tell. Kernel work (the system calls) is not counted: both proxies make
# the same four per request (read and write on each side), see BENCHMARKS.md.
#
# Usage (from anywhere):
#     bash bench/instructions.sh               # builds canary in release mode first
#     BUILD=0 DURATION=10s bash bench/instructions.sh
#
# What one run does:
#   1. starts a backend: nginx, 1 worker, `return 200 "ok"`
#   2. for canary (workers = 1, share 50) and for an nginx reverse proxy (1
#      worker, upstream keepalive, X-Forwarded-* headers set as canary sets
#      them, as in bench/run.sh), each under callgrind:
#      a WARMUP wrk run, counters zeroed (callgrind_control -z), a measured
#      `wrk -t1 -c8 -d$DURATION -H 'x-user-id: u1'`, counters dumped; the
#      instructions in that dump divided by the requests wrk completed
#   3. prints both figures and canary / nginx
#
# With FLOOR=1 it also counts bench/floor's epoll relay (a proxy doing no HTTP,
# see bench/run.sh), built with cargo first: the user-space floor under
# canary's count.
#
# With ACCESS_LOG=1 it also counts each proxy writing its access log to a file
# (canary's JSON lines, `[access_log]`; nginx's `combined` format), paired
# with the runs without in the same invocation: rows canary+log, nginx+log.
#
# Environment (defaults in brackets): DURATION [10s] WARMUP [3s] BUILD [1] FLOOR [0] ACCESS_LOG [0]
#   CANARY_BIN [target/release/canary] NGINX [/usr/sbin/nginx] WRK [/usr/bin/wrk] OUT [bench/out/instructions-<UTC timestamp>]
# Every process started here is stopped on exit. Only 127.0.0.1 is used.

set -euo pipefail

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
BUILD=${BUILD:-1}
FLOOR=${FLOOR:-0}
ACCESS_LOG=${ACCESS_LOG:-0}
NGINX=${NGINX:-/usr/sbin/nginx}
WRK=${WRK:-/usr/bin/wrk}

die() { echo "instructions: $*" >&2; exit 1; }
for tool in "$NGINX" "$WRK" valgrind callgrind_control curl ss; do
    command -v "$tool" >/dev/null || die "missing tool: $tool (apt-get install valgrind nginx wrk curl iproute2)"
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$ROOT/bench/out/instructions-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT/logs"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/canary-instructions.XXXXXX")
BENCH=instructions
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
CANARY_BIN=${CANARY_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/canary}
if [[ $BUILD == 1 ]]; then
    echo "instructions: cargo build --release -p canary"
    (cd "$ROOT" && cargo build --release -p canary) >"$OUT/build.log" 2>&1 || die "build failed: $OUT/build.log"
fi
[[ -x $CANARY_BIN ]] || die "no binary at $CANARY_BIN (run with BUILD=1)"

# Until URL answers, at most 60 s: a proxy under valgrind starts slowly
# (lib.sh's wait_http allows 10 s).
wait_slow() {
    for _ in $(seq 1 120); do curl -fs -o /dev/null "$1" && return 0; sleep 0.5; done
    die "$1 did not answer within 60 s"
}

start_backend

# measure NAME URL PID: instructions per request of the callgrind'ed PID
measure() {
    local name=$1 url=$2 pid=$3 requests ir dump
    wait_slow "$url"
    "$WRK" -t1 -c8 -d"$WARMUP" -H 'x-user-id: u1' "$url" >/dev/null
    callgrind_control -z "$pid" >/dev/null 2>&1
    requests=$("$WRK" -t1 -c8 -d"$DURATION" -H 'x-user-id: u1' "$url" | tee "$OUT/$name.wrk" |
        awk '/requests in/ {print $1}')
    callgrind_control -d "$pid" >/dev/null 2>&1
    sleep 1
    dump=$(ls -t "$OUT/$name.callgrind".*.1 2>/dev/null | head -1)
    [[ -n $dump ]] || die "$name: no callgrind dump"
    ir=$(awk '/^summary:/ {print $2}' "$dump")
    [[ -n $requests && $requests -gt 0 ]] || die "$name: wrk completed no request"
    echo "$name $requests $ir $((ir / requests))"
}

# --- canary ---
# run_canary NAME TOML: prints "NAME requests instructions per_request"
run_canary() {
    local name=$1 port admin pid
    port=$(free_port) admin=$(free_port)
    printf '%s' "$2" >"$OUT/$name.toml"
    valgrind --tool=callgrind --callgrind-out-file="$OUT/$name.callgrind.%p" "$CANARY_BIN" serve \
        --config "$OUT/$name.toml" --state "$OUT/$name.db" --share 50 \
        --stable "http://127.0.0.1:$BACKEND_PORT" --canary "http://127.0.0.1:$BACKEND_PORT" \
        --listen "127.0.0.1:$port" --admin "127.0.0.1:$admin" >"$OUT/$name.log" 2>&1 &
    pid=$!
    PIDS+=($pid)
    measure "$name" "http://127.0.0.1:$port/" "$pid"
    kill "$pid"
}
read -r _ c_req c_ir c_per < <(run_canary canary $'[proxy]\nworkers = 1\n')

# --- nginx as the proxy ---
# run_nginx NAME ACCESS_LOG_DIRECTIVE
run_nginx() {
    local name=$1 port pid
    port=$(free_port)
    cat >"$OUT/$name.conf" <<EOF
worker_processes 1;
master_process off;
daemon off;
error_log $OUT/$name.err;
pid $OUT/$name.pid;
events { worker_connections 4096; }
http {
  $2
  keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";
      # What canary always sends the upstream, so both do the same work.
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$host;
    }
  }
}
EOF
    valgrind --tool=callgrind --callgrind-out-file="$OUT/$name.callgrind.%p" "$NGINX" -c "$OUT/$name.conf" -p "$OUT" \
        >"$OUT/$name.log" 2>&1 &
    pid=$!
    PIDS+=($pid)
    measure "$name" "http://127.0.0.1:$port/" "$pid"
    kill "$pid"
}
read -r _ n_req n_ir n_per < <(run_nginx nginx 'access_log off;')

# --- with access logs (ACCESS_LOG=1) ---
log_lines=""
if [[ $ACCESS_LOG == 1 ]]; then
    read -r _ cl_req cl_ir cl_per < <(run_canary canary+log \
        "$(printf '[proxy]\nworkers = 1\n[access_log]\npath = "%s"\n' "$OUT/canary-access.log")")
    read -r _ nl_req nl_ir nl_per < <(run_nginx nginx+log "access_log $OUT/nginx-access.log combined;")
    log_lines=$(printf '%-10s %10s %14s %10s\n%-10s %10s %14s %10s' \
        canary+log "$cl_req" "$cl_ir" "$cl_per" nginx+log "$nl_req" "$nl_ir" "$nl_per")
fi

# --- the floor (FLOOR=1) ---
f_line=""
if [[ $FLOOR == 1 ]]; then
    FLOOR_TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/floor
    cargo build --release --locked --manifest-path "$ROOT/bench/floor/Cargo.toml" --target-dir "$FLOOR_TARGET" \
        >"$OUT/build-floor.log" 2>&1 || die "build of bench/floor failed: $OUT/build-floor.log"
    F_PORT=$(free_port)
    valgrind --tool=callgrind --callgrind-out-file="$OUT/floor.callgrind.%p" "$FLOOR_TARGET/release/floor" epoll \
        "127.0.0.1:$F_PORT" "127.0.0.1:$BACKEND_PORT" >"$OUT/floor.log" 2>&1 &
    FPID=$!
    PIDS+=($FPID)
    read -r _ f_req f_ir f_per < <(measure floor "http://127.0.0.1:$F_PORT/" "$FPID")
    kill "$FPID"
    f_line=$(printf '%-8s %10s %14s %10s' floor "$f_req" "$f_ir" "$f_per")
fi

{
    echo "user-space instructions per request (callgrind; wrk -t1 -c8 -d$DURATION; canary at $(cd "$ROOT" && git rev-parse --short HEAD))"
    printf '%-8s %10s %14s %10s\n' target requests instructions per_req
    printf '%-8s %10s %14s %10s\n' canary "$c_req" "$c_ir" "$c_per"
    printf '%-8s %10s %14s %10s\n' nginx "$n_req" "$n_ir" "$n_per"
    [[ -z $f_line ]] || echo "$f_line"
    [[ -z $log_lines ]] || echo "$log_lines"
    awk -v c="$c_per" -v n="$n_per" 'BEGIN { printf "canary / nginx: %.2f\n", c / n }'
} | tee "$OUT/summary.txt"
