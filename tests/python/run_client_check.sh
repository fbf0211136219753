#!/usr/bin/env bash
# The Python client check: a virtual environment with the reference `safetensors` package
# and numpy from PyPI (created once per build directory), the C++ fixture's files, then
# check_safetensors.py. When pip cannot install them (no network, no PyPI) the check is
# skipped: a message and exit status 77 (the test's SKIP_RETURN_CODE). Any other failure
# fails the test.
# usage: run_client_check.sh VENV_DIR FIXTURE_PROGRAM WORK_DIR
set -euo pipefail
venv=$1 fixture=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
if ! "$venv/bin/python" -c "import safetensors, numpy" 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  if ! "$venv/bin/pip" install --disable-pip-version-check --quiet --retries 2 --timeout 30 \
      safetensors numpy; then
    rm -rf "$venv"
    echo "client check skipped: pip could not install safetensors and numpy (no network or PyPI?)"
    exit 77
  fi
fi
"$venv/bin/python" -c "import safetensors, numpy; print('safetensors', safetensors.__version__, 'numpy', numpy.__version__)"
"$fixture" "$work"
"$venv/bin/python" "$here/check_safetensors.py" "$work/client.safetensors" "$work/reference.safetensors"
