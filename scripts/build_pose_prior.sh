#!/usr/bin/env bash
# Rebuild poseguide/pose_prior/ (the small model pre-trained on synthetic people) from scratch:
# render people with `poseguide synth` in the pose families below, prepare them like photos,
# train configs/pose-prior.yaml, and store the exported weights in half precision.
# The families kick, kneel and arms_crossed are left out on purpose: `poseguide evaluate
# --pose-set` scores renders of them as poses no part of training has seen.
# Usage: bash scripts/build_pose_prior.sh [NUM_RENDERS]   (default 4800; 37 min on 2 AMX cores:
# 50 s of renders, 6.3 min of prepare, 2,400 bf16 training steps at 0.74 s; on 2 AVX2 cores about
# 1.6 hours: 6 min, 12 min, 2,400 fp32 steps at about 1.9 s)
set -euo pipefail
cd "$(dirname "$0")/.."
NUM=${1:-4800}
PY=.venv/bin/python
$PY -m poseguide.cli synth data/synth-prior --num "$NUM" --seed 1 \
    --families arms_overhead arms_out arms_forward one_arm_raised crouch sit lunge lean turn walk stand
$PY -m poseguide.cli prepare data/synth-prior/images --out data/synth-prior-128 --size 128
$PY -m poseguide.cli train --config configs/pose-prior.yaml
$PY - <<'PYEOF'
"""Copy the exported model into the package, weights in float16 (half the bytes)."""
import json, shutil
from pathlib import Path
import torch
from safetensors.torch import load_file, save_file
src, dst = Path("runs/pose-prior/model"), Path("poseguide/pose_prior")
dst.mkdir(exist_ok=True)
state = {k: v.half() if v.is_floating_point() else v for k, v in load_file(str(src / "model.safetensors")).items()}
save_file(state, str(dst / "model.safetensors"), metadata={"format": "pt"})
shutil.copy(src / "config.json", dst / "config.json")
print(f"wrote {dst}: {sum(v.numel() for v in state.values()) / 1e6:.2f} M weights")
PYEOF
