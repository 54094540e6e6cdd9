#!/usr/bin/env bash
# Proves the container image's runtime stage without a Docker engine: assembles its root
# filesystem for real and runs the server in it.
#  1. "debian:bookworm-slim" stand-in: debootstrap --variant=minbase bookworm, the image's
#     apt sources (bookworm, bookworm-updates, bookworm-security), upgraded as the published
#     image is.
#  2. The Dockerfile's last stage is interpreted instruction by instruction in a chroot:
#     its RUN lines run as written (so apt installs exactly runtime-packages.txt, read from
#     the source tree by the Dockerfile's own COPY + RUN), COPY --from=build takes the
#     binaries of this build (stripped, as the build stage does), ENV/WORKDIR/USER/
#     ENTRYPOINT/STOPSIGNAL are honoured when the server starts.
#  3. blueprint-syncd starts through the ENTRYPOINT as the Dockerfile's USER, sharing the
#     host's network, and must: run as that uid/gid without capabilities, resolve every
#     library inside the root filesystem with versions at least the build host's (the
#     binaries were linked against those), answer grpc.health.v1.Health/Check SERVING for
#     "" and "readiness" (host-side node client), serve the CLI inside the chroot, write its
#     SQLite store under the VOLUME, and exit 0 on STOPSIGNAL.
# Cached under --work: the slim stand-in and the stage's layers before COPY --from, each
# keyed by what built it (including the host's library package versions), so a re-run only
# copies the binaries. Everything runs in a private mount namespace, so no mount can outlive
# the check even if it is killed; a trap unmounts anyway. An unreachable mirror is a FAIL.
#
#   runtime_stage_check.sh --dockerfile F --context DIR --packages LIST --work DIR
#                          --node NODE --probe grpcprobe.js BINARY...
set -euo pipefail

usage() {
  echo "usage: $0 --dockerfile F --context DIR --packages LIST --work DIR --node NODE --probe JS BINARY..." >&2
  exit 2
}
dockerfile='' context='' packages='' work='' node=node probe=''
while (($#)); do
  case $1 in
    --dockerfile) dockerfile=$2; shift 2 ;;
    --context) context=$2; shift 2 ;;
    --packages) packages=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --node) node=$2; shift 2 ;;
    --probe) probe=$2; shift 2 ;;
    --) shift; break ;;
    -*) usage ;;
    *) break ;;
  esac
done
binaries=("$@")
[[ -n $dockerfile && -n $context && -n $packages && -n $work && -n $probe ]] || usage
((${#binaries[@]})) || usage

fail() { echo "FAIL: $*" >&2; exit 1; }

MIRROR=${BPS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${BPS_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
SUITE=bookworm
# The published image's base, which a debootstrap of SUITE stands in for.
EXPECTED_BASE=debian:bookworm-slim
# The build stage's output directory, mapped to this build's binaries.
BUILD_STAGE_BIN=/src/build/bin
DOCKER_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# Mounts made below exist only in a private mount namespace: they vanish with it, whatever
# happens to this script. The outer process then proves none leaked into the host's.
if [[ -z ${BPS_RUNTIME_CHECK_NS:-} ]]; then
  [[ $(id -u) -eq 0 ]] || fail "must run as root (debootstrap, chroot, mount); CI runs ctest as root"
  command -v unshare >/dev/null || fail "unshare (util-linux) not found"
  rc=0
  BPS_RUNTIME_CHECK_NS=1 unshare --mount --propagation private -- "$0" \
    --dockerfile "$dockerfile" --context "$context" --packages "$packages" --work "$work" \
    --node "$node" --probe "$probe" -- "${binaries[@]}" || rc=$?
  work_abs=$(realpath -m "$work")
  if awk -v w="$work_abs" '$5 == w || index($5, w "/") == 1 { found = 1 } END { exit !found }' \
      /proc/self/mountinfo; then
    echo "FAIL: mounts left under $work_abs in the host's mount namespace" >&2
    exit 1
  fi
  exit "$rc"
fi

for tool in debootstrap chroot dpkg-query readelf strip sha256sum; do
  command -v "$tool" >/dev/null || fail "$tool not found (scripts/install-deps installs debootstrap)"
done
[[ -f $KEYRING ]] || fail "$KEYRING missing (package debian-archive-keyring)"
[[ -f $probe ]] || fail "$probe missing"
[[ -d $(dirname "$probe")/node_modules ]] ||
  fail "$(dirname "$probe")/node_modules missing: run scripts/install-deps"
"$node" --version >/dev/null 2>&1 || fail "node ($node) not runnable: run scripts/install-deps"
[[ -f $dockerfile ]] || fail "$dockerfile missing"
[[ -f $packages ]] || fail "$packages missing"
for b in "${binaries[@]}"; do [[ -x $b ]] || fail "$b is not an executable (build it first)"; done

mkdir -p "$work"
work=$(realpath "$work")
SLIM=$work/slim   # debian:bookworm-slim stand-in
BASE=$work/base   # + the runtime stage's layers before COPY --from
RUN=$work/run     # + the binaries; a fresh copy per run
LOGS=$work/logs
mkdir -p "$LOGS"

# ---------------------------------------------------------------- cleanup
server_pid=
guard_pid=
mounts_under() {  # deepest first
  awk -v w="$1" '$5 == w || index($5, w "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}
unmount_all() {
  local m
  for m in $(mounts_under "$work"); do umount -l "$m" 2>/dev/null || true; done
  [[ -z $(mounts_under "$work") ]]
}
# A killed earlier run may have left its server running in its namespace.
kill_strays() {
  local p root
  for p in /proc/[0-9]*; do
    root=$(readlink "$p/root" 2>/dev/null) || continue
    if [[ $root == "$work" || $root == "$work"/* ]]; then
      echo "killing stray process ${p#/proc/} (root $root) from an earlier run" >&2
      kill -KILL "${p#/proc/}" 2>/dev/null || true
    fi
  done
}
cleanup() {
  local rc=$?
  if [[ -n $guard_pid ]] && kill -0 "$guard_pid" 2>/dev/null; then
    kill -KILL "$guard_pid" 2>/dev/null || true
    wait "$guard_pid" 2>/dev/null || true
  fi
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  unmount_all || { echo "FAIL: could not unmount under $work" >&2; rc=1; }
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
remove_tree() {
  unmount_all || fail "mounts remain under $work"
  rm -rf --one-file-system "$1"
}
kill_strays
unmount_all || fail "cannot unmount leftovers under $work"

# ---------------------------------------------------------------- timing
declare -a timings=()
phase_name='' phase_t0=''
phase() {
  phase_end
  phase_name=$1
  phase_t0=$(date +%s.%N)
  echo "== $phase_name"
}
phase_end() {
  [[ -n $phase_name ]] || return 0
  local t
  t=$(awk -v a="$phase_t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  timings+=("$(printf '%-60s %7s s' "$phase_name" "$t")")
  echo "   ($t s)"
  phase_name=
}
print_timings() {
  phase_end
  echo "-- timings"
  printf '   %s\n' "${timings[@]}"
  printf '   %-60s %7s s\n' total "$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
}

# ---------------------------------------------------------------- Dockerfile
t_start=$(date +%s.%N)
phase "0. Dockerfile, cache keys"
# One instruction per line: continuations joined, comment lines dropped (as BuildKit does).
mapfile -t all_instr < <(awk '
  /^[[:space:]]*#/ { next }
  { line = $0
    if (match(line, /\\[[:space:]]*$/)) { buf = buf substr(line, 1, RSTART - 1) " "; next }
    buf = buf line
    if (buf ~ /[^[:space:]]/) print buf
    buf = "" }
  END { if (buf ~ /[^[:space:]]/) print buf }' "$dockerfile")
keyword() { local k=${1%%[[:space:]]*}; echo "${k^^}"; }
args_of() { local a=${1#*[[:space:]]}; a=${a#"${a%%[![:space:]]*}"}; echo "$a"; }

# The last stage is what `docker build` produces.
stage_start=-1 build_stage_text=''
for i in "${!all_instr[@]}"; do
  [[ $(keyword "${all_instr[$i]}") == FROM ]] && stage_start=$i
done
((stage_start >= 0)) || fail "$dockerfile has no FROM"
for ((i = 0; i < stage_start; i++)); do build_stage_text+="${all_instr[$i]}"$'\n'; done
read -r -a from_words <<<"$(args_of "${all_instr[$stage_start]}")"
base_image=${from_words[0]}
stage_name=${from_words[2]:-}
[[ $base_image == "$EXPECTED_BASE" ]] ||
  fail "runtime stage is FROM $base_image; this check assembles $EXPECTED_BASE with debootstrap $SUITE"
stage=("${all_instr[@]:stage_start+1}")
# Layers before the first COPY --from depend only on the stage text and the context: cacheable.
split=${#stage[@]}
for i in "${!stage[@]}"; do
  if [[ $(keyword "${stage[$i]}") == COPY && $(args_of "${stage[$i]}") == --from=* ]]; then
    split=$i; break
  fi
done
echo "Dockerfile: runtime stage '${stage_name:-?}' FROM $base_image, ${#stage[@]} instructions, $split before COPY --from (cached layers)"

# State the instructions build up (what `docker run` would use).
declare -A env_vars=()
env_order=()
workdir=/
user=0:0
entrypoint=()
stopsignal=TERM

json_array() {  # JSON exec form -> NUL-separated words
  "$node" -e 'const a = JSON.parse(process.argv[1]);
    if (!Array.isArray(a) || a.some((s) => typeof s !== "string")) process.exit(1);
    process.stdout.write(a.map((s) => s + "\0").join(""));' "$1" ||
    fail "cannot parse JSON array: $1"
}
exec_form() {  # sets REPLY_WORDS from ENTRYPOINT/CMD arguments
  REPLY_WORDS=()
  if [[ $1 == \[* ]]; then
    mapfile -d '' -t REPLY_WORDS < <(json_array "$1")
  else
    REPLY_WORDS=(/bin/sh -c "$1")
  fi
}
set_env() {
  [[ -v env_vars[$1] ]] || env_order+=("$1")
  env_vars[$1]=$2
}
env_list() {  # KEY=VALUE words for env -i
  local k
  for k in "${env_order[@]}"; do printf '%s=%s\0' "$k" "${env_vars[$k]}"; done
}
rootfs_home() {  # ROOTFS UID: the HOME docker gives a USER (from the image's passwd)
  local h
  h=$(chroot "$1" /usr/bin/getent passwd "$2" | cut -d: -f6) || true
  echo "${h:-/}"
}
rootfs_cmd() {  # ROOTFS USER DIR CMD... -> ROOTFS_CMD: as docker would run CMD (clean env, PATH, HOME, ENV)
  local r=$1 u=$2 d=$3; shift 3
  local -a e
  mapfile -d '' -t e < <(env_list)
  # chroot and env exec, so the process started is CMD itself (same pid).
  ROOTFS_CMD=(env -i PATH="$DOCKER_PATH" HOSTNAME=runtime-check HOME="$(rootfs_home "$r" "${u%%:*}")"
              "${e[@]}" chroot --userspec="$u" "$r" /usr/bin/env --chdir="$d" "$@")
}
in_rootfs() {  # ROOTFS USER DIR CMD...
  rootfs_cmd "$@"
  "${ROOTFS_CMD[@]}"
}
with_proc() {  # ROOTFS CMD...: /proc mounted for the duration
  local r=$1; shift
  mount -t proc proc "$r/proc"
  local rc=0
  "$@" || rc=$?
  umount "$r/proc"
  return "$rc"
}
copy_in() {  # ROOTFS DEST SRC...: COPY semantics for files (owner root, mode kept)
  local r=$1 dest=$2; shift 2
  local target=$r$dest
  if [[ $dest == */ || $# -gt 1 ]]; then
    mkdir -p "$target"
    for s in "$@"; do install -o 0 -g 0 -m "$(stat -c %a "$s")" "$s" "$target/"; done
  else
    mkdir -p "$(dirname "$target")"
    install -o 0 -g 0 -m "$(stat -c %a "$1")" "$1" "$target"
  fi
}

# Applies one instruction. With execute=0 only the state changes (cached layers).
apply() {
  local r=$1 execute=$2 line=$3
  local kw args
  kw=$(keyword "$line")
  args=$(args_of "$line")
  case $kw in
    ENV)
      local -a words
      read -r -a words <<<"$args"
      if [[ ${words[0]} != *=* ]]; then  # legacy ENV KEY VALUE...
        local rest=${args#"${words[0]}"}
        words=("${words[0]}=${rest#"${rest%%[![:space:]]*}"}")
      fi
      for w in "${words[@]}"; do
        [[ $w == *=* ]] || fail "unsupported ENV form: $line"
        local v=${w#*=}
        [[ $v == \"*\" ]] && v=${v:1:-1}
        [[ $v != *\"* && $v != *\'* && $v != *\$* ]] || fail "unsupported ENV quoting/expansion: $line"
        set_env "${w%%=*}" "$v"
      done ;;
    WORKDIR)
      [[ $args == /* ]] || fail "relative WORKDIR unsupported: $line"
      workdir=$args
      ((execute)) && mkdir -p "$r$workdir" ;;
    USER) user=$args; [[ $user == *:* ]] || user=$user:$user ;;
    ENTRYPOINT) exec_form "$args"; entrypoint=("${REPLY_WORDS[@]}") ;;
    CMD) ;;  # replaced by the arguments the check passes, as by `docker run IMAGE ARGS...`
    STOPSIGNAL) stopsignal=${args#SIG} ;;
    VOLUME)
      local -a vols
      if [[ $args == \[* ]]; then mapfile -d '' -t vols < <(json_array "$args"); else read -r -a vols <<<"$args"; fi
      volumes+=("${vols[@]}")
      if ((execute)); then for v in "${vols[@]}"; do mkdir -p "$r$v"; done; fi ;;
    EXPOSE | LABEL) ;;
    RUN)
      [[ $args != \[* ]] || fail "exec-form RUN unsupported: $line"
      if ((execute)); then
        run_count=$((run_count + 1))
        local rlog=$LOGS/run-$run_count.log
        echo "   RUN $args"
        with_proc "$r" in_rootfs "$r" "$user" "$workdir" /bin/sh -c "$args" >"$rlog" 2>&1 || {
          tail -n 30 "$rlog" >&2
          fail "RUN failed in the runtime stage (mirror $MIRROR unreachable or a package missing?); log: $rlog"
        }
      fi ;;
    COPY)
      local -a words
      read -r -a words <<<"$args"
      local from=
      [[ ${words[0]} == --from=* ]] && { from=${words[0]#--from=}; words=("${words[@]:1}"); }
      [[ ${words[0]} != --* ]] || fail "unsupported COPY option: $line"
      ((${#words[@]} >= 2)) || fail "COPY needs a source and a destination: $line"
      local dest=${words[-1]} srcs=("${words[@]:0:${#words[@]}-1}") files=()
      for s in "${srcs[@]}"; do
        if [[ -n $from ]]; then
          [[ $s == "$BUILD_STAGE_BIN"/* ]] ||
            fail "COPY --from=$from $s: only $BUILD_STAGE_BIN/* (the build's binaries) is mapped"
          local name=${s#"$BUILD_STAGE_BIN"/} found=
          for b in "${binaries[@]}"; do [[ $(basename "$b") == "$name" ]] && found=$b; done
          [[ -n $found ]] || fail "COPY --from=$from $s: no binary named $name was given to the check"
          files+=("$found")
          installed_bin[$name]=$dest
          [[ $dest == */ || ${#srcs[@]} -gt 1 ]] && installed_bin[$name]=${dest%/}/$name
        else
          [[ -f $context/$s ]] || fail "COPY $s: not a file in $context (directories/globs unsupported)"
          files+=("$context/$s")
        fi
      done
      if ((execute)); then
        copy_in "$r" "$dest" "${files[@]}"
        # The build stage strips what it builds before the runtime stage copies it.
        if [[ -n $from ]] && grep -qw strip <<<"$build_stage_text"; then
          for f in "${files[@]}"; do
            local t=$r$dest
            [[ $dest == */ || ${#files[@]} -gt 1 ]] && t=$t/$(basename "$f")
            strip "$t"
          done
        fi
      fi ;;
    *) fail "instruction $kw in the runtime stage is not interpreted by $0: $line" ;;
  esac
}
volumes=()
run_count=0
declare -A installed_bin=()  # binary name -> path in the image

# ---------------------------------------------------------------- cache keys
# Host versions of every package a binary's libraries come from, plus the listed ones:
# the rootfs must match them, so a host upgrade invalidates the cache.
list_packages() { sed -e 's/#.*//' -e 's/[[:space:]]//g' "$packages" | grep -v '^$' | sort -u; }
host_fingerprint() {
  local libs
  libs=$(for b in "${binaries[@]}"; do ldd "$b" || true; done | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u)
  { list_packages
    { for p in $libs; do echo "$p"; readlink -f "$p"; done | sort -u | xargs dpkg -S 2>/dev/null || true; } |
      sed 's/: .*//' | tr ',' '\n' | sed -e 's/^ *//' -e 's/:.*//'
  } | sort -u | { xargs dpkg-query -W -f='${Package} ${Version}\n' 2>/dev/null || true; } | sort -u
}
slim_sources() {
  cat <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: $KEYRING

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: $KEYRING
EOF
}
build_slim() {
  local t=$1
  debootstrap --variant=minbase --keyring="$KEYRING" "$SUITE" "$t" "$MIRROR" >"$LOGS/debootstrap.log" 2>&1 || {
    tail -n 20 "$LOGS/debootstrap.log" >&2
    fail "debootstrap $SUITE from $MIRROR failed (mirror unreachable?); log: $LOGS/debootstrap.log"
  }
  [[ -c $t/dev/null && -c $t/dev/urandom ]] || fail "debootstrap made no /dev/null or /dev/urandom in $t"
  rm -f "$t/etc/apt/sources.list"
  slim_sources >"$t/etc/apt/sources.list.d/debian.sources"
  cp /etc/resolv.conf "$t/etc/resolv.conf"
  # The published image carries the point release plus updates and security fixes.
  with_proc "$t" in_rootfs "$t" 0:0 / /bin/sh -c \
    'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get -y upgrade && apt-get clean && rm -rf /var/lib/apt/lists/*' \
    >"$LOGS/slim-upgrade.log" 2>&1 || {
    tail -n 20 "$LOGS/slim-upgrade.log" >&2
    fail "apt-get update/upgrade against $MIRROR and $SECURITY_MIRROR failed (mirror unreachable?); log: $LOGS/slim-upgrade.log"
  }
}
fingerprint=$(host_fingerprint)
[[ -n $fingerprint ]] || fail "cannot determine the host's library package versions"
slim_key=$(printf '%s\n' "$SUITE" "$MIRROR" "$SECURITY_MIRROR" "$(debootstrap --version)" \
  "$(declare -f build_slim slim_sources rootfs_cmd with_proc)" "$fingerprint" | sha256sum | cut -d' ' -f1)
base_key=$( {
  echo "$slim_key"
  printf '%s\n' "${stage[@]:0:split}"
  declare -f apply copy_in
  for line in "${stage[@]:0:split}"; do
    if [[ $(keyword "$line") == COPY ]]; then
      read -r -a w <<<"$(args_of "$line")"
      for s in "${w[@]:0:${#w[@]}-1}"; do echo "$s"; sha256sum <"$context/$s"; done
    fi
  done
} | sha256sum | cut -d' ' -f1)

# ---------------------------------------------------------------- 1. slim stand-in
if [[ -d $SLIM && $(cat "$work/slim.key" 2>/dev/null) == "$slim_key" ]]; then
  phase "1. bookworm-slim stand-in (cached)"
else
  phase "1. bookworm-slim stand-in: debootstrap + upgrade"
  rm -f "$work/slim.key" "$work/base.key"
  remove_tree "$SLIM.tmp"; remove_tree "$SLIM"
  build_slim "$SLIM.tmp"
  mv "$SLIM.tmp" "$SLIM"
  echo "$slim_key" >"$work/slim.key"
fi

# ---------------------------------------------------------------- 2. cached layers
if [[ -d $BASE && $(cat "$work/base.key" 2>/dev/null) == "$base_key" ]]; then
  phase "2. runtime stage up to COPY --from (cached)"
  for ((i = 0; i < split; i++)); do apply "$BASE" 0 "${stage[$i]}"; done
else
  phase "2. runtime stage up to COPY --from: RUN in chroot"
  rm -f "$work/base.key"
  remove_tree "$BASE.tmp"; remove_tree "$BASE"
  cp -a --reflink=auto "$SLIM" "$BASE.tmp"
  cp /etc/resolv.conf "$BASE.tmp/etc/resolv.conf"
  for ((i = 0; i < split; i++)); do apply "$BASE.tmp" 1 "${stage[$i]}"; done
  mv "$BASE.tmp" "$BASE"
  echo "$base_key" >"$work/base.key"
fi

# ---------------------------------------------------------------- 3. binaries
phase "3. fresh layer on the base, COPY --from (binaries) and the rest"
# A writable overlay keeps the cached base pristine and costs nothing; what this run
# writes (binaries, the store) lands in run.upper/. A full copy where overlayfs cannot.
remove_tree "$RUN"; remove_tree "$work/run.upper"; remove_tree "$work/run.ovl"
mkdir -p "$RUN" "$work/run.upper" "$work/run.ovl"
if mount -t overlay overlay \
     -o "lowerdir=$BASE,upperdir=$work/run.upper,workdir=$work/run.ovl" "$RUN" 2>/dev/null; then
  echo "   overlay on the cached base"
else
  echo "   overlayfs unavailable: copying the base"
  rmdir "$RUN"
  cp -a --reflink=auto "$BASE" "$RUN"
fi
for ((i = split; i < ${#stage[@]}; i++)); do apply "$RUN" 1 "${stage[$i]}"; done
((${#entrypoint[@]})) || fail "runtime stage has no ENTRYPOINT"
server=${entrypoint[0]}
[[ -x $RUN$server ]] || fail "ENTRYPOINT $server is not an executable in the root filesystem"
echo "   entrypoint ${entrypoint[*]}, user $user, workdir $workdir, volumes ${volumes[*]:-none}"

# ---------------------------------------------------------------- 4. packages + libraries
phase "4. packages, libraries and versions"
mapfile -t listed < <(list_packages)
mapfile -t exempt < <(grep -i 'not a library' "$packages" | sed -e 's/#.*//' -e 's/[[:space:]]//g' | grep -v '^$' | sort -u)
root_version() {
  chroot "$RUN" /usr/bin/dpkg-query -W -f='${db:Status-Status} ${Version}' "$1" 2>/dev/null |
    awk '$1 == "installed" { print $2 }'
}
for p in "${listed[@]}"; do
  [[ -n $(root_version "$p") ]] || fail "$p (from $packages) is not installed in the root filesystem"
done
echo "   ${#listed[@]} listed packages installed"
# Every library the binaries load, resolved inside the root filesystem; the ones named in
# their NEEDED entries are what the build linked against.
declare -A lib_paths=() direct_paths=()
for b in "${binaries[@]}"; do
  inside=${installed_bin[$(basename "$b")]:-}
  [[ -n $inside && -f $RUN$inside ]] || fail "$(basename "$b") is not copied into the root filesystem"
  out=$(in_rootfs "$RUN" "$user" / ldd "$inside" 2>&1) || fail "ldd $inside inside the root filesystem failed: $out"
  if grep -q 'not found' <<<"$out"; then
    grep 'not found' <<<"$out" >&2
    fail "ldd $inside inside the root filesystem: libraries not found"
  fi
  while read -r path; do lib_paths[$path]=1; done < <(awk '$2 == "=>" { print $3 } $1 ~ /^\// { print $1 }' <<<"$out")
  while read -r so; do
    path=$(awk -v s="$so" '$1 == s && $2 == "=>" { print $3 }' <<<"$out")
    [[ -n $path ]] || fail "ldd $inside inside the root filesystem does not resolve NEEDED $so"
    direct_paths[$path]=1
  done < <(readelf -d "$RUN$inside" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  echo "   ldd $inside as $user: $(grep -c '=>' <<<"$out") libraries, none missing"
done
# Owners in the root filesystem's dpkg database; with usrmerge dpkg may know a file as
# /lib/... or /usr/lib/..., and a soname link or its target. One dpkg-query call for all.
candidates() {
  local p=$1 real c
  real=$(chroot "$RUN" /usr/bin/readlink -f "$p")
  for c in "$p" "$real"; do
    echo "$c"
    case $c in /usr/*) echo "${c#/usr}" ;; *) echo "/usr$c" ;; esac
  done
}
declare -A owner_of=()  # file -> package
while IFS= read -r line; do
  [[ $line == *": /"* ]] || continue
  pkg=${line%%: /*}; pkg=${pkg%%,*}; pkg=${pkg%%:*}
  owner_of[/${line#*: /}]=$pkg
done < <(for p in "${!lib_paths[@]}"; do candidates "$p"; done | sort -u |
         { chroot "$RUN" /usr/bin/xargs /usr/bin/dpkg-query -S 2>/dev/null || true; })
owner() {
  local c
  for c in $(candidates "$1"); do
    [[ -n ${owner_of[$c]:-} ]] && { echo "${owner_of[$c]}"; return; }
  done
  fail "no package in the root filesystem owns $1"
}
declare -A strict=() loose=()
for p in "${!direct_paths[@]}"; do o=$(owner "$p"); strict[$o]=1; done
for p in "${listed[@]}"; do
  printf '%s\n' "${exempt[@]}" | grep -qxF "$p" || strict[$p]=1
done
for p in "${!lib_paths[@]}"; do
  o=$(owner "$p"); [[ -n ${strict[$o]:-} ]] || loose[$o]=1
done
# Every library in the root filesystem must be the build host's version or a
# newer bookworm update (the image takes the mirror's current packages, and a
# stable point release keeps the ABI), never an older one. Requiring equality
# would make CI fail whenever Debian publishes an update the host lacks.
mismatch=0
newer=()
for p in $(printf '%s\n' "${!strict[@]}" "${!loose[@]}" | sort -u); do
  rv=$(root_version "$p"); hv=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || true)
  [[ $rv == "$hv" ]] && continue
  if [[ -n $rv && -n $hv ]] && dpkg --compare-versions "$rv" gt "$hv"; then
    newer+=("$p $hv -> $rv")
    continue
  fi
  kind="loaded indirectly"; [[ -n ${strict[$p]:-} ]] && kind="linked against"
  echo "FAIL: $p ($kind) is ${rv:-missing} in the root filesystem, ${hv:-not installed} on the build host" >&2
  mismatch=1
done
((mismatch == 0)) ||
  fail "the root filesystem has older or missing libraries than the build host (is the mirror behind it?)"
echo "   ${#strict[@]} linked-against packages (NEEDED owners + listed libraries), ${#loose[@]} loaded indirectly:"
echo "   $((${#strict[@]} + ${#loose[@]} - ${#newer[@]})) equal to the host's versions, ${#newer[@]} newer"
((${#newer[@]} == 0)) || printf '     newer: %s\n' "${newer[@]}"
for p in "${exempt[@]}"; do
  echo "   $p (not a library): $(root_version "$p") in the root filesystem, $(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo none) on the host"
done

# ---------------------------------------------------------------- 5. run the server
phase "5. start ${entrypoint[0]##*/} as $user, health checks"
[[ -n ${env_vars[BLUEPRINT_SYNC_STORE]:-} ]] || fail "the image sets no BLUEPRINT_SYNC_STORE"
store=${env_vars[BLUEPRINT_SYNC_STORE]}
[[ $store == sqlite:/* ]] || fail "the image's store $store is not an absolute sqlite: path"
db=${store#sqlite:}
in_volume=
for v in "${volumes[@]}"; do [[ $db == "$v"/* ]] && in_volume=$v; done
[[ -n $in_volume ]] || fail "the image's SQLite store $db is not on a VOLUME (${volumes[*]:-none})"
uid=${user%%:*} gid=${user#*:}
[[ $uid =~ ^[0-9]+$ && $gid =~ ^[0-9]+$ && $uid -ne 0 ]] || fail "USER $user must be a numeric non-root uid:gid"
[[ $(stat -c %u:%g "$RUN$in_volume") == "$uid:$gid" ]] ||
  fail "$in_volume is owned by $(stat -c %u:%g "$RUN$in_volume"), not $uid:$gid"
[[ ! -e $RUN$db ]] || fail "$db exists before the server ran"
chroot "$RUN" /usr/bin/getent passwd "$uid" >/dev/null || fail "uid $uid has no passwd entry in the image"

mount -t proc proc "$RUN/proc"
log=$LOGS/server.log
# As `docker run IMAGE --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0`: ENTRYPOINT +
# arguments, the image's ENV. Port 0 for metrics too: the host network is shared, so the
# default 0.0.0.0:8087 could be taken.
rootfs_cmd "$RUN" "$user" "$workdir" "${entrypoint[@]}" --listen 127.0.0.1:0 \
  --metrics-listen 127.0.0.1:0
"${ROOTFS_CMD[@]}" >"$log" 2>&1 &
server_pid=$!
address=
for _ in $(seq 300); do
  address=$(sed -n 's/.*"msg":"serving".*"address":"\([^"]*\)".*/\1/p' "$log" | head -n1)
  [[ -n $address ]] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; fail "the server exited before serving"; }
  sleep 0.1
done
[[ -n $address ]] || { cat "$log" >&2; fail "no \"serving\" log line within 30 s"; }
echo "   serving on $address (pid $server_pid)"
status=/proc/$server_pid/status
# chroot and env exec, so the pid is the server's own.
[[ $(readlink "/proc/$server_pid/exe") == "$RUN$server" ]] ||
  fail "pid $server_pid is $(readlink "/proc/$server_pid/exe"), not $RUN$server"
[[ $(readlink "/proc/$server_pid/root") == "$RUN" ]] || fail "the server's root is not $RUN"
read -r -a uids < <(awk '$1 == "Uid:" { print $2, $3, $4, $5 }' "$status")
read -r -a gids < <(awk '$1 == "Gid:" { print $2, $3, $4, $5 }' "$status")
[[ ${uids[*]} == "$uid $uid $uid $uid" ]] || fail "server uids are ${uids[*]}, want $uid"
[[ ${gids[*]} == "$gid $gid $gid $gid" ]] || fail "server gids are ${gids[*]}, want $gid"
groups=$(awk '$1 == "Groups:" { $1 = ""; print }' "$status")
[[ " $groups " != *" 0 "* ]] || fail "server has supplementary group 0"
[[ $(awk '$1 == "CapEff:" { print $2 }' "$status") =~ ^0+$ ]] || fail "server has effective capabilities"
echo "   uid/gid $uid/$gid (all four), groups:${groups:- none}, no capabilities"
for name in "" readiness; do
  out=$(GRPC_DEADLINE_MS=10000 "$node" "$probe" "$address" health "$name" 2>&1) ||
    fail "Health/Check \"$name\" failed: $out"
  [[ $out == '{"status":"SERVING"}' ]] || fail "Health/Check \"$name\" returned $out"
  echo "   Health/Check \"$name\": $out"
done
# The CLI in the image, as `docker exec ... blueprint-sync list` would run it.
if [[ -n ${installed_bin[blueprint-sync]:-} ]]; then
  cli=$(in_rootfs "$RUN" "$user" "$workdir" "${installed_bin[blueprint-sync]}" --server "$address" \
          --output json list 2>&1) || fail "blueprint-sync list inside the root filesystem failed: $cli"
  # An empty ListSyncJobsResponse: -o json prints every field, defaults included, so
  # scripts see the same keys whether or not there are jobs.
  [[ $cli == '{"syncJobs":[],"nextPageToken":""}' ]] || fail "blueprint-sync list on an empty store printed: $cli"
  echo "   blueprint-sync list inside the root filesystem: exit 0, no jobs"
fi

# The Helm chart's h2Guard sidecar runs the image's nghttpx (nghttp2-proxy) as the same
# user in front of the server: it must start from the image with no configuration file
# and pass health checks through.
[[ -x $RUN/usr/sbin/nghttpx ]] ||
  fail "the image has no /usr/sbin/nghttpx (nghttp2-proxy in runtime-packages.txt; the chart's h2Guard runs it)"
guard_port=$("$node" -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => {
  console.log(s.address().port); s.close(); });')
guard_log=$LOGS/h2guard.log
rootfs_cmd "$RUN" "$user" "$workdir" /usr/sbin/nghttpx --conf=/dev/null \
  "--frontend=127.0.0.1,$guard_port;no-tls" "--backend=${address%:*},${address##*:};;proto=h2" \
  --workers=1 --errorlog-file=/dev/stderr
"${ROOTFS_CMD[@]}" >"$guard_log" 2>&1 &
guard_pid=$!
for _ in $(seq 300); do
  grep -q "Listening on 127.0.0.1:$guard_port" "$guard_log" && break
  kill -0 "$guard_pid" 2>/dev/null || { cat "$guard_log" >&2; fail "nghttpx exited before listening"; }
  sleep 0.1
done
grep -q "Listening on 127.0.0.1:$guard_port" "$guard_log" || { cat "$guard_log" >&2; fail "nghttpx did not listen within 30 s"; }
out=$(GRPC_DEADLINE_MS=10000 "$node" "$probe" "127.0.0.1:$guard_port" health readiness 2>&1) ||
  { cat "$guard_log" >&2; fail "Health/Check through nghttpx failed: $out"; }
[[ $out == '{"status":"SERVING"}' ]] || fail "Health/Check through nghttpx returned $out"
echo "   nghttpx $(chroot "$RUN" /usr/bin/dpkg-query -W -f='${Version}' nghttp2-proxy) in front (as $user): Health/Check \"readiness\": $out"
kill -TERM "$guard_pid"
wait "$guard_pid" 2>/dev/null || true
guard_pid=

# ---------------------------------------------------------------- 6. stop
phase "6. SIG$stopsignal and exit"
kill -s "$stopsignal" "$server_pid"
for _ in $(seq 600); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$server_pid" 2>/dev/null && fail "the server did not exit within 60 s of SIG$stopsignal"
rc=0
wait "$server_pid" || rc=$?
server_pid=
umount "$RUN/proc"
((rc == 0)) || { cat "$log" >&2; fail "the server exited with $rc after SIG$stopsignal"; }
grep -q '"msg":"stopped"' "$log" || { cat "$log" >&2; fail "no \"stopped\" log line"; }
echo "   exit 0"
[[ -f $RUN$db ]] || fail "the server wrote no $db in the root filesystem"
[[ $(stat -c %u:%g "$RUN$db") == "$uid:$gid" ]] || fail "$db is owned by $(stat -c %u:%g "$RUN$db")"
[[ $(head -c 15 "$RUN$db") == "SQLite format 3" ]] || fail "$db is not an SQLite database"
echo "   $db: SQLite, owned by $uid:$gid, $(stat -c %s "$RUN$db") bytes"

print_timings
echo "runtime stage check: OK"
