# Sourced by the quick-start scripts: create .venv and install the project with its test extras.
# The install is skipped when nothing it depends on has changed since the last one (a stamp in
# .venv records the digest scripts/_install_stamp.py prints: pyproject.toml, setup.py and the
# sources mypyc compiles), so repeated runs start in seconds. The project is installed
# editable: other code changes need no reinstall; an edited transport-core module is rebuilt.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
fi
STAMP=.venv/.udprpc-installed
WANT="$("$PY" scripts/_install_stamp.py)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    .venv/bin/python -m pip install --quiet -e ".[test]"
    echo "$WANT" > "$STAMP"
fi
export PATH="$ROOT/.venv/bin:$PATH"
