#!/usr/bin/env bash
# Creates .venv-llamacpp: llama-cpp-python built from source, for bench/llamacpp_peer.py (the llama.cpp peer of
# bench/generate_lm.py). Nothing else uses it; CI and `make test` do not need it.
#
# A venv of its own: the peer must not change the environment the project is tested in (llama-cpp-python pulls
# numpy 2 and jinja2/diskcache pins of its own).
#
# The build is portable (GGML_NATIVE=OFF: AVX2 + FMA + F16C, no AVX-512/AMX): a native build on an AVX-512 + AMX
# host crashes in the CPU backend as soon as more than one token is evaluated per call (see
# /work/shared/notes/wave3-facts.md); the AVX2 path is the one every x86-64 machine of the last decade runs.
# About 20 minutes on 2 busy cores. Idempotent: exits at once when the env has the pin and imports.
# LLAMACPP_VENV=path picks another folder, PYTHON=/path/to/python3.X another interpreter (3.12 or 3.10).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${LLAMACPP_VENV:-.venv-llamacpp}
PIN=llama-cpp-python==0.3.36
CMAKE_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DGGML_CPU_ALL_VARIANTS=OFF \
-DGGML_BACKEND_DL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF"
STAMP="$VENV/.llamacpp_env-$(printf '%s\n' "$PIN" "$CMAKE_FLAGS" | sha1sum | cut -c1-12)"

if [ -f "$STAMP" ] && "$VENV/bin/python" -c 'import llama_cpp' 2>/dev/null; then
  echo "llamacpp_env: $VENV is ready ($PIN)"
  exit 0
fi

# shellcheck source=tools/find_python.sh
. tools/find_python.sh
if ! PY=$(find_python 3.12) && ! PY=$(find_python 3.10); then
  echo "llamacpp_env: error: no Python 3.12 or 3.10 found; install one (pyenv install 3.12)" \
       "or set PYTHON=/path/to/python3.12" >&2
  exit 1
fi

start=$(date +%s)
echo "llamacpp_env: creating $VENV with $PY: $PIN (CMAKE_ARGS=$CMAKE_FLAGS)"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip wheel
if ! CMAKE_ARGS="$CMAKE_FLAGS" CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-binary llama-cpp-python --no-cache-dir \
    --verbose "$PIN"; then
  echo "llamacpp_env: error: could not build $PIN into $VENV (needs cmake, a C++17 compiler and PyPI)." \
       "The llama.cpp peer of bench/generate_lm.py is then skipped (nothing else needs it)." >&2
  exit 1
fi
"$VENV/bin/python" -c 'import llama_cpp' \
  || { echo "llamacpp_env: error: $VENV installed but does not import llama_cpp" >&2; exit 1; }
rm -f "$VENV"/.llamacpp_env-*
touch "$STAMP"
echo "llamacpp_env: done in $(( $(date +%s) - start )) s; $(du -sh "$VENV" | cut -f1) in $VENV"
