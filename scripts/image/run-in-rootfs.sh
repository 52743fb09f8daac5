#!/usr/bin/env bash
# Run a command inside an unpacked image root filesystem much as a container runtime would: in
# mount and PID namespaces of its own (every mount and every process it starts ends with it, even
# on a crash), with /proc, a minimal /dev, a tmpfs on /tmp, the image's environment only, and
# optionally a read-only root and a non-root user. The command is PID 1 in there, as in a
# container without an init. It shares the host's network. Needs root.
#
# usage: run-in-rootfs.sh [options] ROOT [--] COMMAND [ARG...]
#   --ro                    mount the root filesystem read-only (readOnlyRootFilesystem: true)
#   --user UID:GID          run as this user and group (default: root)
#   --workdir DIR           working directory inside (default: /)
#   --env NAME=VALUE        environment variable (repeatable; nothing else is passed in)
#   --tmpfs PATH[:OPTIONS]  a tmpfs at PATH, e.g. /data:uid=65532,gid=65532 (repeatable)
#   --bind SRC:DST[:ro]     bind-mount a host path at DST (repeatable)
# Used by build.sh (pip inside the image's root) and tests/image (the in-image smoke).
set -euo pipefail
die() { echo "run-in-rootfs.sh: $*" >&2; exit 125; }

RO=0 USERSPEC= WORKDIR=/ ENVS=() TMPFS=() BINDS=()
while (($#)); do
  case $1 in
    --ro) RO=1; shift ;;
    --user) USERSPEC=${2:?}; shift 2 ;;
    --workdir) WORKDIR=${2:?}; shift 2 ;;
    --env) ENVS+=("${2:?}"); shift 2 ;;
    --tmpfs) TMPFS+=("${2:?}"); shift 2 ;;
    --bind) BINDS+=("${2:?}"); shift 2 ;;
    --) shift; break ;;
    -*) die "unknown option $1" ;;
    *) break ;;
  esac
done
(($# >= 2)) || die "usage: run-in-rootfs.sh [options] ROOT [--] COMMAND [ARG...]"
ROOT=$(cd "$1" && pwd) || die "no such directory: $1"
shift
[[ ${1:-} == -- ]] && shift
(($#)) || die "no command given"
[[ $(id -u) == 0 ]] || die "needs root (mount and PID namespaces, chroot)"
[[ -d $ROOT/proc && -d $ROOT/dev && -d $ROOT/tmp && -x $ROOT/usr/bin/env ]] ||
  die "$ROOT does not look like a root filesystem (needs /proc, /dev, /tmp, /usr/bin/env)"

if [[ -z ${_RUN_IN_ROOTFS_INNER:-} ]]; then
  # Re-run this script as PID 1 of fresh namespaces; the mounts below exist only in there.
  export _RUN_IN_ROOTFS_INNER=1
  opts=()
  ((RO)) && opts+=(--ro)
  [[ -n $USERSPEC ]] && opts+=(--user "$USERSPEC")
  for e in "${ENVS[@]}"; do opts+=(--env "$e"); done
  for t in "${TMPFS[@]}"; do opts+=(--tmpfs "$t"); done
  for b in "${BINDS[@]}"; do opts+=(--bind "$b"); done
  exec unshare --mount --pid --fork --propagation private -- \
    "${BASH_SOURCE[0]}" "${opts[@]}" --workdir "$WORKDIR" "$ROOT" -- "$@"
fi
unset _RUN_IN_ROOTFS_INNER

# A mount of its own, so that it can be made read-only without touching the directory outside.
mount --bind "$ROOT" "$ROOT"
mount -t proc -o nosuid,nodev,noexec proc "$ROOT/proc"
mount -t tmpfs -o nosuid,mode=0755,size=1m tmpfs "$ROOT/dev"
for node in null zero full random urandom tty; do
  : >"$ROOT/dev/$node"
  mount --bind "/dev/$node" "$ROOT/dev/$node"
done
ln -s /proc/self/fd "$ROOT/dev/fd"
ln -s /proc/self/fd/0 "$ROOT/dev/stdin"
ln -s /proc/self/fd/1 "$ROOT/dev/stdout"
ln -s /proc/self/fd/2 "$ROOT/dev/stderr"
mkdir "$ROOT/dev/shm"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$ROOT/dev/shm"
tmp_done=0
for t in "${TMPFS[@]}"; do [[ ${t%%:*} == /tmp ]] && tmp_done=1; done
for b in "${BINDS[@]}"; do [[ $(cut -d: -f2 <<<"$b") == /tmp ]] && tmp_done=1; done
((tmp_done)) || TMPFS=("/tmp:mode=1777" "${TMPFS[@]}")
for t in "${TMPFS[@]}"; do
  path=${t%%:*} options=nosuid,nodev
  [[ $t == *:* ]] && options+=",${t#*:}"
  [[ -d $ROOT$path ]] || die "tmpfs mount point $path does not exist in the image"
  mount -t tmpfs -o "$options" tmpfs "$ROOT$path"
done
for b in "${BINDS[@]}"; do
  IFS=: read -r src dst mode <<<"$b"
  # A missing mount point is made, as runtimes do (the root is still writable here).
  if [[ ! -e $ROOT$dst ]]; then
    if [[ -d $src ]]; then mkdir -p "$ROOT$dst"; else mkdir -p "$(dirname "$ROOT$dst")"; : >"$ROOT$dst"; fi
  fi
  mount --bind "$src" "$ROOT$dst"
  [[ $mode == ro ]] && mount -o remount,bind,ro "$ROOT$dst"
done
# Last, so that the mount points above could still be prepared on it.
((RO)) && mount -o remount,bind,ro "$ROOT"

exec chroot ${USERSPEC:+--userspec="$USERSPEC"} "$ROOT" \
  /usr/bin/env -i --chdir="$WORKDIR" "${ENVS[@]}" "$@"
