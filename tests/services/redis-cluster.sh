#!/usr/bin/env bash
# A throwaway 3-master Redis Cluster for tests: loopback only, free ports, one directory per
# node (nodes.conf, redis.log), no persistence, no replicas. Run as
#   redis-cluster.sh start DIR | stop DIR | ports DIR
# or source it and call redis_cluster_start / redis_cluster_stop.
# DIR keeps `ports` (one line, space separated), `port` (the first node: the seed a client is
# given), `pids`, and node-<port>/ per node. Stops are by pid (svc_stop_pid), never by name.

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

REDIS_CLUSTER_READY_TIMEOUT_S=${REDIS_CLUSTER_READY_TIMEOUT_S:-20}
REDIS_CLUSTER_NODES=${REDIS_CLUSTER_NODES:-3}

# Launch one node on PORT (cluster bus on BUSPORT, given explicitly: the default PORT+10000
# may be taken or above 65535) in DIR/node-PORT; echo its pid. Does not wait. A master that
# a reshard empties stays a master (no replica migration), so tests can move slots back.
_redis_cluster_node() {
    local dir=$1 port=$2 bus=$3 nd="$1/node-$2"
    mkdir -p "$nd"
    redis-server --port "$port" --cluster-port "$bus" --bind 127.0.0.1 --dir "$nd" \
        --daemonize no --logfile "" --save "" --appendonly no --cluster-enabled yes \
        --cluster-config-file nodes.conf --cluster-node-timeout 5000 \
        --cluster-allow-replica-migration no \
        </dev/null >>"$nd/redis.log" 2>&1 &
    echo $!
}

# True when every node answers PING; 2 when one of PIDS died (a port taken meanwhile).
_redis_cluster_all_ping() {
    local p
    for p in $2; do
        svc_pid_alive "$p" || return 2
    done
    for p in $1; do
        [ "$(redis-cli -h 127.0.0.1 -p "$p" ping 2>/dev/null)" = PONG ] || return 1
    done
}

# True when every node reports cluster_state:ok and knows all 16384 slots.
_redis_cluster_all_ok() {
    local p info
    for p in $1; do
        info=$(redis-cli -h 127.0.0.1 -p "$p" cluster info 2>/dev/null) || return 1
        case "$info" in *cluster_state:ok*) ;; *) return 1 ;; esac
        case "$info" in *cluster_slots_ok:16384*) ;; *) return 1 ;; esac
    done
}

# redis_cluster_start DIR: nodes on free ports, `redis-cli --cluster create`, wait for
# cluster_state:ok on every node. Prints one line with the ports and the time taken.
redis_cluster_start() {
    local dir=$1 start_ms ports all p pids="" i rc hosts=() n=$REDIS_CLUSTER_NODES
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ -f "$dir/pids" ]; then
        for p in $(cat "$dir/pids"); do
            svc_pid_alive "$p" && { svc_log "redis-cluster: already running in $dir"; return 1; }
        done
    fi
    start_ms=$(svc_now_ms)
    all=($(svc_free_ports $((2 * n))))
    ports="${all[*]:0:n}"
    for ((i = 0; i < n; i++)); do
        p=${all[i]}
        pids="$pids $(_redis_cluster_node "$dir" "$p" "${all[n + i]}")"
        hosts+=("127.0.0.1:$p")
    done
    echo "${pids# }" >"$dir/pids"
    echo "$ports" >"$dir/ports"
    echo "${ports%% *}" >"$dir/port"
    for ((i = 0; i < REDIS_CLUSTER_READY_TIMEOUT_S * 20; i++)); do
        _redis_cluster_all_ping "$ports" "$pids"
        rc=$?
        [ "$rc" -ne 1 ] && break
        sleep 0.05
    done
    [ "$rc" -eq 0 ] || {
        _redis_cluster_fail "$dir" "nodes not answering on ports $ports"
        return 1
    }
    redis-cli --cluster create "${hosts[@]}" --cluster-replicas 0 --cluster-yes \
        >"$dir/create.log" 2>&1 || {
        _redis_cluster_fail "$dir" "redis-cli --cluster create failed (see $dir/create.log)"
        return 1
    }
    for ((i = 0; i < REDIS_CLUSTER_READY_TIMEOUT_S * 20; i++)); do
        _redis_cluster_all_ok "$ports" && break
        sleep 0.05
    done
    _redis_cluster_all_ok "$ports" || {
        _redis_cluster_fail "$dir" "cluster_state never became ok"
        return 1
    }
    echo "redis-cluster: ready on 127.0.0.1 ports $ports in $(svc_elapsed "$start_ms")s (pids $(cat "$dir/pids"), dir $dir)"
}

_redis_cluster_fail() {
    local dir=$1 msg=$2 nd
    svc_log "redis-cluster: $msg"
    for nd in "$dir"/node-*; do
        [ -f "$nd/redis.log" ] && { svc_log "--- $nd/redis.log"; tail -n 5 "$nd/redis.log" >&2; }
    done
    redis_cluster_stop "$dir"
    return 1
}

# redis_cluster_stop DIR: SIGTERM each node by pid (SIGKILL after 10 s).
redis_cluster_stop() {
    local dir=$1 p rc=0
    [ -f "$dir/pids" ] || return 0
    for p in $(cat "$dir/pids"); do
        svc_stop_pid "$p" 10 redis-server || rc=1
    done
    [ "$rc" -eq 0 ] && rm -f "$dir/pids"
    return "$rc"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    cmd=${1:-}
    [ $# -ge 2 ] || svc_die "usage: $0 start DIR | stop DIR | ports DIR"
    case "$cmd" in
    start) redis_cluster_start "$2" ;;
    stop) redis_cluster_stop "$2" ;;
    ports) cat "$2/ports" ;;
    *) svc_die "unknown command '$cmd'" ;;
    esac
fi
