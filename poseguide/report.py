"""The text of an evaluation report: report.md, the console summary, two reports side by side,
and the number helpers the README results script shares (`fmt`, `ratio`).

Everything here reads a report dict (as `poseguide.evaluate` builds it, or as report.json holds
it, with None for NaN) and returns text; nothing is computed from images and nothing is written.
It imports nothing from the package, so `evaluate`, the CLI and `scripts/make_results.py` can
all use it.
"""

from __future__ import annotations

import math
from pathlib import Path

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
# Posed samples follow their pose at 0.85 of what MediaPipe reads in real images; random samples
# hold a person 0.9 as often as real images; people carry 0.7 of the real fine detail at half
# resolution (where a 2-pixel checkerboard does not count as detail).
QUALITY_TARGETS = {"pck_ratio": 0.85, "detection_ratio": 0.9, "detail_ratio": 0.7}


# --- numbers -----------------------------------------------------------------------------------


def fmt(value, digits: int = 3) -> str:
    """A float to `digits` places, a missing or non-finite one as n/a, anything else as str()."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def ratio(a: float | None, b: float | None) -> float:
    """a / b, or NaN (shown as n/a) where either is missing (None, as report.json stores NaN, or
    not finite) or b is not positive."""
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) or b <= 0:
        return float("nan")
    return a / b


def value_at(report: dict, path: str):
    """report["a"]["b"] for "a/b", or None where any key is missing."""
    value = report
    for key in path.split("/"):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


# --- comparison --------------------------------------------------------------------------------

# (label, path in report.json, digits, higher is better?)
COMPARE_ROWS: tuple[tuple[str, str, int, bool | None], ...] = (
    ("PCK@0.05 samples z~prior", "pose/samples/pck@0.05", 3, True),
    ("PCK@0.1 samples z~prior", "pose/samples/pck@0.1", 3, True),
    ("PCK@0.1 samples z=mean", "pose/samples_z0/pck@0.1", 3, True),
    ("PCK@0.1 reconstructions", "pose/reconstructions/pck@0.1", 3, True),
    ("PCK@0.1 ceiling (real)", "pose/ceiling/pck@0.1", 3, None),
    ("PCK@0.1 floor (shuffled)", "pose/floor/pck@0.1", 3, None),
    ("PCK@0.1 normalised", "pose/normalised_samples/pck@0.1", 3, True),
    ("PCK@0.05 normalised", "pose/normalised_samples/pck@0.05", 3, True),
    ("posed samples: person found", "pose/samples/detection_rate", 3, True),
    ("random samples: person found", "realism/random_detection_rate", 3, True),
    ("real images: person found", "realism/real_detection_rate", 3, None),
    ("random / real detection", "realism/ratio", 3, True),
    ("PSNR (dB)", "reconstruction/psnr/mean", 2, True),
    ("SSIM", "reconstruction/ssim/mean", 4, True),
    ("bits/dim (neg. ELBO)", "reconstruction/bits_per_dim/mean", 3, False),
    ("edited poses PCK@0.1 (unseen families)", "unseen_poses/edited/unseen_families/pck@0.1", 3, True),
    ("edited poses PCK@0.1 (tuning families)", "unseen_poses/edited/tuning_families/pck@0.1", 3, True),
    ("edited poses: person found", "unseen_poses/edited/samples/detection_rate", 3, True),
    ("pose set PCK@0.1", "unseen_poses/pose_set/samples/pck@0.1", 3, True),
    ("pose set PCK@0.1 ceiling", "unseen_poses/pose_set/ceiling/pck@0.1", 3, None),
    ("nearest training image: random samples (median)", "nearest_training/random/median", 4, None),
    ("nearest training image: held-out real (median)", "nearest_training/held_out/median", 4, None),
    ("nearest training image: random / held-out", "nearest_training/ratio/median", 3, True),
    ("nearest training image: normalised (0 copies)", "nearest_training/normalised/median", 3, True),
    ("diversity: samples L1", "diversity/samples_pairwise_l1", 4, None),
    ("diversity: real L1", "diversity/real_pairwise_l1", 4, None),
    ("sharpness person: samples / real", "sharpness/person/samples_ratio", 3, True),
    ("sharpness person: random / real", "sharpness/person/random_ratio", 3, True),
    ("sharpness face: samples / real", "sharpness/face/samples_ratio", 3, True),
    ("sharpness face: random / real", "sharpness/face/random_ratio", 3, True),
    ("sharpness hand: samples / real", "sharpness/hand/samples_ratio", 3, True),
    ("sharpness hand: random / real", "sharpness/hand/random_ratio", 3, True),
    ("half-res. sharpness person: samples / real", "sharpness/person_coarse/samples_ratio", 3, True),
    ("half-res. sharpness person: random / real", "sharpness/person_coarse/random_ratio", 3, True),
    ("half-res. sharpness face: samples / real", "sharpness/face_coarse/samples_ratio", 3, True),
    ("half-res. sharpness hand: samples / real", "sharpness/hand_coarse/samples_ratio", 3, True),
    ("FID samples", "fid/samples/fid", 2, False),
    ("KID samples", "fid/samples/kid_mean", 4, False),
    ("held-out samples", "data/samples", 0, None),
    ("training step", "model/training_step", 0, None),
)


def comparison_rows(report: dict, other: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    for label, path, digits, _ in COMPARE_ROWS:
        a, b = value_at(report, path), value_at(other, path)
        if a is None and b is None:
            continue
        delta = "n/a"
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isfinite(a) and math.isfinite(b):
            delta = f"{a - b:+.{digits}f}"
        rows.append((label, fmt(a, digits), fmt(b, digits), delta))  # digits apply to floats only
    return rows


def comparison_text(report: dict, other: dict, this_name: str = "this", other_name: str = "other") -> str:
    """The two reports side by side as aligned plain text (for the terminal)."""
    rows = [("metric", this_name, other_name, "this - other")] + comparison_rows(report, other)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for j, r in enumerate(rows):
        lines.append("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def comparison_markdown(report: dict, other: dict, other_name: str) -> str:
    lines = [f"| metric | this run | {other_name} | this - other |", "|---|---:|---:|---:|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in comparison_rows(report, other)]
    return "\n".join(lines)


# --- report.md and the console summary ------------------------------------------------------------


def pose_table(report: dict) -> str:
    """The pose fidelity table of report.md."""
    pose = report["pose"]
    lines = [
        "| | PCK@0.05 | PCK@0.1 | person found | PCK@0.1 where found |",
        "|---|---:|---:|---:|---:|",
    ]
    rows = (
        ("samples, z from the prior", "samples"),
        ("samples, z = prior mean", "samples_z0"),
        ("reconstructions: each image's own appearance", "reconstructions"),
        ("ceiling: real images vs stored poses", "ceiling"),
        ("floor: samples vs shuffled poses", "floor"),
        ("floor: real images vs shuffled poses", "floor_real"),
    )
    for label, key in rows:
        if key == "reconstructions" and key not in pose:  # reports written before it was scored
            continue
        e = pose.get(key, {})
        lines.append(f"| {label} | {fmt(e.get('pck@0.05'))} | {fmt(e.get('pck@0.1'))} | {fmt(e.get('detection_rate'))} "
                     f"| {fmt(e.get('pck@0.1_detected'))} |")
    for label, key in (("normalised (score - floor) / (ceiling - floor), z from the prior", "normalised_samples"),
                       ("normalised, z = prior mean", "normalised_samples_z0")):
        e = pose.get(key, {})
        lines.append(f"| {label} | {fmt(e.get('pck@0.05'))} | {fmt(e.get('pck@0.1'))} | | |")
    return "\n".join(lines)


def summary_table(report: dict) -> str:
    """Realism, reconstruction and diversity in one table."""
    r, rec, div = report["realism"], report["reconstruction"], report["diversity"]
    fid = report["fid"]
    lines = [
        "| metric | value |",
        "|---|---:|",
        f"| person found in random samples (no pose given) | {fmt(r['random_detection_rate'])} |",
        f"| person found in real held-out images | {fmt(r['real_detection_rate'])} |",
        f"| ratio random / real (target >= {fmt_target(report, 'random_over_real_detection')}) | {fmt(r['ratio'])} |",
        f"| reconstruction PSNR (dB) | {fmt(rec['psnr']['mean'], 2)} |",
        f"| reconstruction SSIM | {fmt(rec['ssim']['mean'], 4)} |",
        f"| negative ELBO (bits/dim) | {fmt(rec['bits_per_dim']['mean'])} |",
        f"| diversity: pairwise L1 among {div['samples_per_pose']} samples of one pose | {fmt(div['samples_pairwise_l1'], 4)} |",
        f"| diversity: pairwise L1 among real held-out images | {fmt(div['real_pairwise_l1'], 4)} |",
    ]
    if fid.get("skipped"):
        lines.append("| FID / KID | skipped (no local Inception weights) |")
    else:
        for name in ("samples", "random"):
            if name in fid:
                lines.append(f"| FID / KID, {name} | {fmt(fid[name]['fid'], 2)} / {fmt(fid[name]['kid_mean'], 4)} |")
    return "\n".join(lines)


def unseen_poses_lines(report: dict) -> list[str]:
    """The unseen-poses section of report.md: a table per set, then what each row means."""
    unseen = report.get("unseen_poses") or {}
    if not unseen:
        return []
    lines = ["## Poses unlike the training poses", "",
             "| set | PCK@0.1 | PCK@0.05 | person found | ceiling PCK@0.1 | floor PCK@0.1 | distance to training poses |",
             "|---|---:|---:|---:|---:|---:|---:|"]

    def row(name: str, entry: dict, ceiling: dict | None, floor: dict | None, distance: dict | None) -> str:
        return (f"| {name} | {fmt(entry.get('pck@0.1'))} | {fmt(entry.get('pck@0.05'))} | {fmt(entry.get('detection_rate'))} | "
                f"{fmt(ceiling['pck@0.1']) if ceiling else 'n/a'} | {fmt(floor['pck@0.1']) if floor else ''} | "
                f"{fmt(distance['mean']) if distance else ''} |")

    edited = unseen.get("edited")
    if edited:
        lines.append(row("edited held-out poses, all", edited["samples"], None, edited.get("floor"),
                         edited.get("distance_to_training_poses")))
        for group in ("unseen_families", "tuning_families"):
            entry = edited[group]
            lines.append(row(f"  {group.replace('_', ' ')} ({', '.join(entry['families'])})", entry, None, None, None))
    pose_set = unseen.get("pose_set")
    if pose_set:
        lines.append(row(f"pose set `{pose_set['dir']}`", pose_set["samples"], pose_set["ceiling"], pose_set.get("floor"),
                         pose_set.get("distance_to_training_poses")))
    lines += [""]
    if edited:
        per = edited["per_family"]
        lines += ["Edited poses by family (PCK@0.1, person found): "
                  + "; ".join(f"{name} {fmt(v['pck@0.1'])}, {fmt(v['detection_rate'])}" for name, v in per.items()) + ".",
                  "", f"- Edited poses: {edited['definition']}. No real image exists in them, so there is no ceiling.",
                  "- Distance to training poses: poseguide.coverage (the largest joint gap to the nearest training "
                  "pose, crop units; generate warns beyond its threshold)."]
    if pose_set:
        lines.append(f"- Pose set: {pose_set['definition']}.")
    pics = report.get("pictures", {})
    for name, caption in (("unseen", "Edited poses (top: target; middle: sample; bottom: re-detected)"),
                          ("pose-set", "Pose set (top: its image with its pose; middle: sample; bottom: re-detected)")):
        if name in pics:
            lines += ["", f"{caption}:", "", f"![{name}]({pics[name]})"]
    return lines + [""]


def nearest_training_lines(report: dict) -> list[str]:
    """The copying section of report.md: how near random samples and real held-out images lie to
    the training images, their ratio, and the picture of the closest pairs."""
    near = report.get("nearest_training") or {}
    if not near:
        return []
    lines = ["## Does the model copy its training set?", ""]
    if near.get("skipped"):
        return lines + [f"Not measured: {near['reason']}.", ""]
    r, h, q = near["random"], near["held_out"], near["ratio"]
    rec, qr = near.get("reconstructions") or {}, near.get("ratio_to_reconstructions") or {}
    copies, norm = near.get("training_reconstructions") or {}, near.get("normalised") or {}
    lines += [
        "Distance from each image to its nearest training image (lower: more alike):",
        "",
        "| images | median | 5th percentile | nearest | n |",
        "|---|---:|---:|---:|---:|",
        f"| random samples (no pose given) | {fmt(r['median'], 4)} | {fmt(r['p5'], 4)} | {fmt(r['min'], 4)} | {r['n']} |",
        f"| real held-out images | {fmt(h['median'], 4)} | {fmt(h['p5'], 4)} | {fmt(h['min'], 4)} | {h['n']} |",
        f"| reconstructions of the held-out images | {fmt(rec.get('median'), 4)} | {fmt(rec.get('p5'), 4)} "
        f"| {fmt(rec.get('min'), 4)} | {rec.get('n', 0)} |",
        f"| the model's redrawings of training images (copies) | {fmt(copies.get('median'), 4)} "
        f"| {fmt(copies.get('p5'), 4)} | {fmt(copies.get('min'), 4)} | {copies.get('n', 0)} |",
        f"| ratio random / held-out | {fmt(q['median'])} | {fmt(q['p5'])} | | |",
        f"| ratio random / reconstructions (blur alike) | {fmt(qr.get('median'))} | {fmt(qr.get('p5'))} | | |",
        f"| normalised: 0 copies, 1 new people | {fmt(norm.get('median'))} | {fmt(norm.get('p5'))} | | |",
        "",
        f"- Distance: {near['definition']}.",
        f"- Reading it: {near['reading']}.",
    ]
    if near.get("held_out_note"):
        lines.append(f"- Held-out: {near['held_out_note']}.")
    pics = report.get("pictures", {})
    if "nearest" in pics:
        lines += ["", "The random samples nearest to a training image, each above that image, then the real held-out "
                  "images nearest to one, for scale:", "", f"![nearest]({pics['nearest']})"]
    return lines + [""]


def fmt_target(report: dict, name: str) -> str:
    """The target a report was judged against, as it stored it (targets have changed since
    older reports were written)."""
    return f"{report['targets'][name]['target']:g}"


def target_verdict(report: dict, name: str) -> str:
    """'target >= 0.85: met' (or 'not met') for one of the report's stored targets."""
    return f"target >= {fmt_target(report, name)}: {'met' if report['targets'][name]['met'] else 'not met'}"


def detail_target_lines(report: dict) -> list[str]:
    """The detail target's line, for reports written since it existed."""
    entry = (report.get("targets") or {}).get("person_detail_over_real")
    if not entry:
        return []
    return [f"Person detail of posed samples / real, at half resolution: {fmt(entry['value'])} "
            f"({target_verdict(report, 'person_detail_over_real')}).", ""]


def sharpness_table(report: dict) -> str:
    """Sharpness of each region: the real energy, then each generated set's ratio to it."""
    sharp = report.get("sharpness") or {}
    lines = [
        "| region | real (mean sq. Laplacian) | posed samples / real | reconstructions / real | random samples / real |",
        "|---|---:|---:|---:|---:|",
    ]
    for region, e in sharp.items():  # the regions evaluate measured, in its order
        if not isinstance(e, dict):  # the definition and placement notes
            continue
        n = e.get("images") or {}
        label = region.replace("_coarse", ", half resolution")
        lines.append(
            f"| {label} | {fmt(e.get('real'), 5)} (n={n.get('real', 0)}) | {fmt(e.get('samples_ratio'))} "
            f"| {fmt(e.get('reconstructions_ratio'))} | {fmt(e.get('random_ratio'))} (n={n.get('random', 0)}) |"
        )
    return "\n".join(lines)


def sharpness_ratios(report: dict, suffix: str) -> str:
    """'person 0.24 posed, 0.26 random, face ...' for the regions ending in `suffix`."""
    return ", ".join(
        f"{region} {fmt(value_at(report, f'sharpness/{region}{suffix}/samples_ratio'))} posed, "
        f"{fmt(value_at(report, f'sharpness/{region}{suffix}/random_ratio'))} random" for region in ("person", "face", "hand")
    )


def markdown(report: dict, other: dict | None = None) -> str:
    """A short human report: the numbers with their ceiling and floor, definitions, pictures."""
    pose, rec, fid = report["pose"], report["reconstruction"], report["fid"]
    m, d = report["model"], report["data"]
    step = m.get("training_step")
    lines = [
        "# poseguide evaluation",
        "",
        f"Model `{m['dir']}` ({m['image_size']} px, latent {m['latent_dim']}"
        + (f", step {step}" if step is not None else "") + f") on `{d['dir']}`: "
        f"{d['samples']} of {d['split_size']} {d['split']} samples, seed {report['settings']['seed']}.",
        "",
        "## Pose fidelity",
        "",
        f"Samples are drawn from the held-out poses with **z from the prior** at temperature "
        f"{report['settings']['temperature']:g} (the prior the model fitted to its training "
        "posteriors at export, its spread scaled; and, for comparison, z = the prior mean), "
        "composited on the dataset background and re-detected by MediaPipe Pose (model_complexity=1) at the "
        "model's output resolution.",
        "",
        pose_table(report),
        "",
        f"PCK@0.1 of samples / ceiling: {fmt(report['targets']['pck@0.1_over_ceiling']['value'])} "
        f"({target_verdict(report, 'pck@0.1_over_ceiling')}).",
        "",
        f"- PCK: {pose['definition']}",
        f"- Ceiling: {pose['ceiling_definition']}.",
        f"- Floor: {pose['floor_definition']}.",
        "",
        *unseen_poses_lines(report),
        "## Realism, reconstruction, diversity",
        "",
        summary_table(report),
        "",
        f"Random / real detection ratio {target_verdict(report, 'random_over_real_detection')}.",
        "",
        f"- Person found: {report['realism']['definition']}.",
        f"- Reconstruction: {rec['reconstruction_definition']}.",
        f"- PSNR: {rec['psnr_definition']}. SSIM: {rec['ssim_variant']}.",
        f"- Bits/dim: {rec['bits_per_dim_definition']}.",
        f"- Diversity: {report['diversity']['definition']}.",
        "",
    ]
    lines += nearest_training_lines(report)
    if report.get("sharpness"):
        lines += [
            "## Sharpness",
            "",
            "How much fine detail generated people have, against the real held-out images (1.0: as much):",
            "",
            sharpness_table(report),
            "",
            *detail_target_lines(report),
            f"- Sharpness: {report['sharpness']['definition']}.",
            f"- Placement: {report['sharpness']['placement']}.",
            "",
        ]
    lines += [
        "## FID / KID",
        "",
    ]
    if fid.get("skipped"):
        lines.append(f"FID and KID were **{fid['reason']}**.")
    else:
        lines.append(
            f"torchmetrics FrechetInceptionDistance (2048 features) and KernelInceptionDistance (subset size "
            f"{fid['kid_subset_size']}) with local weights `{fid['weights']}`, against {fid['real_images']} real "
            "held-out images. With few images FID is strongly biased upwards; compare runs only at equal counts."
        )
    pics = report.get("pictures", {})
    lines += [
        "",
        "## Pictures",
        "",
        "Targets vs samples (top: real held-out image with its stored pose, the target; middle: the sample "
        "drawn for that pose; bottom: the same sample with the pose MediaPipe re-detected, captioned with the "
        "body joints within PCK@0.1 of the target):",
        "",
        f"![pose]({pics.get('pose', 'pose.png')})",
        "",
        "Random samples (no pose given, z from the prior), captioned with whether MediaPipe found a person:",
        "",
        f"![random]({pics.get('random', 'random.png')})",
        "",
        "Reconstructions (top: real held-out image; bottom: encoded and decoded from the posterior mean):",
        "",
        f"![reconstructions]({pics.get('reconstructions', 'reconstructions.png')})",
        "",
        "Diversity (each row: one held-out pose, several z from the prior):",
        "",
        f"![diversity]({pics.get('diversity', 'diversity.png')})",
        "",
    ]
    if "faces" in pics:
        lines += [
            "Faces and hands (each real crop above the same box of the sample drawn for its pose, upscaled "
            "with nearest at one scale):",
            "",
            f"![faces]({pics['faces']})",
            "",
        ]
    if other is not None:
        lines += [
            "## Comparison",
            "",
            f"Against `{report.get('compared_with', 'the other report')}` (model `{other['model']['dir']}`):",
            "",
            comparison_markdown(report, other, "other"),
            "",
        ]
    return "\n".join(lines)


def console_summary(report: dict, out_dir: Path) -> str:
    pose, r, rec = report["pose"], report["realism"], report["reconstruction"]
    return "\n".join([
        f"wrote {out_dir / REPORT_JSON} and {out_dir / REPORT_MD} ({report['data']['samples']} held-out samples)",
        f"  PCK@0.1 {fmt(pose['samples']['pck@0.1'])} (z~prior), {fmt(pose['samples_z0']['pck@0.1'])} (z=prior mean)"
        + (f", {fmt(pose['reconstructions']['pck@0.1'])} (reconstructions)" if "reconstructions" in pose else "")
        + "; "
        f"ceiling {fmt(pose['ceiling']['pck@0.1'])}, floor {fmt(pose['floor']['pck@0.1'])}, "
        f"normalised {fmt(pose['normalised_samples']['pck@0.1'])}",
        f"  PCK@0.05 {fmt(pose['samples']['pck@0.05'])}; ceiling {fmt(pose['ceiling']['pck@0.05'])}, "
        f"floor {fmt(pose['floor']['pck@0.05'])}",
        f"  person found: posed {fmt(pose['samples']['detection_rate'])}, random {fmt(r['random_detection_rate'])}, "
        f"real {fmt(r['real_detection_rate'])} (random/real {fmt(r['ratio'])})",
        f"  reconstruction PSNR {fmt(rec['psnr']['mean'], 2)} dB, SSIM {fmt(rec['ssim']['mean'], 4)}, "
        f"{fmt(rec['bits_per_dim']['mean'])} bits/dim; diversity L1 {fmt(report['diversity']['samples_pairwise_l1'], 4)} "
        f"(real {fmt(report['diversity']['real_pairwise_l1'], 4)})",
        *([f"  edited poses PCK@0.1 {fmt(report['unseen_poses']['edited']['samples']['pck@0.1'])} "
           f"(unseen families {fmt(report['unseen_poses']['edited']['unseen_families']['pck@0.1'])}), "
           f"person found {fmt(report['unseen_poses']['edited']['samples']['detection_rate'])}"]
          if (report.get("unseen_poses") or {}).get("edited") else []),
        *([f"  pose set PCK@0.1 {fmt(report['unseen_poses']['pose_set']['samples']['pck@0.1'])}, ceiling "
           f"{fmt(report['unseen_poses']['pose_set']['ceiling']['pck@0.1'])}, "
           f"floor {fmt(report['unseen_poses']['pose_set'].get('floor', {}).get('pck@0.1'))}"]
          if (report.get("unseen_poses") or {}).get("pose_set") else []),
        *([f"  nearest training image: random samples {fmt(value_at(report, 'nearest_training/random/median'), 4)}, "
           f"held-out real {fmt(value_at(report, 'nearest_training/held_out/median'), 4)} (median; "
           f"random / held-out {fmt(value_at(report, 'nearest_training/ratio/median'))}; normalised "
           f"{fmt(value_at(report, 'nearest_training/normalised/median'))}, 0 copies, 1 new people)"]
          if value_at(report, "nearest_training/random") else []),
        "  sharpness / real: " + sharpness_ratios(report, ""),
        *(["  at half resolution (blind to 2-pixel checkerboards): " + sharpness_ratios(report, "_coarse")]
          if value_at(report, "sharpness/person_coarse") else []),
        "  FID/KID: " + (report["fid"]["reason"] if report["fid"].get("skipped") else
                         f"FID {fmt(report['fid']['samples']['fid'], 2)}, KID {fmt(report['fid']['samples']['kid_mean'], 4)}"),
    ])
