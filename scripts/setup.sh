#!/usr/bin/env bash
# Create .venv (once) and install poseguide with its pinned stack into it.
# Re-running is cheap: pip skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 12)))'; then
    echo "error: poseguide needs Python 3.10-3.12 (mediapipe 0.10.21 has no wheels for others); set PYTHON=python3.11" >&2
    exit 2
fi
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $("$PYTHON" --version)"
    "$PYTHON" -m venv .venv
fi
echo "[setup] installing poseguide and its pinned dependencies into .venv (first run: a few minutes)"
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
.venv/bin/python -c 'import mediapipe, torch, accelerate; print(f"[setup] ready: torch {torch.__version__}, mediapipe {mediapipe.__version__}, accelerate {accelerate.__version__}")'
# anny builds its body-model data once (about 3 CPU minutes, 50 MB under ~/.cache/poseguide/anny);
# doing it here keeps that out of the first `poseguide synth` and out of the tests' timing.
echo "[setup] building the anny body model for poseguide synth (first run: about 3 minutes)"
.venv/bin/python -c 'from poseguide.synth import BodyModel; BodyModel()'
