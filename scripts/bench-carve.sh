#!/usr/bin/env bash
# bench-carve.sh: carving and scanning on a 512 MiB raw image (seeded
# pseudo-random fill with real files planted at sector offsets), evidx
# against PhotoRec on the same image. Prints MB/s, files recovered,
# byte-identical files and peak RSS. SIZE_MIB=64 for a quick run.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${SIZE_MIB:-512}
work=$(mktemp -d /tmp/bench-carve.XXXXXX)
trap '[[ -n ${KEEP:-} ]] && echo "kept $work" || rm -rf "$work"' EXIT
bin=${EVIDX:-bin/evidx}
[[ -x $bin ]] || go build -o "$bin" ./cmd/evidx
img=$work/bench.img
export LC_ALL=C

# Seeded fill: AES-CTR keystream of a fixed passphrase (not zeros, not
# /dev/urandom: the same image every run).
{ openssl enc -aes-128-ctr -nosalt -pass pass:evidx-bench -pbkdf2 </dev/zero 2>/dev/null || true; } | head -c $((size_mib << 20)) >"$img"

# Files to plant: real ones from the Go toolchain and Debian docs, and a
# generated leaked dataset (CSV) with gzip/xz/bzip2/zip/SQLite copies.
src=$work/src
mkdir -p "$src"
goroot=$(go env GOROOT)
i=0
for f in "$goroot"/src/image/testdata/*.jpeg "$goroot"/src/image/testdata/*.png "$goroot"/src/image/testdata/*.gif \
  "$goroot"/src/image/png/testdata/bench*.png "$goroot"/src/archive/zip/testdata/{test,winxp,dd,zip64,unix,subdir}.zip \
  "$goroot"/src/compress/bzip2/testdata/*.bz2 "$goroot"/src/internal/zstd/testdata/*gettysburg*.zst \
  "$goroot"/src/crypto/ed25519/testdata/sign.input.gz "$goroot"/lib/time/zoneinfo.zip \
  /usr/share/doc/*/*.pdf /usr/share/doc/*/*.jpg /usr/share/doc/*/html/*.gif /usr/share/doc/*/*.png; do
  [[ -f $f ]] || continue
  case $f in *truncated*|*invalid*) continue ;; esac
  cp "$f" "$src/$((i++))-$(basename "$f")"
done
awk 'BEGIN{srand(7); print "name,mobile,email,id";
  for(i=0;i<200000;i++) printf "user%d,1%d%09d,user%d@example.com,%d\n", i, 3+int(rand()*7), int(rand()*1e9), i, int(rand()*1e6)}' >"$src/leak.csv"
head -c 3000000 "$src/leak.csv" | gzip -c >"$src/leak.csv.gz"
head -c 2000000 "$src/leak.csv" | xz -c >"$src/leak.csv.xz"
head -c 2000000 "$src/leak.csv" | bzip2 -c >"$src/leak.csv.bz2"
(cd "$src" && head -c 4000000 leak.csv >leak2.csv && zip -q leak.zip leak2.csv && rm leak2.csv)
sqlite3 "$src/leak.sqlite" ".mode csv" ".import '|head -n 50000 $src/leak.csv' users" 2>/dev/null ||
  { head -n 50000 "$src/leak.csv" >"$work/l.csv"; sqlite3 "$src/leak.sqlite" ".mode csv" ".import $work/l.csv users"; }

# Plant at deterministic sector offsets, spread over the image.
RANDOM=42
off=$((1 << 20))
: >"$work/truth"
for f in "$src"/*; do
  sz=$(stat -c %s "$f")
  (( off + sz >= (size_mib << 20) )) && break
  dd if="$f" of="$img" bs=512 seek=$((off / 512)) conv=notrunc status=none
  sha256sum <"$f" | cut -d' ' -f1 >>"$work/truth"
  off=$(( (off + sz + 511) / 512 * 512 + 512 * (1 + RANDOM % 2048) ))
done
planted=$(wc -l <"$work/truth")
sort -u "$work/truth" -o "$work/truth"
echo "image: ${size_mib} MiB, $planted files planted ($(du -sh "$src" | cut -f1) of real and generated files)"

identical() { # dir -> distinct planted files found byte-identical, and files total
  find "$1" -type f ! -name '*.xml' ! -name 'manifest.json' ! -name '*.log' -print0 | xargs -0 -r sha256sum | cut -d' ' -f1 >"$work/got"
  local total same
  total=$(wc -l <"$work/got")
  same=$(sort -u "$work/got" | comm -12 - "$work/truth" | wc -l)
  echo "$same $total"
}
rss() { awk '/Maximum resident/{print int($6/1024)}' "$1"; }
cpu() { awk -F': ' '/User time|System time/{s+=$2} END{printf "%.2f", s}' "$1"; }
secs() { awk -F': ' '/Elapsed \(wall/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$1"; }
# cpumbps CPU [CORES]: MB/s had the job had its cores to itself (size /
# (cpu / cores)); PhotoRec is single-threaded, so it gets one.
cpumbps() { awk -v c="$1" -v m="$size_mib" -v n="${2:-$(nproc)}" 'BEGIN{ if (c>0) printf "%.1f", m*1.048576/(c/n); else print "inf" }'; }
mbps() { awk -v s="$1" -v m="$size_mib" 'BEGIN{ if (s>0) printf "%.1f", m*1.048576/s; else print "inf" }'; }

# evidx carve (a raw image without a file system: the whole image).
/usr/bin/time -v "$bin" carve "$img" --out "$work/evidx" --json >"$work/carve.json" 2>"$work/carve.time"
read -r e_same e_total < <(identical "$work/evidx")
e_s=$(secs "$work/carve.time")
echo "evidx carve:  ${e_s}s  $(mbps "$e_s") MB/s  files=$e_total  byte-identical=$e_same/$planted  peak RSS=$(rss "$work/carve.time") MiB  cpu=$(cpu "$work/carve.time")s ($(cpumbps "$(cpu "$work/carve.time")") MB/s on idle cores)"

if command -v photorec >/dev/null; then
  (cd "$work" && /usr/bin/time -v photorec /log /d "$work/pr" /cmd "$img" partition_none,options,paranoid,fileopt,everything,enable,wholespace,search >/dev/null 2>"$work/pr.time")
  read -r p_same p_total < <(identical "$work/pr.1")
  p_s=$(secs "$work/pr.time")
  echo "photorec:     ${p_s}s  $(mbps "$p_s") MB/s  files=$p_total  byte-identical=$p_same/$planted  peak RSS=$(rss "$work/pr.time") MiB  cpu=$(cpu "$work/pr.time")s ($(cpumbps "$(cpu "$work/pr.time")" 1) MB/s on an idle core)"
else
  echo "photorec: not installed (scripts/deps.sh installs testdisk)"
fi

/usr/bin/time -v "$bin" scan "$img" --out "$work/features" --json >"$work/scan.json" 2>"$work/scan.time"
s_s=$(secs "$work/scan.time")
echo "evidx scan:   ${s_s}s  $(mbps "$s_s") MB/s  peak RSS=$(rss "$work/scan.time") MiB  cpu=$(cpu "$work/scan.time")s ($(cpumbps "$(cpu "$work/scan.time")") MB/s on idle cores)  features: $(tr -d ' \n' <"$work/scan.json" | grep -o '"features":{[^}]*}')"
echo "cpu: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) (wall MB/s falls with load; cpu= is user+system seconds)"
