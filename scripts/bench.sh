#!/usr/bin/env bash
# bench.sh runs every scripts/bench-<topic>.sh: each compares evidx with the
# standard tool on the same input (md5sum, fls, sort -u, sqlite3 .import,
# photorec) and prints throughput, peak memory and the ratio.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
for b in scripts/bench-hash.sh scripts/bench-fs.sh scripts/bench-fs-readers.sh scripts/bench-count.sh scripts/bench-exact.sh scripts/bench-index.sh scripts/bench-carve.sh scripts/bench-custody.sh; do
  [[ -f $b ]] || { echo "== $b: missing"; continue; }
  echo "== $b"
  bash "$b" || { echo "== $b failed"; status=1; }
done
exit $status
