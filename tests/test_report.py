"""The report's text (report.md, the console summary, comparisons) from a hand-written report.json.
Expected strings are written out here, not recomputed with the functions under test."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

from poseguide import report as rp

from conftest import REPO_DIR


def _pck(p05, p1, found, p1_found) -> dict:
    return {"pck@0.05": p05, "pck@0.1": p1, "pck@0.05_detected": p05, "pck@0.1_detected": p1_found,
            "detection_rate": found, "scored_samples": 6, "joints": 60}


def _report() -> dict:
    """A complete report as `poseguide evaluate` writes it (missing values as NaN, JSON null on disk)."""
    nan = float("nan")
    return {
        "format": "poseguide-evaluation", "version": 1,
        "model": {"dir": "runs/x/model", "image_size": 128, "latent_dim": 16, "training_step": 1200},
        "data": {"dir": "data/vtest-128", "split": "val", "split_size": 12, "samples": 6},
        "settings": {"seed": 3, "temperature": 0.7},
        "pose": {
            "samples": _pck(0.31234, 0.56789, 0.875, 0.64901),
            "samples_z0": _pck(0.40001, 0.70049, 1.0, 0.70049),
            "reconstructions": _pck(0.25, 0.5125, 0.875, 0.55),
            "ceiling": _pck(0.5, 0.9, 0.75, 0.95),
            "floor": _pck(0.1, 0.2, 0.875, 0.22),
            "floor_real": _pck(nan, nan, nan, nan),
            "normalised_samples": {"pck@0.05": 0.53, "pck@0.1": 0.52},
            "normalised_samples_z0": {"pck@0.05": 0.75, "pck@0.1": nan},
            "definition": "PCK DEFINITION", "ceiling_definition": "CEILING DEFINITION",
            "floor_definition": "FLOOR DEFINITION",
        },
        "realism": {"random_detection_rate": 0.625, "real_detection_rate": 0.75, "ratio": 0.8333333,
                    "definition": "REALISM DEFINITION"},
        "reconstruction": {
            "psnr": {"mean": 21.4567}, "ssim": {"mean": 0.61234}, "bits_per_dim": {"mean": 4.56789},
            "reconstruction_definition": "RECON DEFINITION", "psnr_definition": "PSNR DEFINITION",
            "ssim_variant": "SSIM VARIANT", "bits_per_dim_definition": "BPD DEFINITION",
        },
        "diversity": {"samples_per_pose": 8, "samples_pairwise_l1": 0.123456, "real_pairwise_l1": 0.2,
                      "ratio": 0.61728, "definition": "DIVERSITY DEFINITION"},
        "fid": {"skipped": True, "reason": "skipped: no weights"},
        "targets": {"pck@0.1_over_ceiling": {"value": 0.631, "target": 0.85, "met": False},
                    "random_over_real_detection": {"value": 0.8333333, "target": 0.8, "met": True}},
        "pictures": {"pose": "pose.png", "random": "random.png", "reconstructions": "reconstructions.png",
                     "diversity": "diversity.png"},
    }


def _round_trip(report: dict, tmp_path: Path) -> dict:
    """Through a report.json on disk, NaN written as null as evaluate writes it."""
    def strict(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: strict(v) for k, v in value.items()}
        return value

    path = tmp_path / "report.json"
    path.write_text(json.dumps(strict(report), allow_nan=False))
    return json.loads(path.read_text())


def test_report_json_renders_its_values_in_the_markdown_tables(tmp_path):
    md = rp.markdown(_round_trip(_report(), tmp_path))
    lines = md.splitlines()
    for row in (
        "| samples, z from the prior | 0.312 | 0.568 | 0.875 | 0.649 |",
        "| samples, z = prior mean | 0.400 | 0.700 | 1.000 | 0.700 |",
        "| reconstructions: each image's own appearance | 0.250 | 0.512 | 0.875 | 0.550 |",
        "| ceiling: real images vs stored poses | 0.500 | 0.900 | 0.750 | 0.950 |",
        "| floor: samples vs shuffled poses | 0.100 | 0.200 | 0.875 | 0.220 |",
        "| floor: real images vs shuffled poses | n/a | n/a | n/a | n/a |",
        "| normalised (score - floor) / (ceiling - floor), z from the prior | 0.530 | 0.520 | | |",
        "| normalised, z = prior mean | 0.750 | n/a | | |",
        "| person found in random samples (no pose given) | 0.625 |",
        "| person found in real held-out images | 0.750 |",
        "| ratio random / real (target >= 0.8) | 0.833 |",
        "| reconstruction PSNR (dB) | 21.46 |",
        "| reconstruction SSIM | 0.6123 |",
        "| negative ELBO (bits/dim) | 4.568 |",
        "| diversity: pairwise L1 among 8 samples of one pose | 0.1235 |",
        "| diversity: pairwise L1 among real held-out images | 0.2000 |",
        "| FID / KID | skipped (no local Inception weights) |",
    ):
        assert row in lines, row
    assert lines[0] == "# poseguide evaluation"
    assert ("Model `runs/x/model` (128 px, latent 16, step 1200) on `data/vtest-128`: "
            "6 of 12 val samples, seed 3.") in lines
    assert "PCK@0.1 of samples / ceiling: 0.631 (target >= 0.85: not met)." in lines
    assert "Random / real detection ratio target >= 0.8: met." in lines
    assert "FID and KID were **skipped: no weights**." in lines
    assert "- PCK: PCK DEFINITION" in lines and "- PSNR: PSNR DEFINITION. SSIM: SSIM VARIANT." in lines
    assert "![diversity](diversity.png)" in lines
    assert "## Comparison" not in md


def test_markdown_is_the_same_from_memory_and_from_report_json(tmp_path):
    """evaluate writes report.md from its in-memory report (NaN); --reuse reads report.json (null)."""
    assert rp.markdown(_report()) == rp.markdown(_round_trip(_report(), tmp_path))


def test_sharpness_section_states_the_detail_target_and_older_reports_keep_theirs(tmp_path):
    report = _report()
    report["sharpness"] = {
        "person_coarse": {"real": 0.012345, "samples_ratio": 0.41234, "reconstructions_ratio": 0.5,
                          "random_ratio": 0.45, "images": {"real": 6, "random": 5}},
        "definition": "SHARPNESS DEFINITION", "placement": "PLACEMENT",
    }
    report["targets"]["person_detail_over_real"] = {"value": 0.41234, "target": 0.7, "met": False}
    lines = rp.markdown(_round_trip(report, tmp_path)).splitlines()
    assert "| person, half resolution | 0.01235 (n=6) | 0.412 | 0.500 | 0.450 (n=5) |" in lines
    assert "Person detail of posed samples / real, at half resolution: 0.412 (target >= 0.7: not met)." in lines
    # a report written before the detail target: the section without the line, its own targets as stored
    del report["targets"]["person_detail_over_real"]
    md = rp.markdown(_round_trip(report, tmp_path))
    assert "Person detail of posed samples" not in md and "- Sharpness: SHARPNESS DEFINITION." in md
    assert "Random / real detection ratio target >= 0.8: met." in md.splitlines()


def test_fid_rows_and_a_missing_training_step():
    report = _report()
    report["model"]["training_step"] = None
    report["fid"] = {"skipped": False, "weights": "w.pth", "real_images": 6, "kid_subset_size": 6,
                     "samples": {"fid": 123.456, "kid_mean": 0.01234}}
    lines = rp.markdown(report).splitlines()
    assert "| FID / KID, samples | 123.46 / 0.0123 |" in lines
    assert not any(line.startswith("| FID / KID, random") for line in lines)
    assert lines[2].startswith("Model `runs/x/model` (128 px, latent 16) on ")


def test_comparison_with_an_older_report_that_lacks_a_metric(tmp_path):
    this = _report()
    other = _round_trip(_report(), tmp_path)
    other["pose"]["samples"]["pck@0.1"] = 0.5
    del other["pose"]["samples"]["pck@0.05"]
    rows = {row[0]: row[1:] for row in rp.comparison_rows(this, other)}
    assert rows["PCK@0.1 samples z~prior"] == ("0.568", "0.500", "+0.068")
    assert rows["PCK@0.05 samples z~prior"] == ("0.312", "n/a", "n/a")
    assert rows["PSNR (dB)"] == ("21.46", "21.46", "+0.00")
    assert rows["PCK@0.1 normalised"] == ("0.520", "0.520", "+0.000")
    assert "FID samples" not in rows  # in neither report
    text = rp.comparison_text(this, other, "this run", "old").splitlines()
    assert text[0].split() == ["metric", "this", "run", "old", "this", "-", "other"]
    assert set(text[1]) == {"-", " "}
    assert text[2].split("  ")[0] == "PCK@0.05 samples z~prior"
    assert text[2].split()[-2:] == ["n/a", "n/a"]
    md = rp.markdown(dict(this, compared_with="old/report.json"), other)
    assert "Against `old/report.json` (model `runs/x/model`):" in md
    assert "| metric | this run | other | this - other |" in md
    assert "| PCK@0.1 samples z~prior | 0.568 | 0.500 | +0.068 |" in md


def _with_nearest(report: dict) -> dict:
    return dict(report, nearest_training={
        "skipped": False,
        "random": {"median": 0.061234, "p5": 0.04, "min": 0.0312, "n": 6},
        "held_out": {"median": 0.08, "p5": 0.05, "min": 0.041, "n": 6},
        "reconstructions": {"median": 0.07, "p5": 0.045, "min": 0.04, "n": 6},
        "ratio": {"median": 0.7654, "p5": 0.8},
        "ratio_to_reconstructions": {"median": 0.8748, "p5": None},
        "training_reconstructions": {"median": 0.03, "p5": 0.02, "min": 0.01, "n": 4},
        "normalised": {"median": 0.7811, "p5": 1.25},
        "definition": "NEAREST DEFINITION", "reading": "NEAREST READING",
    }, pictures=dict(report["pictures"], nearest="nearest.png"))


def test_nearest_training_section_rows_summary_line_and_comparison(tmp_path):
    report = _with_nearest(_report())
    lines = rp.markdown(_round_trip(report, tmp_path)).splitlines()
    for row in ("## Does the model copy its training set?",
                "| random samples (no pose given) | 0.0612 | 0.0400 | 0.0312 | 6 |",
                "| real held-out images | 0.0800 | 0.0500 | 0.0410 | 6 |",
                "| reconstructions of the held-out images | 0.0700 | 0.0450 | 0.0400 | 6 |",
                "| ratio random / held-out | 0.765 | 0.800 | | |",
                "| the model's redrawings of training images (copies) | 0.0300 | 0.0200 | 0.0100 | 4 |",
                "| ratio random / reconstructions (blur alike) | 0.875 | n/a | | |",
                "| normalised: 0 copies, 1 new people | 0.781 | 1.250 | | |",
                "- Distance: NEAREST DEFINITION.", "- Reading it: NEAREST READING.", "![nearest](nearest.png)"):
        assert row in lines, row
    summary = rp.console_summary(report, Path("out")).splitlines()
    assert ("  nearest training image: random samples 0.0612, held-out real 0.0800 (median; random / held-out "
            "0.765; normalised 0.781, 0 copies, 1 new people)") in summary
    rows = {row[0]: row[1:] for row in rp.comparison_rows(report, _report())}
    assert rows["nearest training image: random / held-out"] == ("0.765", "n/a", "n/a")
    # a report without the section (older, or a dataset with no train split) says nothing or why
    assert "copy its training set" not in rp.markdown(_report())
    assert not any("nearest training" in line for line in rp.console_summary(_report(), Path("out")).splitlines())
    skipped = dict(_report(), nearest_training={"skipped": True, "reason": "no train split"})
    assert "Not measured: no train split." in rp.markdown(skipped).splitlines()
    older = _report()
    del older["pose"]["reconstructions"]  # reports written before reconstructions were re-detected
    assert not any("reconstructions:" in line for line in rp.markdown(older).splitlines())
    assert "(reconstructions)" not in rp.console_summary(older, Path("out"))


def test_console_summary():
    lines = rp.console_summary(_report(), Path("out")).splitlines()
    assert lines[0] == "wrote out/report.json and out/report.md (6 held-out samples)"
    assert lines[1] == ("  PCK@0.1 0.568 (z~prior), 0.700 (z=prior mean), 0.512 (reconstructions); ceiling 0.900, floor 0.200, "
                        "normalised 0.520")
    assert lines[3] == "  person found: posed 0.875, random 0.625, real 0.750 (random/real 0.833)"
    assert lines[-1] == "  FID/KID: skipped: no weights"


def test_fmt_and_ratio():
    assert [rp.fmt(v) for v in (None, float("nan"), float("inf"), 0.12345, 1.0, 3, "x")] == [
        "n/a", "n/a", "n/a", "0.123", "1.000", "3", "x"]
    assert rp.fmt(21.456, 2) == "21.46"
    assert rp.ratio(1.0, 4.0) == 0.25
    # missing (None from report.json, NaN in memory), or a non-positive denominator: NaN, shown as n/a
    for a, b in ((None, 1.0), (1.0, None), (float("nan"), 1.0), (1.0, float("nan")), (1.0, 0.0), (1.0, -2.0),
                 (float("inf"), 1.0)):
        assert math.isnan(rp.ratio(a, b)), (a, b)
    assert rp.value_at(_report(), "reconstruction/psnr/mean") == 21.4567
    assert rp.value_at(_report(), "reconstruction/psnr/nope") is None
    assert rp.value_at(_report(), "settings/seed/deeper") is None


def test_report_module_imports_nothing_from_the_package():
    tree = ast.parse((REPO_DIR / "poseguide" / "report.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not any(name and name.startswith("poseguide") for name in imported), imported


def test_the_results_script_shares_the_number_helpers():
    """make_results formats with report.fmt and report.ratio, not copies of its own."""
    tree = ast.parse((REPO_DIR / "scripts" / "make_results.py").read_text())
    defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    assert not defined & {"_f", "_fmt", "fmt", "_ratio", "ratio"}, defined
