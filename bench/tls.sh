#!/usr/bin/env bash
# bench/tls.sh: TLS termination throughput of `canary serve` against nginx,
# both serving the same certificate and proxying to the same plain nginx
# backend on loopback.
#
# Usage (from anywhere):
#     bash bench/tls.sh
#     ROUNDS=5 DURATION=10s bash bench/tls.sh
#
# What one run does:
#   1. cargo build --release -p canary (BUILD=0 skips it)
#   2. one self-signed ECDSA P-256 certificate for 127.0.0.1 (openssl)
#   3. backend: nginx, 1 worker, `return 200 "ok"`, plain HTTP
#   4. nginx-tls: 1 worker, `listen ssl http2`, upstream keepalive 64;
#      canary: workers = 1, --tls-cert/--tls-key with the same files, share 50
#   5. ROUNDS rounds; each measures nginx-tls and canary in turn (the order
#      alternates by round), paired within the round:
#        HTTP/1.1: wrk -t1 -c$CONNECTIONS -d$DURATION https://...  (keep-alive:
#                  the handshakes are paid once per connection)
#        h2:       h2load -c$CONNECTIONS -m10 -D$DURATION  (when h2load is installed:
#                  apt-get install nghttp2-client)
#   6. prints req/s per target per round and the ratio canary/nginx, and the
#      median ratio over the rounds.
#
# The load generator, both proxies and the backend share the machine; compare
# the ratio within one run, not absolute figures across runs.

set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-32}
BUILD=${BUILD:-1}

die() { echo "bench: $*" >&2; exit 1; }
[[ $ROUNDS =~ ^[0-9]+$ ]] && ((ROUNDS >= 1 && ROUNDS <= 100)) || die "ROUNDS must be 1..100, got '$ROUNDS'"
[[ $CONNECTIONS =~ ^[0-9]+$ ]] && ((CONNECTIONS >= 1 && CONNECTIONS <= 10000)) || die "CONNECTIONS must be 1..10000"
[[ $DURATION =~ ^[0-9]+s$ ]] || die "DURATION must be seconds, e.g. 5s; got '$DURATION'"
for tool in nginx wrk openssl curl cargo; do
    command -v "$tool" >/dev/null || die "missing tool: $tool"
done
H2LOAD=$(command -v h2load || true)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/canary-tls-bench.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ok() { # URL
    for _ in $(seq 100); do curl -sk --max-time 1 "$1" | grep -q ok && return 0; sleep 0.1; done
    die "no answer from $1"
}

CANARY_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/canary
if [[ $BUILD == 1 ]]; then
    (cd "$ROOT" && cargo build --release -p canary) >"$TMP/build.log" 2>&1 ||
        { tail -n 30 "$TMP/build.log" >&2; die "cargo build failed"; }
fi
[[ -x $CANARY_BIN ]] || die "no binary at $CANARY_BIN"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$TMP/tls.key" -out "$TMP/tls.crt" 2>/dev/null

nginx_conf() { # dir body
    cat <<EOF
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $1/cb; proxy_temp_path $1/p; fastcgi_temp_path $1/f;
    uwsgi_temp_path $1/u; scgi_temp_path $1/s;
    keepalive_requests 1000000;
    http2_max_requests 1000000;
$2
}
EOF
}
start_nginx() { # name body
    local d=$TMP/$1
    mkdir -p "$d"
    nginx_conf "$d" "$2" >"$d/nginx.conf"
    nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" >/dev/null 2>&1 &
    PIDS+=($!)
}

BACKEND=$(free_port) NGINX_TLS=$(free_port) CANARY_TLS=$(free_port) CANARY_ADMIN=$(free_port)
start_nginx backend "    server { listen 127.0.0.1:$BACKEND; location / { return 200 \"ok\"; } }"
wait_ok "http://127.0.0.1:$BACKEND/"
start_nginx nginx-tls "    upstream backend { server 127.0.0.1:$BACKEND; keepalive 64; }
    server {
        listen 127.0.0.1:$NGINX_TLS ssl http2;
        ssl_certificate $TMP/tls.crt;
        ssl_certificate_key $TMP/tls.key;
        location / {
            proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$host;
        }
    }"
wait_ok "https://127.0.0.1:$NGINX_TLS/"
printf '[proxy]\nworkers = 1\n' >"$TMP/canary.toml"
"$CANARY_BIN" serve --config "$TMP/canary.toml" --stable "http://127.0.0.1:$BACKEND" \
    --canary "http://127.0.0.1:$BACKEND" --share 50 --listen "127.0.0.1:$CANARY_TLS" \
    --admin "127.0.0.1:$CANARY_ADMIN" --state "$TMP/state.db" \
    --tls-cert "$TMP/tls.crt" --tls-key "$TMP/tls.key" >"$TMP/canary.log" 2>&1 &
PIDS+=($!)
wait_ok "https://127.0.0.1:$CANARY_TLS/"

echo "machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "versions: $(nginx -v 2>&1 | sed 's/.*: //'), $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2), ${H2LOAD:+$(h2load --version | head -n1), }canary $(cd "$ROOT" && git rev-parse --short HEAD)"
echo "rounds: $ROUNDS, duration: $DURATION, connections: $CONNECTIONS"

h1() { wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "https://127.0.0.1:$1/" | awk '/^Requests\/sec/ {printf "%.0f", $2}'; }
h2() {
    "$H2LOAD" -c"$CONNECTIONS" -m10 -D"${DURATION%s}" "https://127.0.0.1:$1/" 2>/dev/null |
        awk '/^finished in/ {gsub(/,/, ""); for (i = 1; i <= NF; i++) if ($(i+1) == "req/s") printf "%.0f", $i}'
}

declare -A RATIOS
for proto in h1 h2; do
    [[ $proto == h2 && -z $H2LOAD ]] && { echo "h2: skipped (no h2load: apt-get install nghttp2-client)"; continue; }
    for ((r = 1; r <= ROUNDS; r++)); do
        if ((r % 2)); then order="nginx canary"; else order="canary nginx"; fi
        declare -A got=()
        for t in $order; do
            port=$NGINX_TLS; [[ $t == canary ]] && port=$CANARY_TLS
            got[$t]=$($proto "$port")
        done
        ratio=$(awk -v c="${got[canary]}" -v n="${got[nginx]}" 'BEGIN {printf "%.2f", c / n}')
        RATIOS[$proto]+="$ratio "
        echo "$proto round $r: nginx ${got[nginx]} req/s, canary ${got[canary]} req/s, canary/nginx $ratio"
    done
    med=$(tr ' ' '\n' <<<"${RATIOS[$proto]}" | grep . | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
    echo "$proto median canary/nginx: $med"
done
