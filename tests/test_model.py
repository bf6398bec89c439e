import json

import pytest
import torch

from poseguide.heatmaps import NUM_CONDITION_CHANNELS, render_condition
from poseguide.model import (
    MODEL_PRESETS,
    ModelConfig,
    ModelLoadError,
    PoseCVAE,
    count_parameters,
    flops_per_image,
    load_extras,
    preset,
)

TINY = dict(image_size=64, channels=(16, 32, 32), latent_dim=32, pose_latent_dim=8, head_channels=8, condition_size=32)


def batch(size: int, n: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    mask = (torch.rand(n, 1, size, size, generator=g) > 0.5).float()
    landmarks = torch.rand(n, 33, 4, generator=g)
    return image, mask, landmarks


@pytest.mark.parametrize("name", list(MODEL_PRESETS))
def test_shapes_at_each_size(name):
    config = preset(name)
    model = PoseCVAE(config).eval()
    size = config.image_size
    image, mask, landmarks = batch(size)
    with torch.no_grad():
        out = model(image, mask, landmarks)
    assert out.rgb.shape == (2, 3, size, size)
    assert out.alpha_logits.shape == (2, 1, size, size)
    assert out.mu.shape == out.logvar.shape == out.z.shape == (2, config.latent_dim)
    assert out.cond.shape == (2, NUM_CONDITION_CHANNELS, config.condition_size, config.condition_size)
    assert out.rgb.abs().max() <= 1.0
    assert count_parameters(model) > 1e6
    flops = flops_per_image(model)
    assert 0 < flops["decode"] < flops["forward"]


def test_null_condition_gives_a_valid_image():
    model = PoseCVAE(ModelConfig(**TINY)).eval()
    z = torch.randn(3, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        rgb, alpha = model.decode(z, None)
    assert rgb.shape == (3, 3, 64, 64) and alpha.shape == (3, 1, 64, 64)
    assert torch.isfinite(rgb).all() and torch.isfinite(alpha).all()
    assert rgb.min() >= -1 and rgb.max() <= 1


def test_condition_dropout_nulls_the_dropped_samples():
    model = PoseCVAE(ModelConfig(**TINY, latent_pose=False)).train()
    image, mask, landmarks = batch(64, n=16)
    out = model(image, mask, landmarks, cond_dropout=0.5, generator=torch.Generator().manual_seed(1))
    dropped = ~out.present
    assert 0 < int(dropped.sum()) < 16
    assert out.cond[dropped].abs().max() == 0
    assert torch.all(out.cond[~dropped][:, -1] == 1)
    assert out.pose is None


def test_dropped_samples_train_the_pose_drawn_from_their_latent():
    model = PoseCVAE(ModelConfig(**TINY)).train()
    image, mask, landmarks = batch(64, n=16)
    out = model(image, mask, landmarks, cond_dropout=0.5, generator=torch.Generator().manual_seed(1))
    dropped = ~out.present
    assert 0 < int(dropped.sum()) < 16
    assert out.pose.shape == (16, 33, 4) and out.pose.requires_grad
    # Training: a dropped row is decoded in its true pose with "pose present" off...
    true = render_condition(landmarks, 32)
    torch.testing.assert_close(out.cond[dropped][:, :-1], true[dropped][:, :-1])
    assert out.cond[dropped][:, -1].abs().max() == 0
    torch.testing.assert_close(out.cond[~dropped], true[~dropped])
    # ...and sampling with no pose decodes in the pose the head draws from z, the same way.
    model.eval()
    z = torch.randn(2, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        null_rgb, _ = model.decode(z, None)
        drawn = render_condition(model.draw_pose(z), 32)
        drawn[:, -1] = 0
        drawn_rgb, _ = model.decode_condition(z, drawn)
    torch.testing.assert_close(null_rgb, drawn_rgb)


def test_fitted_latent_prior_matches_the_posteriors_and_is_saved(tmp_path):
    torch.manual_seed(0)
    model = PoseCVAE(ModelConfig(**TINY)).eval()
    a = model.config.appearance_dim
    noise, pick = torch.randn(4, 32), torch.rand(4)
    torch.testing.assert_close(model.latent_from_noise(noise, pick), noise)  # identity before fitting
    # appearance entries: a Gaussian with these scales; pose entries: on a few tight points
    n = 20000
    scale = torch.linspace(0.5, 2.0, a)
    points = torch.randn(8, 32 - a) * 3
    mu = torch.cat([3.0 + torch.randn(n, a) * scale, points[torch.arange(n) % 8]], dim=1)
    logvar = torch.full((n, 32), -20.0)  # tiny posterior variance
    model.fit_latent_prior(mu, logvar)
    z = model.sample_latent(n, torch.Generator().manual_seed(1))
    torch.testing.assert_close(z[:, :a].mean(0), torch.full((a,), 3.0), atol=0.06, rtol=0)
    torch.testing.assert_close(z[:, :a].std(0), scale, atol=0.05, rtol=0.03)
    # every random pose latent is one of the training ones (a single Gaussian would fall between)
    distance = torch.cdist(z[:, a:], points, compute_mode="donot_use_mm_for_euclid_dist")
    assert distance.min(dim=1).values.max() < 1e-3
    assert len(torch.unique(distance.argmin(dim=1))) == 8
    # temperature scales every entry's spread around its centre (the prior mean, the picked component)
    gen = lambda: torch.Generator().manual_seed(2)  # noqa: E731
    z0, z1, z05 = (model.sample_latent(5, gen(), temperature=t) for t in (0.0, 1.0, 0.5))
    torch.testing.assert_close(z05 - z0, 0.5 * (z1 - z0))
    torch.testing.assert_close(z0[:, :a], model.prior_mean[:a].expand(5, -1))
    # row i does not depend on how many rows are drawn
    torch.testing.assert_close(model.sample_latent(3, gen()), model.sample_latent(5, gen())[:3])
    model.save_pretrained(tmp_path / "m")
    loaded = PoseCVAE.from_pretrained(tmp_path / "m")
    for name in ("prior_mean", "prior_scale_tril", "pose_prior_mean", "pose_prior_std"):
        assert torch.equal(getattr(loaded, name), getattr(model, name)), name


def test_decoder_uses_the_pose():
    model = PoseCVAE(ModelConfig(**TINY)).eval()
    # Give the residual branches weight so the test does not depend on training.
    for module in model.modules():
        if hasattr(module, "gain"):
            module.gain.data.fill_(1.0)
    z = torch.zeros(1, 32)
    _, _, pose_a = batch(64, n=1, seed=1)
    _, _, pose_b = batch(64, n=1, seed=2)
    with torch.no_grad():
        a, b = model.decode(z, pose_a)[0], model.decode(z, pose_b)[0]
    assert (a - b).abs().max() > 1e-3


def test_save_load_reproduces_outputs_bit_for_bit(tmp_path):
    torch.manual_seed(0)
    model = PoseCVAE(ModelConfig(**TINY))
    # Move off the initialisation so a wrong reload could not pass by accident.
    for p in model.parameters():
        p.data.add_(0.01 * torch.randn_like(p))
    model.eval()
    poses = torch.rand(5, 33, 4)
    model.save_pretrained(tmp_path / "m", extra_config={"framing": {"fill": 0.75}}, extra_tensors={"train_poses": poses})
    loaded = PoseCVAE.from_pretrained(tmp_path / "m")
    assert loaded.config == model.config
    image, mask, landmarks = batch(64, n=3, seed=5)
    with torch.no_grad():
        a = model(image, mask, landmarks, generator=torch.Generator().manual_seed(7))
        b = loaded(image, mask, landmarks, generator=torch.Generator().manual_seed(7))
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    extra_config, tensors = load_extras(tmp_path / "m")
    assert extra_config["framing"] == {"fill": 0.75}
    assert torch.equal(tensors["train_poses"], poses)


def test_models_saved_before_the_head_choice_load_with_their_subpixel_head(tmp_path):
    torch.manual_seed(0)
    model = PoseCVAE(ModelConfig(**TINY, head_upsample="subpixel")).eval()
    model.save_pretrained(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    del config["model"]["head_upsample"]
    path.write_text(json.dumps(config))
    loaded = PoseCVAE.from_pretrained(tmp_path / "m")
    assert loaded.config.head_upsample == "subpixel"
    z = torch.randn(2, model.latent_dim)
    landmarks = batch(64)[2]
    with torch.no_grad():
        assert torch.equal(model.decode(z, landmarks)[0], loaded.decode(z, landmarks)[0])


@pytest.mark.parametrize("head_upsample, periodic", [("nearest", False), ("subpixel", True)])
def test_only_the_subpixel_head_turns_flat_features_into_a_2x2_pattern(head_upsample, periodic):
    torch.manual_seed(0)
    head = PoseCVAE(ModelConfig(**TINY, head_upsample=head_upsample)).decoder.head
    first_conv = next(layer for layer in head if isinstance(layer, torch.nn.Conv2d))
    flat = torch.full((1, first_conv.in_channels, 8, 8), 0.5)
    with torch.no_grad():
        inside = head(flat)[0, :, 4:-4, 4:-4]  # away from the zero padding
    spread = (inside - inside.mean(dim=(1, 2), keepdim=True)).abs().amax().item()
    assert (spread > 1e-3) == periodic, spread


def test_both_heads_cost_the_same():
    assert flops_per_image(PoseCVAE(preset("small", head_upsample="nearest"))) == flops_per_image(
        PoseCVAE(preset("small", head_upsample="subpixel")))


def saved(tmp_path):
    directory = tmp_path / "m"
    PoseCVAE(ModelConfig(**TINY)).save_pretrained(directory)
    return directory


def test_missing_directory_and_files_are_named(tmp_path):
    with pytest.raises(ModelLoadError, match="no such model directory"):
        PoseCVAE.from_pretrained(tmp_path / "nope")
    directory = saved(tmp_path)
    (directory / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="model.safetensors: missing"):
        PoseCVAE.from_pretrained(directory)
    (directory / "config.json").unlink()
    with pytest.raises(ModelLoadError, match="config.json: missing"):
        PoseCVAE.from_pretrained(directory)


def test_truncated_weights_are_reported(tmp_path):
    directory = saved(tmp_path)
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match="truncated"):
        PoseCVAE.from_pretrained(directory)


def test_config_that_does_not_match_the_weights_is_reported(tmp_path):
    directory = saved(tmp_path)
    config = json.loads((directory / "config.json").read_text())
    config["model"]["latent_dim"] = 48
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="do not match config.json"):
        PoseCVAE.from_pretrained(directory)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: "{not json", "not valid JSON"),
        (lambda c: json.dumps({**c, "format": "something-else"}), "not a poseguide model"),
        (lambda c: json.dumps({**c, "version": 99}), "version 99"),
        (lambda c: json.dumps({**c, "model": {**c["model"], "bogus": 1}}), "unknown model config keys: bogus"),
    ],
)
def test_bad_config_json_is_reported(tmp_path, edit, message):
    directory = saved(tmp_path)
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(edit(config))
    with pytest.raises(ModelLoadError, match=message):
        PoseCVAE.from_pretrained(directory)


def test_invalid_configs_are_refused():
    with pytest.raises(ValueError, match=r"^image_size 100 does not fit 3 stages of channels: it must be a multiple of 16, e.g. 96 or 112$"):
        ModelConfig(image_size=100, channels=(16, 32, 64))
    with pytest.raises(ValueError, match="cond_dropout"):
        ModelConfig(cond_dropout=1.0)
    with pytest.raises(ValueError, match="^head_upsample must be one of nearest, subpixel, got 'bilinear'$"):
        ModelConfig(head_upsample="bilinear")


@pytest.mark.slow
def test_the_shipped_pose_prior_loads_and_draws_a_person_with_raised_arms(prepared_dataset):
    """poseguide/pose_prior (scripts/build_pose_prior.sh) is a small model; drawn in a real
    walker's pose with both arms swung overhead, MediaPipe finds a person whose wrists are
    above the shoulders."""
    import numpy as np

    from poseguide import landmarks as lm
    from poseguide import pose_edits
    from poseguide.extract import PoseEstimator
    from poseguide.generate import composite, to_rgba
    from poseguide.model import POSE_PRIOR_DIR, preset

    model = PoseCVAE.from_pretrained(POSE_PRIOR_DIR)
    assert model.config.to_dict() == {**preset("small").to_dict(), "cond_dropout": model.config.cond_dropout}
    walker = np.load(prepared_dataset / "landmarks.npy")[0]
    raised = pose_edits.swing_limb(pose_edits.swing_limb(walker, "left_arm", 170, 175), "right_arm", 170, 175)
    with torch.no_grad():
        rgb, alpha = model.decode(model.prior_mean[None], torch.from_numpy(raised)[None])
    image = composite(to_rgba(rgb, alpha), (128, 128, 128))[0]
    with PoseEstimator() as estimator:
        found = estimator(np.ascontiguousarray(image))
    assert found is not None
    pose = found[0]
    i = lm.INDEX
    shoulders = min(pose[i["left_shoulder"], 1], pose[i["right_shoulder"], 1])
    assert max(pose[i["left_wrist"], 1], pose[i["right_wrist"], 1]) < shoulders


def test_save_pretrained_is_whole_or_not_at_all_with_the_users_mode(tmp_path):
    """A save that fails part way (here extras that safetensors refuses, as two names share one
    tensor, after the weights are written) leaves the previous model as it was and no temp
    file; files get the umask's mode, and a save without extras drops an older save's extras."""
    import os
    import stat

    directory = tmp_path / "m"
    old_umask = os.umask(0o027)
    try:
        PoseCVAE(ModelConfig(**TINY)).save_pretrained(directory, extra_tensors={"train_poses": torch.rand(3, 33, 4)})
    finally:
        os.umask(old_umask)
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()} == {
        "config.json": 0o640, "model.safetensors": 0o640, "extras.safetensors": 0o640,
    }
    before = {p.name: p.read_bytes() for p in directory.iterdir()}
    torch.manual_seed(1)
    other = PoseCVAE(ModelConfig(**{**TINY, "latent_dim": 48}))
    shared = torch.rand(3, 33, 4)
    with pytest.raises(RuntimeError, match="share memory"):
        other.save_pretrained(directory, extra_tensors={"train_poses": shared, "again": shared})
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before

    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError, match="share memory"):
        other.save_pretrained(fresh, extra_tensors={"train_poses": shared, "again": shared})
    assert not fresh.exists()

    other.save_pretrained(directory)
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", "model.safetensors"]
    assert PoseCVAE.from_pretrained(directory).config.latent_dim == 48
