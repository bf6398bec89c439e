#!/usr/bin/env python
"""Regenerate the README's results from a real run: docs/results.md, its pictures, the loss curve.

    python scripts/make_results.py --run runs/small --data data/vtest-128
    python scripts/make_results.py --model path/to/model --data data/vtest-128   # no loss curve

It runs `poseguide evaluate` (report under RUN/eval, or --report-dir), copies the pictures to
docs/results/, plots the training loss from RUN/metrics.jsonl, and writes docs/results.md: the
pose-fidelity numbers next to their ceiling and floor, the detection rates, PSNR/SSIM/bits-per-dim
and diversity. With --readme README.md, the block between `<!-- results:start -->` and
`<!-- results:end -->` in that file is replaced by the same table (nothing else is touched).
Use --report-dir with --reuse to rebuild the docs from an existing report without re-evaluating.
--temperatures 1 0.5 also evaluates at those sampling temperatures and tabulates the trade-off.

The README's results come from:
    python scripts/make_results.py --run runs/small --data data/vtest-128 --temperatures 1 0.5 --readme README.md
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from poseguide.evaluate import EvalSettings, EvaluationError, evaluate, load_report, resolve_model_dir  # noqa: E402
from poseguide.report import REPORT_JSON, console_summary, fmt, ratio, target_verdict  # noqa: E402
from poseguide.rundir import METRICS_FILE, SAMPLE_GRID_PREFIX, SAMPLES_DIR  # noqa: E402

README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"
HERO_COLUMNS = 8


def hero_picture(model_dir: Path, data_dir: Path, out: Path, seed: int = 0) -> Path:
    """The README's opening picture: held-out people with their poses (top), the model drawing a
    random appearance in each pose (middle), random people with no pose given (bottom), then the
    face and hand crops of twice as many held-out people above the same crops of the samples drawn
    for their poses, at one scale (evaluate's crops sheet)."""
    import numpy as np

    from poseguide.evaluate import EvalSettings, crops_sheet, load_generator, load_split
    from poseguide.generate import composite
    from poseguide.visualize import draw_skeleton, make_grid, save_png

    generator = load_generator(model_dir)
    settings = EvalSettings(num=2 * HERO_COLUMNS, seed=seed)
    _, _, images, _, poses = load_split(data_dir, generator.image_size, settings)
    background = generator.background
    posed = composite(generator.generate(poses, seed=seed), background)
    random_people = composite(generator.generate(None, num=HERO_COLUMNS, seed=seed + 1), background)
    cols = min(HERO_COLUMNS, len(poses))
    targets = [draw_skeleton(image, pose) for image, pose in zip(images[:cols], poses[:cols])]
    people = make_grid([*targets, *posed[:cols], *random_people[:cols]], ncol=cols)
    crops = crops_sheet(images, {"generated": posed}, poses, columns=2 * cols, tile=generator.image_size // 2)
    width = max(people.shape[1], crops.shape[1])
    pad = [np.pad(a, ((0, 0), (0, width - a.shape[1]), (0, 0)), constant_values=255) for a in (people, crops)]
    return save_png(np.concatenate(pad), out)


def latest_sample_grid(run: Path) -> Path | None:
    """The sample grid training wrote last (RUN/samples/step-<n>.png), if any."""
    grids = sorted(run.glob(f"{SAMPLES_DIR}/{SAMPLE_GRID_PREFIX}*.png"), key=lambda p: int(p.stem.split("-")[1]) if p.stem.split("-")[1].isdigit() else -1)
    return grids[-1] if grids else None


def results_table(report: dict) -> str:
    """One table a reader can take in at a glance: every score beside its ceiling and floor."""
    p, r, rec, div = report["pose"], report["realism"], report["reconstruction"], report["diversity"]
    t = report["settings"]["temperature"]
    rows = [
        "| metric | model | ceiling (real images) | floor (shuffled poses) | normalised / ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    for a in ("0.05", "0.1"):
        key = f"pck@{a}"
        rows.append(
            f"| pose PCK@{a}, z from the prior (T={t:g}) | {fmt(p['samples'][key])} | {fmt(p['ceiling'][key])} | "
            f"{fmt(p['floor'][key])} | {fmt(p['normalised_samples'][key])} |"
        )
    rows.append(
        f"| pose PCK@0.1, z = prior mean | {fmt(p['samples_z0']['pck@0.1'])} | {fmt(p['ceiling']['pck@0.1'])} | "
        f"{fmt(p['floor']['pck@0.1'])} | {fmt(p['normalised_samples_z0']['pck@0.1'])} |"
    )
    rows.append(
        f"| person found in posed samples | {fmt(p['samples']['detection_rate'])} | {fmt(r['real_detection_rate'])} | | "
        f"{fmt(ratio(p['samples']['detection_rate'], r['real_detection_rate']))} |"
    )
    rows.append(
        f"| person found in random samples (T={t:g}) | {fmt(r['random_detection_rate'])} | {fmt(r['real_detection_rate'])} | | "
        f"{fmt(r['ratio'])} |"
    )
    rows.append(f"| reconstruction PSNR (dB) | {fmt(rec['psnr']['mean'], 2)} | | | |")
    rows.append(f"| reconstruction SSIM | {fmt(rec['ssim']['mean'], 3)} | | | |")
    rows.append(f"| negative ELBO (bits/dim) | {fmt(rec['bits_per_dim']['mean'], 3)} | | | |")
    rows.append(
        f"| diversity: pairwise L1, {div['samples_per_pose']} samples of one pose | {fmt(div['samples_pairwise_l1'], 4)} | "
        f"{fmt(div['real_pairwise_l1'], 4)} (real images) | | {fmt(div['ratio'])} |"
    )
    fid = report["fid"]
    if fid.get("skipped"):
        rows.append("| FID / KID | skipped: no local Inception weights (nothing is downloaded) | | | |")
    else:
        rows.append(f"| FID / KID (posed samples) | {fmt(fid['samples']['fid'], 2)} / {fmt(fid['samples']['kid_mean'], 4)} | | | |")
    return "\n".join(rows)


def temperature_table(reports: list[dict]) -> str:
    """How the sampling temperature trades pose fidelity and realism against diversity, one
    row per evaluation of the same model (T = 0 is z = the prior mean)."""
    rows = [
        "| temperature | PCK@0.1 | PCK@0.1 / ceiling | person found, posed | person found, random | random / real | diversity L1 (real) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for report in sorted(reports, key=lambda r: -r["settings"]["temperature"]):
        p, r, div = report["pose"], report["realism"], report["diversity"]
        rows.append(
            f"| {report['settings']['temperature']:g} | {fmt(p['samples']['pck@0.1'])} | {fmt(p['ratio_to_ceiling']['pck@0.1'])} "
            f"| {fmt(p['samples']['detection_rate'])} | {fmt(r['random_detection_rate'])} | {fmt(r['ratio'])} "
            f"| {fmt(div['samples_pairwise_l1'], 4)} ({fmt(div['real_pairwise_l1'], 4)}) |"
        )
    z0 = reports[0]["pose"]
    rows.append(f"| 0 (z = prior mean) | {fmt(z0['samples_z0']['pck@0.1'])} | "
                f"{fmt(ratio(z0['samples_z0']['pck@0.1'], z0['ceiling']['pck@0.1']))} | "
                f"{fmt(z0['samples_z0']['detection_rate'])} | | | 0 |")
    return "\n".join(rows)


def targets_text(report: dict) -> str:
    t = report["targets"]
    text = (
        f"Quality targets: PCK@0.1 / ceiling = {fmt(t['pck@0.1_over_ceiling']['value'])} "
        f"({target_verdict(report, 'pck@0.1_over_ceiling')}); person detection on random samples / on real images = "
        f"{fmt(t['random_over_real_detection']['value'])} ({target_verdict(report, 'random_over_real_detection')})"
    )
    if "person_detail_over_real" in t:  # reports written before the detail target lack it
        text += (f"; person detail of posed samples / real, half resolution = {fmt(t['person_detail_over_real']['value'])} "
                 f"({target_verdict(report, 'person_detail_over_real')})")
    return text + "."


def read_metrics(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by an interrupted run
    return rows


def plot_loss(metrics_path: Path, out: Path) -> bool:
    """Training (and validation) loss against step, with the loss terms beside it."""
    rows = [r for r in read_metrics(metrics_path) if "step" in r]
    if not rows:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(key: str):
        pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
        return ([s for s, _ in pts], [v for _, v in pts]) if pts else None

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for key, label in (("train/loss", "train"), ("val/loss", "validation")):
        s = series(key)
        if s:
            axes[0].plot(*s, label=label, marker="o" if key.startswith("val") else None, ms=3)
    axes[0].set_title("total loss")
    axes[0].set_xlabel("step")
    axes[0].legend()
    axes[0].grid(alpha=0.3)
    terms = sorted({k for r in rows for k in r if k.startswith("train/") and k.split("/", 1)[1] in
                    ("rec", "l1", "kl", "mask_bce", "perceptual", "g_loss")})
    for key in terms:
        s = series(key)
        if s:
            axes[1].plot(*s, label=key.split("/", 1)[1])
    axes[1].set_yscale("log")
    axes[1].set_title("loss terms (train)")
    axes[1].set_xlabel("step")
    if terms:
        axes[1].legend()
    axes[1].grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def results_markdown(report: dict, pictures: dict[str, str], loss_png: str | None, command: str,
                     grid_png: str | None = None, sweep: list[dict] | None = None) -> str:
    m, d = report["model"], report["data"]
    step = m.get("training_step")
    lines = [
        "# Results",
        "",
        f"Regenerated by `{command}` (model `{m['dir']}`"
        + (f", training step {step}" if step is not None else "")
        + f"; {d['samples']} held-out samples of `{d['dir']}`, {m['image_size']} px, seed {report['settings']['seed']}).",
        "",
        results_table(report),
        "",
        targets_text(report),
        "",
        *([f"The same model at other sampling temperatures (`--temperature`; the default is "
           f"{report['settings']['temperature']:g}):", "", temperature_table([report, *sweep]), ""] if sweep else []),
        "How to read it: MediaPipe is the judge, and it is imperfect on small, low-resolution people, so every "
        "pose score stands next to its ceiling (the real held-out images scored against the poses `prepare` "
        "stored) and its floor (the same samples scored against shuffled poses: upright walkers agree by chance). "
        "Normalised = (PCK - floor) / (ceiling - floor). Posed samples draw z from the fitted prior at the report's temperature.",
        "",
        f"- PCK: {report['pose']['definition']}",
        f"- SSIM: {report['reconstruction']['ssim_variant']}.",
        f"- Diversity: {report['diversity']['definition']}.",
        "",
        "Targets (top), samples (middle), and the pose MediaPipe found in each sample (bottom):",
        "",
        f"![pose fidelity]({pictures['pose']})",
        "",
        "Random samples (no pose given):",
        "",
        f"![random samples]({pictures['random']})",
        "",
        "Reconstructions of held-out images:",
        "",
        f"![reconstructions]({pictures['reconstructions']})",
        "",
        "Several samples of one pose:",
        "",
        f"![diversity]({pictures['diversity']})",
        "",
    ]
    if loss_png:
        lines += ["Training loss:", "", f"![training loss]({loss_png})", ""]
    if grid_png:
        lines += ["The last sample grid training wrote (fixed poses and latents, reconstructions, random samples):",
                  "", f"![training samples]({grid_png})", ""]
    return "\n".join(lines)


def update_readme(readme: Path, block: str) -> bool:
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return False
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{block}\n{README_END}{tail}")
    return True


def evaluated(args: argparse.Namespace, model_dir: Path, report_dir: Path | None, **settings) -> tuple[dict, Path]:
    """(report, its directory): read back from report_dir with --reuse, else evaluated now with
    these EvalSettings fields on top of --num, --seed and --no-progress."""
    if args.reuse:
        return load_report(report_dir), report_dir
    settings = EvalSettings(num=args.num, seed=args.seed, progress=False if args.no_progress else None, **settings)
    result = evaluate(model_dir, args.data, report_dir, settings)
    return result.report, result.out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", type=Path, help="a training run dir (model/ and metrics.jsonl inside)")
    src.add_argument("--model", type=Path, help="a model dir (no loss curve)")
    parser.add_argument("--data", type=Path, required=True, help="the prepared dataset the model was trained on")
    parser.add_argument("--docs", type=Path, default=REPO / "docs", help="where results.md and results/ go (default docs/)")
    parser.add_argument("--report-dir", type=Path, default=None, help="evaluation output (default RUN/eval or MODEL-eval)")
    parser.add_argument("--reuse", action="store_true", help="use the report already in --report-dir; do not re-evaluate")
    parser.add_argument("--num", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--inception-weights", default=None)
    parser.add_argument("--temperatures", type=float, nargs="*", default=[],
                        help="also evaluate at these sampling temperatures (reports in REPORT_DIR-T<t>) and tabulate the trade-off")
    parser.add_argument("--readme", type=Path, default=None,
                        help="also replace the results block between the markers in this file (e.g. README.md)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    model_dir = resolve_model_dir(args.run if args.run else args.model)
    if args.reuse and args.report_dir is None:
        parser.error("--reuse needs --report-dir")
    try:
        report, report_dir = evaluated(args, model_dir, args.report_dir, inception_weights=args.inception_weights)
        if not args.reuse:
            print(console_summary(report, report_dir))
        sweep = [evaluated(args, model_dir, Path(f"{report_dir}-T{t:g}"), temperature=t)[0] for t in args.temperatures]
    except EvaluationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    docs = args.docs
    pictures_dir = docs / "results"
    pictures_dir.mkdir(parents=True, exist_ok=True)
    pictures = {}
    for name, file in report["pictures"].items():
        shutil.copyfile(Path(report_dir) / file, pictures_dir / file)
        pictures[name] = f"results/{file}"
    shutil.copyfile(Path(report_dir) / REPORT_JSON, pictures_dir / REPORT_JSON)
    loss_png = None
    if args.run and (args.run / METRICS_FILE).is_file():
        if plot_loss(args.run / METRICS_FILE, pictures_dir / "loss.png"):
            loss_png = "results/loss.png"
    elif args.run:
        print(f"note: {args.run / METRICS_FILE} not found; no loss curve", file=sys.stderr)
    grid_png = None
    grid = latest_sample_grid(args.run) if args.run else None
    if grid is not None:
        shutil.copyfile(grid, pictures_dir / "samples.png")
        grid_png = "results/samples.png"
    hero_picture(model_dir, args.data, pictures_dir / "hero.png", seed=args.seed)

    command = "python scripts/make_results.py " + (f"--run {args.run}" if args.run else f"--model {args.model}") + f" --data {args.data}"
    if args.temperatures:
        command += " --temperatures " + " ".join(f"{t:g}" for t in args.temperatures)
    (docs / "results.md").write_text(results_markdown(report, pictures, loss_png, command, grid_png, sweep))
    written = len(pictures) + 1 + (loss_png is not None) + (grid_png is not None)
    print(f"wrote {docs / 'results.md'} and {written} pictures in {pictures_dir}")
    if args.readme:
        block = results_table(report) + "\n\n" + targets_text(report)
        if sweep:
            block += "\n\nSampling temperature trades fidelity and realism against diversity:\n\n" + temperature_table([report, *sweep])
        block += "\n\nDetails: [docs/results.md](docs/results.md)."
        if update_readme(args.readme, block):
            print(f"updated the results block in {args.readme}")
        else:
            print(f"note: {args.readme} has no {README_START} ... {README_END} block; left unchanged", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
