#!/usr/bin/env bash
# Create .venv (once) and install poseguide with its pinned stack into it.
# Re-running is cheap: pip skips what is already installed.
# --browser also installs Debian's Chromium and its driver when they are missing (the studio's
# browser test drives them; scripts/test.sh asks for it), if apt-get may run as root.
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
# faces: dlib and its face models for poseguide/faces.py (and its tests); about 20 s the first time
.venv/bin/python -m pip install --quiet -e ".[test,faces]"
.venv/bin/python -c 'import mediapipe, torch, accelerate; print(f"[setup] ready: torch {torch.__version__}, mediapipe {mediapipe.__version__}, accelerate {accelerate.__version__}")'

if [ "${1:-}" = "--browser" ] && ! { command -v chromium >/dev/null && command -v chromedriver >/dev/null; }; then
    if [ "$(id -u)" = 0 ]; then
        SUDO=()
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    else
        SUDO=(none)
    fi
    if [ "${SUDO[0]:-}" != none ] && command -v apt-get >/dev/null; then
        echo "[setup] installing chromium and chromium-driver for the studio's browser test"
        "${SUDO[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq chromium chromium-driver >/dev/null
    else
        echo "[setup] no chromium, and apt-get needs root: the studio's browser test will be skipped" \
             "(sudo apt-get install chromium chromium-driver)"
    fi
fi
