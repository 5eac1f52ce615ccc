#!/usr/bin/env bash
# The iP-VAE science runs on a CUDA machine (issue 18, item 4): the seed-averaged benchmark of
# the shipped coders and the beta sweep on 8x8 patches, trained longer than the shipped 12 epochs.
# Runs from the repository root with the machine's own python3 (torch with CUDA); needs nothing
# installed beyond numpy, scipy, scikit-learn, scikit-image, pyyaml, tqdm and torch.
#   OUT=out/gpu bash benchmarks/gpu_science.sh
set -u
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python3 -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__, torch.cuda.get_device_name(0))"
timeout ${T_BENCH:-120} python3 benchmarks/ipvae.py --seeds 5 --device cuda --threads 8 --out "$OUT/ipvae.json" 2>&1 | tee "$OUT/ipvae.log"
timeout ${T_BETA:-330} python3 benchmarks/ipvae_beta.py --epochs ${EPOCHS:-60} --seeds 5 --device cuda --threads 8 --out "$OUT/ipvae_beta.json" 2>&1 | tee "$OUT/ipvae_beta.log"
timeout ${T_CLAMP:-100} python3 benchmarks/ipvae_beta.py --epochs ${EPOCHS:-60} --betas 24 --clamp 10 --seeds 5 --device cuda --threads 8 --out "$OUT/ipvae_beta_clamp10.json" 2>&1 | tee "$OUT/ipvae_beta_clamp10.log"
