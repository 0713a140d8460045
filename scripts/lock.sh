#!/usr/bin/env bash
# Refresh requirements.lock: every dependency of every extra, resolved for CPython 3.11 on
# Linux x86_64, with torch's CPU build (requirements-torch.txt). The torch wheel comes from
# $TORCH_FIND_LINKS (default: PyTorch's CPU index; a folder of wheels works too).
set -euo pipefail
cd "$(dirname "$0")/.."
uv pip compile pyproject.toml --all-extras --quiet \
  --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
  --find-links "${TORCH_FIND_LINKS:-https://download.pytorch.org/whl/cpu/torch/}" \
  --constraint requirements-torch.txt --no-emit-find-links \
  --custom-compile-command "bash scripts/lock.sh" --output-file requirements.lock
# pip applies constraints only to what it installs, so this pin stops an install from the
# lock on any other Python with a message that names the supported one.
cat >> requirements.lock <<'GUARD'
# This lock is for CPython 3.11; on another Python pip stops at this line:
torch==0+this.lock.is.for.cpython.3.11 ; python_version != "3.11"
GUARD
