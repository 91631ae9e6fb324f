#!/usr/bin/env bash
# bench/fleet.sh: what a fleet of N `canary serve` replicas on one etcd costs,
# idle and under load, with no rollout and while one is judged, and how fast a
# routing change reaches all of them.
#
# Usage: bash bench/fleet.sh [N...]          # default: 3 10 30 100
#        WINDOW=10 bash bench/fleet.sh 3 10  # a quicker look
#
# For each N, from a clean start (a new single-member etcd, its data in a
# scratch folder; new state files):
#   1. N replicas, started in batches of BATCH, each with its own proxy port,
#      admin port and state file, `--etcd URL --node-id rNNN`, all with the
#      same stable upstream (an nginx backend, `return 200 "ok"`); the run
#      waits until every replica answers its admin API and every replica's
#      health lists all N replicas and the same leader, then SETTLE seconds.
#   2. idle: nothing sent to the fleet for WINDOW seconds. CPU (utime+stime
#      from /proc/PID/stat, in ms of CPU per second) of the whole fleet (sum),
#      per replica (mean, max), of the leader and of etcd; PSS and RSS per
#      replica at the window's end (/proc/PID/smaps_rollup; median, max);
#      internal requests/s between replicas (their /metrics,
#      canary_cluster_internal_requests_total) and etcd's requests/s by
#      method (etcd's /metrics, grpc_server_started_total), both scraped
#      just outside the CPU window.
#   3. load: for each rate in LOAD_RATES, that many requests/s spread round
#      robin over all replicas' proxy ports (bench/fleet_load.py: open loop,
#      keep-alive connections; its own CPU is not counted), the same figures
#      over WINDOW seconds, and the leader's extra CPU over idle.
#      Phases 2 and 3 run before any deploy: with no rollout to judge the
#      leader gathers the fleet's totals (GET /internal/v1/totals on each
#      peer) only every 5 s, the cheap case; phase 5 measures the other.
#   4. propagation: a rollout is deployed (share 20, the canary the
#      backend's second port, a manual plan with an hour's bake: nothing
#      moves on its own), then CHANGES share changes
#      (30, 20, 30, ...), each a PUT /api/routing/share to a random replica,
#      which forwards it to the leader; after each answer GET /api/routing
#      is polled every 10 ms on the replicas not yet showing it. A change's
#      propagation time is when the last replica showed it, from the PUT's
#      answer and from its sending (bench/fleet_probe.py). p50/p99/max;
#      the figure includes up to a poll round (a lower bound is shown too).
#      Each change waits for the previous one to be everywhere, +0.1 s.
#   5. judging: the rollout of phase 4 stays active (its hour's bake), but
#      the share changes left it paused, judged only for an immediate
#      rollback; it is resumed (POST /api/rollout/resume: back to its step's
#      share, 20, and its bake), so the leader judges it fully at every look
#      (every 250 ms) and gathers every peer's totals each time: 4·(N-1)
#      internal requests/s, against (N-1)/5 in phases 2 and 3. Just before
#      and after each window, GET /api/rollout on the leader and on a
#      follower must show the rollout active (progressing, holding or
#      paused), or the run fails. After SETTLE seconds, the figures of
#      phase 2 over WINDOW seconds with nothing sent ("judging idle"), then
#      again under the highest rate of LOAD_RATES, sent as in phase 3
#      ("judging under load"). Reported beside them: the leader's CPU idle
#      with no rollout, judging idle and judging under load; the gathering's
#      cost (leader judging idle minus leader idle); and the leader's extra
#      CPU at that rate while judging (leader judging under load minus
#      leader idle), the figure the leader aim is about.
#   6. the replicas and etcd are stopped; WARN and ERROR lines of the
#      replicas' logs are counted (those logged while stopping apart).
# Then OUT/summary.txt (each N in detail, beside the issue's aims, and two
# tables, one row per N: phases 2-4, and the leader while judging) and
# OUT/summary.json; per N, OUT/nN/*.json (the raw figures); logs in
# OUT/logs/.
#
# The aims (for 100 replicas idle): fleet CPU <= 100 ms/s, etcd <= 50 ms/s,
# PSS <= 15 MB per replica; propagation p99 < 250 ms; with 1,000 requests/s
# over 100 replicas, the leader's CPU at most 50 ms/s over its idle (checked
# both with no rollout, phase 3, and while one is judged, phase 5: the
# latter is the case the aim is about, gathering at every look).
#
# Everything runs on this machine's loopback, replicas, etcd, backend and
# load alike: on a small machine they compete for its cores (the figures
# are CPU time, not wall time, but latencies suffer). Every process started
# is stopped on exit, including on failure or Ctrl-C.
#
# Environment (defaults in brackets):
#   WINDOW [20] seconds of each CPU measurement   SETTLE [5] seconds idle before it
#   LOAD_RATES [100, plus 1000 when N >= 100] requests/s, space-separated
#   (phase 5 uses the highest of them)
#   CHANGES [100] share changes   BATCH [10] replicas started at once
#   STARTUP_TIMEOUT [600] seconds for the fleet to start and settle
#   WORKERS [canary's default] the replicas' [proxy] workers
#   CANARY_BIN [target/release/canary] (copied at the start, so a rebuild
#   during the run changes nothing)   NGINX [/usr/sbin/nginx]
#   OUT [bench/out/fleet-<UTC timestamp>]
set -euo pipefail

BENCH=fleet
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "$BENCH: $*" >&2; exit 1; }
usage() { echo "usage: bash bench/fleet.sh [N...]   (replica counts; default 3 10 30 100)" >&2; exit 2; }

SIZES=("$@")
((${#SIZES[@]})) || SIZES=(3 10 30 100)
for n in "${SIZES[@]}"; do [[ $n =~ ^[1-9][0-9]*$ ]] || usage; done
WINDOW=${WINDOW:-20}
SETTLE=${SETTLE:-5}
CHANGES=${CHANGES:-100}
BATCH=${BATCH:-10}
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-600}
WORKERS=${WORKERS:-}
for v in WINDOW SETTLE CHANGES BATCH STARTUP_TIMEOUT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a whole number above 0 (got '${!v}')"
done
[[ -z $WORKERS || $WORKERS =~ ^[1-9][0-9]*$ ]] || die "WORKERS must be a whole number above 0"
for r in ${LOAD_RATES:-}; do [[ $r =~ ^[1-9][0-9]*$ ]] || die "LOAD_RATES: '$r' is not a rate"; done
NGINX=${NGINX:-/usr/sbin/nginx}
CANARY_BIN=${CANARY_BIN:-$ROOT/target/release/canary}
OUT=${OUT:-$ROOT/bench/out/fleet-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT/logs"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/canary-fleet.XXXXXX")
# Not copied to the logs: the binary, etcd's data, the state files.
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/canary-fleet-scratch.XXXXXX")
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

fleet_exit() {
    local rc=$?
    set +e
    rm -rf "$SCRATCH"
    (exit "$rc")
    cleanup
}
trap fleet_exit EXIT

for tool in etcd python3 curl; do
    command -v "$tool" >/dev/null || die "$tool is needed (scripts/install-deps.sh installs etcd; apt-get install python3 curl)"
done
[[ -x $NGINX ]] || die "no nginx at $NGINX: apt-get install nginx (or set NGINX)"
[[ -x $CANARY_BIN ]] || die "no $CANARY_BIN: cargo build --release -p canary (or set CANARY_BIN)"
"$CANARY_BIN" serve --help | grep -q -- --etcd || die "$CANARY_BIN does not take --etcd: build it from this tree"
cp "$CANARY_BIN" "$SCRATCH/canary"
CANARY=$SCRATCH/canary
py() { python3 "$ROOT/bench/$1" "${@:2}"; }

# Every replica holds a socket per peer, and this script's helpers one per
# replica: as many files as the hard limit allows, up to 65536.
HARD=$(ulimit -Hn)
FILES=65536
[[ $HARD != unlimited ]] && ((HARD < FILES)) && FILES=$HARD
ulimit -n "$FILES"
# shellcheck disable=SC2034 # read by lib.sh's nginx_common
NGINX_NOFILE=$FILES NGINX_CONNECTIONS=$((FILES > 8192 ? 8192 : FILES - 64))

# A process that exists and is not a zombie (lib.sh's alive() counts a
# stopped child not yet waited for).
running() {
    local s
    s=$(cat /proc/"$1"/stat 2>/dev/null) || return 1
    s=${s##*) }
    [[ ${s:0:1} != Z && ${s:0:1} != X ]]
}

# stop_pids PID...: SIGTERM, at most 15 s to exit, then SIGKILL; forgotten
# by the cleanup afterwards (their pids may be reused).
stop_pids() {
    local p i left keep=()
    for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
    for ((i = 0; i < 150; i++)); do
        left=0
        for p in "$@"; do running "$p" && { left=1; break; }; done
        ((left == 0)) && break
        sleep 0.1
    done
    for p in "$@"; do
        if running "$p"; then
            echo "$BENCH: pid $p did not stop on SIGTERM in 15 s; sending SIGKILL" >&2
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
    for p in "$@"; do wait "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do [[ " $* " == *" $p "* ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# --- the backend: one nginx, two ports (stable, and the canary a deploy names) --
STABLE_PORT=$(free_port)
CANARY_PORT=$(free_port)
start_nginx backend "    server {
        listen 127.0.0.1:$STABLE_PORT;
        listen 127.0.0.1:$CANARY_PORT;
        location / { return 200 \"ok\"; }
    }"
BACKEND_PID=$NGINX_STARTED
wait_http "http://127.0.0.1:$STABLE_PORT/" ok "$BACKEND_PID" backend
wait_http "http://127.0.0.1:$CANARY_PORT/" ok "$BACKEND_PID" backend

# --- the machine ------------------------------------------------------------------
REV=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(cd "$ROOT" && git status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null) ]]; then
    REV+=" (the tree has uncommitted changes under crates/)"
fi
cat >"$OUT/machine.json" <<EOF
{
  "nproc": $(nproc),
  "cpu": "$(awk -F': ' '/^model name/ {gsub(/["\\]/, ""); print $2; exit}' /proc/cpuinfo)",
  "kernel": "$(uname -sr)",
  "canary_rev": "$REV",
  "canary_binary": "$CANARY_BIN, built $(date -u -r "$CANARY_BIN" +%Y-%m-%dT%H:%M:%SZ)",
  "etcd": "$(etcd --version | awk '/^etcd Version/ {print $3}')",
  "nginx": "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')",
  "python": "$(python3 -V | awk '{print $2}')",
  "clk_tck": $(getconf CLK_TCK),
  "window_s": $WINDOW,
  "settle_s": $SETTLE,
  "workers": "${WORKERS:-default}",
  "started": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
EOF
echo "$BENCH: fleets of ${SIZES[*]} replicas; canary $REV; window ${WINDOW}s; output in $OUT"

# --- one fleet ----------------------------------------------------------------------

# start_etcd DIR: a single-member etcd, data in the scratch folder. Sets
# ETCD_URL, ETCD_PID.
start_etcd() {
    local dir=$1 client peer i
    client=$(free_port)
    peer=$(free_port)
    ETCD_URL=http://127.0.0.1:$client
    etcd --name fleet --data-dir "$SCRATCH/$(basename "$dir")-etcd" \
        --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
        --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "fleet=http://127.0.0.1:$peer" --initial-cluster-state new >"$dir/etcd.log" 2>&1 &
    ETCD_PID=$!
    PIDS+=("$ETCD_PID")
    for ((i = 0; i < 150; i++)); do
        running "$ETCD_PID" || die "etcd exited during startup; see $dir/etcd.log"
        curl -sf --max-time 1 "$ETCD_URL/health" 2>/dev/null | grep -q '"health":"true"' && return 0
        sleep 0.2
    done
    die "etcd did not become healthy in 30 s; see $dir/etcd.log"
}

run_fleet() {
    local n=$1 dir=$TMP/n$1 res=$OUT/n$1 i id d proxy admin pid first=0 t0 started settled
    local rates rate judge_rate judged ports=() replica_pids=() stopped
    mkdir -p "$dir" "$res"
    echo "$BENCH: == $n replicas"
    start_etcd "$dir"
    {
        printf '[cluster]\nprefix = "/fleet"\n\n'
        printf '[plan]\nsteps = [20.0, 50.0, 100.0]\nbake = "1h"\nfinal_watch = "1h"\nmanual = true\n'
        [[ -n $WORKERS ]] && printf '\n[proxy]\nworkers = %s\n' "$WORKERS"
    } >"$dir/canary.toml"

    t0=$SECONDS
    : >"$dir/replicas.jsonl"
    for ((i = 0; i < n; i++)); do
        id=$(printf 'r%03d' "$i")
        d=$dir/$id
        mkdir -p "$d" "$SCRATCH/n$n/$id"
        proxy=$(free_port)
        admin=$(free_port)
        "$CANARY" serve --config "$dir/canary.toml" --stable "http://127.0.0.1:$STABLE_PORT" \
            --listen "127.0.0.1:$proxy" --admin "127.0.0.1:$admin" --state "$SCRATCH/n$n/$id/state.db" \
            --etcd "$ETCD_URL" --node-id "$id" >"$d/stdout.log" 2>"$d/stderr.log" &
        pid=$!
        PIDS+=("$pid")
        replica_pids+=("$pid")
        ports+=("$proxy")
        printf '{"id": "%s", "pid": %d, "admin": %d, "proxy": %d}\n' "$id" "$pid" "$admin" "$proxy" >>"$dir/replicas.jsonl"
        if (((i + 1) % BATCH == 0 || i + 1 == n)); then
            py fleet_probe.py ready --replicas "$dir/replicas.jsonl" --first "$first" --last $((i + 1)) \
                --timeout "$STARTUP_TIMEOUT" || die "the replicas did not start; logs in $OUT/logs/n$n"
            first=$((i + 1))
        fi
    done
    started=$((SECONDS - t0))
    echo "$BENCH:   $n replicas answer their admin API after ${started}s; waiting for every one to see all $n"
    settled=$(py fleet_probe.py settle --replicas "$dir/replicas.jsonl" --n "$n" --timeout "$STARTUP_TIMEOUT") ||
        die "the fleet of $n did not settle; logs in $OUT/logs/n$n"
    echo "$BENCH:   settled after $((SECONDS - t0))s: $settled; idle for ${SETTLE}s, then ${WINDOW}s measured"
    sleep "$SETTLE"
    py fleet_probe.py measure --replicas "$dir/replicas.jsonl" --etcd "$ETCD_URL" --etcd-pid "$ETCD_PID" \
        --seconds "$WINDOW" --out "$res/idle.json"

    # under_load RATE NAME [measure's options...]: RATE requests/s over the
    # replicas' proxy ports, 3 s to start, then a WINDOW measured; the
    # server's figures in $res/NAME.json, the client's in NAME-client.json.
    under_load() {
        local rate=$1 name=$2 load_pid
        python3 "$ROOT/bench/fleet_load.py" --ports "$(IFS=,; echo "${ports[*]}")" --rate "$rate" --seconds $((WINDOW + 60)) \
            --out "$res/$name-client.json" >"$dir/$name.log" 2>&1 &
        load_pid=$!
        PIDS+=("$load_pid")
        sleep 3
        running "$load_pid" || die "the load generator exited early; see $OUT/logs/n$n/$name.log"
        py fleet_probe.py measure --replicas "$dir/replicas.jsonl" --etcd "$ETCD_URL" --etcd-pid "$ETCD_PID" \
            --seconds "$WINDOW" --out "$res/$name.json" "${@:3}" ||
            die "the measurement under load ($name) failed"
        stop_pids "$load_pid"
        [[ -s $res/$name-client.json ]] || die "the load generator wrote no summary; see $OUT/logs/n$n/$name.log"
    }

    rates=${LOAD_RATES:-100}
    [[ -z ${LOAD_RATES:-} ]] && ((n >= 100)) && rates+=" 1000"
    judge_rate=0
    for rate in $rates; do
        ((rate > judge_rate)) && judge_rate=$rate
        echo "$BENCH:   load: $rate requests/s over the $n replicas, ${WINDOW}s measured"
        under_load "$rate" "load-$rate"
        sleep 2
    done

    echo "$BENCH:   propagation: a deploy, then $CHANGES share changes"
    py fleet_probe.py propagate --replicas "$dir/replicas.jsonl" --canary "http://127.0.0.1:$CANARY_PORT" \
        --changes "$CHANGES" --out "$res/propagation.json" 2>"$dir/propagation.log" ||
        die "the propagation test failed; see $OUT/logs/n$n/propagation.log"

    judged=$(py fleet_probe.py resume --replicas "$dir/replicas.jsonl") ||
        die "no rollout to judge after the propagation test; see above"
    echo "$BENCH:   judging: $judged; idle for ${SETTLE}s, then ${WINDOW}s measured idle" \
        "and ${WINDOW}s under $judge_rate requests/s"
    sleep "$SETTLE"
    py fleet_probe.py measure --replicas "$dir/replicas.jsonl" --etcd "$ETCD_URL" --etcd-pid "$ETCD_PID" \
        --seconds "$WINDOW" --out "$res/judging-idle.json" --judging ||
        die "the judging measurement failed (no rollout being judged?); see above"
    under_load "$judge_rate" "judging-load-$judge_rate" --judging

    t0=$SECONDS
    stop_pids "${replica_pids[@]}"
    stopped=$((SECONDS - t0))
    stop_pids "$ETCD_PID"
    rm -rf "$SCRATCH/n$n" "$SCRATCH/n$n-etcd"
    py fleet_probe.py logs --replicas "$dir/replicas.jsonl" --dir "$dir" --out "$res/logs.json"
    printf '{"replicas": %d, "start_s": %d, "settle": %s, "stop_s": %d, "load_rates": [%s], "judging_rate": %d, "judged": %s}\n' \
        "$n" "$started" "$settled" "$stopped" "$(echo "$rates" | tr ' ' ',')" "$judge_rate" "$judged" >"$res/fleet.json"
    echo "$BENCH:   stopped (${stopped}s)"
}

for n in "${SIZES[@]}"; do run_fleet "$n"; done

py fleet_report.py "$OUT" "${SIZES[@]}"
cat "$OUT/summary.txt"
