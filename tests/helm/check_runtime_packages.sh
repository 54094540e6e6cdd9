#!/usr/bin/env bash
# Checks that a runtime package list (deploy/docker/runtime-packages.txt) installs every
# shared library the given binaries load directly, and lists nothing they do not need.
# Library -> owning Debian package via readelf (NEEDED) + ldd + dpkg -S on this (bookworm)
# machine, the same way the list was made. Lines whose comment says "not a library" are
# exempt from the "unused" check.
#   check_runtime_packages.sh LIST BINARY...
set -euo pipefail
list=$1; shift
(($# > 0)) || { echo "usage: $0 LIST BINARY..." >&2; exit 2; }

mapfile -t listed < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$list" | grep -v '^$' | sort -u)
mapfile -t exempt < <(grep -i 'not a library' "$list" | sed -e 's/#.*//' -e 's/[[:space:]]//g' | sort -u)
((${#listed[@]} > 0)) || { echo "FAIL: $list lists no package" >&2; exit 1; }

fail=0
declare -A lib_path=()   # soname -> path ldd resolves
for bin in "$@"; do
  [[ -x $bin ]] || { echo "FAIL: $bin is not an executable" >&2; exit 1; }
  resolved=$(ldd "$bin")
  while read -r so; do
    path=$(awk -v s="$so" '$1 == s { print $3 }' <<<"$resolved")
    if [[ -z $path || $path == "not" ]]; then
      echo "FAIL: $bin: $so not found by ldd" >&2; fail=1; continue
    fi
    lib_path[$so]=$path
  done < <(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
done
((${#lib_path[@]} > 0)) || { echo "FAIL: no NEEDED libraries found" >&2; exit 1; }

# One dpkg -S for all paths (it is slow per call). usrmerge: a file may be registered
# under /lib or /usr/lib, so ask for both spellings and keep whichever dpkg knows.
declare -A owner_of=()
while IFS= read -r line; do
  pkg=${line%%:*}; file=${line#*: }
  owner_of[$file]=$pkg
done < <(for p in "${lib_path[@]}"; do echo "$p"; readlink -f "$p"; done | sort -u |
         xargs dpkg -S 2>/dev/null || true)

declare -A needed=()     # package -> sonames
for so in "${!lib_path[@]}"; do
  p=${lib_path[$so]}
  pkg=${owner_of[$p]:-${owner_of[$(readlink -f "$p")]:-}}
  if [[ -z $pkg ]]; then
    echo "FAIL: no Debian package owns $p ($so)" >&2; fail=1; continue
  fi
  needed[$pkg]+="$so "
done

for pkg in "${!needed[@]}"; do
  if ! printf '%s\n' "${listed[@]}" | grep -qxF "$pkg"; then
    echo "FAIL: $list lacks $pkg (provides ${needed[$pkg]% })" >&2; fail=1
  fi
done
for pkg in "${listed[@]}"; do
  if [[ -z ${needed[$pkg]:-} ]] && ! printf '%s\n' "${exempt[@]}" | grep -qxF "$pkg"; then
    echo "FAIL: $list lists $pkg, which no binary loads (mark it 'not a library' if it is needed otherwise)" >&2
    fail=1
  fi
done
((fail == 0)) || exit 1
echo "runtime packages: ${#listed[@]} listed, ${#needed[@]} library packages needed by $# binaries: OK"
