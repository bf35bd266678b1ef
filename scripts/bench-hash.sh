#!/usr/bin/env bash
# bench-hash.sh compares `evidx hash` (MD5+SHA-1+SHA-256 in one pass) with
# md5sum and sha256sum alone on a 1 GiB random raw image in the page cache,
# and with ewfverify on an E01 of the same data. It prints wall time, MB/s,
# peak RSS and the ratio evidx/md5sum (goal: <= 1.10).
# Usage: scripts/bench-hash.sh [size-MiB]   (default 1024)
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1024}
bin=${EVIDX_BIN:-bin/evidx}
[[ -x $bin ]] || go build -o "$bin" ./cmd/evidx
tmp=$(mktemp -d /tmp/bench-hash.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
img=$tmp/random.dd
head -c $((mib << 20)) /dev/urandom >"$img"
cat "$img" >/dev/null # warm the page cache
bytes=$(stat -c %s "$img")

# run NAME CMD...: best wall time of 3 runs (others share this machine), peak RSS.
declare -A wall rss
run() {
  local name=$1; shift
  local best="" peak=0 t r
  for _ in 1 2 3; do
    /usr/bin/time -f '%e %M' -o "$tmp/time" "$@" >/dev/null
    read -r t r <"$tmp/time"
    if [[ -z $best ]] || awk -v a="$t" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$t; fi
    ((r > peak)) && peak=$r
  done
  wall[$name]=$best
  rss[$name]=$peak
  awk -v n="$name" -v t="$best" -v b="$bytes" -v r="$peak" \
    'BEGIN{printf "%-22s %7.2f s  %8.1f MB/s  peak RSS %6.1f MiB\n", n, t, (t>0? b/1e6/t : 0), r/1024}'
}

echo "1 GiB-class raw image: $bytes bytes, $(nproc) CPUs"
run md5sum md5sum "$img"
run sha256sum sha256sum "$img"
run "evidx hash (3 algs)" "$bin" hash --json "$img"
awk -v e="${wall[evidx hash (3 algs)]}" -v m="${wall[md5sum]}" \
  'BEGIN{r=e/m; printf "ratio evidx/md5sum: %.2f (goal <= 1.10) %s\n", r, (r<=1.10?"OK":"SLOW")}'

if command -v ewfacquire >/dev/null && command -v ewfverify >/dev/null; then
  ewfacquire -u -q -t "$tmp/random" -f encase6 -c deflate:fast -S 1500MiB "$img" >/dev/null
  rm -f "$img"
  cat "$tmp"/random.E* >/dev/null
  echo "E01 of the same data (deflate:fast, stored MD5):"
  run ewfverify ewfverify -q "$tmp/random.E01"
  run "evidx hash E01" "$bin" hash --json "$tmp/random.E01"
  awk -v e="${wall[evidx hash E01]}" -v m="${wall[ewfverify]}" \
    'BEGIN{printf "ratio evidx/ewfverify on E01: %.2f\n", e/m}'
fi
