"""`generate` end to end on a tiny model trained for real, with real MediaPipe on real frames.

Every mode runs the real CLI (`poseguide.cli.main`, in process; the `generate` console
script once in a subprocess), and every bad input is checked for exit status 2, a one-line
message and an untouched --out.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from poseguide import landmarks as lm
from poseguide.cli import main
from poseguide.generate import (
    GenerateError,
    Generator,
    composite,
    resolve_model_dir,
)
from poseguide.model import ModelLoadError, load_extras

from conftest import DATA_DIR, REPO_DIR

FRAMES = DATA_DIR / "vtest"
slow = pytest.mark.slow


def generate(capsys, *args) -> tuple[int, str, str]:
    """Run `poseguide generate ARGS` in process; (exit status, stdout, stderr)."""
    code = main(["generate", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def assert_same_image(a: np.ndarray, b: np.ndarray) -> None:
    """Equal up to one level of rounding (poses read back from a sidecar are rounded to 1e-6)."""
    assert a.shape == b.shape
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def pngs(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("*.png") if p.name != "contact-sheet.png")


@pytest.fixture(scope="module")
def poses(tmp_path_factory) -> dict[str, Path]:
    """Keypoints files written by `poseguide pose` on three real frames (a walk)."""
    walk = tmp_path_factory.mktemp("poses") / "walk"
    walk.mkdir()
    out = {}
    for i, frame in enumerate(("frame-0120", "frame-0180", "frame-0240")):
        path = walk / f"{i:02d}-{frame}.json"
        assert main(["pose", str(FRAMES / f"{frame}.jpg"), "-o", str(path)]) == 0
        out[frame] = path
    out["walk"] = walk
    return out


@pytest.fixture(scope="module")
def generator(tiny_model_dir) -> Generator:
    return Generator.load(tiny_model_dir)


@pytest.fixture(scope="module")
def no_person_photo(tmp_path_factory) -> Path:
    """A real photo with nobody in it: the empty lawn at the bottom left of a vtest frame."""
    path = tmp_path_factory.mktemp("photos") / "lawn.jpg"
    with Image.open(FRAMES / "frame-0000.jpg") as im:
        im.crop((0, 330, 420, 576)).save(path, quality=95)
    return path


# ----------------------------------------------------------------------------- modes


@slow
def test_posed_from_keypoints_file(capsys, tmp_path, tiny_model_dir, poses):
    out = tmp_path / "out"
    code, stdout, err = generate(capsys, "--pose", poses["frame-0120"], "--checkpoint", tiny_model_dir, "--num", 3, "--out", out)
    assert code == 0, err
    assert "wrote 3 images, 3 pose files" in stdout
    images = pngs(out)
    assert [p.name for p in images] == ["sample-000.png", "sample-001.png", "sample-002.png"]
    for path in images:
        with Image.open(path) as im:
            assert im.mode == "RGBA" and im.size == (128, 128)
        sidecar = lm.read_keypoints(path.with_suffix(".json"))
        assert sidecar.image_size == (128, 128)
    first = read_png(images[0])
    assert first[..., 3].min() < first[..., 3].max()  # alpha is the generated mask, not opaque
    assert not np.array_equal(first, read_png(images[1]))  # different appearances
    sheet = read_png(out / "contact-sheet.png")
    assert sheet.shape[1] >= 2 * 128 and sheet.shape[2] == 3  # sample beside its skeleton


@slow
def test_sidecar_round_trip(capsys, tmp_path, tiny_model_dir, poses, generator):
    """The sidecar holds the conditioning pose in the image's own coordinates: re-framing it
    gives the crop pose the model was conditioned on."""
    out = tmp_path / "out"
    assert generate(capsys, "--pose", poses["frame-0180"], "--checkpoint", tiny_model_dir, "--num", 1, "--out", out)[0] == 0
    kp = lm.read_keypoints(poses["frame-0180"])
    conditioning = generator.frame_pose(kp.landmarks, kp.image_size)
    sidecar = lm.read_keypoints(out / "sample-000.json")
    np.testing.assert_allclose(sidecar.landmarks, conditioning, atol=2e-6)
    reframed = generator.frame_pose(sidecar.landmarks, sidecar.image_size)
    np.testing.assert_allclose(reframed, conditioning, atol=1e-5)
    # and it is what the model drew: the same pose from the sidecar draws the same image
    again = generator.generate(reframed[None], seed=0)
    assert_same_image(again[0], read_png(out / "sample-000.png"))


@slow
def test_bare_list_draws_like_the_keypoints_file(capsys, tmp_path, tiny_model_dir, poses):
    """A bare list of 33 [x, y, v] rows (normalised to a square) is the same pose as the file."""
    kp = lm.read_keypoints(poses["frame-0120"])
    width, height = kp.image_size
    side = max(width, height)
    rows = [[float(x) * width / side, float(y) * height / side, float(v)] for x, y, _, v in kp.landmarks]
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(rows))
    a, b = tmp_path / "a", tmp_path / "b"
    assert generate(capsys, "--pose", poses["frame-0120"], "--checkpoint", tiny_model_dir, "--num", 2, "--out", a)[0] == 0
    assert generate(capsys, "--pose", bare, "--checkpoint", tiny_model_dir, "--num", 2, "--out", b)[0] == 0
    for name in ("sample-000", "sample-001"):
        pa, pb = lm.read_keypoints(a / f"{name}.json"), lm.read_keypoints(b / f"{name}.json")
        np.testing.assert_allclose(pb.landmarks[:, [0, 1, 3]], pa.landmarks[:, [0, 1, 3]], atol=1e-5)
        assert_same_image(read_png(a / f"{name}.png"), read_png(b / f"{name}.png"))
    # a bare list of [x, y] rows (all visible) works too
    xy = tmp_path / "xy.json"
    xy.write_text(json.dumps([r[:2] for r in rows]))
    assert generate(capsys, "--pose", xy, "--checkpoint", tiny_model_dir, "--num", 1, "--out", tmp_path / "c")[0] == 0


@slow
def test_pose_image_uses_the_photos_pose(capsys, tmp_path, tiny_model_dir, poses):
    out = tmp_path / "out"
    code, _, err = generate(capsys, "--pose-image", FRAMES / "frame-0120.jpg", "--checkpoint", tiny_model_dir, "--num", 2, "--out", out)
    assert code == 0, err
    assert len(pngs(out)) == 2
    from_file = tmp_path / "from-file"
    assert generate(capsys, "--pose", poses["frame-0120"], "--checkpoint", tiny_model_dir, "--num", 1, "--out", from_file)[0] == 0
    a, b = lm.read_keypoints(out / "sample-000.json"), lm.read_keypoints(from_file / "sample-000.json")
    np.testing.assert_allclose(a.landmarks, b.landmarks, atol=1e-4)  # `poseguide pose` finds the same person


@slow
def test_unconditional_samples_have_no_pose_files(capsys, tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    code, stdout, err = generate(capsys, "--num", 5, "--checkpoint", tiny_model_dir, "--out", out)
    assert code == 0, err
    assert len(pngs(out)) == 5
    assert not list(out.glob("*.json"))
    assert "pose file" not in stdout


@slow
def test_random_pose_draws_training_poses(capsys, tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    code, _, err = generate(capsys, "--random-pose", "--num", 3, "--seed", 5, "--checkpoint", tiny_model_dir, "--out", out)
    assert code == 0, err
    _, tensors = load_extras(tiny_model_dir)
    train_poses = tensors["train_poses"].numpy()
    for path in pngs(out):
        pose = lm.read_keypoints(path.with_suffix(".json")).landmarks
        assert np.abs(train_poses - pose).reshape(len(train_poses), -1).max(axis=1).min() < 1e-5


@slow
def test_random_pose_without_training_poses_says_so(capsys, tmp_path, tiny_model_dir):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    (model / "extras.safetensors").unlink()
    out = tmp_path / "out"
    code, _, err = generate(capsys, "--random-pose", "--checkpoint", model, "--out", out)
    assert code == 2
    assert err.count("\n") == 1 and "train_poses" in err and "--pose" in err
    assert not out.exists()


@slow
def test_appearance_transfer(capsys, tmp_path, tiny_model_dir, poses, generator):
    out = tmp_path / "out"
    code, _, err = generate(
        capsys, "--appearance", FRAMES / "frame-0060.jpg", "--pose", poses["frame-0180"],
        "--checkpoint", tiny_model_dir, "--out", out,
    )
    assert code == 0, err
    assert [p.name for p in pngs(out)] == ["sample-000.png"]
    assert (out / "sample-000.json").is_file()
    # the image is the photo's encoded appearance drawn in the target pose
    appearance = generator.appearance(FRAMES / "frame-0060.jpg")
    assert appearance.image.shape == (128, 128, 3) and appearance.mask.shape == (128, 128)
    assert appearance.z.shape == (1, generator.latent_dim)
    # the reference is cut out like a training sample: its pose fills the crop as prepare's do
    np.testing.assert_allclose(generator.frame_pose(appearance.landmarks, (128, 128)), appearance.landmarks, atol=1e-5)
    kp = lm.read_keypoints(poses["frame-0180"])
    target = generator.frame_pose(kp.landmarks, kp.image_size)
    expected = generator.generate(target[None], z=appearance.z)
    np.testing.assert_array_equal(read_png(out / "sample-000.png"), expected[0])
    np.testing.assert_array_equal(generator.encode_appearance(FRAMES / "frame-0060.jpg"), appearance.z)
    random_look = generator.generate(target[None], seed=0)
    assert not np.array_equal(expected, random_look)


@slow
def test_sequence_from_a_folder_is_a_gif_with_one_appearance(capsys, tmp_path, tiny_model_dir, poses, generator):
    out = tmp_path / "out"
    code, stdout, err = generate(capsys, "--pose", poses["walk"], "--checkpoint", tiny_model_dir, "--seed", 2, "--out", out)
    assert code == 0, err
    assert "sequence.gif" in stdout
    frames = pngs(out)
    assert [p.stem for p in frames] == ["frame-000", "frame-001", "frame-002"]
    import imageio.v3 as iio

    gif = iio.imread(out / "sequence.gif", index=None)
    assert gif.shape[0] == 3 and gif.shape[1:3] == (128, 128)
    # one appearance: every frame is the seed's first z drawn in that frame's pose
    z = generator.sample_z(1, seed=2)
    for path in frames:
        pose = lm.read_keypoints(path.with_suffix(".json")).landmarks
        assert_same_image(read_png(path), generator.generate(pose[None], z=z)[0])


@slow
def test_sequence_of_files_as_mp4(capsys, tmp_path, tiny_model_dir, poses):
    out = tmp_path / "out"
    files = [poses["frame-0240"], poses["frame-0120"]]  # order as given
    code, stdout, err = generate(capsys, "--pose", *files, "--video", "mp4", "--checkpoint", tiny_model_dir, "--out", out)
    assert code == 0, err
    if (out / "sequence.mp4").is_file():
        import cv2

        video = cv2.VideoCapture(str(out / "sequence.mp4"))
        assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 2
        video.release()
    else:  # no offline encoder: a GIF and a note saying so
        assert (out / "sequence.gif").is_file() and "note:" in err
    first = lm.read_keypoints(out / "frame-000.json").landmarks
    direct = tmp_path / "direct"
    assert generate(capsys, "--pose", poses["frame-0240"], "--num", 1, "--checkpoint", tiny_model_dir, "--out", direct)[0] == 0
    np.testing.assert_allclose(first, lm.read_keypoints(direct / "sample-000.json").landmarks, atol=1e-6)


@slow
def test_mp4_without_an_encoder_falls_back_to_gif_with_a_note(capsys, tmp_path, tiny_model_dir, poses, monkeypatch):
    import poseguide.generate

    monkeypatch.setattr(poseguide.generate, "mp4_encoder", lambda: None)  # a machine without FFmpeg
    out = tmp_path / "out"
    code, stdout, err = generate(capsys, "--pose", poses["walk"], "--video", "mp4", "--checkpoint", tiny_model_dir, "--out", out)
    assert code == 0, err
    assert (out / "sequence.gif").is_file() and not (out / "sequence.mp4").exists()
    assert err.startswith("note: ") and "MP4" in err and "sequence.gif" in stdout


@slow
def test_background_composites(capsys, tmp_path, tiny_model_dir, poses):
    rgba_out, rgb_out = tmp_path / "rgba", tmp_path / "rgb"
    args = ("--pose", poses["frame-0120"], "--num", 1, "--checkpoint", tiny_model_dir)
    assert generate(capsys, *args, "--out", rgba_out)[0] == 0
    assert generate(capsys, *args, "--background", "255,255,255", "--out", rgb_out)[0] == 0
    with Image.open(rgb_out / "sample-000.png") as im:
        assert im.mode == "RGB"
    expected = composite(read_png(rgba_out / "sample-000.png"), (255, 255, 255))
    np.testing.assert_array_equal(read_png(rgb_out / "sample-000.png"), expected)


# ----------------------------------------------------------------------------- determinism and framing


@slow
def test_deterministic_for_a_seed(capsys, tmp_path, tiny_model_dir, poses):
    def images(seed, num, name):
        out = tmp_path / name
        assert generate(capsys, "--pose", poses["frame-0120"], "--num", num, "--seed", seed, "--checkpoint", tiny_model_dir, "--out", out)[0] == 0
        return [read_png(p) for p in pngs(out)]

    a, b = images(7, 4, "a"), images(7, 4, "b")
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    prefix = images(7, 2, "prefix")  # sample i does not depend on --num (batching may round differently)
    for x, y in zip(prefix, a[:2]):
        assert_same_image(x, y)
    other = images(8, 4, "other")
    assert not np.array_equal(other[0], a[0])
    u1 = tmp_path / "u1"
    u2 = tmp_path / "u2"
    assert generate(capsys, "--num", 3, "--seed", 1, "--checkpoint", tiny_model_dir, "--out", u1)[0] == 0
    assert generate(capsys, "--num", 3, "--seed", 1, "--checkpoint", tiny_model_dir, "--out", u2)[0] == 0
    for p in pngs(u1):
        assert p.read_bytes() == (u2 / p.name).read_bytes()


def _moved(kp: lm.Keypoints, scale: float, offset: tuple[float, float], canvas: tuple[int, int]) -> np.ndarray:
    """The same pose placed in another image: pixels scaled and shifted, normalised to `canvas`."""
    width, height = kp.image_size
    moved = kp.landmarks.copy()
    moved[:, 0] = (kp.landmarks[:, 0] * width * scale + offset[0]) / canvas[0]
    moved[:, 1] = (kp.landmarks[:, 1] * height * scale + offset[1]) / canvas[1]
    moved[:, 2] = kp.landmarks[:, 2] * width * scale / canvas[0]  # z is on x's scale
    return moved


@slow
def test_framing_ignores_the_source_images_size_and_position(capsys, tmp_path, tiny_model_dir, poses, generator):
    kp = lm.read_keypoints(poses["frame-0180"])
    canvas = (2400, 1800)
    moved = _moved(kp, 2.5, (517.0, 123.0), canvas)
    base = generator.frame_pose(kp.landmarks, kp.image_size)
    np.testing.assert_allclose(generator.frame_pose(moved, canvas), base, atol=1e-5)
    # through the CLI: the same images and pose files
    moved_file = tmp_path / "moved.json"
    lm.write_keypoints(moved_file, moved, canvas)
    a, b = tmp_path / "a", tmp_path / "b"
    assert generate(capsys, "--pose", poses["frame-0180"], "--num", 2, "--checkpoint", tiny_model_dir, "--out", a)[0] == 0
    assert generate(capsys, "--pose", moved_file, "--num", 2, "--checkpoint", tiny_model_dir, "--out", b)[0] == 0
    for path in pngs(a):
        np.testing.assert_allclose(
            lm.read_keypoints(b / f"{path.stem}.json").landmarks, lm.read_keypoints(a / f"{path.stem}.json").landmarks, atol=1e-5
        )
        assert_same_image(read_png(b / path.name), read_png(path))


# ----------------------------------------------------------------------------- the API


@slow
def test_generator_api(generator):
    assert generator.image_size == 128 and generator.background == (128, 128, 128)
    assert generator.train_poses is not None and generator.train_poses.shape[1:] == (33, 4)
    rgba = generator.generate(generator.train_poses[:3], seed=4, batch_size=2)
    assert rgba.shape == (3, 128, 128, 4) and rgba.dtype == np.uint8
    for x, y in zip(rgba, generator.generate(generator.train_poses[:3], seed=4, batch_size=3)):
        assert_same_image(x, y)
    unposed = generator.generate(None, num=2, seed=4)
    assert unposed.shape == (2, 128, 128, 4)
    z = generator.sample_z(3, seed=4, temperature=0.5)
    centre = generator.sample_z(3, seed=4, temperature=0.0)  # temperature scales the spread around it
    np.testing.assert_allclose(z - centre, (generator.sample_z(3, seed=4, temperature=1.0) - centre) * 0.5, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(z[:2], generator.sample_z(2, seed=4, temperature=0.5))
    with pytest.raises(GenerateError):
        generator.generate(np.zeros((2, 33, 3), np.float32))
    with pytest.raises(lm.PoseFileError):
        hidden = generator.train_poses[0].copy()
        hidden[:, 3] = 0.0
        generator.frame_pose(hidden, (128, 128))
    # encode(): a training sample's own posterior mean, batched like training
    from poseguide.dataset import PoseDataset

    info_root = Path(generator.extra_config["data"]["dataset"])
    batch = PoseDataset(info_root, np.arange(2)).__getitems__([0, 1])
    mu = generator.encode(batch["image"].numpy(), batch["mask"].numpy(), batch["landmarks"].numpy())
    assert mu.shape == (2, generator.latent_dim) and torch.isfinite(mu).all()


# ----------------------------------------------------------------------------- finding the model


@slow
def test_checkpoint_is_found_under_runs(tmp_path, tiny_model_dir, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / "first"
    shutil.copytree(tiny_model_dir, run / "model")
    code, stdout, err = generate(capsys, "--num", 1, "--out", "out")
    assert code == 0, err
    assert "runs/first/model" in stdout
    # a run dir works as --checkpoint
    assert generate(capsys, "--num", 1, "--checkpoint", run, "--out", "out2")[0] == 0
    shutil.copytree(tiny_model_dir, tmp_path / "runs" / "second" / "model")
    code, _, err = generate(capsys, "--num", 1, "--out", "out3")
    assert code == 2 and err.count("\n") == 1
    assert "runs/first" in err and "runs/second" in err and "--checkpoint" in err
    assert not Path("out3").exists()


def test_no_runs_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no trained model under"):
        resolve_model_dir(None, tmp_path / "runs")


# ----------------------------------------------------------------------------- bad input


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _bad_cases(tmp: Path, poses: dict[str, Path], model: Path, no_person: Path, dataset: Path) -> dict[str, tuple[list, str]]:
    good = json.loads(poses["frame-0120"].read_text())
    nan = json.loads(json.dumps(good))
    nan["landmarks"][13]["x"] = float("nan")
    far = json.loads(json.dumps(good))
    far["landmarks"][15]["y"] = 3.5
    hidden = json.loads(json.dumps(good))
    for row in hidden["landmarks"][11:]:
        row["visibility"] = 0.05
    mismatched = tmp / "mismatched-model"
    shutil.copytree(model, mismatched)
    config = json.loads((mismatched / "config.json").read_text())
    config["data"]["image_size"] = 64
    (mismatched / "config.json").write_text(json.dumps(config))
    truncated = tmp / "truncated-model"
    shutil.copytree(model, truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    pose = str(poses["frame-0120"])
    return {
        "malformed JSON": (["--pose", _write(tmp / "broken.json", '{"format": "mediapipe-pose-33", "landmarks": [')], "malformed JSON"),
        "wrong count": (["--pose", _write(tmp / "short.json", json.dumps([[0.5, 0.5]] * 30))], "30 joints; poseguide reads 17, 18, 25 (or 33, its own)"),
        "NaN": (["--pose", _write(tmp / "nan.json", json.dumps(nan))], "NaN"),
        "out of range": (["--pose", _write(tmp / "far.json", json.dumps(far))], "within [-0.5, 1.5]"),
        "too few visible": (["--pose", _write(tmp / "hidden.json", json.dumps(hidden))], "body joints are visible"),
        "missing pose file": (["--pose", tmp / "nowhere.json"], "no such"),
        "missing checkpoint": (["--pose", pose, "--checkpoint", tmp / "no-model"], "no such model directory"),
        "dataset as checkpoint": (["--pose", pose, "--checkpoint", dataset], "not a model"),
        "incompatible checkpoint": (["--pose", pose, "--checkpoint", mismatched], "incompatible sizes"),
        "truncated weights": (["--pose", pose, "--checkpoint", truncated], "truncated"),
        "photo without a person": (["--pose-image", no_person], "no person"),
        "reference without a person": (["--appearance", no_person, "--pose", pose], "no person"),
        "appearance without a pose": (["--appearance", FRAMES / "frame-0060.jpg"], "needs a target pose"),
    }


@slow
def test_bad_input_is_one_line_exit_2_and_writes_nothing(capsys, tmp_path, tiny_model_dir, poses, no_person_photo, prepared_dataset):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    cases = _bad_cases(inputs, poses, tiny_model_dir, no_person_photo, prepared_dataset)
    work = tmp_path / "work"
    work.mkdir()
    existing = work / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("earlier output\n")
    for name, (args, message) in cases.items():
        for out in (work / "new", existing):
            before = sorted(p.relative_to(work) for p in work.rglob("*"))
            argv = [*args, "--out", out]
            if "--checkpoint" not in args:
                argv += ["--checkpoint", tiny_model_dir]
            code, stdout, err = generate(capsys, *argv)
            assert code == 2, f"{name}: exit {code}, stderr {err!r}"
            assert err.startswith("error: ") and err.count("\n") == 1, f"{name}: {err!r}"
            assert message in err, f"{name}: {err!r}"
            assert sorted(p.relative_to(work) for p in work.rglob("*")) == before, f"{name} wrote something"
            if "photo" in name or "reference" in name:
                break  # MediaPipe cases are slow; once is enough


@slow
def test_stale_pose_file_is_removed_when_an_image_becomes_unposed(capsys, tmp_path, tiny_model_dir, poses):
    out = tmp_path / "out"
    assert generate(capsys, "--pose", poses["frame-0120"], "--num", 2, "--checkpoint", tiny_model_dir, "--out", out)[0] == 0
    (out / "notes.txt").write_text("mine\n")
    assert generate(capsys, "--num", 1, "--checkpoint", tiny_model_dir, "--out", out)[0] == 0
    assert not (out / "sample-000.json").exists()  # it would describe the wrong image
    assert (out / "sample-001.json").exists() and (out / "notes.txt").exists()
    assert not list(tmp_path.glob(".out.tmp-*"))


# ----------------------------------------------------------------------------- the console script


@slow
def test_generate_console_script(tmp_path, tiny_model_dir, poses):
    script = Path(sys.executable).parent / "generate"
    command = [str(script)] if script.exists() else [sys.executable, "-c", "import sys; from poseguide.cli import generate_main; sys.exit(generate_main())"]
    help_text = subprocess.run([*command, "--help"], capture_output=True, text=True, check=True, cwd=REPO_DIR).stdout
    assert help_text.startswith("usage: generate ")
    for option in ("--pose", "--pose-image", "--random-pose", "--appearance", "--num", "--seed", "--checkpoint", "--background", "--out"):
        assert option in help_text
    out = tmp_path / "out"
    proc = subprocess.run(
        [*command, "--pose", str(poses["frame-0120"]), "--checkpoint", str(tiny_model_dir), "--num", "2", "--out", str(out)],
        capture_output=True, text=True, cwd=REPO_DIR, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(pngs(out)) == 2
    bad = subprocess.run([*command, "--pose", str(tmp_path / "missing.json"), "--out", str(tmp_path / "x")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and not (tmp_path / "x").exists()


def test_cli_defaults_match_the_library():
    """cli.py repeats two defaults so `--help` need not import torch; they must not drift."""
    from poseguide import cli, evaluate, generate

    assert cli.DEFAULT_GENERATE_NUM == generate.DEFAULT_NUM
    assert cli.DEFAULT_TEMPERATURE == generate.DEFAULT_TEMPERATURE
    assert (cli.MAX_GENERATE_NUM, cli.GENERATE_SHEET_MAX, cli.MAX_TEMPERATURE) == (
        generate.MAX_NUM, generate.SHEET_MAX, generate.MAX_TEMPERATURE)
    assert evaluate.EvalSettings().temperature == generate.DEFAULT_TEMPERATURE


# ----------------------------------------------------------------------------- limits


@pytest.fixture(scope="module")
def untrained_model(tmp_path_factory) -> Path:
    """A tiny 64 px model saved as training exports one, but never trained: enough to check
    what is refused and how files are written, in seconds."""
    from poseguide.framing import FramingSettings
    from poseguide.model import ModelConfig, PoseCVAE

    torch.manual_seed(0)
    model = PoseCVAE(ModelConfig(image_size=64, channels=(8, 8), latent_dim=4, pose_latent_dim=2, head_channels=4, condition_size=16))
    extra = {"framing": FramingSettings().to_dict(), "data": {"image_size": 64, "background": [128, 128, 128]}}
    out = tmp_path_factory.mktemp("untrained") / "model"
    model.save_pretrained(out, extra_config=extra)
    return out


def _edited_model(model: Path, where: Path, edit) -> Path:
    copy = where / f"model-{len(list(where.iterdir()))}"
    shutil.copytree(model, copy)
    config = json.loads((copy / "config.json").read_text())
    text = edit(config)
    (copy / "config.json").write_text(text if isinstance(text, str) else json.dumps(config))
    return copy


def _set(section: str, key: str, value):
    def edit(config: dict) -> None:
        config[section][key] = value
    return edit


def _nonsense(inputs: Path, untrained_model: Path) -> dict[str, tuple[list, str]]:
    inputs.mkdir()
    (inputs / "file.txt").write_text("not a folder\n")
    spot = _write(inputs / "spot.json", json.dumps([[0.4, 0.6]] * 33))
    deep = _write(inputs / "deep.json", "[" * 100_000 + "]" * 100_000)
    huge = _write(inputs / "huge.json", json.dumps([[0.5, 0.5]] * 33).replace("0.5", str(10**400), 1))
    models = inputs / "models"
    models.mkdir()
    cases = {
        "huge seed": (["--seed", 10**23], "--seed must be between 0 and 2**63-1, got 100000000000000000000000"),
        "negative seed": (["--seed", -1], "--seed must be between 0 and 2**63-1, got -1"),
        "hot temperature": (["--temperature", 1e30], "--temperature must be between 0 and 10, got 1e+30"),
        "meta device": (["--device", "meta"], "unknown device 'meta'"),
        "too many": (["--num", 100_000], "--num is at most 10000 per run, got 100000"),
        "out in /proc": (["--out", "/proc/poseguide-out"], "--out /proc/poseguide-out: cannot write there"),
        "out under a file": (["--out", inputs / "file.txt" / "out"], "file.txt is a file, not a directory"),
        "deep pose": (["--pose", deep], "deep.json: malformed JSON (nested too deeply)"),
        "huge coordinate": (["--pose", huge], "landmark 0 (nose) has a value too large to be a coordinate"),
        "pose on one spot": (["--pose", spot], "spot.json: the visible landmarks all lie on one spot"),
        "fill 0": (["--checkpoint", _edited_model(untrained_model, models, _set("framing", "fill", 0))],
                   "config.json: framing.fill must be in (0, 1], got 0"),
        "huge channels": (["--checkpoint", _edited_model(untrained_model, models, _set("model", "channels", [100_000, 8]))],
                          "bad model config (channels must be a list of 1-8 whole numbers in [1, 4096]"),
        "huge latent": (["--checkpoint", _edited_model(untrained_model, models, _set("model", "latent_dim", 10**12))],
                        "bad model config (latent_dim must be a whole number in [1, 8192]"),
        "deep config": (["--checkpoint", _edited_model(untrained_model, models, lambda c: '{"a":' * 100_000 + "1" + "}" * 100_000)],
                        "config.json: not valid JSON (nested too deeply)"),
    }
    return cases


NONSENSE = ("huge seed", "negative seed", "hot temperature", "meta device", "too many", "out in /proc", "out under a file",
            "deep pose", "huge coordinate", "pose on one spot", "fill 0", "huge channels", "huge latent", "deep config")


@pytest.mark.parametrize("name", NONSENSE)
def test_nonsense_is_refused_in_one_line_before_drawing(capsys, tmp_path, untrained_model, name):
    cases = _nonsense(tmp_path / "inputs", untrained_model)
    assert set(cases) == set(NONSENSE)
    args, message = cases[name]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    argv = [*args]
    if "--checkpoint" not in args:
        argv += ["--checkpoint", untrained_model]
    if "--out" not in args:
        argv += ["--out", tmp_path / "out"]
    code, _, err = generate(capsys, *argv)
    assert code == 2, f"exit {code}, stderr {err!r}"
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before, "it wrote something"


def test_the_pose_extent_check_keeps_real_poses(generator, poses):
    kp = lm.read_keypoints(poses["frame-0120"])
    generator.frame_pose(kp.landmarks, kp.pixel_aspect_size())  # a real person is far above the limit
    dot = kp.landmarks.copy()
    dot[:, :2] = dot[:, :2] * 0.001 + 0.5  # the same pose shrunk to a dot
    with pytest.raises(GenerateError, match="all lie on one spot"):
        generator.frame_pose(dot, kp.pixel_aspect_size())


def test_many_images_are_written_as_they_are_drawn_and_the_sheet_shows_the_first_64(capsys, tmp_path, untrained_model):
    many, sheet_only = tmp_path / "many", tmp_path / "64"
    code, out, err = generate(capsys, "--checkpoint", untrained_model, "--num", 70, "--batch-size", 16, "--out", many)
    assert code == 0, err
    assert "contact-sheet.png (the first 64)" in out and err == ""  # no bar when stderr is not a terminal
    assert len(pngs(many)) == 70 and not list(tmp_path.glob(".*"))
    assert generate(capsys, "--checkpoint", untrained_model, "--num", 64, "--batch-size", 64, "--out", sheet_only)[0] == 0
    # latent i is the same whatever --num and the batches are: the same first 64 images, the same sheet
    assert np.array_equal(read_png(many / "sample-063.png"), read_png(sheet_only / "sample-063.png"))
    assert np.array_equal(read_png(many / "contact-sheet.png"), read_png(sheet_only / "contact-sheet.png"))


@slow
def test_a_pose_unlike_the_training_poses_gets_a_one_line_warning(capsys, tmp_path, tiny_model_dir, poses, generator):
    """A real walker's pose draws quietly; the same pose with both arms raised overhead lies
    far from every training pose (all walkers), and generate says so in one line, and still
    draws it."""
    from poseguide import pose_edits

    code, _, err = generate(capsys, "--pose", poses["frame-0120"], "--checkpoint", tiny_model_dir, "--out", tmp_path / "a")
    assert code == 0 and "warning" not in err, err
    kp = lm.read_keypoints(poses["frame-0120"])
    raised = pose_edits.swing_limb(pose_edits.swing_limb(kp.landmarks, "left_arm", 175, 178), "right_arm", 175, 178)
    path = tmp_path / "arms-up.json"
    lm.write_keypoints(path, raised, kp.image_size)
    code, out, err = generate(capsys, "--pose", path, "--checkpoint", tiny_model_dir, "--out", tmp_path / "b")
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert code == 0 and "wrote" in out
    assert len(warnings) == 1 and "arms-up.json: this pose is unlike any training pose" in warnings[0], err
    # a folder of poses: one line for all of them
    folder = tmp_path / "seq"
    folder.mkdir()
    shutil.copy(poses["frame-0120"], folder / "0.json")
    shutil.copy(path, folder / "1.json")
    code, _, err = generate(capsys, "--pose", folder, "--checkpoint", tiny_model_dir, "--out", tmp_path / "c")
    assert code == 0 and err.count("warning:") == 1 and "1 of 2 poses are unlike" in err and "1.json" in err
