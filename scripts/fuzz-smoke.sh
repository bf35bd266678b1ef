#!/usr/bin/env bash
# fuzz-smoke.sh runs every Fuzz target in the module for a short time ($1).
# A failing target's output is shown and the run fails; Go keeps the failing
# input under the package's testdata/fuzz/ for `go test -run`.
set -euo pipefail
dur=${1:-5s}
pick=${2:-}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do
  pkg=./$(dirname "${f#./}")
  for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | cut -d' ' -f2); do
    if [ -n "$pick" ] && ! printf '%s %s\n' "$pkg" "$fn" | grep -Eq -- "$pick"; then
      continue
    fi
    echo "fuzz $pkg $fn ($dur)"
    if ! go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$dur" -fuzzminimizetime 10x "$pkg" >"$log" 2>&1; then
      # Go's fuzzer can stop with "context deadline exceeded" when the time
      # runs out while it is still minimising; that finds no input and is
      # not a failure of the target. Anything else is.
      if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
        echo "fuzz $pkg $fn: fuzzer timed out while minimising (no failing input)"
        continue
      fi
      echo "fuzz $pkg $fn FAILED:"
      tail -40 "$log"
      exit 1
    fi
  done
done
