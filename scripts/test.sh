#!/usr/bin/env bash
# Install everything the test suite needs (venv, package with test extras, headless Chromium, a
# PostgreSQL server for the store/lease/Ray tests)
# and run the whole suite. Used by README's second command and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q torch==2.13.0 -e '.[test,hf]'
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null 2>&1 \
      || echo "warning: could not install chromium; browser tests will be skipped" >&2
  else
    echo "warning: chromium not found and not root; browser tests will be skipped" >&2
  fi
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >/dev/null 2>&1 \
      || echo "warning: could not install postgresql; PostgreSQL tests will be skipped" >&2
  else
    echo "warning: PostgreSQL server not found and not root; PostgreSQL tests will be skipped" >&2
  fi
fi
export AIRISK_DATA_PATH="${AIRISK_DATA_PATH:-$(cd .. && pwd)/shared/data}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONFAULTHANDLER=1  # a native crash prints every thread's stack (see tests/conftest.py, process exit)
# no stdin: a pytest started as a background job otherwise stops on a terminal read
exec .venv/bin/python -m pytest "$@" < /dev/null
