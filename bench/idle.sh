#!/usr/bin/env bash
# bench/idle.sh: the memory an idle keep-alive client connection costs canary
# and nginx, measured the same way: N connections each send one request, get
# the answer, then stay open and idle; the growth of the proxy process's
# VmRSS (nginx: its single worker) divided by N.
#
# Usage: bash bench/idle.sh            # or N=20000 bash bench/idle.sh
# Both proxies forward to one nginx backend (`return 200 "ok"`), both with one
# worker. Uses 127.0.0.1 only; every process started is stopped on exit.
set -euo pipefail

N=${N:-10000}
NGINX=${NGINX:-/usr/sbin/nginx}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/canary-idle.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# Each process holds N sockets plus a few: as many as the hard limit allows.
FILES=$((N * 2 + 1024))
HARD=$(ulimit -Hn)
[[ $HARD != unlimited ]] && ((HARD < FILES)) && FILES=$HARD
((FILES > N + 256)) || { echo "ulimit -Hn $HARD is too low for N=$N" >&2; exit 1; }
ulimit -n "$FILES"
(cd "$ROOT" && cargo build --release -p canary --bins --examples >"$TMP/build.log" 2>&1) ||
    { tail -n 30 "$TMP/build.log"; exit 1; }

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
nginx_conf() { # dir server-block
    cat <<CONF
worker_processes 1;
worker_rlimit_nofile $FILES;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections $((FILES - 64)); }
http {
    access_log off;
    client_body_temp_path $1/cb; proxy_temp_path $1/p; fastcgi_temp_path $1/f;
    uwsgi_temp_path $1/u; scgi_temp_path $1/s;
    keepalive_timeout 75s;
    $2
}
CONF
}
worker_of() { # nginx master pid -> its worker pid
    for _ in $(seq 50); do
        kid=$(cat /proc/"$1"/task/*/children 2>/dev/null || true)
        [[ -n $kid ]] && { echo $kid; return; }
        sleep 0.1
    done
    echo "no nginx worker" >&2; exit 1
}
wait_up() { for _ in $(seq 100); do curl -sf -o /dev/null "$1" && return; sleep 0.1; done; echo "$1 not up" >&2; exit 1; }

BACK=$(port) && mkdir -p "$TMP/back"
nginx_conf "$TMP/back" "server { listen 127.0.0.1:$BACK; location / { return 200 \"ok\"; } }" >"$TMP/back/nginx.conf"
"$NGINX" -p "$TMP/back" -c "$TMP/back/nginx.conf" -e "$TMP/back/error.log" & PIDS+=($!)
wait_up "http://127.0.0.1:$BACK/"

NG=$(port) && mkdir -p "$TMP/nginx"
nginx_conf "$TMP/nginx" "upstream b { server 127.0.0.1:$BACK; keepalive 64; }
    server { listen 127.0.0.1:$NG; location / { proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }" \
    >"$TMP/nginx/nginx.conf"
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" & NGINX_MASTER=$!
PIDS+=("$NGINX_MASTER")
wait_up "http://127.0.0.1:$NG/"

CAN=$(port) ADMIN=$(port)
printf '[proxy]\nworkers = 1\n' >"$TMP/canary.toml"
"$TARGET/release/canary" serve --config "$TMP/canary.toml" --stable "http://127.0.0.1:$BACK" \
    --listen "127.0.0.1:$CAN" --admin "127.0.0.1:$ADMIN" --state "$TMP/state.db" >"$TMP/canary.log" 2>&1 &
PIDS+=($!)
CANARY_PID=$!
wait_up "http://127.0.0.1:$CAN/"

echo "machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(uname -sr)"
echo "canary $(cd "$ROOT" && git rev-parse --short HEAD), $("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"
echo "== nginx (worker pid $(worker_of "$NGINX_MASTER"))"
"$TARGET/release/examples/idle_conns" "127.0.0.1:$NG" "$(worker_of "$NGINX_MASTER")" "$N"
echo "== canary (pid $CANARY_PID)"
"$TARGET/release/examples/idle_conns" "127.0.0.1:$CAN" "$CANARY_PID" "$N"
