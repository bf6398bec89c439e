"""How well `prepare --reference` picks one person out of a crowd: precision and recall on vtest.

    python benchmarks/bench_identity.py [DATA_DIR]     (default data/vtest-128)

DATA_DIR is `poseguide prepare data/sample/vtest.avi --out DATA_DIR` with default settings:
its tracks must be the ones benchmarks/data/vtest-identities.json labels (checked). The
labels group tracks into six people whose clothes tell them apart for certain; every other
track that was looked at is someone else; the rest are left out of the scores.

For each labelled person with at least 20 samples, the references are three samples of
their first track; every labelled sample outside that track is then a candidate:

  * photos: each sample alone, as if every frame were a separate photo of several people
    (the appearance path: its distance to the nearest reference, in look-alike distances,
    against --reference-distance);
  * video: prepare's own choice with tracks (a track decided by its median distance,
    grown through look-alike tracks).

Precision = kept samples that are the person / kept samples; recall = the person's
samples kept / the person's samples; both pooled over the people. A last table scores
every track of 30+ samples as its own person against only the people in the same frames
(certainly someone else), references from its first frames, candidates 2 s later on:
the hard case of dark coats, where clothing colour alone cannot tell people apart.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from poseguide import identity
from poseguide.datasetdir import IMAGES, LANDMARKS, MASKS, read_samples
from poseguide.prepare import SelectionSettings, Source, select_people

LABELS = Path(__file__).parent / "data" / "vtest-identities.json"
THRESHOLDS = (0.6, 0.7, 0.8, 0.9, 1.0)  # --reference-distance, in look-alike distances
# identity.LOOKALIKE_QUANTILE and the default --reference-distance were chosen on candidates from
# the frames before this one; the later frames were kept unseen for judging.
TUNING_FRAMES = 400


def load(data_dir: Path):
    rows = read_samples(data_dir)
    if not rows or "track" not in rows[0]:
        sys.exit(f"error: {data_dir}/samples.csv has no tracks; prepare it again with this version of poseguide")
    images = np.load(data_dir / IMAGES, mmap_mode="r")
    masks = np.load(data_dir / MASKS, mmap_mode="r")
    poses = np.load(data_dir / LANDMARKS)
    looks = identity.appearances(images, masks, poses)
    tracks = np.array([int(r["track"]) for r in rows])
    frames = np.array([int(r["frame"]) for r in rows])
    return rows, looks, tracks, frames


def labels_for(tracks: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Each sample's person (a name), "other", or "" where unknown; exits if the tracks differ."""
    spec = json.loads(LABELS.read_text())
    out = np.array([""] * len(tracks), dtype=object)
    counts = np.bincount(tracks[tracks >= 0])
    out[(tracks >= 0) & (counts[np.maximum(tracks, 0)] >= spec["looked_at_min_samples"])] = "other"
    out[np.isin(tracks, spec["unknown_tracks"])] = ""
    for name, person in spec["identities"].items():
        for t, (first, last) in person["tracks"].items():
            members = tracks == int(t)
            if not members.any() or (frames[members].min(), frames[members].max()) != (first, last):
                sys.exit(f"error: track {t} is not the one labelled ({name}, frames {first}-{last}): "
                         "the data dir was prepared with other settings or another tracker")
            out[members] = name
            for a, b in person.get("exclude", {}).get(t, []):
                out[members & (frames >= a) & (frames <= b)] = ""
    return out


def choose(looks, tracks, frames, references, limit, use_tracks: bool) -> np.ndarray:
    entries = [{"source": "vtest.avi", "frame": int(f), "person": 0} for f in frames]
    sources = {"vtest.avi": Source("vtest.avi", "video", int(frames.max()) + 1, 10.0)}
    chosen = select_people(entries, looks, tracks if use_tracks else np.full_like(tracks, -1), sources,
                           SelectionSettings(reference_distance=limit), [{"appearance": looks[i]} for i in references])
    return np.array([not why for why in chosen["why"]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_dir", nargs="?", default="data/vtest-128")
    args = parser.parse_args()
    rows, looks, tracks, frames = load(Path(args.data_dir))
    labels = labels_for(tracks, frames)
    people = [n for n in json.loads(LABELS.read_text())["identities"] if (labels == n).sum() >= 20]
    print(f"{len(rows)} samples; labelled: {', '.join(f'{n} {(labels == n).sum()}' for n in people)}, "
          f"others {(labels == 'other').sum()}, left out {(labels == '').sum()}")
    for use_tracks in (False, True):
        print(f"\n{'video (tracks)' if use_tracks else 'photos (each sample alone)'}:")
        print(f"  distance  precision  recall   frames <{TUNING_FRAMES} (tuning)  frames >={TUNING_FRAMES} (unseen)"
              "   per person (precision/recall)")
        for limit in THRESHOLDS:
            tp = fp = fn = 0
            halves = np.zeros((2, 3), int)
            each = []
            for name in people:
                mine = np.flatnonzero(labels == name)
                first = tracks[mine[0]]
                ref_track = np.flatnonzero(tracks == first)
                references = ref_track[np.linspace(0, len(ref_track) - 1, 3).astype(int)]
                scored = (labels != "") & (tracks != first)
                kept = choose(looks, tracks, frames, references, limit, use_tracks) & scored
                truth = (labels == name) & scored
                a, b, c = int((kept & truth).sum()), int((kept & ~truth).sum()), int((~kept & truth).sum())
                tp, fp, fn = tp + a, fp + b, fn + c
                for h, part in enumerate((frames < TUNING_FRAMES, frames >= TUNING_FRAMES)):
                    halves[h] += [(kept & truth & part).sum(), (kept & ~truth & part).sum(), (~kept & truth & part).sum()]
                each.append(f"{a / max(a + b, 1):.2f}/{a / max(a + c, 1):.2f}")
            parts = "  ".join(f"{x / max(x + y, 1):.3f} / {x / max(x + z, 1):.3f}      " for x, y, z in halves)
            print(f"  {limit:8.2f}  {tp / max(tp + fp, 1):9.3f}  {tp / max(tp + fn, 1):6.3f}   {parts} {' '.join(each)}")

    print("\nany pedestrian (tracks of 30+ samples) against the people in the same frames, photos:")
    print("  distance  precision  recall")
    counts = np.bincount(tracks[tracks >= 0])
    targets = [t for t in range(len(counts)) if counts[t] >= 30]
    for limit in THRESHOLDS:
        tp = fp = fn = 0
        for t in targets:
            mine = np.flatnonzero(tracks == t)
            references = mine[:3]
            window = (frames >= frames[references].max() + 20) & (frames <= frames[mine].max())
            kept = choose(looks, tracks, frames, references, limit, False) & window
            truth = (tracks == t) & window
            tp += int((kept & truth).sum())
            fp += int((kept & ~truth).sum())
            fn += int((~kept & truth).sum())
        print(f"  {limit:8.2f}  {tp / max(tp + fp, 1):9.3f}  {tp / max(tp + fn, 1):6.3f}   ({len(targets)} pedestrians)")


if __name__ == "__main__":
    main()
