#!/usr/bin/env bash
# scripts/make-bench-image.sh OUT SIZE_MIB FILL_PERCENT [FROM_DIR]
# The benchmark's disk image: an ext4 filesystem of SIZE_MIB MiB whose files are real files of this
# machine (regular files under FROM_DIR, default /usr/lib, in C-locale path order, each under 64 MiB)
# taking up to FILL_PERCENT % of it, so compression sees real data and the free space stays a hole
# in the image file. Same machine, same image. Needs mke2fs (e2fsprogs) and GNU tar.
# Prints "OUT apparent_bytes allocated_bytes".
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 OUT SIZE_MIB FILL_PERCENT [FROM_DIR]" >&2
  exit 2
fi
out=$1 size_mib=$2 fill_percent=$3 from=${4:-/usr/lib}
limit=$((size_mib * 1048576 * fill_percent / 100))

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/root"

# Pick files in path order until the next one would pass the limit.
(cd "$from" && find . -xdev -type f -size -64M -printf '%p\t%s\n') |
  LC_ALL=C sort -t $'\t' -k1,1 |
  awk -F '\t' -v limit="$limit" '
    stop { next }
    used + $2 > limit { stop = 1; next }
    { used += $2; print $1 }' >"$work/files"

tar -C "$from" --no-recursion -cf - -T "$work/files" | tar -C "$work/root" -xf -

rm -f "$out"
truncate -s "${size_mib}M" "$out"
mke2fs -q -F -t ext4 -d "$work/root" "$out"
echo "$out $(stat -c %s "$out") $(($(stat -c %b "$out") * 512))"
