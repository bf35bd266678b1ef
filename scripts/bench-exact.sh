#!/usr/bin/env bash
# bench-exact.sh: the differential check of ingest/exact_test.go at full
# size. leakgen writes every format at ${ROWS:-6000000} rows in all (text
# files of about 50 MB each), then every file is counted with 1 and 8
# workers, twice each, and also a gzip, zstd and BOM copy of users.csv;
# every figure must equal the generator's truth, and the JSON must be the
# same on every run.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${ROWS:-6000000}
work=$(mktemp -d "${TMPDIR:-/tmp}/evidx-exact.XXXXXX")
trap 'rm -rf "$work"' EXIT
go build -o "$work/leakgen" ./cmd/leakgen
"$work/leakgen" -seed 11 -rows "$rows" -out "$work/d" >/dev/null
u=$work/d/users.csv
gzip -c "$u" > "$work/d/users-copy.csv.gz"
zstd -q -c "$u" > "$work/d/users-copy.csv.zst"
{ printf '\xef\xbb\xbf'; cat "$u"; } > "$work/d/users-copy-bom.csv"
files=$(cd "$work/d" && ls | grep -v truth.json)
status=0
first=
for w in 1 8 1 8; do
  start=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$work/rss" bin/evidx count $(for f in $files; do echo "$work/d/$f"; done) --workers "$w" --json > "$work/out.json"
  end=$(date +%s.%N)
  printf 'count --workers %d: %.1f s, peak RSS %d MiB\n' "$w" "$(awk "BEGIN{print $end - $start}")" $(( $(cat "$work/rss") / 1024 ))
  python3 - "$work/d/truth.json" "$work/out.json" <<'PY' || status=1
import json, os, sys
truth = json.load(open(sys.argv[1])); got = json.load(open(sys.argv[2]))
tf = {os.path.basename(f['path']): f for f in truth['files']}
tf['users-copy.csv.gz'] = tf['users-copy.csv.zst'] = tf['users-copy-bom.csv'] = tf['users.csv']
bad = 0
for f in got['files']:
    t = tf[os.path.basename(f['path'])]
    for k in ('phone', 'email', 'cn_id', 'bank_card'):
        if f['unique'].get(k, 0) != t['unique'].get(k, 0) or f['invalid'].get(k, 0) != t['invalid'].get(k, 0):
            bad += 1; print('MISMATCH', f['path'], k, f['unique'].get(k), t['unique'].get(k))
    if (f['rows'], f['rejected']) != (t['rows'], t['rejected']):
        bad += 1; print('MISMATCH', f['path'], 'rows', f['rows'], f['rejected'], t['rows'], t['rejected'])
for k in ('phone', 'email', 'cn_id'):
    if got['unique'][k] != truth['unique'][k]:
        bad += 1; print('MISMATCH overall', k, got['unique'][k], truth['unique'][k])
print('  %d files, overall %s: %s' % (len(got['files']), got['unique'], 'equal to the truth' if bad == 0 else '%d MISMATCHES' % bad))
sys.exit(1 if bad else 0)
PY
  if [[ -z $first ]]; then first=$(sha256sum < "$work/out.json"); elif [[ $first != $(sha256sum < "$work/out.json") ]]; then echo "  JSON differs between runs"; status=1; fi
done
exit $status
