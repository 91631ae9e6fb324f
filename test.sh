#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs what the tests need
# when it is missing (jq, prometheus with promtool, git, curl, Node.js with npm, chromium),
# the dashboard test's npm packages (e2e/), then runs `cargo test`.
# Arguments go to cargo test, e.g. `./test.sh -p canary --test it checks::`.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v jq >/dev/null || need+=(jq)
{ command -v promtool && command -v prometheus; } >/dev/null || need+=(prometheus)
command -v git >/dev/null || need+=(git)
command -v curl >/dev/null || need+=(curl)
{ command -v node && command -v npm; } >/dev/null || need+=(nodejs npm)
# The dashboard's browser test drives Debian's chromium with playwright-core.
[ -x /usr/bin/chromium ] || need+=(chromium)

install() {
  local as_root
  if ! command -v apt-get >/dev/null; then
    echo "test.sh: the tests need ${need[*]} (Debian package names) and there is no apt-get here:" \
      "install their equivalents, then run ./test.sh again" >&2
    exit 1
  elif [ "$(id -u)" -eq 0 ]; then
    as_root=(env DEBIAN_FRONTEND=noninteractive)
  elif command -v sudo >/dev/null; then
    as_root=(sudo env DEBIAN_FRONTEND=noninteractive)
  else
    echo "test.sh: the tests need ${need[*]} (Debian package names): install them as root" \
      "(apt-get install ${need[*]}), or run ./test.sh as root" >&2
    exit 1
  fi
  echo "test.sh: installing ${need[*]}" >&2
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

if [ ${#need[@]} -gt 0 ]; then
  install
fi
npm ci --prefix e2e --no-audit --no-fund --silent
cargo test --workspace --locked "$@"
