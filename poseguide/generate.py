"""Drawing the trained person: posed, at random, in a reference photo's appearance, or moving.

`Generator` is the API (the `generate` command and the evaluation both use it). It loads an
exported model directory together with the framing and data settings it was trained with,
maps any pose into the model's crop with THE framing rule (`framing.pose_to_crop`, the call
`prepare` used on the training photos), and decodes batches of latents into RGBA images whose
alpha is the generated person mask.

`run()` is the `generate` command. It checks every input first, then draws batch by batch
into a temporary directory beside --out and moves the files into place, so a bad input (or
a crash) never leaves half an output behind, and memory does not grow with --num.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from poseguide import atomicfile, framing, hardware, landmarks as lm, poseformats
from poseguide.coverage import PoseCoverage
from poseguide.dataset import to_model_inputs
from poseguide.datasetdir import MANIFEST as DATASET_MANIFEST
from poseguide.decode import DecodeError, decode_image
from poseguide.extract import NoPersonError, PoseEstimator, best_person, person_sample
from poseguide.model import CONFIG_NAME, DEFAULT_TEMPERATURE, EXTRAS_NAME, ModelLoadError, PoseCVAE, load_extras
from poseguide.rundir import CHECKPOINT_MARKER, CHECKPOINT_RE, CHECKPOINTS_DIR, MODEL_DIR as RUN_MODEL_DIR
from poseguide.visualize import draw_skeleton, make_grid, save_png

DEFAULT_RUNS_DIR = "runs"
DEFAULT_NUM = 4
MAX_NUM = 10_000  # images per run: ~20 minutes on a CPU; more runs with other seeds draw more
MAX_TEMPERATURE = 10.0  # z this far out decodes to blank images
MAX_SEED = 2**63 - 1  # torch.Generator takes 64 bits; numpy's streams refuse negative seeds
MIN_POSE_EXTENT = 0.01  # of the image's longer side: visible points closer than this are one spot
SHEET_NAME = "contact-sheet.png"
SHEET_MAX = 64  # images on the contact sheet: the first ones, so it stays a viewable size


class GenerateError(ValueError):
    """A problem with the user's input (pose, photo, model, options). The message is one line."""


# ----------------------------------------------------------------------------- the model dir


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_model_dir(checkpoint: str | os.PathLike | None, runs_dir: str | os.PathLike = DEFAULT_RUNS_DIR) -> Path:
    """--checkpoint -> the model directory to load.

    A model directory (config.json) is used as is, a training run directory through its
    `model/` export. Without --checkpoint, the one run under `runs_dir` that has a model is
    used; none or several is an error that names what was found.
    """
    if checkpoint is not None:
        path = Path(checkpoint)
        if not path.exists():
            raise ModelLoadError(f"{path}: no such model directory")
        if not path.is_dir():
            raise ModelLoadError(f"{path}: not a directory (--checkpoint takes a model dir or a training run dir)")
        if (path / CONFIG_NAME).is_file():
            return path
        if (path / RUN_MODEL_DIR / CONFIG_NAME).is_file():
            return path / RUN_MODEL_DIR
        if CHECKPOINT_RE.match(path.name) or (path / CHECKPOINT_MARKER).is_file():
            run = path.resolve().parent.parent
            raise ModelLoadError(
                f"{path}: a training checkpoint, not an exported model; export it with "
                f"`poseguide train --output-dir {run} --export-only --resume {path}`"
            )
        if (path / DATASET_MANIFEST).is_file():
            raise ModelLoadError(f"{path}: a prepared dataset, not a model; train one on it with `poseguide train`")
        if (path / CHECKPOINTS_DIR).is_dir():
            raise ModelLoadError(
                f"{path}: this training run has no {RUN_MODEL_DIR}/ export yet; "
                f"make one with `poseguide train --output-dir {path} --export-only`"
            )
        raise ModelLoadError(f"{path}: not a model directory (no {CONFIG_NAME}) nor a training run (no {RUN_MODEL_DIR}/)")

    runs = Path(runs_dir)
    candidates = sorted(
        (p.parent for p in runs.glob(f"*/{RUN_MODEL_DIR}/{CONFIG_NAME}") if p.is_file()),
        key=lambda p: (p.joinpath(CONFIG_NAME).stat().st_mtime, str(p)),
        reverse=True,
    )
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        unexported = sorted(str(p.parent) for p in runs.glob(f"*/{CHECKPOINTS_DIR}") if p.is_dir())
        hint = f" (runs without a {RUN_MODEL_DIR}/ export: {', '.join(unexported)})" if unexported else ""
        raise ModelLoadError(
            f"no --checkpoint given and no trained model under {runs}/{hint}; "
            f"train one with `poseguide train`, or pass --checkpoint MODEL_DIR"
        )
    listed = ", ".join(str(c.parent) for c in candidates)
    raise ModelLoadError(f"no --checkpoint given and {len(candidates)} trained runs under {runs}/ ({listed}, newest first); choose one with --checkpoint")


def resolve_precision(precision: str, device: torch.device) -> str:
    """--precision auto|fp32|bf16|fp16 -> the one to draw in on `device` (one line if impossible)."""
    if precision not in PRECISIONS:
        raise GenerateError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    try:
        choice = hardware.choose_precision(hardware.detect(device), {"fp32": "no"}.get(precision, precision))
    except ValueError as err:
        raise GenerateError(f"--precision {precision}: {err}") from None
    return {"no": "fp32"}.get(choice.mixed_precision, choice.mixed_precision)


def resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        resolved = None
    if resolved is None or resolved.type not in ("cpu", "cuda"):  # meta, xla, ...: nothing to draw on
        raise GenerateError(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise GenerateError(f"device {device!r}: CUDA is not available on this machine (use --device cpu)")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise GenerateError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return resolved


def check_sampling(seed: int, temperature: float) -> None:
    """--seed and --temperature as `generate` and `evaluate` both take them."""
    if not 0 <= seed <= MAX_SEED:
        raise GenerateError(f"--seed must be between 0 and 2**63-1, got {_short_number(seed)}")
    if not (0 <= temperature <= MAX_TEMPERATURE):  # also refuses NaN
        raise GenerateError(f"--temperature must be between 0 and {MAX_TEMPERATURE:g}, got {temperature:g}")


def _short_number(value: int) -> str:
    text = str(value)
    return text if len(text) <= 24 else f"a number of {len(text)} digits"


def check_out_dir(out: str | os.PathLike, option: str = "--out") -> str | None:
    """Why the output folder `out` cannot be written, or None (atomicfile.folder_problem)."""
    problem = atomicfile.folder_problem(out)
    return f"{option} {out}: {problem}" if problem else None


def check_framing_settings(settings: framing.FramingSettings, where: str | os.PathLike) -> None:
    """Framing numbers from a file: a zero fill would divide by zero, a string would not compare."""
    def number(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    if not (number(settings.fill) and 0 < settings.fill <= 1):
        raise ModelLoadError(f"{where}: framing.fill must be in (0, 1], got {settings.fill!r}")
    if not (number(settings.visibility_threshold) and 0 <= settings.visibility_threshold <= 1):
        raise ModelLoadError(f"{where}: framing.visibility_threshold must be in [0, 1], got {settings.visibility_threshold!r}")
    if not (isinstance(settings.min_points, int) and not isinstance(settings.min_points, bool)
            and 1 <= settings.min_points <= lm.NUM_LANDMARKS):
        raise ModelLoadError(f"{where}: framing.min_points must be 1-{lm.NUM_LANDMARKS}, got {settings.min_points!r}")


# ----------------------------------------------------------------------------- the API


@dataclass
class Appearance:
    """A latent encoded from a reference photo, and the training-style sample it came from."""

    z: torch.Tensor  # (1, D), the posterior mean
    image: np.ndarray  # (S, S, 3) uint8, background replaced like a training sample
    mask: np.ndarray  # (S, S) uint8
    landmarks: np.ndarray  # (33, 4) crop-normalised: the pose it was encoded with
    source: str


@dataclass
class Generator:
    """A trained model ready to draw: weights, framing settings, background, training poses."""

    model: PoseCVAE
    model_dir: Path
    framing: framing.FramingSettings
    background: tuple[int, int, int]
    train_poses: np.ndarray | None = None  # (N, 33, 4) crop-normalised poses of the train split
    synthetic_poses: np.ndarray | None = None  # (M, 33, 4) poses of synthetic people it also trained on
    extra_config: dict = field(default_factory=dict)
    precision: str = "fp32"  # "bf16"/"fp16": autocast the decoder (see poseguide.hardware)
    _coverage: object | None = field(default=None, repr=False)

    @classmethod
    def load(cls, model_dir: str | os.PathLike, device: str | torch.device = "cpu", precision: str = "auto") -> "Generator":
        """Load an exported model directory, or a training run's (its `model/`).

        `precision` auto draws in bf16 where the device computes it natively and in fp32
        elsewhere (poseguide.hardware). Raises ModelLoadError with one line when the model is
        missing, broken or inconsistent.
        """
        precision = resolve_precision(precision, resolve_device(device))
        model_dir = resolve_model_dir(model_dir)
        model = PoseCVAE.from_pretrained(model_dir, map_location="cpu")
        extra, tensors = load_extras(model_dir)
        where = model_dir / CONFIG_NAME
        size = model.config.image_size
        data = extra.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("image_size"), int):
            raise ModelLoadError(f"{where}: has no 'data' section with the image size (export models with `poseguide train`)")
        if data["image_size"] != size:
            raise ModelLoadError(
                f"{where}: incompatible sizes: the model draws {size}x{size} px but its data settings say "
                f"{data['image_size']}x{data['image_size']} px"
            )
        background = data.get("background", (0, 0, 0))
        if (
            not isinstance(background, (list, tuple))
            or len(background) != 3
            or not all(isinstance(c, int) and 0 <= c <= 255 for c in background)
        ):
            raise ModelLoadError(f"{where}: data.background must be [R, G, B] with values 0-255, got {background!r}")
        if not isinstance(extra.get("framing"), dict):
            raise ModelLoadError(f"{where}: has no 'framing' section, so poses cannot be framed as in training")
        try:
            framing_settings = framing.FramingSettings.from_dict(extra["framing"])
        except (TypeError, ValueError) as err:
            raise ModelLoadError(f"{where}: bad 'framing' section ({err})") from None
        check_framing_settings(framing_settings, where)
        train_poses = _poses(tensors, "train_poses", model_dir)
        synthetic_poses = _poses(tensors, "synthetic_poses", model_dir)
        model = model.to(resolve_device(device)).eval()
        return cls(
            model=model,
            model_dir=model_dir,
            framing=framing_settings,
            background=tuple(int(c) for c in background),  # type: ignore[arg-type]
            train_poses=train_poses,
            synthetic_poses=synthetic_poses,
            extra_config=extra,
            precision=precision,
        )

    @property
    def image_size(self) -> int:
        return self.model.config.image_size

    @property
    def latent_dim(self) -> int:
        return self.model.latent_dim

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # --- poses -----------------------------------------------------------------------------

    def frame_pose(
        self,
        landmarks: np.ndarray,
        image_size: tuple[int, int],
        source: str = "pose",
        min_visible: int = lm.DEFAULT_MIN_VISIBLE_BODY_JOINTS,
    ) -> np.ndarray:
        """A (33, 4) pose normalised to an image of (W, H) -> the same pose in the model's crop.

        `framing.pose_to_crop` with the training framing settings: the call `prepare` made on
        every training photo, so the pose lands where training poses did, whatever the size
        and position of the image it came from. Poses with fewer than `min_visible` visible
        body joints are refused (lm.PoseFileError; 0 turns the check off).
        """
        pose = np.asarray(landmarks, dtype=np.float32)
        if pose.shape != (lm.NUM_LANDMARKS, 4):
            raise GenerateError(f"{source}: expected a (33, 4) pose, got shape {pose.shape}")
        if not np.isfinite(pose).all():
            raise GenerateError(f"{source}: the pose has NaN or infinite values")
        if min_visible > 0:
            lm.require_visible(pose, source, min_visible)
        visible = pose[:, 3] >= self.framing.visibility_threshold
        if visible.any():
            xy = pose[visible, :2] * np.asarray(image_size, dtype=np.float64) / max(image_size)
            extent = float((xy.max(axis=0) - xy.min(axis=0)).max())
            if extent < MIN_POSE_EXTENT:
                raise GenerateError(
                    f"{source}: the visible landmarks all lie on one spot (they span {extent:.2g} of the image, "
                    f"at least {MIN_POSE_EXTENT:g} is needed)"
                )
        try:
            crop, _ = framing.pose_to_crop(pose, image_size, self.framing)
        except framing.FramingError as err:
            raise GenerateError(f"{source}: {err}") from None
        return crop

    def coverage(self):
        """The training poses as a PoseCoverage (mirrored where training flipped), or None for
        a model saved without them."""
        if self.train_poses is None or len(self.train_poses) == 0:
            return None
        if self._coverage is None:
            flipped = bool((self.extra_config.get("data") or {}).get("flip", True))
            seen = self.train_poses if self.synthetic_poses is None else np.concatenate([self.train_poses, self.synthetic_poses])
            self._coverage = PoseCoverage.from_training_poses(seen, mirrored=flipped)
        return self._coverage

    def pose_warning(self, poses: np.ndarray, sources: Sequence[str]) -> str | None:
        """One line when any of `poses` (N, 33, 4, crop coordinates) lies outside what the
        model saw in training (poseguide.coverage), naming the furthest; None otherwise."""
        coverage = self.coverage()
        if coverage is None or len(poses) == 0:
            return None
        distances, _ = coverage.nearest(poses)
        far = np.flatnonzero(distances > coverage.far)
        if len(far) == 0:
            return None
        worst = int(far[np.argmax(distances[far])])
        if len(poses) == 1:
            return coverage.warning(poses[0], sources[0])
        return (f"{len(far)} of {len(poses)} poses are unlike any training pose (furthest: {sources[worst]}, "
                f"{distances[worst]:.3f} from the nearest, beyond {coverage.far:g}); the person may be drawn poorly in them")

    def random_poses(self, num: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """`num` poses drawn (with replacement) from the training set's own poses, already in
        crop coordinates. Returns (poses (num, 33, 4), their indices in the train split)."""
        if self.train_poses is None or len(self.train_poses) == 0:
            raise GenerateError(
                f"{self.model_dir}: this model was saved without its training poses ('train_poses' in "
                f"{EXTRAS_NAME}), so --random-pose cannot draw from them; give a pose with --pose or --pose-image"
            )
        rng = np.random.default_rng([int(seed), 1])  # a stream of its own, apart from z's
        index = rng.integers(0, len(self.train_poses), size=num)
        return self.train_poses[index].copy(), index

    def pose_from_photo(self, photo: str | os.PathLike, estimator=None) -> tuple[np.ndarray, tuple[int, int]]:
        """MediaPipe's pose of the main person in a photo, as `poseguide pose` finds it:
        ((33, 4) normalised to the photo, (W, H))."""
        try:
            image = decode_image(photo)
        except DecodeError as err:
            raise GenerateError(f"{photo}: {err}") from None
        person = _best_person(image, str(photo), estimator)
        height, width = image.shape[:2]
        return person.landmarks, (width, height)

    # --- latents ---------------------------------------------------------------------------

    def sample_z(self, num: int, seed: int = 0, temperature: float = DEFAULT_TEMPERATURE) -> torch.Tensor:
        """`num` latents from the model's prior (fitted to the training posteriors at export;
        PoseCVAE.sample_latent), temperature scaling the spread, on the CPU.

        Rows are drawn one after another from one seeded torch.Generator, so latent i is the
        same whatever `num` is: `--num 4` draws the first four of `--num 16`.
        """
        gen = torch.Generator().manual_seed(int(seed))
        return self.model.sample_latent(num, gen, float(temperature)).cpu()

    @torch.inference_mode()
    def encode(self, images: np.ndarray, masks: np.ndarray, landmarks: np.ndarray) -> torch.Tensor:
        """Training-style samples -> posterior means (B, D).

        images (B, S, S, 3) uint8 with the background replaced, masks (B, S, S) uint8,
        landmarks (B, 33, 4) crop-normalised: exactly what the dataset feeds training.
        """
        batch = {
            "image": torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)),
            "mask": torch.from_numpy(np.ascontiguousarray(masks, dtype=np.uint8)),
            "landmarks": torch.from_numpy(np.ascontiguousarray(landmarks, dtype=np.float32)),
        }
        image, mask, poses = to_model_inputs(batch, self.device)
        with self._autocast():
            mu, _ = self.model.encode(image, mask, self.model.condition(poses))
        return mu.float().cpu()

    def encode_appearance(self, photo: str | os.PathLike, estimator=None) -> torch.Tensor:
        """Pose transfer's appearance z (1, D) of the person in a reference photo; see `appearance`."""
        return self.appearance(photo, estimator).z

    def appearance(self, photo: str | os.PathLike, estimator=None) -> Appearance:
        """The reference photo's person is found (MediaPipe pose + mask), cut out with the
        training framing and background exactly as `prepare` cuts a training sample, and
        encoded with its own pose as the condition (posterior mean)."""
        source = str(photo)
        try:
            image = decode_image(photo, self.background)
        except DecodeError as err:
            raise GenerateError(f"{source}: {err}") from None
        person = _best_person(image, source, estimator)
        lm.require_visible(person.landmarks, source)
        try:
            sample = person_sample(image, person, self.image_size, self.framing, self.background)
        except framing.FramingError as err:
            raise GenerateError(f"{source}: {err}") from None
        z = self.encode(sample.image[None], sample.mask[None], sample.landmarks[None])
        return Appearance(z=z, image=sample.image, mask=sample.mask, landmarks=sample.landmarks, source=source)

    # --- drawing ---------------------------------------------------------------------------

    def _autocast(self):
        dtype = torch.float16 if self.precision == "fp16" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype, enabled=self.precision != "fp32")

    @torch.inference_mode()
    def generate(
        self,
        poses: np.ndarray | None = None,
        *,
        num: int | None = None,
        z: torch.Tensor | np.ndarray | None = None,
        seed: int = 0,
        temperature: float = DEFAULT_TEMPERATURE,
        batch_size: int = 16,
    ) -> np.ndarray:
        """Draw K images as RGBA uint8 (K, S, S, 4); alpha is the generated person mask.

        poses: (K, 33, 4) crop-normalised (see `frame_pose`), or None for unposed samples
        through the null condition (then `num` or `z` says how many). z: (K, D), or (1, D)/(D,)
        for one appearance in every pose; None draws `sample_z(K, seed, temperature)`.
        The same arguments give the same images (seeded torch.Generator, no global RNG).
        """
        if poses is not None:
            poses = np.asarray(poses, dtype=np.float32)
            if poses.ndim == 2:
                poses = poses[None]
            if poses.ndim != 3 or poses.shape[1:] != (lm.NUM_LANDMARKS, 4):
                raise GenerateError(f"poses should be (K, 33, 4), got shape {poses.shape}")
            if not np.isfinite(poses).all():
                raise GenerateError("poses hold NaN or infinite values")
            count = len(poses)
            if num is not None and num != count:
                raise GenerateError(f"num={num} but {count} poses were given")
        elif num is not None:
            count = int(num)
        elif z is not None:
            count = len(torch.as_tensor(z).reshape(-1, self.latent_dim))
        else:
            raise GenerateError("generate() needs poses, num or z")
        if z is None:
            z = self.sample_z(count, seed, temperature)
        z = torch.as_tensor(z, dtype=torch.float32).cpu()
        if z.ndim == 1:
            z = z[None]
        if z.shape[0] == 1 and count != 1:
            z = z.expand(count, -1)
        if tuple(z.shape) != (count, self.latent_dim):
            raise GenerateError(f"z should be ({count}, {self.latent_dim}), got {tuple(z.shape)}")
        size = self.image_size
        out = np.empty((count, size, size, 4), dtype=np.uint8)
        for start in range(0, count, max(1, batch_size)):
            stop = min(count, start + max(1, batch_size))
            zb = z[start:stop].contiguous().to(self.device)
            pb = None if poses is None else torch.from_numpy(poses[start:stop]).to(self.device)
            with self._autocast():
                rgb, alpha_logits = self.model.decode(zb, pb)
            out[start:stop] = to_rgba(rgb, alpha_logits)
        return out


def _poses(tensors: dict[str, torch.Tensor], name: str, model_dir: Path) -> np.ndarray | None:
    """A (N, 33, 4) pose array kept in a model's extras, or None; a wrong shape is one line."""
    poses = tensors.get(name)
    if poses is None:
        return None
    poses = poses.float().numpy()
    if poses.ndim != 3 or poses.shape[1:] != (lm.NUM_LANDMARKS, 4):
        raise ModelLoadError(f"{model_dir / EXTRAS_NAME}: {name} should be (N, 33, 4), found {tuple(poses.shape)}")
    return poses


def _best_person(image: np.ndarray, source: str, estimator=None):
    """The photo's main person (extract.best_person, as `poseguide pose` picks it) or a one-line error."""
    try:
        if estimator is not None:
            return best_person(image, estimator)
        with PoseEstimator() as own:
            return best_person(image, own)
    except NoPersonError as err:
        raise GenerateError(f"{source}: {err}") from None


def to_rgba(rgb: torch.Tensor, alpha_logits: torch.Tensor) -> np.ndarray:
    """Decoder output (B, 3, S, S) in [-1, 1] and (B, 1, S, S) logits -> (B, S, S, 4) uint8."""
    colour = (rgb.float().clamp(-1, 1) + 1.0) * 127.5
    alpha = torch.sigmoid(alpha_logits.float()) * 255.0
    rgba = torch.cat([colour, alpha], dim=1).round_().clamp_(0, 255).to(torch.uint8)
    return rgba.permute(0, 2, 3, 1).cpu().numpy()


def composite(rgba: np.ndarray, background: Sequence[int]) -> np.ndarray:
    """RGBA uint8 (..., 4) over a constant colour -> RGB uint8 (..., 3)."""
    rgba = np.asarray(rgba)
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    bg = np.asarray(background, dtype=np.float32)
    out = rgba[..., :3].astype(np.float32) * alpha + bg * (1.0 - alpha)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def skeleton_tile(pose: np.ndarray, size: int, background: Sequence[int]) -> np.ndarray:
    """A pose drawn on a plain tile of the background colour, as on training sample grids."""
    canvas = np.empty((size, size, 3), dtype=np.uint8)
    canvas[:] = np.asarray(background, dtype=np.uint8)
    return draw_skeleton(canvas, pose)


def contact_sheet(
    images: np.ndarray,
    poses: np.ndarray | None,
    captions: Sequence[str],
    background: Sequence[int],
    reference: Appearance | None = None,
) -> np.ndarray:
    """One RGB sheet: each sample beside the skeleton it was asked to follow (unposed samples
    alone); a pose transfer starts with its reference sample and the pose it was encoded in."""
    images = np.asarray(images)
    size = images.shape[1]
    scale = max(1, 128 // size)  # tiny models' samples are shown at least 128 px wide

    def up(tile: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(tile, scale, axis=0), scale, axis=1) if scale > 1 else tile

    tiles, texts = [], []
    if reference is not None:
        tiles.append(np.concatenate([up(reference.image), draw_skeleton(up(reference.image), reference.landmarks)], axis=1))
        texts.append(f"appearance: {Path(reference.source).name}")
    for i, image in enumerate(images):
        if poses is None:
            tiles.append(up(image))
        else:
            tiles.append(np.concatenate([skeleton_tile(poses[i], size * scale, background), up(image)], axis=1))
        texts.append(captions[i])
    ncol = max(1, math.ceil(math.sqrt(len(tiles) * (1 if poses is None else 0.5))))
    return make_grid(tiles, ncol=ncol, captions=texts)


# ----------------------------------------------------------------------------- animations


def mp4_encoder() -> str | None:
    """An MP4 encoder that works offline: imageio's FFmpeg plugin, else OpenCV's bundled FFmpeg."""
    import importlib.util

    if importlib.util.find_spec("imageio_ffmpeg") is not None:
        return "imageio-ffmpeg"
    try:
        import cv2

        if "FFMPEG:                      YES" in cv2.getBuildInformation().replace("\t", " "):
            return "opencv"
    except Exception:  # noqa: BLE001 - no OpenCV or no build info: no encoder
        pass
    return None


def write_animation(path: Path, frames: np.ndarray, fps: float) -> Path | None:
    """Write RGB frames as .gif (imageio + Pillow, loops forever) or .mp4. Returns the path
    written, or None when no MP4 encoder works here (the caller falls back to GIF)."""
    import imageio.v3 as iio

    frames = np.ascontiguousarray(frames)
    if path.suffix == ".gif":
        iio.imwrite(path, frames, extension=".gif", duration=max(1, round(1000.0 / fps)), loop=0)
        return path
    encoder = mp4_encoder()
    if encoder == "imageio-ffmpeg":
        import imageio.v2 as iio2

        try:
            iio2.mimwrite(path, list(frames), format="FFMPEG", fps=fps, macro_block_size=1)
            return path
        except Exception:  # noqa: BLE001 - a broken ffmpeg binary: try the next encoder
            path.unlink(missing_ok=True)
    if encoder in ("imageio-ffmpeg", "opencv"):
        import cv2

        height, width = frames.shape[1:3]
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
        if writer.isOpened():
            for frame in frames:
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            writer.release()
            if path.is_file() and path.stat().st_size > 0:
                return path
        writer.release()
        path.unlink(missing_ok=True)
    return None


# ----------------------------------------------------------------------------- the command


@dataclass
class GenerateOptions:
    """The `generate` command's settings (see `poseguide generate --help`)."""

    checkpoint: str | None = None
    pose: Sequence[str] = ()  # keypoints files or folders of them; several -> a sequence
    pose_image: str | None = None
    random_pose: bool = False
    appearance: str | None = None
    num: int | None = None
    seed: int = 0
    temperature: float = DEFAULT_TEMPERATURE
    background: tuple[int, int, int] | None = None  # composite instead of RGBA
    out: str = "generated"
    video: str = "gif"  # sequence format: gif or mp4
    fps: float = 8.0
    device: str = "cpu"
    precision: str = "auto"
    batch_size: int = 16
    runs_dir: str = DEFAULT_RUNS_DIR
    progress: bool | None = None  # None: a bar only on a terminal


@dataclass
class GenerateReport:
    out: Path
    images: list[str]
    sidecars: int
    sheet: str
    animation: str | None = None
    model_dir: Path | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. a pose unlike the training poses

    def summary(self) -> str:
        parts = [f"wrote {len(self.images)} image{'s' if len(self.images) != 1 else ''}"]
        if self.sidecars:
            parts.append(f"{self.sidecars} pose file{'s' if self.sidecars != 1 else ''}")
        if self.animation:
            parts.append(self.animation)
        parts.append(self.sheet)
        return f"{', '.join(parts)} to {self.out} (model {self.model_dir})"


@dataclass
class _Plan:
    """What one run draws, decided (and every input checked) before any image is drawn."""

    names: list[str]
    z: torch.Tensor  # (K, D), or (1, D): one appearance for every image
    poses: np.ndarray | None  # crop poses the images are conditioned on
    captions: list[str]
    reference: Appearance | None = None
    sequence: bool = False
    warnings: list[str] = field(default_factory=list)


def pose_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """--pose arguments -> keypoints files: files as given, folders as their *.json, sorted."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.glob("*.json") if p.is_file() and not p.name.startswith("."))
            if not found:
                raise GenerateError(f"{path}: folder holds no .json keypoints files")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise GenerateError(f"{path}: no such keypoints file")
    return files


def check_options(o: GenerateOptions) -> None:
    """Option combinations that cannot work, refused before any model or photo is read."""
    sources = [bool(o.pose), o.pose_image is not None, bool(o.random_pose)]
    if sum(sources) > 1:
        raise GenerateError("choose one pose source: --pose, --pose-image or --random-pose")
    if o.num is not None and o.num < 1:
        raise GenerateError(f"--num must be at least 1, got {o.num}")
    if o.num is not None and o.num > MAX_NUM:
        raise GenerateError(f"--num is at most {MAX_NUM} per run, got {_short_number(o.num)}; "
                            f"run again with another --seed for more")
    check_sampling(o.seed, o.temperature)
    if not (o.fps > 0 and math.isfinite(o.fps)):
        raise GenerateError(f"--fps must be > 0, got {o.fps}")
    if o.batch_size < 1:
        raise GenerateError(f"--batch-size must be at least 1, got {o.batch_size}")
    if o.video not in ("gif", "mp4"):
        raise GenerateError(f"--video must be gif or mp4, got {o.video!r}")
    if o.appearance is not None and not any(sources):
        raise GenerateError("--appearance needs a target pose: add --pose, --pose-image or --random-pose")
    if o.appearance is not None and not o.random_pose and (o.num or 1) > 1:
        raise GenerateError("--num > 1 with --appearance would draw the same image again; give several --pose files for a sequence")
    problem = check_out_dir(o.out)
    if problem:
        raise GenerateError(problem)
    if o.background is not None and (len(o.background) != 3 or not all(0 <= int(c) <= 255 for c in o.background)):
        raise GenerateError(f"--background must be R,G,B with values 0-255, got {o.background}")


def plan(o: GenerateOptions) -> tuple[Generator, _Plan]:
    """Check every input and choose every pose and latent; nothing is drawn or written here."""
    check_options(o)
    files = pose_files(o.pose) if o.pose else []
    keypoints = [(str(f), poseformats.read_pose(f)) for f in files]  # malformed files fail before the model loads
    sequence = len(keypoints) > 1
    if sequence and (o.num or 1) > 1:
        raise GenerateError(f"--num cannot be used with a sequence ({len(keypoints)} poses are drawn with one appearance)")

    gen = Generator.load(resolve_model_dir(o.checkpoint, o.runs_dir), o.device, o.precision)

    poses: np.ndarray | None = None
    captions: list[str] = []
    estimator = None
    try:
        if keypoints:
            poses = np.stack([gen.frame_pose(kp.landmarks, kp.pixel_aspect_size(), source) for source, kp in keypoints])
            captions = [Path(source).stem for source, _ in keypoints]
        if o.pose_image is not None or o.appearance is not None:
            estimator = PoseEstimator()
        if o.pose_image is not None:
            landmarks, image_size = gen.pose_from_photo(o.pose_image, estimator)
            poses = gen.frame_pose(landmarks, image_size, str(o.pose_image))[None]
            captions = [Path(o.pose_image).stem]
        reference = gen.appearance(o.appearance, estimator) if o.appearance is not None else None
    finally:
        if estimator is not None:
            estimator.close()

    warnings = []
    if poses is not None:  # the user's own poses, before any repetition
        sources = [source for source, _ in keypoints] or [str(o.pose_image)]
        warning = gen.pose_warning(poses, sources)
        warnings = [warning] if warning else []
    if o.random_pose:
        count = o.num or DEFAULT_NUM
        poses, index = gen.random_poses(count, o.seed)
        captions = [f"train pose {i}" for i in index]
    elif poses is not None and not sequence and reference is None:
        count = o.num or DEFAULT_NUM
        poses = np.repeat(poses, count, axis=0)
        captions = captions * count
    elif poses is None:
        count = o.num or DEFAULT_NUM
    else:
        count = len(poses)

    if reference is not None:
        z = reference.z
    elif sequence:
        z = gen.sample_z(1, o.seed, o.temperature)  # one appearance through the whole sequence
    else:
        z = gen.sample_z(count, o.seed, o.temperature)

    stem = "frame" if sequence else "sample"
    width = max(3, len(str(count - 1)))
    names = [f"{stem}-{i:0{width}d}" for i in range(count)]
    captions = [f"{n} {c}".strip() for n, c in zip(names, captions or [""] * count)]
    return gen, _Plan(names, z, poses, captions, reference, sequence, warnings)


def run(o: GenerateOptions) -> GenerateReport:
    """The `generate` command. Every user-fixable problem is a one-line GenerateError, and
    then nothing has been written.

    Images are drawn a batch at a time and written straight into a temporary folder beside
    --out, which moves into place once everything is written, so memory stays flat whatever
    --num is and an interrupted run leaves no half output. The contact sheet shows the first
    SHEET_MAX images; only a sequence keeps all its frames, for the animation.
    """
    try:
        gen, p = plan(o)
    except (lm.PoseFileError, ModelLoadError, framing.FramingError) as err:
        raise GenerateError(" ".join(str(err).split())) from None
    from tqdm.auto import tqdm

    background = tuple(o.background) if o.background is not None else gen.background
    count = len(p.names)
    on_sheet = min(count, SHEET_MAX)
    kept = count if p.sequence else on_sheet  # a sequence's animation needs every frame
    shown: list[np.ndarray] = []  # composited images for the sheet (and the animation)

    out = Path(o.out)
    notes: list[str] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        tmp.chmod(0o777 & ~atomicfile.current_umask())  # mkdtemp's 0700 would otherwise become --out's mode
        bar = tqdm(total=count, desc="generate", unit="img", leave=False, mininterval=1.0,
                   disable=None if o.progress is None else not o.progress)
        with bar:
            for start in range(0, count, o.batch_size):
                stop = min(count, start + o.batch_size)
                zb = p.z if len(p.z) == 1 else p.z[start:stop]
                pb = None if p.poses is None else p.poses[start:stop]
                rgba = gen.generate(pb, num=None if pb is not None else stop - start, z=zb, batch_size=o.batch_size)
                pngs = rgba if o.background is None else composite(rgba, background)
                for i, name in enumerate(p.names[start:stop], start=start):
                    save_png(pngs[i - start], tmp / f"{name}.png")
                    if p.poses is not None:
                        lm.write_keypoints(tmp / f"{name}.json", p.poses[i], (gen.image_size, gen.image_size))
                if start < kept:
                    shown.append(composite(rgba[: kept - start], background))
                bar.update(stop - start)
        shown_all = np.concatenate(shown)
        sheet = contact_sheet(shown_all[:on_sheet], None if p.poses is None else p.poses[:on_sheet],
                              p.captions[:on_sheet], background, p.reference)
        save_png(sheet, tmp / SHEET_NAME)
        animation = None
        if p.sequence:
            path = write_animation(tmp / f"sequence.{o.video}", shown_all, o.fps)
            if path is None:
                notes.append("no MP4 encoder is available offline (install imageio-ffmpeg); wrote sequence.gif instead")
                path = write_animation(tmp / "sequence.gif", shown_all, o.fps)
            animation = path.name
        written = sorted(q.name for q in tmp.iterdir())
        for name in written:  # mkstemp-made files are 0600; outputs get the user's usual mode
            (tmp / name).chmod(atomicfile.default_mode())
        _commit(tmp, out, written, stale=[f"{n}.json" for n in p.names] if p.poses is None else [])
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return GenerateReport(
        out=out,
        images=[f"{n}.png" for n in p.names],
        sidecars=0 if p.poses is None else count,
        sheet=SHEET_NAME if on_sheet == count else f"{SHEET_NAME} (the first {on_sheet})",
        animation=animation,
        model_dir=gen.model_dir,
        notes=notes,
        warnings=p.warnings,
    )


def _commit(tmp: Path, out: Path, names: list[str], stale: list[str]) -> None:
    """Move a finished output into place: a new --out is one rename; into an existing folder
    each file is renamed over its old version, and an old pose file beside an image that is
    now unposed is removed (it would describe the wrong picture)."""
    if not out.exists():
        os.replace(tmp, out)
        return
    for name in names:
        os.replace(tmp / name, out / name)
    for name in stale:
        (out / name).unlink(missing_ok=True)
    tmp.rmdir()
