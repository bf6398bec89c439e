"""Photos and videos -> a dataset dir of person-centred samples (the format is in datasetdir.py).

Work is cut into units: one image file, or one chunk of a video's sampled frames. Each
unit is processed by a worker (its own MediaPipe graph, built once) and written as one
atomic shard under DATA_DIR/shards/. Finished units are never redone, so a rerun after
Ctrl-C carries on, and new inputs added to an existing DATA_DIR cost only their own
units. The final arrays are rebuilt from the shards in a fixed order (source, frame),
so the same inputs give the same arrays whatever the worker count or interruptions.

Filters, each counted in skipped.csv and the manifest:
  bad_input        the file cannot be decoded (truncated, empty, not an image, ...)
  no_person        MediaPipe found nobody in the frame
  too_few_visible  fewer than --min-visible of the 13 body joints are visible
  too_small        the person's landmark box is under --min-person-px source pixels
  mask_disagree    the segmentation mask and the landmarks describe different things
  same_person      the same person found again from another proposal in the frame
  other_person     not the person asked for: unlike the --reference photos, not the main
                   subject of a photo, or a track left out by --track / --min-track-frames
  split_gap        a train frame too close in time to a validation segment (no leaks)
  near_duplicate   nearly identical to a sample already kept (web-scrape repeats)

Half-body shots (the frame's bottom edge cuts through the body) are kept with their legs
marked invisible, and counted as `half_body` in the manifest; without hips they have too
few joints and go as too_few_visible.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import json
import math
import multiprocessing as mp
import os
import signal
import sys
import time
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from poseguide import atomicfile, extract, faces, framing, identity, landmarks as lm
from poseguide.datasetdir import (
    FORMAT, IMAGES, LANDMARKS, MANIFEST, MASKS, SAMPLE_COLUMNS, SAMPLES, SKIP_COLUMNS, SKIPPED, VERSION, name_text, read_manifest,
)
from poseguide.decode import DecodeError, decode_image, is_media_path, is_video_path, iter_video_frames, probe_video
from poseguide.extract import DetectorSettings
from poseguide.visualize import make_grid, save_png

STATE_FILE = "prepare-state.json"
SELECTION_SHEET = "selection.png"  # who was kept and who left out, for the user to check
SHARD_DIR = "shards"
THUMB = 12  # near-duplicate descriptor: a THUMB x THUMB RGB thumbnail of the sample
FACE_SIZE = 128  # dlib's face descriptor; NaN where a person shows no usable face

REASONS = (
    "bad_input",
    "no_person",
    "too_few_visible",
    "too_small",
    "mask_disagree",
    "same_person",
    "other_person",
    "split_gap",
    "near_duplicate",
)


class PrepareError(ValueError):
    """A problem the user can fix (bad arguments, a mismatched DATA_DIR); one line."""


# Sample sizes the model trains at: its encoder halves the image once per stage plus once
# in the stem, so four stages (the small and base presets) need a multiple of 32. A model of
# more stages needs more (model.size_problem), and training says so in one line: a dataset is
# not made for one model. Above MAX_SIZE one sample is 3 MB before its mask.
SIZE_STEP, MIN_SIZE, MAX_SIZE = 32, 64, 1024


@dataclass(frozen=True)
class PrepareSettings:
    """Everything that decides which samples a dataset holds. Stored in the manifest;
    appending to a DATA_DIR requires the same values."""

    size: int = 128
    every: int = 1
    background: tuple[int, int, int] = (128, 128, 128)
    min_visible: int = 8  # of the 13 body joints (landmarks.BODY_JOINTS)
    visibility_threshold: float = lm.DEFAULT_VISIBILITY_THRESHOLD
    min_person_px: float = 56.0  # longer side of the visible landmarks' box, source pixels
    min_mask_agreement: float = 0.5
    # near-duplicate: RMS thumbnail difference (0-1 scale) AND mean joint distance
    # (crop-normalised) both under these
    duplicate_image_rms: float = 0.02
    duplicate_pose_dist: float = 0.01
    val_fraction: float = 0.1
    segment_seconds: float = 10.0  # a video is split into train/val by segments this long
    split_gap_seconds: float = 1.0  # train frames this close to a val segment are dropped
    # Sampled video frames per unit. Small: less idle time at the end of a run; a multiple of
    # detector.detect_every: HOG runs on each unit's first frame, so then on every 10th exactly.
    chunk_frames: int = 20
    framing: framing.FramingSettings = framing.FramingSettings()
    detector: DetectorSettings = DetectorSettings()

    def __post_init__(self) -> None:
        if not (MIN_SIZE <= self.size <= MAX_SIZE and self.size % SIZE_STEP == 0):
            raise PrepareError(
                f"--size must be a multiple of {SIZE_STEP} from {MIN_SIZE} to {MAX_SIZE} (the sizes the model "
                f"can be trained at), got {self.size}"
            )
        if self.every < 1:
            raise PrepareError(f"--every must be at least 1, got {self.every}")
        if len(self.background) != 3 or not all(0 <= int(c) <= 255 for c in self.background):
            raise PrepareError(f"--background must be R,G,B with values 0-255, got {self.background}")
        if not 0 <= self.min_visible <= len(lm.BODY_JOINTS):
            raise PrepareError(f"--min-visible must be 0-{len(lm.BODY_JOINTS)}, got {self.min_visible}")
        # `not a <= x` rather than `x < a`, so that NaN fails too
        if not (math.isfinite(self.min_person_px) and self.min_person_px >= 0):
            raise PrepareError(f"--min-person-px must be a number of pixels, 0 or more, got {self.min_person_px}")
        if not 0.0 <= self.min_mask_agreement <= 1.0:
            raise PrepareError(f"--min-mask-agreement must be in [0, 1], got {self.min_mask_agreement}")
        if not 0.0 <= self.visibility_threshold <= 1.0:
            raise PrepareError(f"visibility_threshold must be in [0, 1], got {self.visibility_threshold}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise PrepareError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.chunk_frames < 1:
            raise PrepareError(f"chunk_frames must be at least 1, got {self.chunk_frames}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["background"] = [int(c) for c in self.background]
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "PrepareSettings":
        d = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if "background" in d:
            d["background"] = tuple(int(c) for c in d["background"])
        if "framing" in d:
            d["framing"] = framing.FramingSettings.from_dict(d["framing"])
        if "detector" in d:
            d["detector"] = DetectorSettings.from_dict(d["detector"])
        return cls(**d)


@dataclass(frozen=True)
class SelectionSettings:
    """Which of the people found become samples. Unlike PrepareSettings these may change from
    run to run on one DATA_DIR: only the final step reads them, so a new choice costs seconds.

    With `references`, a person is kept when their look is within `reference_distance` of the
    nearest reference person, measured in look-alike distances: how near the references the
    people known to be someone else come (identity.lookalike_distance). In a video the decision
    is the track's median, so it holds for every frame of one walk past the camera. Without
    them, a photo keeps its main subject only (unless `all_people`) and a video keeps every track.
    """

    references: tuple[str, ...] = ()
    reference_distance: float = 0.8
    tracks: tuple[int, ...] = ()  # keep only these tracks (numbers as `poseguide show --people` draws them)
    min_track_frames: int = 1
    all_people: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.reference_distance <= 5.0:
            raise PrepareError(f"--reference-distance must be in (0, 5], got {self.reference_distance}")
        if self.min_track_frames < 1:
            raise PrepareError(f"--min-track-frames must be at least 1, got {self.min_track_frames}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["references"] = [name_text(r) for r in self.references]
        d["tracks"] = list(self.tracks)
        return d


# ----------------------------------------------------------------------------- sources and units


@dataclass
class Source:
    path: str  # absolute
    kind: str  # "image" | "video" | "folder" (one that could not be listed: error says why)
    frame_count: int = 1
    fps: float = 0.0
    width: int = 0
    height: int = 0
    error: str | None = None  # why it cannot be read (videos are probed up front)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Unit:
    """One shard's worth of work: an image, or frames [start, stop) of a video (every `every`)."""

    source: str
    kind: str
    start: int = 0
    stop: int = 1

    @property
    def key(self) -> str:
        return hashlib.sha1(_name_bytes(f"{self.kind}|{self.source}|{self.start}|{self.stop}")).hexdigest()[:20]

    @property
    def frames(self) -> int:
        return self.stop - self.start


def _name_bytes(text: str) -> bytes:
    """UTF-8 bytes of a text holding file names; a name that is not valid UTF-8 (surrogates,
    as os.fsdecode gives it) keeps its own bytes instead of failing to encode."""
    return text.encode("utf-8", "surrogateescape")


def discover(
    inputs: Iterable[str | os.PathLike], exclude: Path | None = None, unreadable: list[Source] | None = None
) -> list[str]:
    """Input paths -> absolute media file paths. Folders are searched recursively (media
    extensions only, hidden entries skipped); files named explicitly are always taken.
    Folders that cannot be listed are added to `unreadable` as "folder" sources with the reason."""

    def walk_error(err: OSError) -> None:
        if unreadable is not None:
            name = str(Path(err.filename).absolute()) if err.filename else str(err)
            unreadable.append(Source(path=name, kind="folder", frame_count=0,
                                     error=f"cannot list folder ({err.strerror or err.__class__.__name__})"))

    found: list[str] = []
    for raw in inputs:
        path = Path(raw).expanduser()
        if not path.exists() and not path.is_symlink():
            raise PrepareError(f"input not found: {raw}")
        if path.is_dir():
            for root, dirs, files in os.walk(path, onerror=walk_error, followlinks=False):
                rootp = Path(root)
                dirs[:] = sorted(
                    d for d in dirs
                    if not d.startswith(".") and (exclude is None or (rootp / d).resolve() != exclude)
                )
                for name in sorted(files):
                    if not name.startswith(".") and is_media_path(name):
                        found.append(str((rootp / name).absolute()))
        else:
            found.append(str(path.absolute()))
    seen: set[str] = set()
    return [p for p in found if not (p in seen or seen.add(p))]


def make_source(path: str) -> Source:
    if not is_video_path(path):
        return Source(path=path, kind="image")
    try:
        info = probe_video(path)
    except DecodeError as err:
        return Source(path=path, kind="video", frame_count=0, error=str(err))
    return Source(path=path, kind="video", frame_count=info.frame_count, fps=info.fps, width=info.width, height=info.height)


def source_units(source: Source, settings: PrepareSettings) -> list[Unit]:
    if source.error is not None:
        return []
    if source.kind == "image":
        return [Unit(source.path, "image", 0, 1)]
    span = settings.chunk_frames * settings.every
    units = []
    for start in range(0, source.frame_count, span):
        last = start + span >= source.frame_count
        # the last chunk reads to the real end: containers' frame counts can be short
        units.append(Unit(source.path, "video", start, (1 << 40) if last else start + span))
    return units


# ----------------------------------------------------------------------------- one unit (worker side)


@dataclass
class UnitResult:
    key: str
    frames: int
    samples: int
    pose_calls: int
    seconds: float
    detect_seconds: float


_WORKER: dict = {}


def _init_worker(settings_dict: dict, ignore_sigint: bool) -> None:
    """Build this process's MediaPipe graph and HOG once; every unit it runs reuses them."""
    if ignore_sigint:  # Ctrl-C is the parent's to handle; it stops the pool cleanly
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    import cv2

    cv2.setNumThreads(1)  # one process per core already; OpenCV threads would only contend
    _WORKER["settings"] = PrepareSettings.from_dict(settings_dict)
    _WORKER["estimator"] = extract.PoseEstimator()
    _WORKER["hog"] = extract.make_hog()
    _WORKER["faces"] = _face_embedder()


def _run_unit(args: tuple[Unit, str]) -> UnitResult:
    unit, shard_dir = args
    return process_unit(unit, Path(shard_dir), _WORKER["settings"], _WORKER["estimator"], _WORKER["hog"], _WORKER["faces"])


def _face_embedder():
    """dlib's face embedder when the `faces` extra is installed, else None (matching by body only)."""
    return faces.FaceEmbedder() if faces.available() else None


def _frames_of(unit: Unit, settings: PrepareSettings) -> Iterator[tuple[int, np.ndarray]]:
    if unit.kind == "image":
        yield 0, decode_image(unit.source, settings.background)
    else:
        yield from iter_video_frames(unit.source, unit.start, unit.stop, settings.every)


def process_unit(unit: Unit, shard_dir: Path, settings: PrepareSettings, estimator, hog, face_embedder=None) -> UnitResult:
    """Decode, find people, filter, crop; describe each person's look (and face, where one is
    large enough to tell people apart); write the unit's shard atomically."""
    import cv2

    t0 = time.perf_counter()
    calls0 = estimator.calls
    finder = extract.PersonFinder(estimator, settings.detector, hog)
    images, masks, lms, thumbs, looks, face_vectors, rows, skips = [], [], [], [], [], [], [], []
    frames = 0
    try:
        for frame_no, (frame, image) in enumerate(_frames_of(unit, settings)):
            frames += 1
            detect = unit.kind == "image" or frame_no % max(1, settings.detector.detect_every) == 0
            try:
                people = finder.find(image, detect=detect)
            except Exception as err:  # e.g. a 1 x 5000 px image MediaPipe rejects: skip, keep going
                skips.append({"frame": frame, "reason": "bad_input",
                              "detail": f"cannot process ({err.__class__.__name__}: {str(err).splitlines()[0][:200]})"})
                finder.reset()
                continue
            for person in people:
                extract.mark_half_body(person, settings.visibility_threshold)
            kept = _filter_people(people, settings, unit.source, frame, skips)
            if unit.kind == "video":
                finder.track(kept)
            for person_no, person in enumerate(kept):
                sample = extract.person_sample(image, person, settings.size, settings.framing, settings.background)
                images.append(sample.image)
                masks.append(sample.mask)
                lms.append(sample.landmarks)
                thumbs.append(cv2.resize(sample.image, (THUMB, THUMB), interpolation=cv2.INTER_AREA).reshape(-1))
                looks.append(identity.appearance(sample.image, sample.mask, sample.landmarks))
                face = face_embedder.embed(image, person.landmarks) if face_embedder is not None else None
                face_vectors.append(np.full(FACE_SIZE, np.nan, np.float32) if face is None else face)
                rows.append(
                    {
                        "frame": frame,
                        "person": person_no,
                        "box": list(sample.box.as_tuple()),
                        "source_width": image.shape[1],
                        "source_height": image.shape[0],
                        "detector_score": round(float(person.detector_score), 5),
                        "pose_score": round(float(person.pose_score), 5),
                        "mask_agreement": round(float(person.mask_agreement), 5),
                    }
                )
    except DecodeError as err:
        skips.append({"frame": unit.start, "reason": "bad_input", "detail": str(err)})
    size = settings.size
    arrays = {
        "images": np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8),
        "masks": np.stack(masks) if masks else np.zeros((0, size, size), np.uint8),
        "landmarks": np.stack(lms).astype(np.float32) if lms else np.zeros((0, lm.NUM_LANDMARKS, 4), np.float32),
        "thumbs": np.stack(thumbs) if thumbs else np.zeros((0, THUMB * THUMB * 3), np.uint8),
        "appearance": np.stack(looks) if looks else np.zeros((0, *identity.DESCRIPTOR_SHAPE), np.float32),
        "faces": np.stack(face_vectors) if face_vectors else np.zeros((0, FACE_SIZE), np.float32),
    }
    seconds = time.perf_counter() - t0
    meta = {
        "unit": asdict(unit),
        "samples": rows,
        "skipped": skips,
        "frames": frames,
        "pose_calls": estimator.calls - calls0,
        "seconds": round(seconds, 3),
        "detect_seconds": round(finder.detect_seconds, 3),
    }
    _write_shard(shard_dir / f"{unit.key}.npz", arrays, meta)
    return UnitResult(unit.key, frames, len(rows), meta["pose_calls"], seconds, finder.detect_seconds)


def _filter_people(people, settings: PrepareSettings, source: str, frame: int, skips: list) -> list:
    """Apply the per-person filters; record each rejection. Returns the kept people."""
    if not people:
        skips.append({"frame": frame, "reason": "no_person", "detail": "MediaPipe found no pose"})
        return []
    passed = []
    for person in people:
        visible = lm.count_visible_body_joints(person.landmarks, settings.visibility_threshold)
        box = extract.person_box(person, settings.visibility_threshold)
        extent = 0.0 if box is None else max(box.x1 - box.x0, box.y1 - box.y0)
        where = f"proposal {person.proposal}"
        if visible < max(settings.min_visible, 1) or box is None:
            skips.append({"frame": frame, "reason": "too_few_visible", "detail": f"{where}: {visible} of 13 body joints visible"})
        elif extent < settings.min_person_px:
            skips.append({"frame": frame, "reason": "too_small", "detail": f"{where}: {extent:.0f} px tall"})
        elif person.mask_agreement < settings.min_mask_agreement:
            skips.append({"frame": frame, "reason": "mask_disagree", "detail": f"{where}: agreement {person.mask_agreement:.2f}"})
        else:
            passed.append(person)
    # The best-agreeing copy of a person found twice is the one kept.
    passed.sort(key=lambda p: (-round(p.mask_agreement, 6), -round(p.pose_score, 6), p.proposal))
    kept: list = []
    for person in passed:
        twin = next((k for k in kept if extract.same_person(person, k, settings.visibility_threshold)), None)
        if twin is not None:
            skips.append({"frame": frame, "reason": "same_person", "detail": f"proposal {person.proposal} = proposal {twin.proposal}"})
        else:
            kept.append(person)
    kept.sort(key=lambda p: p.proposal)
    return kept


def _write_shard(path: Path, arrays: dict, meta: dict) -> None:
    """An .npz (np.load reads it) written to a temp file, then renamed: a shard is there whole
    or not at all. Deflate level 1, not np.savez_compressed's 6: half the time, 6% larger."""
    path.parent.mkdir(parents=True, exist_ok=True)
    members = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays}
    with atomicfile.atomic_write(path, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, array in members.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


# ----------------------------------------------------------------------------- the run


@dataclass
class PrepareReport:
    out: Path
    samples: int
    train: int
    val: int
    skipped: dict[str, int]
    units_done: int
    units_total: int
    frames_processed: int
    seconds: float
    bad_inputs: list[tuple[str, str]] = field(default_factory=list)
    tracks: int = 0  # people followed through the videos
    half_body: int = 0  # samples kept without knees or ankles
    selection_sheet: Path | None = None
    lookalike: tuple[float, int] | None = None  # with references: identity.lookalike_distance

    def summary(self) -> str:
        skipped = ", ".join(f"{k} {v}" for k, v in self.skipped.items() if v) or "none"
        lines = [
            f"prepared {self.out}: {self.samples} samples (train {self.train}, val {self.val})",
            f"  processed {self.units_done} new of {self.units_total} units, {self.frames_processed} frames, in {self.seconds:.1f} s",
            f"  skipped: {skipped}",
        ]
        for path, reason in self.bad_inputs[:20]:
            lines.append(f"  bad input: {name_text(path)}: {reason}")  # as skipped.csv names it
        if len(self.bad_inputs) > 20:
            lines.append(f"  ... and {len(self.bad_inputs) - 20} more bad inputs (see {SKIPPED})")
        if self.half_body:
            lines.append(f"  {self.half_body} half-body samples (no knee or ankle in the picture; the model learns legs from the rest)")
        if self.tracks:
            lines.append(f"  {self.tracks} people tracked in the videos: `poseguide show {self.out} --people` draws them; "
                         f"--track N... or --min-track-frames N chooses")
        if self.lookalike is not None:
            distance, known = self.lookalike
            basis = (f"the nearest {identity.LOOKALIKE_QUANTILE:.0%} of {known} people known to be someone else"
                     if known >= identity.MIN_KNOWN_OTHERS
                     else f"the default: {known} people known to be someone else are too few to measure it")
            lines.append(f"  look-alikes begin {distance:.2f} from the references ({basis}); "
                         "--reference-distance is in units of that")
        if self.selection_sheet is not None:
            lines.append(f"  who was kept and who left out: {self.selection_sheet}")
        return "\n".join(lines)


def _load_state(out: Path) -> dict | None:
    path = out / STATE_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise PrepareError(f"{path} is unreadable ({err.__class__.__name__}); use a new --out") from None


def _write_json_atomic(path: Path, data) -> None:
    atomicfile.write_text(path, json.dumps(data, indent=1) + "\n")


def _settings_mismatch(old: dict, new: dict, prefix: str = "") -> str | None:
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found = _settings_mismatch(a, b, f"{prefix}{key}.")
            if found:
                return found
        elif a != b:
            return f"{prefix}{key} was {a!r}, now {b!r}"
    return None


@contextlib.contextmanager
def _lock(out: Path):
    with open(out / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise PrepareError(f"another `poseguide prepare` is writing to {out}; wait for it to finish") from None
        yield


def prepare(
    inputs: list[str | os.PathLike],
    out: str | os.PathLike,
    settings: PrepareSettings = PrepareSettings(),
    workers: int = 1,
    progress: bool | None = None,
    selection: SelectionSettings = SelectionSettings(),
) -> PrepareReport:
    """Run (or resume, or extend) a dataset build. Raises PrepareError when nothing is usable."""
    t0 = time.perf_counter()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PrepareError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(not e.name.startswith(".") for e in out.iterdir()) and not (out / STATE_FILE).exists():
        raise PrepareError(f"--out {out} is a non-empty directory that is not a poseguide dataset; use a new --out")
    # Inputs are found before --out is made, so a mistyped input leaves no new folder behind.
    unreadable: list[Source] = []
    found = discover(inputs, exclude=out.resolve(), unreadable=unreadable)
    if not found and not (out / STATE_FILE).exists():
        why = f" ({unreadable[0].path}: {unreadable[0].error})" if unreadable else ""
        raise PrepareError(f"no image or video files found in the inputs{why}")
    references = reference_people(selection.references, settings) if selection.references else []
    out.mkdir(parents=True, exist_ok=True)
    with _lock(out):
        for stale in [*out.glob(".*.tmp"), *out.glob(".*.tmp.npy")]:  # left by a run that was killed
            stale.unlink(missing_ok=True)
        state = _load_state(out)
        settings_dict = settings.to_dict()
        if state is not None:
            problem = _settings_mismatch(state["settings"], settings_dict)
            if problem:
                raise PrepareError(
                    f"{out} was prepared with other settings ({problem}); use the same options to add to it, or a new --out"
                )
            # Unlistable folders are looked at again on every run, and reported if they still are.
            sources = {s["path"]: Source(**s) for s in state["sources"] if s["kind"] != "folder"}
        else:
            sources = {}
        for path in found:
            if path not in sources:
                sources[path] = make_source(path)
        for folder in unreadable:
            sources[folder.path] = folder
        if not sources:
            raise PrepareError("no image or video files found in the inputs")
        ordered = [sources[p] for p in sorted(sources)]
        _write_json_atomic(out / STATE_FILE, {"format": FORMAT + "-state", "settings": settings_dict,
                                              "sources": [s.to_dict() for s in ordered]})

        shard_dir = out / SHARD_DIR
        shard_dir.mkdir(exist_ok=True)
        for stale in shard_dir.glob(".*.tmp"):  # half-written by a run that was killed
            stale.unlink(missing_ok=True)
        units = [u for s in ordered for u in source_units(s, settings)]
        todo = [u for u in units if not (shard_dir / f"{u.key}.npz").exists()]
        frames_done = _run_units(todo, shard_dir, settings, workers, progress, sources)
        report = consolidate(out, ordered, units, settings, selection, references)
        report.units_done, report.units_total = len(todo), len(units)
        report.frames_processed = frames_done
        report.seconds = time.perf_counter() - t0
        if report.samples == 0:
            raise PrepareError(
                f"no usable person samples found in {len(ordered)} input file(s) "
                f"(skipped: {', '.join(f'{k} {v}' for k, v in report.skipped.items() if v) or 'nothing'}); "
                f"see {out / SKIPPED}"
            )
        return report


def _expected_frames(unit: Unit, sources: dict[str, Source], every: int) -> int:
    if unit.kind == "image":
        return 1
    stop = unit.stop
    if unit.source in sources:
        stop = min(stop, sources[unit.source].frame_count)
    return max(0, math.ceil((stop - unit.start) / every))


def _run_units(
    todo: list[Unit], shard_dir: Path, settings: PrepareSettings, workers: int, progress: bool | None,
    sources: dict[str, Source],
) -> int:
    """Process units (in-process for one worker, else a spawn pool). Returns frames processed."""
    if not todo:
        return 0
    from tqdm import tqdm

    # Long units first, so the pool does not end waiting on one late video chunk.
    todo = sorted(todo, key=lambda u: (-_expected_frames(u, sources, 1), u.source, u.start))
    total = sum(_expected_frames(u, sources, settings.every) for u in todo)
    bar = tqdm(total=total, unit="frame", desc="prepare", disable=(not progress) if progress is not None else None,
               file=sys.stderr, dynamic_ncols=True)
    frames = 0
    args = [(u, str(shard_dir)) for u in todo]
    try:
        if workers <= 1:
            _init_worker(settings.to_dict(), ignore_sigint=False)
            try:
                for a in args:
                    r = _run_unit(a)
                    frames += r.frames
                    bar.update(r.frames)
            finally:
                _WORKER.get("estimator") and _WORKER["estimator"].close()
                _WORKER.clear()
        else:
            ctx = mp.get_context("spawn")
            pool = ctx.Pool(min(workers, len(args)), initializer=_init_worker, initargs=(settings.to_dict(), True))
            try:
                for r in pool.imap_unordered(_run_unit, args, chunksize=1):
                    frames += r.frames
                    bar.update(r.frames)
            finally:
                # Every shard is on disk before its result arrives, so stopping the workers
                # now loses nothing, and skips tearing down each MediaPipe graph (~0.2 s).
                pool.terminate()
                pool.join()
    finally:
        bar.close()
    return frames


# ----------------------------------------------------------------------------- consolidation


def _hash01(text: str) -> float:
    return int.from_bytes(hashlib.sha256(_name_bytes(text)).digest()[:8], "big") / 2.0**64


def _split_key(path: str) -> str:
    """Location-independent: the file's name and size, so moving a folder keeps the split."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError:
        size = -1
    return f"{p.name}|{size}"


def assign_splits(entries: list[dict], sources: dict[str, Source], settings: PrepareSettings) -> list[str]:
    """train / val / gap for each sample entry ({"source", "frame"}), deterministically.

    Videos: cut into `segment_seconds` segments; round(val_fraction x segments) of them,
    picked by a hash of (file, segment), are val, and train frames within
    `split_gap_seconds` of a val segment are dropped ("gap"), so no val frame has a
    near-twin in train. Images: val when a hash of the file falls under val_fraction; if
    that leaves val empty, the image with the lowest hash goes to val.
    """
    frac = settings.val_fraction
    val_segments: dict[str, set[int]] = {}
    seg_len: dict[str, int] = {}
    for path, src in sources.items():
        if src.kind != "video" or src.error is not None:
            continue
        length = max(1, int(round(settings.segment_seconds * (src.fps or 25.0))))
        seg_len[path] = length
        # Val segments are drawn from the segments that hold samples: in a long video where the
        # person wanted appears in a few minutes only, a validation set without them is useless.
        present = sorted({int(e["frame"]) // length for e in entries if e["source"] == path})
        n = len(present)
        n_val = int(round(frac * n)) if n >= 2 else 0
        if frac > 0 and n >= 2:
            n_val = max(1, n_val)
        key = _split_key(path)
        ranked = sorted(present, key=lambda s: (_hash01(f"{key}|{s}"), s))
        val_segments[path] = set(ranked[:n_val])
    image_hash = {p: _hash01(_split_key(p)) for p, s in sources.items() if s.kind == "image"}
    out = []
    for e in entries:
        path, frame = e["source"], int(e["frame"])
        if path in val_segments:
            length = seg_len[path]
            seg = frame // length
            vals = val_segments[path]
            if seg in vals:
                out.append("val")
                continue
            gap = int(round(settings.split_gap_seconds * (sources[path].fps or 25.0)))
            near = any(_distance_to_segment(frame, v * length, (v + 1) * length) <= gap for v in vals)
            out.append("gap" if near else "train")
        else:
            out.append("val" if image_hash.get(path, 1.0) < frac else "train")
    if frac > 0 and "val" not in out:
        image_sources = sorted({e["source"] for e in entries if e["source"] in image_hash}, key=lambda p: (image_hash[p], p))
        if len(image_sources) >= 2:
            chosen = image_sources[0]
            out = ["val" if e["source"] == chosen else s for e, s in zip(entries, out)]
    return out


def _distance_to_segment(frame: int, start: int, stop: int) -> int:
    """Frames between `frame` and the segment [start, stop); 0 inside it."""
    if frame < start:
        return start - frame
    if frame >= stop:
        return frame - stop + 1
    return 0


def near_duplicates(thumbs: np.ndarray, poses: np.ndarray, settings: PrepareSettings, candidates: np.ndarray) -> np.ndarray:
    """Greedy, in order: a sample is a near-duplicate if an earlier KEPT sample is within both
    thresholds (thumbnail RMS and mean body-joint distance). Only `candidates` take part."""
    n = len(thumbs)
    dup = np.zeros(n, dtype=bool)
    idx = np.nonzero(candidates)[0]
    if len(idx) < 2:
        return dup
    t = thumbs[idx].astype(np.float32) / 255.0
    d = t.shape[1]
    p = poses[idx][:, list(lm.BODY_JOINTS), :2].astype(np.float32)
    sq = (t * t).sum(1)
    limit = settings.duplicate_image_rms**2 * d
    near: list[list[int]] = [[] for _ in range(len(idx))]
    block = 1024
    for b0 in range(0, len(idx), block):
        b1 = min(len(idx), b0 + block)
        dist = sq[b0:b1, None] + sq[None, :b1] - 2.0 * t[b0:b1] @ t[:b1].T
        ii, jj = np.nonzero(dist < limit)
        for i, j in zip(ii + b0, jj):
            if j < i:
                near[i].append(int(j))
    kept = np.ones(len(idx), dtype=bool)
    for i in range(len(idx)):
        for j in near[i]:
            if kept[j] and float(np.linalg.norm(p[i] - p[j], axis=1).mean()) < settings.duplicate_pose_dist:
                kept[i] = False
                break
    dup[idx[~kept]] = True
    return dup


def consolidate(out: Path, sources: list[Source], units: list[Unit], settings: PrepareSettings,
                selection: SelectionSettings = SelectionSettings(), references: list[dict] | None = None) -> PrepareReport:
    """Rebuild the final arrays, tables and manifest from every finished shard, in a fixed order."""
    shard_dir = out / SHARD_DIR
    by_path = {s.path: s for s in sources}
    entries: list[dict] = []  # one per candidate sample, in (source, frame, person) order
    skips: list[dict] = []
    bad_inputs: list[tuple[str, str]] = []
    shards: list[tuple[Path, int]] = []
    thumbs, poses, looks, face_vectors = [], [], [], []
    for s in sources:
        if s.error is not None:
            skips.append({"source": s.path, "frame": 0, "reason": "bad_input", "detail": s.error})
            bad_inputs.append((s.path, s.error))
    for unit in sorted(units, key=lambda u: (u.source, u.start)):
        path = shard_dir / f"{unit.key}.npz"
        if not path.exists():
            continue
        with np.load(path) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            n = len(meta["samples"])
            if n:
                thumbs.append(z["thumbs"])
                poses.append(z["landmarks"])
                looks.append(z["appearance"] if "appearance" in z.files else _appearances(z))
                face_vectors.append(z["faces"] if "faces" in z.files else np.full((n, FACE_SIZE), np.nan, np.float32))
        for sk in meta["skipped"]:
            skips.append({"source": unit.source, **sk})
            if sk["reason"] == "bad_input":
                bad_inputs.append((unit.source, sk["detail"]))
        for k, row in enumerate(meta["samples"]):
            entries.append({"source": unit.source, **row, "_shard": len(shards), "_row": k})
        shards.append((path, n))
    n = len(entries)
    size = settings.size
    thumbs_a = np.concatenate(thumbs) if thumbs else np.zeros((0, THUMB * THUMB * 3), np.uint8)
    poses_a = np.concatenate(poses) if poses else np.zeros((0, lm.NUM_LANDMARKS, 4), np.float32)
    looks_a = np.concatenate(looks) if looks else np.zeros((0, *identity.DESCRIPTOR_SHAPE), np.float32)
    faces_a = np.concatenate(face_vectors) if face_vectors else np.zeros((0, FACE_SIZE), np.float32)
    tracks = assign_tracks(entries, looks_a, by_path, settings)
    n_tracks = len(set(tracks[tracks >= 0].tolist()))
    chosen = select_people(entries, looks_a, tracks, by_path, selection, references or [], faces_a)
    for i, e in enumerate(entries):
        e["track"] = int(tracks[i])
        e["identity_distance"] = chosen["distance"][i]
        e["identity_by"] = chosen["by"][i]
        if chosen["why"][i]:
            skips.append({"source": e["source"], "frame": e["frame"], "reason": "other_person",
                          "detail": f"person {e['person']}: {chosen['why'][i]}"})
    selected = np.array([not w for w in chosen["why"]], dtype=bool)
    # Split only the people kept, so that the validation set holds the person asked for.
    split = ["gap"] * n
    for i, s in zip(np.flatnonzero(selected), assign_splits([entries[i] for i in np.flatnonzero(selected)], by_path, settings)):
        split[i] = s
    in_gap = np.array([s == "gap" for s in split], dtype=bool)
    dup = near_duplicates(thumbs_a, poses_a, settings, selected & ~in_gap) if n else np.zeros(0, bool)
    keep = [i for i in range(n) if selected[i] and not in_gap[i] and not dup[i]]
    for i in range(n):
        if selected[i] and (in_gap[i] or dup[i]):
            e = entries[i]
            skips.append({"source": e["source"], "frame": e["frame"],
                          "reason": "split_gap" if in_gap[i] else "near_duplicate",
                          "detail": f"person {e['person']}"})
    _write_selection_sheet(out / SELECTION_SHEET, entries, shards, selected, chosen["distance"], references or [])

    sample_rows = []
    for k, i in enumerate(keep):
        e = entries[i]
        sample_rows.append([
            k, split[i], name_text(e["source"]), e["frame"], e["person"], *[f"{v:.3f}" for v in e["box"]],
            e["source_width"], e["source_height"], e["detector_score"], e["pose_score"], e["mask_agreement"],
            e["track"], "" if e["identity_distance"] is None else f"{e['identity_distance']:.3f}", e["identity_by"],
        ])
    # Kept without knees and ankles: half-body shots (prepare hides the legs MediaPipe invents for them).
    half_body = int((poses_a[keep][:, [25, 26, 27, 28], 3] < settings.visibility_threshold).all(1).sum()) if keep else 0
    counts = Counter(s["reason"] for s in skips)
    skipped = {r: counts.get(r, 0) for r in REASONS}
    n_val = sum(1 for i in keep if split[i] == "val")
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "image_size": size,
        "background": [int(c) for c in settings.background],
        "framing": settings.framing.to_dict(),
        "settings": settings.to_dict(),
        "counts": {"samples": len(keep), "train": len(keep) - n_val, "val": n_val, "skipped": skipped},
        "selection": {**selection.to_dict(), "tracks_found": n_tracks,
                      **({"lookalike_distance": round(chosen["lookalike"][0], 4), "known_others": chosen["lookalike"][1]}
                         if chosen["lookalike"] else {})},
        "half_body": half_body,
        "sources": [
            {"path": name_text(s.path), "kind": s.kind, "frames": s.frame_count, "fps": s.fps, **({"error": s.error} if s.error else {})}
            for s in sources
        ],
    }

    # Every file is written under a temp name, and renamed only once all of them are complete,
    # the manifest (which marks a complete set) last: a failure part way, such as a full disk,
    # leaves the previous dataset as it was. ExitStack commits in reverse order of entry.
    names = (MANIFEST, SAMPLES, SKIPPED, LANDMARKS, MASKS, IMAGES)
    with contextlib.ExitStack() as stack:
        tmp = {name: stack.enter_context(atomicfile.atomic_path(out / name)) for name in names}
        _write_arrays(tmp, out, keep, entries, shards, size)
        _write_csv(tmp[SAMPLES], SAMPLE_COLUMNS, sample_rows)
        _write_csv(tmp[SKIPPED], SKIP_COLUMNS, [[name_text(s["source"]), s["frame"], s["reason"], s["detail"]] for s in skips])
        tmp[MANIFEST].write_text(json.dumps(manifest, indent=1) + "\n")
    return PrepareReport(
        out=out, samples=len(keep), train=len(keep) - n_val, val=n_val, skipped=skipped,
        units_done=0, units_total=len(units), frames_processed=0, seconds=0.0, bad_inputs=bad_inputs,
        tracks=n_tracks,
        half_body=half_body,
        lookalike=chosen["lookalike"],
        selection_sheet=(out / SELECTION_SHEET) if (out / SELECTION_SHEET).exists() else None,
    )


def _appearances(shard) -> np.ndarray:
    """Appearance descriptors of a shard written before they were stored in shards."""
    return identity.appearances(shard["images"], shard["masks"], shard["landmarks"])


def assign_tracks(entries: list[dict], looks: np.ndarray, sources: dict[str, Source], settings: PrepareSettings) -> np.ndarray:
    """Track numbers for every entry, unique across the dataset; -1 for people in photos."""
    tracks = np.full(len(entries), -1, np.int64)
    by_source: dict[str, list[int]] = {}
    for i, e in enumerate(entries):
        if sources.get(e["source"]) is not None and sources[e["source"]].kind == "video":
            by_source.setdefault(e["source"], []).append(i)
    offset = 0
    for path in sorted(by_source):
        idx = np.array(by_source[path])
        frames = np.array([entries[i]["frame"] for i in idx])
        boxes = np.array([entries[i]["box"] for i in idx], np.float64)
        local = identity.assign_tracks(frames, boxes, looks[idx], every=settings.every)
        tracks[idx] = local + offset
        offset += int(local.max()) + 1
    return tracks


def select_people(entries: list[dict], looks: np.ndarray, tracks: np.ndarray, sources: dict[str, Source],
                  selection: SelectionSettings, references: list[dict], face_vectors: np.ndarray | None = None) -> dict:
    """Who is kept: {"why": per entry, "" if kept else the reason it is not; "distance": per
    entry, its distance to the nearest reference (None without references); "by": "face" where
    that distance came from faces, "body" where from the look, "" without references;
    "lookalike": (the look-alike distance, how many people it was measured on), None without
    references}."""
    n = len(entries)
    why = [""] * n
    distance: list[float | None] = [None] * n
    by = [""] * n
    lookalike = None
    if references:
        by_face = _face_distances(face_vectors, references, selection.reference_distance, n)
        d, decided, lookalike = _reference_distances(entries, looks, tracks, np.stack([r["appearance"] for r in references]),
                                                     selection.reference_distance, by_face)
        for i in range(n):
            distance[i] = float(d[i])
            by[i] = "body" if np.isnan(by_face[i]) else "face"
            if decided[i] > selection.reference_distance:
                scope = f"track {tracks[i]} looks" if tracks[i] >= 0 else "looks"
                why[i] = f"{scope} {decided[i]:.2f} from the reference (over {selection.reference_distance:.2f})"
    elif not selection.all_people:
        by_photo: dict[str, list[int]] = {}
        for i, e in enumerate(entries):
            if sources.get(e["source"]) is not None and sources[e["source"]].kind == "image":
                by_photo.setdefault(e["source"], []).append(i)
        for idx in by_photo.values():
            if len(idx) < 2:
                continue
            e0 = entries[idx[0]]
            main = idx[identity.main_subject(np.array([entries[i]["box"] for i in idx]), (e0["source_width"], e0["source_height"]))]
            for i in idx:
                if i != main:
                    why[i] = f"not the main subject of the photo (person {entries[main]['person']} is)"
    if selection.tracks or selection.min_track_frames > 1:
        wanted = set(selection.tracks)
        length = np.bincount(tracks[tracks >= 0]) if (tracks >= 0).any() else np.zeros(0, np.int64)
        for i in range(n):
            t = int(tracks[i])
            if why[i] or t < 0:
                continue
            if wanted and t not in wanted:
                why[i] = f"track {t}, not one of --track"
            elif length[t] < selection.min_track_frames:
                why[i] = f"track {t} has {length[t]} frames, under --min-track-frames {selection.min_track_frames}"
    return {"why": why, "distance": distance, "by": by, "lookalike": lookalike}


def _face_distances(face_vectors: np.ndarray | None, references: list[dict], limit: float, n: int) -> np.ndarray:
    """Each entry's face distance to the nearest reference face, rescaled so that dlib's
    same-person distance lands on `limit`; NaN where either side shows no usable face."""
    out = np.full(n, np.nan)
    ref_faces = [r["face"] for r in references if r.get("face") is not None]
    if face_vectors is None or not ref_faces or n == 0:
        return out
    d = np.linalg.norm(face_vectors[:, None, :].astype(np.float64) - np.stack(ref_faces)[None].astype(np.float64), axis=2)
    return d.min(1) * (limit / faces.SAME_PERSON_DISTANCE)  # NaN rows stay NaN


def _reference_distances(entries: list[dict], looks: np.ndarray, tracks: np.ndarray, references: np.ndarray,
                         limit: float, by_face: np.ndarray | None = None, rounds: int = 4,
                         most_references: int = 256) -> tuple[np.ndarray, np.ndarray, tuple[float, int]]:
    """Each entry's distance to the nearest reference look, in look-alike distances, the
    distance its decision uses, and the look-alike distance (identity.lookalike_distance).

    A face, where the entry and a reference both show one, replaces the look. A track is
    decided as a whole, by its median. The reference photos show the person from one
    side in one light, so the tracks accepted in one round lend their looks to the next (the
    person walking away, turning round), as a few more photos from the user would. A track seen
    in the same frames as an accepted one is someone else and is never taken.
    """
    group_of: dict[tuple, int] = {}  # one number per photo or video frame
    groups = np.array([group_of.setdefault((e["source"], e["frame"]), len(group_of)) for e in entries], np.int64)
    frames_of: dict[int, set] = {}
    for t, g in zip(tracks.tolist(), groups.tolist()):
        if t >= 0:
            frames_of.setdefault(t, set()).add(g)
    accepted: set[int] = set()
    pool = references
    for _ in range(rounds):
        d = identity.nearest_reference_distance(looks, pool)
        lookalike = identity.lookalike_distance(d, groups)
        d = d / lookalike[0]
        if by_face is not None:  # a face, where both sides show one, says more than clothes
            d = np.where(np.isnan(by_face), d, by_face)
        median = {t: float(np.median(d[tracks == t])) for t in frames_of}
        grew = False
        for t in sorted(frames_of, key=median.get):
            if t in accepted or median[t] > limit:
                continue
            if any(len(frames_of[t] & frames_of[a]) > 2 for a in accepted):
                continue  # seen beside the person, frame after frame (one shared frame is a track's hand-over)
            accepted.add(t)
            grew = True
        decided = d.copy()
        for t, m in median.items():
            decided[tracks == t] = m if t in accepted else max(m, limit + 1e-6)
        if not grew:
            break
        taken = np.flatnonzero(np.isin(tracks, list(accepted)))
        taken = taken[np.linspace(0, len(taken) - 1, min(len(taken), most_references)).astype(int)]
        pool = np.concatenate([references, looks[taken]])
    return d, decided, lookalike


def reference_people(paths: Iterable[str], settings: PrepareSettings) -> list[dict]:
    """The person in each reference photo, cut out as a sample is: {"path", "image", "mask",
    "landmarks", "appearance", "face" (None: no usable face)}. Raises PrepareError naming the photo that has nobody usable."""
    people = []
    estimator = extract.PoseEstimator()
    face_embedder = _face_embedder()
    try:
        for path in paths:
            try:
                image = decode_image(path, settings.background)
                person = extract.best_person(image, estimator, settings.detector, min_visible=settings.min_visible)
                sample = extract.person_sample(image, person, settings.size, settings.framing, settings.background)
            except (DecodeError, extract.NoPersonError, framing.FramingError) as err:
                raise PrepareError(f"--reference {name_text(path)}: {err}") from None
            people.append({"path": path, "image": sample.image, "mask": sample.mask, "landmarks": sample.landmarks,
                           "appearance": identity.appearance(sample.image, sample.mask, sample.landmarks),
                           "face": face_embedder.embed(image, person.landmarks) if face_embedder is not None else None})
    finally:
        estimator.close()
    return people


def _write_selection_sheet(path: Path, entries: list[dict], shards: list, selected: np.ndarray,
                           distance: list, references: list[dict], per_group: int = 24) -> None:
    """References, then the kept people least like them, then the left-out people most like them:
    where a wrong choice would be. Without references: a sample of each. Removed if nobody was left out."""
    import cv2

    if selected.all() or len(entries) == 0:
        path.unlink(missing_ok=True)
        return
    order = np.arange(len(entries))
    if references:
        d = np.array([1.0 if v is None else v for v in distance])
        kept = order[selected][np.argsort(-d[selected], kind="stable")][:per_group]
        left = order[~selected][np.argsort(d[~selected], kind="stable")][:per_group * 2]
    else:
        kept = order[selected][np.linspace(0, selected.sum() - 1, min(per_group, int(selected.sum()))).astype(int)]
        left = order[~selected][np.linspace(0, (~selected).sum() - 1, min(per_group * 2, int((~selected).sum()))).astype(int)]
    wanted = {int(i) for i in [*kept, *left]}
    crops: dict[int, np.ndarray] = {}
    for shard_no in sorted({entries[i]["_shard"] for i in wanted}):
        with np.load(shards[shard_no][0]) as z:
            for i in wanted:
                if entries[i]["_shard"] == shard_no:
                    crops[i] = z["images"][entries[i]["_row"]]
    side = 96
    tiles, captions = [], []

    def add(image: np.ndarray, caption: str) -> None:
        tiles.append(cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA))
        captions.append(caption)

    for r in references:
        add(r["image"], "reference")
    for group, label in ((kept, "kept"), (left, "left out")):
        for i in group:
            e = entries[i]
            d = "" if distance[i] is None else f" {distance[i]:.2f}"
            add(crops[int(i)], f"{label}{d} f{e['frame']}" + (f" t{e['track']}" if e.get("track", -1) >= 0 else ""))
    save_png(make_grid(tiles, ncol=12, captions=captions), path)


def _write_arrays(tmp: dict[str, Path], out: Path, keep: list[int], entries: list[dict], shards: list, size: int) -> None:
    """Copy the kept samples from their shards into the final arrays' temp files, in order."""
    arrays = {
        "images": _open_allocated(tmp[IMAGES], out / IMAGES, np.uint8, (len(keep), size, size, 3)),
        "masks": _open_allocated(tmp[MASKS], out / MASKS, np.uint8, (len(keep), size, size)),
        "landmarks": _open_allocated(tmp[LANDMARKS], out / LANDMARKS, np.float32, (len(keep), lm.NUM_LANDMARKS, 4)),
    }
    pos = {i: k for k, i in enumerate(keep)}
    by_shard: dict[int, list[tuple[int, int]]] = {}
    for i in keep:
        by_shard.setdefault(entries[i]["_shard"], []).append((entries[i]["_row"], pos[i]))
    for shard_no, pairs in sorted(by_shard.items()):
        with np.load(shards[shard_no][0]) as z:
            rows = [r for r, _ in pairs]
            dest = [d for _, d in pairs]
            for name in arrays:
                arrays[name][dest] = z[name][rows]
    for arr in arrays.values():
        arr.flush()


def _open_allocated(path: Path, target: Path, dtype, shape: tuple[int, ...]) -> np.memmap:
    """A .npy memory map whose disk blocks are all reserved up front. open_memmap alone makes
    a sparse file, and a full disk then shows only when a page is written back: SIGBUS, which
    kills the process with nothing said. Reserved, a full disk is an OSError here."""
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    try:
        with open(path, "r+b") as f:
            os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
    except OSError as err:
        del arr
        raise OSError(err.errno, err.strerror, str(target)) from None
    return arr


def _write_csv(path: Path, header: tuple[str, ...], rows: list[list]) -> None:
    """A table in UTF-8. File names come as `name_text` writes them; a stray byte of one in a
    message (held as a surrogate, as os.fsdecode gives it) is written as a \\udcXX escape."""
    with open(path, "w", encoding="utf-8", errors="backslashreplace", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


# ----------------------------------------------------------------------------- reading


def load_manifest(data_dir: str | os.PathLike) -> dict:
    """The manifest of a prepared dataset, with a one-line PrepareError if it is not one."""
    path = Path(data_dir) / MANIFEST
    if not path.exists():
        raise PrepareError(f"{data_dir} is not a prepared dataset (no {MANIFEST}); run `poseguide prepare` first")
    return read_manifest(path, PrepareError)
