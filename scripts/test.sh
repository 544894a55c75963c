#!/usr/bin/env bash
# Quick-start command 2: set everything up, then run the whole test suite and the quality gates.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
echo "== ruff"
ruff check .
echo "== mypy --strict"
mypy --strict rpc idl codegen
echo "== pytest"
# pytest exits 5 when it collected no test; set -e turns that into a failure, as it should.
python -m pytest "$@"
