#!/usr/bin/env bash
# Create .venv and install wmf into it. Idempotent: a second run installs nothing.
#   scripts/install.sh          the pipeline
#   scripts/install.sh test     the pipeline and the test tools
# Every package is installed at the version in scripts/constraints.txt, the versions the tests
# pass with (pyproject.toml keeps the ranges; scripts/lock.sh refreshes the file).
# Without a GPU, torch's CPU build goes in first, so that the project's range
# (torch>=2.4) is already satisfied and no multi-GB CUDA build is downloaded.
# WMF_CPU_TORCH=X.Y.Z takes another CPU torch than the pinned one (set it on every run:
# without it, the pin applies again).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
[ -x .venv/bin/python ] || "$python" -m venv .venv
constraints=scripts/constraints.txt
torch_pin=$(sed -n 's/^torch==\([^ ;]*\).*/\1/p' "$constraints")
if [ -n "${WMF_CPU_TORCH:-}" ] && [ "$WMF_CPU_TORCH" != "$torch_pin" ]; then
    constraints=$(mktemp)  # every pin but torch's
    trap 'rm -f "$constraints"' EXIT
    grep -v '^torch==' scripts/constraints.txt >"$constraints"
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
        # the pinned release's CUDA build: ==X.Y.Z alone would also admit a local X.Y.Z+cpu wheel
        "${pip[@]}" install "torch>=2.4,!=${torch_pin}+cpu" -c "$constraints"
    else
        "${pip[@]}" install "torch==${WMF_CPU_TORCH:-$torch_pin}" -c "$constraints"
    fi
fi
extras=""
[ "${1:-}" = "test" ] && extras="[test]"
"${pip[@]}" install -e ".${extras}" -c "$constraints"
