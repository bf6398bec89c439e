"""Foreign pose files (poseguide/poseformats.py): fixtures typed by hand from each format's
documentation, round trips through every layout, format detection, ControlNet's skeleton picture,
and `generate --pose` / `poseguide pose --format` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from poseguide import cli, landmarks as lm, poseformats as pf
from poseguide.cli import main

from conftest import DATA_DIR

# --------------------------------------------------------------------------- fixtures, typed by hand

# OpenPose's own output (doc/02_output.md): version 1.3, BODY_25 order, pixel coordinates, no canvas.
# The left ear was not found (0, 0, 0).
OPENPOSE_BODY_25 = """{"version":1.3,"people":[{"person_id":[-1],"pose_keypoints_2d":[
320,80,0.93, 320,130,0.88, 280,130,0.85, 260,190,0.80, 250,250,0.76, 360,130,0.86, 380,190,0.82,
390,250,0.79, 320,260,0.70, 295,260,0.68, 290,350,0.72, 288,440,0.75, 345,260,0.69, 350,350,0.71,
352,440,0.74, 312,72,0.90, 328,72,0.91, 302,78,0.60, 0,0,0, 368,460,0.55, 375,455,0.50, 345,452,0.52,
272,460,0.56, 265,455,0.49, 295,452,0.53],
"face_keypoints_2d":[],"hand_left_keypoints_2d":[],"hand_right_keypoints_2d":[],
"pose_keypoints_3d":[],"face_keypoints_3d":[],"hand_left_keypoints_3d":[],"hand_right_keypoints_3d":[]}]}"""
# Where each MediaPipe landmark must land (pixels, visibility); everything else is invisible.
OPENPOSE_BODY_25_EXPECTED = {
    "nose": (320, 80, 0.93), "right_shoulder": (280, 130, 0.85), "right_elbow": (260, 190, 0.80),
    "right_wrist": (250, 250, 0.76), "left_shoulder": (360, 130, 0.86), "left_elbow": (380, 190, 0.82),
    "left_wrist": (390, 250, 0.79), "right_hip": (295, 260, 0.68), "right_knee": (290, 350, 0.72),
    "right_ankle": (288, 440, 0.75), "left_hip": (345, 260, 0.69), "left_knee": (350, 350, 0.71),
    "left_ankle": (352, 440, 0.74), "right_eye": (312, 72, 0.90), "left_eye": (328, 72, 0.91),
    "right_ear": (302, 78, 0.60), "left_foot_index": (368, 460, 0.55), "left_heel": (345, 452, 0.52),
    "right_foot_index": (272, 460, 0.56), "right_heel": (295, 452, 0.53),
}

# ControlNet's annotator / pose editor JSON: COCO-18 order, normalised to the canvas, confidence 1
# or 0 (the right ear is missing).
CONTROLNET_COCO_18 = """{"people":[{"pose_keypoints_2d":[
0.5,0.1,1, 0.5,0.2,1, 0.4,0.2,1, 0.35,0.3,1, 0.3,0.4,1, 0.6,0.2,1, 0.65,0.3,1, 0.7,0.4,1,
0.45,0.5,1, 0.45,0.7,1, 0.45,0.9,1, 0.55,0.5,1, 0.55,0.7,1, 0.55,0.9,1,
0.48,0.09,1, 0.52,0.09,1, 0,0,0, 0.54,0.1,1],
"face_keypoints_2d":null,"hand_left_keypoints_2d":null,"hand_right_keypoints_2d":null}],
"canvas_height":768,"canvas_width":512}"""
CONTROLNET_COCO_18_EXPECTED = {  # normalised x, y, visibility
    "nose": (0.5, 0.1, 1), "right_shoulder": (0.4, 0.2, 1), "right_elbow": (0.35, 0.3, 1),
    "right_wrist": (0.3, 0.4, 1), "left_shoulder": (0.6, 0.2, 1), "left_elbow": (0.65, 0.3, 1),
    "left_wrist": (0.7, 0.4, 1), "right_hip": (0.45, 0.5, 1), "right_knee": (0.45, 0.7, 1),
    "right_ankle": (0.45, 0.9, 1), "left_hip": (0.55, 0.5, 1), "left_knee": (0.55, 0.7, 1),
    "left_ankle": (0.55, 0.9, 1), "right_eye": (0.48, 0.09, 1), "left_eye": (0.52, 0.09, 1),
    "left_ear": (0.54, 0.1, 1),
}
# A second, smaller person (three joints), for ComfyUI's POSE_KEYPOINT list below.
SMALL_COCO_18 = [0.1, 0.1, 1, 0.1, 0.12, 1, 0.09, 0.12, 1] + [0, 0, 0] * 15

# A COCO keypoint annotation file (cocodataset.org/#format-data): v = 0 unlabelled, 1 labelled but
# hidden, 2 visible; pixels of a 640 x 480 image.
COCO_ANNOTATIONS = """{
"images":[{"id":785,"file_name":"000000000785.jpg","width":640,"height":480}],
"annotations":[{"id":1,"image_id":785,"category_id":1,"iscrowd":0,"num_keypoints":15,
"bbox":[250,72,140,368],"area":51520,"keypoints":[
320,80,2, 328,72,2, 312,72,2, 0,0,0, 302,78,1, 360,130,2, 280,130,2, 380,190,2, 260,190,2,
390,250,1, 250,250,2, 345,260,2, 295,260,2, 350,350,2, 290,350,2, 352,440,2, 288,440,2]}],
"categories":[{"id":1,"name":"person","supercategory":"person"}]}"""
COCO_ANNOTATIONS_EXPECTED = {
    "nose": (320, 80, 1), "left_eye": (328, 72, 1), "right_eye": (312, 72, 1), "right_ear": (302, 78, 0.25),
    "left_shoulder": (360, 130, 1), "right_shoulder": (280, 130, 1), "left_elbow": (380, 190, 1),
    "right_elbow": (260, 190, 1), "left_wrist": (390, 250, 0.25), "right_wrist": (250, 250, 1),
    "left_hip": (345, 260, 1), "right_hip": (295, 260, 1), "left_knee": (350, 350, 1),
    "right_knee": (290, 350, 1), "left_ankle": (352, 440, 1), "right_ankle": (288, 440, 1),
}

# One detected person in COCO-17 order (nose, eyes, ears, shoulders, elbows, wrists, hips, knees,
# ankles; left before right), pixels and scores, as detectors report them.
COCO_17_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
PERSON_17 = (
    (120.5, 40.0, 0.95), (124.0, 36.0, 0.93), (117.0, 36.0, 0.94), (129.0, 38.0, 0.40),
    (112.0, 38.0, 0.81), (140.0, 64.0, 0.90), (100.0, 64.0, 0.92), (150.0, 95.0, 0.88),
    (90.0, 95.0, 0.87), (155.0, 125.0, 0.85), (85.0, 125.0, 0.84), (132.0, 130.0, 0.80),
    (108.0, 130.0, 0.79), (134.0, 175.0, 0.77), (106.0, 175.0, 0.76), (135.0, 220.0, 0.70),
    (105.0, 220.0, 0.71),
)
TINY_17 = tuple((10.0 + i, 10.0 + i, 0.9) for i in range(17))  # someone small in the background
PERSON_17_EXPECTED = {name: p for name, p in zip(COCO_17_NAMES, PERSON_17)}


def coco_results() -> list:
    """COCO's results format (also AlphaPose's default): flat [x, y, score] * 17 per person."""
    return [
        {"image_id": 785, "category_id": 1, "keypoints": [v for p in TINY_17 for v in p], "score": 0.52},
        {"image_id": 785, "category_id": 1, "keypoints": [v for p in PERSON_17 for v in p], "score": 0.91},
    ]


def mmpose_instances() -> list:
    """MMPoseInferencer's saved predictions: keypoints [[x, y]], keypoint_scores, bbox [[x1, y1, x2, y2]]."""
    return [
        {"keypoints": [[x, y] for x, y, _ in PERSON_17], "keypoint_scores": [s for _, _, s in PERSON_17],
         "bbox": [[85.0, 36.0, 155.0, 220.0]], "bbox_score": 0.98},
        {"keypoints": [[x, y] for x, y, _ in TINY_17], "keypoint_scores": [s for _, _, s in TINY_17],
         "bbox": [[10.0, 10.0, 26.0, 26.0]], "bbox_score": 0.41},
    ]


def mmpose_demo_file() -> dict:
    """mmpose's topdown demo --save-predictions on a video: meta_info plus frames of instances."""
    return {"meta_info": {"dataset_name": "coco", "num_keypoints": 17},
            "instance_info": [{"frame_id": 1, "instances": mmpose_instances()},
                              {"frame_id": 2, "instances": mmpose_instances()[1:]}]}


def ultralytics_json() -> list:
    """ultralytics' Results.to_json() for a pose model: keypoints as x, y and visible lists."""
    return [{"name": "person", "class": 0, "confidence": 0.89,
             "box": {"x1": 85.0, "y1": 36.0, "x2": 155.0, "y2": 220.0},
             "keypoints": {"x": [x for x, _, _ in PERSON_17], "y": [y for _, y, _ in PERSON_17],
                           "visible": [s for _, _, s in PERSON_17]}}]


def rtmlib_rows() -> list:
    """rtmlib's (17, 2) keypoints and (17,) scores saved together with .tolist()."""
    return [[x, y, s] for x, y, s in PERSON_17]


def check_pose(keypoints: lm.Keypoints, expected: dict, pixels: bool) -> None:
    """Named landmarks where `expected` puts them (pixels or normalised); every other one invisible."""
    size = np.asarray(keypoints.image_size if pixels else (1, 1), dtype=np.float64)
    for name, (x, y, v) in expected.items():
        got = keypoints.landmarks[lm.INDEX[name]]
        np.testing.assert_allclose(got[:2] * size, (x, y), atol=1e-3, err_msg=name)
        assert got[3] == pytest.approx(v, abs=1e-6), name
    others = [i for i, name in enumerate(lm.NAMES) if name not in expected]
    assert (keypoints.landmarks[others, 3] == 0).all()


# --------------------------------------------------------------------------- reading real variants


def test_openpose_body_25_file_in_pixels():
    keypoints, fmt = pf.parse_pose(json.loads(OPENPOSE_BODY_25))
    assert fmt == "openpose"
    check_pose(keypoints, OPENPOSE_BODY_25_EXPECTED, pixels=True)


def test_controlnet_coco_18_normalised_with_canvas():
    keypoints, fmt = pf.parse_pose(json.loads(CONTROLNET_COCO_18))
    assert fmt == "coco18" and keypoints.image_size == (512, 768)
    check_pose(keypoints, CONTROLNET_COCO_18_EXPECTED, pixels=False)


def test_comfyui_pose_keypoint_list_gives_the_first_frames_largest_person():
    person = json.loads(CONTROLNET_COCO_18)["people"][0]
    frames = [
        {"people": [{"pose_keypoints_2d": SMALL_COCO_18}, person], "canvas_width": 512, "canvas_height": 768},
        {"people": [{"pose_keypoints_2d": SMALL_COCO_18}], "canvas_width": 512, "canvas_height": 768},
    ]
    keypoints, fmt = pf.parse_pose(frames)
    assert fmt == "coco18" and keypoints.image_size == (512, 768)
    check_pose(keypoints, CONTROLNET_COCO_18_EXPECTED, pixels=False)


def test_coco_annotation_file_with_visibility_flags():
    keypoints, fmt = pf.parse_pose(json.loads(COCO_ANNOTATIONS))
    assert fmt == "coco17" and keypoints.image_size == (640, 480)
    check_pose(keypoints, COCO_ANNOTATIONS_EXPECTED, pixels=True)


@pytest.mark.parametrize("make", [coco_results, mmpose_instances, mmpose_demo_file, ultralytics_json, rtmlib_rows])
def test_coco_17_detector_outputs(make):
    keypoints, fmt = pf.parse_pose(make())
    assert fmt == "coco17"
    check_pose(keypoints, PERSON_17_EXPECTED, pixels=True)


def test_flat_and_nested_keypoints_objects_read_alike():
    flat = {"keypoints": [v for p in PERSON_17 for v in p], "image_size": [320, 240]}
    nested = {"keypoints": [list(p) for p in PERSON_17], "width": 320, "height": 240}
    for data in (flat, nested):
        keypoints, fmt = pf.parse_pose(data)
        assert fmt == "coco17" and keypoints.image_size == (320, 240)
        check_pose(keypoints, PERSON_17_EXPECTED, pixels=True)


def test_our_own_files_still_read_through_the_same_door(tmp_path):
    pose = np.zeros((33, 4), dtype=np.float32)
    pose[:, :2], pose[:, 3] = 0.5, 1.0
    lm.write_keypoints(tmp_path / "ours.json", pose, (300, 200))
    keypoints = pf.read_pose(tmp_path / "ours.json")
    assert keypoints.image_size == (300, 200) and np.allclose(keypoints.landmarks, pose)
    assert pf.parse_pose([[0.5, 0.5]] * 33)[1] == "mediapipe"


# --------------------------------------------------------------------------- bad files


@pytest.mark.parametrize("data", [{"foo": 1}, [1, 2, 3], "hello", 42, [], {"format": "something-else"}])
def test_garbage_is_one_line_naming_the_formats(data):
    with pytest.raises(lm.PoseFileError) as err:
        pf.parse_pose(data, source="x.json")
    message = str(err.value)
    assert "\n" not in message and message.startswith("x.json: not a pose file")
    for name in ("MediaPipe-33", "OpenPose BODY_25", "COCO-18", "COCO-17"):
        assert name in message


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"people": [{"pose_keypoints_2d": [1, 2, 3, 4]}]}, "'pose_keypoints_2d' must be a list of 51 or 54 or 75 numbers"),
        ({"people": []}, "'people' is empty"),
        ({"people": [{"pose_keypoints_2d": [0] * 54}]}, "no person in the file has a joint"),
        ({"keypoints": [[1, "a", 1]] * 17}, "non-numeric value 'a'"),
        ({"keypoints": [[1e400, 1, 1]] * 17}, "NaN or infinite"),
        ([[1, 2, 3]] * 20, "20 joints"),
        ({"people": [{"pose_keypoints_2d": [0.5, 0.5, 1] + [5000, 5, 1] + [0, 0, 0] * 16}],
          "canvas_width": 100, "canvas_height": 100}, "joint 1 (neck) lies far outside the canvas"),
    ],
)
def test_broken_foreign_files_are_one_line(data, needle):
    with pytest.raises(lm.PoseFileError) as err:
        pf.parse_pose(data, source="x.json")
    assert needle in str(err.value) and "\n" not in str(err.value)


# --------------------------------------------------------------------------- round trips

# The MediaPipe landmarks each layout carries, from the layouts' joint lists.
BODY_13 = {
    "nose", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
}
FACE_4 = {"left_eye", "right_eye", "left_ear", "right_ear"}
CARRIED = {
    "coco17": BODY_13 | FACE_4,
    "coco18": BODY_13 | FACE_4,
    "openpose": BODY_13 | FACE_4 | {"left_heel", "right_heel", "left_foot_index", "right_foot_index"},
}


def a_pose(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pose = np.zeros((33, 4), dtype=np.float32)
    pose[:, :2] = rng.uniform(0.1, 0.9, size=(33, 2))
    pose[:, 2] = rng.uniform(-0.3, 0.3, size=33)
    pose[:, 3] = rng.choice([0.0, 0.3, 0.7, 0.99], size=33)
    pose[[lm.INDEX["left_shoulder"], lm.INDEX["right_shoulder"]], 3] = (0.8, 0.9)
    return pose


@pytest.mark.parametrize("fmt", ["openpose", "coco18", "coco17"])
def test_round_trip_keeps_what_the_layout_carries(tmp_path, fmt):
    pose, size = a_pose(), (640, 360)
    path = pf.write_pose(tmp_path / f"{fmt}.json", pose, size, fmt)
    keypoints = pf.read_pose(path)
    assert keypoints.image_size == size
    back = keypoints.landmarks
    for i, name in enumerate(lm.NAMES):
        found = name in CARRIED[fmt] and pose[i, 3] >= 0.5
        if not found:
            assert back[i, 3] == 0, name
            continue
        np.testing.assert_allclose(back[i, :2] * size, pose[i, :2] * size, atol=1e-3, err_msg=name)
        # OpenPose keeps the score; ControlNet's COCO-18 and COCO's flags say only "found"
        assert back[i, 3] == pytest.approx(pose[i, 3] if fmt == "openpose" else 1.0, abs=1e-6), name


def test_openpose_neck_and_mid_hip_are_midpoints(tmp_path):
    pose = a_pose(1)
    pose[[23, 24], 3] = (0.9, 0.6)
    data = json.loads(pf.write_pose(tmp_path / "p.json", pose, (200, 100), "openpose").read_text())
    values = data["people"][0]["pose_keypoints_2d"]
    assert (data["canvas_width"], data["canvas_height"]) == (200, 100)
    ls, rs, lh, rh = pose[11], pose[12], pose[23], pose[24]
    assert values[3:6] == pytest.approx([(ls[0] + rs[0]) * 100, (ls[1] + rs[1]) * 50, 0.8], abs=1e-3)
    assert values[24:27] == pytest.approx([(lh[0] + rh[0]) * 100, (lh[1] + rh[1]) * 50, 0.6], abs=1e-3)


def test_coco_file_is_a_coco_annotation_file(tmp_path):
    data = json.loads(pf.write_pose(tmp_path / "c.json", a_pose(), (640, 360), "coco17").read_text())
    (image,), (annotation,), (category,) = data["images"], data["annotations"], data["categories"]
    assert (image["width"], image["height"]) == (640, 360) and annotation["image_id"] == image["id"]
    assert len(annotation["keypoints"]) == 51 and set(annotation["keypoints"][2::3]) <= {0, 2}
    assert annotation["num_keypoints"] == annotation["keypoints"][2::3].count(2)
    assert category["keypoints"] == list(COCO_17_NAMES)


# --------------------------------------------------------------------------- ControlNet's picture

# A T-pose on a 512 x 512 canvas, in pixels (the person faces us: their right is on the left).
T_POSE = {
    "nose": (256, 100), "right_eye": (246, 92), "left_eye": (266, 92), "right_ear": (236, 96), "left_ear": (276, 96),
    "right_shoulder": (196, 160), "left_shoulder": (316, 160), "right_elbow": (126, 160), "left_elbow": (386, 160),
    "right_wrist": (56, 160), "left_wrist": (456, 160), "right_hip": (216, 300), "left_hip": (296, 300),
    "right_knee": (206, 390), "left_knee": (306, 390), "right_ankle": (196, 470), "left_ankle": (316, 470),
}
# controlnet_aux's draw_bodypose: limb k is drawn in 0.6 of colour k; (limb ends, colour at its midpoint).
LIMB_MIDPOINT_COLOURS = [
    (("neck", "right_shoulder"), (153, 0, 0)),
    (("neck", "left_shoulder"), (153, 51, 0)),
    (("right_shoulder", "right_elbow"), (153, 102, 0)),
    (("right_elbow", "right_wrist"), (153, 153, 0)),
    (("left_shoulder", "left_elbow"), (102, 153, 0)),
    (("left_elbow", "left_wrist"), (51, 153, 0)),
    (("neck", "right_hip"), (0, 153, 0)),
    (("right_hip", "right_knee"), (0, 153, 51)),
    (("right_knee", "right_ankle"), (0, 153, 102)),
    (("neck", "left_hip"), (0, 153, 153)),
    (("left_hip", "left_knee"), (0, 102, 153)),
    (("left_knee", "left_ankle"), (0, 51, 153)),
    (("neck", "nose"), (0, 0, 153)),
]


def t_pose(hidden: tuple[str, ...] = ()) -> np.ndarray:
    pose = np.zeros((33, 4), dtype=np.float32)
    for name, (x, y) in T_POSE.items():
        pose[lm.INDEX[name]] = (x / 512, y / 512, 0, 0.0 if name in hidden else 1.0)
    return pose


def _point(name: str) -> np.ndarray:
    if name == "neck":
        return (np.asarray(T_POSE["left_shoulder"]) + np.asarray(T_POSE["right_shoulder"])) / 2
    return np.asarray(T_POSE[name], dtype=np.float64)


def test_controlnet_png_has_openpose_colours_at_limb_midpoints(tmp_path):
    path = pf.write_pose(tmp_path / "pose.png", t_pose(hidden=("left_knee",)), (512, 512), "controlnet-png")
    with Image.open(path) as im:
        assert im.mode == "RGB" and im.size == (512, 512)
        rgb = np.asarray(im)
    for (a, b), colour in LIMB_MIDPOINT_COLOURS:
        x, y = ((_point(a) + _point(b)) / 2).astype(int)
        if "left_knee" in (a, b):
            assert tuple(rgb[y, x]) == (0, 0, 0), (a, b)  # a limb with a hidden end is not drawn
        else:
            assert tuple(rgb[y, x]) == colour, (a, b)
    assert tuple(rgb[100, 256]) == (255, 0, 0)  # joints are discs in the full colour: nose is joint 0
    assert tuple(rgb[160, 256]) == (255, 85, 0)  # the neck, joint 1
    assert tuple(rgb[5, 5]) == (0, 0, 0) and tuple(rgb[500, 500]) == (0, 0, 0)


# --------------------------------------------------------------------------- command line


def test_cli_offers_the_same_formats():
    assert cli.POSE_FORMATS == pf.FORMATS


@pytest.fixture(scope="module")
def untrained_model(tmp_path_factory) -> Path:
    """A tiny untrained 64 px model saved as training exports one: enough to run `generate`."""
    import torch

    from poseguide.framing import FramingSettings
    from poseguide.model import ModelConfig, PoseCVAE

    torch.manual_seed(0)
    model = PoseCVAE(ModelConfig(image_size=64, channels=(8, 8), latent_dim=4, pose_latent_dim=2, head_channels=4, condition_size=16))
    extra = {"framing": FramingSettings().to_dict(), "data": {"image_size": 64, "background": [128, 128, 128]}}
    out = tmp_path_factory.mktemp("untrained") / "model"
    model.save_pretrained(out, extra_config=extra)
    return out


def test_generate_draws_an_openpose_file(tmp_path, capsys, untrained_model):
    pose = tmp_path / "openpose.json"
    pose.write_text(OPENPOSE_BODY_25)
    out = tmp_path / "out"
    code = main(["generate", "--pose", str(pose), "--checkpoint", str(untrained_model), "--num", "1", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    with Image.open(out / "sample-000.png") as im:
        assert im.size == (64, 64)
    drawn = lm.read_keypoints(out / "sample-000.json").landmarks  # the pose it was drawn in, in the crop
    visible = {lm.NAMES[i] for i in np.nonzero(drawn[:, 3] > 0)[0]}
    assert visible == set(OPENPOSE_BODY_25_EXPECTED)


def test_generate_refuses_garbage_in_one_line(tmp_path, capsys, untrained_model):
    pose = tmp_path / "garbage.json"
    pose.write_text('{"hello": "world"}')
    out = tmp_path / "out"
    code = main(["generate", "--pose", str(pose), "--checkpoint", str(untrained_model), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "garbage.json: not a pose file" in err and "COCO-17" in err
    assert not out.exists()


@pytest.mark.slow
def test_pose_command_writes_every_format(tmp_path, capsys):
    frame = DATA_DIR / "vtest" / "frame-0120.jpg"
    for fmt, name in (("openpose", "p.json"), ("coco18", "c18.json"), ("coco17", "c17.json"), ("controlnet-png", "p.png")):
        assert main(["pose", str(frame), "-o", str(tmp_path / name), "--format", fmt]) == 0, capsys.readouterr().err
    assert main(["pose", str(frame), "-o", str(tmp_path / "mp.json")]) == 0
    ours = lm.read_keypoints(tmp_path / "mp.json")
    for name, fmt in (("p.json", "openpose"), ("c18.json", "coco18"), ("c17.json", "coco17")):
        keypoints, found = pf.parse_pose(json.loads((tmp_path / name).read_text()))
        assert found == fmt and keypoints.image_size == ours.image_size
        nose = lm.INDEX["nose"]
        np.testing.assert_allclose(keypoints.landmarks[nose, :2], ours.landmarks[nose, :2], atol=1e-4)
    with Image.open(tmp_path / "p.png") as im:
        assert im.size == ours.image_size
        assert np.asarray(im).max() == 255  # the joints' full colours are there
