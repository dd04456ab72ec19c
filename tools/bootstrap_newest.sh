#!/usr/bin/env bash
# Creates .venv-newest: the model library and the server at the newest end of the supported range, with no TFX
# (Python 3.12, TensorFlow 2.21, Keras 3.15; requirements/lock-newest.txt). `make test-newest` runs the tfmodels
# and serving tests in it; .venv (tools/bootstrap.sh) stays the oldest end with the pipeline.
# With --wheelhouse (what `make test-newest` asks for) it also keeps the locked wheels in a wheelhouse, from which
# tests/test_packaging.py installs the built tfmodels wheel into a fresh venv, offline; `make test` (CI) does not
# run that test and skips the wheelhouse.
# Idempotent and quick once done: the stamp holds a hash of the lock file, pyproject.toml and the scripts.
# VENV_NEWEST=path picks another folder, WHEELHOUSE_NEWEST another wheelhouse, PYTHON=/path/to/python3.12 another
# interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV_NEWEST:-.venv-newest}
WHEELHOUSE=${WHEELHOUSE_NEWEST:-.cache/wheelhouse-newest}
LOCK=requirements/lock-newest.txt
STAMP="$VENV/.bootstrapped"
KEY=$(cat "$LOCK" pyproject.toml tools/bootstrap_newest.sh tools/data_packages.sh tools/venv_install.sh \
  | sha256sum | cut -c1-16)
WANT_WHEELHOUSE=0
[ "${1:-}" != --wheelhouse ] || WANT_WHEELHOUSE=1

wheelhouse_ready() { [ "$WANT_WHEELHOUSE" = 0 ] || [ "$(cat "$WHEELHOUSE/.key" 2>/dev/null)" = "$KEY" ]; }

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$KEY" ] && [ -x "$VENV/bin/python" ] && wheelhouse_ready; then
  touch "$STAMP"  # for make: up to date
  echo "bootstrap-newest: $VENV is up to date ($LOCK)"
  exit 0
fi

# shellcheck source=tools/find_python.sh
. tools/find_python.sh
# shellcheck source=tools/venv_install.sh
. tools/venv_install.sh
# shellcheck source=tools/data_packages.sh
. tools/data_packages.sh

if ! PY=$(find_python 3.12); then
  echo "bootstrap-newest: error: no Python 3.12 found (the newest end is tested on it); install one" \
       "(pyenv install 3.12) or set PYTHON=/path/to/python3.12" >&2
  exit 1
fi
echo "bootstrap-newest: using $PY ($("$PY" --version 2>&1)), $LOCK"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip "setuptools>=64" wheel
choose_installer "$VENV/bin/python"
echo "bootstrap-newest: installing with $VENV_INSTALLER"

if [ "$WANT_WHEELHOUSE" = 1 ] && ! wheelhouse_ready; then
  # The locked wheels (sdists built once), then the venv from them: TensorFlow is downloaded once.
  mkdir -p "$WHEELHOUSE"
  "$VENV/bin/python" -m pip wheel -q -c "$LOCK" -w "$WHEELHOUSE" ".[test,serving]"
  rm -f "$WHEELHOUSE"/tfmodels-*.whl
  echo "$KEY" > "$WHEELHOUSE/.key"
fi
# The library and the server with the test tools; the pipeline extra stays out (no TFX, Beam or tf_keras here).
from_wheelhouse=()
[ "$WANT_WHEELHOUSE" = 0 ] || from_wheelhouse=(--no-index --find-links "$WHEELHOUSE" --no-build-isolation)
venv_install "$VENV/bin/python" -q "${from_wheelhouse[@]}" -c "$LOCK" -e ".[test,serving]"
install_data_packages "$VENV/bin/python" -q -c "$LOCK"
install_bible_modules
echo "$KEY" > "$STAMP"
echo "bootstrap-newest: done ($("$VENV/bin/python" -c 'import keras, tensorflow as tf; print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}")' 2>/dev/null))"
