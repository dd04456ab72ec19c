# Sourced by tools/onnx_env.sh: prints the first Python 3.10 found (tools/find_python.sh); returns 1 when there is none.
# shellcheck source=tools/find_python.sh
. "$(dirname "${BASH_SOURCE[0]}")/find_python.sh"
find_python310() { find_python 3.10; }
