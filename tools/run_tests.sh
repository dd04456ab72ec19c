#!/usr/bin/env bash
# `make test`: the suite in two pytest sessions, the end-to-end tests, then the rest, each on fresh xdist workers;
# then, when NEWEST_PYTHON is set, the newest end of the supported range (Python 3.12 / TF 2.21 / Keras 3.15, no
# TFX) in a third session on its selection (NEWEST_ARGS: the fast tfmodels/serving tests and one export -> serve
# round trip). The last lines sum up each session: environment, pass count, time.
#
# Why two sessions for .venv: a worker's memory grows with every model its tests build (TensorFlow and the
# allocator keep what they took), and one session of all ~1,100 tests grew two workers past the machine's 24 GiB:
# the kernel killed one (pytest-xdist: "node down: Not properly terminated"). Fresh workers halfway bound the growth.
#
# Usage: [NEWEST_PYTHON=... NEWEST_ARGS="..."] tools/run_tests.sh PYTHON [pytest args...]. Exits non-zero if a
# session fails, 5 if none collected a test (a selection in the args may hold only e2e tests, or none: one empty
# session is fine).
set -uo pipefail
python="$1"
shift
# Fewer malloc arenas: less memory held by TensorFlow's many threads, for a little speed.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
summary=()

session() {  # session LABEL PYTHON ARGS...: one pytest run; its exit code in $rc, its summary line kept
  local label="$1" py="$2" log
  shift 2
  log=$(mktemp)
  "$py" -m pytest "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  summary+=("$label ($("$py" -c 'import platform, tensorflow as tf, keras; print(f"Python {platform.python_version()}, TF {tf.__version__}, Keras {keras.__version__}")' 2>/dev/null)): $(grep -E '(passed|failed|error|deselected|no tests ran).* in [0-9.]+s' "$log" | tail -1 | tr -d '=' | sed 's/^ *//; s/ *$//') [exit $rc]")
  rm -f "$log"
}

# The host's speed at the start and the end (tools/host_speed.py): a shared host's load moves suite times by
# tens of percent, so a CI time is read together with these.
speed_start=$("$python" "$(dirname "$0")/host_speed.py" 2>/dev/null)
session "e2e" "$python" -m e2e "$@"
e2e=$rc
session "rest" "$python" -m "not e2e" "$@"
rest=$rc
newest=5
if [ -n "${NEWEST_PYTHON:-}" ]; then
  # shellcheck disable=SC2086  # NEWEST_ARGS is a list of paths and options
  session "newest" "$NEWEST_PYTHON" -m "not e2e" ${NEWEST_ARGS:-}
  newest=$rc
fi
speed_end=$("$python" "$(dirname "$0")/host_speed.py" 2>/dev/null)
echo
echo "== make test: sessions =="
printf '%s\n' "${summary[@]}"
echo "host speed at the start: ${speed_start:-unknown}; at the end: ${speed_end:-unknown}"
if [ "$e2e" -eq 5 ] && [ "$rest" -eq 5 ] && [ "$newest" -eq 5 ]; then exit 5; fi
for rc in "$e2e" "$rest" "$newest"; do
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then exit "$rc"; fi
done
exit 0
