#!/usr/bin/env bash
# Run the test suite against the newest release of every dependency (not the lock), in its
# own venv (.venv-newest), to see what the next upstream release will break. torch stays
# at the CPU build the lock names (its newest Linux wheels on PyPI are CUDA builds of
# several GB); set TORCH_SPEC to try another. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m venv .venv-newest
torch_spec="${TORCH_SPEC:-torch==2.13.0}"
# torch named again in the upgrade so that the eager strategy keeps it.
.venv-newest/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager \
  "$torch_spec" -e ".[dev,annotate]"
.venv-newest/bin/python -m pip freeze > .venv-newest/versions.txt
echo "newest releases: $(grep -Ei '^(transformers|kedro|accelerate|peft|pandas|mlflow)==' \
  .venv-newest/versions.txt | tr '\n' ' ')"
.venv-newest/bin/python -m pytest -q "$@"
