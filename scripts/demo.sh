#!/usr/bin/env bash
# Quick-start command 1: set everything up and run the demo.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
rpcgen --version
