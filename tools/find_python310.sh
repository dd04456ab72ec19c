# Sourced by tools/bootstrap.sh and tools/onnx_env.sh: prints the first Python 3.10 found among
# $PYTHON, python3.10 on PATH, pyenv's 3.10 builds and the usual prefixes; returns 1 when there is none.
find_python310() {
  local candidates=()
  [ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
  candidates+=(python3.10)
  if command -v pyenv >/dev/null 2>&1; then
    local root; root=$(pyenv root)
    for d in "$root"/versions/3.10*; do [ -x "$d/bin/python3.10" ] && candidates+=("$d/bin/python3.10"); done
  fi
  for d in "$HOME"/.pyenv/versions/3.10* /root/.pyenv/versions/3.10* /usr/local/bin /usr/bin; do
    [ -x "$d/bin/python3.10" ] && candidates+=("$d/bin/python3.10")
    [ -x "$d/python3.10" ] && candidates+=("$d/python3.10")
  done
  for c in "${candidates[@]}"; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
      command -v "$c"; return 0
    fi
  done
  return 1
}
