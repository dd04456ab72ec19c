# Sourced by the bootstraps (tools/bootstrap.sh, tools/bootstrap_newest.sh): installs into a virtual environment
# with uv when it can, else with pip. uv (PyPI `uv`) resolves and installs the same locked versions as pip, in
# parallel: on the 2-core host the TFX 1.16 set (~280 packages, TensorFlow's 590 MB wheel among them) installed in
# 21 s, and the whole tools/bootstrap.sh took 48 s against pip's 127 s.
#
# BOOTSTRAP_INSTALLER=pip keeps to pip. uv reads neither pip.conf nor the PIP_* variables, so a package index
# set for pip there is handed to uv (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS); an index set only in
# pip.conf makes the bootstrap keep to pip, which reads it.

# choose_installer PYTHON: sets VENV_INSTALLER to uv (installed into PYTHON's environment first) or pip.
choose_installer() {
  local python=$1
  VENV_INSTALLER=pip
  [ "${BOOTSTRAP_INSTALLER:-uv}" = uv ] || return 0
  [ -z "$("$python" -m pip config get global.index-url 2>/dev/null)" ] || return 0
  if "$python" -m uv --version >/dev/null 2>&1 || "$python" -m pip install -q uv >/dev/null 2>&1; then
    VENV_INSTALLER=uv
  fi
}

# venv_install PYTHON [pip install arguments]: `pip install ARGS` into PYTHON's environment, with uv when
# choose_installer chose it (so only options both know: -q, -c, -e, --no-deps, --no-index, --find-links,
# --no-build-isolation).
venv_install() {
  local python=$1; shift
  if [ "${VENV_INSTALLER:-pip}" = uv ]; then
    local settings=() links=()
    [ -z "${PIP_INDEX_URL:-}" ] || settings+=("UV_INDEX_URL=${UV_INDEX_URL:-$PIP_INDEX_URL}")
    [ -z "${PIP_EXTRA_INDEX_URL:-}" ] || settings+=("UV_EXTRA_INDEX_URL=${UV_EXTRA_INDEX_URL:-$PIP_EXTRA_INDEX_URL}")
    [ -z "${PIP_FIND_LINKS:-}" ] || links=(--find-links "$PIP_FIND_LINKS")
    # --compile-bytecode, as pip does: without .pyc files every process compiles what it imports from source, and
    # where PYTHONDONTWRITEBYTECODE is set (as on our CI host) never keeps them: `import tensorflow` took 12.4 s
    # instead of 4.6 s, `import tfx_pipeline.pipeline` 7.5 s more instead of 2.9 s, in each of the suite's
    # hundreds of processes (pipeline runs, servers, kernels, workers).
    env "${settings[@]}" "$python" -m uv pip install --compile-bytecode --python "$python" "${links[@]}" "$@"
  else
    "$python" -m pip install "$@"
  fi
}
