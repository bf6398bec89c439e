"""`poseguide synth`: pose sampling, the anny body it poses, the pictures, the output folder."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from poseguide import cli, synth
from poseguide.synth import FAMILIES, JOINT_LIMITS, SynthSettings, sample_pose, within_limits


@pytest.fixture(scope="module")
def body():
    return synth.BodyModel()


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return math.degrees(math.acos(np.clip(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b), -1, 1)))


def test_sampled_poses_stay_within_joint_limits():
    rng = np.random.default_rng(0)
    for family in FAMILIES:
        for _ in range(200):
            pose = sample_pose(family, rng)
            assert set(pose) == set(JOINT_LIMITS)
            assert within_limits(pose), (family, pose)


def test_limits_reject_impossible_poses():
    pose = sample_pose("stand", np.random.default_rng(1))
    assert not within_limits({**pose, "left_elbow": -20.0})  # elbows do not bend backwards
    assert not within_limits({**pose, "right_knee": 170.0})
    assert not within_limits({**pose, "left_arm_azimuth": -80.0, "left_arm_elevation": 150.0})  # raised behind the back
    assert within_limits(synth.clamp_to_limits({**pose, "left_arm_azimuth": -80.0, "left_arm_elevation": 150.0}))


def test_families_differ_where_they_should():
    rng = np.random.default_rng(2)
    overhead = [sample_pose("arms_overhead", rng) for _ in range(50)]
    crouch = [sample_pose("crouch", rng) for _ in range(50)]
    stand = [sample_pose("stand", rng) for _ in range(50)]
    assert min(p["left_arm_elevation"] for p in overhead) > 140 > max(p["left_arm_elevation"] for p in stand)
    assert min(p["left_knee"] for p in crouch) > 100 > max(p["left_knee"] for p in stand)


def test_cli_lists_the_same_families():
    assert cli.SYNTH_FAMILIES == FAMILIES


def test_posed_limbs_point_where_the_angles_say(body):
    """The angles reach anny's skeleton as meant: upper arms and thighs point along the
    requested directions and elbows and knees bend by the requested angle, the right way."""
    pose = sample_pose("stand", np.random.default_rng(3))
    pose.update(left_arm_elevation=90.0, left_arm_azimuth=45.0, left_elbow=90.0, left_arm_twist=0.0,
                right_arm_elevation=160.0, right_arm_azimuth=10.0, right_elbow=0.0,
                left_hip_flex=80.0, left_hip_abduction=0.0, left_knee=90.0, spine_flex=0.0, spine_side=0.0, spine_twist=0.0)
    params = body.pose_parameters(pose)[None]
    out = body.posed(params, None)
    heads = out["bone_poses"][0, :, :3, 3].double().numpy() @ body.frame
    at = lambda name: heads[body.bone_index[name]]  # noqa: E731
    upper = at("lowerarm01.L") - at("upperarm01.L")
    assert _angle(upper, synth.arm_direction("left", 90, 45)) < 6
    fore = at("wrist.L") - at("lowerarm01.L")
    assert 75 < _angle(upper, fore) < 105
    assert fore[2] > 0.5 * np.linalg.norm(fore) or fore[1] > 0.5 * np.linalg.norm(fore)  # forward or up, never back
    assert _angle(at("lowerarm01.R") - at("upperarm01.R"), synth.arm_direction("right", 160, 10)) < 6
    thigh = at("lowerleg01.L") - at("upperleg01.L")
    assert _angle(thigh, synth.thigh_direction("left", 80, 0)) < 6
    shin = at("foot.L") - at("lowerleg01.L")
    assert 75 < _angle(thigh, shin) < 105 and shin[1] < 0  # the shin hangs down from the raised knee


def test_arms_overhead_render_puts_wrists_above_the_head_on_person_pixels(body):
    settings = SynthSettings(num=4, size=128, families=("arms_overhead",))
    described = [synth.describe(settings, i, body.model.phenotype_labels) for i in range(4)]
    for _, scene in described:
        scene.pitch = 0.0
    result = synth.render(body, [p for p, _ in described], [s for _, s in described], 128)
    names = body.joint_names
    for k in range(4):
        joints = result.joints[k]
        nose = joints[names.index("nose")]
        for wrist in ("left_wrist", "right_wrist"):
            assert joints[names.index(wrist)][1] < nose[1]
        mask = result.masks[k]
        assert 0.02 < mask.mean() < 0.6
        # The person's pixels cover the projected joints (they lie inside the body, so one
        # pixel of slack around each is enough).
        for name in ("nose", "left_shoulder", "right_shoulder", "left_wrist", "right_wrist", "left_hip", "right_knee", "left_ankle"):
            x, y = joints[names.index(name)]
            xi, yi = int(round(x - 0.5)), int(round(y - 0.5))
            assert mask[max(yi - 1, 0):yi + 2, max(xi - 1, 0):xi + 2].any(), (k, name)
        # The background keeps its own colours: person pixels differ from it.
        assert (result.images[k][~mask].astype(int) - result.images[k][mask].mean(0)).std() > 0


def test_rerun_continues_and_does_not_render_again(tmp_path, body):
    out = tmp_path / "synth"
    first = synth.synthesize(out, SynthSettings(num=3, size=64), progress=False, body=body)
    assert first["rendered"] == 3
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "images").iterdir()}
    again = synth.synthesize(out, SynthSettings(num=3, size=64), progress=False, body=body)
    assert again["rendered"] == 0
    more = synth.synthesize(out, SynthSettings(num=5, size=64), progress=False, body=body)
    assert more["rendered"] == 2
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "images").iterdir()}
    assert {k: after[k] for k in before} == before
    with open(out / "renders.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == [f"{i:06d}.png" for i in range(5)]
    assert [r["family"] for r in rows] == list(FAMILIES[:5])
    assert float(rows[0]["left_wrist_x"]) != float(rows[1]["left_wrist_x"])
    assert not list(out.rglob(".*.tmp"))
    # the same pictures as drawing all five at once
    fresh = tmp_path / "fresh"
    synth.synthesize(fresh, SynthSettings(num=5, size=64), progress=False, body=body)
    assert (fresh / "images" / "000004.png").read_bytes() == (out / "images" / "000004.png").read_bytes()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--num", "0"], "--num must be at least 1"),
        (["--num", "3", "--size", "16"], "--size must be from 64"),
        (["--num", "3", "--families", "dance"], "unknown pose family 'dance'"),
    ],
)
def test_bad_arguments_are_one_line(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert cli.main(["synth", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err
    assert not out.exists()


def test_other_settings_or_a_foreign_folder_are_refused(tmp_path, capsys, body):
    out = tmp_path / "synth"
    synth.synthesize(out, SynthSettings(num=1, size=64), progress=False, body=body)
    assert cli.main(["synth", str(out), "--num", "2", "--size", "128"]) == 2
    assert "made with size 64, not 128" in capsys.readouterr().err
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "me.jpg").write_bytes(b"x")
    assert cli.main(["synth", str(foreign), "--num", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not empty" in err
    afile = tmp_path / "file"
    afile.write_text("x")
    assert cli.main(["synth", str(afile), "--num", "2"]) == 2
    assert "not a directory" in capsys.readouterr().err


@pytest.mark.slow
def test_mediapipe_finds_the_rendered_people_where_renders_csv_says(body):
    """Real MediaPipe on real renders: it finds a person in most, and its shoulders, hips and
    wrists land near the true ones, left on left (which also checks the joint naming)."""
    from poseguide.extract import NoPersonError, PoseEstimator, best_person
    from poseguide.landmarks import INDEX

    settings = SynthSettings(num=8, size=256, seed=5, families=("stand", "arms_out", "walk", "arms_overhead"))
    described = [synth.describe(settings, i, body.model.phenotype_labels) for i in range(8)]
    for _, scene in described:
        scene.yaw = float(np.clip(scene.yaw, -30, 30))  # facing the camera, so left/right are unambiguous
    result = synth.render(body, [p for p, _ in described], [s for _, s in described], 256)
    found, close = 0, 0
    with PoseEstimator() as estimator:
        for k in range(8):
            try:
                person = best_person(result.images[k], estimator)
            except NoPersonError:
                continue
            found += 1
            errors = []
            for name in ("left_shoulder", "right_shoulder", "left_hip", "right_hip", "left_wrist", "right_wrist"):
                true = result.joints[k][body.joint_names.index(name)]
                seen = person.landmarks[INDEX[name], :2] * 256
                errors.append(np.linalg.norm(true - seen))
            close += np.median(errors) < 0.06 * 256
    assert found >= 6
    assert close >= found - 1
