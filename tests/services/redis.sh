#!/usr/bin/env bash
# A throwaway redis-server for tests: loopback only, a free port, its own directory, no RDB
# snapshots; optionally AOF with fsync every second (crash tests). Run as
#   redis.sh start DIR [--aof] | restart DIR | stop DIR | kill DIR | port DIR
# or source it and call redis_start / redis_restart / redis_stop / redis_kill.
# DIR keeps port, pid, mode and redis.log, so a restart reuses the same port and data.

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

REDIS_READY_TIMEOUT_S=${REDIS_READY_TIMEOUT_S:-10}

# Launch on $1 (port) with the mode stored in DIR and wait for PONG.
# Returns 0 when ready, 2 when the port was taken (caller may pick another), 1 otherwise.
_redis_launch() {
    local dir=$1 port=$2 mode pid i
    mode=$(cat "$dir/mode")
    local persist=(--save "" --appendonly no)
    if [ "$mode" = aof ]; then
        persist=(--save "" --appendonly yes --appendfsync everysec)
    fi
    : >"$dir/redis.log"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize no \
        --logfile "" "${persist[@]}" </dev/null >>"$dir/redis.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/pid"
    echo "$port" >"$dir/port"
    for ((i = 0; i < REDIS_READY_TIMEOUT_S * 20; i++)); do
        if ! svc_pid_alive "$pid"; then
            grep -q 'Address already in use' "$dir/redis.log" && return 2
            return 1
        fi
        [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ] && return 0
        sleep 0.05
    done
    svc_stop_pid "$pid" 5 redis-server
    return 1
}

_redis_fail() {
    local dir=$1 msg=$2
    svc_log "redis: $msg; last lines of $dir/redis.log:"
    tail -n 20 "$dir/redis.log" >&2 || true
    rm -f "$dir/pid"
    return 1
}

# redis_start DIR [--aof]: fresh server on a free port. Prints one line with port and time.
redis_start() {
    local dir=$1 mode=none start_ms attempt rc port
    [ "${2:-}" = --aof ] && mode=aof
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if svc_pid_alive "$(cat "$dir/pid" 2>/dev/null)"; then
        svc_log "redis: already running in $dir (pid $(cat "$dir/pid"))"
        return 1
    fi
    echo "$mode" >"$dir/mode"
    start_ms=$(svc_now_ms)
    for attempt in 1 2 3; do
        port=$(svc_free_ports 1)
        _redis_launch "$dir" "$port"
        rc=$?
        [ "$rc" -ne 2 ] && break
        svc_log "redis: port $port was taken before redis bound it (attempt $attempt), retrying"
    done
    [ "$rc" -eq 0 ] || { _redis_fail "$dir" "not ready on port $port"; return 1; }
    echo "redis: ready on 127.0.0.1:$port in $(svc_elapsed "$start_ms")s (pid $(cat "$dir/pid"), mode $mode, dir $dir)"
}

# redis_restart DIR: start again on the same port and directory with the same mode; with AOF
# the data written before a stop or kill is reloaded.
redis_restart() {
    local dir=$1 start_ms port
    [ -f "$dir/port" ] && [ -f "$dir/mode" ] || { svc_log "redis: $dir was never started"; return 1; }
    dir=$(cd "$dir" && pwd)
    if svc_pid_alive "$(cat "$dir/pid" 2>/dev/null)"; then
        svc_log "redis: still running in $dir (pid $(cat "$dir/pid")): stop or kill it first"
        return 1
    fi
    port=$(cat "$dir/port")
    start_ms=$(svc_now_ms)
    _redis_launch "$dir" "$port" || { _redis_fail "$dir" "restart on port $port failed"; return 1; }
    echo "redis: restarted on 127.0.0.1:$port in $(svc_elapsed "$start_ms")s (pid $(cat "$dir/pid"), mode $(cat "$dir/mode"))"
}

# redis_stop DIR: SIGTERM (redis flushes the AOF on a clean shutdown), SIGKILL after 10 s.
redis_stop() {
    local dir=$1 pid
    pid=$(cat "$dir/pid" 2>/dev/null) || return 0
    svc_stop_pid "$pid" 10 redis-server || return 1
    rm -f "$dir/pid"
}

# redis_kill DIR: SIGKILL, as a crash would.
redis_kill() {
    local dir=$1 pid
    pid=$(cat "$dir/pid" 2>/dev/null) || return 0
    kill -KILL "$pid" 2>/dev/null || true
    svc_stop_pid "$pid" 5 redis-server || return 1
    rm -f "$dir/pid"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    cmd=${1:-}
    [ $# -ge 2 ] || svc_die "usage: $0 start DIR [--aof] | restart DIR | stop DIR | kill DIR | port DIR"
    case "$cmd" in
    start) redis_start "$2" "${3:-}" ;;
    restart) redis_restart "$2" ;;
    stop) redis_stop "$2" ;;
    kill) redis_kill "$2" ;;
    port) cat "$2/port" ;;
    *) svc_die "unknown command '$cmd'" ;;
    esac
fi
