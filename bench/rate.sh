#!/usr/bin/env bash
# bench/rate.sh: latency of `canary serve` against nginx at a fixed offered
# rate (open loop), both proxying to the same nginx backend on loopback.
#
# bench/run.sh's wrk is closed-loop: each connection sends its next request
# when the previous answer is in, so a slow moment slows the sender too and
# the requests that would have waited are never measured, and each proxy is
# measured at its own throughput. Here the load generator
# (crates/canary/examples/fixed_rate/) sends at a fixed rate whatever the
# answers do, and measures each request from its scheduled send time: the
# same offered load for both proxies, and the latency users would see.
#
# Usage (from anywhere):
#     bash bench/rate.sh
#     RATES="5000 10000" ROUNDS=5 DURATION=20s bash bench/rate.sh
#
# What one run does:
#   1. cargo build --release -p canary --bins --examples (BUILD=0 skips it)
#   2. starts one backend: nginx, 1 worker, `return 200 "ok"`
#   3. starts the proxies, each on its own loopback port, both to that backend:
#        nginx   1 worker, upstream keepalive 64, HTTP/1.1, Connection "",
#                X-Forwarded-For/-Proto/-Host set (as canary sends them)
#        canary  workers = 1, stable and canary both = the backend, share 50
#   4. for ROUNDS rounds, for each rate in RATES, measures both targets one
#      after the other (canary first in odd rounds, nginx first in even ones):
#        fixed_rate URL RATE DURATION CONNECTIONS WARMUP
#      (WARMUP seconds at the same rate, not recorded, then DURATION measured),
#      and the CPU time of the proxy process during that run (nginx: its worker)
#   5. prints per rate and target the medians of achieved req/s, p50, p99,
#      p99.9 and the worst max, and the ratios canary/nginx for p99 and p99.9
#      (of the medians, and paired: the median over rounds of the ratio within
#      a round, measured seconds apart)
#
# Environment (defaults in brackets):
#   RATES ["2000 5000 10000 15000"] (requests per second)  ROUNDS [3]
#   DURATION [10s]  WARMUP [2s]  CONNECTIONS [32]  BUILD [1]
#   NGINX [/usr/sbin/nginx]  OUT [bench/out/rate-<UTC timestamp>]
#
# Output: OUT/results.tsv (one line per measurement), OUT/summary.txt (the
# table), OUT/env.txt (machine, versions, `uptime` before and after),
# OUT/gen/*.txt and *.err (raw generator output), OUT/gen/*.timeline.tsv (the
# slowest request per 100 ms of each measured run, by scheduled time),
# OUT/logs/ (server configs and logs). Every process started here is stopped
# on exit, including on failure or Ctrl-C. Only 127.0.0.1 is used.
#
# The generator runs its connections on one thread and paces them from a
# second, mostly sleeping one (see the example's doc); it reports how late it
# sent (gen_lag) and the rate it achieved. The proxy, the backend and the
# generator share the machine: compare targets within one run, not across runs.

set -euo pipefail

RATES=${RATES:-2000 5000 10000 15000}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-32}
BUILD=${BUILD:-1}
NGINX=${NGINX:-/usr/sbin/nginx}

die() { echo "rate: $*" >&2; exit 1; }

# --- validate the knobs ------------------------------------------------------
[[ $ROUNDS =~ ^[0-9]+$ ]] && ((ROUNDS >= 1 && ROUNDS <= 100)) || die "ROUNDS must be 1..100, got '$ROUNDS'"
[[ $CONNECTIONS =~ ^[0-9]+$ ]] && ((CONNECTIONS >= 1 && CONNECTIONS <= 10000)) ||
    die "CONNECTIONS must be 1..10000, got '$CONNECTIONS'"
[[ $BUILD == 0 || $BUILD == 1 ]] || die "BUILD must be 0 or 1, got '$BUILD'"
read -r -a RATE_LIST <<<"$RATES"
((${#RATE_LIST[@]} >= 1)) || die "RATES is empty"
for rate in "${RATE_LIST[@]}"; do
    [[ $rate =~ ^[0-9]+$ ]] && ((rate >= 1 && rate <= 1000000)) ||
        die "each of RATES must be a whole number of requests per second, 1..1000000; got '$rate'"
done


for tool in "$NGINX" curl cargo timeout ss; do
    command -v "$tool" >/dev/null || die "missing tool: $tool"
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$ROOT/bench/out/rate-$STAMP}
mkdir -p "$OUT/gen" "$OUT/logs"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/canary-rate.XXXXXX")
CLK_TCK=$(getconf CLK_TCK)

BENCH=rate
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
DURATION_S=$(to_seconds "$DURATION")
WARMUP_S=$(to_seconds "$WARMUP")
((DURATION_S >= 1)) || die "DURATION must be at least 1s"

# --- 1. build --------------------------------------------------------------------
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
CANARY_BIN=$TARGET_DIR/release/canary
GEN=$TARGET_DIR/release/examples/fixed_rate
if [[ $BUILD == 1 ]]; then
    echo "rate: cargo build --release -p canary --bins --examples"
    (cd "$ROOT" && cargo build --release -p canary --bins --examples) >"$OUT/build.log" 2>&1 ||
        { tail -n 30 "$OUT/build.log" >&2; die "cargo build failed (log: $OUT/build.log)"; }
fi
[[ -x $CANARY_BIN ]] || die "no binary at $CANARY_BIN (run with BUILD=1)"
[[ -x $GEN ]] || die "no load generator at $GEN (run with BUILD=1)"

{
    echo "date_utc: $(date -u '+%Y-%m-%d %H:%M:%S')"
    echo "nproc: $(nproc)"
    echo "cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "kernel: $(uname -sr)"
    echo "nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"
    echo "canary_git: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        "(uncommitted changes: $(cd "$ROOT" && git status --porcelain 2>/dev/null | wc -l) files)"
    echo "rates: $RATES rounds: $ROUNDS duration: $DURATION warmup: $WARMUP connections: $CONNECTIONS"
    echo "uptime_at_start: $(uptime)"
} >"$OUT/env.txt"
cat "$OUT/env.txt"

# --- 2. backend ---------------------------------------------------------------------
start_backend

# --- 3. proxies ---------------------------------------------------------------------
start_nginx_proxy 1
start_canary canary 1

TARGETS=(canary nginx)
declare -A URL PID
URL[canary]=http://127.0.0.1:$CANARY_PORT/ PID[canary]=$CANARY_PID
URL[nginx]=http://127.0.0.1:$NGINX_PORT/ PID[nginx]=$NGINX_WORKER
for t in "${TARGETS[@]}"; do echo "rate: $t ${URL[$t]} (cpu pid ${PID[$t]})"; done

# --- 4. measure ----------------------------------------------------------------------
RESULTS=$OUT/results.tsv
COLS=(achieved requests errors non_2xx p50_us p90_us p99_us p999_us max_us mean_us svc_p99_us gen_lag_p99_us gen_lag_max_us)
{
    printf 'round\trate\ttarget'
    printf '\t%s' "${COLS[@]}"
    printf '\tcpu_us_per_req\tloadavg1\n'
} >"$RESULTS"
GEN_LIMIT=$((WARMUP_S + DURATION_S + 30))

# the value of KEY in the key=value line of FILE
kv() { awk -v k="$2" '{for (i = 1; i <= NF; i++) {split($i, a, "="); if (a[1] == k) print a[2]}}' "$1"; }

for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then order=(canary nginx); else order=(nginx canary); fi
    for rate in "${RATE_LIST[@]}"; do
        for t in "${order[@]}"; do
            url=${URL[$t]} pid=${PID[$t]}
            alive "$pid" || die "$t (pid $pid) is gone before round $r"
            raw=$OUT/gen/r$r-$rate-$t
            load1=$(cut -d' ' -f1 /proc/loadavg)
            c0=$(cpu_ticks "$pid")
            FIXED_RATE_TIMELINE=$raw.timeline.tsv timeout "$GEN_LIMIT" \
                "$GEN" "$url" "$rate" "$DURATION_S" "$CONNECTIONS" "$WARMUP_S" >"$raw.txt" 2>"$raw.err" ||
                { cat "$raw.err" >&2; die "fixed_rate failed for $t at $rate req/s (see $raw.err)"; }
            c1=$(cpu_ticks "$pid")
            alive "$pid" || die "$t (pid $pid) died during round $r"
            [[ -n $(kv "$raw.txt" p99_us) ]] || die "cannot parse $raw.txt"
            # CPU per request over the warm-up and the measured seconds, at the offered rate
            cpu=$(awk -v d=$((c1 - c0)) -v n=$((rate * (WARMUP_S + DURATION_S))) -v hz="$CLK_TCK" \
                'BEGIN {printf "%.2f", d * 1e6 / hz / n}')
            {
                printf '%s\t%s\t%s' "$r" "$rate" "$t"
                for c in "${COLS[@]}"; do printf '\t%s' "$(kv "$raw.txt" "$c")"; done
                printf '\t%s\t%s\n' "$cpu" "$load1"
            } >>"$RESULTS"
            printf 'rate: round %d/%d %6s req/s %-6s achieved %9s  p50 %6s  p99 %6s  p99.9 %6s  max %6s us  errors %s  gen lag p99 %s us\n' \
                "$r" "$ROUNDS" "$rate" "$t" "$(kv "$raw.txt" achieved)" "$(kv "$raw.txt" p50_us)" \
                "$(kv "$raw.txt" p99_us)" "$(kv "$raw.txt" p999_us)" "$(kv "$raw.txt" max_us)" \
                "$(kv "$raw.txt" errors)" "$(kv "$raw.txt" gen_lag_p99_us)"
        done
    done
done
echo "uptime_at_end: $(uptime)" >>"$OUT/env.txt"
tail -n 1 "$OUT/env.txt"

# --- 5. summary ----------------------------------------------------------------------
# column number of NAME in results.tsv
col() { head -n 1 "$RESULTS" | tr '\t' '\n' | awk -v n="$1" '$1 == n {print NR}'; }
med() { sort -g | awk '{a[NR] = $1} END {
    if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# median over rounds of column NAME for RATE and TARGET
median() { awk -F'\t' -v r="$1" -v t="$2" -v c="$(col "$3")" 'NR > 1 && $2 == r && $3 == t {print $c}' "$RESULTS" | med; }
worst() { awk -F'\t' -v r="$1" -v t="$2" -v c="$(col "$3")" 'NR > 1 && $2 == r && $3 == t && $c > m {m = $c} END {print m + 0}' "$RESULTS"; }
total() { awk -F'\t' -v r="$1" -v t="$2" -v c="$(col "$3")" 'NR > 1 && $2 == r && $3 == t {s += $c} END {print s + 0}' "$RESULTS"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b + 0 == 0) print "nan"; else printf "%.2f", a / b}'; }
# median over rounds of canary's NAME / nginx's NAME in the same round, at RATE
paired() {
    awk -F'\t' -v r="$1" -v c="$(col "$2")" 'NR > 1 && $2 == r && $3 == "canary" {a[$1] = $c}
        NR > 1 && $2 == r && $3 == "nginx" {b[$1] = $c}
        END {for (k in a) if ((k in b) && b[k] + 0 > 0) print a[k] / b[k]}' "$RESULTS" | med |
        awk '{if ($1 == "nan") print "nan"; else printf "%.2f", $1}'
}

{
    echo "medians of $ROUNDS rounds; fixed_rate URL RATE $DURATION_S $CONNECTIONS $WARMUP_S (open loop;" \
        "latency from the scheduled send, the generator's own delay left out); $(nproc) CPUs"
    printf '%7s %-7s %10s %8s %8s %9s %9s %11s %8s %12s\n' rate target achieved p50_us p99_us p99.9_us \
        max_us gen_lag_p99 errors cpu_us/req
    for rate in "${RATE_LIST[@]}"; do
        for t in "${TARGETS[@]}"; do
            errs=$(($(total "$rate" "$t" errors) + $(total "$rate" "$t" non_2xx)))
            printf '%7s %-7s %10.1f %8.0f %8.0f %9.0f %9.0f %11.0f %8s %12.2f\n' "$rate" "$t" \
                "$(median "$rate" "$t" achieved)" "$(median "$rate" "$t" p50_us)" "$(median "$rate" "$t" p99_us)" \
                "$(median "$rate" "$t" p999_us)" "$(worst "$rate" "$t" max_us)" \
                "$(median "$rate" "$t" gen_lag_p99_us)" "$errs" "$(median "$rate" "$t" cpu_us_per_req)"
        done
    done
    echo
    echo "canary / nginx (above 1: canary's latency is higher), of the medians and paired per round"
    printf '%7s %8s %8s %8s %12s %14s %8s\n' rate p50 p99 p99.9 p99_paired p99.9_paired max
    for rate in "${RATE_LIST[@]}"; do
        printf '%7s %8s %8s %8s %12s %14s %8s\n' "$rate" \
            "$(ratio "$(median "$rate" canary p50_us)" "$(median "$rate" nginx p50_us)")" \
            "$(ratio "$(median "$rate" canary p99_us)" "$(median "$rate" nginx p99_us)")" \
            "$(ratio "$(median "$rate" canary p999_us)" "$(median "$rate" nginx p999_us)")" \
            "$(paired "$rate" p99_us)" "$(paired "$rate" p999_us)" \
            "$(ratio "$(worst "$rate" canary max_us)" "$(worst "$rate" nginx max_us)")"
    done
    echo
    echo "achieved: responses per second of the measured window (offered: rate); max_us: the worst of the rounds"
    echo "gen_lag_p99: the generator's own send delay (us); errors: unanswered slots + non-2xx, all rounds"
    echo "cpu_us/req: the proxy process's CPU (nginx: its worker) over warm-up and measurement, per offered request"
} | tee "$OUT/summary.txt"
echo "rate: raw output in $OUT"
