#!/usr/bin/env bash
# bench-exact.sh: the differential check of ingest/exact_test.go at full
# size. leakgen writes every format at ${ROWS:-6000000} rows in all (text
# files of about 50 MB each; ROWS=1200000 gives the 4-16 MB files of the
# issue's corpus), and users.csv gets copies: with a UTF-8 BOM, in UTF-16LE
# and UTF-16BE with a BOM, in GB18030, and the BOM copy in gzip, zstd,
# bzip2, xz and zip. Every file is counted with 1 and 8 workers, twice
# each, then loaded with `dataset add` into a case: every figure (rows,
# rejected, unique and invalid per kind, per file and overall; the same
# per source in `stats --json`) must equal the generator's truth, every
# file must show its column roles, and the count JSON must be the same on
# every run (timings aside).
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${ROWS:-6000000}
work=$(mktemp -d "${TMPDIR:-/tmp}/evidx-exact.XXXXXX")
trap 'rm -rf "$work"' EXIT
[[ -x bin/evidx ]] || go build -o bin/evidx ./cmd/evidx
go build -o "$work/leakgen" ./cmd/leakgen
"$work/leakgen" -seed 11 -rows "$rows" -out "$work/d" >/dev/null
d=$work/d
u=$d/users.csv
bom=$d/users-copy-bom.csv
{ printf '\xef\xbb\xbf'; cat "$u"; } > "$bom"
{ printf '\xff\xfe'; iconv -f UTF-8 -t UTF-16LE "$u"; } > "$d/users-copy-utf16le.csv"
{ printf '\xfe\xff'; iconv -f UTF-8 -t UTF-16BE "$u"; } > "$d/users-copy-utf16be.csv"
iconv -f UTF-8 -t GB18030 "$u" > "$d/users-copy-gb18030.csv"
gzip -c "$bom" > "$bom.gz"
zstd -q -c "$bom" > "$bom.zst"
bzip2 -c "$bom" > "$bom.bz2"
xz -T2 -c "$bom" > "$bom.xz"
(cd "$d" && zip -q users-copy-bom.csv.zip users-copy-bom.csv)
files=$(cd "$d" && ls | grep -v truth.json)
ls -l "$d" | awk 'NR > 1 { printf "  %-28s %6.1f MB\n", $9, $5/1e6 }'
paths() { for f in $files; do echo "$d/$f"; done; }

# check KIND OUT.json: compare evidx's JSON (count or stats) with the truth.
check() {
  python3 - "$1" "$d/truth.json" "$2" <<'PY'
import json, os, sys
kind, truth, got = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
tf = {os.path.basename(f['path']): f for f in truth['files']}
for f in os.listdir(os.path.dirname(sys.argv[2])):
    if f.startswith('users-copy'):
        tf[f] = tf['users.csv']
items = got['files'] if kind == 'count' else got['sources']
bad = 0
for f in items:
    name = os.path.basename(f['path'] if kind == 'count' else f['name'])
    t = tf[name]
    for k in ('phone', 'email', 'cn_id', 'bank_card'):
        if f['unique'].get(k, 0) != t['unique'].get(k, 0) or f['invalid'].get(k, 0) != t['invalid'].get(k, 0):
            bad += 1; print('  MISMATCH', name, k, f['unique'].get(k), f['invalid'].get(k), 'want', t['unique'].get(k), t['invalid'].get(k))
    if (f['rows'], f['rejected']) != (t['rows'], t['rejected']):
        bad += 1; print('  MISMATCH', name, 'rows', f['rows'], f['rejected'], 'want', t['rows'], t['rejected'])
    if kind == 'count' and t['format'] != 'text' and not f.get('columns'):
        bad += 1; print('  NO COLUMN ROLES', name)
    if f.get('problems'):
        print('  problems', name, f['problems'])
if len(items) != len(tf):
    bad += 1; print('  %d files, want %d' % (len(items), len(tf)))
for k in ('phone', 'email', 'cn_id'):
    if got['unique'][k] != truth['unique'][k]:
        bad += 1; print('  MISMATCH overall', k, got['unique'][k], truth['unique'][k])
print('  %s: %d files, overall %s: %s' % (kind, len(items), got['unique'], 'equal to the truth' if bad == 0 else '%d MISMATCHES' % bad))
sys.exit(1 if bad else 0)
PY
}

# same JSON apart from timings
digest() { python3 -c '
import json, sys
def strip(v):
    if isinstance(v, dict): return {k: strip(x) for k, x in v.items() if k not in ("seconds", "rows_per_sec", "mb_per_sec", "elapsed")}
    if isinstance(v, list): return [strip(x) for x in v]
    return v
print(json.dumps(strip(json.load(open(sys.argv[1]))), sort_keys=True))' "$1" | sha256sum; }

status=0
first=
for w in 1 8 1 8; do
  start=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$work/rss" bin/evidx count $(paths) --workers "$w" --json > "$work/out.json"
  end=$(date +%s.%N)
  printf 'count --workers %d: %.1f s, peak RSS %d MiB\n' "$w" "$(awk "BEGIN{print $end - $start}")" $(( $(cat "$work/rss") / 1024 ))
  check count "$work/out.json" || status=1
  if [[ -z $first ]]; then first=$(digest "$work/out.json"); elif [[ $first != $(digest "$work/out.json") ]]; then echo "  JSON differs between runs"; status=1; fi
done

bin/evidx case init "$work/case" --case-number BENCH-EXACT --examiner bench >/dev/null
start=$(date +%s.%N)
/usr/bin/time -f '%M' -o "$work/rss" bin/evidx dataset add "$work/case" $(paths) >/dev/null
end=$(date +%s.%N)
printf 'dataset add: %.1f s, peak RSS %d MiB\n' "$(awk "BEGIN{print $end - $start}")" $(( $(cat "$work/rss") / 1024 ))
bin/evidx stats "$work/case" --json > "$work/stats.json"
check stats "$work/stats.json" || status=1
exit $status
