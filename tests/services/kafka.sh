#!/usr/bin/env bash
# A throwaway single-node Apache Kafka 3.9 broker (KRaft, broker+controller in one JVM) for
# tests, from the jars `make deps` caches. Loopback only, free ports, its own directory.
#   kafka.sh start DIR | restart DIR | stop DIR | kill DIR | port DIR
# or source it and call kafka_start / kafka_restart / kafka_stop / kafka_kill.
# DIR keeps server.properties, data/, broker.log, pid, port and controller_port.
# Log levels: simplelogger.properties beside this script.

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

KAFKA_READY_TIMEOUT_S=${KAFKA_READY_TIMEOUT_S:-60}
# A small heap: the machine has 2 cores and the tests move little data.
KAFKA_JAVA_OPTS=${KAFKA_JAVA_OPTS:--Xmx512m -Xms256m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true}
_KAFKA_SERVICES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# A class-data-sharing archive of the broker's classes roughly halves JVM start time (about
# 4 s instead of 8 s on a busy 2-core machine). The first broker that finds none records
# one when it exits (-XX:ArchiveClassesAtExit) and kafka_stop moves it into the cache. It is
# keyed by the java binary, since an archive only loads into the JVM build that wrote it.
# KAFKA_CDS=0 turns it off.
_kafka_cds_archive() {
    local java_bin key
    java_bin=$(readlink -f "$(command -v java)")
    key=$(printf '%s %s' "$java_bin" "$(stat -c %Y "$java_bin")" | cksum | cut -d' ' -f1)
    echo "$SVC_CACHE/kafka-$SVC_KAFKA_VERSION/broker-$key.jsa"
}

# The broker's log settings as -D flags (slf4j-simple reads system properties), so that the
# classpath holds only the cached jars: CDS refuses non-empty directories on it.
_kafka_log_flags() {
    grep -E '^[a-zA-Z].*=' "$_KAFKA_SERVICES_DIR/simplelogger.properties" | sed 's/^/-D/'
}

# _kafka_java DIR tool|broker CLASS ARGS...: run java with the cached jars. `exec` so that
# `_kafka_java ... &` leaves $! as the JVM's own pid, not a subshell's: stopping by pid must
# reach the broker itself.
_kafka_java() {
    local dir=$1 role=$2 archive cds=()
    shift 2
    archive=$(_kafka_cds_archive)
    if [ "${KAFKA_CDS:-1}" = 0 ]; then
        : # class sharing off, e.g. to rule it out while debugging a broker
    elif [ -f "$archive" ]; then
        cds=(-XX:SharedArchiveFile="$archive" -Xlog:cds=error)
    elif [ "$role" = broker ]; then
        cds=(-XX:ArchiveClassesAtExit="$dir/broker.jsa" -Xlog:cds=error)
    fi
    # shellcheck disable=SC2086,SC2046 # word lists: JVM options, log flags
    exec java $KAFKA_JAVA_OPTS $(_kafka_log_flags) "${cds[@]}" -cp "$SVC_KAFKA_LIBS/*" "$@"
}

# After the broker exited: publish the archive it recorded, if the cache still has none.
# Copy then rename, so a concurrent reader never sees half a file.
_kafka_cds_publish() {
    local dir=$1 archive
    archive=$(_kafka_cds_archive)
    [ -s "$dir/broker.jsa" ] || return 0
    if [ ! -f "$archive" ] && cp "$dir/broker.jsa" "$archive.tmp.$$" 2>/dev/null; then
        mv -f "$archive.tmp.$$" "$archive"
    fi
    rm -f "$dir/broker.jsa" "$archive.tmp.$$"
}

_kafka_write_properties() {
    local dir=$1 bport=$2 cport=$3
    # log.flush.* stay at Kafka's defaults (flush left to the OS): durability in tests comes
    # from the single replica's page cache, like a default production broker.
    cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$bport,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$bport
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=4
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
# Tests produce events stamped with their (historical) event time (gen --event-timestamps):
# time-based retention would delete those segments at its next check. Keep everything.
log.retention.ms=-1
PROPS
    echo "$bport" >"$dir/port"
    echo "$cport" >"$dir/controller_port"
}

# Kafka's cluster id: 16 random bytes, URL-safe base64 without padding, not starting with
# '-' (what StorageTool random-uuid prints), made here to save a JVM start.
_kafka_cluster_id() {
    "$SVC_PYTHON" -c '
import base64, os
while True:
    s = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break'
}

_kafka_format() {
    local dir=$1
    rm -rf "$dir/data"
    (_kafka_java "$dir" tool kafka.tools.StorageTool format -t "$(_kafka_cluster_id)" \
        -c "$dir/server.properties") >"$dir/format.log" 2>&1 || {
        svc_log "kafka: storage format failed:"
        tail -n 20 "$dir/format.log" >&2
        return 1
    }
}

# Start the JVM and wait until kcat sees the broker in the metadata.
# Returns 0 when ready, 2 when a port was taken (caller may pick others), 1 otherwise.
_kafka_launch() {
    local dir=$1 bport pid deadline_ms
    bport=$(cat "$dir/port")
    _kafka_java "$dir" broker kafka.Kafka "$dir/server.properties" </dev/null >>"$dir/broker.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/pid"
    deadline_ms=$(($(svc_now_ms) + KAFKA_READY_TIMEOUT_S * 1000))
    while [ "$(svc_now_ms)" -lt "$deadline_ms" ]; do
        if ! svc_pid_alive "$pid"; then
            grep -q -E 'BindException|Address already in use' "$dir/broker.log" && return 2
            return 1
        fi
        # Probe the port first: a JVM still starting refuses connections and kcat would
        # spend its whole metadata timeout on it.
        if svc_port_open "$bport" &&
            kcat -b "127.0.0.1:$bport" -L -m 2 2>/dev/null | grep -q "broker 1 at 127.0.0.1:$bport"; then
            return 0
        fi
        sleep 0.2
    done
    svc_stop_pid "$pid" 20 kafka
    return 1
}

_kafka_fail() {
    local dir=$1 msg=$2
    svc_log "kafka: $msg; last lines of $dir/broker.log:"
    tail -n 40 "$dir/broker.log" >&2 || true
    rm -f "$dir/pid"
    return 1
}

_kafka_check_jars() {
    [ -f "$SVC_CACHE/kafka-$SVC_KAFKA_VERSION/.complete" ] || {
        svc_log "kafka: broker jars missing in $SVC_KAFKA_LIBS: run 'make deps'"
        return 1
    }
    command -v java >/dev/null && command -v kcat >/dev/null || {
        svc_log "kafka: java or kcat missing: run 'make deps'"
        return 1
    }
}

# kafka_start DIR: format a fresh log dir and start on free ports. Prints port and time.
kafka_start() {
    local dir=$1 start_ms attempt rc ports
    _kafka_check_jars || return 1
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if svc_pid_alive "$(cat "$dir/pid" 2>/dev/null)"; then
        svc_log "kafka: already running in $dir (pid $(cat "$dir/pid"))"
        return 1
    fi
    start_ms=$(svc_now_ms)
    for attempt in 1 2 3; do
        ports=$(svc_free_ports 2)
        # shellcheck disable=SC2086 # two words: broker port, controller port
        _kafka_write_properties "$dir" $ports
        : >"$dir/broker.log"
        _kafka_format "$dir" || return 1
        _kafka_launch "$dir"
        rc=$?
        [ "$rc" -ne 2 ] && break
        svc_log "kafka: ports $ports were taken before the broker bound them (attempt $attempt), retrying"
    done
    [ "$rc" -eq 0 ] || {
        _kafka_fail "$dir" "broker not ready on 127.0.0.1:$(cat "$dir/port") within ${KAFKA_READY_TIMEOUT_S}s"
        return 1
    }
    echo "kafka: ready on 127.0.0.1:$(cat "$dir/port") in $(svc_elapsed "$start_ms")s (pid $(cat "$dir/pid"), dir $dir)"
}

# kafka_restart DIR: start again on the same ports with the same log dir (after stop or kill).
kafka_restart() {
    local dir=$1 start_ms rc
    _kafka_check_jars || return 1
    [ -f "$dir/server.properties" ] || { svc_log "kafka: $dir was never started"; return 1; }
    dir=$(cd "$dir" && pwd)
    if svc_pid_alive "$(cat "$dir/pid" 2>/dev/null)"; then
        svc_log "kafka: still running in $dir (pid $(cat "$dir/pid")): stop or kill it first"
        return 1
    fi
    start_ms=$(svc_now_ms)
    _kafka_launch "$dir" || { _kafka_fail "$dir" "restart on 127.0.0.1:$(cat "$dir/port") failed"; return 1; }
    echo "kafka: restarted on 127.0.0.1:$(cat "$dir/port") in $(svc_elapsed "$start_ms")s (pid $(cat "$dir/pid"))"
}

# kafka_stop DIR: SIGTERM (controlled shutdown), SIGKILL after 20 s.
kafka_stop() {
    local dir=$1 pid
    pid=$(cat "$dir/pid" 2>/dev/null) || return 0
    svc_stop_pid "$pid" 20 kafka || return 1
    rm -f "$dir/pid"
    _kafka_cds_publish "$dir"
}

# kafka_kill DIR: SIGKILL, as a crash would.
kafka_kill() {
    local dir=$1 pid
    pid=$(cat "$dir/pid" 2>/dev/null) || return 0
    kill -KILL "$pid" 2>/dev/null || true
    svc_stop_pid "$pid" 5 kafka || return 1
    rm -f "$dir/pid"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    [ $# -ge 2 ] || svc_die "usage: $0 start DIR | restart DIR | stop DIR | kill DIR | port DIR"
    case "$1" in
    start) kafka_start "$2" ;;
    restart) kafka_restart "$2" ;;
    stop) kafka_stop "$2" ;;
    kill) kafka_kill "$2" ;;
    port) cat "$2/port" ;;
    *) svc_die "unknown command '$1'" ;;
    esac
fi
