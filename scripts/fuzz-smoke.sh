#!/usr/bin/env bash
# fuzz-smoke.sh runs every Fuzz target in the module for a short time ($1).
set -euo pipefail
dur=${1:-5s}
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
  pkg=./$(dirname "${f#./}")
  for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | cut -d' ' -f2); do
    echo "fuzz $pkg $fn ($dur)"
    go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$dur" "$pkg" >/dev/null || { echo "fuzz $pkg $fn failed"; go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$dur" "$pkg" | tail -30; exit 1; }
  done
done
