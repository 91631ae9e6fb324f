#!/usr/bin/env bash
# bench/chaos.sh [minutes]: faults under load, and an account of every request.
#
# Three `canary serve` replicas (a, b, c) on a three-member etcd, all real
# processes on loopback; each replica reaches the etcd members through its
# own relay process (bench/chaos_relay.py), which can cut it off. Three demo
# services are the upstreams: v1 stable at first, v2 a good canary, v3 a bad
# one (30% errors). 200 requests/s go through all replicas
# (bench/chaos_load.py: each request on its own connection, 10 s deadline),
# a rollout cycles (deploy, let it promote or roll back, deploy again; the
# canary is v2's or v3's, whichever is not stable, picked at random), and
# every 20-40 s a random fault (on a replica: the leader half the time):
#   replica    kill -9 a replica, restart it 3 s later
#   etcd       kill -9 an etcd member, restart it 5 s later
#   partition  cut a replica off from etcd for 10 s (no close: bytes dropped)
#   upstream   kill -9 the canary upstream, restart it 5 s later
# The randomness is seeded: the seed is printed, SEED=N replays a run's
# faults and choices (not its timing).
#
# Summary (bench/out/chaos-<time>/summary.json, also printed): requests sent,
# ok, failed by cause, timed out; apart, requests in flight on a killed
# replica and requests the canary upstream failed; rollouts started,
# promoted, rolled back; steps done twice or skipped (from etcd's event
# history); time without a leader and the most leaders seen at once. The run
# fails (exit 1) if canary failed or lost a request, did a step twice or
# skipped one, or two replicas led at once.
#
# CANARY_BIN: the binary, by default
# target/release/canary.
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH=chaos
MINUTES=${1:-10}
[[ $MINUTES =~ ^[0-9]+$ ]] && ((MINUTES > 0)) || { echo "usage: bench/chaos.sh [minutes]" >&2; exit 2; }
SEED=${SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
CANARY_BIN=${CANARY_BIN:-target/release/canary}
OUT=bench/out/chaos-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT/logs"
TMP=$(mktemp -d)
die() { echo "$BENCH: $*" >&2; exit 1; }
# shellcheck source=bench/lib.sh
source bench/lib.sh

for tool in etcd etcdctl python3 curl jq; do
    command -v "$tool" >/dev/null || die "$tool is needed (scripts/install-deps.sh installs it)"
done
[[ -x $CANARY_BIN ]] || die "no $CANARY_BIN: cargo build --release -p canary (or set CANARY_BIN)"
"$CANARY_BIN" serve --help | grep -q -- --etcd || die "$CANARY_BIN does not take --etcd: build it from this tree"

echo "$BENCH: seed $SEED (replay with SEED=$SEED), $MINUTES min, output in $OUT"
echo "$SEED" >"$OUT/seed"

# The seeded choices come from their own generator: bash's RANDOM is also
# drawn by free_port, whose draws depend on which ports are busy.
exec 3< <(python3 -c "
import random
r = random.Random($SEED)
while True:
    print(r.random(), flush=True)
" 2>/dev/null)
PIDS+=($!)
draw() { # draw N: a seeded integer in 0..N-1
    local x
    read -r x <&3
    awk -v x="$x" -v n="$1" 'BEGIN { print int(x * n) }'
}

IDS=(a b c)
STATE=$TMP/state
mkdir -p "$STATE"

# --- etcd: three members ------------------------------------------------------
ETCD_CLIENT=() ETCD_PEER=() ETCD_PID=()
for i in 0 1 2; do ETCD_CLIENT[i]=$(free_port) ETCD_PEER[i]=$(free_port); done
INITIAL=""
for i in 0 1 2; do INITIAL+="${INITIAL:+,}m$i=http://127.0.0.1:${ETCD_PEER[i]}"; done
ENDPOINTS=""
for i in 0 1 2; do ENDPOINTS+="${ENDPOINTS:+,}http://127.0.0.1:${ETCD_CLIENT[i]}"; done

start_etcd() { # start_etcd I new|existing
    local i=$1 c="http://127.0.0.1:${ETCD_CLIENT[$1]}" p="http://127.0.0.1:${ETCD_PEER[$1]}"
    etcd --name "m$i" --data-dir "$TMP/etcd-m$i" \
        --listen-client-urls "$c" --advertise-client-urls "$c" \
        --listen-peer-urls "$p" --initial-advertise-peer-urls "$p" \
        --initial-cluster "$INITIAL" --initial-cluster-state "$2" \
        --heartbeat-interval 100 --election-timeout 1000 >>"$TMP/etcd-m$i.log" 2>&1 &
    ETCD_PID[i]=$!
    PIDS+=("${ETCD_PID[i]}")
}
for i in 0 1 2; do start_etcd "$i" new; done
for ((t = 0; t < 150; t++)); do
    etcdctl --endpoints "$ENDPOINTS" endpoint health >/dev/null 2>&1 && break
    sleep 0.2
done
etcdctl --endpoints "$ENDPOINTS" endpoint health >/dev/null 2>&1 || die "etcd did not become healthy"

# --- relays: each replica's own way to the three members ---------------------
RELAY_PID=() RELAY_URLS=()
for r in 0 1 2; do
    pairs=() urls=""
    for i in 0 1 2; do
        p=$(free_port)
        pairs+=("$p:${ETCD_CLIENT[i]}")
        urls+="${urls:+,}http://127.0.0.1:$p"
    done
    python3 bench/chaos_relay.py "${pairs[@]}" >"$TMP/relay-${IDS[r]}.log" 2>&1 &
    RELAY_PID[r]=$!
    PIDS+=("${RELAY_PID[r]}")
    RELAY_URLS[r]=$urls
done
for r in 0 1 2; do
    for ((t = 0; t < 50; t++)); do grep -q ready "$TMP/relay-${IDS[r]}.log" && break; sleep 0.1; done
done

# --- upstreams: v1, v2 (good), v3 (bad) --------------------------------------
declare -A UP_PORT UP_PID UP_ARGS
UP_ARGS[v1]="" UP_ARGS[v2]="" UP_ARGS[v3]="--error-rate 30"
start_upstream() { # start_upstream VERSION
    # shellcheck disable=SC2086
    "$CANARY_BIN" demo-service --version "$1" --listen "127.0.0.1:${UP_PORT[$1]}" ${UP_ARGS[$1]} \
        >>"$TMP/upstream-$1.log" 2>&1 &
    UP_PID[$1]=$!
    PIDS+=("${UP_PID[$1]}")
    wait_http "http://127.0.0.1:${UP_PORT[$1]}/api/v2/health" "" "${UP_PID[$1]}" "upstream $1"
}
for v in v1 v2 v3; do UP_PORT[$v]=$(free_port); start_upstream "$v"; done
version_of() { # the version whose URL is $1
    local v
    for v in v1 v2 v3; do [[ $1 == "http://127.0.0.1:${UP_PORT[$v]}" ]] && echo "$v"; done
    return 0
}

# --- replicas -------------------------------------------------------------------
cat >"$TMP/canary.toml" <<'EOF'
[cluster]
lease_ttl = "5s"
prefix = "/chaos"

[policy]
# The judge's bars for a loaded test machine and a debug build: the faults
# are what is tested, not the canary's latency.
max_error_rate = 5.0
max_p95_ms = 5000
rollback_p95_ms = 10000
max_p95_ratio = 100.0
p95_slack_ms = 5000
targets = false
EOF
PROXY=() ADMIN=() REPLICA_PID=()
for r in 0 1 2; do PROXY[r]=$(free_port) ADMIN[r]=$(free_port); done
start_replica() { # start_replica R
    local r=$1 id=${IDS[$1]}
    "$CANARY_BIN" serve --config "$TMP/canary.toml" --stable "http://127.0.0.1:${UP_PORT[v1]}" \
        --listen "127.0.0.1:${PROXY[r]}" --admin "127.0.0.1:${ADMIN[r]}" --state "$TMP/$id.db" \
        --etcd "${RELAY_URLS[r]}" --node-id "$id" >>"$TMP/replica-$id.out" 2>>"$TMP/replica-$id.log" &
    REPLICA_PID[r]=$!
    PIDS+=("${REPLICA_PID[r]}")
    wait_http "http://127.0.0.1:${ADMIN[r]}/api/v2/health" "" "${REPLICA_PID[r]}" "replica $id"
}
for r in 0 1 2; do start_replica "$r"; done

# An admin API that answers (a replica not being killed), for commands and status.
any_admin() {
    local r
    for r in 0 1 2; do
        [[ -e $STATE/down-${IDS[r]} ]] && continue
        curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:${ADMIN[r]}/api/v2/health" && {
            echo "http://127.0.0.1:${ADMIN[r]}"
            return 0
        }
    done
    return 1
}

# --- the load -------------------------------------------------------------------
SECONDS_TOTAL=$((MINUTES * 60))
python3 bench/chaos_load.py --proxies "$(IFS=,; echo "${PROXY[*]}")" --admins "$(IFS=,; echo "${ADMIN[*]}")" \
    --ids a,b,c --rps 200 --seconds "$SECONDS_TOTAL" --state "$STATE" --out "$OUT/load.json" \
    >"$TMP/load.log" 2>&1 &
LOAD_PID=$!
PIDS+=("$LOAD_PID")

# --- the rollout cycle and the faults ---------------------------------------------
DEPLOYS=0
log() { echo "$BENCH: $(date +%T) $*" | tee -a "$OUT/faults.log"; }

# Deploys the next canary when no rollout is running.
cycle() {
    local admin st state stable canary v
    admin=$(any_admin) || return 0
    st=$(curl -sf --max-time 3 "$admin/api/rollout") || return 0
    state=$(jq -r .state <<<"$st")
    [[ $state == progressing || $state == holding ]] && return 0
    if [[ $state == paused ]]; then
        # A pause waits for a person: be that person, and go on.
        "$CANARY_BIN" resume --admin "$admin" >>"$TMP/cycle.log" 2>&1 || true
        return 0
    fi
    stable=$(version_of "$(jq -r .stable <<<"$st")")
    local choices=()
    for v in v1 v2 v3; do [[ $v != "$stable" ]] && choices+=("$v"); done
    # The bad one a third of the time: some rollouts must roll back.
    if [[ " ${choices[*]} " == *" v3 "* && $(draw 3) == 0 ]]; then canary=v3; else
        canary=${choices[0]}
        [[ $canary == v3 ]] && canary=${choices[1]}
    fi
    if "$CANARY_BIN" deploy 10 "http://127.0.0.1:${UP_PORT[$canary]}" --steps 10,25,50,100 --bake 10s \
        --final-watch 10s --admin "$admin" >>"$TMP/cycle.log" 2>&1; then
        DEPLOYS=$((DEPLOYS + 1))
        log "deploy $DEPLOYS: $canary (stable $stable)"
    fi
}

# Waits S seconds, keeping the rollout cycling.
wait_cycling() {
    local until=$((SECONDS + $1))
    while ((SECONDS < until)); do
        cycle
        sleep 1
    done
}

# The replica a fault hits: the leader half the time (the faults that matter
# most), otherwise any of the three.
target() {
    local r leader
    if (($(draw 2) == 0)); then
        for r in 0 1 2; do
            [[ -e $STATE/down-${IDS[r]} ]] && continue
            leader=$(curl -sf --max-time 2 "http://127.0.0.1:${ADMIN[r]}/api/v2/health" |
                jq -r '.cluster.leader // empty' || true)
            [[ -n $leader ]] && break
        done
        for r in 0 1 2; do [[ ${IDS[r]} == "${leader:-}" ]] && { echo "$r"; return 0; }; done
    fi
    draw 3
}

fault() {
    local kind=$1 r i admin canary v
    case $kind in
        replica)
            r=$(target)
            log "fault: kill -9 replica ${IDS[r]}"
            touch "$STATE/down-${IDS[r]}"
            kill -KILL "${REPLICA_PID[r]}" 2>/dev/null || true
            wait "${REPLICA_PID[r]}" 2>/dev/null || true
            wait_cycling 3
            start_replica "$r"
            # In flight on the killed one: whatever ended before it came back.
            sleep 1
            rm -f "$STATE/down-${IDS[r]}"
            log "  replica ${IDS[r]} restarted"
            ;;
        etcd)
            i=$(draw 3)
            log "fault: kill -9 etcd member m$i"
            kill -KILL "${ETCD_PID[i]}" 2>/dev/null || true
            wait "${ETCD_PID[i]}" 2>/dev/null || true
            wait_cycling 5
            start_etcd "$i" existing
            log "  etcd member m$i restarted"
            ;;
        partition)
            r=$(target)
            log "fault: replica ${IDS[r]} cut off from etcd for 10 s"
            kill -USR1 "${RELAY_PID[r]}"
            wait_cycling 10
            kill -USR2 "${RELAY_PID[r]}"
            log "  replica ${IDS[r]} healed"
            ;;
        upstream)
            canary=""
            if admin=$(any_admin); then
                canary=$(curl -sf --max-time 3 "$admin/api/rollout" | jq -r '.canary // empty' || true)
            fi
            v=$(version_of "$canary")
            [[ -n $v ]] || v=v2
            log "fault: kill -9 the canary upstream $v"
            touch "$STATE/canary-down"
            kill -KILL "${UP_PID[$v]}" 2>/dev/null || true
            wait "${UP_PID[$v]}" 2>/dev/null || true
            wait_cycling 5
            start_upstream "$v"
            sleep 2
            rm -f "$STATE/canary-down"
            log "  upstream $v restarted"
            ;;
    esac
}

KINDS=(replica etcd partition upstream)
END=$((SECONDS + SECONDS_TOTAL))
declare -A FAULTS=([replica]=0 [etcd]=0 [partition]=0 [upstream]=0)
while true; do
    gap=$((20 + $(draw 21)))
    ((SECONDS + gap + 15 < END)) || break
    wait_cycling "$gap"
    kind=${KINDS[$(draw 4)]}
    FAULTS[$kind]=$((FAULTS[$kind] + 1))
    fault "$kind"
done
log "no more faults; the load runs to its end"
wait "$LOAD_PID" || die "the load generator failed; see $TMP/load.log"
[[ -s $OUT/load.json ]] || die "the load generator wrote no summary"

# --- the account ------------------------------------------------------------------
etcdctl --endpoints "$ENDPOINTS" get --prefix /chaos/events/ --sort-by=CREATE --order=ASCEND >"$TMP/events.txt"
python3 bench/chaos_history.py <"$TMP/events.txt" >"$OUT/history.json"
faults=$(for k in "${!FAULTS[@]}"; do echo "\"$k\": ${FAULTS[$k]}"; done | paste -sd, -)
jq -n --slurpfile load "$OUT/load.json" --slurpfile hist "$OUT/history.json" --argjson seed "$SEED" \
    --argjson minutes "$MINUTES" --argjson deploys "$DEPLOYS" --argjson faults "{$faults}" \
    '{seed: $seed, minutes: $minutes, faults: $faults, deploys_sent: $deploys, requests: $load[0],
      rollouts: $hist[0]}' >"$OUT/summary.json"
cat "$OUT/summary.json"
jq -e '.requests.failed == 0 and .requests.timed_out == 0 and .requests.accounted
       and (.rollouts.steps_done_twice | length) == 0 and (.rollouts.steps_skipped | length) == 0
       and (.rollouts.inconsistent | length) == 0 and .requests.leaders.most_at_once <= 1' \
    "$OUT/summary.json" >/dev/null || die "canary lost or failed requests, or broke a step or the leadership: see $OUT/summary.json"
echo "$BENCH: passed; $OUT/summary.json"
