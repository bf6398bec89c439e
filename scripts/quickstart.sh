#!/usr/bin/env bash
# The README's first command: set up, get the sample video, prepare it, train the small
# model (12 minutes on any 2-core CPU: training.max_minutes), then generate posed and random
# samples and evaluate.
# Every step resumes: rerun the script after Ctrl-C and it carries on where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${RUN:-runs/small}
DATA=${DATA:-data/vtest-128}
step() { printf '\n==> %s\n' "$*"; }

step "1/6 set up .venv"
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

step "2/6 get the sample video (Debian's opencv-doc package, Apache-2.0/BSD-3)"
VIDEO=$(bash scripts/get_sample_data.sh data/sample | tail -n 1)

step "3/6 prepare: people, poses and masks from every frame -> $DATA"
poseguide prepare "$VIDEO" --out "$DATA" --size 128
poseguide show "$DATA" -o "$DATA/contact-sheet.png"
poseguide show "$DATA" --people --num 24   # one tile per person tracked: `prepare --track N` keeps some

step "4/6 train the small model for at most 12 minutes -> $RUN (samples in $RUN/samples, W&B offline in $RUN/wandb)"
# One process needs no launcher (`accelerate launch scripts/train.py` runs the same code on
# several GPUs); without it, a mistake is our one line instead of the launcher's traceback.
poseguide train --config configs/small.yaml --output-dir "$RUN" --resume latest "data.dataset=$DATA"

step "5/6 generate: in the pose of a photo, in training poses, and at random"
poseguide pose tests/data/vtest/frame-0120.jpg -o "$RUN/generated/photo-pose.json"
generate --checkpoint "$RUN" --pose-image tests/data/vtest/frame-0120.jpg --num 8 --out "$RUN/generated/posed"
generate --checkpoint "$RUN" --random-pose --num 16 --out "$RUN/generated/random-pose"
generate --checkpoint "$RUN" --num 16 --out "$RUN/generated/random"

step "6/6 evaluate on the held-out split"
poseguide evaluate --checkpoint "$RUN" --data "$DATA" --out "$RUN/eval"

printf '\nDone. Look at:\n  %s\n  %s\n  %s\n  %s\n  %s\n  %s\n' \
    "$DATA/contact-sheet.png" "$DATA/people.png" "$RUN/samples/" "$RUN/generated/posed/contact-sheet.png" \
    "$RUN/generated/random/contact-sheet.png" "$RUN/eval/report.md"
