# bench/lib.sh: what the bench scripts share, sourced by run.sh, rate.sh, chaos.sh,
# syscalls.sh, idle.sh, instructions.sh, tls.sh and shadow.sh: the bookkeeping that stops every process they start (and its
# children) on exit, free loopback ports, waiting for a server to answer, an
# nginx master's worker, a process tree's CPU time, durations, and starting
# the servers every comparison uses: the nginx backend, nginx as a reverse
# proxy and `canary serve`, configured alike in every script.
#
# The sourcing script sets first: BENCH (the name its messages start with),
# OUT (the output folder), TMP (a scratch folder copied to $OUT/logs on exit),
# NGINX (the nginx binary), CANARY_BIN (before start_canary) and a function
# `die`.

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
        # -k: the TLS bench's certificate is its own, made for the run.
        got=$(curl -sk --max-time 1 "$url" 2>/dev/null || true)
        if [[ -z $body || $got == "$body" ]]; then
            curl -skf --max-time 1 -o /dev/null "$url" 2>/dev/null && return 0
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

# nginx.conf's head and the opening of http{}. NGINX_CONNECTIONS (4096 by
# default) sets worker_connections; NGINX_NOFILE, when set, worker_rlimit_nofile;
# NGINX_ACCESS_LOG, when set, the access_log directive (else `off`).
nginx_common() { # prefix dir, [worker_processes, 1 by default]
    cat <<EOF
worker_processes ${2:-1};
${NGINX_NOFILE:+worker_rlimit_nofile $NGINX_NOFILE;}
daemon off;
master_process on;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections ${NGINX_CONNECTIONS:-4096}; }
http {
    access_log ${NGINX_ACCESS_LOG:-off};
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

# "10s" / "2m" / "10" -> seconds
to_seconds() {
    local v=$1
    [[ $v =~ ^([0-9]+)([smh]?)$ ]] || die "bad duration '$v' (use e.g. 10s, 2m)"
    local n=${BASH_REMATCH[1]} u=${BASH_REMATCH[2]}
    case $u in
        m) echo $((n * 60)) ;;
        h) echo $((n * 3600)) ;;
        *) echo "$n" ;;
    esac
}

# --- the servers ------------------------------------------------------------------

# start_nginx NAME SERVER_BLOCK [WORKERS]: an nginx (WORKERS worker processes,
# 1 by default) whose http{} ends with SERVER_BLOCK, from $TMP/NAME; sets
# NGINX_STARTED (the master's pid).
start_nginx() {
    local d=$TMP/$1
    mkdir -p "$d"
    { nginx_common "$d" "${3:-1}"; printf '%s\n}\n' "$2"; } >"$d/nginx.conf"
    "$NGINX" -p "$d" -c "$d/nginx.conf" -e "$d/error.log" >"$d/stdout.log" 2>&1 &
    NGINX_STARTED=$!
    PIDS+=("$NGINX_STARTED")
}

# The backend every target reaches: nginx, 1 worker, `return 200 "ok"`. Sets
# BACKEND_PORT, BACKEND_PID (the master) and BACKEND_WORKER.
start_backend() {
    BACKEND_PORT=$(free_port)
    start_nginx backend "    server {
        listen 127.0.0.1:$BACKEND_PORT;
        location / { return 200 \"ok\"; }
    }"
    BACKEND_PID=$NGINX_STARTED
    wait_http "http://127.0.0.1:$BACKEND_PORT/" ok "$BACKEND_PID" backend
    BACKEND_WORKER=$(nginx_worker "$BACKEND_PID")
}

# start_nginx_proxy [FORWARDED] [NAME] [WORKERS]: nginx as a reverse proxy to
# the backend, upstream keepalive 64, HTTP/1.1, `Connection ""`; with
# FORWARDED (default 1) it sets X-Forwarded-For/-Proto/-Host as canary does,
# so that the backend gets the same request from both. NAME defaults to
# nginx, WORKERS (worker_processes) to 1. Sets NGINX_PORT, NGINX_PID (the
# master) and, with one worker, NGINX_WORKER (empty otherwise).
start_nginx_proxy() {
    local forwarded="" name=${2:-nginx} workers=${3:-1}
    if [[ ${1:-1} == 1 ]]; then
        forwarded='
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;'
    fi
    NGINX_PORT=$(free_port)
    start_nginx "$name" "    upstream backend {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";$forwarded
        }
    }" "$workers"
    NGINX_PID=$NGINX_STARTED
    wait_http "http://127.0.0.1:$NGINX_PORT/" ok "$NGINX_PID" "$name"
    NGINX_WORKER=""
    if [[ $workers == 1 ]]; then NGINX_WORKER=$(nginx_worker "$NGINX_PID"); fi
}

# start_canary NAME WORKERS [ARGS...]: `canary serve` with [proxy] workers =
# WORKERS, stable and canary both the backend, share 50, state in $TMP/NAME,
# and ARGS added (with --tls-cert, the proxied answer is awaited over https);
# waits for its ready line, its admin API and a proxied answer. Sets
# CANARY_PORT, CANARY_ADMIN_PORT and CANARY_PID.
start_canary() {
    local name=$1 workers=$2 i admin_port scheme=http
    shift 2
    [[ " $* " == *" --tls-cert "* ]] && scheme=https
    local d=$TMP/$name
    mkdir -p "$d"
    printf '[proxy]\nworkers = %s\n%s' "$workers" "${CANARY_EXTRA_TOML:-}" >"$d/canary.toml"
    CANARY_PORT=$(free_port)
    admin_port=$(free_port)
    CANARY_ADMIN_PORT=$admin_port
    "$CANARY_BIN" serve --config "$d/canary.toml" \
        --stable "http://127.0.0.1:$BACKEND_PORT" --canary "http://127.0.0.1:$BACKEND_PORT" \
        --listen "127.0.0.1:$CANARY_PORT" --admin "127.0.0.1:$admin_port" \
        --state "$d/state.db" --share 50 "$@" >"$d/stdout.log" 2>"$d/stderr.log" &
    CANARY_PID=$!
    PIDS+=("$CANARY_PID")
    for ((i = 0; i < 100; i++)); do
        grep -q '^canary: proxy listening on' "$d/stdout.log" 2>/dev/null && break
        alive "$CANARY_PID" || { cat "$d/stderr.log" >&2; die "$name exited during startup"; }
        sleep 0.1
    done
    grep -q '^canary: proxy listening on' "$d/stdout.log" || die "$name printed no ready line in 10 s"
    wait_http "http://127.0.0.1:$admin_port/api/v2/health" "" "$CANARY_PID" "$name admin"
    curl -s --max-time 2 "http://127.0.0.1:$admin_port/api/v2/health" >"$d/health.json" || true
    wait_http "$scheme://127.0.0.1:$CANARY_PORT/" ok "$CANARY_PID" "$name"
}
