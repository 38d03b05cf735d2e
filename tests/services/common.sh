# Shared shell helpers for the service scripts and test runners: free loopback ports,
# polling with a deadline, elapsed-time stamps, and process stops by pid (never by name).
# Sourced, not run. Every helper is prefixed `svc_`.

# The jar cache lives outside the clone so CI and later runs reuse it.
SVC_CACHE="${CHURNSTREAM_CACHE:-$HOME/.cache/churnstream}"
SVC_KAFKA_VERSION=3.9.1
SVC_KAFKA_LIBS="$SVC_CACHE/kafka-$SVC_KAFKA_VERSION/libs"
# The pyenv shim in front of python3 costs ~0.4 s per call; the system interpreter is enough
# for the stdlib-only helpers here.
SVC_PYTHON=$(command -v /usr/bin/python3 || command -v python3)

svc_log() { printf '%s\n' "$*" >&2; }
svc_die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# Milliseconds since the epoch (GNU date).
svc_now_ms() { date +%s%3N; }

# Seconds with two decimals between a start stamp (from svc_now_ms) and now.
svc_elapsed() {
    local start_ms=$1 end_ms
    end_ms=$(svc_now_ms)
    awk -v d="$((end_ms - start_ms))" 'BEGIN { printf "%.2f", d / 1000 }'
}

# Print N distinct loopback ports that were free a moment ago. The kernel picks them (bind to
# port 0), so they never collide with each other; a race with another process grabbing one
# before our server binds is still possible, which is why the start functions retry.
svc_free_ports() {
    "$SVC_PYTHON" - "${1:-1}" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
}

# True when something accepts TCP connections on 127.0.0.1:PORT.
svc_port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# True while PID runs. A killed child of the calling shell stays a zombie until reaped and
# still answers kill -0, so read its state from /proc instead.
svc_pid_alive() {
    local st
    [ -n "${1:-}" ] && st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [ "${st%% *}" != Z ]
}

# Stop a process by pid: SIGTERM, wait up to TIMEOUT seconds, then SIGKILL. Returns 0 once
# the process is gone. Works for processes that are not our children (started by another
# shell), so it polls instead of using `wait`.
svc_stop_pid() {
    local pid=$1 timeout_s=${2:-20} what=${3:-process} i
    svc_pid_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout_s * 10; i++)); do
        svc_pid_alive "$pid" || return 0
        sleep 0.1
    done
    svc_log "$what (pid $pid) ignored SIGTERM for ${timeout_s}s: sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        svc_pid_alive "$pid" || return 0
        sleep 0.1
    done
    svc_log "$what (pid $pid) still alive after SIGKILL"
    return 1
}
