# bench/lib.sh: what bench/run.sh and bench/rate.sh share, sourced by both:
# the bookkeeping that stops every process they start (and its children) on
# exit, free loopback ports, waiting for a server to answer, an nginx master's
# worker, a process tree's CPU time, and the common head of an nginx config.
#
# The sourcing script sets first: BENCH (the name its messages start with),
# OUT (the output folder), TMP (a scratch folder copied to $OUT/logs on exit),
# and a function `die`.

# --- process bookkeeping and cleanup -----------------------------------------
PIDS=()

# A process and all its descendants, one pid a line.
descendants() {
    local pid=$1 kids c
    echo "$pid"
    kids=$(cat /proc/"$pid"/task/*/children 2>/dev/null || true)
    for c in $kids; do descendants "$c"; done
}

alive() { kill -0 "$1" 2>/dev/null; }

cleanup() {
    local rc=$? all=() p i
    trap - EXIT INT TERM
    for p in "${PIDS[@]}"; do
        alive "$p" || continue
        # shellcheck disable=SC2207
        all+=($(descendants "$p"))
    done
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for ((i = 0; i < 50; i++)); do
        local left=0
        for p in "${all[@]}"; do alive "$p" && left=1; done
        ((left == 0)) && break
        sleep 0.1
    done
    for p in "${all[@]}"; do
        if alive "$p"; then
            echo "$BENCH: pid $p did not stop on SIGTERM; sending SIGKILL" >&2
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
    cp -r "$TMP"/. "$OUT/logs/" 2>/dev/null || true
    rm -rf "$TMP"
    if ((rc != 0)); then
        echo "$BENCH: FAILED (exit $rc); logs in $OUT/logs" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- helpers -------------------------------------------------------------------

# A loopback TCP port no socket uses, below the kernel's ephemeral range (so
# that no outgoing connection, e.g. a proxy's pooled upstream connection, can
# hold it); tries at most 200 candidates.
USED_PORTS=" "
EPHEMERAL_LO=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
if ((EPHEMERAL_LO > 12000)); then PORT_LO=10000 PORT_SPAN=$((EPHEMERAL_LO - 10000)); else PORT_LO=20000 PORT_SPAN=10000; fi
free_port() {
    local i p
    for ((i = 0; i < 200; i++)); do
        p=$((PORT_LO + RANDOM % PORT_SPAN))
        [[ $USED_PORTS == *" $p "* ]] && continue
        if [[ -z $(ss -Htan "sport = :$p" 2>/dev/null) ]]; then
            USED_PORTS+="$p "
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

# Waits (at most ~10 s) until URL answers 200 with body BODY, while PID lives.
wait_http() {
    local url=$1 body=$2 pid=$3 name=$4 i got
    for ((i = 0; i < 100; i++)); do
        alive "$pid" || die "$name (pid $pid) exited during startup; see $OUT/logs"
        got=$(curl -s --max-time 1 "$url" 2>/dev/null || true)
        if [[ -z $body || $got == "$body" ]]; then
            curl -sf --max-time 1 -o /dev/null "$url" 2>/dev/null && return 0
        fi
        sleep 0.1
    done
    die "$name did not answer $url in time"
}

# The single child of an nginx master (its worker); waits at most ~5 s.
nginx_worker() {
    local master=$1 i kids
    for ((i = 0; i < 50; i++)); do
        kids=$(cat /proc/"$master"/task/*/children 2>/dev/null || true)
        if [[ -n $kids ]]; then
            set -- $kids
            (($# == 1)) || die "nginx master $master has $# children, expected 1 worker"
            echo "$1"
            return 0
        fi
        sleep 0.1
    done
    die "nginx master $master has no worker"
}

# utime+stime clock ticks of PID and its descendants.
cpu_ticks() {
    local total=0 p stat rest
    for p in $(descendants "$1"); do
        stat=$(cat /proc/"$p"/stat 2>/dev/null) || continue
        rest=${stat##*) }              # drop "pid (comm) "; comm may hold spaces
        # fields from 3 (state) on: utime is field 14, stime field 15
        read -r -a f <<<"$rest"
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}

nginx_common() { # prefix dir
    cat <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $1/client_body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
    default_type text/plain;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
EOF
}
