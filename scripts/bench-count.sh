#!/usr/bin/env bash
# bench-count.sh: `evidx count` against `LC_ALL=C sort -u` on the same
# generated CSV (name, phone, ID number, email, address; 30% duplicate
# rows). Prints rows/s, peak RSS (GNU time -v) and the speed ratio, and
# checks the counts against the generator's truth. BENCH_ROWS overrides
# the size (default 20,000,000); BENCH_DIR the scratch directory.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${BENCH_ROWS:-20000000}
dir=${BENCH_DIR:-$(mktemp -d /tmp/evidx-bench-count.XXXXXX)}
evidx=${EVIDX:-$PWD/bin/evidx}
[[ -x $evidx ]] || go build -o "$evidx" ./cmd/evidx
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir"

echo "generating $rows rows (seeded) ..."
go run ./cmd/leakgen -bench -seed 1 -rows "$rows" -dup 0.3 -out "$dir"
csv=$dir/bench.csv
ls -l "$csv" | awk '{printf "file: %.1f MB\n", $5/1e6}'
# Warm the page cache so both tools read from memory.
cat "$csv" >/dev/null

measure() { # measure NAME CMD... -> sets secs and rss_kb
  local log=$dir/time.log
  /usr/bin/time -v "${@:2}" >"$dir/$1.out" 2>"$log" || { cat "$log"; return 1; }
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$log")
  rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
  cpu=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u+s}' "$log")
}

measure sort env LC_ALL=C sort -u "$csv" -o /dev/null
sort_s=$secs sort_rss=$rss_kb sort_cpu=$cpu
measure evidx "$evidx" count --json --tmp "$dir" "$csv"
ev_s=$secs ev_rss=$rss_kb ev_cpu=$cpu

# DuckDB's count(DISTINCT) over the three raw columns, when npm can fetch
# it (BENCH_NO_DUCKDB=1 skips): the issue's yardstick for a columnar engine.
duck_s=
if [[ -z ${BENCH_NO_DUCKDB:-} ]] && command -v npm >/dev/null; then
  duckdir=${DUCKDB_DIR:-$HOME/.cache/evidx-bench-duckdb}
  mkdir -p "$duckdir"
  if [[ -d $duckdir/node_modules/@duckdb/node-api ]] || (cd "$duckdir" && npm install --silent --no-audit --no-fund @duckdb/node-api >/dev/null 2>&1); then
    cp scripts/duckdb-distinct.mjs "$duckdir/"
    measure duckdb node "$duckdir/duckdb-distinct.mjs" "$csv" phone,email,id_no && duck_s=$secs duck_rss=$rss_kb
  fi
fi

lines=$((rows + 1))
awk -v r="$rows" -v l="$lines" -v ss="$sort_s" -v sr="$sort_rss" -v sc="$sort_cpu" \
    -v es="$ev_s" -v er="$ev_rss" -v ec="$ev_cpu" 'BEGIN {
  printf "sort -u : %7.2f s  %9.0f lines/s  cpu %6.2f s  peak RSS %6.1f MiB\n", ss, l/ss, sc, sr/1024
  printf "evidx   : %7.2f s  %9.0f rows/s   cpu %6.2f s  peak RSS %6.1f MiB\n", es, r/es, ec, er/1024
  printf "ratio (evidx speed / sort speed): %.2f   (CPU time sort/evidx: %.2f; on a shared machine wall time follows the load)\n", ss/es, sc/ec
}'

if [[ -n $duck_s ]]; then
  awk -v ds="$duck_s" -v dr="$duck_rss" -v es="$ev_s" 'BEGIN {
    printf "duckdb  : %7.2f s  peak RSS %6.1f MiB  (evidx time / duckdb time: %.2f; goal <= 1.5)\n", ds, dr/1024, es/ds }'
  cat "$dir/duckdb.out"
else
  echo "duckdb  : not measured (npm could not install @duckdb/node-api)"
fi

# Check the counts against the generator's truth.
python3 - "$dir/evidx.out" "$dir/bench-truth.json" <<'PY'
import json, sys
got = json.load(open(sys.argv[1]))["unique"]
want = json.load(open(sys.argv[2]))["unique"]
bad = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
print("counts:", "match truth" if not bad else f"MISMATCH {bad}", got)
sys.exit(1 if bad else 0)
PY
status=0
(( ev_rss < 1048576 )) || { echo "FAIL: peak RSS ${ev_rss} KB >= 1 GiB"; status=1; }
awk -v ss="$sort_s" -v es="$ev_s" 'BEGIN { exit !(es <= ss) }' || { echo "FAIL: evidx slower than sort -u"; status=1; }
exit $status
