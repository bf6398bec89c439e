"""Training losses, each aimed at the old project's blur.

- Reconstruction (L1 or MSE) weighted up inside the person mask and again around the face,
  found from the face landmarks, since faces were the blurriest part.
- Alpha-mask BCE, so generated people can be composited on any background.
- KL in fp32 with log-variance clamped (exp overflows in fp16), warmed up, with optional free
  bits, scaled per image dimension so `kl_weight` reads like the Laplace scale of an ELBO.
- Optional PatchGAN (hinge or least squares), switched on after a set step and ramped in, with
  Stable Diffusion's adaptive weight (ratio of the reconstruction and GAN gradients at the
  decoder's last layer). Its discriminator sees the pose condition too, so it also punishes a
  body that ignores the pose. Optionally pix2pixHD's: several scales, feature matching, and
  spectral norm in place of batch norm. It trains from scratch: nothing is downloaded.
- Optional focal frequency loss (Jiang et al. 2021): the spectrum difference, weighted up
  where it is largest, which is where L1 gives up on detail.
- Optional VGG16 perceptual loss, only from a weights file the user gives.

Every term is returned separately for logging; "loss" is what to back-propagate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from poseguide.heatmaps import NUM_CONDITION_CHANNELS, NUM_LIMB_GROUPS, PRESENT_CHANNEL
from poseguide.landmarks import FACE_LANDMARKS, NUM_LANDMARKS
from poseguide.model import LOGVAR_MAX, LOGVAR_MIN


@dataclass
class LossConfig:
    reconstruction: str = "l1"  # "l1" or "mse"
    person_weight: float = 2.0  # weight of pixels inside the person mask (background: 1)
    face_weight: float = 2.0  # extra weight at the face centre, falling off as a Gaussian
    face_radius: float = 1.5  # face blob radius, in units of the face landmarks' spread
    limb_weight: float = 2.0  # extra weight along the limbs: thin arms otherwise melt into the torso
    mask_weight: float = 0.5  # BCE between predicted alpha and the person mask
    pose_weight: float = 1.0  # the latent pose head: L1 on visible x, y plus BCE on visibility
    kl_weight: float = 0.05  # per image dimension; like the Laplace scale b of an ELBO
    kl_warmup_steps: int = 1000  # linear ramp from 0
    free_bits: float = 0.0  # nats per latent dimension that cost nothing (0: off)
    adversarial_weight: float = 0.0  # 0 turns the PatchGAN off
    adversarial_start_step: int = 2000
    adversarial_warmup_steps: int = 0  # linear ramp of the adversarial weight from the start step
    adversarial_loss: str = "hinge"  # "hinge" or "lsgan" (least squares)
    discriminator_channels: int = 64
    discriminator_layers: int = 3
    discriminator_scales: int = 1  # PatchGANs on the image halved 0, 1, ... times (pix2pixHD: 2-3)
    discriminator_spectral_norm: bool = False  # spectral norm on every conv instead of batch norm
    feature_matching_weight: float = 0.0  # L1 between D's features of real and generated (pix2pixHD: 10)
    discriminator_lr_scale: float = 1.0
    frequency_weight: float = 0.0  # focal frequency loss on RGB (0: off)
    frequency_alpha: float = 1.0  # how strongly the hardest frequencies are weighted up
    perceptual_weight: float = 0.0
    perceptual_weights: str | None = None  # a local torchvision VGG16 state dict (.pth)

    def __post_init__(self) -> None:
        if self.reconstruction not in ("l1", "mse"):
            raise ValueError(f"loss.reconstruction must be 'l1' or 'mse', got {self.reconstruction!r}")
        if self.adversarial_loss not in ("hinge", "lsgan"):
            raise ValueError(f"loss.adversarial_loss must be 'hinge' or 'lsgan', got {self.adversarial_loss!r}")
        if self.discriminator_scales < 1:
            raise ValueError(f"loss.discriminator_scales must be >= 1, got {self.discriminator_scales}")
        if self.perceptual_weight > 0 and not self.perceptual_weights:
            raise ValueError(
                "loss.perceptual_weight > 0 needs loss.perceptual_weights, a local VGG16 weights file "
                "(poseguide never downloads weights)"
            )

    def to_dict(self) -> dict:
        return asdict(self)


def face_weight_map(landmarks: torch.Tensor, size: int, radius_scale: float, threshold: float = 0.5) -> torch.Tensor:
    """(B, 33, >=4) crop-normalised poses -> (B, 1, size, size) Gaussian blob over each face.

    Centre: the mean of the visible face landmarks; radius: their spread times radius_scale
    (at least 2% of the crop). A face with fewer than 3 visible landmarks gets no weight.
    """
    face = landmarks[:, list(FACE_LANDMARKS)].float()
    visible = (face[..., 3] >= threshold).float()
    count = visible.sum(1)
    centre = (face[..., :2] * visible[..., None]).sum(1) / count.clamp_min(1)[:, None]
    spread = (((face[..., :2] - centre[:, None]) ** 2).sum(-1).sqrt() * visible).amax(1)
    radius = (spread * radius_scale).clamp_min(0.02)
    grid = (torch.arange(size, device=landmarks.device, dtype=torch.float32) + 0.5) / size
    dx2 = (grid[None, :] - centre[:, 0:1]) ** 2  # (B, S)
    dy2 = (grid[None, :] - centre[:, 1:2]) ** 2
    blob = torch.exp(-(dy2[:, :, None] + dx2[:, None, :]) / (2 * radius[:, None, None] ** 2))
    return (blob * (count >= 3).float()[:, None, None])[:, None]


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per latent dimension, (B, D), always in fp32."""
    mu, logvar = mu.float(), logvar.float().clamp(LOGVAR_MIN, LOGVAR_MAX)
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def elbo_bits_per_dim(image: torch.Tensor, rgb: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Negative ELBO of each RGB image in bits per dimension of its 8-bit pixels, (B,).

    The decoder's likelihood is a Laplace whose scale is set to its optimum for each image
    (the calibrated decoder of sigma-VAE, Rybkin et al. 2021), floored at half an 8-bit level.
    Continuous densities on [-1, 1] are moved to the 0-255 scale by the log(127.5) Jacobian.
    """
    err = (image.float() - rgb.float()).abs().flatten(1)
    dims = err.shape[1]
    scale = err.mean(1).clamp_min(1.0 / 255.0)
    nll = err.sum(1) / scale + dims * torch.log(2 * scale)
    kl = kl_per_dim(mu, logvar).sum(1)
    return ((nll + kl) / dims + math.log(127.5)) / math.log(2.0)


def latent_pose_loss(predicted: torch.Tensor, landmarks: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """How far the pose drawn from z is from the encoded person's: L1 on x, y of the visible
    landmarks, plus BCE of the predicted visibility against visible/hidden."""
    target = landmarks.float()
    visible = (target[..., 3] >= threshold).float()
    xy = ((predicted[..., :2] - target[..., :2]).abs().sum(-1) * visible).sum() / visible.sum().clamp_min(1)
    # With logits, a diverged (NaN) prediction gives a NaN loss, which the trainer stops on,
    # rather than an exception from binary_cross_entropy's range check.
    vis = F.binary_cross_entropy_with_logits(torch.logit(predicted[..., 3].float(), eps=1e-6), visible)
    return xy + 0.1 * vis


def focal_frequency_loss(pred: torch.Tensor, target: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Focal frequency loss (Jiang et al., ICCV 2021) of (B, C, H, W) images, whole-image patch.

    The squared distance between the two orthonormal 2-D spectra at each frequency, weighted
    by that distance to the power alpha, scaled to [0, 1] per image and channel and not
    back-propagated through: the frequencies the model gets most wrong (fine detail, for a
    VAE) count most. 0 for identical images.
    """
    diff = torch.fft.fft2(pred.float(), norm="ortho") - torch.fft.fft2(target.float(), norm="ortho")
    distance = diff.real.pow(2) + diff.imag.pow(2)
    weight = distance.sqrt().pow(alpha)
    weight = weight / weight.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    return (weight.detach() * distance).mean()


class PatchDiscriminator(nn.Module):
    """pix2pix/taming's N-layer PatchGAN on RGB + alpha; the pose condition joins after the
    first stride-2 conv, at half resolution, where the model renders it anyway.

    `forward` returns one list per scale (this is one scale): every block's activation, then
    the patch logits last, so feature matching and the multi-scale version share one shape.
    With `spectral_norm` every conv is spectrally normalised and batch norm is left out (SNGAN).
    """

    def __init__(self, channels: int = 64, layers: int = 3, cond_channels: int = NUM_CONDITION_CHANNELS,
                 spectral_norm: bool = False):
        super().__init__()
        conv = _spectral_conv if spectral_norm else nn.Conv2d
        self.first = nn.Sequential(conv(4, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2))
        body: list[nn.Module] = []  # flat, so the parameter names stay those of older checkpoints
        in_ch = channels + cond_channels
        mult = 1
        for n in range(1, layers + 1):
            mult = min(2**n, 8)
            stride = 2 if n < layers else 1
            body.append(conv(in_ch, channels * mult, 4, stride=stride, padding=1, bias=spectral_norm))
            if not spectral_norm:
                body.append(nn.BatchNorm2d(channels * mult))
            body.append(nn.LeakyReLU(0.2))
            in_ch = channels * mult
        body.append(conv(in_ch, 1, 4, stride=1, padding=1))
        self.body = nn.Sequential(*body)
        self.apply(_init_discriminator)

    def forward(self, rgb: torch.Tensor, alpha: torch.Tensor, cond: torch.Tensor) -> list[list[torch.Tensor]]:
        h = self.first(torch.cat([rgb, alpha.to(rgb.dtype)], dim=1))
        if cond.shape[-1] != h.shape[-1]:
            cond = F.interpolate(cond, size=h.shape[-2:], mode="bilinear", align_corners=False)
        h = torch.cat([h, cond.to(h.dtype)], dim=1)
        features = []
        for layer in self.body:
            h = layer(h)
            if isinstance(layer, nn.LeakyReLU):
                features.append(h)
        return [features + [h]]


class MultiScaleDiscriminator(nn.Module):
    """pix2pixHD's discriminator: the same PatchGAN at several scales, each on the image
    average-pooled once more, so coarse ones judge the whole figure and the first the texture."""

    def __init__(self, scales: int, channels: int = 64, layers: int = 3, spectral_norm: bool = False):
        super().__init__()
        self.scales = nn.ModuleList(
            PatchDiscriminator(channels, layers, spectral_norm=spectral_norm) for _ in range(scales)
        )

    def forward(self, rgb: torch.Tensor, alpha: torch.Tensor, cond: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for i, disc in enumerate(self.scales):
            if i > 0:
                rgb, alpha = (F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False) for x in (rgb, alpha))
            out += disc(rgb, alpha, cond)
        return out


def _spectral_conv(*args, **kwargs) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(nn.Conv2d(*args, **kwargs))


def _init_discriminator(module: nn.Module) -> None:
    if isinstance(module, nn.Conv2d) and not nn.utils.parametrize.is_parametrized(module):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class VGGPerceptual(nn.Module):
    """L1 between VGG16 features (relu1_2, relu2_2, relu3_3) from a local weights file."""

    LAYERS = (3, 8, 15)

    def __init__(self, weights_path: str):
        super().__init__()
        import torchvision

        path = Path(weights_path)
        if not path.is_file():
            raise FileNotFoundError(f"perceptual weights {path}: no such file")
        vgg = torchvision.models.vgg16(weights=None)
        state = torch.load(path, map_location="cpu", weights_only=True)
        vgg.load_state_dict(state)
        self.features = vgg.features[: self.LAYERS[-1] + 1].eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406])[None, :, None, None])
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225])[None, :, None, None])

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = torch.cat([x, y]).float()
        h = ((h + 1) / 2 - self.mean) / self.std
        loss = h.new_zeros(())
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.LAYERS:
                a, b = h.chunk(2)
                loss = loss + (a - b).abs().mean()
        return loss


class VAELoss(nn.Module):
    def __init__(self, config: LossConfig):
        super().__init__()
        self.config = config
        self.perceptual = VGGPerceptual(config.perceptual_weights) if config.perceptual_weight > 0 else None

    def kl_weight(self, step: int) -> float:
        warmup = self.config.kl_warmup_steps
        ramp = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
        return self.config.kl_weight * ramp

    def uses_discriminator(self, step: int) -> bool:
        return self.config.adversarial_weight > 0 and step >= self.config.adversarial_start_step

    def adversarial_ramp(self, step: int) -> float:
        """0 before the start step, then a linear warm-up to 1 over adversarial_warmup_steps."""
        if not self.uses_discriminator(step):
            return 0.0
        warmup = self.config.adversarial_warmup_steps
        return min(1.0, (step - self.config.adversarial_start_step + 1) / warmup) if warmup > 0 else 1.0

    def make_discriminator(self) -> nn.Module | None:
        cfg = self.config
        if cfg.adversarial_weight <= 0:
            return None
        if cfg.discriminator_scales == 1:  # the single PatchGAN keeps its parameter names
            return PatchDiscriminator(cfg.discriminator_channels, cfg.discriminator_layers,
                                      spectral_norm=cfg.discriminator_spectral_norm)
        return MultiScaleDiscriminator(cfg.discriminator_scales, cfg.discriminator_channels, cfg.discriminator_layers,
                                       spectral_norm=cfg.discriminator_spectral_norm)

    def pixel_weights(self, mask: torch.Tensor, landmarks: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Per-pixel weights: person x face x limbs. Limb weights come from the rendered
        condition, so samples whose condition was dropped get none (there is no pose to follow)."""
        weights = 1.0 + (self.config.person_weight - 1.0) * mask.float()
        if self.config.face_weight > 0:
            face = face_weight_map(landmarks, mask.shape[-1], self.config.face_radius)
            weights = weights * (1.0 + self.config.face_weight * face)
        if self.config.limb_weight > 0 and cond is not None:
            # Only a pose the user gave ("present" channel on) says where the real limbs are.
            given = cond[:, PRESENT_CHANNEL:PRESENT_CHANNEL + 1].float().amax((2, 3), keepdim=True)
            limbs = cond[:, NUM_LANDMARKS:NUM_LANDMARKS + NUM_LIMB_GROUPS].float().amax(1, keepdim=True) * given
            if limbs.shape[-1] != mask.shape[-1]:
                limbs = F.interpolate(limbs, size=mask.shape[-2:], mode="bilinear", align_corners=False)
            weights = weights * (1.0 + self.config.limb_weight * limbs)
        return weights

    def forward(
        self,
        image: torch.Tensor,
        mask: torch.Tensor,
        landmarks: torch.Tensor,
        out,
        step: int,
        last_layer: nn.Module | None = None,
        discriminator: nn.Module | None = None,
    ) -> dict[str, torch.Tensor]:
        """image (B,3,S,S) in [-1,1], mask (B,1,S,S) in [0,1], landmarks (B,33,4), out: CVAEOutput."""
        cfg = self.config
        rgb = out.rgb.float()
        diff = rgb - image.float()
        err = diff.abs() if cfg.reconstruction == "l1" else diff.pow(2)
        err = err.mean(1, keepdim=True)
        weights = self.pixel_weights(mask, landmarks, getattr(out, "cond", None))
        rec = (err * weights).sum() / weights.sum()
        mask_bce = F.binary_cross_entropy_with_logits(out.alpha_logits.float(), mask.float())

        kl_dims = kl_per_dim(out.mu, out.logvar)
        kl = kl_dims.sum(1).mean()
        if cfg.free_bits > 0:
            kl_for_loss = kl_dims.mean(0).clamp_min(cfg.free_bits).sum()
        else:
            kl_for_loss = kl
        num_dims = image[0].numel()
        kl_weight = self.kl_weight(step)

        nll = rec + cfg.mask_weight * mask_bce
        terms = {"rec": rec, "l1": diff.abs().mean(), "mask_bce": mask_bce, "kl": kl}
        if getattr(out, "pose", None) is not None and cfg.pose_weight > 0:
            pose_loss = latent_pose_loss(out.pose, landmarks)
            nll = nll + cfg.pose_weight * pose_loss
            terms["pose"] = pose_loss
        if self.perceptual is not None:
            perceptual = self.perceptual(rgb, image)
            nll = nll + cfg.perceptual_weight * perceptual
            terms["perceptual"] = perceptual
        if cfg.frequency_weight > 0:
            frequency = focal_frequency_loss(rgb, image, cfg.frequency_alpha)
            nll = nll + cfg.frequency_weight * frequency
            terms["frequency"] = frequency
        loss = nll + kl_weight * kl_for_loss / num_dims

        if discriminator is not None and self.uses_discriminator(step):
            fake = discriminator(out.rgb, torch.sigmoid(out.alpha_logits), out.cond)
            g_loss = sum(generator_adversarial_loss(scale[-1].float(), cfg.adversarial_loss) for scale in fake) / len(fake)
            adversarial = g_loss
            if cfg.feature_matching_weight > 0:
                with torch.no_grad():
                    real = discriminator(image, mask, out.cond)
                fm = feature_matching_loss(real, fake)
                adversarial = adversarial + cfg.feature_matching_weight * fm
                terms["feature_matching"] = fm
            adv_weight = self.adaptive_weight(nll, adversarial, last_layer) * cfg.adversarial_weight
            adv_weight = adv_weight * self.adversarial_ramp(step)
            loss = loss + adv_weight * adversarial
            terms["g_loss"] = g_loss
            terms["adv_weight"] = adv_weight
        terms["kl_weight"] = torch.tensor(kl_weight)
        terms["loss"] = loss
        return terms

    @staticmethod
    def adaptive_weight(nll: torch.Tensor, g_loss: torch.Tensor, last_layer: nn.Module | None) -> torch.Tensor:
        """Stable Diffusion's balance: ||d nll / dW|| / ||d g_loss / dW|| at the decoder's last
        layer, clamped to [0, 1e4]. Without a graph (e.g. evaluation) it falls back to 1."""
        if last_layer is None or not torch.is_grad_enabled() or not nll.requires_grad:
            return torch.tensor(1.0, device=nll.device)
        weight = last_layer.weight
        nll_grad = torch.autograd.grad(nll, weight, retain_graph=True)[0]
        g_grad = torch.autograd.grad(g_loss, weight, retain_graph=True)[0]
        ratio = nll_grad.norm() / (g_grad.norm() + 1e-4)
        return ratio.clamp(0.0, 1e4).detach()

    def discriminator_loss(
        self, discriminator: nn.Module, image: torch.Tensor, mask: torch.Tensor, out
    ) -> dict[str, torch.Tensor]:
        """Hinge or least-squares loss on real (image, mask) against the detached
        reconstruction, both with the condition the generator saw; averaged over scales."""
        cond = out.cond.detach()
        real = [scale[-1].float() for scale in discriminator(image, mask, cond)]
        fake = [scale[-1].float() for scale in
                discriminator(out.rgb.detach(), torch.sigmoid(out.alpha_logits.detach()), cond)]
        loss = sum(discriminator_adversarial_loss(r, f, self.config.adversarial_loss) for r, f in zip(real, fake))
        return {
            "d_loss": loss / len(real),
            "d_real": torch.stack([r.mean() for r in real]).mean().detach(),
            "d_fake": torch.stack([f.mean() for f in fake]).mean().detach(),
        }


def generator_adversarial_loss(logits_fake: torch.Tensor, kind: str) -> torch.Tensor:
    """What the generator minimises: hinge -D(fake), or least squares (D(fake) - 1)^2."""
    if kind == "lsgan":
        return (logits_fake - 1.0).pow(2).mean()
    return -logits_fake.mean()


def discriminator_adversarial_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor, kind: str) -> torch.Tensor:
    """What the discriminator minimises: hinge, or least squares with targets 1 (real) and 0 (fake)."""
    if kind == "lsgan":
        return 0.5 * ((logits_real - 1.0).pow(2).mean() + logits_fake.pow(2).mean())
    return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())


def feature_matching_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """pix2pixHD's feature matching: L1 between the discriminator's activations on the real
    and the generated image, every block of every scale (logits excluded), averaged."""
    pairs = [(r, f) for rs, fs in zip(real, fake) for r, f in zip(rs[:-1], fs[:-1])]
    return sum((f.float() - r.detach().float()).abs().mean() for r, f in pairs) / len(pairs)
