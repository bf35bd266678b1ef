#!/usr/bin/env bash
# bench-fs-readers.sh: the ext4 and NTFS readers (ingest/fs/ext, ingest/fs/ntfs)
# against The Sleuth Kit's fls on the same image of many small files
# (512 B - 8 KiB, 100 per directory, seeded generator).
#
#   list:    Walk only                         vs  fls -r -p
#   extract: Walk + Open + SHA-256 of each file
#
# Each package's BenchmarkWalk builds its image (mkfs.ext4 -d; mkntfs + an
# ntfs-3g mount), then reports files/s (and MB/s for extract); peak RSS of
# the whole benchmark process comes from /usr/bin/time -v.
#
# Environment: EVIDX_BENCH_FILES (default 100000 for ext4, NTFS uses
# BENCH_NTFS_FILES, default 20000: writing through FUSE is slow).
set -euo pipefail
cd "$(dirname "$0")/.."
PATH=$PATH:/usr/sbin
work=$(mktemp -d /tmp/evidx-bench-readers.XXXXXX)
trap 'rm -rf "$work"' EXIT
for pkg in ext ntfs; do
  go test -c -o "$work/$pkg.test" "./ingest/fs/$pkg"
done
bench() { # bench PKG FILES
  local pkg=$1 files=$2
  echo "== ingest/fs/$pkg: $files files"
  EVIDX_BENCH_FILES=$files /usr/bin/time -v "$work/$pkg.test" -test.run '^$' -test.bench '^BenchmarkWalk$' \
    -test.benchtime 3x 2>"$work/time.log" | grep -E '^Benchmark|^PASS|FAIL'
  awk -F': ' '/Maximum resident set size/ {printf "peak RSS (build + benchmark process): %.1f MB\n", $2/1024}' "$work/time.log"
}
bench ext "${EVIDX_BENCH_FILES:-100000}"
bench ntfs "${BENCH_NTFS_FILES:-20000}"
