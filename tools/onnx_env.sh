#!/usr/bin/env bash
# Creates .venv-onnx: TensorFlow 2.16.2 + tf2onnx + ONNX Runtime, for bench/onnx_peer.py (the ONNX
# Runtime peer of the compression benchmark). Nothing else uses it; CI and `make test` do not need it.
#
# A venv of its own, not .venv: the benchmark's peer must not change the environment the project is
# tested in, and unpinned tf2onnx/onnx pull numpy 2 and protobuf 7 (TF 2.16 needs numpy<2 and, here,
# protobuf 3.20). With requirements/lock.txt as constraints, the versions below install next to
# TensorFlow 2.16.2 with the same numpy/protobuf/flatbuffers as .venv.
#
# Idempotent: exits at once when the env has these pins and imports. ONNX_VENV=path picks another folder.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${ONNX_VENV:-.venv-onnx}
LOCK=requirements/lock.txt
PINS=(tensorflow==2.16.2 tf2onnx==1.17.0 onnx==1.17.0 onnxruntime==1.23.2)
STAMP="$VENV/.onnx_env-$(printf '%s\n' "${PINS[@]}" | sha1sum | cut -c1-12)"

if [ -f "$STAMP" ] && "$VENV/bin/python" -c 'import onnx, onnxruntime, tf2onnx' 2>/dev/null; then
  echo "onnx_env: $VENV is ready (${PINS[*]})"
  exit 0
fi

# shellcheck source=tools/find_python310.sh
. tools/find_python310.sh

if ! PY=$(find_python310); then
  echo "onnx_env: error: no Python 3.10 found (TensorFlow 2.16 here needs it); install one" \
       "(pyenv install 3.10) or set PYTHON=/path/to/python3.10" >&2
  exit 1
fi

start=$(date +%s)
echo "onnx_env: creating $VENV with $PY: ${PINS[*]}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
constraint=()
[ -f "$LOCK" ] && constraint=(-c "$LOCK")
if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade "pip<25" wheel "setuptools<75" \
    || ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${constraint[@]}" "${PINS[@]}"; then
  cat >&2 <<MSG
onnx_env: error: could not install ${PINS[*]} into $VENV.
Without a package index (offline) this cannot work unless pip's cache or PIP_FIND_LINKS holds the wheels;
the ONNX Runtime peer of the benchmark is then unavailable (nothing else needs it). Re-run when online:
  bash tools/onnx_env.sh
MSG
  exit 1
fi
"$VENV/bin/python" -c 'import onnx, onnxruntime, tf2onnx, tensorflow' >/dev/null 2>&1 \
  || { echo "onnx_env: error: $VENV installed but does not import onnx/onnxruntime/tf2onnx/tensorflow" >&2; exit 1; }
rm -f "$VENV"/.onnx_env-*
touch "$STAMP"
echo "onnx_env: done in $(( $(date +%s) - start )) s; $(du -sh "$VENV" | cut -f1) in $VENV"
