#!/usr/bin/env bash
# bench/shadow.sh: what a shadow step costs the users and the proxy. At a
# fixed offered rate (open loop, crates/canary/examples/fixed_rate), users'
# latency through `canary serve` with shadowing off and on (every GET copied
# to the canary and compared), paired within each round; the proxy's CPU
# time per request in each; then the proxy's memory with a canary that
# accepts connections and never answers, copies piling up against the bound.
#
# Usage (from anywhere):
#     bash bench/shadow.sh
#     RATE=1000 ROUNDS=5 DURATION=20s HOLD=60s bash bench/shadow.sh
#
# What one run does:
#   1. cargo build --release -p canary --bins --examples (BUILD=0 skips it)
#   2. starts one backend (nginx, 1 worker, `return 200 "ok"`), which is both
#      stable and canary, and `canary serve` (1 worker) in front of it
#   3. for ROUNDS rounds, measures off and on one after the other (off first
#      in odd rounds): off is the rollout rolled back (share 0, no copies);
#      on is `canary deploy 10 BACKEND --shadow 1h` (share 0, every GET
#      copied, 25% also sent to stable again for noise): fixed_rate URL RATE
#      DURATION CONNECTIONS WARMUP, and the proxy's CPU time over it
#   4. deploys a shadow step whose canary is a listener that never answers,
#      offers RATE for HOLD and samples the proxy's RSS every 2 s, with the
#      copies dropped for want of room (from /metrics)
#   5. prints the medians per mode, the paired on/off ratios of p50 and p99
#      (median over rounds of the ratio within a round) and CPU, and the RSS
#
# Environment (defaults in brackets): RATE [1000] ROUNDS [5] DURATION [10s]
#   WARMUP [2s] CONNECTIONS [16] HOLD [60s] BUILD [1] NGINX [/usr/sbin/nginx]
#   OUT [bench/out/shadow-<UTC timestamp>]
#
# The proxy, the backend and the generator share the machine: compare the
# modes within one run, not across runs.

set -euo pipefail

RATE=${RATE:-1000}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-16}
HOLD=${HOLD:-60s}
BUILD=${BUILD:-1}
NGINX=${NGINX:-/usr/sbin/nginx}

die() { echo "shadow: $*" >&2; exit 1; }

[[ $RATE =~ ^[0-9]+$ ]] && ((RATE >= 1)) || die "RATE must be a whole number of requests per second, got '$RATE'"
[[ $ROUNDS =~ ^[0-9]+$ ]] && ((ROUNDS >= 1 && ROUNDS <= 100)) || die "ROUNDS must be 1..100, got '$ROUNDS'"
[[ $BUILD == 0 || $BUILD == 1 ]] || die "BUILD must be 0 or 1, got '$BUILD'"
for tool in "$NGINX" curl cargo timeout ss python3; do
    command -v "$tool" >/dev/null || die "missing tool: $tool"
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$ROOT/bench/out/shadow-$STAMP}
mkdir -p "$OUT/gen" "$OUT/logs"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/canary-shadow.XXXXXX")
CLK_TCK=$(getconf CLK_TCK)

BENCH=shadow
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
DURATION_S=$(to_seconds "$DURATION")
WARMUP_S=$(to_seconds "$WARMUP")
HOLD_S=$(to_seconds "$HOLD")

# --- 1. build ------------------------------------------------------------------------
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
CANARY_BIN=$TARGET_DIR/release/canary
GEN=$TARGET_DIR/release/examples/fixed_rate
if [[ $BUILD == 1 ]]; then
    echo "shadow: cargo build --release -p canary --bins --examples"
    (cd "$ROOT" && cargo build --release -p canary --bins --examples) >"$OUT/build.log" 2>&1 ||
        { tail -n 30 "$OUT/build.log" >&2; die "cargo build failed (log: $OUT/build.log)"; }
fi
[[ -x $CANARY_BIN && -x $GEN ]] || die "no binary at $CANARY_BIN or $GEN (run with BUILD=1)"
{
    echo "date_utc: $(date -u '+%Y-%m-%d %H:%M:%S')"
    echo "nproc: $(nproc)  cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "canary_git: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "rate: $RATE rounds: $ROUNDS duration: $DURATION warmup: $WARMUP connections: $CONNECTIONS hold: $HOLD"
} >"$OUT/env.txt"
cat "$OUT/env.txt"

# --- 2. servers ----------------------------------------------------------------------
start_backend
# Every GET copied: the default cap of 500 copies a second would copy half.
CANARY_EXTRA_TOML=${CANARY_EXTRA_TOML:-$'[shadow]\nmax_rate = 100000\n'}
start_canary canary 1
ADMIN=http://127.0.0.1:$CANARY_ADMIN_PORT
URL=http://127.0.0.1:$CANARY_PORT/
BACKEND=http://127.0.0.1:$BACKEND_PORT

cli() { "$CANARY_BIN" "$@" --admin "$ADMIN" >>"$OUT/logs/cli.log" 2>&1 || die "canary $* failed (see $OUT/logs/cli.log)"; }
shadow_on() { cli deploy 10 "$1" --shadow 1h --force --reason "shadow benchmark"; }
shadow_off() { cli rollback --reason "shadow benchmark"; }
# Start from a rolled-back rollout: every "off" is the same state.
shadow_on "$BACKEND"
shadow_off

kv() { awk -v k="$2" '{for (i = 1; i <= NF; i++) {split($i, a, "="); if (a[1] == k) print a[2]}}' "$1"; }
metric() { curl -s --max-time 2 "$ADMIN/metrics" | awk -v m="$1" 'index($0, m " ") == 1 {print $2}'; }

# --- 3. off and on, paired -------------------------------------------------------------
RESULTS=$OUT/results.tsv
printf 'round\tmode\tachieved\terrors\tp50_us\tp99_us\tp999_us\tcpu_us_per_req\n' >"$RESULTS"
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then order=(off on); else order=(on off); fi
    for mode in "${order[@]}"; do
        if [[ $mode == on ]]; then shadow_on "$BACKEND"; fi
        raw=$OUT/gen/r$r-$mode
        c0=$(cpu_ticks "$CANARY_PID")
        timeout $((WARMUP_S + DURATION_S + 30)) "$GEN" "$URL" "$RATE" "$DURATION_S" "$CONNECTIONS" "$WARMUP_S" \
            >"$raw.txt" 2>"$raw.err" || { cat "$raw.err" >&2; die "fixed_rate failed ($mode, round $r)"; }
        c1=$(cpu_ticks "$CANARY_PID")
        if [[ $mode == on ]]; then shadow_off; fi
        cpu=$(awk -v d=$((c1 - c0)) -v n=$((RATE * (WARMUP_S + DURATION_S))) -v hz="$CLK_TCK" \
            'BEGIN {printf "%.2f", d * 1e6 / hz / n}')
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$mode" "$(kv "$raw.txt" achieved)" "$(kv "$raw.txt" errors)" \
            "$(kv "$raw.txt" p50_us)" "$(kv "$raw.txt" p99_us)" "$(kv "$raw.txt" p999_us)" "$cpu" >>"$RESULTS"
        printf 'shadow: round %d/%d %-3s achieved %8s  p50 %6s  p99 %6s  p99.9 %6s us  cpu %s us/req  errors %s\n' \
            "$r" "$ROUNDS" "$mode" "$(kv "$raw.txt" achieved)" "$(kv "$raw.txt" p50_us)" "$(kv "$raw.txt" p99_us)" \
            "$(kv "$raw.txt" p999_us)" "$cpu" "$(kv "$raw.txt" errors)"
    done
done
compared=$(metric 'canary_shadow_copies_total{result="compared"}')

# --- 4. a canary that never answers ----------------------------------------------------
HOLE_PORT=$(free_port)
python3 -c "
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(4096)
held = []
while True:
    held.append(s.accept()[0])  # accepted, never read, never answered
" "$HOLE_PORT" >"$TMP/hole.log" 2>&1 &
PIDS+=($!)
sleep 0.5
rss() { awk '/^VmRSS/ {print $2}' "/proc/$CANARY_PID/status"; }
rss0=$(rss)
shadow_on "http://127.0.0.1:$HOLE_PORT"
timeout $((HOLD_S + 30)) "$GEN" "$URL" "$RATE" "$HOLD_S" "$CONNECTIONS" 0 >"$OUT/gen/hole.txt" 2>"$OUT/gen/hole.err" &
gen=$!
PIDS+=("$gen")
: >"$OUT/rss.tsv"
while alive "$gen"; do
    printf '%s\t%s\n' "$(date +%s)" "$(rss)" >>"$OUT/rss.tsv"
    sleep 2
done
wait "$gen" || die "fixed_rate failed against the never-answering canary (see $OUT/gen/hole.err)"
rss_max=$(sort -k2 -g "$OUT/rss.tsv" | tail -n 1 | cut -f2)
rss_end=$(rss)
queue_full=$(metric 'canary_shadow_copies_total{result="skipped_queue_full"}')

# --- 5. summary --------------------------------------------------------------------------
med() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
col() { head -n 1 "$RESULTS" | tr '\t' '\n' | awk -v n="$1" '$1 == n {print NR}'; }
median() { awk -F'\t' -v m="$1" -v c="$(col "$2")" 'NR > 1 && $2 == m {print $c}' "$RESULTS" | med; }
paired() {
    awk -F'\t' -v c="$(col "$1")" 'NR > 1 && $2 == "on" {a[$1] = $c} NR > 1 && $2 == "off" {b[$1] = $c}
        END {for (k in a) if ((k in b) && b[k] + 0 > 0) print a[k] / b[k]}' "$RESULTS" | med |
        awk '{if ($1 == "nan") print "nan"; else printf "%.2f", $1}'
}
{
    echo "medians of $ROUNDS rounds at $RATE req/s offered (open loop), $(nproc) CPUs; on = every GET copied and compared"
    printf '%-4s %10s %8s %8s %9s %12s\n' mode achieved p50_us p99_us p99.9_us cpu_us/req
    for m in off on; do
        printf '%-4s %10s %8s %8s %9s %12s\n' "$m" "$(median "$m" achieved)" "$(median "$m" p50_us)" \
            "$(median "$m" p99_us)" "$(median "$m" p999_us)" "$(median "$m" cpu_us_per_req)"
    done
    echo "paired on/off (median over rounds): p50 x$(paired p50_us)  p99 x$(paired p99_us)  cpu x$(paired cpu_us_per_req)"
    echo "copies compared in the on rounds: ${compared:-?}"
    echo "never-answering canary, $RATE req/s for $HOLD_S s: RSS before ${rss0} kB, max ${rss_max} kB, at the end ${rss_end} kB;" \
        "copies dropped for want of room: ${queue_full:-?}; users: $(kv "$OUT/gen/hole.txt" errors) errors," \
        "p99 $(kv "$OUT/gen/hole.txt" p99_us) us"
} | tee "$OUT/summary.txt"
