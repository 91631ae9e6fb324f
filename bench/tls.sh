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

die() { echo "tls: $*" >&2; exit 1; }
[[ $ROUNDS =~ ^[0-9]+$ ]] && ((ROUNDS >= 1 && ROUNDS <= 100)) || die "ROUNDS must be 1..100, got '$ROUNDS'"
[[ $CONNECTIONS =~ ^[0-9]+$ ]] && ((CONNECTIONS >= 1 && CONNECTIONS <= 10000)) || die "CONNECTIONS must be 1..10000"
[[ $DURATION =~ ^[0-9]+s$ ]] || die "DURATION must be seconds, e.g. 5s; got '$DURATION'"
NGINX=${NGINX:-/usr/sbin/nginx}
for tool in "$NGINX" wrk openssl curl cargo ss; do
    command -v "$tool" >/dev/null || die "missing tool: $tool"
done
H2LOAD=$(command -v h2load || true)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$ROOT/bench/out/tls-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT/logs"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/canary-tls-bench.XXXXXX")
BENCH=tls
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

CANARY_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/canary
if [[ $BUILD == 1 ]]; then
    (cd "$ROOT" && cargo build --release -p canary) >"$OUT/build.log" 2>&1 ||
        die "build failed: $OUT/build.log"
fi
[[ -x $CANARY_BIN ]] || die "no binary at $CANARY_BIN"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$TMP/tls.key" -out "$TMP/tls.crt" 2>/dev/null

start_backend
NGINX_TLS=$(free_port)
start_nginx nginx-tls "    upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 64; }
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
wait_http "https://127.0.0.1:$NGINX_TLS/" ok "$NGINX_STARTED" nginx-tls
start_canary canary 1 --tls-cert "$TMP/tls.crt" --tls-key "$TMP/tls.key"
CANARY_TLS=$CANARY_PORT

echo "machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "versions: $("$NGINX" -v 2>&1 | sed 's/.*: //'), $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2), ${H2LOAD:+$(h2load --version | head -n1), }canary $(cd "$ROOT" && git rev-parse --short HEAD)"
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
