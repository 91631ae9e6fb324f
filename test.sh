#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs what the build and
# the tests need when it is missing (scripts/install-deps.sh), the dashboard
# test's npm packages (e2e/), then runs `cargo test`.
# Arguments go to cargo test, e.g. `./test.sh -p canary --test it checks::`.
set -euo pipefail
cd "$(dirname "$0")"

scripts/install-deps.sh
npm ci --prefix e2e --no-audit --no-fund --silent
# --all-features: the etcd cluster support is a feature (its build needs protoc).
cargo test --workspace --all-features --locked "$@"
