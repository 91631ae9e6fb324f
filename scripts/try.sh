#!/usr/bin/env bash
# Shows canary splitting traffic on this machine: two tiny upstreams answer
# "stable" and "canary", canary serve sends 25% of users to the canary, twenty
# users make a request each, and the admin API shows what was measured.
# Everything it starts is stopped when it ends. Needs cargo, python3 and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p canary
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

for v in stable canary; do mkdir -p "$work/$v/api/v2" && echo "$v" > "$work/$v/api/v2/rooms"; done
python3 -m http.server 18101 --bind 127.0.0.1 --directory "$work/stable" >/dev/null 2>&1 & pids+=($!)
python3 -m http.server 18102 --bind 127.0.0.1 --directory "$work/canary" >/dev/null 2>&1 & pids+=($!)
./target/release/canary serve --stable http://127.0.0.1:18101 --canary http://127.0.0.1:18102 \
  --listen 127.0.0.1:18180 --admin 127.0.0.1:18190 --state "$work/canary.db" --share 25 \
  >"$work/serve.out" 2>"$work/serve.log" & pids+=($!)
for url in http://127.0.0.1:18101/api/v2/rooms http://127.0.0.1:18102/api/v2/rooms http://127.0.0.1:18190/api/v2/health; do
  for _ in $(seq 1 100); do curl -sf "$url" >/dev/null && break; sleep 0.1; done
done

echo "canary serve at 25%: one request per user (the same user always gets the same version)"
for i in $(seq 1 20); do
  printf 'user-%-3s -> %s\n' "$i" "$(curl -s -H "x-user-id: user-$i" http://127.0.0.1:18180/api/v2/rooms)"
done
echo
echo "raise the share to 50% through the admin API:"
curl -s -X PUT -H 'content-type: application/json' -d '{"share": 50}' http://127.0.0.1:18190/api/routing/share; echo
echo
echo "what was measured, per version (GET /api/v2/metrics):"
curl -s http://127.0.0.1:18190/api/v2/metrics | python3 -c '
import json, sys
m = json.load(sys.stdin)
for v in ("stable", "canary"):
    a = m["versions"][v]
    n, err, p95 = a["requests"]["total"], a["reliability"]["error_rate"], a["performance"]["p95_response_time"]
    print(f"  {v:7} requests={n:3} error_rate={err}% p95={p95} ms")'
