#!/usr/bin/env bash
# test_run_exactly_once.sh's daemon and Redis crash scenarios with a shared model
# (model.sync_interval=200ms: each batch commits model journals instead of the model, merged
# every 200 ms and at stop): the same exactness of every user's record and offset, and at the
# end every journal merged (inspect model: 0 entries waiting).
set -euo pipefail
EO_SCENARIOS="daemon redis" EO_RUN_ARGS="--model.sync_interval=200ms" \
    exec bash "$(dirname "${BASH_SOURCE[0]}")/test_run_exactly_once.sh"
