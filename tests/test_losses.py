import math

import pytest
import torch

from poseguide.losses import (
    LossConfig,
    MultiScaleDiscriminator,
    PatchDiscriminator,
    VAELoss,
    discriminator_adversarial_loss,
    elbo_bits_per_dim,
    face_weight_map,
    feature_matching_loss,
    focal_frequency_loss,
    generator_adversarial_loss,
    kl_per_dim,
)
from poseguide.model import ModelConfig, PoseCVAE

TINY = dict(image_size=64, channels=(16, 32, 32), latent_dim=32, pose_latent_dim=8, head_channels=8, condition_size=32)


def test_face_weight_is_centred_on_the_face_landmarks():
    pose = torch.zeros(2, 33, 4)
    pose[0, :11, 0] = 0.30 + 0.01 * torch.arange(11)  # face around x = 0.35
    pose[0, :11, 1] = 0.20
    pose[0, :11, 3] = 1.0
    weights = face_weight_map(pose, 64, radius_scale=1.5)
    peak = torch.nonzero(weights[0, 0] == weights[0, 0].max())[0]
    assert abs((peak[1].item() + 0.5) / 64 - 0.35) < 1.5 / 64
    assert abs((peak[0].item() + 0.5) / 64 - 0.20) < 1.5 / 64
    assert weights[1].abs().max() == 0  # no visible face, no face weight


def test_kl_is_fp32_and_survives_extreme_logvar():
    mu = torch.zeros(2, 4, dtype=torch.bfloat16)
    logvar = torch.tensor([[100.0, -100.0, 0.0, 1.0]] * 2, dtype=torch.bfloat16)
    kl = kl_per_dim(mu, logvar)
    assert kl.dtype == torch.float32
    assert torch.isfinite(kl).all()
    assert kl[0, 2].item() == 0.0
    assert kl[0, 3].item() == pytest.approx(0.5 * (math.e - 2.0), rel=1e-3)


def test_kl_warmup_and_free_bits():
    loss = VAELoss(LossConfig(kl_weight=0.1, kl_warmup_steps=10))
    assert loss.kl_weight(0) == pytest.approx(0.01)
    assert loss.kl_weight(4) == pytest.approx(0.05)
    assert loss.kl_weight(500) == pytest.approx(0.1)

    model = PoseCVAE(ModelConfig(**TINY))
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    mask = torch.ones(2, 1, 64, 64)
    pose = torch.rand(2, 33, 4)
    out = model(image, mask, pose)
    out = out._replace(mu=torch.zeros_like(out.mu), logvar=torch.zeros_like(out.logvar))  # KL = 0
    plain = VAELoss(LossConfig(kl_weight=1.0, kl_warmup_steps=0))(image, mask, pose, out, step=0)
    floored = VAELoss(LossConfig(kl_weight=1.0, kl_warmup_steps=0, free_bits=0.5))(image, mask, pose, out, step=0)
    # With KL at 0, free bits charge exactly 0.5 nats per latent dimension.
    extra = (floored["loss"] - plain["loss"]).item()
    assert extra == pytest.approx(0.5 * 32 / image[0].numel(), rel=1e-4)


def test_person_and_face_weights_change_the_reconstruction_term():
    model = PoseCVAE(ModelConfig(**TINY))
    image = torch.zeros(1, 3, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1
    pose = torch.rand(1, 33, 4)
    out = model(image, mask, pose)
    rgb = torch.zeros_like(out.rgb)
    rgb[..., 16:48, 16:48] = 1.0  # all the error is inside the person
    out = out._replace(rgb=rgb)
    flat = VAELoss(LossConfig(person_weight=1.0, face_weight=0.0, limb_weight=0.0))(image, mask, pose, out, step=0)["rec"]
    person = VAELoss(LossConfig(person_weight=3.0, face_weight=0.0, limb_weight=0.0))(image, mask, pose, out, step=0)["rec"]
    assert flat.item() == pytest.approx(0.25)
    assert person.item() == pytest.approx(3 * 0.25 / (1 + 2 * 0.25))


def test_elbo_bits_per_dim_orders_good_and_bad_reconstructions():
    image = torch.rand(2, 3, 32, 32) * 2 - 1
    mu, logvar = torch.zeros(2, 8), torch.zeros(2, 8)
    good = elbo_bits_per_dim(image, image + 0.01, mu, logvar)
    bad = elbo_bits_per_dim(image, image + 0.3, mu, logvar)
    assert (good < bad).all()
    # A uniform guess over 256 levels costs 8 bits/dim; a near-perfect decoder far less.
    assert (good < 4).all() and (bad < 9).all()


def test_adversarial_path_switches_on_at_its_step_and_trains_both_sides():
    torch.manual_seed(0)
    model = PoseCVAE(ModelConfig(**TINY))
    loss_fn = VAELoss(LossConfig(adversarial_weight=0.5, adversarial_start_step=10, discriminator_channels=16))
    disc = loss_fn.make_discriminator()
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    mask = (torch.rand(2, 1, 64, 64) > 0.5).float()
    pose = torch.rand(2, 33, 4)
    out = model(image, mask, pose)
    before = loss_fn(image, mask, pose, out, step=9, last_layer=model.decoder_last_layer(), discriminator=disc)
    assert "g_loss" not in before and not loss_fn.uses_discriminator(9)
    after = loss_fn(image, mask, pose, out, step=10, last_layer=model.decoder_last_layer(), discriminator=disc)
    assert loss_fn.uses_discriminator(10)
    assert torch.isfinite(after["adv_weight"]) and after["adv_weight"] > 0
    after["loss"].backward()
    d_terms = loss_fn.discriminator_loss(disc, image, mask, out)
    d_terms["d_loss"].backward()
    assert all(p.grad is not None for p in disc.parameters())
    assert VAELoss(LossConfig()).make_discriminator() is None


@pytest.mark.slow
def test_perceptual_loss_needs_a_local_weights_file(tmp_path):
    with pytest.raises(ValueError, match="local VGG16 weights file"):
        LossConfig(perceptual_weight=0.1)
    with pytest.raises(FileNotFoundError, match="no such file"):
        VAELoss(LossConfig(perceptual_weight=0.1, perceptual_weights=str(tmp_path / "vgg.pth")))
    import torchvision

    torch.save(torchvision.models.vgg16(weights=None).state_dict(), tmp_path / "vgg.pth")
    loss_fn = VAELoss(LossConfig(perceptual_weight=0.1, perceptual_weights=str(tmp_path / "vgg.pth")))
    model = PoseCVAE(ModelConfig(**TINY))
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    out = model(image, torch.ones(1, 1, 64, 64), torch.rand(1, 33, 4))
    terms = loss_fn(image, torch.ones(1, 1, 64, 64), torch.rand(1, 33, 4), out, step=0)
    assert terms["perceptual"] > 0


def test_limb_weight_follows_the_rendered_limbs_and_skips_dropped_samples():
    model = PoseCVAE(ModelConfig(**TINY))
    pose = torch.zeros(2, 33, 4)
    pose[:, :, :2] = 0.5
    pose[:, 13, :2] = torch.tensor([0.2, 0.5])  # left elbow far left of the shoulder
    pose[:, 11, :2] = torch.tensor([0.5, 0.5])
    pose[:, [11, 13], 3] = 1.0
    image = torch.zeros(2, 3, 64, 64)
    mask = torch.zeros(2, 1, 64, 64)
    out = model(image, mask, pose, present=torch.tensor([True, False]))
    weights = VAELoss(LossConfig(person_weight=1.0, face_weight=0.0, limb_weight=2.0)).pixel_weights(mask, pose, out.cond)
    row = weights[0, 0, 32]
    assert row[int(0.35 * 64)].item() > 2.5  # on the upper arm (peak 3, blurred by the resize)
    assert row[int(0.9 * 64)].item() == pytest.approx(1.0, abs=1e-3)  # away from it
    assert torch.all(weights[1] == 1.0)  # condition dropped: nothing to follow


def test_focal_frequency_loss_is_zero_for_identical_images_and_grows_with_the_error():
    torch.manual_seed(0)
    target = torch.rand(2, 3, 16, 16) * 2 - 1
    assert focal_frequency_loss(target, target).item() == 0.0
    small = focal_frequency_loss(target + 0.01 * torch.randn_like(target), target)
    large = focal_frequency_loss(target + 0.1 * torch.randn_like(target), target)
    assert 0 < small < large


def test_focal_frequency_loss_by_hand_and_its_gradient():
    # A constant offset c lives in the DC term alone: orthonormal DC = c x sqrt(H W), its weight is
    # the largest (1), every other frequency is 0, so the loss is c^2 H W / (H W) = c^2 per channel.
    target = torch.zeros(1, 1, 8, 8)
    pred = torch.full((1, 1, 8, 8), 0.5, requires_grad=True)
    loss = focal_frequency_loss(pred, target)
    assert loss.item() == pytest.approx(0.25)
    loss.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_discriminator_shapes_spectral_norm_and_scales():
    cond = torch.rand(2, 40, 32, 32)
    rgb, alpha = torch.rand(2, 3, 64, 64), torch.rand(2, 1, 64, 64)
    single = PatchDiscriminator(channels=8, layers=3)
    (features,) = single(rgb, alpha, cond)
    assert len(features) == 4 and features[-1].shape[1] == 1  # 3 blocks, then the patch logits
    sn = PatchDiscriminator(channels=8, layers=3, spectral_norm=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in sn.modules())
    assert any(torch.nn.utils.parametrize.is_parametrized(m) for m in sn.modules())
    multi = MultiScaleDiscriminator(2, channels=8, layers=3)
    out = multi(rgb, alpha, cond)
    assert len(out) == 2 and out[1][-1].shape[-1] < out[0][-1].shape[-1]  # the second sees half the image
    # The single-scale PatchGAN keeps the parameter names older checkpoints saved.
    assert "body.0.weight" in single.state_dict() and "first.0.weight" in single.state_dict()


def test_adversarial_losses_by_hand():
    ones, zeros = torch.ones(4), torch.zeros(4)
    assert generator_adversarial_loss(ones, "hinge").item() == -1.0
    assert generator_adversarial_loss(ones, "lsgan").item() == 0.0
    assert generator_adversarial_loss(zeros, "lsgan").item() == 1.0
    assert discriminator_adversarial_loss(ones, -ones, "hinge").item() == 0.0  # both past the margin
    assert discriminator_adversarial_loss(zeros, zeros, "hinge").item() == 1.0
    assert discriminator_adversarial_loss(ones, zeros, "lsgan").item() == 0.0
    assert discriminator_adversarial_loss(zeros, ones, "lsgan").item() == 1.0


def test_feature_matching_is_zero_for_identical_inputs_and_pulls_the_fake_towards_the_real():
    torch.manual_seed(0)
    disc = MultiScaleDiscriminator(2, channels=8, layers=2)
    cond = torch.rand(1, 40, 32, 32)
    real_rgb, alpha = torch.rand(1, 3, 64, 64), torch.ones(1, 1, 64, 64)
    fake_rgb = torch.rand(1, 3, 64, 64, requires_grad=True)
    real = disc(real_rgb, alpha, cond)
    assert feature_matching_loss(real, disc(real_rgb, alpha, cond)).item() == 0.0
    fm = feature_matching_loss(real, disc(fake_rgb, alpha, cond))
    assert fm.item() > 0
    fm.backward()
    assert fake_rgb.grad is not None and fake_rgb.grad.abs().sum() > 0


def test_pix2pixhd_recipe_ramps_in_and_trains_both_sides():
    torch.manual_seed(0)
    model = PoseCVAE(ModelConfig(**TINY))
    cfg = LossConfig(adversarial_weight=0.5, adversarial_start_step=10, adversarial_warmup_steps=4,
                     adversarial_loss="lsgan", discriminator_channels=8, discriminator_scales=2,
                     discriminator_spectral_norm=True, feature_matching_weight=10.0, frequency_weight=5.0)
    loss_fn = VAELoss(cfg)
    assert [loss_fn.adversarial_ramp(s) for s in (9, 10, 11, 13, 50)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    disc = loss_fn.make_discriminator()
    assert isinstance(disc, MultiScaleDiscriminator)
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    mask = (torch.rand(2, 1, 64, 64) > 0.5).float()
    pose = torch.rand(2, 33, 4)
    out = model(image, mask, pose)
    terms = loss_fn(image, mask, pose, out, step=10, last_layer=model.decoder_last_layer(), discriminator=disc)
    assert {"g_loss", "feature_matching", "frequency", "adv_weight"} <= set(terms)
    assert terms["frequency"] > 0 and terms["feature_matching"] > 0
    terms["loss"].backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    d_terms = loss_fn.discriminator_loss(disc, image, mask, out)
    d_terms["d_loss"].backward()
    assert all(p.grad is not None for p in disc.parameters())
    with pytest.raises(ValueError, match="hinge' or 'lsgan"):
        LossConfig(adversarial_loss="wgan")
