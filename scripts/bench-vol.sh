#!/usr/bin/env bash
# bundle-vol --clone-only on ~1 GiB of real files (a copy of part of /usr/lib), against the floor:
# rsync -aHAXS of the same tree into an image made and mounted by hand. Prints wall time and peak
# memory (GNU time's maximum resident set size: the largest single process of each run).
# Needs root, rsync, e2fsprogs, GNU time (/usr/bin/time) and a build (npx tsc -p tsconfig.build.json).
# Usage: sudo scripts/bench-vol.sh [MiB of source data, default 1024]
set -euo pipefail

want_mib=${1:-1024}
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "bench-vol: run as root (bundle-vol mounts images)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench-vol: needs GNU time (Debian package: time)" >&2; exit 1; }
[ -f "$here/dist/cli/main.js" ] || { echo "bench-vol: build first: npx tsc -p tsconfig.build.json" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/var/tmp}/amibundle-bench-vol-XXXXXX")
mnt="$work/mnt"
loop=""
cleanup() {
  mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
  [ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# The source: whole directories of /usr/lib, biggest first as long as they fit, until the wanted
# amount is reached: shared libraries, Python and compiler trees (big and many small files).
src="$work/src"
mkdir -p "$src/usr/lib"
left=$want_mib
while read -r size dir; do
  [ "$left" -le 16 ] && break
  [ "$size" -gt $((left + 64)) ] && continue
  cp -a "$dir" "$src/usr/lib/"
  left=$((left - size))
done < <(du -s --block-size=1M /usr/lib/* 2>/dev/null | sort -rn)
files=$(find "$src" | wc -l)
echo "source: $(du -s --block-size=1M "$src" | cut -f1) MiB allocated, $files paths (from /usr/lib), on $(df --output=fstype "$src" | tail -1)"
# Both runs read a warm page cache.
tar -cf /dev/null -C "$src" .

measure() { # label, command...
  local label=$1
  shift
  /usr/bin/time -f "%e %M" -o "$work/time.$label" "$@" >"$work/out.$label" 2>&1 || {
    cat "$work/out.$label" >&2
    exit 1
  }
  read -r secs kib <"$work/time.$label"
  printf '%-40s %8.2f s   peak RSS %7.1f MiB\n' "$label" "$secs" "$(echo "$kib / 1024" | bc -l)"
}

# Alternating rounds, so neither side always runs on a cache or disk the other warmed or filled.
for round in 1 2; do
  echo
  echo "round $round"
  # The floor: an image of the same size (from bundle-vol's first run), made, mounted and filled by hand.
  if [ -n "${size_mib:-}" ]; then
    floor_img="$work/floor.img"
    rm -f "$floor_img"
    truncate -s "${size_mib}M" "$floor_img"
    measure "by hand: mkfs.ext4 + mount" sh -c "mke2fs -q -F -t ext4 '$floor_img' && mkdir -p '$mnt' && mount -o loop '$floor_img' '$mnt'"
    measure "by hand: rsync -aHAXS (the floor)" rsync -aHAXS --numeric-ids "$src/" "$mnt/"
    measure "by hand: umount (writes the data out)" umount "$mnt"
  fi
  rm -rf "$work/dest"
  mkdir -p "$work/dest"
  measure "amibundle bundle-vol --clone-only" \
    node "$here/bin/ec2-bundle-vol.js" --clone-only --batch -v "$src" -d "$work/dest" -p bench.img
  size_mib=$(sed -n 's/^Image size: \([0-9]*\) MiB.*/\1/p' "$work/out.amibundle bundle-vol --clone-only")
done

echo
echo "image size ${size_mib} MiB; allocated: bundle-vol $(du -s --block-size=1M "$work/dest/bench.img" | cut -f1) MiB, by hand $(du -s --block-size=1M "$floor_img" | cut -f1) MiB"
