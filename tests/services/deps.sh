#!/usr/bin/env bash
# `make deps`: installs what the build and the tests need, and only what is missing:
# Debian packages (apt), the Kafka broker jars (Maven, cached outside the clone), the
# Python test packages (pip) and the test model server's venv (llm-venv.sh, cached).
# Idempotent; prints one line per step, more when it installs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=common.sh
. "$ROOT/tests/services/common.sh"

APT_PACKAGES=(
    build-essential pkg-config librdkafka-dev libavro-dev libhiredis-dev libopenblas-dev
    libcmocka-dev libmicrohttpd-dev zlib1g-dev libcurl4-openssl-dev libjansson-dev
    python3-venv cmake redis-server kcat openjdk-17-jre-headless
    maven python3 python3-pip clang libclang-rt-14-dev valgrind clang-format
)
# Import names of tests/requirements.txt, for the quick "already installed" check.
PY_IMPORTS=(fastavro yaml pytest numpy pandas sklearn scipy avro)

sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

deps_apt() {
    local pkg missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$pkg")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "deps: apt: all ${#APT_PACKAGES[@]} packages present"
        return
    fi
    echo "deps: apt: installing ${missing[*]}"
    sudo_if_needed apt-get update -q
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        "${missing[@]}"
    for pkg in "${missing[@]}"; do
        echo "deps: apt: installed $pkg $(dpkg-query -W -f='${Version}' "$pkg")"
    done
}

deps_kafka_jars() {
    local dest marker start_ms tmp
    dest="$SVC_CACHE/kafka-$SVC_KAFKA_VERSION"
    marker="$dest/.complete"
    if [ -f "$marker" ]; then
        echo "deps: kafka $SVC_KAFKA_VERSION: $(ls "$SVC_KAFKA_LIBS" | wc -l) jars cached in $SVC_KAFKA_LIBS"
        return
    fi
    echo "deps: kafka $SVC_KAFKA_VERSION: fetching broker jars with Maven into $SVC_KAFKA_LIBS"
    start_ms=$(svc_now_ms)
    # Download into a scratch dir and move it in place, so an interrupted run never leaves
    # a half-filled libs/ that looks usable.
    tmp="$dest.tmp.$$" # per process: two concurrent `make deps` must not share it
    mkdir -p "$tmp"
    if ! mvn -q -B -Dstyle.color=never -f "$ROOT/tests/services/kafka-pom.xml" \
        dependency:copy-dependencies -DoutputDirectory="$tmp/libs" -DincludeScope=runtime \
        >"$tmp/mvn.log" 2>&1; then
        tail -n 40 "$tmp/mvn.log" >&2
        rm -rf "$tmp"
        svc_die "deps: Maven could not fetch the Kafka broker jars (log above)"
    fi
    [ -f "$tmp/libs/kafka_2.13-$SVC_KAFKA_VERSION.jar" ] || rm -rf "$tmp"
    [ -d "$tmp" ] ||
        svc_die "deps: Maven finished but kafka_2.13-$SVC_KAFKA_VERSION.jar is missing"
    if [ -f "$marker" ]; then
        rm -rf "$tmp" # a concurrent `make deps` finished first
    else
        rm -rf "$dest" "$tmp/mvn.log"
        mv "$tmp" "$dest"
        touch "$marker"
    fi
    echo "deps: kafka $SVC_KAFKA_VERSION: $(ls "$SVC_KAFKA_LIBS" | wc -l) jars in $(svc_elapsed "$start_ms")s"
}

# Finding the modules is enough to skip pip, and much faster than importing pandas.
py_modules_found() {
    python3 - "${PY_IMPORTS[@]}" <<'PY'
import importlib.util, sys
sys.exit(0 if all(importlib.util.find_spec(m) for m in sys.argv[1:]) else 1)
PY
}

deps_python() {
    local imports
    imports=$(IFS=,; echo "${PY_IMPORTS[*]}")
    if py_modules_found 2>/dev/null; then
        echo "deps: python: ${PY_IMPORTS[*]} found"
        return
    fi
    echo "deps: python: installing tests/requirements.txt"
    # Debian's own python3 refuses pip installs outside a venv (PEP 668); these test-only
    # packages go to the user's site anyway, which is what the tests import.
    PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q -r "$ROOT/tests/requirements.txt"
    python3 -c "import $imports" || svc_die "deps: python: packages still not importable after pip"
    python3 -m pip list 2>/dev/null |
        grep -i -E '^(fastavro|pyyaml|pytest|numpy|pandas|scikit-learn) ' |
        awk '{ printf "deps: python: installed %s %s\n", $1, $2 }'
}

deps_apt
deps_kafka_jars
deps_python
# The test model server (tests/python/test_compose_llm.py); `--no-llm` (make demo, make
# bench) leaves it out.
if [ "${1:-}" != --no-llm ]; then
    # shellcheck source=llm-venv.sh
    . "$ROOT/tests/services/llm-venv.sh"
    llm_venv_ensure
fi
