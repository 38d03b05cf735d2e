#!/usr/bin/env bash
# A throwaway OpenAI-compatible model server for tests: llama-cpp-python's server with the
# SmolLM2-135M-Instruct GGUF from the cached venv (llm-venv.sh builds it), loopback only, a
# free port, its own directory. Run as
#   llm.sh start DIR | restart DIR | stop DIR | kill DIR | port DIR | url DIR
# or source it and call llm_start / llm_restart / llm_stop / llm_kill.
# DIR keeps port, pid and llm.log, so a restart reuses the same port (the client's llm.url).

# shellcheck source=llm-venv.sh
. "$(dirname "${BASH_SOURCE[0]}")/llm-venv.sh"

LLM_READY_TIMEOUT_S=${LLM_READY_TIMEOUT_S:-120}

# True once the server lists its models (the model is loaded before it binds).
_llm_ready() {
    "$SVC_PYTHON" - "$1" <<'PY' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:%s/v1/models" % sys.argv[1], timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
}

# Launch on $2 (port); returns 0 when ready, 2 when the port was taken, 1 otherwise.
_llm_launch() {
    local dir=$1 port=$2 model pid i
    model=$(llm_model_path) || return 1
    : >"$dir/llm.log"
    # n_threads 1: the CI machine has 2 cores shared with the broker and the tests.
    "$LLM_VENV/bin/python" -m llama_cpp.server --model "$model" --host 127.0.0.1 \
        --port "$port" --n_ctx 2048 --n_threads "${LLM_THREADS:-1}" \
        --model_alias smollm2-135m-instruct </dev/null >>"$dir/llm.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/pid"
    echo "$port" >"$dir/port"
    for ((i = 0; i < LLM_READY_TIMEOUT_S * 5; i++)); do
        if ! svc_pid_alive "$pid"; then
            grep -q -i 'address already in use' "$dir/llm.log" && return 2
            return 1
        fi
        _llm_ready "$port" && return 0
        sleep 0.2
    done
    svc_stop_pid "$pid" 5 llama_cpp.server
    return 1
}

_llm_fail() {
    local dir=$1 msg=$2
    svc_log "llm: $msg; last lines of $dir/llm.log:"
    tail -n 20 "$dir/llm.log" >&2 || true
    rm -f "$dir/pid"
    return 1
}

# llm_start DIR: a fresh server on a free port. Prints one line with port and time.
llm_start() {
    local dir=$1 start_ms attempt rc port
    [ -f "$LLM_VENV/.complete" ] ||
        { svc_log "llm: no model server venv in $LLM_VENV: run 'make deps' (or tests/services/llm-venv.sh)"; return 1; }
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if svc_pid_alive "$(cat "$dir/pid" 2>/dev/null)"; then
        svc_log "llm: already running in $dir (pid $(cat "$dir/pid"))"
        return 1
    fi
    start_ms=$(svc_now_ms)
    for attempt in 1 2 3; do
        port=$(svc_free_ports 1)
        _llm_launch "$dir" "$port"
        rc=$?
        [ "$rc" -ne 2 ] && break
        svc_log "llm: port $port was taken before the server bound it (attempt $attempt), retrying"
    done
    [ "$rc" -eq 0 ] || { _llm_fail "$dir" "not ready on port $port"; return 1; }
    echo "llm: ready on 127.0.0.1:$port in $(svc_elapsed "$start_ms")s (pid $(cat "$dir/pid"), dir $dir)"
}

# llm_restart DIR: start again on the same port.
llm_restart() {
    local dir=$1 start_ms port
    [ -f "$dir/port" ] || { svc_log "llm: $dir was never started"; return 1; }
    dir=$(cd "$dir" && pwd)
    if svc_pid_alive "$(cat "$dir/pid" 2>/dev/null)"; then
        svc_log "llm: still running in $dir (pid $(cat "$dir/pid")): stop or kill it first"
        return 1
    fi
    port=$(cat "$dir/port")
    start_ms=$(svc_now_ms)
    _llm_launch "$dir" "$port" || { _llm_fail "$dir" "restart on port $port failed"; return 1; }
    echo "llm: restarted on 127.0.0.1:$port in $(svc_elapsed "$start_ms")s (pid $(cat "$dir/pid"))"
}

llm_stop() {
    local dir=$1 pid
    pid=$(cat "$dir/pid" 2>/dev/null) || return 0
    svc_stop_pid "$pid" 10 llama_cpp.server || return 1
    rm -f "$dir/pid"
}

# llm_kill DIR: SIGKILL, as a crash would.
llm_kill() {
    local dir=$1 pid
    pid=$(cat "$dir/pid" 2>/dev/null) || return 0
    kill -KILL "$pid" 2>/dev/null || true
    svc_stop_pid "$pid" 5 llama_cpp.server || return 1
    rm -f "$dir/pid"
}

llm_url() {
    echo "http://127.0.0.1:$(cat "$1/port")/v1/chat/completions"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    [ $# -ge 2 ] || svc_die "usage: $0 start DIR | restart DIR | stop DIR | kill DIR | port DIR | url DIR"
    case "$1" in
    start) llm_start "$2" ;;
    restart) llm_restart "$2" ;;
    stop) llm_stop "$2" ;;
    kill) llm_kill "$2" ;;
    port) cat "$2/port" ;;
    url) llm_url "$2" ;;
    *) svc_die "unknown command '$1'" ;;
    esac
fi
