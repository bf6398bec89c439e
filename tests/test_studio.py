"""The studio: its pure parts on an untrained tiny model (fast), and the page in a real
headless Chromium driven by Selenium on the tiny model trained for real (slow)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from poseguide import framing, landmarks as lm
from poseguide.cli import main
from poseguide.generate import GenerateError, Generator
from poseguide.model import ModelConfig, PoseCVAE
from poseguide.studio import (
    PRESETS,
    Studio,
    interpolate_poses,
    pose_from_json,
    pose_to_json,
    preset_pose,
)

from conftest import DATA_DIR, REPO_DIR

WRIST = lm.INDEX["left_wrist"]


@pytest.fixture(scope="module")
def untrained_model_dir(tmp_path_factory) -> Path:
    """A tiny untrained CVAE saved as training exports it (framing, data settings, training
    poses): the redraw's plumbing does not depend on what the weights learned."""
    torch.manual_seed(0)
    config = ModelConfig(image_size=64, channels=(16, 32, 32), head_channels=8, latent_dim=16,
                         pose_latent_dim=4, condition_size=32)
    extra = {"framing": framing.FramingSettings().to_dict(), "data": {"image_size": 64, "background": [128, 128, 128]}}
    poses = torch.from_numpy(np.stack([preset_pose(name) for name in PRESETS]))
    directory = tmp_path_factory.mktemp("untrained") / "model"
    return PoseCVAE(config).eval().save_pretrained(directory, extra_config=extra, extra_tensors={"train_poses": poses})


@pytest.fixture(scope="module")
def studio(untrained_model_dir, tmp_path_factory) -> Studio:
    return Studio(Generator.load(untrained_model_dir, "cpu", "fp32"), tmp_path_factory.mktemp("studio-work"))


# ----------------------------------------------------------------------------- pure parts


def test_canvas_pose_json_round_trip():
    """The canvas holds the keypoints format; what it sends back (a joint moved in place,
    as studio.js does) reads back as that pose."""
    pose = preset_pose("walk")
    data = json.loads(pose_to_json(pose, 128))
    assert data["format"] == lm.KEYPOINTS_FORMAT and data["image_size"] == [128, 128]
    np.testing.assert_allclose(pose_from_json(json.dumps(data)), pose, atol=1e-6)
    data["landmarks"][WRIST]["x"] = 0.9
    data["landmarks"][WRIST]["y"] = 0.05
    moved = pose_from_json(json.dumps(data))
    assert moved[WRIST, :2].tolist() == pytest.approx([0.9, 0.05])
    np.testing.assert_allclose(np.delete(moved, WRIST, axis=0), np.delete(pose, WRIST, axis=0), atol=1e-6)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"format": "openpose"}', "null"])
def test_bad_canvas_json_is_one_line(text):
    with pytest.raises(lm.PoseFileError) as err:
        pose_from_json(text)
    assert "\n" not in str(err.value) and str(err.value).startswith("canvas: ")


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_are_framed_body_poses(name):
    pose = preset_pose(name)
    assert pose.shape == (33, 4) and pose.dtype == np.float32 and np.isfinite(pose).all()
    assert (pose[:, :2] > 0).all() and (pose[:, :2] < 1).all()
    assert lm.count_visible_body_joints(pose) == len(lm.BODY_JOINTS)
    # Already in crop coordinates: framing it as training photos were framed moves it little.
    framed, _ = framing.pose_to_crop(pose, (1, 1))
    assert np.abs(framed[:, :2] - pose[:, :2]).max() < 0.1
    # Bones of the two sides have human proportions: the thigh is longer than half the shin
    # and the upper arm than half the forearm on each side.
    def bone(a, b):
        return float(np.linalg.norm(pose[lm.INDEX[a], :2] - pose[lm.INDEX[b], :2]))
    for side in ("left_", "right_"):
        assert 0.5 < bone(side + "hip", side + "knee") / bone(side + "knee", side + "ankle") < 2
        assert 0.5 < bone(side + "shoulder", side + "elbow") / bone(side + "elbow", side + "wrist") < 2
    facing = PRESETS[name][0]
    if facing == "front":  # facing the camera: the person's left is on the image's right
        for part in ("shoulder", "hip", "eye", "ear"):
            assert pose[lm.INDEX["left_" + part], 0] > pose[lm.INDEX["right_" + part], 0]


def test_presets_differ():
    poses = [preset_pose(name) for name in PRESETS]
    for i in range(len(poses)):
        for j in range(i + 1, len(poses)):
            assert np.abs(poses[i] - poses[j]).max() > 0.05


def test_interpolate_poses_goes_through_the_keyframes():
    a, b, c = (preset_pose(n) for n in ("stand", "T-pose", "arms up"))
    frames = interpolate_poses([a, b, c], steps=4)
    assert frames.shape == (9, 33, 4)
    np.testing.assert_array_equal(frames[0], a)
    np.testing.assert_array_equal(frames[4], b)
    np.testing.assert_array_equal(frames[8], c)
    np.testing.assert_allclose(frames[2], (a + b) / 2, atol=1e-6)
    assert interpolate_poses([a], steps=4).shape == (1, 33, 4)
    with pytest.raises(GenerateError):
        interpolate_poses([], steps=4)


def test_redraw_changes_when_a_joint_moves(studio):
    pose = studio.preset("T-pose")
    z = studio.look(3, 0.7)
    first = studio.redraw(pose, z)
    assert first.shape == (64, 64, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(studio.redraw(pose.copy(), z), first)  # same pose, same image
    moved = pose.copy()
    moved[WRIST, :2] += (-0.2, 0.3)
    change = np.abs(studio.redraw(moved, z).astype(int) - first.astype(int)).max(axis=2)
    assert change.max() >= 3
    # The change is where the arm was and went, not everywhere (an untrained model's answer
    # to a pose is weak, but it is local: the heatmaps are).
    yy, xx = (np.mgrid[0:64, 0:64] + 0.5) / 64
    arm = np.zeros((64, 64), bool)
    for x, y in (pose[WRIST, :2], moved[WRIST, :2], pose[lm.INDEX["left_elbow"], :2]):
        arm |= np.hypot(xx - x, yy - y) < 0.2
    assert change[arm].mean() > 3 * change[~arm].mean()
    assert not np.array_equal(studio.redraw(pose, studio.look(4, 0.7)), first)  # another look


def test_note_warns_when_the_pose_is_far_from_the_training_poses(studio):
    """The tiny model's training poses are the presets: a preset is near them, a wrist
    dragged far off is not, and the page gets coverage's one line for it."""
    pose = studio.preset("stand")
    assert studio.note(pose) is None
    pose[WRIST, :2] = (0.95, 0.05)
    note = studio.note(pose)
    assert note is not None and "\n" not in note and "unlike any training pose" in note


def test_canvas_value_holds_the_redrawn_image(studio):
    pose = studio.preset("kick")
    z = studio.look(0, 0.7)
    value = studio.canvas_value(pose, z)
    header, data = value["image"].split(",", 1)
    assert header == "data:image/png;base64"
    png = cv2.cvtColor(cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(png, studio.redraw(pose, z))
    assert pose_from_json(json.dumps(value["pose"])) == pytest.approx(pose, abs=1e-6)
    assert studio.canvas_value(None, z, drawn_pose=pose)["pose"] is None  # the canvas keeps its own


def test_export_writes_rgba_png_and_keypoints(studio):
    pose = lm.flip_horizontal(studio.preset("walk"))
    png, keypoints, openpose = studio.export(pose, studio.look(1, 0.7))
    with Image.open(png) as im:
        assert im.mode == "RGBA" and im.size == (64, 64)
        rgba = np.asarray(im)
    assert rgba[..., 3].min() < rgba[..., 3].max()
    read = lm.read_keypoints(keypoints)
    assert read.image_size == (64, 64)
    np.testing.assert_allclose(read.landmarks, pose, atol=1e-6)
    # The OpenPose file holds the same body joints: poseformats' auto-detecting reader, the one
    # the page's file upload uses, frames it back to the pose.
    assert json.loads(openpose.read_text())["people"][0]["pose_keypoints_2d"]
    assert studio.pose_from_file(openpose)[list(lm.BODY_JOINTS), :2] == pytest.approx(
        studio.gen.frame_pose(pose, (1, 1))[list(lm.BODY_JOINTS), :2], abs=0.02)


def test_animation_has_a_frame_per_interpolated_pose(studio):
    keys = [studio.preset("stand"), studio.preset("arms up")]
    preview, chosen, note = studio.animation(keys, studio.look(0, 0.7), steps=5, fps=10, video="gif")
    assert chosen == preview and note is None
    with Image.open(preview) as im:
        assert im.n_frames == 6 and im.size == (64, 64)


def test_training_pose_and_strip(studio):
    pose, index = studio.training_pose()
    np.testing.assert_array_equal(pose, studio.gen.train_poses[index])
    strip = studio.strip(studio.preset("sit"), seed=0, temperature=0.7, count=3)
    assert strip.shape == (64, 3 * 64, 3)
    np.testing.assert_array_equal(strip[:, :64], studio.redraw(studio.preset("sit"), studio.look(0, 0.7)))


@pytest.mark.slow
def test_pose_and_look_from_a_real_photo(studio):
    """MediaPipe on a real frame: its walker's pose framed into the crop, and their look."""
    photo = DATA_DIR / "vtest" / "frame-0120.jpg"
    pose = studio.pose_from_photo(photo)
    assert lm.count_visible_body_joints(pose) >= 8
    visible = pose[:, 3] >= 0.5
    extent = pose[visible, :2].max(axis=0) - pose[visible, :2].min(axis=0)
    assert extent.max() == pytest.approx(studio.gen.framing.fill, abs=0.01)  # framed as in training
    z = studio.look_from_photo(photo)
    assert z.shape == (studio.gen.latent_dim,) and np.isfinite(z).all()
    assert not np.array_equal(studio.redraw(pose, z), studio.redraw(pose, studio.look(0, 0.7)))


@pytest.mark.parametrize("make", ["missing", "not-a-model"])
def test_bad_checkpoint_is_one_line_before_any_server(make, tmp_path, capsys):
    target = tmp_path / "model"
    if make == "not-a-model":
        target.mkdir()
        (target / "config.json").write_text('{"format": "something else"}')
    start = time.monotonic()
    assert main(["studio", "--checkpoint", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and str(target) in err
    assert time.monotonic() - start < 30  # it returned: no server was left serving


# ----------------------------------------------------------------------------- the page, in a browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chrome():
    """Headless Debian Chromium through its own chromedriver (nothing is downloaded)."""
    browser, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if browser is None or driver is None:
        message = "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1100"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))


@pytest.mark.slow
def test_drag_a_joint_in_a_real_browser(tiny_model_dir, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(REPO_DIR)}
    log = (tmp_path / "studio.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "poseguide.cli", "studio", "--checkpoint", str(tiny_model_dir), "--port", str(port)],
        cwd=REPO_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    driver = None
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "studio.log").read_text()[-3000:]
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the studio did not start serving"
                time.sleep(0.5)
        driver = chrome()
        driver.get(url)
        wait = WebDriverWait(driver, 60)
        canvas = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#studio-canvas canvas[data-stamp]"))
        before = canvas.get_attribute("data-image")
        assert before.startswith("data:image/png;base64,")

        # The page opens on the "stand" preset, framed by the model: grab its left wrist.
        start = Generator.load(tiny_model_dir).frame_pose(preset_pose("stand"), (1, 1))
        width, height = canvas.size["width"], canvas.size["height"]
        x, y = start[WRIST, 0] * width, start[WRIST, 1] * height
        actions = ActionChains(driver, duration=50)
        actions.move_to_element_with_offset(canvas, round(x - width / 2), round(y - height / 2)).click_and_hold()
        for _ in range(8):  # a drag, not a jump: the page redraws on the way
            actions.move_by_offset(10, -15)
        actions.release().perform()
        # The last pose of the drag has been sent and answered with its image.
        wait.until(lambda d: canvas.get_attribute("data-busy") == "0")
        assert canvas.get_attribute("data-image") != before

        driver.find_element(By.XPATH, "//button[@role='tab' and normalize-space()='Export']").click()
        wait.until(lambda d: d.find_element(By.ID, "studio-export").is_displayed())
        driver.find_element(By.ID, "studio-export").click()
        link = wait.until(lambda d: next((a for a in d.find_elements(By.CSS_SELECTOR, "#studio-exports a[href]")
                                          if a.get_attribute("href").endswith(".json")), None))
        with urllib.request.urlopen(link.get_attribute("href"), timeout=10) as response:
            exported = lm.parse_keypoints(json.loads(response.read()), "export").landmarks
        moved = exported[WRIST, :2] - start[WRIST, :2]
        expected = np.array([80 / width, -120 / height])
        assert np.abs(moved - expected).max() < 0.03, (moved, expected)
        others = np.delete(np.arange(33), [WRIST, lm.INDEX["left_pinky"], lm.INDEX["left_index"], lm.INDEX["left_thumb"]])
        np.testing.assert_allclose(exported[others, :2], start[others, :2], atol=1e-4)
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
