"""The model card: README.md in an exported model directory, in the Hugging Face Hub's layout
(YAML front matter, then Markdown), so the directory can be shared as it is.

Training's export writes it from the model's config.json and the dataset manifest; `poseguide
evaluate` writes it again with the evaluation's main numbers and links to its pictures. The card
is always rebuilt whole from those files, never edited in place, so rerunning either step gives
the same card, and a re-export (new weights) drops numbers that no longer describe them.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import yaml

from poseguide import atomicfile
from poseguide.datasetdir import MANIFEST, read_manifest
from poseguide.model import CONFIG_NAME, EXTRAS_NAME, WEIGHTS_NAME, read_model_config
from poseguide.report import REPORT_JSON, REPORT_MD, fmt

CARD_NAME = "README.md"
TAGS = ("pose-guided-image-generation", "vae", "poseguide")
# The weights are the training photos' likeness: their terms, not the code's, decide how they may
# be shared, so the card says "other" until the owner sets it.
LICENSE = "other"
PIPELINE_TAG = "image-to-image"  # a pose (keypoints or a photo of someone posing) in, a person out


def write_model_card(model_dir: str | os.PathLike, manifest: dict | None = None,
                     report: dict | None = None, report_dir: str | os.PathLike | None = None) -> Path:
    """Write MODEL_DIR/README.md. `manifest` is the training set's (read from the dataset named in
    config.json when not given, and left out if that is gone); `report` and `report_dir` are an
    evaluation's report.json and its folder, whose pictures the card links to."""
    model_dir = Path(model_dir)
    config = read_model_config(model_dir)
    if manifest is None:
        manifest = _dataset_manifest(config)
    text = card_text(config, parameter_count(model_dir / WEIGHTS_NAME), manifest, report,
                     _link(report_dir, model_dir) if report_dir is not None else None)
    path = model_dir / CARD_NAME
    atomicfile.write_text(path, text)
    return path


def card_text(config: dict, parameters: int | None, manifest: dict | None, report: dict | None,
              report_link: str | None) -> str:
    """The card's text: front matter, training data, model, how to use it, evaluation."""
    front = {
        "license": LICENSE,
        "library_name": "poseguide",
        "pipeline_tag": PIPELINE_TAG,
        "tags": list(TAGS),
    }
    model, data, training = config["model"], config.get("data", {}), config.get("training", {})
    size = model.get("image_size", data.get("image_size"))
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False).strip(),
        "---",
        "",
        f"# poseguide model ({size} px)",
        "",
        "A conditional VAE that draws the person (or people) of its training photos in a pose you give, "
        "or at random, trained with poseguide. Images come out as RGBA: the alpha channel is the "
        "generated person mask.",
        "",
        "License: `other` until the owner of the training photos sets it; the weights reproduce their likeness.",
        "",
        "## Training data",
        "",
        *_data_lines(data, manifest),
        "",
        "## Model",
        "",
        *_model_lines(model, parameters, training),
        "",
        "## How to use",
        "",
        "```bash",
        "# with poseguide installed (pip install -e . in its clone)",
        "generate --checkpoint MODEL_DIR --pose pose.json --num 8          # 8 appearances in one pose",
        "generate --checkpoint MODEL_DIR --pose-image someone-posing.jpg   # the pose of a photo",
        "generate --checkpoint MODEL_DIR --appearance me.jpg --pose pose.json   # pose transfer",
        "generate --checkpoint MODEL_DIR --num 16                          # random people",
        "```",
        "",
        "`--pose` takes poseguide's MediaPipe-33 keypoints (`poseguide pose photo.jpg -o pose.json`), "
        "OpenPose BODY_25 or COCO-18 JSON (also ControlNet's and ComfyUI's) and COCO-17 keypoints "
        "(COCO, mmpose, ultralytics). In Python:",
        "",
        "```python",
        "from poseguide.generate import Generator",
        "gen = Generator.load(\"MODEL_DIR\")",
        "```",
        "",
        "## Evaluation",
        "",
        *(_evaluation_lines(report, report_link) if report else [
            "Not evaluated yet: `poseguide evaluate --checkpoint MODEL_DIR --data DATA_DIR` adds the numbers here."
        ]),
        "",
        "## Files",
        "",
        f"- `{WEIGHTS_NAME}`: the weights (safetensors: tensors only, safe to load from anyone)",
        f"- `{CONFIG_NAME}`: architecture, framing and data settings",
        f"- `{EXTRAS_NAME}`: the training poses, for `generate --random-pose`",
        f"- `{CARD_NAME}`: this card, written by poseguide's export and updated by `poseguide evaluate`",
        "",
    ]
    return "\n".join(lines)


def _data_lines(data: dict, manifest: dict | None) -> list[str]:
    lines = [f"- dataset: `{data.get('dataset', 'unknown')}`"]
    counts = (manifest or {}).get("counts", {})
    train = data.get("train_samples", counts.get("train"))
    val = data.get("val_samples", counts.get("val"))
    lines.append(f"- samples: {_count(train)} for training, {_count(val)} held out for validation"
                 + (f" (of {_count(counts['samples'])} prepared)" if "samples" in counts else ""))
    if manifest:
        sources = manifest.get("sources")
        if isinstance(sources, list):
            videos = sum(1 for s in sources if isinstance(s, dict) and s.get("kind") == "video")
            lines.append(f"- sources: {len(sources) - videos} photos, {videos} videos")
        skipped = {k: v for k, v in (counts.get("skipped") or {}).items() if v}
        if skipped:
            lines.append("- left out by `prepare`: " + ", ".join(f"{k.replace('_', ' ')} {_count(v)}" for k, v in skipped.items()))
    lines.append(f"- crops: {data.get('image_size', '?')} px, background RGB {tuple(data.get('background', ()))}, "
                 "person-centred (`poseguide prepare`), 33 MediaPipe landmarks each")
    return lines


def _model_lines(model: dict, parameters: int | None, training: dict) -> list[str]:
    lines = []
    if parameters is not None:
        lines.append(f"- size: {parameters:,} numbers in `{WEIGHTS_NAME}` ({parameters / 1e6:.2f} M; parameters and buffers)")
    if training.get("step") is not None:
        lines.append(f"- trained for {_count(training['step'])} steps" + ("; these are the EMA weights" if training.get("ema") else ""))
    lines += ["", "| setting | value |", "|---|---|"]
    for key, value in model.items():
        lines.append(f"| `{key}` | {json.dumps(value)} |")
    return lines


def _evaluation_lines(report: dict, report_link: str | None) -> list[str]:
    """The main numbers of an evaluation report (see poseguide/report.py for all of them)."""
    pose, realism, rec = report["pose"], report["realism"], report["reconstruction"]
    data, settings = report["data"], report.get("settings", {})
    temperature = settings.get("temperature")
    near = report.get("nearest_training") or {}
    lines = [
        f"`poseguide evaluate` on {data['samples']} {data['split']} samples of `{data['dir']}`"
        + (f", temperature {temperature:g}" if isinstance(temperature, (int, float)) else "")
        + (f", at training step {report['model']['training_step']}" if report.get("model", {}).get("training_step") is not None else "")
        + ". MediaPipe re-detects the pose in each sample; the ceiling is the same score on the real images, "
        "the floor on shuffled poses.",
        "",
        "| metric | model | ceiling (real) | floor (shuffled) |",
        "|---|---:|---:|---:|",
        f"| pose PCK@0.1, random appearance | {fmt(pose['samples']['pck@0.1'])} | {fmt(pose['ceiling']['pck@0.1'])} | {fmt(pose['floor']['pck@0.1'])} |",
        f"| pose PCK@0.05, random appearance | {fmt(pose['samples']['pck@0.05'])} | {fmt(pose['ceiling']['pck@0.05'])} | {fmt(pose['floor']['pck@0.05'])} |",
        f"| pose PCK@0.1, mean appearance | {fmt(pose['samples_z0']['pck@0.1'])} | | |",
        f"| person found in posed samples | {fmt(pose['samples']['detection_rate'])} | {fmt(realism['real_detection_rate'])} | |",
        f"| person found in random samples | {fmt(realism['random_detection_rate'])} | {fmt(realism['real_detection_rate'])} | |",
        *([f"| median distance to the nearest training image: random samples, real held-out | "
           f"{fmt(near['random']['median'], 4)} | {fmt(near['held_out']['median'], 4)} | |"] if near.get("random") else []),
        f"| reconstruction PSNR (dB) | {fmt(rec['psnr']['mean'], 2)} | | |",
        f"| reconstruction SSIM | {fmt(rec['ssim']['mean'], 4)} | | |",
        f"| negative ELBO (bits/dim) | {fmt(rec['bits_per_dim']['mean'])} | | |",
    ]
    fid = report.get("fid", {})
    if fid and not fid.get("skipped") and "samples" in fid:
        lines.append(f"| FID / KID, posed samples | {fmt(fid['samples']['fid'], 2)} / {fmt(fid['samples']['kid_mean'], 4)} | | |")
    if report_link is not None:
        pictures = report.get("pictures", {})
        lines += ["", f"The whole report: [{REPORT_MD}]({report_link}/{REPORT_MD}) ([{REPORT_JSON}]({report_link}/{REPORT_JSON})).", ""]
        for key, caption in (("pose", "Targets (top), samples drawn in their poses, and the poses MediaPipe found"),
                             ("random", "Random samples, no pose given")):
            if key in pictures:
                lines += [f"{caption}:", "", f"![{key}]({report_link}/{pictures[key]})", ""]
    return lines


def _dataset_manifest(config: dict) -> dict | None:
    """The training set's manifest, if the dataset named in config.json is still where it was."""
    dataset = config.get("data", {}).get("dataset")
    path = Path(dataset) / MANIFEST if dataset else None
    if path is None or not path.is_file():
        return None
    try:
        return read_manifest(path, ValueError)
    except ValueError:
        return None


def _link(target: str | os.PathLike, model_dir: Path) -> str:
    """A relative link from the card to `target`, so the two folders can move together."""
    return Path(os.path.relpath(Path(target).absolute(), model_dir.absolute())).as_posix()


def _count(value) -> str:
    return f"{value:,}" if isinstance(value, int) else "?"


def parameter_count(weights: Path) -> int | None:
    """Numbers in a safetensors file, from its JSON header (the weights are not loaded): the
    model's parameters and buffers."""
    try:
        with open(weights, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(length))
    except (OSError, ValueError, struct.error):
        return None
    total = 0
    for name, entry in header.items():
        if name != "__metadata__":
            n = 1
            for dim in entry["shape"]:
                n *= dim
            total += n
    return total
