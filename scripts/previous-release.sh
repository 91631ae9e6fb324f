#!/usr/bin/env bash
# Builds the previous release of canary into target/previous/canary, for the
# test that runs a fleet of mixed releases (canary's own rolling upgrade:
# crates/canary/tests/it/upgrade.rs). The release is a commit of this
# repository's history: REV below, or the first argument. Move REV forward
# when a release changes what crosses between replicas, so the test always
# pairs this tree with the release before it.
#
# Built from `git archive` in the same target directory as this tree, so the
# dependencies already built are reused (about a minute on two cores). Does
# nothing when the binary for that commit is there already.
set -euo pipefail
cd "$(dirname "$0")/.."

REV=${1:-6cb1bdf3e8ecb236d15a534901fed398cb0c1547}
out=target/previous
if ! git rev-parse --verify --quiet "$REV^{commit}" >/dev/null \
  && [ "$(git rev-parse --is-shallow-repository 2>/dev/null)" = true ]; then
  # A shallow clone: its origin has the history.
  git fetch --quiet --unshallow || true
fi
if ! full=$(git rev-parse --verify --quiet "$REV^{commit}"); then
  echo "previous-release.sh: commit $REV is not in this repository's history (a shallow clone," \
    "or no git checkout): clone the whole history, or give a commit that is there" >&2
  exit 1
fi
if [ -x "$out/canary" ] && [ "$(cat "$out/rev" 2>/dev/null)" = "$full" ]; then
  exit 0
fi
rm -rf "$out/src" "$out/canary" "$out/rev"
mkdir -p "$out/src"
git archive "$full" | tar -x -C "$out/src"
CANARY_COMMIT=$(git rev-parse --short "$full") \
  cargo build --locked --quiet --manifest-path "$out/src/Cargo.toml" --target-dir target -p canary
# The same target directory: the binary is copied before this tree's build
# takes its place again.
cp target/debug/canary "$out/canary"
echo "$full" >"$out/rev"
rm -rf "$out/src"
echo "previous-release.sh: $out/canary is canary at $(git rev-parse --short "$full")"
