#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (default 60 s each):
#   bash fuzz/run.sh            # or SECONDS_EACH=600 bash fuzz/run.sh
# Needs cargo-fuzz (`cargo install cargo-fuzz`); on a stable toolchain the
# sanitizer flags it passes need RUSTC_BOOTSTRAP=1, set here.
set -euo pipefail
cd "$(dirname "$0")"
each=${SECONDS_EACH:-60}
export RUSTC_BOOTSTRAP=1
for target in config dynamic_flags routing request_head; do
  echo "== $target ($each s)"
  cargo fuzz run "$target" -- -max_total_time="$each" -max_len=4096
done
