#!/usr/bin/env bash
# bench-index.sh: `evidx case init` + `evidx dataset add` of a generated CSV
# against `sqlite3 .import` + CREATE INDEX of the same CSV into one table
# (once with an index on the phone column only, once on all three identity
# columns, which is what evidx indexes). Prints wall time, CPU time, rows/s,
# the ratio, index size on disk and peak RSS.
#
#   BENCH_INDEX_ROWS  rows to generate (default 20000000; use 1000000 while
#                     developing on a shared machine; 100000000 with
#                     BENCH_INDEX_BASELINE=0 checks the memory bound at 100M
#                     rows: about 4 min generating, 100 s loading, 7.5 GB CSV)
#   BENCH_INDEX_SHARDS shard count for the case (default 16)
#   BENCH_TMP         where the CSV, the baseline DB and the case go (default /tmp)
#   BENCH_INDEX_BASELINE=0 skips the sqlite3 runs (while tuning evidx)
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${BENCH_INDEX_ROWS:-20000000}
shards=${BENCH_INDEX_SHARDS:-16}
evidx=$PWD/bin/evidx
[[ -x $evidx ]] || go build -o "$evidx" ./cmd/evidx
work=$(mktemp -d "${BENCH_TMP:-/tmp}/bench-index.XXXXXX")
trap 'rm -rf "$work"' EXIT
csv=$work/leak.csv

# gen: a seeded leak with a header, Chinese mobile numbers (some written as
# 138-1234-5678 or +86 ...), e-mails (some upper-case), valid 18-digit ID
# numbers (ISO 7064 MOD 11-2 check character), drawn from pools of half the
# row count so that about 40% of the values repeat. One awk per core, each
# writing its share of the rows with its own seed.
echo "generating $rows rows" >&2
parts=$(nproc)
for ((part = 0; part < parts; part++)); do
  awk -v rows="$rows" -v from=$((part * rows / parts + 1)) -v to=$(((part + 1) * rows / parts)) \
      -v seed=$((20261127 + part)) 'BEGIN {
    srand(seed); pool = int(rows / 2) + 1
    split("7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2", w, " ")
    split("1 0 X 9 8 7 6 5 4 3 2", chk, " ")
    if (from == 1) print "name,mobile,email,id_no"
    for (i = from; i <= to; i++) {
      p = int(rand() * pool); e = int(rand() * pool); d = int(rand() * pool)
      ph = sprintf("1%d%09d", 3 + p % 7, (p * 7919) % 1000000000)
      if (i % 10 == 0) ph = substr(ph, 1, 3) "-" substr(ph, 4, 4) "-" substr(ph, 8, 4)
      else if (i % 10 == 1) ph = "+86 " ph
      em = sprintf("user%d@mail%d.example.cn", e, e % 13)
      if (i % 7 == 0) em = toupper(em)
      id17 = sprintf("11010%d19%02d%02d%02d%03d", 1 + d % 8, 50 + d % 50, 1 + d % 12, 1 + d % 28, d % 1000)
      s = 0; for (k = 1; k <= 17; k++) s += substr(id17, k, 1) * w[k]
      printf "name%d,%s,%s,%s%s\n", i, ph, em, id17, chk[s % 11 + 1]
    }
  }' > "$csv.$part" &
done
wait
for ((part = 0; part < parts; part++)); do cat "$csv.$part"; rm "$csv.$part"; done > "$csv"
size=$(stat -c %s "$csv")
echo "csv: $size bytes" >&2

# measure CMD...: prints "wall_s cpu_s peak_rss_kib"
measure() {
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; return 1; }
  awk '{ printf "%s %.2f %s\n", $1, $2 + $3, $4 }' "$work/time"
}
rate() { awk -v r="$rows" -v s="$1" 'BEGIN { printf "%.0f", r / s }'; }

if [[ ${BENCH_INDEX_BASELINE:-1} == 0 ]]; then
  b1_wall=1 b1_cpu=0 b1_rss=0 b3_wall=1 b3_cpu=0 b3_rss=0
  : >"$work/one.db"; : >"$work/three.db"
else
read -r b1_wall b1_cpu b1_rss < <(measure sqlite3 "$work/one.db" -cmd '.mode csv' ".import $csv leak" \
  'CREATE INDEX leak_mobile ON leak(mobile);')
read -r b3_wall b3_cpu b3_rss < <(measure sqlite3 "$work/three.db" -cmd '.mode csv' ".import $csv leak" \
  'CREATE INDEX leak_mobile ON leak(mobile);' 'CREATE INDEX leak_email ON leak(email);' 'CREATE INDEX leak_id ON leak(id_no);')
fi
b1_size=$(stat -c %s "$work/one.db"); b3_size=$(stat -c %s "$work/three.db")
rm -f "$work/one.db" "$work/three.db"

"$evidx" case init "$work/case" --case-number BENCH --examiner bench --shards "$shards" >/dev/null
read -r e_wall e_cpu e_rss < <(measure "$evidx" dataset add "$work/case" "$csv" --json)
cp "$work/out" "$work/add.json"
e_size=$(du -sb "$work/case/index" | cut -f1)
# The same load without linking persons: what linking costs (target <= +50%).
"$evidx" case init "$work/nolink" --case-number BENCH --examiner bench --shards "$shards" >/dev/null
read -r n_wall n_cpu n_rss < <(measure "$evidx" dataset add "$work/nolink" "$csv" --no-link --json)
n_size=$(du -sb "$work/nolink/index" | cut -f1)
rm -rf "$work/nolink"
read -r st_wall st_cpu st_rss < <(measure "$evidx" stats "$work/case" --json)
# Search latency: 200 values from the CSV, one process, per lookup.
tail -n 200 "$csv" | cut -d, -f2 > "$work/values"
read -r s_wall s_cpu s_rss < <(measure "$evidx" search "$work/case" --file "$work/values" --json)
found=$(grep -c '"query"' "$work/out" || true)

printf '\n%-44s %10s %8s %12s %9s %12s\n' "rows=$rows" "wall s" "cpu s" "rows/s" "rss MiB" "size MiB"
line() { printf '%-44s %10s %8s %12s %9d %12d\n' "$1" "$2" "$3" "$(rate "$2")" $(($4 / 1024)) $(($5 / 1048576)); }
line "sqlite3 .import + 1 CREATE INDEX" "$b1_wall" "$b1_cpu" "$b1_rss" "$b1_size"
line "sqlite3 .import + 3 CREATE INDEX" "$b3_wall" "$b3_cpu" "$b3_rss" "$b3_size"
line "evidx dataset add ($shards shards)" "$e_wall" "$e_cpu" "$e_rss" "$e_size"
line "evidx dataset add --no-link" "$n_wall" "$n_cpu" "$n_rss" "$n_size"
awk -v e="$e_wall" -v n="$n_wall" -v ec="$e_cpu" -v nc="$n_cpu" 'BEGIN {
  printf "linking persons adds %.0f%% wall, %.0f%% CPU to dataset add (target <= 50%%)\n", (e / n - 1) * 100, (ec / nc - 1) * 100 }'

awk -v a="$b1_wall" -v b="$b3_wall" -v e="$e_wall" 'BEGIN {
  printf "ratio evidx/sqlite3 (rows/s): %.2f vs 1 index, %.2f vs 3 indexes (target >= 2)\n", a / e, b / e }'
awk -v r="$e_rss" 'BEGIN { printf "evidx peak RSS %d MiB: %s the 1 GiB bound\n", r / 1024, (r < 1048576 ? "under" : "OVER") }'
printf 'stats --json: %s s wall, %s s CPU, %d MiB peak RSS\n' "$st_wall" "$st_cpu" $((st_rss / 1024))
printf 'search --file: 200 values in %s s wall (process start included), %s found\n' "$s_wall" "$found"
grep -E '"(rows|rejected|sightings)"' "$work/add.json" | tr -d ' ,' | paste -sd' ' >&2
