# Sourced by the quick-start scripts: create .venv and install the project with its test extras.
# Re-installing is quick when nothing changed, so every command starts from a known state.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
fi
.venv/bin/python -m pip install --quiet -e ".[test]"
export PATH="$ROOT/.venv/bin:$PATH"
