#!/usr/bin/env bash
# bench/run.sh: throughput, latency and CPU cost of `canary serve` against
# nginx and haproxy, all proxying to the same nginx backend on loopback.
#
# Usage (from anywhere):
#     bash bench/run.sh
#     ROUNDS=5 DURATION=20s CONNECTIONS=64 bash bench/run.sh
#
# What one run does:
#   1. cargo build --release -p canary
#   2. starts one backend: nginx, 1 worker, `return 200 "ok"`
#   3. starts the proxies, each on its own loopback port, all to that backend:
#        nginx      1 worker, upstream keepalive 64, HTTP/1.1, Connection ""
#        haproxy    nbthread 1, mode http, http-reuse always
#        canary     workers = 1, stable and canary both = the backend, share 50
#        canary-w2  the same with workers = 2, and nginx-auto, nginx with
#                   `worker_processes auto`: each with its default number of
#                   workers on this machine (CANARY_W2=0 skips both)
#        floor-epoll, floor-uring, floor-uring-defer  with FLOOR=1 only:
#                   bench/floor, a relay that copies bytes between each client
#                   and its own upstream connection and does no HTTP, on epoll
#                   (tokio) and on io_uring (monoio; -defer: completion work run
#                   only when the thread reaps): the ceiling of any proxy on
#                   that I/O layer
#   4. for ROUNDS rounds, measures each target in turn (direct, nginx, haproxy,
#      canary, canary-w2; round r starts at the r-th, so that a drift in the
#      machine's load does not always fall on the same target): a WARMUP wrk run, then
#        wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency
#      and the CPU time (utime+stime from /proc/PID/stat, plus any child
#      processes) used by the proxy process during the measured run; for
#      nginx that is its worker process; for `direct`, the backend's worker.
#   5. prints the median per target of req/s, p50, p99 and CPU us/req, and
#      the ratios canary/nginx and canary/haproxy for req/s and p99.
#
# Environment (defaults in brackets):
#   ROUNDS [3]  DURATION [10s]  WARMUP [2s]  CONNECTIONS [32]  THREADS [1]
#   CANARY_W2 [1]  BUILD [1] (0 = use the existing target/release/canary)
#   FLOOR [0] (1 = also measure bench/floor's two relays; builds them with cargo)
#   FORWARDED [1] (nginx and haproxy add X-Forwarded-For/-Proto/-Host, as canary does)
#   ACCESS_LOG [0] (1 = also canary+log and nginx+log: the same as canary and
#              nginx, each writing its access log to a file, canary's JSON
#              lines and nginx's `combined`, measured in the same rounds)
#   NGINX [/usr/sbin/nginx]  HAPROXY [/usr/sbin/haproxy]  WRK [/usr/bin/wrk]
#   OUT [bench/out/<UTC timestamp>]
#
# Output: OUT/results.tsv (one line per measurement), OUT/summary.txt (the
# table), OUT/env.txt (machine and versions), OUT/wrk/*.txt (raw wrk output),
# OUT/logs/ (server configs and logs). Every process started here is stopped
# on exit, including on failure or Ctrl-C. Only 127.0.0.1 is used.
#
# wrk, the proxies and the backend share the same machine: on a small or busy
# machine they compete for CPU, so compare targets within one run, not across runs.

set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
CANARY_W2=${CANARY_W2:-1}
FLOOR=${FLOOR:-0}
FORWARDED=${FORWARDED:-1}
ACCESS_LOG=${ACCESS_LOG:-0}
BUILD=${BUILD:-1}
NGINX=${NGINX:-/usr/sbin/nginx}
HAPROXY=${HAPROXY:-/usr/sbin/haproxy}
WRK=${WRK:-/usr/bin/wrk}

die() { echo "bench: $*" >&2; exit 1; }

# --- validate the knobs ------------------------------------------------------
[[ $ROUNDS =~ ^[0-9]+$ ]] && ((ROUNDS >= 1 && ROUNDS <= 100)) || die "ROUNDS must be 1..100, got '$ROUNDS'"
[[ $CONNECTIONS =~ ^[0-9]+$ ]] && ((CONNECTIONS >= 1 && CONNECTIONS <= 10000)) || die "CONNECTIONS must be 1..10000"
[[ $THREADS =~ ^[0-9]+$ ]] && ((THREADS >= 1 && THREADS <= CONNECTIONS)) || die "THREADS must be 1..CONNECTIONS"


for tool in "$NGINX" "$HAPROXY" "$WRK" curl cargo timeout ss; do
    command -v "$tool" >/dev/null || die "missing tool: $tool"
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$ROOT/bench/out/$STAMP}
mkdir -p "$OUT/wrk" "$OUT/logs"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/canary-bench.XXXXXX")
CLK_TCK=$(getconf CLK_TCK)

BENCH=bench
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
DURATION_S=$(to_seconds "$DURATION")
WARMUP_S=$(to_seconds "$WARMUP")
((DURATION_S >= 1)) || die "DURATION must be at least 1s"

# wrk latency "123.45us" / "1.20ms" / "1.01s" / "2.00m" -> microseconds
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") m = 1; else if (u == "ms") m = 1000; else if (u == "s") m = 1e6;
        else if (u == "m") m = 60e6; else if (u == "h") m = 3600e6; else m = -1
        if (m < 0) print "nan"; else printf "%.1f", n * m }'
}

# --- 1. build --------------------------------------------------------------------
CANARY_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/canary
if [[ $BUILD == 1 ]]; then
    echo "bench: cargo build --release -p canary"
    (cd "$ROOT" && cargo build --release -p canary) >"$OUT/build.log" 2>&1 ||
        { tail -n 30 "$OUT/build.log" >&2; die "cargo build failed (log: $OUT/build.log)"; }
fi
[[ -x $CANARY_BIN ]] || die "no binary at $CANARY_BIN"
FLOOR_TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/floor
if [[ $FLOOR == 1 ]]; then
    echo "bench: cargo build --release (bench/floor)"
    cargo build --release --locked --manifest-path "$ROOT/bench/floor/Cargo.toml" --target-dir "$FLOOR_TARGET" \
        >"$OUT/build-floor.log" 2>&1 ||
        { tail -n 30 "$OUT/build-floor.log" >&2; die "cargo build of bench/floor failed (log: $OUT/build-floor.log)"; }
fi

{
    echo "date_utc: $(date -u '+%Y-%m-%d %H:%M:%S')"
    echo "nproc: $(nproc)"
    echo "cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "kernel: $(uname -sr)"
    echo "nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"
    echo "haproxy: $("$HAPROXY" -v 2>&1 | head -n 1)"
    echo "wrk: $("$WRK" -v 2>&1 | head -n 1)"
    echo "canary_git: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        "(uncommitted changes: $(cd "$ROOT" && git status --porcelain 2>/dev/null | wc -l) files)"
    echo "rounds: $ROUNDS duration: $DURATION warmup: $WARMUP connections: $CONNECTIONS wrk_threads: $THREADS"
    echo "loadavg_at_start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/env.txt"
cat "$OUT/env.txt"

# --- 2. backend ---------------------------------------------------------------------
start_backend

# --- 3. proxies ---------------------------------------------------------------------
# canary always tells the upstream who the client was (X-Forwarded-For, -Proto,
# -Host); with FORWARDED=1 nginx and haproxy are configured to do the same, as
# they usually are in front of an API, so all three send the backend the same
# request and the backend does the same work for each.
HAPROXY_FORWARDED=""
if [[ $FORWARDED == 1 ]]; then
    HAPROXY_FORWARDED='    option forwardfor
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Host %[req.hdr(host)]'
fi
start_nginx_proxy "$FORWARDED"

HAPROXY_PORT=$(free_port)
d=$TMP/haproxy && mkdir -p "$d"
cat >"$d/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4096

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    http-reuse always

frontend fe
    bind 127.0.0.1:$HAPROXY_PORT
    default_backend be

backend be
$HAPROXY_FORWARDED
    server s1 127.0.0.1:$BACKEND_PORT
EOF
"$HAPROXY" -db -f "$d/haproxy.cfg" >"$d/stdout.log" 2>&1 &
HAPROXY_PID=$!
PIDS+=("$HAPROXY_PID")
wait_http "http://127.0.0.1:$HAPROXY_PORT/" ok "$HAPROXY_PID" haproxy

start_canary canary 1
CANARY1_PORT=$CANARY_PORT CANARY1_PID=$CANARY_PID
TARGETS=(direct nginx haproxy canary)
declare -A URL PID
URL[direct]=http://127.0.0.1:$BACKEND_PORT/ PID[direct]=$BACKEND_WORKER
URL[nginx]=http://127.0.0.1:$NGINX_PORT/ PID[nginx]=$NGINX_WORKER
URL[haproxy]=http://127.0.0.1:$HAPROXY_PORT/ PID[haproxy]=$HAPROXY_PID
URL[canary]=http://127.0.0.1:$CANARY1_PORT/ PID[canary]=$CANARY1_PID
if [[ $CANARY_W2 == 1 ]]; then
    start_canary canary-w2 2
    TARGETS+=(canary-w2)
    URL[canary-w2]=http://127.0.0.1:$CANARY_PORT/ PID[canary-w2]=$CANARY_PID
    # its CPU: the master's and its workers' (cpu_ticks counts descendants)
    start_nginx_proxy "$FORWARDED" nginx-auto auto
    TARGETS+=(nginx-auto)
    URL[nginx-auto]=http://127.0.0.1:$NGINX_PORT/ PID[nginx-auto]=$NGINX_PID
fi

if [[ $ACCESS_LOG == 1 ]]; then
    CANARY_EXTRA_TOML=$(printf '[access_log]\npath = "%s"\n' "$TMP/canary-access.log") start_canary canary+log 1
    TARGETS+=(canary+log)
    URL[canary+log]=http://127.0.0.1:$CANARY_PORT/ PID[canary+log]=$CANARY_PID
    NGINX_ACCESS_LOG="$TMP/nginx-access.log combined" start_nginx_proxy "$FORWARDED" nginx+log
    TARGETS+=(nginx+log)
    URL[nginx+log]=http://127.0.0.1:$NGINX_PORT/ PID[nginx+log]=$NGINX_WORKER
fi

# start_floor MODE: bench/floor's relay on io layer MODE, as target floor-MODE
start_floor() {
    local mode=$1 d=$TMP/floor-$1 port pid
    mkdir -p "$d"
    port=$(free_port)
    "$FLOOR_TARGET/release/floor" "$mode" "127.0.0.1:$port" "127.0.0.1:$BACKEND_PORT" \
        >"$d/stdout.log" 2>"$d/stderr.log" &
    pid=$!
    PIDS+=("$pid")
    wait_http "http://127.0.0.1:$port/" ok "$pid" "floor-$mode"
    TARGETS+=("floor-$mode")
    URL[floor-$mode]=http://127.0.0.1:$port/ PID[floor-$mode]=$pid
}
if [[ $FLOOR == 1 ]]; then
    start_floor epoll
    start_floor uring
    start_floor uring-defer
fi

for t in "${TARGETS[@]}"; do echo "bench: $t ${URL[$t]} (cpu pid ${PID[$t]})"; done

# --- 4. measure ----------------------------------------------------------------------
RESULTS=$OUT/results.tsv
printf 'round\ttarget\treq_s\tp50_us\tp99_us\tcpu_us_per_req\tbackend_cpu_us_per_req\trequests\tnon_2xx_3xx\tsocket_errors\tloadavg1\n' >"$RESULTS"
WRK_LIMIT=$((DURATION_S + 30))
WARMUP_LIMIT=$((WARMUP_S + 30))

# The machine's load drifts over minutes; starting each round one target
# later spreads that drift over all targets instead of always the same one.
rotated() {
    local r=$1 n=${#TARGETS[@]} i
    for ((i = 0; i < n; i++)); do echo "${TARGETS[$(((i + r - 1) % n))]}"; done
}

for ((r = 1; r <= ROUNDS; r++)); do
    for t in $(rotated "$r"); do
        url=${URL[$t]} pid=${PID[$t]}
        alive "$pid" || die "$t (pid $pid) is gone before round $r"
        if ((WARMUP_S > 0)); then
            timeout "$WARMUP_LIMIT" "$WRK" -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "$url" \
                >"$OUT/wrk/r$r-$t-warmup.txt" 2>&1 || die "wrk warm-up failed for $t (see $OUT/wrk)"
        fi
        load1=$(cut -d' ' -f1 /proc/loadavg)
        c0=$(cpu_ticks "$pid")
        b0=$(cpu_ticks "$BACKEND_WORKER")
        raw=$OUT/wrk/r$r-$t.txt
        timeout "$WRK_LIMIT" "$WRK" -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$url" \
            >"$raw" 2>&1 || die "wrk failed for $t (see $raw)"
        c1=$(cpu_ticks "$pid")
        b1=$(cpu_ticks "$BACKEND_WORKER")
        alive "$pid" || die "$t (pid $pid) died during round $r"

        rps=$(awk '/^Requests\/sec:/ {print $2}' "$raw")
        reqs=$(awk '/ requests in / {print $1}' "$raw")
        p50=$(to_us "$(awk '$1 == "50%" {print $2}' "$raw")")
        p99=$(to_us "$(awk '$1 == "99%" {print $2}' "$raw")")
        non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$raw")
        sockerr=$(awk '/Socket errors:/ {gsub(/,/, ""); print $4 + $6 + $8 + $10}' "$raw")
        [[ -n $rps && -n $reqs && $reqs -gt 0 ]] || die "cannot parse wrk output $raw"
        cpu=$(awk -v d=$((c1 - c0)) -v n="$reqs" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", d * 1e6 / hz / n}')
        bcpu=$(awk -v d=$((b1 - b0)) -v n="$reqs" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", d * 1e6 / hz / n}')
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$t" "$rps" "$p50" "$p99" "$cpu" "$bcpu" \
            "$reqs" "${non2xx:-0}" "${sockerr:-0}" "$load1" >>"$RESULTS"
        printf 'bench: round %d/%d %-17s %10s req/s  p50 %8s us  p99 %8s us  cpu %6s us/req  non-2xx %s  socket errors %s\n' \
            "$r" "$ROUNDS" "$t" "$rps" "$p50" "$p99" "$cpu" "${non2xx:-0}" "${sockerr:-0}"
    done
done
echo "loadavg_at_end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/env.txt"

# --- 5. summary ----------------------------------------------------------------------
# median of column COL for target T
median() {
    awk -F'\t' -v t="$1" -v c="$2" 'NR > 1 && $2 == t {print $c}' "$RESULTS" | sort -g |
        awk '{a[NR] = $1} END {
            if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
sum_col() { awk -F'\t' -v t="$1" -v c="$2" 'NR > 1 && $2 == t {s += $c} END {print s + 0}' "$RESULTS"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b + 0 == 0) print "nan"; else printf "%.2f", a / b}'; }
# median over rounds of (C's column COL / P's column COL) within the same round:
# targets measured seconds apart share the machine's load of the moment, so
# this pairs out drift that the medians of whole columns keep
paired() {
    awk -F'\t' -v c="$1" -v p="$2" -v k="$3" 'NR > 1 && $2 == c {a[$1] = $k} NR > 1 && $2 == p {b[$1] = $k}
        END {for (r in a) if ((r in b) && b[r] + 0 > 0) print a[r] / b[r]}' "$RESULTS" | sort -g |
        awk '{a[NR] = $1} END {
            if (NR == 0) print "nan"; else if (NR % 2) printf "%.2f", a[(NR + 1) / 2];
            else printf "%.2f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

declare -A M_RPS M_P99
{
    echo "medians of $ROUNDS rounds; wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency; $(nproc) CPUs"
    printf '%-17s %10s %10s %10s %12s %12s %8s\n' target req/s p50_us p99_us cpu_us/req backend_us/req errors
    for t in "${TARGETS[@]}"; do
        M_RPS[$t]=$(median "$t" 3)
        M_P99[$t]=$(median "$t" 5)
        errs=$(($(sum_col "$t" 9) + $(sum_col "$t" 10)))
        printf '%-17s %10.0f %10.0f %10.0f %12.2f %12.2f %8s\n' "$t" "${M_RPS[$t]}" "$(median "$t" 4)" \
            "${M_P99[$t]}" "$(median "$t" 6)" "$(median "$t" 7)" "$errs"
    done
    echo
    echo "ratios (req/s: higher is better for canary; p99: lower is better for canary)"
    for c in canary canary-w2 floor-epoll floor-uring floor-uring-defer; do
        [[ -n ${M_RPS[$c]:-} ]] || continue
        for p in nginx nginx-auto haproxy; do
            [[ -n ${M_RPS[$p]:-} ]] || continue
            printf '%-17s / %-10s  req/s %s  p99 %s  cpu/req %s   (paired per round: req/s %s  p99 %s  cpu/req %s)\n' \
                "$c" "$p" "$(ratio "${M_RPS[$c]}" "${M_RPS[$p]}")" "$(ratio "${M_P99[$c]}" "${M_P99[$p]}")" \
                "$(ratio "$(median "$c" 6)" "$(median "$p" 6)")" \
                "$(paired "$c" "$p" 3)" "$(paired "$c" "$p" 5)" "$(paired "$c" "$p" 6)"
        done
    done
    if [[ -n ${M_RPS[canary+log]:-} ]]; then
        echo
        echo "the access log's cost (with / without, paired per round)"
        for pair in "canary+log canary" "nginx+log nginx"; do
            read -r w o <<<"$pair"
            printf '%-17s / %-10s  cpu/req %s  req/s %s\n' "$w" "$o" "$(paired "$w" "$o" 6)" "$(paired "$w" "$o" 3)"
        done
    fi
    echo
    echo "errors = non-2xx/3xx responses + socket errors, summed over all rounds"
    echo "cpu_us/req: proxy process (nginx: its worker; nginx-auto: its master and workers; direct: the backend worker)"
} | tee "$OUT/summary.txt"
echo "bench: raw output in $OUT"
