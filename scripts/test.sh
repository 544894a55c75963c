#!/usr/bin/env bash
# Quick-start command 2: set everything up, then run the whole test suite and the quality gates.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
echo "== ruff"
ruff check .
echo "== mypy --strict"
mypy --strict rpc idl codegen
echo "== pytest ($(python -c 'import rpc._accel as a; print("compiled" if a.compiled_core() else "pure-Python")') transport core)"
# pytest exits 5 when it collected no test; set -e turns that into a failure, as it should.
python -m pytest "$@"
if [ "$#" -eq 0 ] && [ -z "${UDPRPC_PURE_PYTHON:-}" ]; then
    # The same sources run uncompiled where no C compiler is available: test them that way too.
    echo "== pytest tests/transport (pure-Python transport core)"
    UDPRPC_PURE_PYTHON=1 python -m pytest -q tests/transport tests/test_accel.py
fi
