#!/usr/bin/env bash
# demo.sh: the whole pipeline on a sample "seized" disk. It generates leaked
# datasets (seeded, with their ground truth), puts some of them on a FAT32
# image (one in a zip, one deleted afterwards), acquires the image as E01,
# then runs evidx from case creation to the court report.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${DEMO_OUT:-demo-out}
rows=${DEMO_ROWS:-200000}
evidx=$PWD/bin/evidx
rm -rf "$out" && mkdir -p "$out"
export PATH=$PATH:/usr/sbin:/sbin

step() { printf '\n== %s\n' "$*" >&2; }

step "generating leaked datasets ($rows rows, seeded) with ground truth"
go run ./cmd/leakgen -seed 7 -rows "$rows" -out "$out/leaks" >&2

step "building the seized disk: FAT32, datasets allocated, zipped and deleted"
img=$out/seized.dd
truncate -s 256M "$img"
mkfs.fat -F 32 -n SEIZED "$img" >/dev/null
mmd -i "$img" ::/stock ::/photos
mapfile -t leaks < <(find "$out/leaks" -maxdepth 1 -type f ! -name 'truth.json' | sort)
onimage=("${leaks[@]:0:3}")
for f in "${onimage[@]}"; do mcopy -i "$img" "$f" ::/stock/; done
(cd "$out/leaks" && zip -q ../stock-archive.zip "$(basename "${leaks[3]}")")
mcopy -i "$img" "$out/stock-archive.zip" ::/stock/stock-archive.zip
for f in $(find "$(go env GOROOT)/src/image" -name '*.png' | sort | head -5); do mcopy -i "$img" "$f" ::/photos/; done
mcopy -i "$img" "${leaks[4]}" ::/stock/
mdel -i "$img" "::/stock/$(basename "${leaks[4]}")"
handed=("${leaks[@]:5}")

e01=$out/seized
if command -v ewfacquire >/dev/null; then
  step "acquiring the disk as E01 (ewfacquire)"
  ewfacquire -u -q -t "$e01" -c deflate:fast -C DEMO-2026-001 -D "seized laptop disk" -e "Demo Examiner" -E EV1 "$img" >/dev/null
  evidence=$e01.E01
else
  evidence=$img
fi

case=$out/case
step "evidx case init"
$evidx case init "$case" --case-number DEMO-2026-001 --examiner "Demo Examiner" --agency "Demo Lab" >&2
step "evidx evidence add (hash, verify, walk, extract, carve, ingest datasets)"
$evidx evidence add "$case" "$evidence" --id EV1 >&2
if ((${#handed[@]})); then
  step "evidx dataset add (datasets handed over separately)"
  $evidx dataset add "$case" "${handed[@]}" >&2
fi
step "evidx stats"
$evidx stats "$case"
step "evidx report + verify --evidence"
$evidx report "$case" >&2
$evidx verify "$case" --evidence >&2
printf '\nreport: %s\n' "$case/reports/report.html"
printf 'ground truth from the generator (unique per kind): %s\n' "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["unique"])' "$out/leaks/truth.json" 2>/dev/null || grep -o '"unique":{[^}]*}' "$out/leaks/truth.json" | head -1)"
# The persons the data can link, by the generator's own union-find over
# the identifiers of each record it wrote, beside evidx's.
printf 'persons: evidx %s, ground truth %s\n' \
  "$($evidx stats "$case" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["persons"]["unique"])' 2>/dev/null || echo '?')" \
  "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["persons"])' "$out/leaks/truth.json" 2>/dev/null || grep -o '"persons": [0-9]*' "$out/leaks/truth.json" | head -1 | grep -o '[0-9]*$')"
step "evidx serve: the case's pages for analysts (read-only; Ctrl-C stops it)"
printf 'run:  %s serve %s\nopen: http://127.0.0.1:8787/\n' "$evidx" "$case"
