#!/usr/bin/env bash
# Create .venv and install wmf into it. Idempotent: a second run installs nothing.
#   scripts/install.sh          the pipeline
#   scripts/install.sh test     the pipeline and the test tools
# Without a GPU, torch's CPU build goes in first, so that the project's range
# (torch>=2.4) is already satisfied and no multi-GB CUDA build is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
        "${pip[@]}" install "torch>=2.4"
    else
        "${pip[@]}" install "torch==${WMF_CPU_TORCH:-2.13.0}"
    fi
fi
extras=""
[ "${1:-}" = "test" ] && extras="[test]"
"${pip[@]}" install -e ".${extras}"
