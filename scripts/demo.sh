#!/usr/bin/env bash
# Quick-start command 1: set everything up and run the demo (examples/demo.py): generate the
# calculator's stubs with rpcgen, serve it on 127.0.0.1, and make verified calls over real UDP,
# first on the clean network and then through a chaos proxy. Extra arguments go to the demo
# (e.g. --quick, --calls N, --seed S). Exits non-zero if any result was wrong.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
python -m examples.demo "$@"
