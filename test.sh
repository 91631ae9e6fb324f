#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs what the build and
# the tests need when it is missing (scripts/install-deps.sh), the dashboard
# test's npm packages (e2e/), then runs `cargo test`.
# Arguments go to cargo test, e.g. `./test.sh -p canary --test it checks::`.
#
# Nothing is skipped silently. A test that needs what this script cannot
# provide is marked `#[ignore = "needs ..."]`: it runs here when the need is
# met (as root, say) and is listed as skipped, with its reason, at the end
# when it is not. A test whose need this script installs fails, naming it,
# when it is missing.
set -euo pipefail
cd "$(dirname "$0")"

scripts/install-deps.sh
npm ci --prefix e2e --no-audit --no-fund --silent
# The upgrade test runs a replica of the previous release beside this one's.
# Built from this repository's history; when it cannot be, that test fails
# and says why.
scripts/previous-release.sh || echo "test.sh: the previous release could not be built: upgrade:: will fail" >&2

# Tests that need root (they mount a tmpfs): run when root, else skipped and listed.
skip=()
skipped=()
if [ "$(id -u)" -ne 0 ]; then
  skip+=(--skip disk::)
  skipped+=("disk:: (needs root: mounts a tmpfs to fill the state file's disk)")
fi

# --all-features: every optional part of every crate is built and tested.
# Test-binary flags join any the caller gave after their own `--`.
sep=(--)
for a in "$@"; do [ "$a" = "--" ] && sep=(); done
status=0
cargo test --workspace --all-features --locked "$@" "${sep[@]}" --include-ignored "${skip[@]}" || status=$?

if [ ${#skipped[@]} -eq 0 ]; then
  echo "test.sh: skipped: none"
else
  echo "test.sh: skipped ${#skipped[@]} group(s):"
  printf '  %s\n' "${skipped[@]}"
fi
exit $status
