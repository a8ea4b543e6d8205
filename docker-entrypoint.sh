#!/bin/sh
# "operator" (the default), "runtime" or "gateway" (the send API): which process this container runs; further arguments go to node.
# Anything else is run as given (e.g. `docker run IMAGE node -e ...`), as the official Node images do.
set -e

# The operator's V8 heap, sized from the container's memory limit: left alone, V8 grows its heap far past
# the live objects (10,000 accounts: 91 MB live, 340 MB reserved, measured), and the pod's RSS with it. Half
# the limit for the old space; semi-spaces of a thirty-second of the limit, between 4 and 16 MiB (V8's default
# maximum). Smaller ones save a little RSS and cost CPU: with 4 MiB under the chart's 512 Mi, 10,000 accounts
# converged in 2-24 MB less RSS, but garbage collection took a fifth of the operator's busy time and the
# operator 12-26 % more CPU, which a shared machine's API server loses (docs/benchmarks.md, session 19).
# NODE_OPTIONS that set a size win.
operator_heap_options() {
  case " ${NODE_OPTIONS:-} " in *--max-old-space-size*) return 0 ;; esac
  limit=$(cat "${CGROUP_MEMORY_MAX:-/sys/fs/cgroup/memory.max}" 2>/dev/null ||
    cat "${CGROUP_V1_MEMORY_LIMIT:-/sys/fs/cgroup/memory/memory.limit_in_bytes}" 2>/dev/null || true)
  case "$limit" in '' | max | *[!0-9]*) return 0 ;; esac
  mib=$((limit / 1048576))
  # cgroup v1 reports "no limit" as a number near 2^63; anything above 1 TiB is no limit.
  [ "$mib" -gt 0 ] && [ "$mib" -lt 1048576 ] || return 0
  semi=$((mib / 32))
  [ "$semi" -ge 4 ] || semi=4
  [ "$semi" -le 16 ] || semi=16
  NODE_OPTIONS="--max-old-space-size=$((mib / 2)) --max-semi-space-size=$semi${NODE_OPTIONS:+ $NODE_OPTIONS}"
  export NODE_OPTIONS
}

# At most two glibc malloc arenas per process. By default glibc gives each thread that meets a busy lock an
# arena of its own, up to eight per core, and hands little of their freed memory back: with TDLib's threads,
# libuv's pool and many TLS connections, RSS kept climbing in 15-minute soaks while V8's heap did not; two
# arenas halved the runtimes' RSS growth (docs/benchmarks.md, session 11). A value the user sets wins.
: "${MALLOC_ARENA_MAX:=2}"
export MALLOC_ARENA_MAX

case "${1:-operator}" in
  operator)
    [ "$#" -gt 0 ] && shift
    operator_heap_options
    exec node "${APP_DIR:-/app}/dist/operator/main.js" "$@"
    ;;
  runtime)
    shift
    exec node "${APP_DIR:-/app}/dist/runtime/main.js" "$@"
    ;;
  gateway)
    shift
    exec node "${APP_DIR:-/app}/dist/operator/gateway/main.js" "$@"
    ;;
  *) exec "$@" ;;
esac
