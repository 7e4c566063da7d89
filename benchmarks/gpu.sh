#!/usr/bin/env bash
# The GPU checks, in one run on a fresh GPU machine (about 15 minutes: trim to fit the budget):
#   1. the CUDA tests (CPU and CUDA agree: training loss curves, top-k, similar movies);
#   2. full-scale ALS training (100,480,507-rating shape) at factors 128 and 512;
#   3. full-scale top-100 recommendation for all 480,189 users, seen movies excluded;
#   4. the whole cold night at full scale, stage by stage (generating the raw files first
#      is not counted), and its unchanged reruns;
#   5. the optimizer study at full scale, adam-sigmoid included (issue 11: <= 5 minutes).
# Usage: benchmarks/gpu.sh [OUT]   (figures are printed and kept in OUT, default .gpu-out)
# GPU images without network may lack polars: wheels placed in .gpu-wheels/ are installed first.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-.gpu-out}
mkdir -p "$out"
py=${PYTHON:-python3}
if ! "$py" -c "import polars" 2>/dev/null && compgen -G ".gpu-wheels/*.whl" >/dev/null; then
    "$py" -m pip install -q --no-index --no-deps .gpu-wheels/*.whl
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi -L | tee "$out/device.txt"
"$py" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$out/device.txt"
timeout 100 "$py" -m pytest -q -p no:cacheprovider -m gpu tests/test_train.py tests/test_recommend.py \
    2>&1 | tail -n 15 | tee "$out/tests.txt"
timeout 150 "$py" benchmarks/bench_train.py --device-timing cuda --synthetic-nnz 100480507 \
    --factors 128 512 --iterations 5 2>&1 | tee "$out/train.txt"
timeout 80 "$py" benchmarks/gpu_recommend.py --device cuda --factors 64 128 2>&1 | tee "$out/recommend.txt"
timeout 300 "$py" benchmarks/bench_pipeline.py --scale 1 2>&1 | tee "$out/pipeline.txt"
timeout 400 "$py" benchmarks/bench_compare.py --setting full -- \
    --optimizers adam,adamw,adagrad,sgd,sgd-momentum,adam-sigmoid,als 2>&1 | tee "$out/compare.txt"
