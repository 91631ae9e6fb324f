#!/usr/bin/env bash
# Installs, on a Debian machine, what building canary and running its tests
# need when it is missing: etcd, jq, prometheus
# with promtool, git, curl, Node.js with npm, chromium, faketime, logrotate. Used by
# ./test.sh and CI.
set -euo pipefail

need=()
command -v jq >/dev/null || need+=(jq)
# The clock test steps canary's wall clock with libfaketime.
[ -f /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || need+=(faketime)
{ command -v promtool && command -v prometheus; } >/dev/null || need+=(prometheus)
command -v git >/dev/null || need+=(git)
command -v curl >/dev/null || need+=(curl)
# The cluster tests run a real etcd (canary speaks its JSON gateway: no protoc to build).
{ command -v etcd && command -v etcdctl; } >/dev/null || need+=(etcd-server etcd-client)
{ command -v node && command -v npm; } >/dev/null || need+=(nodejs npm)
# The access log's rotation test runs dist/logrotate/canary through logrotate.
command -v logrotate >/dev/null || [ -x /usr/sbin/logrotate ] || need+=(logrotate)
# The dashboard's browser test drives Debian's chromium with playwright-core.
[ -x /usr/bin/chromium ] || need+=(chromium)

install() {
  local as_root
  if ! command -v apt-get >/dev/null; then
    echo "install-deps.sh: the tests need ${need[*]} (Debian package names) and there is no apt-get here:" \
      "install their equivalents, then run it again" >&2
    exit 1
  elif [ "$(id -u)" -eq 0 ]; then
    as_root=(env DEBIAN_FRONTEND=noninteractive)
  elif command -v sudo >/dev/null; then
    as_root=(sudo env DEBIAN_FRONTEND=noninteractive)
  else
    echo "install-deps.sh: the tests need ${need[*]} (Debian package names): install them as root" \
      "(apt-get install ${need[*]}), or run this as root" >&2
    exit 1
  fi
  echo "install-deps.sh: installing ${need[*]}" >&2
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

if [ ${#need[@]} -gt 0 ]; then
  install
fi
