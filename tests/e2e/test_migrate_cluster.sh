#!/usr/bin/env bash
# `churnstream migrate` from a single-node store to the Redis Cluster layout: a single-node
# `run` consumes a 4-partition topic of the real broker; `migrate` copies its store into
# the 3-master cluster; then the cluster holds every user's record equal to an uninterrupted
# replay of the events and the topic's end offsets (eo_tool verify, EO_REDIS_CLUSTER=1), the
# same model bytes, and a cluster-mode `run` resumes every partition from the migrated
# offsets (nothing read twice). Needs CS_BIN, CS_ROOT, CS_KAFKA_BROKERS, CS_REDIS_PORT,
# CS_REDIS_CLUSTER_PORT (tests/run-all.sh sets them).
set -euo pipefail
: "${CS_BIN:?}" "${CS_ROOT:?}" "${CS_KAFKA_BROKERS:?set by tests/run-all.sh}" "${CS_REDIS_PORT:?}"
: "${CS_REDIS_CLUSTER_PORT:?set by tests/run-all.sh (tests/services/redis-cluster.sh)}"

B=$CS_KAFKA_BROKERS
SEED_PORT=$CS_REDIS_CLUSTER_PORT
tmp=$(mktemp -d "${CS_TMP:-/tmp}/migrate-cluster.XXXXXX")
run_pid=""
keep=0
cleanup() {
    [ -n "$run_pid" ] && kill -KILL "$run_pid" 2>/dev/null || true
    if [ "$keep" -eq 1 ]; then echo "(logs kept in $tmp)"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
die() {
    keep=1
    echo "FAIL: $*" >&2
    exit 1
}
t_start=$(date +%s%3N)
make -C "$CS_ROOT" --no-print-directory build/tests/tools/eo_tool >"$tmp/make.out" 2>&1 ||
    { cat "$tmp/make.out"; die "cannot build build/tests/tools/eo_tool"; }
EO=$CS_ROOT/build/tests/tools/eo_tool
topic="mig-$$-$RANDOM"
prefix="mig$$:"
"$EO" create-topic "$B" "$topic" 4 || die "cannot create topic $topic"
"$CS_BIN" gen --users 500 --days 45 --seed 23 --out "$tmp/events.avro" --quiet 2>/dev/null
"$CS_BIN" gen --users 500 --days 45 --seed 23 --topic "$topic" --kafka.bootstrap.servers="$B" \
    --quiet 2>/dev/null || die "gen to $topic failed"
echo "topic $topic: $("$EO" end-offsets "$B" "$topic") events on 4 partitions"

# run NAME REDIS_PORT CLUSTER: one daemon in the background.
run() {
    "$CS_BIN" run --kafka.bootstrap.servers="$B" --topic.events="$topic" --topic.dlq="$topic.dlq" \
        --topic.alerts="$topic.alerts" --kafka.group.id="g-$1-$topic" --state.prefix="$prefix" \
        --redis.port="$2" --redis.cluster="$3" --metrics.port=0 --tick.idle_advance=1h \
        >>"$tmp/$1.log" 2>&1 &
    run_pid=$!
}
stop() {
    local rc=0
    kill -TERM "$run_pid"
    wait "$run_pid" || rc=$?
    run_pid=""
    [ "$rc" -eq 0 ] || die "churnstream run exited $rc after SIGTERM"
}

# 1. single node: consume everything
run single "$CS_REDIS_PORT" false
"$EO" wait-offsets "$B" "$topic" 127.0.0.1 "$CS_REDIS_PORT" "$prefix" 60 >/dev/null ||
    die "the single-node run never caught up"
stop

# 2. migrate to the cluster
"$CS_BIN" migrate --from "127.0.0.1:$CS_REDIS_PORT" --redis.cluster=true \
    --redis.port="$SEED_PORT" --state.prefix="$prefix" | tee "$tmp/migrate.out" ||
    die "churnstream migrate failed"
grep -q "4 partitions" "$tmp/migrate.out" || die "migrate did not copy 4 partitions"

# 3. the cluster holds the replay's state, the offsets and the same model
EO_REDIS_CLUSTER=1 "$EO" verify "$tmp/events.avro" "$B" "$topic" 127.0.0.1 "$SEED_PORT" "$prefix" ||
    die "the migrated state differs from the replay"
m1=$(redis-cli -p "$CS_REDIS_PORT" GET "${prefix}model" | md5sum)
m2=$(redis-cli -c -p "$SEED_PORT" GET "${prefix}{model}:model" | md5sum)
[ "$m1" = "$m2" ] || die "the model in the cluster differs from the single node's"

# 4. a cluster-mode run resumes every partition from the migrated offsets
run cluster "$SEED_PORT" true
for ((i = 0; i < 200; i++)); do
    [ "$(grep -c 'from stored offset' "$tmp/cluster.log" || true)" -ge 4 ] && break
    sleep 0.05
done
stop
[ "$(grep -c 'from stored offset' "$tmp/cluster.log" || true)" -ge 4 ] ||
    die "the cluster-mode run did not resume all 4 partitions from stored offsets"
EO_REDIS_CLUSTER=1 "$EO" verify "$tmp/events.avro" "$B" "$topic" 127.0.0.1 "$SEED_PORT" "$prefix" \
    >/dev/null || die "the state changed after the cluster-mode run resumed"
echo "test_migrate_cluster: ok in $(($(date +%s%3N) - t_start)) ms"
