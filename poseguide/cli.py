"""Command-line front ends: `poseguide <command>` and `generate`.

Each command's arguments live in one `_add_<command>` function, and its work in the
module named after it, so this file stays a table of contents. Errors a user can fix
(bad input, missing files) are raised as `UserError` and printed as one line, exit 2.
A command imports its module only when it runs, so `--help` and a mistyped option answer
at once, without loading torch.
"""

from __future__ import annotations

import argparse
import errno
import sys


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


# Errors of the place a command writes to, not of poseguide: each is one line for the user.
_WRITE_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "ENOTDIR", "EISDIR", "EEXIST", "ENOENT")
    if hasattr(errno, name)
)


def _write_error(err: OSError, target: object = None) -> UserError:
    """An OSError met while writing as a UserError: `cannot write <file>: <reason>`. The file is
    `target` when given (what the user named), else the one the error is about."""
    reason = err.strerror or str(err)
    reason = reason[:1].lower() + reason[1:]
    what = target if target is not None else err.filename
    message = f"cannot write {what}: {reason}" if what else f"cannot write: {reason}"
    if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        message += "; free some space and run the same command again"
    return UserError(message)


def _add_prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="photos/videos -> a clean training set",
        description="Find every person in photos and videos, and write person-centred samples "
        "(image, mask, landmarks) as a dataset dir. Rerun the same command to resume after "
        "an interruption; give new inputs with the same --out to add them.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, video files, or folders (searched recursively)")
    p.add_argument("--out", required=True, metavar="DATA_DIR", help="dataset directory to create, resume or extend")
    p.add_argument("--size", type=int, default=128, help="side of the square samples in pixels: a multiple of 32 from 64 to 1024 (default 128)")
    p.add_argument("--every", type=int, default=1, metavar="K", help="use every K-th video frame (default 1)")
    p.add_argument("--workers", type=int, default=None, metavar="N", help="parallel processes (default: CPU count)")
    p.add_argument("--background", type=_rgb, default=(128, 128, 128), metavar="R,G,B",
                   help="colour that replaces everything off the person's mask (default 128,128,128)")
    p.add_argument("--min-visible", type=int, default=8, metavar="J",
                   help="keep a person only if at least J of the 13 body joints are visible (default 8)")
    p.add_argument("--min-person-px", type=float, default=56.0, metavar="PX",
                   help="keep a person only if their landmarks span at least PX source pixels (default 56)")
    p.add_argument("--min-mask-agreement", type=float, default=0.5, metavar="A",
                   help="keep a person only if mask and landmarks agree at least this much, 0-1 (default 0.5)")
    p.add_argument("--val-fraction", type=float, default=0.1, metavar="F",
                   help="fraction held out for validation, by file and by video segment (default 0.1)")
    who = p.add_argument_group("whom to keep (change them on a finished DATA_DIR: only the last step reruns)")
    who.add_argument("--reference", nargs="+", default=(), metavar="PHOTO",
                     help="photos of the person wanted: keep only people who look like them (a whole video track at once)")
    who.add_argument("--reference-distance", type=float, default=0.8, metavar="D",
                     help="how unlike the references a kept person may look, as a fraction of how near the "
                          "people known to be someone else come (default 0.8); check DATA_DIR/selection.png")
    who.add_argument("--track", type=int, nargs="+", default=(), metavar="N",
                     help="keep only these video tracks (`poseguide show DATA_DIR --people` numbers them)")
    who.add_argument("--min-track-frames", type=int, default=1, metavar="N",
                     help="drop people seen in fewer than N sampled frames of a video (passers-by; default 1)")
    who.add_argument("--all-people", action="store_true",
                     help="photos: keep every person found, not only the main subject of each photo")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_prepare_main)


def _rgb(text: str) -> tuple[int, int, int]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(0 <= v <= 255 for v in values):
        raise argparse.ArgumentTypeError(f"expected R,G,B with values 0-255, got {text!r}")
    return values  # type: ignore[return-value]


def _prepare_main(args: argparse.Namespace) -> int:
    import os

    from poseguide.prepare import PrepareError, PrepareSettings, SelectionSettings, prepare

    try:
        selection = SelectionSettings(
            references=tuple(os.path.abspath(r) for r in args.reference),
            reference_distance=args.reference_distance,
            tracks=tuple(args.track),
            min_track_frames=args.min_track_frames,
            all_people=args.all_people,
        )
        settings = PrepareSettings(
            size=args.size,
            every=args.every,
            background=args.background,
            min_visible=args.min_visible,
            min_person_px=args.min_person_px,
            min_mask_agreement=args.min_mask_agreement,
            val_fraction=args.val_fraction,
        )
        workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
        if workers < 1:
            raise PrepareError(f"--workers must be at least 1, got {workers}")
        report = prepare(args.inputs, args.out, settings, workers=workers, progress=False if args.no_progress else None,
                         selection=selection)
    except PrepareError as err:
        raise UserError(str(err)) from None
    except OSError as err:
        if err.errno not in _WRITE_ERRNOS:
            raise
        error = _write_error(err)
        if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            error = UserError(f"{error} (finished work in {args.out} is kept)")
        raise error from None
    print(report.summary())
    return 0


def _add_pose(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pose",
        help="write one person's pose from a photo as a keypoints file",
        description="Detect the people in a photo and write the largest, most confident one's "
        "33 MediaPipe landmarks (x, y normalised to the photo) as a keypoints JSON file, or the same "
        "pose as OpenPose BODY_25 / COCO-18 JSON, COCO-17 JSON or ControlNet's skeleton picture.",
    )
    p.add_argument("image", metavar="IMAGE", help="a photo (or video frame) of the person")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the pose (JSON, or PNG for controlnet-png)")
    p.add_argument("--format", choices=POSE_FORMATS, default="mediapipe",
                   help="mediapipe: poseguide's 33 landmarks (default); openpose: OpenPose BODY_25 JSON; "
                   "coco18: OpenPose COCO-18 JSON as ControlNet's editors exchange it; coco17: a COCO keypoint "
                   "annotation file; controlnet-png: the COCO-18 skeleton in OpenPose colours on black, "
                   "the picture ControlNet's openpose model takes")
    p.set_defaults(func=_pose_main)


POSE_FORMATS = ("mediapipe", "openpose", "coco18", "coco17", "controlnet-png")  # poseformats.FORMATS (a test keeps them equal)


def _pose_main(args: argparse.Namespace) -> int:
    from poseguide import landmarks, poseformats
    from poseguide.decode import DecodeError, decode_image
    from poseguide.extract import NoPersonError, PoseEstimator, best_person

    _check_output_file(args.output, "-o")
    try:
        image = decode_image(args.image)
    except DecodeError as err:
        raise UserError(f"{args.image}: {err}") from None
    with PoseEstimator() as estimator:
        try:
            person = best_person(image, estimator)
        except NoPersonError as err:
            raise UserError(f"{args.image}: {err}") from None
    height, width = image.shape[:2]
    try:
        poseformats.write_pose(args.output, person.landmarks, (width, height), args.format)
    except OSError as err:
        if err.errno not in _WRITE_ERRNOS:
            raise
        raise _write_error(err, args.output) from None
    visible = landmarks.count_visible_body_joints(person.landmarks)
    what = {"mediapipe": "33 landmarks"}.get(args.format, poseformats.FORMAT_TITLES[args.format])
    print(f"wrote {args.output}: {what}, {visible} of 13 body joints visible, image {width}x{height}")
    return 0


def _check_output_file(path, option: str) -> None:
    """Refuse, before any work rather than after it, an output file that names a folder or
    lies under something that is not one."""
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        raise UserError(f"{option} {path} is a folder; give a file name")
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{option} {path}: {parent} is not a folder")


def _add_show(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "show",
        help="contact sheet and pose coverage of a prepared dataset",
        description="Draw samples of a prepared dataset with their skeletons and masks into one PNG, and where "
                    "the body joints of its poses lie into a second (PNG-coverage.png).",
    )
    p.add_argument("data_dir", metavar="DATA_DIR", help="a dataset dir written by `poseguide prepare`")
    p.add_argument("-o", "--output", default=None, metavar="PNG", help="output image (default DATA_DIR/contact-sheet.png)")
    p.add_argument("--num", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--split", choices=("all", "train", "val"), default="all", help="which samples (default all)")
    p.add_argument("--seed", type=int, default=0, help="which samples are picked (default 0)")
    p.add_argument("--people", action="store_true",
                   help="instead: one tile per person tracked in the videos, numbered for `prepare --track` (default output DATA_DIR/people.png)")
    p.set_defaults(func=_show_main)


def _show_main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from poseguide.dataset import DatasetError, validate_dataset
    from poseguide.prepare import PrepareError
    from poseguide.visualize import dataset_contact_sheet, dataset_coverage_picture, people_sheet

    output = Path(args.output) if args.output else Path(args.data_dir) / ("people.png" if args.people else "contact-sheet.png")
    if args.num < 1:
        raise UserError(f"--num must be at least 1, got {args.num}")
    _check_output_file(output, "-o")
    try:
        validate_dataset(args.data_dir)  # what training would refuse is not drawn either
        if args.people:
            n = people_sheet(args.data_dir, output, num=args.num)
            message = f"wrote {output}: {n} people; keep some with `poseguide prepare ... --out {args.data_dir} --track N [N ...]`"
        else:
            coverage = output.with_name(f"{output.stem}-coverage.png")
            n = dataset_contact_sheet(args.data_dir, output, num=args.num, split=args.split, seed=args.seed)
            poses = dataset_coverage_picture(args.data_dir, coverage, split=args.split)
            message = f"wrote {output}: {n} samples; {coverage}: the joints of {poses} poses"
    except (DatasetError, PrepareError) as err:
        raise UserError(str(err)) from None
    except OSError as err:
        if err.errno not in _WRITE_ERRNOS:
            raise
        raise _write_error(err, output) from None
    print(message)
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model (same as `accelerate launch scripts/train.py`)",
        description="Train from a config YAML with section.key=value overrides. Run it under "
        "`accelerate launch` for several processes or GPUs; plain `poseguide train` runs one process.",
    )
    p.add_argument("--config", help="experiment YAML, e.g. configs/small.yaml (default when resuming: the run's config.yaml)")
    p.add_argument(
        "overrides", nargs="*", metavar="section.key=value", help="config overrides (together, after --config), e.g. training.max_steps=200"
    )
    p.add_argument("--output-dir", help="run directory (same as training.output_dir=...)")
    p.add_argument("--report-to", choices=("wandb", "tensorboard", "none"), help="tracker (default: logging.report_to; W&B runs offline)")
    p.add_argument("--resume", metavar="latest|PATH", help="continue from the run's newest checkpoint, or from a checkpoint directory")
    p.add_argument("--export-only", action="store_true", help="export the model of the newest (or --resume) checkpoint to <run>/model, then exit")
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from poseguide.config import ConfigError
    from poseguide.dataset import DatasetError
    from poseguide.train import TrainingError, run

    try:
        return run(args)
    except (ConfigError, DatasetError, TrainingError) as err:
        raise UserError(str(err)) from None
    except OSError as err:  # the run directory: a full disk, a read-only or vanished folder
        if err.errno not in _WRITE_ERRNOS:
            raise
        raise _write_error(err) from None


GENERATE_DESCRIPTION = """\
Draw new pictures of the trained person: in a pose you choose, in the pose of a
photo, in poses from the training set, or at random. Each image is written as a PNG
(RGBA: the alpha channel is the generated person mask, unless --background is given),
beside a JSON pose file with the pose it was drawn in (normalised to that image, in
the keypoints format of `poseguide pose`), plus a contact sheet that shows every
image beside its target skeleton. The same --seed draws the same images."""

GENERATE_EPILOG = """\
examples:
  poseguide pose photo.jpg -o pose.json                 # a pose to draw in
  generate --pose pose.json --num 8                     # 8 appearances in that pose
  generate --pose-image photo.jpg                       # the pose of a photo
  generate --num 16                                     # 16 unposed random samples
  generate --random-pose --num 16                       # poses from the training set
  generate --appearance me.jpg --pose pose.json         # pose transfer
  generate --pose walk/ --appearance me.jpg --video mp4 # a sequence, one appearance
  generate --pose pose.json --checkpoint runs/small --background 255,255,255

A keypoints file may also be a bare JSON list of 33 [x, y] or [x, y, visibility]
rows (MediaPipe order, normalised to a square image), or a pose from elsewhere:
OpenPose BODY_25 or COCO-18 JSON (also ControlNet's and ComfyUI's), or COCO-17
keypoints (COCO, mmpose, ultralytics, rtmlib); the format is recognised by itself.
Poses from any image size or position are framed exactly as `poseguide prepare`
framed the training photos.
Without --checkpoint, the model of the one training run under ./runs is used."""


def _generate_arguments(p: argparse.ArgumentParser) -> None:
    """The `generate` options, shared by `poseguide generate` and the `generate` script."""
    pose = p.add_argument_group("target pose (one of; none draws unposed random samples)")
    source = pose.add_mutually_exclusive_group()
    source.add_argument("--pose", nargs="+", metavar="KEYPOINTS",
                        help="keypoints JSON file(s); several files or a folder of them make a sequence "
                        "(GIF or MP4) drawn with one appearance")
    source.add_argument("--pose-image", metavar="PHOTO", help="take the pose from a photo (MediaPipe)")
    source.add_argument("--random-pose", action="store_true",
                        help="draw poses at random from the training set's own poses")
    look = p.add_argument_group("appearance")
    look.add_argument("--appearance", metavar="PHOTO",
                      help="pose transfer: draw the person of this reference photo (the appearance is "
                      "encoded from it) instead of a random appearance")
    look.add_argument("--num", type=int, default=None, metavar="K",
                      help=f"number of images, at most {MAX_GENERATE_NUM} (default {DEFAULT_GENERATE_NUM}; 1 with --appearance "
                      f"or a sequence); the contact sheet shows the first {GENERATE_SHEET_MAX}")
    look.add_argument("--seed", type=int, default=0, help="random seed: the same seed draws the same images (default 0)")
    look.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE, metavar="T",
                      help="spread of the random appearance z around the average look; 1 is the full "
                      f"spread of the training set, at most {MAX_TEMPERATURE:g} (default {DEFAULT_TEMPERATURE})")
    model = p.add_argument_group("model")
    model.add_argument("--checkpoint", metavar="MODEL_DIR",
                       help="an exported model dir, or a training run dir (its model/); default: the one run under ./runs")
    model.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    model.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                       help="auto: bf16 where the CPU/GPU computes it natively (AMX, Ampere+), else fp32 (default)")
    model.add_argument("--batch-size", type=int, default=16, metavar="B", help="images decoded at once (default 16)")
    output = p.add_argument_group("output")
    output.add_argument("--out", default="generated", metavar="DIR",
                        help="output folder, created if needed; files of the same name are replaced (default ./generated)")
    output.add_argument("--background", type=_rgb, default=None, metavar="R,G,B",
                        help="composite the images on this colour instead of writing RGBA")
    output.add_argument("--video", choices=("gif", "mp4"), default="gif",
                        help="format of a sequence (default gif; mp4 falls back to gif if no encoder is available)")
    output.add_argument("--fps", type=float, default=8.0, help="frames per second of a sequence (default 8)")
    output.add_argument("--no-progress", action="store_true", help="no progress bar (there is none when stderr is not a terminal)")
    p.set_defaults(func=_generate, exit_at_once=True)


DEFAULT_GENERATE_NUM = 4  # poseguide.generate.DEFAULT_NUM, without importing torch for --help
DEFAULT_TEMPERATURE = 0.7  # poseguide.model.DEFAULT_TEMPERATURE, likewise (a test keeps them equal)
MAX_GENERATE_NUM = 10_000  # poseguide.generate.MAX_NUM, likewise
GENERATE_SHEET_MAX = 64  # poseguide.generate.SHEET_MAX, likewise
MAX_TEMPERATURE = 10.0  # poseguide.generate.MAX_TEMPERATURE, likewise


def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="draw the trained person, posed or at random (also the `generate` command)",
        description=GENERATE_DESCRIPTION,
        epilog=GENERATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _generate_arguments(p)


def _generate(args: argparse.Namespace) -> int:
    from poseguide.generate import GenerateError, GenerateOptions, run as generate

    options = GenerateOptions(
        checkpoint=args.checkpoint,
        pose=args.pose or (),
        pose_image=args.pose_image,
        random_pose=args.random_pose,
        appearance=args.appearance,
        num=args.num,
        seed=args.seed,
        temperature=args.temperature,
        background=args.background,
        out=args.out,
        video=args.video,
        fps=args.fps,
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
        progress=False if args.no_progress else None,
    )
    try:
        report = generate(options)
    except GenerateError as err:
        raise UserError(str(err)) from None
    except OSError as err:  # a full disk while writing: nothing of this run is left behind
        if err.errno not in _WRITE_ERRNOS:
            raise
        raise _write_error(err, args.out) from None
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    print(report.summary())
    return 0


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a model: pose fidelity, realism, reconstruction",
        description="Score a model on a prepared dataset's held-out split with MediaPipe and pixel metrics "
        "(nothing is downloaded): pose fidelity (PCK) beside its ceiling and floor, person detection on "
        "random samples, reconstruction PSNR/SSIM/bits-per-dim, diversity, and FID/KID only from local "
        "Inception weights. Writes report.json, report.md and PNG pictures.",
    )
    p.add_argument("--checkpoint", required=True, metavar="MODEL_DIR",
                   help="a model directory (or a training run directory holding model/)")
    p.add_argument("--data", required=True, metavar="DATA_DIR", help="a dataset dir written by `poseguide prepare`")
    p.add_argument("--out", default=None, metavar="REPORT_DIR",
                   help="where to write the report (default: RUN/eval for RUN/model, else MODEL_DIR-eval)")
    p.add_argument("--num", type=int, default=200, metavar="N",
                   help="held-out samples to score, picked by --seed when the split is larger (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed for the samples picked and every latent drawn (default 0)")
    p.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE, metavar="T",
                   help=f"spread of the random latents, as in `generate` (default {DEFAULT_TEMPERATURE})")
    p.add_argument("--batch-size", type=int, default=32, help="images per model call (default 32)")
    p.add_argument("--split", choices=("val", "train"), default="val", help="which split to score (default val)")
    p.add_argument("--compare", default=None, metavar="OTHER_REPORT",
                   help="another run's report.json (or its directory): print both side by side")
    p.add_argument("--inception-weights", default=None, metavar="PATH",
                   help="local torch-fidelity Inception weights file; FID/KID are skipped without it")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="auto: bf16 where the CPU computes it natively (AMX), else fp32 (default)")
    p.add_argument("--pose-set", default=None, metavar="DATA_DIR",
                   help="also score the poses of this prepared dataset (e.g. `poseguide synth` renders of pose "
                        "families kept out of training); its images give the ceiling")
    p.add_argument("--no-unseen-poses", action="store_true",
                   help="skip the held-out poses moved as a pose editor moves them (arms up, T, knee up, ...)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_evaluate_main)


def _evaluate_main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from poseguide.evaluate import EvalSettings, EvaluationError, evaluate, load_report
    from poseguide.report import comparison_text, console_summary

    try:
        settings = EvalSettings(
            num=args.num,
            seed=args.seed,
            temperature=args.temperature,
            batch_size=args.batch_size,
            split=args.split,
            inception_weights=args.inception_weights,
            unseen_poses=not args.no_unseen_poses,
            pose_set=args.pose_set,
            precision=args.precision,
            progress=False if args.no_progress else None,
        )
        result = evaluate(args.checkpoint, args.data, args.out, settings, compare=args.compare)
        other = load_report(args.compare) if args.compare else None
    except EvaluationError as err:
        raise UserError(str(err)) from None
    print(console_summary(result.report, result.out_dir))
    if result.model_card is not None:
        print(f"updated the model card {result.model_card}")
    elif result.model_card_problem:
        print(f"note: {result.model_card_problem}", file=sys.stderr)
    if other is not None:
        print()
        other_path = Path(args.compare)
        other_name = other_path.parent.name if other_path.name == "report.json" else other_path.name
        print(comparison_text(result.report, other, "this run", other_name or "other"))
    return 0


def _add_studio(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "studio",
        help="pose editor in the browser: drag a joint, see the person redrawn",
        description="Serve a local web page that draws the trained person in a pose you edit: drag any joint "
        "and the person is redrawn as you drag. Poses from presets, photos, keypoints files or the training "
        "set; random looks or one from a photo; mirror, a strip of looks, keyframe animations, exports. "
        "Needs the studio extra: pip install 'poseguide[studio]'.",
    )
    p.add_argument("--checkpoint", metavar="MODEL_DIR",
                   help="an exported model dir, or a training run dir (its model/); default: the one run under ./runs")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=None, help="port (default: the first free one from 7860)")
    p.add_argument("--share", action="store_true", help="also make a public gradio.live link (needs the internet)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                   help="auto: bf16 where the CPU/GPU computes it natively (AMX, Ampere+), else fp32 (default)")
    p.set_defaults(func=_studio_main)


def _studio_main(args: argparse.Namespace) -> int:
    import importlib.util

    if importlib.util.find_spec("gradio") is None:
        raise UserError("the studio needs gradio: pip install 'poseguide[studio]'")
    if args.port is not None and not 1 <= args.port <= 65535:
        raise UserError(f"--port must be 1-65535, got {args.port}")
    from poseguide.generate import GenerateError
    from poseguide.model import ModelLoadError
    from poseguide.studio import LOCALHOSTS, launch, make_studio

    try:
        studio = make_studio(args.checkpoint, args.device, args.precision)
    except (GenerateError, ModelLoadError) as err:
        raise UserError(" ".join(str(err).split())) from None
    if args.host not in LOCALHOSTS:
        print(f"warning: --host {args.host} lets other machines on the network use the studio (and this CPU)", file=sys.stderr)
    if args.share:
        print("warning: --share puts the studio on a public gradio.live link: anyone with the link can use it", file=sys.stderr)
    launch(studio, args.host, args.port, args.share)


def _add_synth(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="render synthetic people in many poses (anny body model) as training photos",
        description="Render people of random shape, skin tone and clothing from the anny body model in random "
        "poses of named families, seen from any side, as OUT/images/*.png, with the true 2-D joints in "
        "OUT/renders.csv. Feed OUT/images to `poseguide prepare`. Rerun the same command to resume.",
    )
    p.add_argument("out", metavar="OUT", help="output folder, created if needed")
    p.add_argument("--num", type=int, required=True, metavar="N", help="number of pictures")
    p.add_argument("--size", type=int, default=256, help="side of the square pictures in pixels, 64-2048 (default 256)")
    p.add_argument("--seed", type=int, default=0, help="the same seed draws the same pictures (default 0)")
    p.add_argument("--families", nargs="+", default=None, metavar="FAMILY",
                   help="pose families, taken in turn (default all: " + ", ".join(SYNTH_FAMILIES) + ")")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="parallel processes, one torch thread each (default 1, which uses every core through torch threads)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_synth_main)


# poseguide.synth.FAMILIES, without importing torch for --help (a test keeps them equal)
SYNTH_FAMILIES = (
    "arms_overhead", "arms_out", "arms_forward", "arms_crossed", "one_arm_raised",
    "crouch", "kneel", "sit", "kick", "lunge", "lean", "turn", "walk", "stand",
)


def _synth_main(args: argparse.Namespace) -> int:
    from poseguide.synth import FAMILIES, SynthError, SynthSettings, synthesize

    try:
        settings = SynthSettings(num=args.num, size=args.size, seed=args.seed,
                                 families=tuple(args.families) if args.families else FAMILIES)
        workers = args.workers
        if workers < 1:
            raise SynthError(f"--workers must be at least 1, got {workers}")
        result = synthesize(args.out, settings, progress=False if args.no_progress else None, workers=workers)
    except SynthError as err:
        raise UserError(str(err)) from None
    except OSError as err:
        if err.errno not in _WRITE_ERRNOS:
            raise
        raise _write_error(err, args.out) from None
    print(f"wrote {args.out}: {settings.num} pictures ({result['rendered']} rendered now, "
          f"{result['kept']} already there) in {result['seconds']:.0f} s; joints in {args.out}/renders.csv")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poseguide", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_prepare, _add_pose, _add_show, _add_synth, _add_train, _add_generate, _add_evaluate, _add_studio):
        add(sub)
    return parser


def run(argv: list[str] | None, parser: argparse.ArgumentParser) -> int:
    # A file name that is not valid UTF-8 is printed with escapes rather than stop the command.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    if argv is None and getattr(args, "exit_at_once", False):
        exit_at_once(code)
    return code


def exit_at_once(code: int) -> None:
    """End a command-line process without the interpreter's teardown, which spends ~0.45 s
    unloading torch: a fifth of a one-image `generate`. Only for commands that have written and
    closed every output and leave no threads or pools behind (not in-process calls: argv given)."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    return run(argv, build_parser())


def generate_main(argv: list[str] | None = None) -> int:
    """The `generate` console script: `poseguide generate` without the word `poseguide`."""
    parser = argparse.ArgumentParser(
        prog="generate",
        description=GENERATE_DESCRIPTION,
        epilog=GENERATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _generate_arguments(parser)
    return run(argv, parser)


if __name__ == "__main__":
    sys.exit(main())
