#!/usr/bin/env bash
# deps.sh installs the Debian tools evidx's tests use to build real images and
# to compare against (The Sleuth Kit, PhotoRec, ewf-tools, ...). It does
# nothing when they are all present.
set -euo pipefail
need=(mkfs.fat:dosfstools mcopy:mtools mkfs.ext4:e2fsprogs debugfs:e2fsprogs
      ewfacquire:ewf-tools ewfverify:ewf-tools mkntfs:ntfs-3g ntfscp:ntfs-3g
      genisoimage:genisoimage fls:sleuthkit photorec:testdisk foremost:foremost
      scalpel:scalpel xmllint:libxml2-utils hashdeep:hashdeep sqlite3:sqlite3
      sfdisk:fdisk xz:xz-utils zstd:zstd bzip2:bzip2 zip:zip /usr/bin/time:time
      qemu-img:qemu-utils qemu-io:qemu-utils vhdiinfo:libvhdi-utils vmdkinfo:libvmdk-utils qcowinfo:libqcow-utils
      fsapfsinfo:libfsapfs-utils mkfs.exfat:exfatprogs fsck.exfat:exfatprogs mount.exfat-fuse:exfat-fuse losetup:mount
      mkfs.xfs:xfsprogs mkfs.btrfs:btrfs-progs fshfsinfo:libfshfs-utils xorriso:xorriso
      chromium:chromium pdftotext:poppler-utils pdftoppm:poppler-utils node:nodejs npm:npm
      qpdf:qpdf abiword:abiword ssconvert:gnumeric python3:python3 base64:coreutils)
missing=()
for pair in "${need[@]}"; do
  tool=${pair%%:*} pkg=${pair##*:}
  if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$tool && ! -x /sbin/$tool && ! -x $tool ]]; then
    missing+=("$pkg")
  fi
done
# CJK glyphs for the Chinese report printed to PDF by the custody tests.
[[ -e /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ]] || missing+=(fonts-noto-cjk)
if ((${#missing[@]})); then
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "deps.sh: installing ${missing[*]}" >&2
sudo=; [[ $(id -u) == 0 ]] || sudo=sudo
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The CASE/UCO SHACL validator (../shared/tools/case-validate, read-only
# there) with its npm packages, for custody's case.jsonld test.
root=$(cd "$(dirname "$0")/.." && pwd)
cv_src=$root/../shared/tools/case-validate cv=$root/.cache/case-validate
if [[ -d $cv_src ]] && ! cmp -s "$cv_src/package-lock.json" "$cv/package-lock.json" 2>/dev/null || [[ -d $cv_src && ! -d $cv/node_modules ]]; then
  echo "deps.sh: installing the CASE validator into $cv" >&2
  rm -rf "$cv" && mkdir -p "$cv" && cp "$cv_src"/* "$cv"/ && chmod -R u+w "$cv"
  (cd "$cv" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
