# Sourced by the bootstraps: `find_python X.Y` prints the first Python X.Y found among $PYTHON, pythonX.Y on PATH,
# pyenv's X.Y builds and the usual prefixes; returns 1 when there is none.
find_python() {
  local version=$1 candidates=()
  [ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
  candidates+=("python$version")
  if command -v pyenv >/dev/null 2>&1; then
    local root; root=$(pyenv root)
    for d in "$root"/versions/"$version"*; do [ -x "$d/bin/python$version" ] && candidates+=("$d/bin/python$version"); done
  fi
  for d in "$HOME"/.pyenv/versions/"$version"* /root/.pyenv/versions/"$version"* /usr/local/bin /usr/bin; do
    [ -x "$d/bin/python$version" ] && candidates+=("$d/bin/python$version")
    [ -x "$d/python$version" ] && candidates+=("$d/python$version")
  done
  for c in "${candidates[@]}"; do
    if command -v "$c" >/dev/null 2>&1 \
        && "$c" -c "import sys; assert '%d.%d' % sys.version_info[:2] == '$version'" 2>/dev/null; then
      command -v "$c"; return 0
    fi
  done
  return 1
}

# The C library's version as MAJOR.MINOR (glibc), or nothing when it cannot be read.
glibc_version() {
  { getconf GNU_LIBC_VERSION 2>/dev/null || ldd --version 2>/dev/null | head -1; } | grep -oE '[0-9]+\.[0-9]+' | tail -1
}

# True when version $1 >= version $2 (MAJOR.MINOR).
version_at_least() {
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]
}
