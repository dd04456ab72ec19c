#!/usr/bin/env bash
# `make test`: the suite in two pytest sessions, the end-to-end tests, then the rest, each on fresh xdist workers.
#
# Why two: a worker's memory grows with every model its tests build (TensorFlow and the allocator keep what they
# took), and one session of all ~1,100 tests grew two workers past the machine's 24 GiB: the kernel killed one
# (pytest-xdist: "node down: Not properly terminated"). Fresh workers halfway bound the growth.
#
# Usage: tools/run_tests.sh PYTHON [pytest args...]. Exits non-zero if either session fails, 5 if neither
# collected a test (a selection in the args may hold only e2e tests, or none: one empty session is fine).
set -uo pipefail
python="$1"
shift
# Fewer malloc arenas: less memory held by TensorFlow's many threads, for a little speed.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
"$python" -m pytest -m e2e "$@"
e2e=$?
"$python" -m pytest -m "not e2e" "$@"
rest=$?
if [ "$e2e" -eq 5 ] && [ "$rest" -eq 5 ]; then exit 5; fi
for rc in "$e2e" "$rest"; do
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then exit "$rc"; fi
done
exit 0
