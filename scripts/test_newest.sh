#!/usr/bin/env bash
# Run the test suite against the newest release of every dependency (not the lock), in its
# own venv (.venv-newest), to see what the next upstream release will break. torch stays
# at the CPU build the lock names (its newest Linux wheels on PyPI are CUDA builds of
# several GB); set TORCH_SPEC to try another. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m venv .venv-newest
torch_spec="${TORCH_SPEC:-torch==2.13.0}"
# Every extra pyproject.toml declares (ray included), read from it so none is forgotten.
extras="$(.venv-newest/bin/python -c 'import tomllib
print(",".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]))')"
# torch named again in the upgrade so that the eager strategy keeps it.
.venv-newest/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager \
  "$torch_spec" -e ".[$extras]"
.venv-newest/bin/python -m pip freeze > .venv-newest/versions.txt
echo "newest releases ($extras): $(grep -Ei '^(transformers|kedro|accelerate|peft|pandas|mlflow|ray)==' \
  .venv-newest/versions.txt | tr '\n' ' ')"
.venv-newest/bin/python -m pytest -q "$@"
