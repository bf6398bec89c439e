"""`poseguide evaluate`: how good is a model, in numbers a user can trust and compare.

Everything is judged with what this machine has (MediaPipe Pose, bundled in the wheel, and
pixel metrics); nothing is downloaded. One run scores a model on a dataset's held-out split:

- Pose fidelity: samples drawn from the held-out poses are re-detected by MediaPipe at the
  model's output resolution and scored with PCK (see `metrics.PCK_DEFINITION`). Beside it,
  from the same run: a ceiling (the real held-out images, as `prepare` stored them, scored
  against their STORED landmarks; re-detecting on the same pixels would trivially give 1.0)
  and a floor (the same samples scored against shuffled poses), and where the score sits
  between the two.
- Realism: the MediaPipe person detection rate on unconditional (null-condition) samples,
  against the rate on the real held-out images.
- Reconstruction: PSNR and SSIM of held-out images encoded and decoded (z = the posterior
  mean), and the negative ELBO in bits per dimension (one posterior sample per image).
- Diversity: the spread among several samples of one pose, and among real images for scale.
- Copying: the distance from each random sample to its nearest training image (poseguide.nearest),
  beside the same distance from the real held-out images; a model trained on few photos that
  copies them draws samples much nearer to its training set than new real photos are.
- Sharpness: the high-frequency energy (mean squared Laplacian of luminance) of generated
  people, faces and hands against the real held-out ones, as a ratio (1: as detailed as real);
  and the same at half resolution, which a 2-pixel checkerboard cannot inflate.
- FID/KID: only from a local Inception weights file (`--inception-weights`); skipped otherwise.

Samples are drawn through `poseguide.generate.Generator` (the API the `generate` command uses)
with latents chosen here: from the model's prior (fitted to the training posteriors at export,
PoseCVAE.sample_latent), its mean, and K latents for one pose. All latents are drawn up front from
one seeded generator, so results do not depend on the batch size. Reconstruction and the ELBO
need the posterior's variance, so they call the model's encoder and decoder directly.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from poseguide import atomicfile, generate, landmarks as lm, metrics, nearest, pose_edits
from poseguide.dataset import DatasetError, to_model_inputs, validate_dataset
from poseguide.datasetdir import IMAGES, LANDMARKS, MANIFEST, MASKS
from poseguide.extract import PoseEstimator
from poseguide.framing import FramingSettings
from poseguide.generate import GenerateError, Generator, check_sampling, composite, to_rgba
from poseguide.jsonfile import read_versioned_json
from poseguide.model import DEFAULT_TEMPERATURE, ModelLoadError, posterior_std
from poseguide.modelcard import write_model_card
from poseguide.report import COMPARE_ROWS, QUALITY_TARGETS, REPORT_JSON, REPORT_MD, markdown, ratio, value_at
from poseguide.rundir import CONFIG_FILE as RUN_CONFIG_FILE, MODEL_DIR as RUN_MODEL_DIR
from poseguide.visualize import draw_skeleton, make_grid, save_png

REPORT_FORMAT = "poseguide-evaluation"
REPORT_VERSION = 1
COPY_SCALE_IMAGES = 32  # training images redrawn for the copying scale: enough for its median, about a second
FID_SKIPPED = (
    "skipped: FID/KID need Inception weights, which poseguide never downloads; "
    "pass a local file with --inception-weights PATH to compute them"
)


class EvaluationError(ValueError):
    """A missing or incompatible model, dataset or report. The message is one line."""


@dataclass
class EvalSettings:
    """What one evaluation run does. `num` caps the held-out samples scored (chosen by `seed`)."""

    num: int = 200
    seed: int = 0
    temperature: float = DEFAULT_TEMPERATURE  # of the random latents, as `generate --temperature`
    batch_size: int = 32
    split: str = "val"
    diversity_poses: int = 8  # poses for the spread among samples...
    diversity_k: int = 8  # ...each drawn this many times
    visibility_threshold: float = lm.DEFAULT_VISIBILITY_THRESHOLD
    pck_thresholds: tuple[float, ...] = metrics.PCK_THRESHOLDS
    inception_weights: str | None = None
    unseen_poses: bool = True  # also score held-out poses moved as a pose editor moves them
    pose_set: str | None = None  # a prepared dataset whose poses are scored too, its images the ceiling
    picture_columns: int = 8
    precision: str = "auto"  # as `generate --precision`; the report records what ran
    progress: bool | None = None  # None: a bar only on a terminal

    def __post_init__(self) -> None:
        if self.num < 1:
            raise EvaluationError(f"--num must be at least 1, got {self.num}")
        if self.batch_size < 1:
            raise EvaluationError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.split not in ("val", "train"):
            raise EvaluationError(f"split must be val or train, got {self.split!r}")
        if self.diversity_k < 2:
            raise EvaluationError("diversity needs at least 2 samples per pose")

        try:
            check_sampling(self.seed, self.temperature)  # the latents are drawn as `generate` draws them
        except GenerateError as err:
            raise EvaluationError(str(err)) from None


# --- loading -----------------------------------------------------------------------------------


def resolve_model_dir(path: str | os.PathLike) -> Path:
    """A model dir, or a training run dir holding one in `model/` (generate's rule)."""
    try:
        return generate.resolve_model_dir(path)
    except ModelLoadError as err:
        raise EvaluationError(str(err)) from None


def default_out_dir(model_dir: Path) -> Path:
    """RUN/eval for RUN/model (a training run's export), else MODEL_DIR-eval beside it."""
    model_dir = Path(model_dir)
    if model_dir.name == RUN_MODEL_DIR and (model_dir.parent / RUN_CONFIG_FILE).is_file():
        return model_dir.parent / "eval"
    return model_dir.parent / f"{model_dir.name}-eval"


def load_generator(model_dir: Path, precision: str = "auto"):
    """The model as `generate` loads it (on the CPU), or a one-line EvaluationError."""
    try:
        return Generator.load(model_dir, device="cpu", precision=precision)
    except (ModelLoadError, GenerateError) as err:
        raise EvaluationError(str(err)) from None


def check_framing(generator, info) -> None:
    """Held-out poses are fed as they are, so the dataset must frame people as training did."""
    if not info.framing:
        return
    try:
        data_framing = FramingSettings.from_dict(info.framing)
    except (TypeError, ValueError):
        raise EvaluationError(f"{info.root / MANIFEST}: bad framing section") from None
    if data_framing != generator.framing:
        raise EvaluationError(
            f"{info.root}: its crops are framed with {data_framing.to_dict()} but the model was trained on "
            f"{generator.framing.to_dict()}; prepare the data with the model's framing"
        )


def load_split(data_dir: str | os.PathLike, image_size: int, settings: EvalSettings):
    """The dataset info and the chosen held-out samples as numpy arrays."""
    try:
        info = validate_dataset(data_dir, image_size=image_size)
    except DatasetError as err:
        raise EvaluationError(str(err)) from None
    indices = info.val_indices if settings.split == "val" else info.train_indices
    if len(indices) == 0:
        raise EvaluationError(
            f"{info.root}: no {settings.split} samples to evaluate on "
            f"(prepare with --val-fraction > 0, or evaluate on the train split)"
        )
    if len(indices) > settings.num:
        rng = np.random.default_rng(settings.seed)
        indices = np.sort(rng.choice(indices, size=settings.num, replace=False))
    root = info.root
    images = np.asarray(np.load(root / IMAGES, mmap_mode="r")[indices])
    masks = np.asarray(np.load(root / MASKS, mmap_mode="r")[indices])
    poses = np.asarray(np.load(root / LANDMARKS, mmap_mode="r")[indices], dtype=np.float32)
    return info, np.asarray(indices), images, masks, poses


# --- running the model ---------------------------------------------------------------------------


def _bar(total: int, desc: str, settings: EvalSettings):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=None if settings.progress is None else not settings.progress,
                leave=False, mininterval=1.0)


def generate_batched(generator, z: torch.Tensor, poses: np.ndarray | None, background: tuple[int, int, int],
                     settings: EvalSettings, desc: str) -> tuple[np.ndarray, np.ndarray]:
    """Latents z (N, D) with poses (N, 33, 4) in crop coordinates (or the null condition) ->
    RGB uint8 (N, S, S, 3), the Generator's RGBA composited on the background as users get it,
    and its alpha uint8 (N, S, S), the generated person mask."""
    out, alphas = [], []
    with _bar(len(z), desc, settings) as bar:
        for start in range(0, len(z), settings.batch_size):
            zb = z[start : start + settings.batch_size]
            pb = None if poses is None else poses[start : start + len(zb)]
            rgba = generator.generate(pb, z=zb, num=len(zb) if pb is None else None, batch_size=len(zb))
            out.append(composite(rgba, background))
            alphas.append(rgba[..., 3])
            bar.update(len(zb))
    return np.concatenate(out), np.concatenate(alphas)


@torch.no_grad()
def reconstruct(model, images: np.ndarray, masks: np.ndarray, poses: np.ndarray, noise: torch.Tensor,
                background: tuple[int, int, int], settings: EvalSettings) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """Encode each image with its pose; decode the posterior mean (the reconstruction, as
    composited uint8, and its alpha) and one posterior sample (for the ELBO, bits/dim per image)."""
    recons, alphas, bpd = [], [], []
    with _bar(len(images), "reconstruct", settings) as bar:
        for start in range(0, len(images), settings.batch_size):
            sl = slice(start, start + settings.batch_size)
            batch = {"image": torch.from_numpy(images[sl]), "mask": torch.from_numpy(masks[sl]),
                     "landmarks": torch.from_numpy(poses[sl])}
            image, mask, landmarks = to_model_inputs(batch, "cpu")  # exactly as training feeds the model
            cond = model.condition(landmarks)
            mu, logvar = model.encode(image, mask, cond)
            rgb, alpha = model.decode_condition(mu.float(), cond)
            rgba = to_rgba(rgb, alpha)
            recons.append(composite(rgba, background))
            alphas.append(rgba[..., 3])
            std = posterior_std(logvar)
            rgb_s, _ = model.decode_condition(mu.float() + std * noise[sl], cond)
            bpd.append(metrics.bits_per_dim(image, rgb_s, mu, logvar))
            bar.update(image.shape[0])
    return np.concatenate(recons), np.concatenate(alphas), torch.cat(bpd)


def detect_poses(images: np.ndarray, estimator, settings: EvalSettings, desc: str) -> np.ndarray:
    """MediaPipe on each image as it is (the model's output resolution): (N, 33, 4), NaN = no person."""
    out = np.empty((len(images), lm.NUM_LANDMARKS, 4), dtype=np.float32)
    with _bar(len(images), desc, settings) as bar:
        for i, image in enumerate(images):
            found = estimator(np.ascontiguousarray(image))
            out[i] = metrics.undetected() if found is None else found[0]
            bar.update(1)
    return out


def _to_unit(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0


# --- scoring -----------------------------------------------------------------------------------


def pck_entry(detected: np.ndarray, targets: np.ndarray, settings: EvalSettings) -> dict:
    """PCK of re-detected poses against target poses over the body joints, as the report holds it."""
    return _pck_entry(metrics.pck_counts(detected, targets, settings.pck_thresholds, lm.BODY_JOINTS,
                                         settings.visibility_threshold))


def _pck_entry(counts: metrics.PCKCounts) -> dict:
    pck = counts.pck()
    detected = counts.pck(only_detected=True)
    entry = {f"pck@{t:g}": pck[t] for t in counts.thresholds}
    entry.update({f"pck@{t:g}_detected": detected[t] for t in counts.thresholds})
    entry["detection_rate"] = counts.detection_rate
    entry["scored_samples"] = int((counts.counted > 0).sum())
    entry["joints"] = int(counts.counted.sum())
    return entry


def diversity_scores(samples: np.ndarray, div_poses: np.ndarray, real: np.ndarray, real_poses: np.ndarray,
                     k: int, size: int) -> dict:
    """Mean pairwise L1 (RGB in [0, 1]) among K samples of one pose, inside that pose's person
    region; and among groups of K real held-out images inside the union of their regions."""
    per_pose = []
    for pose, group in zip(div_poses, samples):
        region = metrics.pose_region(pose, size)
        per_pose.append(metrics.mean_pairwise_l1(_to_unit(group), region))
    real_groups = []
    kr = min(k, len(real))
    if kr >= 2:
        for start in range(0, len(real) - kr + 1, kr):
            group = slice(start, start + kr)
            region = np.logical_or.reduce([metrics.pose_region(p, size) for p in real_poses[group]])
            real_groups.append(metrics.mean_pairwise_l1(_to_unit(real[group]), region))
    samples_l1 = float(np.mean(per_pose)) if per_pose else float("nan")
    real_l1 = float(np.mean(real_groups)) if real_groups else float("nan")
    return {
        "samples_pairwise_l1": samples_l1,
        "real_pairwise_l1": real_l1,
        "ratio": ratio(samples_l1, real_l1),
        "poses": len(per_pose),
        "samples_per_pose": k,
        "real_groups": len(real_groups),
        "real_group_size": kr,
        "definition": (
            "mean absolute difference (RGB in [0, 1]) over all pairs of K samples of one held-out pose "
            "(z from the prior), inside the pose's person region (its visible landmarks' box grown by 10% of its "
            "longer side), averaged over poses; for scale, the same among groups of K real held-out images "
            "(different people and poses) inside the union of their regions"
        ),
    }


def unseen_pose_scores(generator, poses: np.ndarray, z: torch.Tensor, background: tuple[int, int, int],
                       settings: EvalSettings, estimator, pose_set: str | os.PathLike | None = None):
    """How well the model follows poses unlike its training poses: the held-out poses moved as a
    pose editor moves them (poseguide.pose_edits; no real image exists, so no ceiling), and,
    given `pose_set`, the poses of another prepared dataset (e.g. rendered people of pose
    families kept out of training), whose own images give the ceiling. Returns (the report
    section, {picture name: (targets, samples, detections, poses, caption)})."""
    size = generator.image_size
    score = functools.partial(pck_entry, settings=settings)
    rng = np.random.default_rng([settings.seed, 3])
    coverage = generator.coverage()

    def samples_and_scores(targets: np.ndarray, desc: str) -> tuple[dict, np.ndarray, np.ndarray]:
        samples, _ = generate_batched(generator, z[: len(targets)], targets, background, settings, desc)
        detected = detect_poses(samples, estimator, settings, f"MediaPipe {desc}")
        entry = {"samples": score(detected, targets)}
        if len(targets) >= 2:
            entry["floor"] = score(detected, targets[metrics.derangement(len(targets), rng)])
        if coverage is not None:
            entry["distance_to_training_poses"] = metrics.summary(coverage.nearest(targets)[0])
        return entry, samples, detected

    edited_raw, families = pose_edits.edited_set(poses, tuple(pose_edits.FAMILIES), settings.seed)
    try:
        edited = np.stack([generator.frame_pose(p, (size, size), "edited pose", min_visible=0) for p in edited_raw])
    except GenerateError as err:
        raise EvaluationError(str(err)) from None
    section, samples, detected = samples_and_scores(edited, "edited poses")
    families = np.asarray(families)
    for group, names in (("tuning_families", pose_edits.TUNING_FAMILIES), ("unseen_families", pose_edits.UNSEEN_FAMILIES)):
        keep = np.isin(families, names)
        section[group] = {"families": list(names), **score(detected[keep], edited[keep])}
    section["per_family"] = {
        name: {k: v for k, v in score(detected[families == name], edited[families == name]).items()
               if k in ("pck@0.1", "detection_rate", "scored_samples")}
        for name in pose_edits.FAMILIES
    }
    section["definition"] = (
        "each held-out pose moved into one pose family in turn (poseguide.pose_edits: limbs swung about the "
        "shoulder or hip, bone lengths kept), framed as generate frames a user's pose, drawn with the same "
        "latents as the held-out poses and scored like them; 'unseen_families' were never looked at while "
        "tuning the model")
    report = {"edited": section}
    pictures = {"unseen": ([], samples, detected, edited, "edited target pose")}
    if pose_set is not None:
        try:
            info = validate_dataset(pose_set, image_size=size)
        except DatasetError as err:
            raise EvaluationError(f"--pose-set: {err}") from None
        indices = np.sort(np.concatenate([info.train_indices, info.val_indices]))
        if len(indices) > len(z):
            indices = np.sort(rng.choice(indices, size=len(z), replace=False))
        images = np.asarray(np.load(info.root / IMAGES, mmap_mode="r")[indices])
        targets = np.asarray(np.load(info.root / LANDMARKS, mmap_mode="r")[indices], dtype=np.float32)
        entry, set_samples, set_detected = samples_and_scores(targets, "pose set")
        entry["ceiling"] = score(detect_poses(images, estimator, settings, "MediaPipe pose-set images"), targets)
        entry["dir"] = str(info.root)
        entry["indices"] = [int(i) for i in indices]
        entry["definition"] = "the poses of a prepared dataset; ceiling: its own images re-detected"
        report["pose_set"] = entry
        pictures["pose-set"] = (list(images), set_samples, set_detected, targets, "pose-set image")
    return report, pictures


def redraw_training_images(model, info, background: tuple[int, int, int], settings: EvalSettings) -> np.ndarray:
    """A few training images encoded and decoded (z = the posterior mean): what a model that
    copies its training set draws, exactly as blurred as its samples. The copying scale's 0."""
    rows = info.train_indices
    size = model.config.image_size
    if len(rows) == 0:
        return np.zeros((0, size, size, 3), np.uint8)
    rng = np.random.default_rng([settings.seed, 5])
    rows = np.sort(rng.choice(rows, size=min(COPY_SCALE_IMAGES, len(rows)), replace=False))
    images = np.asarray(np.load(info.root / IMAGES, mmap_mode="r")[rows])
    masks = np.asarray(np.load(info.root / MASKS, mmap_mode="r")[rows])
    poses = np.asarray(np.load(info.root / LANDMARKS, mmap_mode="r")[rows], dtype=np.float32)
    noise = torch.zeros(len(rows), model.latent_dim)
    return reconstruct(model, images, masks, poses, noise, background, settings)[0]


def nearest_training_scores(info, random_samples: np.ndarray, images: np.ndarray, recons: np.ndarray,
                            train_recons: np.ndarray, mirror: bool,
                            settings: EvalSettings) -> tuple[dict, nearest.Nearest | None, nearest.Nearest | None]:
    """How near random samples and real held-out images lie to the training split's images
    (poseguide.nearest), and the ratio of the two. Blur alone moves an image nearer to every
    training image, so two model outputs as blurred as samples give the scale too: the held-out
    reconstructions (new people) and the model's redrawings of training images (copies).
    Returns (the report section, the samples' nearest training images, the held-out images'
    ones, or None when the evaluated split is the training split itself)."""
    train_images = np.load(info.root / IMAGES, mmap_mode="r")
    rows = info.train_indices
    if len(rows) == 0:
        return {"skipped": True, "reason": "the dataset has no training split to compare with"}, None, None
    held_out = settings.split == "val"
    sets = [random_samples, train_recons] + ([images, recons] if held_out else [])
    found = nearest.nearest_images(np.concatenate(sets), train_images, rows, mirror=mirror)
    parts = found.split([len(x) for x in sets])
    near_random, near_copies = parts[:2]
    near_real, near_recons = parts[2:] if held_out else (None, None)
    random_summary = nearest.summary(near_random.distance)
    copies_summary = nearest.summary(near_copies.distance)
    real_summary = nearest.summary(near_real.distance if held_out else [])
    recon_summary = nearest.summary(near_recons.distance if held_out else [])
    closest = np.argsort(near_random.distance, kind="stable")[: settings.picture_columns]
    section = {
        "skipped": False,
        "random": random_summary,
        "held_out": real_summary,
        "reconstructions": recon_summary,
        "ratio": {key: ratio(random_summary[key], real_summary[key]) for key in ("median", "p5")},
        "ratio_to_reconstructions": {key: ratio(random_summary[key], recon_summary[key]) for key in ("median", "p5")},
        "training_reconstructions": copies_summary,
        "normalised": {key: metrics.normalised_score(random_summary[key], copies_summary[key], recon_summary[key])
                       for key in ("median", "p5")},
        "training_images": int(len(rows)),
        "mirrored": mirror,
        "closest": [{"sample": int(i), "training_index": int(near_random.index[i]),
                     "distance": float(near_random.distance[i]), "mirrored": bool(near_random.mirrored[i])}
                    for i in closest],
        "definition": (
            nearest.DEFINITION + f", among the {len(rows)} images of the dataset's train split"
            + (" and their mirror images (the model trained with flips)" if mirror else "")
            + "; random samples are drawn with no pose given and z from the prior; held-out: the real "
            f"{settings.split} images scored above; reconstructions: those images encoded and decoded (z = the "
            f"posterior mean); training reconstructions: {len(near_copies.distance)} training images encoded and "
            "decoded alike, what a model that copies draws; normalised: (random - training reconstructions) / "
            "(reconstructions - training reconstructions), 0 at copies, 1 as new as held-out people"
        ),
        "reading": (
            "ratio random / held-out about 1: samples are as far from the training images as new photos of the "
            "same scene are; well below 1, with closest pairs that look like one picture: the model draws copies of "
            "its training images. Blur alone moves an image somewhat nearer to every training image, so the "
            "normalised score compares samples with model outputs only: near 0, samples are as near the training "
            "images as the model's redrawings of them; near 1, as far as its renderings of new people"
        ),
    }
    if near_real is None:
        section["held_out_note"] = "the evaluated split is the training split, so there is no held-out scale"
    return section, near_random, near_real


def region_energies(images: np.ndarray, person: np.ndarray, poses: np.ndarray) -> dict[str, torch.Tensor]:
    """(N,) sharpness of each image's person (mask uint8 >= 128), face and hands; NaN where a
    region is missing (no visible face, or a pose MediaPipe did not find)."""
    size = images.shape[1]
    unit = _to_unit(images)
    faces = [[box] if (box := metrics.face_box(p, size)) is not None else [] for p in poses]
    hands = [metrics.hand_boxes(p, size) for p in poses]
    regions = {"person": person >= 128, "face": metrics.box_regions(faces, size),
               "hand": metrics.box_regions(hands, size)}
    out = {name: metrics.laplacian_energy(unit, region) for name, region in regions.items()}
    out.update({f"{name}_coarse": metrics.coarse_laplacian_energy(unit, region) for name, region in regions.items()})
    return out


def sharpness_scores(real: tuple[np.ndarray, np.ndarray, np.ndarray],
                     generated: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict:
    """High-frequency energy of real held-out images and of each generated set, per region, and
    generated / real. Each entry is (RGB uint8 images, person masks uint8, poses placing the
    face and hand boxes)."""
    energies = {"real": region_energies(*real)}
    energies.update({name: region_energies(*entry) for name, entry in generated.items()})
    out: dict = {}
    for region in metrics.SHARPNESS_REGIONS:
        entry = {name: metrics.nanmean(values[region]) for name, values in energies.items()}
        entry.update({f"{name}_ratio": ratio(entry[name], entry["real"]) for name in generated})
        entry["images"] = {name: int(torch.isfinite(values[region]).sum()) for name, values in energies.items()}
        out[region] = entry
    out["definition"] = metrics.SHARPNESS_DEFINITION
    out["placement"] = (
        "posed samples and reconstructions are measured in the boxes of the held-out pose they were drawn for "
        "(the real image's own boxes); random samples in the boxes of the pose MediaPipe re-detected in them "
        "(only samples where it found a person), against all real held-out images"
    )
    return out


def fid_scores(real: np.ndarray, fakes: dict[str, np.ndarray], weights: str | None, seed: int) -> dict:
    """FID and KID through torchmetrics from a local Inception weights file, else a skip note."""
    if not weights:
        return {"skipped": True, "reason": FID_SKIPPED}
    path = Path(weights)
    if not path.is_file():
        raise EvaluationError(f"--inception-weights {path}: no such file")
    try:
        import torch_fidelity  # noqa: F401  (torchmetrics' Inception comes from it)
    except ImportError:
        raise EvaluationError(
            "--inception-weights needs the torch-fidelity package for torchmetrics' Inception (pip install torch-fidelity)"
        ) from None
    if len(real) < 2:
        return {"skipped": True, "reason": "skipped: FID/KID need at least 2 held-out images"}
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    torch.manual_seed(seed)  # KID draws random subsets
    real_t = torch.from_numpy(np.ascontiguousarray(real)).permute(0, 3, 1, 2)
    try:
        fid = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(path))
    except Exception as err:  # a wrong or corrupt file surfaces as whatever torch raises
        raise EvaluationError(f"--inception-weights {path}: cannot load ({' '.join(str(err).split())[:200]})") from None
    subset = min(50, len(real))
    out: dict = {"skipped": False, "weights": str(path), "real_images": len(real), "kid_subset_size": subset}
    for name, fake in fakes.items():
        fake_t = torch.from_numpy(np.ascontiguousarray(fake)).permute(0, 3, 1, 2)
        fid.reset()
        kid = KernelInceptionDistance(feature=fid.inception, subset_size=min(subset, len(fake)))
        for batch in real_t.split(32):
            fid.update(batch, real=True)
            kid.update(batch, real=True)
        for batch in fake_t.split(32):
            fid.update(batch, real=False)
            kid.update(batch, real=False)
        kid_mean, kid_std = kid.compute()
        out[name] = {"fid": float(fid.compute()), "kid_mean": float(kid_mean), "kid_std": float(kid_std),
                     "fake_images": len(fake)}
    return out


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Evaluation:
    """A finished evaluation: the JSON-able report and the images the pictures are made of."""

    report: dict
    out_dir: Path
    model_card: Path | None = None  # the model dir's README.md, rewritten with these numbers
    model_card_problem: str | None = None  # why it could not be (a read-only model dir)


def evaluate(model_dir: str | os.PathLike, data_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None,
             settings: EvalSettings | None = None, compare: str | os.PathLike | None = None) -> Evaluation:
    """Score a model on a dataset's held-out split; write report.json, report.md and pictures."""
    settings = settings or EvalSettings()
    started = time.perf_counter()
    timings: dict[str, float] = {}
    other = load_report(compare) if compare else None  # fail early on a bad --compare

    model_dir = resolve_model_dir(model_dir)
    out_dir = Path(out_dir) if out_dir else default_out_dir(model_dir)
    check_out_dir(out_dir)
    generator = load_generator(model_dir, settings.precision)
    model = generator.model
    size = model.config.image_size
    info, indices, images, masks, poses = load_split(data_dir, size, settings)
    check_framing(generator, info)
    if settings.inception_weights and not Path(settings.inception_weights).is_file():
        raise EvaluationError(f"--inception-weights {settings.inception_weights}: no such file")
    n = len(indices)
    bg_rgb = tuple(int(c) for c in info.background)  # the dataset's: samples are judged beside its images

    # Every latent up front, from one generator: results do not depend on batching.
    gen = torch.Generator().manual_seed(settings.seed)
    dim = model.latent_dim
    def prior(num: int) -> torch.Tensor:  # latents from the model's fitted prior
        return model.sample_latent(num, gen, settings.temperature).cpu()
    z_pose = prior(n)
    z_null = prior(n)
    posterior_noise = torch.randn(n, dim, generator=gen)
    div_count = min(settings.diversity_poses, n)
    z_div = prior(div_count * settings.diversity_k)
    rng = np.random.default_rng(settings.seed)
    shuffle = metrics.derangement(n, rng) if n >= 2 else None

    t = time.perf_counter()
    posed, posed_alpha = generate_batched(generator, z_pose, poses, bg_rgb, settings, "posed samples")
    posed_zero, _ = generate_batched(generator, model.prior_mean.cpu().expand(n, dim).clone(), poses, bg_rgb, settings,
                                     "posed z=mean")
    random_samples, random_alpha = generate_batched(generator, z_null, None, bg_rgb, settings, "random samples")
    div_poses = poses[:div_count]
    div_samples = generate_batched(
        generator, z_div, np.repeat(div_poses, settings.diversity_k, axis=0), bg_rgb, settings, "diversity"
    )[0].reshape(div_count, settings.diversity_k, size, size, 3)
    recons, recon_alpha, bpd = reconstruct(model, images, masks, poses, posterior_noise, bg_rgb, settings)
    timings["model"] = time.perf_counter() - t
    t = time.perf_counter()
    train_recons = redraw_training_images(model, info, bg_rgb, settings)
    timings["training_reconstructions"] = time.perf_counter() - t

    t = time.perf_counter()
    with PoseEstimator() as estimator:
        det_real = detect_poses(images, estimator, settings, "MediaPipe real")
        det_posed = detect_poses(posed, estimator, settings, "MediaPipe posed")
        det_zero = detect_poses(posed_zero, estimator, settings, "MediaPipe z=mean")
        det_random = detect_poses(random_samples, estimator, settings, "MediaPipe random")
        det_recon = detect_poses(recons, estimator, settings, "MediaPipe reconstructions")
        timings["mediapipe"] = time.perf_counter() - t
        t = time.perf_counter()
        unseen, unseen_pictures = (
            unseen_pose_scores(generator, poses, z_pose, bg_rgb, settings, estimator, settings.pose_set)
            if settings.unseen_poses or settings.pose_set else ({}, {})
        )
        timings["unseen_poses"] = time.perf_counter() - t

    th, vis = settings.pck_thresholds, settings.visibility_threshold
    score = functools.partial(pck_entry, settings=settings)
    pose = {
        "samples": score(det_posed, poses),
        "samples_z0": score(det_zero, poses),
        "reconstructions": score(det_recon, poses),
        "ceiling": score(det_real, poses),
    }
    if shuffle is not None:
        pose["floor"] = score(det_posed, poses[shuffle])
        pose["floor_real"] = score(det_real, poses[shuffle])
    else:
        nan_entry = {k: float("nan") for k in pose["samples"]}
        pose["floor"] = dict(nan_entry)
        pose["floor_real"] = dict(nan_entry)
    for name in ("samples", "samples_z0"):
        pose[f"normalised_{name}"] = {
            f"pck@{a:g}": metrics.normalised_score(pose[name][f"pck@{a:g}"], pose["floor"][f"pck@{a:g}"],
                                                   pose["ceiling"][f"pck@{a:g}"])
            for a in th
        }
    ceiling01 = pose["ceiling"].get("pck@0.1", float("nan"))
    pck01 = pose["samples"].get("pck@0.1", float("nan"))
    pose["ratio_to_ceiling"] = {
        f"pck@{a:g}": ratio(pose["samples"][f"pck@{a:g}"], pose["ceiling"][f"pck@{a:g}"]) for a in th
    }
    pose["sampling"] = (f"z from the prior at temperature {settings.temperature:g} for 'samples' (the default); "
                        "z = the prior mean for 'samples_z0'; each image's own posterior mean for "
                        "'reconstructions' (its own appearance, drawn as sharply as the decoder can)")
    pose["definition"] = metrics.PCK_DEFINITION.format(vis=vis)
    pose["ceiling_definition"] = (
        "the real held-out images as prepare stored them (at the model's output resolution), re-detected by "
        "MediaPipe and scored against the landmarks prepare stored (detected on the source image), not against "
        "a detection on the same pixels"
    )
    pose["floor_definition"] = (
        "the same generated samples (z from the prior) scored against the poses of other held-out samples "
        "(a random derangement); floor_real: the real images against the same shuffled poses"
    )
    pose["joints"] = [lm.NAMES[j] for j in lm.BODY_JOINTS]

    latent_pose = bool(getattr(model.config, "latent_pose", False))
    real_rate = metrics.detection_rate(det_real)
    random_rate = metrics.detection_rate(det_random)
    realism = {
        "random_detection_rate": random_rate,
        "real_detection_rate": real_rate,
        "ratio": ratio(random_rate, real_rate),
        "posed_detection_rate": metrics.detection_rate(det_posed),
        "random_samples": n,
        "definition": (
            "fraction of images in which MediaPipe Pose (model_complexity=1, static images, min detection "
            "confidence 0.5) finds a person, run on the image at the model's output resolution; random samples "
            "are drawn with no pose given and z from the prior"
            + ("; this model draws their pose from z with its latent pose head" if latent_pose
               else ", through the null condition")
        ),
        "latent_pose": latent_pose,
    }

    real_unit, recon_unit = _to_unit(images), _to_unit(recons)
    psnr = metrics.psnr(recon_unit, real_unit)
    ssim = metrics.ssim(recon_unit, real_unit)
    reconstruction = {
        "psnr": metrics.summary(psnr),
        "ssim": metrics.summary(ssim),
        "bits_per_dim": metrics.summary(bpd),
        "psnr_definition": f"per-image PSNR in dB, RGB in [0, 1], capped at {metrics.PSNR_CAP_DB:g} dB, averaged",
        "ssim_variant": metrics.SSIM_VARIANT,
        "bits_per_dim_definition": (
            "negative ELBO per 8-bit RGB dimension (poseguide.losses.elbo_bits_per_dim: calibrated Laplace "
            "decoder + KL), one posterior sample per image"
        ),
        "reconstruction_definition": (
            "each held-out image encoded with its own pose and decoded from the posterior mean, composited on the "
            "dataset background by the predicted alpha, against the stored image"
        ),
    }

    diversity = diversity_scores(div_samples, div_poses, images, poses, settings.diversity_k, size)
    sharpness = sharpness_scores(
        (images, masks, poses),
        {"samples": (posed, posed_alpha, poses), "reconstructions": (recons, recon_alpha, poses),
         "random": (random_samples, random_alpha, det_random)},
    )

    t = time.perf_counter()
    mirror = bool((generator.extra_config.get("data") or {}).get("flip", True))  # as generate's pose coverage
    copying, near_random, near_real = nearest_training_scores(info, random_samples, images, recons, train_recons,
                                                              mirror, settings)
    timings["nearest_training"] = time.perf_counter() - t

    t = time.perf_counter()
    fid = fid_scores(images, {"samples": posed, "random": random_samples}, settings.inception_weights, settings.seed)
    timings["fid"] = time.perf_counter() - t

    extra = generator.extra_config
    targets = {
        "pck@0.1_over_ceiling": {"value": ratio(pck01, ceiling01), "target": QUALITY_TARGETS["pck_ratio"]},
        "random_over_real_detection": {"value": realism["ratio"], "target": QUALITY_TARGETS["detection_ratio"]},
        "person_detail_over_real": {"value": sharpness["person_coarse"]["samples_ratio"],
                                    "target": QUALITY_TARGETS["detail_ratio"]},
    }
    for entry in targets.values():
        entry["met"] = bool(math.isfinite(entry["value"]) and entry["value"] >= entry["target"])
    timings["total"] = time.perf_counter() - started
    report = {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "model": {
            "dir": str(model_dir),
            "image_size": size,
            "latent_dim": dim,
            "config": model.config.to_dict(),
            "training_step": (extra.get("training") or {}).get("step"),
        },
        "data": {
            "dir": str(info.root),
            "split": settings.split,
            "split_size": int(len(info.val_indices if settings.split == "val" else info.train_indices)),
            "samples": n,
            "indices": [int(i) for i in indices],
            "background": list(bg_rgb),
            "model_background": list(generator.background),
        },
        "settings": {**asdict(settings), "pck_thresholds": list(settings.pck_thresholds), "precision": generator.precision},
        "pose": pose,
        "realism": realism,
        "reconstruction": reconstruction,
        "diversity": diversity,
        "unseen_poses": unseen,
        "nearest_training": copying,


        "sharpness": sharpness,
        "fid": fid,
        "targets": targets,
        "seconds": timings,
    }
    report["settings"].pop("progress", None)
    if other is not None:
        report["compared_with"] = str(compare)

    out_dir.mkdir(parents=True, exist_ok=True)
    pictures = write_pictures(out_dir, images, poses, posed, det_posed, random_samples, det_random, recons, psnr,
                              div_samples, div_poses, bg_rgb, settings)
    pictures.update(write_unseen_pictures(out_dir, unseen_pictures, bg_rgb, settings))


    if near_random is not None:
        pictures["nearest"] = "nearest.png"
        write_nearest_sheet(out_dir / pictures["nearest"], info, random_samples, near_random, images, near_real,
                            settings.picture_columns)

    pictures["faces"] = "faces.png"
    save_png(crops_sheet(images, {"sample": posed}, poses, settings.picture_columns), out_dir / pictures["faces"])
    report["pictures"] = pictures
    _write_text(out_dir / REPORT_JSON, json.dumps(_jsonable(report), indent=2, allow_nan=True) + "\n")
    _write_text(out_dir / REPORT_MD, markdown(report, other))
    card, problem = _update_model_card(model_dir, _jsonable(report), out_dir)
    return Evaluation(report=report, out_dir=out_dir, model_card=card, model_card_problem=problem)


def _update_model_card(model_dir: Path, report: dict, out_dir: Path) -> tuple[Path | None, str | None]:
    """Rewrite the model card with this evaluation's numbers. A model dir this user cannot write to
    (someone else's download) keeps its card: the report is what was asked for, and it is written."""
    try:
        return write_model_card(model_dir, report=report, report_dir=out_dir), None
    except OSError as err:
        return None, f"model card in {model_dir} not updated ({err.strerror or err.__class__.__name__})"


def check_out_dir(out_dir: Path) -> None:
    """The report folder must be one this run can create or write into: checked before the
    work, so a bad --out costs seconds, not the whole evaluation."""
    problem = atomicfile.folder_problem(out_dir)
    if problem:
        raise EvaluationError(f"--out {out_dir}: {problem}")


def _jsonable(value):
    """NaN/inf -> None, so report.json is strict JSON any tool can read."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _write_text(path: Path, text: str) -> None:
    with atomicfile.atomic_write(path, "w") as f:
        f.write(text)


# --- pictures ----------------------------------------------------------------------------------


def write_pictures(out_dir: Path, images, poses, posed, det_posed, random_samples, det_random, recons, psnr,
                   div_samples, div_poses, background, settings: EvalSettings) -> dict[str, str]:
    """PNG grids: targets vs samples (with skeletons), random samples, reconstructions, diversity."""
    import cv2

    size = images.shape[1]
    scale = max(1, 128 // size)

    def up(image: np.ndarray) -> np.ndarray:
        return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) if scale > 1 else image

    def skel(image: np.ndarray, pose: np.ndarray) -> np.ndarray:
        return draw_skeleton(up(image), pose) if metrics.is_detected(pose[None])[0] else up(image)

    cols = min(settings.picture_columns, len(images))
    paths = {"pose": "pose.png"}
    targets = [skel(images[i], poses[i]) for i in range(cols)]
    save_png(pose_grid(targets, "real + stored pose", posed, det_posed, poses, settings), out_dir / paths["pose"])

    k = min(len(random_samples), 2 * settings.picture_columns)
    tiles = [up(im) for im in random_samples[:k]]
    captions = ["person" if metrics.is_detected(det_random[i : i + 1])[0] else "no person" for i in range(k)]
    paths["random"] = "random.png"
    save_png(make_grid(tiles, ncol=min(k, settings.picture_columns), captions=captions), out_dir / paths["random"])

    tiles = [up(im) for im in images[:cols]] + [up(im) for im in recons[:cols]]
    captions = ["real"] * cols + [f"recon {float(psnr[i]):.1f} dB" for i in range(cols)]
    paths["reconstructions"] = "reconstructions.png"
    save_png(make_grid(tiles, ncol=cols, captions=captions), out_dir / paths["reconstructions"])

    rows = min(4, len(div_samples))
    tiles, captions = [], []
    canvas = np.empty((size, size, 3), np.uint8)
    canvas[:] = background
    for r in range(rows):
        tiles.append(draw_skeleton(up(canvas), div_poses[r]))
        captions.append("target pose")
        for s in div_samples[r]:
            tiles.append(up(s))
            captions.append("z from the prior")
    paths["diversity"] = "diversity.png"
    save_png(make_grid(tiles, ncol=div_samples.shape[1] + 1, captions=captions), out_dir / paths["diversity"])
    return paths


def write_unseen_pictures(out_dir: Path, pictures: dict, background: tuple[int, int, int],
                          settings: EvalSettings) -> dict[str, str]:
    """pose_grid PNGs of unseen_pose_scores' sets; targets without an image are drawn as
    skeletons on the background."""
    paths = {}
    for name, (images, samples, detected, poses, caption) in pictures.items():
        cols = min(settings.picture_columns, len(samples))
        size = samples.shape[1]
        canvas = np.empty((size, size, 3), np.uint8)
        canvas[:] = background
        targets = [draw_skeleton(images[i] if images else canvas, poses[i]) for i in range(cols)]
        paths[name] = f"{name}.png"
        save_png(pose_grid(targets, caption, samples, detected, poses, settings), out_dir / paths[name])
    return paths


def pose_grid(targets: list[np.ndarray], target_caption: str, samples: np.ndarray, detected: np.ndarray,
              poses: np.ndarray, settings: EvalSettings) -> np.ndarray:
    """Three rows: the target tiles, the samples drawn in those poses, and the pose MediaPipe
    found in each sample with its count of correct joints at PCK@0.1."""
    import cv2

    cols = len(targets)
    scale = targets[0].shape[0] // samples.shape[1] if cols else 1

    def up(image: np.ndarray) -> np.ndarray:
        return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) if scale > 1 else image

    counts = metrics.pck_counts(detected[:cols], poses[:cols], (0.1,), lm.BODY_JOINTS, settings.visibility_threshold)
    tiles = list(targets) + [up(samples[i]) for i in range(cols)]
    captions = [target_caption] * cols + ["sample, z from the prior"] * cols
    for i in range(cols):
        found = bool(metrics.is_detected(detected[i : i + 1])[0])
        tiles.append(draw_skeleton(up(samples[i]), detected[i]) if found else up(samples[i]))
        captions.append(f"re-detected {int(counts.correct[i, 0])}/{int(counts.counted[i])}" if found else "no person found")
    return make_grid(tiles, ncol=cols, captions=captions)


def crops_sheet(images: np.ndarray, samples: dict[str, np.ndarray], poses: np.ndarray, columns: int,
                tile: int = 64) -> np.ndarray:
    """Face and hand crops of real held-out images above the same crops of each set of samples
    drawn for their poses (label -> images): the same box from all, upscaled with nearest to one
    tile size, so detail (or its absence) shows pixel for pixel."""
    import cv2

    size = images.shape[1]

    def crop(image: np.ndarray, box) -> np.ndarray:
        x0, y0, x1, y1 = box
        return cv2.resize(image[y0:y1, x0:x1], (tile, tile), interpolation=cv2.INTER_NEAREST)

    tiles, captions = [], []
    for kind in ("face", "hand"):
        found = []
        for i, pose in enumerate(poses):
            boxes = [metrics.face_box(pose, size)] if kind == "face" else metrics.hand_boxes(pose, size)
            found += [(i, box) for box in boxes if box is not None]
            if len(found) >= columns:
                break
        found = found[:columns]
        if not found:
            continue
        blank = [np.full((tile, tile, 3), 255, np.uint8)] * (columns - len(found))
        for label, source in [("real", images), *samples.items()]:
            tiles += [crop(source[i], box) for i, box in found] + blank
            captions += [f"{label} {kind}"] * len(found) + [""] * len(blank)
    if not tiles:  # no visible face or hand anywhere: say so rather than leave a broken link
        tiles, captions = [np.full((tile, tile, 3), 255, np.uint8)], ["no face or hand visible"]
    return make_grid(tiles, ncol=min(columns, len(tiles)), captions=captions)


def write_nearest_sheet(path: Path, info, samples: np.ndarray, near_samples: nearest.Nearest, real: np.ndarray,
                        near_real: nearest.Nearest | None, columns: int) -> None:
    """The random samples nearest to a training image, each above that training image (mirrored
    when it matched as its mirror), captioned with the distance; then the same for the nearest real
    held-out images, for scale: a copy shows as a pair as alike as the real ones are, or more."""
    import cv2

    train_images = np.load(info.root / IMAGES, mmap_mode="r")
    size = samples.shape[1]
    scale = max(1, 128 // size)

    def up(image: np.ndarray) -> np.ndarray:
        return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) if scale > 1 else image

    tiles, captions = [], []
    for name, images, near in (("sample", samples, near_samples), ("held-out", real, near_real)):
        if near is None:
            continue
        order = np.argsort(near.distance, kind="stable")[:columns]
        blank = [np.full_like(up(images[0]), 255)] * (columns - len(order))
        tiles += [up(images[i]) for i in order] + blank
        captions += [f"{name} d={near.distance[i]:.3f}" for i in order] + [""] * len(blank)
        for i in order:
            match = np.asarray(train_images[near.index[i]])
            tiles.append(up(np.ascontiguousarray(match[:, ::-1]) if near.mirrored[i] else match))
            captions.append(f"train #{near.index[i]}" + (" mirrored" if near.mirrored[i] else ""))
        tiles += blank
        captions += [""] * len(blank)
    save_png(make_grid(tiles, ncol=columns, captions=captions), path)


# --- reading a report ----------------------------------------------------------------------------


def load_report(path: str | os.PathLike) -> dict:
    """A report.json written by `poseguide evaluate` (or the directory holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / REPORT_JSON
    if not path.is_file():
        raise EvaluationError(f"--compare {path}: no such report (give a report.json or its directory)")
    report = read_versioned_json(path, REPORT_FORMAT, REPORT_VERSION, "evaluation report", EvaluationError, f"--compare {path}")
    check_report(report, f"--compare {path}")
    return report


def check_report(report: dict, label: str) -> None:
    """What a comparison reads from another report: its model's dir, and numbers (or nothing)
    where the compared metrics are. Older reports may lack a metric; it shows as n/a."""
    model = report.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("dir"), str):
        raise EvaluationError(f"{label}: has no model.dir; not a complete evaluation report")
    for _, key, _, _ in COMPARE_ROWS:
        value = value_at(report, key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise EvaluationError(f"{label}: {key} should be a number, got {type(value).__name__}")
        try:
            float(value)
        except OverflowError:
            raise EvaluationError(f"{label}: {key} is too large a number") from None
