#!/usr/bin/env bash
# The Python client check: a virtual environment with the reference `safetensors` package
# and numpy from PyPI (created once per build directory), the C++ fixture's files, then
# check_safetensors.py. Any failure, including pip not reaching PyPI, fails the test.
# usage: run_client_check.sh VENV_DIR FIXTURE_PROGRAM WORK_DIR
set -euo pipefail
venv=$1 fixture=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
if ! "$venv/bin/python" -c "import safetensors, numpy" 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --disable-pip-version-check --quiet safetensors numpy
fi
"$venv/bin/python" -c "import safetensors, numpy; print('safetensors', safetensors.__version__, 'numpy', numpy.__version__)"
"$fixture" "$work"
"$venv/bin/python" "$here/check_safetensors.py" "$work/client.safetensors" "$work/reference.safetensors"
