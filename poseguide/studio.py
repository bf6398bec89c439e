"""The studio: a pose editor in the browser that redraws the person while a joint is dragged.

`poseguide studio` serves a Gradio page. Its canvas (a small script, studio.js, inside a
gr.HTML) shows the generated person with the skeleton over it; dragging a joint sends the
pose, in the keypoints format of landmarks.py, with the canvas's input event, and the redraw
that answers draws the person in that pose with `generate.Generator`, the same API the
`generate` command uses. The small model decodes one 128 px image in a few tens of
milliseconds on a CPU, so the person follows the drag.

Poses live in the model's crop coordinates (x, y in [0, 1] of the generated image), so what
the canvas shows is exactly what the model is conditioned on. Poses from photos, keypoints
files and the preset table are framed into the crop the way `prepare` framed training photos.

The pure parts (presets, pose JSON, interpolation, the `Studio` class) import no Gradio and
are tested directly; `build_app` and `launch` are the page.
"""

# No `from __future__ import annotations`: Gradio reads the gr.EventData annotation of the
# canvas handler at run time.

import atexit
import base64
import functools
import json
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from poseguide import landmarks as lm, visualize
from poseguide.generate import GenerateError, Generator, check_sampling, composite, resolve_model_dir, write_animation
from poseguide.model import DEFAULT_TEMPERATURE
from poseguide.poseformats import read_pose, write_pose

LOCALHOSTS = ("127.0.0.1", "localhost", "::1")
STRIP_MAX = 12  # appearances in one strip: a row that still fits a screen
STEPS_MAX = 30  # interpolated frames between two keyframes
CANVAS_PX = 512  # side of the canvas on the page; the image is scaled up to it

# ----------------------------------------------------------------------------- presets

# The 13 body joints of each preset in crop coordinates (x right, y down, the person about
# as large as a framed training crop). The face, hands and feet follow from them
# (`complete_pose`). "front" faces the camera, so the person's left is on the image's right;
# "right" is a side view walking to the image's right.
PRESETS: dict[str, tuple[str, dict[str, tuple[float, float]]]] = {
    "stand": ("front", {
        "nose": (0.50, 0.20), "left_shoulder": (0.56, 0.30), "right_shoulder": (0.44, 0.30),
        "left_elbow": (0.58, 0.42), "right_elbow": (0.42, 0.42), "left_wrist": (0.59, 0.53), "right_wrist": (0.41, 0.53),
        "left_hip": (0.54, 0.53), "right_hip": (0.46, 0.53), "left_knee": (0.54, 0.69), "right_knee": (0.46, 0.69),
        "left_ankle": (0.54, 0.84), "right_ankle": (0.46, 0.84),
    }),
    "T-pose": ("front", {
        "nose": (0.50, 0.20), "left_shoulder": (0.56, 0.30), "right_shoulder": (0.44, 0.30),
        "left_elbow": (0.67, 0.30), "right_elbow": (0.33, 0.30), "left_wrist": (0.78, 0.30), "right_wrist": (0.22, 0.30),
        "left_hip": (0.54, 0.53), "right_hip": (0.46, 0.53), "left_knee": (0.54, 0.69), "right_knee": (0.46, 0.69),
        "left_ankle": (0.54, 0.84), "right_ankle": (0.46, 0.84),
    }),
    "arms up": ("front", {
        "nose": (0.50, 0.24), "left_shoulder": (0.56, 0.34), "right_shoulder": (0.44, 0.34),
        "left_elbow": (0.61, 0.23), "right_elbow": (0.39, 0.23), "left_wrist": (0.63, 0.12), "right_wrist": (0.37, 0.12),
        "left_hip": (0.54, 0.57), "right_hip": (0.46, 0.57), "left_knee": (0.54, 0.72), "right_knee": (0.46, 0.72),
        "left_ankle": (0.54, 0.87), "right_ankle": (0.46, 0.87),
    }),
    "walk": ("right", {
        "nose": (0.54, 0.20), "left_shoulder": (0.51, 0.30), "right_shoulder": (0.49, 0.30),
        "left_elbow": (0.45, 0.41), "right_elbow": (0.55, 0.41), "left_wrist": (0.42, 0.51), "right_wrist": (0.60, 0.50),
        "left_hip": (0.505, 0.53), "right_hip": (0.495, 0.53), "left_knee": (0.57, 0.68), "right_knee": (0.45, 0.68),
        "left_ankle": (0.60, 0.84), "right_ankle": (0.40, 0.82),
    }),
    "sit": ("right", {
        "nose": (0.47, 0.17), "left_shoulder": (0.455, 0.28), "right_shoulder": (0.445, 0.28),
        "left_elbow": (0.47, 0.40), "right_elbow": (0.46, 0.40), "left_wrist": (0.56, 0.47), "right_wrist": (0.55, 0.47),
        "left_hip": (0.45, 0.52), "right_hip": (0.44, 0.52), "left_knee": (0.62, 0.53), "right_knee": (0.61, 0.54),
        "left_ankle": (0.62, 0.76), "right_ankle": (0.60, 0.77),
    }),
    "kick": ("front", {
        "nose": (0.50, 0.20), "left_shoulder": (0.56, 0.30), "right_shoulder": (0.44, 0.30),
        "left_elbow": (0.64, 0.35), "right_elbow": (0.36, 0.34), "left_wrist": (0.72, 0.37), "right_wrist": (0.28, 0.35),
        "left_hip": (0.54, 0.53), "right_hip": (0.46, 0.53), "left_knee": (0.66, 0.62), "right_knee": (0.46, 0.69),
        "left_ankle": (0.80, 0.58), "right_ankle": (0.46, 0.84),
    }),
}
DEFAULT_PRESET = "stand"

# Joints that move with the one being dragged, so a face, hand or foot keeps its shape.
FOLLOWERS: dict[int, tuple[int, ...]] = {
    lm.INDEX["nose"]: tuple(range(1, 11)),
    lm.INDEX["left_wrist"]: (lm.INDEX["left_pinky"], lm.INDEX["left_index"], lm.INDEX["left_thumb"]),
    lm.INDEX["right_wrist"]: (lm.INDEX["right_pinky"], lm.INDEX["right_index"], lm.INDEX["right_thumb"]),
    lm.INDEX["left_ankle"]: (lm.INDEX["left_heel"], lm.INDEX["left_foot_index"]),
    lm.INDEX["right_ankle"]: (lm.INDEX["right_heel"], lm.INDEX["right_foot_index"]),
}


def complete_pose(joints: dict[str, tuple[float, float]], facing: str = "front") -> np.ndarray:
    """13 body joints -> a (33, 4) MediaPipe pose: face points around the nose, hand points
    past the wrists along the forearms, heels and toes below the ankles; all visible."""
    pose = np.zeros((lm.NUM_LANDMARKS, 4), np.float32)
    pose[:, 3] = 1.0
    point = {name: np.asarray(xy, np.float64) for name, xy in joints.items()}
    for name, xy in point.items():
        pose[lm.INDEX[name], :2] = xy
    head = 0.25 * max(float(np.linalg.norm(point["left_shoulder"] - point["right_shoulder"])), 0.08)
    side = 1.0 if point["left_shoulder"][0] >= point["right_shoulder"][0] else -1.0  # where the left side is
    face = {"eye_inner": (0.35, -0.35), "eye": (0.55, -0.37), "eye_outer": (0.75, -0.35), "ear": (1.0, -0.2)}
    for part, (dx, dy) in face.items():
        for sign, prefix in ((side, "left_"), (-side, "right_")):
            pose[lm.INDEX[prefix + part], :2] = point["nose"] + head * np.array([sign * dx, dy])
    pose[lm.INDEX["mouth_left"], :2] = point["nose"] + head * np.array([side * 0.35, 0.4])
    pose[lm.INDEX["mouth_right"], :2] = point["nose"] + head * np.array([-side * 0.35, 0.4])
    toes = np.array([0.04, 0.025]) if facing == "right" else None
    for prefix, sign in (("left_", side), ("right_", -side)):
        wrist, elbow = point[prefix + "wrist"], point[prefix + "elbow"]
        forearm = wrist - elbow
        length = max(float(np.linalg.norm(forearm)), 1e-3)
        along, across = forearm / length, np.array([-forearm[1], forearm[0]]) / length * sign
        pose[lm.INDEX[prefix + "pinky"], :2] = wrist + length * (0.22 * along + 0.08 * across)
        pose[lm.INDEX[prefix + "index"], :2] = wrist + length * 0.27 * along
        pose[lm.INDEX[prefix + "thumb"], :2] = wrist + length * (0.15 * along - 0.10 * across)
        ankle = point[prefix + "ankle"]
        heel = np.array([-0.01, 0.02]) if toes is not None else np.array([0.0, 0.02])
        pose[lm.INDEX[prefix + "heel"], :2] = ankle + heel
        pose[lm.INDEX[prefix + "foot_index"], :2] = ankle + (toes if toes is not None else np.array([0.015 * sign, 0.03]))
    return pose


def preset_pose(name: str) -> np.ndarray:
    """A preset from the table as a (33, 4) pose in crop coordinates."""
    if name not in PRESETS:
        raise GenerateError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    facing, joints = PRESETS[name]
    return complete_pose(joints, facing)


# ----------------------------------------------------------------------------- pose JSON


def pose_to_json(pose: np.ndarray, size: int) -> str:
    """A crop pose as the canvas holds it: the keypoints format, normalised to the S x S image."""
    return json.dumps(lm.keypoints_dict(pose, (size, size)))


def pose_from_json(text: str, source: str = "canvas") -> np.ndarray:
    """The canvas's pose JSON -> (33, 4); anything malformed is a one-line lm.PoseFileError."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError):
        raise lm.PoseFileError(f"{source}: the pose is not valid JSON") from None
    return lm.parse_keypoints(data, source).landmarks


def interpolate_poses(keyframes: Sequence[np.ndarray], steps: int) -> np.ndarray:
    """Keyframe poses -> every pose of the animation: `steps` frames from each keyframe to the
    next (straight lines in crop coordinates), then the last keyframe."""
    keys = np.asarray(keyframes, np.float32)
    if keys.ndim != 3 or len(keys) == 0:
        raise GenerateError("add at least one keyframe first")
    if len(keys) == 1:
        return keys.copy()
    t = (np.arange(steps, dtype=np.float32) / steps)[:, None, None]
    moves = [a + t * (b - a) for a, b in zip(keys[:-1], keys[1:])]
    return np.concatenate([*moves, keys[-1:]])


def png_data_url(image: np.ndarray) -> str:
    """An RGB uint8 image as a data: URL the canvas can draw (OpenCV's PNG encoder: fast)."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
    if not ok:
        raise GenerateError("could not encode the image as PNG")
    return "data:image/png;base64," + base64.b64encode(data.tobytes()).decode("ascii")


# ----------------------------------------------------------------------------- the studio


@dataclass
class Studio:
    """What the page does, without the page: every button calls one of these methods."""

    gen: Generator
    work_dir: Path  # exports and animations; served to the browser from here

    @property
    def size(self) -> int:
        return self.gen.image_size

    def look(self, seed: int, temperature: float) -> np.ndarray:
        """A random appearance z (D,) from the model's prior, as `generate --seed` draws it."""
        check_sampling(int(seed), float(temperature))
        return self.gen.sample_z(1, int(seed), float(temperature))[0].numpy()

    def look_from_photo(self, photo: str | os.PathLike) -> np.ndarray:
        """Pose transfer: the appearance z (D,) of the person in a photo."""
        return self.gen.appearance(photo).z[0].numpy()

    def rgba(self, poses: np.ndarray, z: np.ndarray) -> np.ndarray:
        """(K, 33, 4) crop poses drawn in one appearance z (D,): (K, S, S, 4) uint8, alpha the mask."""
        return self.gen.generate(np.asarray(poses, np.float32), z=torch.from_numpy(np.asarray(z, np.float32))[None])

    def redraw(self, pose: np.ndarray, z: np.ndarray) -> np.ndarray:
        """The person with appearance z in a crop pose, on the model's background: (S, S, 3) uint8.
        This is what runs on every step of a drag (benchmarks/bench_studio.py times it)."""
        return composite(self.rgba(np.asarray(pose)[None], z)[0], self.gen.background)

    def canvas_value(self, pose: np.ndarray | None, z: np.ndarray, drawn_pose: np.ndarray | None = None) -> dict:
        """What the canvas is sent: the redrawn image, and the pose to show (None: keep the
        one being dragged). The stamp makes every answer new, so the canvas hears each one."""
        image = self.redraw(pose if pose is not None else drawn_pose, z)
        return {
            "image": png_data_url(image),
            "pose": None if pose is None else lm.keypoints_dict(pose, (self.size, self.size)),
            "stamp": time.time_ns(),
        }

    def note(self, pose: np.ndarray) -> str | None:
        """generate's one-line warning when the pose is far from every training pose
        (poseguide.coverage), else None: the page shows it while the pose is edited."""
        return self.gen.pose_warning(np.asarray(pose, np.float32)[None], ["canvas"])

    def pose_from_photo(self, photo: str | os.PathLike) -> np.ndarray:
        """MediaPipe's pose of a photo's main person, framed into the crop."""
        landmarks, image_size = self.gen.pose_from_photo(photo)
        return self.gen.frame_pose(landmarks, image_size, str(photo))

    def pose_from_file(self, path: str | os.PathLike) -> np.ndarray:
        """A pose file in any format poseformats reads (ours, OpenPose, COCO), framed into the crop."""
        keypoints = read_pose(path)
        return self.gen.frame_pose(keypoints.landmarks, keypoints.pixel_aspect_size(), str(path))

    def preset(self, name: str) -> np.ndarray:
        """A preset, framed with the model's own framing settings."""
        return self.gen.frame_pose(preset_pose(name), (1, 1), f"preset {name}")

    def training_pose(self) -> tuple[np.ndarray, int]:
        """One of the model's training poses at random, and its index in the train split."""
        poses, index = self.gen.random_poses(1, secrets.randbelow(2**31))
        return poses[0], int(index[0])

    def strip(self, pose: np.ndarray, seed: int, temperature: float, count: int) -> np.ndarray:
        """`count` appearances (seeds' latents 0..count-1, the first is the current random look)
        in one pose, side by side."""
        count = int(np.clip(count, 1, STRIP_MAX))
        z = self.gen.sample_z(count, int(seed), float(temperature))
        rgba = self.gen.generate(np.repeat(np.asarray(pose, np.float32)[None], count, axis=0), z=z)
        return np.concatenate(list(composite(rgba, self.gen.background)), axis=1)

    def animation(self, keyframes: Sequence[np.ndarray], z: np.ndarray, steps: int, fps: float, video: str) -> tuple[Path, Path, str | None]:
        """Keyframes -> interpolated poses -> frames in appearance z -> (GIF preview, the file
        asked for (GIF or MP4), a note when MP4 could not be written and GIF was instead)."""
        poses = interpolate_poses(keyframes, int(np.clip(steps, 1, STEPS_MAX)))
        frames = composite(self.rgba(poses, z), self.gen.background)
        out = Path(tempfile.mkdtemp(prefix="animation-", dir=self.work_dir))
        preview = write_animation(out / "animation.gif", frames, float(fps))
        note = None
        chosen = preview
        if video == "mp4":
            chosen = write_animation(out / "animation.mp4", frames, float(fps))
            if chosen is None:
                note = "no MP4 encoder is available offline (install imageio-ffmpeg); here is the GIF instead"
                chosen = preview
        return preview, chosen, note

    def export(self, pose: np.ndarray, z: np.ndarray, stem: str = "studio") -> list[Path]:
        """The current image (RGBA PNG, alpha = the generated mask, as `generate` writes), its
        pose as a keypoints file and as OpenPose JSON, in a fresh folder under the work dir."""
        out = Path(tempfile.mkdtemp(prefix="export-", dir=self.work_dir))
        png = visualize.save_png(self.rgba(np.asarray(pose)[None], z)[0], out / f"{stem}.png")
        keypoints = out / f"{stem}.json"
        lm.write_keypoints(keypoints, pose, (self.size, self.size))
        openpose = write_pose(out / f"{stem}.openpose.json", pose, (self.size, self.size), "openpose")
        return [png, keypoints, Path(openpose)]


def make_studio(checkpoint: str | os.PathLike | None, device: str = "auto", precision: str = "auto") -> Studio:
    """Load the model (generate's resolution: without a checkpoint, the one run under ./runs).
    Raises ModelLoadError / GenerateError with one line; nothing is started before."""
    gen = Generator.load(resolve_model_dir(checkpoint), device, precision)
    work_dir = Path(tempfile.mkdtemp(prefix="poseguide-studio-"))
    atexit.register(shutil.rmtree, work_dir, ignore_errors=True)
    return Studio(gen, work_dir)


# ----------------------------------------------------------------------------- the page


def _js() -> str:
    return Path(__file__).with_name("studio.js").read_text()


def _status(*lines: str | None) -> str:
    return "\n\n".join(line for line in lines if line)


def build_app(studio: Studio):
    """The Gradio page. Each browser tab has its own pose, appearance z and keyframes (gr.State)."""
    import gradio as gr

    user_errors = (GenerateError, lm.PoseFileError, ValueError)
    start_pose = studio.preset(DEFAULT_PRESET)
    start_z = studio.look(0, DEFAULT_TEMPERATURE)
    colours = {"left": visualize.LEFT_COLOUR, "right": visualize.RIGHT_COLOUR, "centre": visualize.CENTRE_COLOUR}
    sides = [1 if n.startswith("left_") or n == "mouth_left" else -1 if n.startswith("right_") or n == "mouth_right" else 0
             for n in lm.NAMES]

    def guarded(fn, n_outputs: int):
        """A handler whose user errors become the status line (its last output), not a traceback."""
        @functools.wraps(fn)  # Gradio reads the handler's parameters through it
        def run(*args):
            try:
                return fn(*args)
            except user_errors as err:
                return (*[gr.skip()] * (n_outputs - 1), f"**{' '.join(str(err).split())}**")
        return run

    def on_drag(z, evt: gr.EventData):
        """The canvas sent the pose being dragged: answer with the person redrawn in it."""
        pose = pose_from_json(evt.pose)
        return studio.canvas_value(None, z, drawn_pose=pose), pose, studio.note(pose)

    def show(pose: np.ndarray, z: np.ndarray, note: str | None):
        """Outputs after the server changed the pose: canvas, pose, status."""
        return studio.canvas_value(pose, z), pose, _status(note, studio.note(pose))

    def load_preset(name, z):
        return show(studio.preset(name), z, f"preset: {name}")

    def load_photo(photo, z):
        if photo is None:
            return gr.skip(), gr.skip(), ""
        return show(studio.pose_from_photo(photo), z, "pose taken from the photo")

    def load_file(path, z):
        if path is None:
            return gr.skip(), gr.skip(), ""
        return show(studio.pose_from_file(path), z, f"pose read from {Path(path).name}")

    def load_training(z):
        pose, index = studio.training_pose()
        return show(pose, z, f"training pose {index}")

    def mirror(pose, z):
        return show(lm.flip_horizontal(pose), z, "mirrored")

    def new_look(pose, seed, temperature):
        z = studio.look(seed, temperature)
        return z, studio.canvas_value(None, z, drawn_pose=pose), f"random look: seed {int(seed)}, temperature {temperature:g}"

    def random_seed(pose, temperature):
        seed = secrets.randbelow(100_000)
        return (seed, *new_look(pose, seed, temperature))

    def photo_look(photo, pose):
        if photo is None:
            return gr.skip(), gr.skip(), ""
        z = studio.look_from_photo(photo)
        return z, studio.canvas_value(None, z, drawn_pose=pose), "look taken from the photo (pose transfer)"

    def draw_strip(pose, seed, temperature, count):
        return studio.strip(pose, seed, temperature, count), ""

    def add_keyframe(pose, keys):
        keys = [*keys, pose]
        return keys, f"{len(keys)} keyframe{'s' if len(keys) != 1 else ''}", ""

    def clear_keyframes():
        return [], "no keyframes", ""

    def play(keys, z, steps, fps, video):
        preview, chosen, note = studio.animation(keys, z, steps, fps, video)
        return str(preview), str(chosen), note or ""

    def export(pose, z):
        return [str(p) for p in studio.export(pose, z)], ""

    with gr.Blocks(title="poseguide studio") as app:
        gr.Markdown(f"## poseguide studio\nDrag any joint: the person is redrawn as you drag. Model: `{studio.gen.model_dir}`")
        pose_state = gr.State(start_pose)
        z_state = gr.State(start_z)
        keys_state = gr.State([])
        with gr.Row():
            with gr.Column(scale=3, min_width=CANVAS_PX):
                canvas = gr.HTML(
                    value=studio.canvas_value(start_pose, start_z),
                    html_template=f'<canvas class="pose-canvas" width="{CANVAS_PX}" height="{CANVAS_PX}"></canvas>',
                    css_template=".pose-canvas { touch-action: none; cursor: crosshair; max-width: 100%; border-radius: 6px; }",
                    js_on_load=_js(),
                    elem_id="studio-canvas",
                    edges=[list(e) for e in lm.SKELETON_EDGES],
                    sides=sides,
                    colours=colours,
                    followers={str(k): list(v) for k, v in FOLLOWERS.items()},
                )
                status = gr.Markdown(_status(studio.note(start_pose)), elem_id="studio-status")
            with gr.Column(scale=2):
                with gr.Tab("Pose"):
                    preset = gr.Dropdown(list(PRESETS), value=DEFAULT_PRESET, label="Preset", elem_id="studio-preset")
                    with gr.Row():
                        training = gr.Button("Random training pose")
                        mirror_button = gr.Button("Mirror")
                    pose_photo = gr.Image(type="filepath", label="Pose from a photo", height=180)
                    pose_file = gr.File(label="Pose from a file (keypoints, OpenPose or COCO JSON)", file_types=[".json"], height=90)
                with gr.Tab("Look"):
                    with gr.Row():
                        seed = gr.Number(0, label="Seed", precision=0, minimum=0, elem_id="studio-seed")
                        temperature = gr.Slider(0, 1.5, DEFAULT_TEMPERATURE, step=0.05, label="Temperature")
                    dice = gr.Button("New random look")
                    look_photo = gr.Image(type="filepath", label="Look from a photo (pose transfer)", height=180)
                    count = gr.Slider(2, STRIP_MAX, 6, step=1, label="Looks in the strip")
                    strip_button = gr.Button("Strip of looks in this pose", elem_id="studio-strip-button")
                    strip = gr.Image(label="Looks in this pose", elem_id="studio-strip")
                with gr.Tab("Animate"):
                    with gr.Row():
                        add_key = gr.Button("Add keyframe", elem_id="studio-add-key")
                        clear_keys = gr.Button("Clear")
                    keys_info = gr.Markdown("no keyframes")
                    with gr.Row():
                        steps = gr.Slider(1, STEPS_MAX, 6, step=1, label="Frames between keyframes")
                        fps = gr.Slider(1, 30, 8, step=1, label="Frames per second")
                    video = gr.Radio(["gif", "mp4"], value="gif", label="Format")
                    play_button = gr.Button("Play", elem_id="studio-play")
                    anim_preview = gr.Image(type="filepath", label="Animation", elem_id="studio-animation")
                    anim_file = gr.File(label="Download the animation")
                with gr.Tab("Export"):
                    export_button = gr.Button("Export PNG, keypoints JSON, OpenPose JSON", elem_id="studio-export")
                    exports = gr.File(label="Files", file_count="multiple", elem_id="studio-exports")

        quiet = dict(show_progress="hidden")  # no spinner over the canvas while dragging
        # studio.js keeps one pose in flight, so every trigger is run ("always_last" would run
        # the held-back trigger with the first one's event data: a stale pose).
        canvas.input(guarded(on_drag, 3), [z_state], [canvas, pose_state, status], trigger_mode="multiple", **quiet)
        shown = [canvas, pose_state, status]
        preset.input(guarded(load_preset, 3), [preset, z_state], shown, **quiet)
        pose_photo.upload(guarded(load_photo, 3), [pose_photo, z_state], shown)
        pose_file.upload(guarded(load_file, 3), [pose_file, z_state], shown)
        training.click(guarded(load_training, 3), [z_state], shown, **quiet)
        mirror_button.click(guarded(mirror, 3), [pose_state, z_state], shown, **quiet)
        look_out = [z_state, canvas, status]
        for control in (seed, temperature):
            control.input(guarded(new_look, 3), [pose_state, seed, temperature], look_out, trigger_mode="always_last", **quiet)
        dice.click(guarded(random_seed, 4), [pose_state, temperature], [seed, *look_out], **quiet)
        look_photo.upload(guarded(photo_look, 3), [look_photo, pose_state], look_out)
        strip_button.click(guarded(draw_strip, 2), [pose_state, seed, temperature, count], [strip, status])
        add_key.click(guarded(add_keyframe, 3), [pose_state, keys_state], [keys_state, keys_info, status], **quiet)
        clear_keys.click(guarded(clear_keyframes, 3), None, [keys_state, keys_info, status], **quiet)
        play_button.click(guarded(play, 3), [keys_state, z_state, steps, fps, video], [anim_preview, anim_file, status])
        export_button.click(guarded(export, 2), [pose_state, z_state], [exports, status])
    return app


def launch(studio: Studio, host: str = "127.0.0.1", port: int | None = None, share: bool = False) -> None:
    """Serve the page until Ctrl-C. Only the studio's work folder is served besides Gradio's own."""
    app = build_app(studio)
    app.queue(default_concurrency_limit=1)
    app.launch(server_name=host, server_port=port, share=share, allowed_paths=[str(studio.work_dir)],
               show_error=True, quiet=False)
