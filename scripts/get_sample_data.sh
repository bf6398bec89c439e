#!/usr/bin/env bash
# Get the sample pedestrian video vtest.avi (768x576, 795 frames, 10 fps) from Debian's
# opencv-doc package, without installing anything: `apt-get download` + `dpkg -x`.
#
#   bash scripts/get_sample_data.sh [DEST_DIR]      (default: data/sample)
#
# Prints the video's path on the last line. Does nothing if it is already there.
#
# License: vtest.avi ships in OpenCV's samples; Debian's opencv-doc copyright file
# (usr/share/doc/opencv-doc/copyright, copied next to the video) lists OpenCV under
# Apache-2.0 (4.5+) and BSD-3-Clause (earlier releases).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-data/sample}
VIDEO="$DEST/vtest.avi"
if [ -s "$VIDEO" ]; then
    echo "[sample] $VIDEO already present" >&2
    echo "$VIDEO"
    exit 0
fi
for tool in apt-get dpkg; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: $tool not found: this script needs a Debian/Ubuntu system. Download opencv-doc_*.deb from packages.debian.org by hand and run: dpkg -x opencv-doc_*.deb x && cp x/usr/share/doc/opencv-doc/examples/data/vtest.avi $DEST/" >&2
        exit 1
    fi
done
mkdir -p "$DEST"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "[sample] downloading the opencv-doc package (about 100 MB) with apt-get download" >&2
if ! (cd "$WORK" && apt-get download opencv-doc >"$WORK/apt.log" 2>&1); then
    sed 's/^/  apt-get: /' "$WORK/apt.log" | tail -n 5 >&2
    if [ "$(id -u)" -eq 0 ]; then fix="apt-get update"; else fix="sudo apt-get update"; fi
    echo "error: could not download opencv-doc with apt-get. Run \`$fix\` and try again; or download opencv-doc_*.deb by hand (https://packages.debian.org/opencv-doc), then: dpkg -x opencv-doc_*.deb x && cp x/usr/share/doc/opencv-doc/examples/data/vtest.avi $DEST/" >&2
    exit 1
fi
DEB=$(ls "$WORK"/opencv-doc_*.deb)
dpkg -x "$DEB" "$WORK/x"
SRC="$WORK/x/usr/share/doc/opencv-doc/examples/data/vtest.avi"
if [ ! -s "$SRC" ]; then
    echo "error: $(basename "$DEB") has no examples/data/vtest.avi; download an opencv-doc 4.x package by hand" >&2
    exit 1
fi
cp "$WORK/x/usr/share/doc/opencv-doc/copyright" "$DEST/vtest.COPYRIGHT" 2>/dev/null || true
cp "$SRC" "$VIDEO.tmp" && mv "$VIDEO.tmp" "$VIDEO"
echo "[sample] wrote $VIDEO (license: see $DEST/vtest.COPYRIGHT)" >&2
echo "$VIDEO"
