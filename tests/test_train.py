"""Training end to end, in the style of diffusers' examples tests: the real script under the real
`accelerate launch`, a tiny model on the real prepared vtest dataset, in temp dirs.

Exact resume is asserted bit for bit (torch.equal), not within a tolerance: one CPU process
runs the same kernels on the same data in the same order, the data order is a function of
(seed, epoch) only, Accelerate restores every RNG state, and validation/sample grids never
draw from the training RNG. Any difference is a resume bug, not noise.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from poseguide.cli import main as cli_main
from poseguide.dataset import validate_dataset
from poseguide.model import PoseCVAE, load_extras

REPO = Path(__file__).resolve().parents[1]
SCRIPT = str(REPO / "scripts" / "train.py")
ACCELERATE = str(Path(sys.executable).parent / "accelerate")
MAX_STEPS, EVERY, LIMIT, ACCUM = 12, 4, 2, 2


def tiny_config(dataset: Path, batch_size: int) -> dict:
    return {
        "model": {"image_size": 128, "channels": [8, 16, 16, 16], "head_channels": 8, "latent_dim": 16, "pose_latent_dim": 4, "condition_size": 32},
        "loss": {"kl_warmup_steps": 4},
        "data": {"dataset": str(dataset), "num_workers": 0},
        "training": {
            "max_steps": MAX_STEPS,
            "batch_size": batch_size,
            "gradient_accumulation_steps": ACCUM,
            "learning_rate": 2e-3,
            "lr_warmup_steps": 2,
            "checkpointing_steps": EVERY,
            "checkpoints_total_limit": LIMIT,
            "mixed_precision": "auto",  # as the shipped configs: chosen by this machine's hardware
            "channels_last": "auto",
            "ema_decay": 0.9,
        },
        "logging": {"report_to": "none", "log_steps": 1, "validation_steps": 6, "sample_steps": 6, "num_samples": 3},
    }


@pytest.fixture(scope="module")
def config_file(tmp_path_factory, prepared_dataset) -> Path:
    """A tiny config whose epochs end mid-run, so resuming from checkpoint-8 starts mid-epoch
    (skip_first_batches) and then crosses an epoch boundary."""
    n_train = len(validate_dataset(prepared_dataset).train_indices)
    for batch_size in (4, 3, 5, 2):
        per_epoch = math.ceil((n_train // batch_size) / ACCUM)
        if 2 <= per_epoch < MAX_STEPS - 2 * EVERY + 2 and (MAX_STEPS - EVERY) % per_epoch:
            break
    else:
        pytest.fail(f"no batch size puts checkpoint-{MAX_STEPS - EVERY} mid-epoch for {n_train} train samples")
    path = tmp_path_factory.mktemp("config") / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config(prepared_dataset, batch_size)))
    return path


def launch(*args: str, processes: int = 1, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    """`accelerate launch scripts/train.py ...`; two processes go through torchrun with gloo."""
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true")
    if processes > 1:
        env["ACCELERATE_USE_CPU"] = "1"
        cmd = [ACCELERATE, "launch", "--multi_gpu", "--num_processes", str(processes)]
    else:
        cmd = [ACCELERATE, "launch", "--num_processes", "1"]
    cmd += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", SCRIPT, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return proc


def script(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python scripts/train.py ...` without a launcher (one process), to see exit codes."""
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true")
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


def checkpoints(run: Path) -> list[str]:
    return sorted(os.listdir(run / "checkpoints"), key=lambda name: int(name.split("-")[1]))


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def train_rows(run: Path) -> dict[int, dict]:
    rows = [r for r in metrics(run) if "train/loss" in r]
    steps = [r["step"] for r in rows]
    assert len(steps) == len(set(steps)), f"duplicate metric rows: {steps}"
    return {r["step"]: r for r in rows}


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(str(a)), load_file(str(b))
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), f"{key} differs: max {(wa[key].float() - wb[key].float()).abs().max()}"


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, config_file) -> Path:
    """An uninterrupted run of MAX_STEPS steps, logging to W&B (offline)."""
    run = tmp_path_factory.mktemp("full") / "run"
    launch("--config", str(config_file), "--output-dir", str(run), "--report-to", "wandb")
    return run


@pytest.mark.slow
def test_run_writes_rotated_checkpoints_samples_metrics_and_model(full_run, prepared_dataset):
    assert checkpoints(full_run) == ["checkpoint-8", "checkpoint-12"]  # saved at 4, 8, 12; limit 2
    assert not list((full_run / "checkpoints").glob("*.tmp"))
    state = sorted(os.listdir(full_run / "checkpoints" / "checkpoint-12"))
    assert {"model.safetensors", "optimizer.bin", "scheduler.bin", "random_states_0.pkl"} <= set(state)
    assert {"training_state.json", "ema.safetensors"} <= set(state)  # our own state: never pickled
    assert not any(name.startswith("custom_checkpoint_") for name in state)
    assert json.loads((full_run / "checkpoints" / "checkpoint-12" / "training_state.json").read_text())["global_step"] == 12
    assert sorted(os.listdir(full_run / "samples")) == ["step-12.png", "step-6.png"]

    saved = yaml.safe_load((full_run / "config.yaml").read_text())
    assert saved["training"]["max_steps"] == MAX_STEPS and saved["logging"]["report_to"] == "wandb"
    # `auto` is saved as what ran: bf16 + channels_last only where the CPU computes bf16 natively
    # (AMX or AVX512-BF16 with ATen on its AVX512 kernels), fp32 otherwise.
    native = (torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()) and (
        torch.backends.cpu.get_cpu_capability().startswith("AVX512")
    )
    assert (saved["training"]["mixed_precision"], saved["training"]["channels_last"]) == (("bf16", True) if native else ("no", False))

    rows = train_rows(full_run)
    assert sorted(rows) == list(range(1, MAX_STEPS + 1))
    for key in ("train/loss", "train/rec", "train/kl", "train/mask_bce", "train/lr", "train/images_per_s", "train/grad_norm"):
        assert all(np.isfinite(r[key]) for r in rows.values()), key
    assert rows[1]["train/lr"] > rows[MAX_STEPS]["train/lr"]  # warm-up then decay
    val = [r for r in metrics(full_run) if "val/psnr_rgb_uncapped" in r]
    assert [r["step"] for r in val] == [6, 12]
    assert all(k in val[0] for k in ("val/rec", "val/psnr_rgb_uncapped", "val/elbo_bpd"))

    # The EMA export: loadable, with the dataset's framing and the train split's poses.
    model = PoseCVAE.from_pretrained(full_run / "model")
    assert model.config.latent_dim == 16
    extra, tensors = load_extras(full_run / "model")
    manifest = json.loads((prepared_dataset / "manifest.json").read_text())
    assert extra["framing"] == manifest["framing"]
    assert extra["data"]["image_size"] == 128 and extra["data"]["background"] == manifest["background"]
    info = validate_dataset(prepared_dataset)
    landmarks = np.load(prepared_dataset / "landmarks.npy")
    assert torch.equal(tensors["train_poses"], torch.from_numpy(landmarks[info.train_indices]))
    card = (full_run / "model" / "README.md").read_text()  # the export's model card
    assert f"- samples: {len(info.train_indices)} for training, {len(info.val_indices)} held out" in card
    assert "Not evaluated yet" in card

    # W&B wrote an offline run into the run dir under the stored id.
    run_id = (full_run / "wandb-run-id").read_text().strip()
    offline = list((full_run / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and offline[0].name.endswith(run_id)


@pytest.mark.slow
def test_resumed_run_matches_the_uninterrupted_one(full_run, tmp_path):
    """Resume from checkpoint-8 (mid-epoch) in a copy of the run; steps 9-12 must reproduce the
    uninterrupted run exactly: weights, EMA, optimiser state, logged losses. A training.init_from
    of another architecture (the shipped pose prior) is not loaded: the checkpoint holds the weights."""
    run = tmp_path / "run"
    shutil.copytree(full_run, run)
    shutil.rmtree(run / "checkpoints" / "checkpoint-12")
    shutil.rmtree(run / "model")
    launch("--output-dir", str(run), "--resume", "latest", "training.init_from=pose-prior")  # the rest of the config comes from the run dir

    assert checkpoints(run) == ["checkpoint-8", "checkpoint-12"]
    final, resumed = full_run / "checkpoints" / "checkpoint-12", run / "checkpoints" / "checkpoint-12"
    assert_same_weights(final / "model.safetensors", resumed / "model.safetensors")
    assert_same_weights(full_run / "model" / "model.safetensors", run / "model" / "model.safetensors")  # the EMA
    ema_a, ema_b = (load_file(str(p / "ema.safetensors")) for p in (final, resumed))
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_a)
    opt_a, opt_b = (torch.load(p / "optimizer.bin", weights_only=False)["state"] for p in (final, resumed))
    assert all(torch.equal(opt_a[i]["exp_avg_sq"], opt_b[i]["exp_avg_sq"]) for i in opt_a)

    a, b = train_rows(full_run), train_rows(run)  # also: no duplicate rows after the resume
    assert sorted(b) == list(range(1, MAX_STEPS + 1))
    for step in range(9, MAX_STEPS + 1):
        assert b[step]["train/loss"] == a[step]["train/loss"] and b[step]["train/lr"] == a[step]["train/lr"]

    # The same W&B run continues: a second offline run dir under the same id.
    run_id = (run / "wandb-run-id").read_text().strip()
    offline = sorted((run / "wandb").glob("offline-run-*"))
    assert len(offline) == 2 and all(p.name.endswith(run_id) for p in offline)

    # --export-only re-exports the newest checkpoint's EMA, reading the run's own config.
    shutil.rmtree(run / "model")
    proc = script("--output-dir", str(run), "--export-only")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_weights(full_run / "model" / "model.safetensors", run / "model" / "model.safetensors")


@pytest.mark.slow
def test_two_processes_synchronise_and_resume(config_file, tmp_path):
    """Two CPU processes (torchrun, gloo): each sees different batches and noise, yet the
    weights stay identical on both ranks (gradients are all-reduced); only rank 0 writes."""
    run = tmp_path / "run"
    common = ["--config", str(config_file), "--output-dir", str(run), "--report-to", "tensorboard"]
    common += ["training.gradient_accumulation_steps=1", "training.checkpointing_steps=2", "logging.sample_steps=4"]
    # The PatchGAN too (from step 2): its own optimiser, DDP-wrapped for its loss, unwrapped for the generator's.
    common += ["loss.adversarial_weight=0.5", "loss.adversarial_start_step=1", "loss.discriminator_channels=8"]
    proc = launch(*common, "training.max_steps=4", processes=2)
    assert proc.stderr.count("training ") == 1 and "2 processes" in proc.stderr  # one banner: rank 0 only

    assert checkpoints(run) == ["checkpoint-2", "checkpoint-4"]
    files = set(os.listdir(run / "checkpoints" / "checkpoint-4"))
    assert {"random_states_0.pkl", "random_states_1.pkl", "model.safetensors", "model_1.safetensors"} <= files
    assert "random_states_2.pkl" not in files and "model_2.safetensors" not in files  # each rank's RNG; model + PatchGAN once
    spread = [r for r in metrics(run) if "dist/param_spread" in r]
    assert [(r["step"], r["dist/param_spread"]) for r in spread] == [(2, 0.0), (4, 0.0)]
    rows = train_rows(run)
    assert sorted(rows) == [1, 2, 3, 4]
    assert "train/d_loss" not in rows[1] and np.isfinite(rows[2]["train/d_loss"]) and np.isfinite(rows[4]["train/g_loss"])
    assert os.listdir(run / "logs") == ["run"]  # one TensorBoard run
    assert sorted(os.listdir(run / "samples")) == ["step-4.png"]

    launch(*common, "training.max_steps=6", "--resume", "latest", processes=2)
    assert checkpoints(run) == ["checkpoint-4", "checkpoint-6"]
    assert sorted(train_rows(run)) == [1, 2, 3, 4, 5, 6]
    spread = [r for r in metrics(run) if "dist/param_spread" in r]
    assert [(r["step"], r["dist/param_spread"]) for r in spread] == [(2, 0.0), (4, 0.0), (6, 0.0)]
    PoseCVAE.from_pretrained(run / "model")


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_resumes(config_file, tmp_path):
    """A real SIGINT to the launcher's process group, as Ctrl-C in a terminal sends it."""
    run = tmp_path / "run"
    env = dict(os.environ, WANDB_MODE="offline")
    cmd = [ACCELERATE, "launch", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", SCRIPT, "--config", str(config_file), "--output-dir", str(run),
           "training.max_steps=400", "training.checkpointing_steps=1000", "logging.validation_steps=1000",
           "logging.sample_steps=1000"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO, start_new_session=True)
    deadline = time.monotonic() + 120
    rows = run / "metrics.jsonl"
    while not (rows.exists() and len(rows.read_text().splitlines()) >= 2):
        assert proc.poll() is None and time.monotonic() < deadline, "training did not start"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    while True:  # the launcher exits at once; wait for the training process it started
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline + 60, "training process did not stop"
        time.sleep(0.1)

    (saved,) = checkpoints(run)
    step = int(saved.split("-")[1])
    assert 2 <= step < 400
    assert "SIGINT: saving a checkpoint" in output and f"stopped at step {step}" in output
    assert not (run / "model").exists()  # stopped, not finished
    assert max(train_rows(run)) == step

    launch("--output-dir", str(run), "--resume", "latest", f"training.max_steps={step + 2}")
    assert checkpoints(run) == [saved, f"checkpoint-{step + 2}"]
    assert sorted(train_rows(run)) == list(range(1, step + 3))


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(config_file, tmp_path):
    """A learning rate of 1e30 makes step 2's loss NaN: the run stops before saving it."""
    run = tmp_path / "run"
    proc = script("--config", str(config_file), "--output-dir", str(run), "training.learning_rate=1e30",
                  "training.lr_warmup_steps=0", "training.checkpointing_steps=1")  # fmt: skip
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert "not finite at step 2" in errors[0]
    assert f"the last good checkpoint is {run / 'checkpoints' / 'checkpoint-1'}" in errors[0]
    assert checkpoints(run) == ["checkpoint-1"]
    assert not (run / "model").exists()


@pytest.mark.slow
def test_fp16_on_cpu_is_a_clear_error(config_file, tmp_path):
    proc = script("--config", str(config_file), "--output-dir", str(tmp_path / "run"), "training.mixed_precision=fp16")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: training.mixed_precision=fp16: fp16 needs a CUDA GPU")


def _errors(capsys, argv: list[str]) -> str:
    assert cli_main(["train", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    return err


def test_user_errors_are_one_line_before_training(config_file, prepared_dataset, tmp_path, capsys):
    """Config, dataset and resume mistakes stop `poseguide train` with one line and exit 2,
    before Accelerate or the model are set up."""
    out = ["--config", str(config_file), "--output-dir", str(tmp_path / "run")]
    assert "training.max_step: unknown key (did you mean training.max_steps?)" in _errors(capsys, [*out, "training.max_step=3"])
    assert "training.batch_size: expected an integer" in _errors(capsys, [*out, "training.batch_size=four"])
    assert "no such dataset directory" in _errors(capsys, [*out, f"data.dataset={tmp_path / 'none'}"])
    err = _errors(capsys, [*out, "model.image_size=64"])
    assert "images are 128x128 px but the model config wants 64x64" in err
    # five stages (the large preset's) need a multiple of 64, which prepare's --size need not be
    large = [*out, "model.channels=8,16,16,16,16"]
    err = _errors(capsys, [*large, "model.image_size=160"])
    assert "image_size 160 does not fit 5 stages of channels (as the large preset): it must be a multiple of 64, e.g. 128 or 192" in err
    odd = tmp_path / "odd"  # a dataset prepared at --size 160: the size is read from its manifest first
    shutil.copytree(prepared_dataset, odd)
    manifest = json.loads((odd / "manifest.json").read_text())
    (odd / "manifest.json").write_text(json.dumps({**manifest, "image_size": 160}))
    err = _errors(capsys, [*large, "model.image_size=256", f"data.dataset={odd}"])
    assert "images are 160x160 px but the model config wants 256x256 (prepare the dataset at --size 256; " in err
    assert "model.image_size=160 would not do: image_size 160 does not fit 5 stages" in err
    assert "or set model.image_size=128" in _errors(capsys, [*large, "model.image_size=256"])

    broken = tmp_path / "broken"
    shutil.copytree(prepared_dataset, broken)
    (broken / "images.npy").write_bytes((broken / "images.npy").read_bytes()[:1000])
    assert "images.npy: unreadable or truncated .npy file" in _errors(capsys, [*out, f"data.dataset={broken}"])

    existing = tmp_path / "existing"
    (existing / "checkpoints" / "checkpoint-3").mkdir(parents=True)
    err = _errors(capsys, ["--config", str(config_file), "--output-dir", str(existing)])
    assert "already holds checkpoints (newest: checkpoint-3); pass --resume latest" in err
    assert "not a training checkpoint" in _errors(capsys, [*out, "--resume", str(tmp_path)])
    assert "--config is required" in _errors(capsys, ["--resume", "latest"])
    assert "no checkpoint to export" in _errors(capsys, [*out, "--export-only"])


@pytest.mark.slow
def test_resuming_a_checkpoint_of_another_model_is_one_line(full_run, tmp_path):
    """A checkpoint that does not fit the configured model (another size, another version)
    stops with one line naming it, not a state-dict traceback, and leaves the run untouched."""
    run = tmp_path / "run"
    shutil.copytree(full_run, run, ignore=shutil.ignore_patterns("wandb", "model"))
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    config = (run / "config.yaml").read_text()
    proc = script("--output-dir", str(run), "--resume", "latest", "--export-only", "model.latent_dim=24")
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "checkpoint-12: cannot resume from this checkpoint, it does not match this model and config" in last
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before and not (run / "model").exists()
    assert (run / "config.yaml").read_text() == config
    assert "model.head_upsample" not in last  # the hint is only for a head that differs

    proc = script("--output-dir", str(run), "--resume", "latest", "--export-only", "model.head_upsample=subpixel")
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "does not match this model and config" in last and "(this run trained with model.head_upsample=nearest)" in last


@pytest.mark.slow
def test_checkpoints_never_unpickle_and_bad_state_is_one_line(full_run, tmp_path):
    """Run directories get shared: a crafted pickle in a checkpoint must not run on resume or
    export; a checkpoint of the old pickled layout, a corrupt RNG file or a truncated model is
    one line, and the run is left as it was."""
    run = tmp_path / "run"
    shutil.copytree(full_run, run, ignore=shutil.ignore_patterns("wandb", "model"))
    ckpt = run / "checkpoints" / "checkpoint-12"
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    def last_error(*args: str) -> str:
        proc = script("--output-dir", str(run), "--resume", "latest", "--export-only", *args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        return proc.stderr.strip().splitlines()[-1]

    for name in ("custom_checkpoint_0.pkl", "custom_checkpoint_1.pkl"):  # as older versions named their state
        (ckpt / name).write_bytes(pickle.dumps(Payload()))
    assert "holds pickled state (custom_checkpoint_0.pkl, custom_checkpoint_1.pkl) that is never loaded" in last_error()
    proc = script("--output-dir", str(run), "--resume", "latest")  # training, not only the export
    assert proc.returncode == 2 and "never loaded" in proc.stderr
    assert not marker.exists()
    for name in ("custom_checkpoint_0.pkl", "custom_checkpoint_1.pkl"):
        (ckpt / name).unlink()
    proc = script("--output-dir", str(run), "--resume", "latest", "--export-only")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "differs" not in proc.stderr  # a copied run directory is the same run
    assert_same_weights(full_run / "model" / "model.safetensors", run / "model" / "model.safetensors")

    (ckpt / "training_state.json").rename(ckpt / "state.bak")
    assert "training_state.json is missing" in last_error()
    (ckpt / "state.bak").rename(ckpt / "training_state.json")

    rng = (ckpt / "random_states_0.pkl").read_bytes()
    (ckpt / "random_states_0.pkl").write_bytes(rng[: len(rng) // 2])
    assert "random_states_0.pkl: unreadable random state" in last_error()
    (ckpt / "random_states_0.pkl").write_bytes(rng)

    weights = (ckpt / "model.safetensors").read_bytes()
    (ckpt / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    assert "checkpoint-12: cannot resume from this checkpoint" in last_error()
    assert not marker.exists()


@pytest.mark.slow
def test_time_budget_fixes_max_steps_and_resume_keeps_it(config_file, tmp_path):
    """training.max_minutes cuts max_steps to what fits after timing the first steps; the choice
    is saved in the checkpoint and config.yaml, and a resume neither re-measures nor extends it."""
    run = tmp_path / "run"
    args = ["--config", str(config_file), "--output-dir", str(run), "training.max_steps=400", "training.lr_warmup_steps=10",
            "training.checkpointing_steps=1000", "logging.validation_steps=1000", "logging.sample_steps=1000"]  # fmt: skip
    proc = script(*args, "training.max_minutes=0.3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "time budget 0.3 min:" in proc.stderr
    (ckpt,) = checkpoints(run)
    steps = int(ckpt.split("-")[1])
    assert 10 <= steps < 400  # 8 timed steps after 2 skipped, then cut to fit 18 s
    state = json.loads((run / "checkpoints" / ckpt / "training_state.json").read_text())
    assert state["budget_steps"] == steps == yaml.safe_load((run / "config.yaml").read_text())["training"]["max_steps"]
    assert max(train_rows(run)) == steps

    proc = script(*args, "training.max_minutes=0.3", "--resume", "latest")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"max_steps {steps}, as fixed when this run started" in proc.stderr and "s per step measured" not in proc.stderr
    assert checkpoints(run) == [ckpt]


def test_time_budget_arithmetic():
    """configs/small.yaml with 1,949 train / 128 val samples, 2.0 s per step, 30 s gone of 12
    minutes, 12 steps done. Overhead in step-times, a forward pass being a third of a step over
    32 images: 2 validations x 128 x 2 forwards (5.33) + 2 grids x (256 half-forwards + 24
    forwards) (3.17) + the export's 1,949 half-forwards (10.15) = 18.65. The plan ends at 90%
    of the budget: 648 - 30 = 618 s = 309 steps; 302 - 12 + 18.65 = 308.65 fits, 303 does not."""
    from poseguide.config import load_config
    from poseguide.train import TimeBudget

    budget = TimeBudget(load_config(REPO / "configs" / "small.yaml"), 720, 0.0, num_train=1949, num_val=128)
    assert budget.overhead_steps(300) == pytest.approx(18.651, abs=1e-3)
    assert budget.fit_steps(2.0, done=12, elapsed=30.0) == 302
    assert budget.fit_steps(0.01, done=12, elapsed=30.0) == 1000  # never more than max_steps
    assert budget.fit_steps(100.0, done=12, elapsed=30.0) == 12  # nothing more fits: stop where it is


def test_time_budget_checks_the_pace_again_after_planning():
    """After the plan, every RECHECK steps the budget re-fits max_steps at the pace of those
    steps: a machine that slows from 2 s to 3 s per step gets a shorter run, and one that then
    speeds up to 1 s per step a longer one again, never past the config's max_steps."""
    import time

    from poseguide.config import load_config
    from poseguide.train import TimeBudget

    budget = TimeBudget(load_config(REPO / "configs" / "small.yaml"), 720, time.perf_counter() - 30.0,
                        num_train=1949, num_val=128)
    answers = [budget.observe(step, 2.0) for step in range(1, budget.SKIP + budget.measure + 1)]
    assert answers[:-1] == [None] * (len(answers) - 1)
    planned = answers[-1]
    assert 290 <= planned <= 302 and budget.pace == 2.0  # 30 s (and a little) gone, as in the test above
    start = budget.SKIP + budget.measure
    answers = [budget.observe(step, 3.0) for step in range(start + 1, start + budget.RECHECK + 1)]
    assert answers[:-1] == [None] * (budget.RECHECK - 1) and budget.pace == 3.0
    assert answers[-1] < planned - 50  # (618 - ~30) s at 3 s per step
    budget.config.training.max_steps = answers[-1]  # as the trainer fixes it
    start += budget.RECHECK
    answers = [budget.observe(step, 1.0) for step in range(start + 1, start + budget.RECHECK + 1)]
    assert answers[-1] > planned + 100  # about 540 s left at 1 s per step
    answers = [budget.observe(step, 0.01) for step in range(start + budget.RECHECK + 1, start + 2 * budget.RECHECK + 1)]
    assert answers[-1] == 1000  # configs/small.yaml's max_steps


# --- pure helpers: the learning-rate schedule and the start/resume plan -------------------------


def test_lr_factor_warms_up_linearly_from_one_step_in():
    from poseguide.train import lr_factor

    # Warm-up over 4 steps: 1/4, 2/4, 3/4, 4/4, whatever the schedule after it.
    for schedule in ("polynomial", "cosine", "constant"):
        assert [lr_factor(s, 4, 14, schedule) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(0, 0, 10, "polynomial") == 1.0  # no warm-up: the full rate at once


def test_lr_factor_polynomial_cosine_and_constant_by_hand():
    from poseguide.train import lr_factor

    # Linear decay (power 1) after 4 warm-up steps to step 14: progress = (step - 4) / 10.
    assert lr_factor(4, 4, 14, "polynomial") == 1.0
    assert lr_factor(9, 4, 14, "polynomial") == pytest.approx(0.5)
    assert lr_factor(11, 4, 14, "polynomial") == pytest.approx(0.3)
    assert lr_factor(14, 4, 14, "polynomial") == 0.0
    assert lr_factor(20, 4, 14, "polynomial") == 0.0  # past max_steps it stays at the end
    # Power 2 with an end factor of 0.1, halfway: 0.1 + 0.9 * 0.5 ** 2 = 0.325.
    assert lr_factor(5, 0, 10, "polynomial", power=2.0, end_factor=0.1) == pytest.approx(0.325)
    assert lr_factor(10, 0, 10, "polynomial", power=2.0, end_factor=0.1) == pytest.approx(0.1)
    # Cosine: halfway is 0.5; a sixth of the way is (1 + cos 30 deg) / 2 = 0.9330127.
    assert lr_factor(0, 0, 10, "cosine") == 1.0
    assert lr_factor(5, 0, 10, "cosine") == pytest.approx(0.5)
    assert lr_factor(2, 0, 12, "cosine") == pytest.approx(0.9330127)
    assert lr_factor(10, 0, 10, "cosine") == pytest.approx(0.0)
    assert lr_factor(5, 0, 10, "cosine", end_factor=0.2) == pytest.approx(0.6)  # 0.2 + 0.8 * 0.5
    # Constant: 1 after warm-up, forever.
    assert lr_factor(2, 2, 10, "constant") == lr_factor(1000, 2, 10, "constant") == 1.0
    with pytest.raises(ValueError, match="unknown lr_scheduler 'step'"):
        lr_factor(5, 0, 10, "step")


@pytest.mark.parametrize("processes", [1, 2])
def test_scheduler_counts_optimiser_steps_whatever_the_process_count(processes):
    """Accelerate steps a prepared scheduler once per process per optimiser step; the rate must
    follow optimiser steps. lr 0.1, 2 warm-up steps, linear decay to 0 at step 6:
    optimiser step 0: 0.05, 1: 0.1, 2: 0.1, 3: 0.075, 4: 0.05, 5: 0.025, 6: 0."""
    from poseguide.config import load_config
    from poseguide.train import make_scheduler

    config = load_config(REPO / "configs" / "small.yaml", [
        "training.learning_rate=0.1", "training.lr_end=0.0", "training.lr_warmup_steps=2", "training.max_steps=6",
        "training.lr_scheduler=polynomial", "training.lr_power=1.0",
    ])
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = make_scheduler(optimizer, config, processes)
    expected = [0.05, 0.1, 0.1, 0.075, 0.05, 0.025, 0.0]
    seen = []
    for _ in expected:
        seen.append(optimizer.param_groups[0]["lr"])
        for k in range(processes):
            if k:  # the other process's scheduler step, within the same optimiser step
                assert optimizer.param_groups[0]["lr"] == seen[-1]
            optimizer.step()
            scheduler.step()
    assert seen == pytest.approx(expected)


def test_scheduler_decays_to_lr_end():
    """lr 0.1, lr_end 0.01 (end factor 0.1), no warm-up, linear to step 4: halfway is
    0.1 * (0.1 + 0.9 * 0.5) = 0.055, the end 0.01."""
    from poseguide.config import load_config
    from poseguide.train import make_scheduler

    config = load_config(REPO / "configs" / "small.yaml", [
        "training.learning_rate=0.1", "training.lr_end=0.01", "training.lr_warmup_steps=0", "training.max_steps=4",
        "training.lr_scheduler=polynomial", "training.lr_power=1.0",
    ])
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = make_scheduler(optimizer, config, 1)
    lrs = []
    for _ in range(5):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([0.1, 0.0775, 0.055, 0.0325, 0.01])


def _plan_args(**kw):
    import argparse

    args = {"config": str(REPO / "configs" / "small.yaml"), "overrides": [], "output_dir": None, "report_to": None,
            "resume": None, "export_only": False}
    args.update(kw)
    return argparse.Namespace(**args)


def _fake_checkpoints(run: Path, steps: list[int]) -> list[Path]:
    """checkpoint-N folders as Accelerate leaves them (random_states_0.pkl marks one)."""
    made = []
    for step in steps:
        path = run / "checkpoints" / f"checkpoint-{step}"
        path.mkdir(parents=True)
        (path / "random_states_0.pkl").write_bytes(b"")
        made.append(path)
    return made


def test_make_plan_fresh_run_and_refusing_to_overwrite_checkpoints(tmp_path):
    from poseguide.train import TrainingError, make_plan

    run = tmp_path / "run"
    plan = make_plan(_plan_args(output_dir=str(run), overrides=["training.max_steps=7"]))
    assert plan.run_dir == run and plan.resume is None
    assert not plan.export_only and not plan.resume_requested
    assert plan.config.training.max_steps == 7 and plan.config.training.output_dir == str(run)

    _fake_checkpoints(run, [2, 8, 10])
    (run / "checkpoints" / "checkpoint-12.tmp").mkdir()  # an unfinished save: not a checkpoint
    with pytest.raises(TrainingError, match=r"already holds checkpoints \(newest: checkpoint-10\); pass --resume latest"):
        make_plan(_plan_args(output_dir=str(run)))


def test_make_plan_resume_latest_and_export_only_pick_the_newest_checkpoint(tmp_path):
    from poseguide.train import TrainingError, make_plan

    run = tmp_path / "run"
    # Nothing saved yet: --resume latest starts from step 0 (and says so), --export-only refuses.
    plan = make_plan(_plan_args(output_dir=str(run), resume="latest"))
    assert plan.resume is None and plan.resume_requested
    with pytest.raises(TrainingError, match="no checkpoint to export"):
        make_plan(_plan_args(output_dir=str(run), export_only=True))

    _fake_checkpoints(run, [2, 8, 10])  # numerically newest is 10, though "8" sorts after "10"
    (run / "checkpoints" / "checkpoint-12.tmp").mkdir()
    plan = make_plan(_plan_args(output_dir=str(run), resume="latest"))
    assert plan.resume == run / "checkpoints" / "checkpoint-10" and plan.resume_requested and not plan.export_only
    plan = make_plan(_plan_args(output_dir=str(run), export_only=True))
    assert plan.resume == run / "checkpoints" / "checkpoint-10" and plan.export_only and not plan.resume_requested


def test_make_plan_resume_path_uses_the_runs_own_config(tmp_path):
    from poseguide.train import TrainingError, make_plan

    run = tmp_path / "run"
    older, _ = _fake_checkpoints(run, [4, 8])
    # No --config and no config.yaml in the run: nothing to start from.
    with pytest.raises(TrainingError, match="--config is required"):
        make_plan(_plan_args(config=None, resume=str(older)))
    (run / "config.yaml").write_text((REPO / "configs" / "small.yaml").read_text().replace("max_steps: 1000", "max_steps: 321"))

    plan = make_plan(_plan_args(config=None, resume=str(older)))  # an older checkpoint than the newest, on purpose
    assert plan.resume == older and plan.resume_requested
    assert plan.run_dir == run.resolve() and plan.config.training.max_steps == 321
    plan = make_plan(_plan_args(config=None, output_dir=str(run), resume="latest"))
    assert plan.resume == run / "checkpoints" / "checkpoint-8" and plan.config.training.max_steps == 321

    # A directory without Accelerate's random_states_0.pkl is not a checkpoint.
    (older / "random_states_0.pkl").unlink()
    with pytest.raises(TrainingError, match=r"not a training checkpoint \(expected a checkpoints/checkpoint-<step> directory\)"):
        make_plan(_plan_args(output_dir=str(run), resume=str(older)))
    with pytest.raises(TrainingError, match="not a training checkpoint"):
        make_plan(_plan_args(output_dir=str(run), resume=str(tmp_path / "nowhere")))


@pytest.mark.slow
def test_synthetic_people_are_mixed_in_and_init_from_starts_from_a_model(full_run, config_file, prepared_dataset, tmp_path):
    """data.synthetic adds another prepared dataset to the batches (here the same frames stand in
    for renders): the model keeps the user's training poses for --random-pose and the mixed-in
    ones for the coverage warning. training.init_from starts from a model's weights: with a
    vanishing learning rate, the exported model equals the one it started from."""
    run = tmp_path / "mixed"
    proc = script("--config", str(config_file), "--output-dir", str(run), f"data.synthetic={prepared_dataset}",
                  "data.synthetic_fraction=0.5", "training.max_steps=1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    extras = load_file(str(run / "model" / "extras.safetensors"))
    assert len(extras["synthetic_poses"]) == len(extras["train_poses"])  # 0.5 / (1 - 0.5) of them
    # a synthetic set prepared differently is refused in one line
    other = tmp_path / "other"
    shutil.copytree(prepared_dataset, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["background"] = [1, 2, 3]
    (other / "manifest.json").write_text(json.dumps(manifest))
    proc = script("--config", str(config_file), "--output-dir", str(tmp_path / "bad"), f"data.synthetic={other}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: data.synthetic {other}: its background (1, 2, 3)")

    run = tmp_path / "init"
    proc = script("--config", str(config_file), "--output-dir", str(run), f"training.init_from={full_run / 'model'}",
                  "training.learning_rate=1e-30", "training.lr_end=0", "training.max_steps=1", "training.use_ema=false")
    assert proc.returncode == 0, proc.stderr[-2000:]
    start = load_file(str(full_run / "model" / "model.safetensors"))
    after = load_file(str(run / "model" / "model.safetensors"))
    for name, value in start.items():
        if not name.startswith(("prior_", "pose_prior_")):  # the prior is fitted again at export
            torch.testing.assert_close(after[name], value, rtol=0, atol=1e-20, msg=name)
    proc = script("--config", str(config_file), "--output-dir", str(tmp_path / "wrong"),
                  f"training.init_from={full_run / 'model'}", "model.latent_dim=64")
    assert proc.returncode == 2 and "training.init_from" in proc.stderr and "latent_dim" in proc.stderr


@pytest.mark.slow
def test_a_mistake_under_accelerate_launch_q_is_our_one_line(tmp_path):
    """`accelerate launch -q` of one process shows our line and nothing of the launcher's (which
    exits 1: its own status, as the README says; without -q it adds a CalledProcessError
    traceback, which no script can stop)."""
    missing = tmp_path / "missing.yaml"
    cmd = [ACCELERATE, "launch", "-q", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", SCRIPT, "--config", str(missing)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.stderr.strip() == f"error: {missing}: no such config file", proc.stderr[-3000:]
    assert proc.returncode == 1
