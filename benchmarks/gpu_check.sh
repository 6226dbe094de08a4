#!/usr/bin/env bash
# Everything to run on a machine with a CUDA GPU, in one go (a lent accelerator, an idev session):
# the CUDA tests, then the GPU timings as JSON lines.
#
#   bash benchmarks/gpu_check.sh                     # from the checkout, its environment active
#   SDE_GAN=path/to/sde_gan.py bash benchmarks/gpu_check.sh   # also time torchsde's example side by side
#
# About 5 minutes on an H100. Needs the CUDA build of torch (what `pip install torch` gives on Linux).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 WANDB_MODE=disabled
nvidia-smi -L
python -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'
python -m pytest -q -rs tests/test_cuda.py
compare=()
[[ -n ${SDE_GAN:-} ]] && compare=(--compare-reference "$SDE_GAN")
python benchmarks/train_speed.py --device cuda --preset reference --steps 10 --repeats 3 "${compare[@]}"
python benchmarks/train_speed.py --device cuda --preset default --steps 20 --repeats 3
# The loss kinds side by side (the kernels' CUDA path when pysiglib has it; at the default's batch,
# where a CPU fallback still takes well under a second a step).
python benchmarks/train_speed.py --device cuda --preset default --steps 10 --repeats 3 --losses gan,sig_score,fdm,gan+sig
# Four trials sharing the GPU (gpus_per_worker: 0.25) against one alone.
python benchmarks/train_speed.py --device cuda --preset default --steps 20 --repeats 3 --share 4
# The cost of a step by batch size (fdm with 16 partners against every pair, and the critic's gan), as a curve.
python benchmarks/train_speed.py --device cuda --preset default --steps 5 --repeats 3 --batch-sizes 128,512,2048 \
    --losses gan,fdm,fdm:loss.fdm_partners=0 --plot "${OUT:-/tmp}/train_speed_curve.png"
