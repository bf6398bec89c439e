"""The conditional VAE: pose heatmaps go into the encoder and into every decoder stage.

Encoder: image, mask and pose condition -> a global latent z (mean, log-variance), so random
samples can come from N(0, I). Decoder: z goes up through the resolutions; at each stage the
condition, resized to that resolution, is concatenated in, and z also modulates every block
(FiLM), so appearance stays the same while the pose changes. Output: RGB plus an alpha mask.

Condition dropout replaces the condition with the null condition (all zeros, "pose present"
off) for a fraction of training samples, for encoder and decoder alike, so one model samples
both with and without a pose.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from poseguide import atomicfile
from poseguide.heatmaps import DEFAULT_SIGMA_FRACTION, NUM_CONDITION_CHANNELS, PRESENT_CHANNEL, render_condition
from poseguide.jsonfile import read_versioned_json

MODEL_FORMAT = "poseguide-model"
MODEL_FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
EXTRAS_NAME = "extras.safetensors"
CONFIG_NAME = "config.json"
# The small model pre-trained on synthetic people in many poses (scripts/build_pose_prior.sh),
# shipped in the package; `training.init_from: pose-prior` starts training from it.
POSE_PRIOR_NAME = "pose-prior"
POSE_PRIOR_DIR = Path(__file__).parent / "pose_prior"
# The posterior's log-variance is clamped wherever it is exponentiated (here, in the KL of
# losses.py and in evaluate), so a diverging encoder gives large but finite numbers.
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0


def posterior_std(logvar: torch.Tensor) -> torch.Tensor:
    """The posterior's standard deviation, in float32, from its (clamped) log-variance."""
    return torch.exp(0.5 * logvar.float().clamp(LOGVAR_MIN, LOGVAR_MAX))


class ModelLoadError(ValueError):
    """A model directory that cannot be loaded. The message is one line naming what is wrong."""


HEAD_UPSAMPLES = ("nearest", "subpixel")
# What saved model settings meant before their key existed: models saved before head_upsample
# used a sub-pixel head.
SAVED_DEFAULTS = {"head_upsample": "subpixel"}


@dataclass
class ModelConfig:
    """Architecture.

    The encoder's stem halves the image; then `channels` has one entry per stage, each at
    half the resolution of the one before, so the bottleneck is image_size / 2**(len+1).
    The decoder mirrors it and ends with a light full-resolution head. Full resolution is
    where a conv costs most, so little work is done there.
    """

    image_size: int = 128
    channels: tuple[int, ...] = (32, 64, 128, 256)
    encoder_blocks: int = 1  # residual blocks per encoder stage
    decoder_blocks: int = 1  # residual blocks per decoder stage
    head_channels: int = 16  # width of the full-resolution head
    # How the head reaches full resolution. "nearest": repeat each pixel 2x2, then convolve
    # (Odena et al. 2016). "subpixel": a conv predicts each 2x2 block (PixelShuffle), which an
    # adversarial loss pushes into a 2-pixel checkerboard on faces and edges. Same FLOPs; the
    # nearest head reads twice-sized inputs, so a CPU step costs 10-25% more.
    head_upsample: str = "nearest"
    latent_dim: int = 256
    condition_size: int = 64  # heatmaps are rendered here, then resized to every stage
    sigma_fraction: float = DEFAULT_SIGMA_FRACTION
    cond_dropout: float = 0.2  # PIDM uses 0.1, CFLD 0.2
    groups: int = 8  # GroupNorm groups
    # How the decoder gets its layout. "concat": z -> a linear layer -> the bottleneck map, and
    # the condition is concatenated into every block. "spade": the bottleneck map comes from the
    # condition alone and every block normalises its features and re-modulates them with a
    # scale and shift predicted per pixel from the condition (SPADE, Park et al. 2019), so the
    # pose gives the spatial structure at every scale and z only modulates (FiLM).
    decoder: str = "concat"
    spade_hidden: int = 16  # width of the condition's shared conv in each SPADE block
    # With no pose given, draw one from z with a small MLP and render it (flagged as not given
    # by the user). Random samples then get a body whose limbs the decoder knows how to draw,
    # instead of a shape the decoder must invent from z alone.
    latent_pose: bool = True
    pose_head_width: int = 256
    # The last `pose_latent_dim` entries of z feed only the pose head; the decoder sees the
    # rest (appearance). A random appearance then never carries a second, conflicting pose
    # into a posed sample.
    pose_latent_dim: int = 32
    # Random pose latents are drawn from a mixture of this many training samples' pose
    # posteriors, fitted at export. Poses lie on a thin curved manifold in latent space (the
    # posteriors' std is ~0.03 against a spread of ~0.75 on the sample data), and one Gaussian
    # over it draws averaged, legs-together poses: MediaPipe found a person in 0.74 of random
    # samples with it and 0.91 with this mixture, the same model and latents otherwise.
    pose_prior_components: int = 256

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        problem = size_problem(self.image_size, self.channels)
        if problem:
            raise ValueError(problem)
        if any(c % self.groups for c in self.channels):
            raise ValueError(f"every entry of channels {self.channels} must be divisible by groups={self.groups}")
        if not 0.0 <= self.cond_dropout < 1.0:
            raise ValueError(f"cond_dropout must be in [0, 1), got {self.cond_dropout}")
        if self.latent_pose and not 0 < self.pose_latent_dim < self.latent_dim:
            raise ValueError(f"pose_latent_dim must be in (0, latent_dim={self.latent_dim}), got {self.pose_latent_dim}")
        if self.head_upsample not in HEAD_UPSAMPLES:
            raise ValueError(f"head_upsample must be one of {', '.join(HEAD_UPSAMPLES)}, got {self.head_upsample!r}")
        if self.decoder not in ("concat", "spade"):
            raise ValueError(f"decoder must be 'concat' or 'spade', got {self.decoder!r}")
        if self.pose_prior_components < 1:
            raise ValueError(f"pose_prior_components must be >= 1, got {self.pose_prior_components}")

    @property
    def appearance_dim(self) -> int:
        """Entries of z the decoder sees: all of them unless a latent pose takes the last ones."""
        return self.latent_dim - self.pose_latent_dim if self.latent_pose else self.latent_dim

    @property
    def bottleneck_size(self) -> int:
        return self.image_size // 2 ** (len(self.channels) + 1)

    def stage_sizes(self) -> list[int]:
        """Resolution of each stage, from image_size / 2 down."""
        return [self.image_size // 2 ** (i + 1) for i in range(len(self.channels))]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["channels"] = list(self.channels)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(unknown)}")
        return cls(**data)


# Random latents are drawn at reduced temperature, as Glow (Kingma & Dhariwal 2018) and most
# VAE samplers do: the tails of the fitted latent Gaussian decode to muddled looks that
# MediaPipe cannot find. Measured on the README's small model (README "Results"); generate
# and evaluate take --temperature 1 for the full spread.
DEFAULT_TEMPERATURE = 0.7

# The three sizes the configs build on. `small` trains in minutes on a 2-core CPU and is the
# README's default; `base` is for one GPU; `large` works at 256 px.
MODEL_PRESETS: dict[str, dict] = {
    # small: the encoder is strided convs only (encoder_blocks=0), so the CPU time goes to the
    # decoder, which is where sample quality is made.
    "small": dict(image_size=128, channels=(32, 64, 128, 256), encoder_blocks=0, decoder_blocks=1,
                  head_channels=16, latent_dim=256, condition_size=64),
    "base": dict(image_size=128, channels=(64, 128, 256, 512), encoder_blocks=2, decoder_blocks=2,
                 head_channels=32, latent_dim=512, condition_size=64),
    "large": dict(image_size=256, channels=(64, 128, 256, 512, 512), encoder_blocks=2, decoder_blocks=2,
                  head_channels=32, latent_dim=512, condition_size=128),
}


def size_problem(image_size: int, channels: tuple[int, ...]) -> str | None:
    """Why a model with these stages cannot take images of `image_size` px, or None. The encoder
    halves the image once in its stem and once per stage, so the size must be a multiple of
    2**(stages + 1): 32 for the small and base presets' four stages, 64 for large's five."""
    step = 2 ** (len(channels) + 1)
    if image_size % step == 0:
        return None
    presets = [name for name, p in MODEL_PRESETS.items() if len(p["channels"]) == len(channels)]
    like = f" (as the {' and '.join(presets)} preset{'s' if len(presets) > 1 else ''})" if presets else ""
    below = image_size // step * step
    near = " or ".join(str(s) for s in (below, below + step) if s > 0)
    return f"image_size {image_size} does not fit {len(channels)} stages of channels{like}: it must be a multiple of {step}, e.g. {near}"


def preset(name: str, **overrides) -> ModelConfig:
    if name not in MODEL_PRESETS:
        raise ValueError(f"unknown model size {name!r}; choose one of {', '.join(MODEL_PRESETS)}")
    return ModelConfig(**{**MODEL_PRESETS[name], **overrides})


class CVAEOutput(NamedTuple):
    rgb: torch.Tensor  # (B, 3, S, S) in [-1, 1]
    alpha_logits: torch.Tensor  # (B, 1, S, S)
    mu: torch.Tensor  # (B, D)
    logvar: torch.Tensor  # (B, D)
    z: torch.Tensor  # (B, D)
    present: torch.Tensor  # (B,) bool, after condition dropout
    cond: torch.Tensor  # (B, C, c, c) the condition the decoder saw, at condition_size
    pose: torch.Tensor | None = None  # (B, 33, 4) the pose drawn from z (latent_pose), else None


class ResBlock(nn.Module):
    """Residual block with one GroupNorm (norms are slow on CPUs, convs less so).

    The pose condition is concatenated to the block's input, and z scales and shifts the
    normalised features (FiLM), so appearance reaches every resolution. The residual branch
    starts at zero (a learned gain, as in ReZero), so deep stacks train from the first step.
    """

    def __init__(self, channels: int, cond_ch: int, latent_dim: int, groups: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels + cond_ch, channels, 3, padding=1)
        self.norm = nn.GroupNorm(groups, channels)
        self.film = nn.Linear(latent_dim, 2 * channels) if latent_dim else None
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.gain = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None, z: torch.Tensor | None = None) -> torch.Tensor:
        h = F.silu(x)
        if cond is not None:
            h = torch.cat([h, cond.to(h.dtype)], dim=1)
        h = self.norm(self.conv1(h))
        if self.film is not None:
            scale, shift = self.film(z).to(h.dtype)[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift
        h = self.conv2(F.silu(h))
        return x + self.gain * h


class SpadeBlock(nn.Module):
    """Residual block whose normalisation is modulated per pixel by the pose (SPADE) and per
    sample by z (FiLM): the layout can only come from the condition, the look only from z."""

    def __init__(self, channels: int, cond_ch: int, latent_dim: int, groups: int, hidden: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, affine=False)
        self.cond_shared = nn.Conv2d(cond_ch, hidden, 3, padding=1)
        self.cond_scale_shift = nn.Conv2d(hidden, 2 * channels, 3, padding=1)
        self.film = nn.Linear(latent_dim, 2 * channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.gain = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, cond: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        scale, shift = self.cond_scale_shift(F.silu(self.cond_shared(cond.to(h.dtype)))).chunk(2, dim=1)
        h = h * (1 + scale) + shift
        z_scale, z_shift = self.film(z).to(h.dtype)[:, :, None, None].chunk(2, dim=1)
        h = h * (1 + z_scale) + z_shift
        h = self.conv2(F.silu(self.conv1(F.silu(h))))
        return x + self.gain * h


class PoseHead(nn.Module):
    """z -> a pose (33 x: x, y, z=0, visibility). Trained to predict the encoded person's
    landmarks, so z ~ N(0, I) maps to a plausible body for unposed samples."""

    def __init__(self, latent_dim: int, width: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(), nn.Linear(width, 33 * 3)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.net(z.float()).view(-1, 33, 3).float()
        xy = out[..., :2] + 0.5  # crop coordinates; the crop centres the person
        visibility = torch.sigmoid(out[..., 2:])
        return torch.cat([xy, torch.zeros_like(visibility), visibility], dim=-1)


class Encoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        ch = config.channels
        # A 4x4 stride-2 stem on RGB + mask, then the condition joins at half resolution, where
        # it is rendered: nothing of width 40+ ever exists at full resolution.
        self.stem = nn.Conv2d(3 + 1, ch[0], 4, stride=2, padding=1)
        self.cond_in = nn.Conv2d(ch[0] + NUM_CONDITION_CHANNELS, ch[0], 3, padding=1)
        self.stages = nn.ModuleList()
        for i, c in enumerate(ch):
            out = ch[min(i + 1, len(ch) - 1)]
            blocks = [ResBlock(c, 0, 0, config.groups) for _ in range(config.encoder_blocks)]
            down = nn.Conv2d(c, out, 3, stride=2, padding=1)
            self.stages.append(nn.ModuleDict({"blocks": nn.ModuleList(blocks), "down": down}))
        self.norm_out = nn.GroupNorm(config.groups, ch[-1])
        self.to_latent = nn.Linear(ch[-1] * config.bottleneck_size**2, 2 * config.latent_dim)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.silu(self.stem(x))
        h = self.cond_in(torch.cat([h, cond.to(h.dtype)], dim=1))
        for stage in self.stages:
            for block in stage["blocks"]:
                h = block(h)
            h = stage["down"](h)
        h = F.silu(self.norm_out(h))
        mu, logvar = self.to_latent(h.flatten(1)).chunk(2, dim=1)
        return mu, logvar


class Decoder(nn.Module):
    """z -> bottleneck map -> one stage per resolution (coarsest first), each seeing the pose
    condition at its own size -> a light head to full resolution."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        ch = config.channels
        cond_ch = NUM_CONDITION_CHANNELS
        self.bottleneck_size = config.bottleneck_size
        self.spade = config.decoder == "spade"
        if self.spade:
            # The bottleneck map is drawn from the pose alone (plus a learned constant).
            self.from_condition = nn.Conv2d(cond_ch, ch[-1], 3, padding=1)
            self.start = nn.Parameter(torch.zeros(1, ch[-1], config.bottleneck_size, config.bottleneck_size))
        else:
            self.from_latent = nn.Linear(config.appearance_dim, ch[-1] * config.bottleneck_size**2)
        # Stage i works at stage_sizes()[i]; they run from the deepest (bottleneck x 2) up.
        self.stages = nn.ModuleList()
        self.changes = nn.ModuleList()
        in_ch = ch[-1]
        for c in reversed(ch):
            self.changes.append(nn.Conv2d(in_ch + cond_ch, c, 1))
            if self.spade:
                blocks = [SpadeBlock(c, cond_ch, config.appearance_dim, config.groups, config.spade_hidden)
                          for _ in range(config.decoder_blocks)]
            else:
                blocks = [ResBlock(c, cond_ch, config.appearance_dim, config.groups) for _ in range(config.decoder_blocks)]
            self.stages.append(nn.ModuleList(blocks))
            in_ch = c
        self.norm_out = nn.GroupNorm(config.groups, in_ch)
        # Full resolution: the last stage's features and condition become head_channels
        # features at twice the size, and one small conv turns them into RGBA.
        if config.head_upsample == "nearest":
            upsample = [nn.Upsample(scale_factor=2.0, mode="nearest"),
                        nn.Conv2d(in_ch + cond_ch, config.head_channels, 3, padding=1)]
        else:
            upsample = [nn.Conv2d(in_ch + cond_ch, 4 * config.head_channels, 3, padding=1), nn.PixelShuffle(2)]
        self.head = nn.Sequential(
            *upsample,
            nn.SiLU(),
            nn.Conv2d(config.head_channels, 4, 3, padding=1),
        )

    def forward(self, z: torch.Tensor, cond_pyramid: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """cond_pyramid: the condition at the bottleneck (None unless SPADE) and at each stage
        size, deepest first."""
        bottleneck_cond, cond_pyramid = cond_pyramid[0], cond_pyramid[1:]
        if self.spade:
            h = self.start + self.from_condition(bottleneck_cond)
        else:
            h = self.from_latent(z).view(z.shape[0], -1, self.bottleneck_size, self.bottleneck_size)
        for change, blocks, cond in zip(self.changes, self.stages, cond_pyramid):
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = change(torch.cat([h, cond.to(h.dtype)], dim=1))
            for block in blocks:
                h = block(h, cond, z)
        h = F.silu(self.norm_out(h))
        out = self.head(torch.cat([h, cond_pyramid[-1].to(h.dtype)], dim=1))
        return torch.tanh(out[:, :3]), out[:, 3:]


class PoseCVAE(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.latent_dim = config.latent_dim
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.pose_head = PoseHead(config.pose_latent_dim, config.pose_head_width) if config.latent_pose else None
        # Random latents are drawn as noise ~ N(0, I) and mapped through this Gaussian, which
        # `fit_latent_prior` sets to the aggregate posterior of the training set at export.
        # Identity until then. (A VAE's posteriors never fill N(0, I) exactly; decoding from
        # its holes gives the shapeless blobs unposed samples otherwise show.) With a latent
        # pose, its pose entries come from a mixture of training pose posteriors instead.
        self.register_buffer("prior_mean", torch.zeros(config.latent_dim))
        self.register_buffer("prior_scale_tril", torch.eye(config.latent_dim))
        if config.latent_pose:
            self.register_buffer("pose_prior_mean", torch.zeros(config.pose_prior_components, config.pose_latent_dim))
            self.register_buffer("pose_prior_std", torch.ones(config.pose_prior_components, config.pose_latent_dim))

    # --- condition -------------------------------------------------------------------------
    def condition(self, landmarks: torch.Tensor | None, present: torch.Tensor | None = None, batch_size: int | None = None) -> torch.Tensor:
        """Heatmaps at `condition_size` on the model's device; None -> the null condition."""
        device = next(self.parameters()).device
        if landmarks is not None:
            landmarks = landmarks.to(device)
        return render_condition(
            landmarks, self.config.condition_size, present, self.config.sigma_fraction, batch_size, device
        )

    def _pyramid(self, cond: torch.Tensor) -> list[torch.Tensor | None]:
        """The condition resized to the bottleneck (only the SPADE decoder reads it: None
        otherwise) and to each decoder resolution, coarsest first (area averaging down, bilinear up)."""

        def level(size: int) -> torch.Tensor:
            if size == cond.shape[-1]:
                return self._like_features(cond)
            if size < cond.shape[-1]:
                return self._like_features(F.adaptive_avg_pool2d(cond, size))
            return self._like_features(F.interpolate(cond, size=(size, size), mode="bilinear", align_corners=False))

        bottleneck = level(self.config.bottleneck_size) if self.decoder.spade else None
        return [bottleneck] + [level(size) for size in reversed(self.config.stage_sizes())]

    def _like_features(self, x: torch.Tensor) -> torch.Tensor:
        """Match the features' dtype and memory layout once, so every torch.cat with the
        condition is a plain copy instead of a layout conversion (measured: 20% of a CPU step)."""
        channels_last = self.decoder.head[-1].weight.is_contiguous(memory_format=torch.channels_last)
        dtype = x.dtype
        if torch.is_autocast_enabled(x.device.type):
            dtype = torch.get_autocast_dtype(x.device.type)
        return x.to(dtype=dtype, memory_format=torch.channels_last if channels_last else torch.contiguous_format)

    # --- encode / decode --------------------------------------------------------------------
    def encode(self, image: torch.Tensor, mask: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.config.stage_sizes()[0]
        if cond.shape[-1] != size:
            cond = F.interpolate(cond, size=(size, size), mode="bilinear", align_corners=False)
        return self.encoder(torch.cat([image, mask.to(image.dtype)], dim=1), self._like_features(cond))

    def decode_condition(self, z: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decoder(z[:, : self.config.appearance_dim], self._pyramid(cond))

    def _render_unposed(self, cond: torch.Tensor, pose: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Fill the rows without a given pose with `pose`, rendered with its "present" channel
        at 0 so the decoder can tell it from a pose the user gave. Unposed samples are decoded in
        the pose drawn from z; while training, dropped rows in their true pose (teacher forcing),
        so the decoder learns to draw bodies in that mode from the first step while the pose
        head learns to give it poses."""
        if bool(present.all()):
            return cond
        rendered = render_condition(pose.detach().float(), cond.shape[-1], None, self.config.sigma_fraction)
        rendered[:, PRESENT_CHANNEL] = 0
        return torch.where(present[:, None, None, None], cond, rendered.to(cond.dtype))

    def decode(
        self, z: torch.Tensor, landmarks: torch.Tensor | None = None, present: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """z (B, D) and a pose (B, 33, 4) in crop coordinates, or None for unposed samples."""
        batch = z.shape[0]
        cond = self.condition(landmarks, present, batch_size=batch)
        if landmarks is None:
            present = torch.zeros(batch, dtype=torch.bool, device=z.device)
        elif present is None:
            present = torch.ones(batch, dtype=torch.bool, device=z.device)
        if self.pose_head is not None and not bool(present.all()):
            cond = self._render_unposed(cond, self.draw_pose(z), present)
        return self.decode_condition(z, cond)

    def draw_pose(self, z: torch.Tensor) -> torch.Tensor | None:
        """The pose an unposed sample from z is drawn in, (B, 33, 4) in crop coordinates."""
        return None if self.pose_head is None else self.pose_head(z[:, self.config.appearance_dim:])

    def forward(
        self,
        image: torch.Tensor,
        mask: torch.Tensor,
        landmarks: torch.Tensor,
        present: torch.Tensor | None = None,
        cond_dropout: float = 0.0,
        sample_posterior: bool = True,
        generator: torch.Generator | None = None,
    ) -> CVAEOutput:
        batch = image.shape[0]
        device = image.device
        if present is None:
            present = torch.ones(batch, dtype=torch.bool, device=device)
        if cond_dropout > 0:
            keep = torch.rand(batch, device=device, generator=generator) >= cond_dropout
            present = present & keep
        cond = self.condition(landmarks, present)
        mu, logvar = self.encode(image, mask, cond)
        if sample_posterior:
            std = posterior_std(logvar)
            noise = torch.randn(mu.shape, device=device, generator=generator, dtype=torch.float32)
            z = mu.float() + std * noise
        else:
            z = mu.float()
        pose = self.draw_pose(z)
        decoder_cond = cond if self.pose_head is None else self._render_unposed(cond, landmarks, present)
        rgb, alpha_logits = self.decode_condition(z, decoder_cond)
        return CVAEOutput(rgb, alpha_logits, mu, logvar, z, present, decoder_cond, pose)

    # --- the latent prior -------------------------------------------------------------------
    def latent_from_noise(self, noise: torch.Tensor, pick: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """noise ~ N(0, I) (B, D) and pick ~ U[0, 1) (B,) -> latents from the model's prior,
        scaled by temperature around their centre. Appearance entries go through the fitted
        Gaussian; pose entries through the mixture component `pick` chooses."""
        noise = noise.to(self.prior_mean.device, torch.float32)
        z = self.prior_mean + temperature * noise @ self.prior_scale_tril.T
        if self.pose_head is not None:
            a, k = self.config.appearance_dim, len(self.pose_prior_mean)
            component = (pick.to(noise.device) * k).long().clamp_(0, k - 1)
            pose = self.pose_prior_mean[component] + temperature * self.pose_prior_std[component] * noise[:, a:]
            z = torch.cat([z[:, :a], pose], dim=1)
        return z

    def sample_latent(self, num: int, generator: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
        """`num` latents from the prior on the model's device. Each row draws its noise and
        mixture pick in turn from the (CPU) generator, so row i is the same whatever `num` is."""
        rows = [(torch.randn(self.latent_dim, generator=generator), torch.rand(1, generator=generator)) for _ in range(num)]
        if not rows:
            return torch.zeros(0, self.latent_dim, device=self.prior_mean.device)
        return self.latent_from_noise(torch.stack([n for n, _ in rows]), torch.cat([p for _, p in rows]), temperature)

    @torch.no_grad()
    def fit_latent_prior(self, mu: torch.Tensor, logvar: torch.Tensor, shrinkage: float = 0.01) -> None:
        """Set the prior to the Gaussian closest to the aggregate posterior: the mean and
        covariance of the posterior means, plus the mean posterior variance on the diagonal
        (the covariance of the mixture), shrunk slightly towards its diagonal so a few thousand
        samples give a well-conditioned estimate ("ex-post density estimation", Ghosh et al.
        2020; a single Gaussian instead of their mixture). With a latent pose, the pose entries
        get a mixture of `pose_prior_components` of the posteriors instead (see ModelConfig)."""
        mu = mu.double()
        mean = mu.mean(0)
        centred = mu - mean
        cov = centred.T @ centred / max(len(mu) - 1, 1)
        cov = cov + torch.diag(logvar.double().clamp(LOGVAR_MIN, LOGVAR_MAX).exp().mean(0))
        cov = (1 - shrinkage) * cov + shrinkage * torch.diag(torch.diagonal(cov))
        cov = cov + 1e-6 * torch.eye(len(mean), dtype=cov.dtype)
        self.prior_mean.copy_(mean.float())
        self.prior_scale_tril.copy_(torch.linalg.cholesky(cov).float())
        if self.pose_head is not None:
            # The pose mixture: evenly spread posteriors, each a component with its own spread.
            a, k = self.config.appearance_dim, len(self.pose_prior_mean)
            picks = torch.linspace(0, len(mu) - 1, k).round().long().to(mu.device)
            self.pose_prior_mean.copy_(mu[picks, a:].float())
            self.pose_prior_std.copy_(posterior_std(logvar[picks, a:]))

    @torch.no_grad()
    def posteriors(self, image: torch.Tensor, mask: torch.Tensor, landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior (mu, logvar) of each sample encoded twice, with its pose and with the null
        condition: the two ways the decoder is used, so the fitted prior serves both."""
        present = torch.ones(len(image), dtype=torch.bool, device=image.device)
        mus, logvars = [], []
        for flags in (present, ~present):
            mu, logvar = self.encode(image, mask, self.condition(landmarks, flags))
            mus.append(mu.float())
            logvars.append(logvar.float())
        return torch.cat(mus), torch.cat(logvars)

    def decoder_last_layer(self) -> nn.Module:
        return self.decoder.head[-1]

    # --- save / load -----------------------------------------------------------------------
    def save_pretrained(
        self,
        directory: str | os.PathLike,
        extra_config: dict | None = None,
        extra_tensors: dict[str, torch.Tensor] | None = None,
    ) -> Path:
        """Write model.safetensors + config.json (+ extras.safetensors). Every file is written
        under a temp name (atomicfile) and renamed only once all of them are complete, config.json
        last: a failure part way, such as a full disk, leaves a previous model here as it was."""
        directory = Path(directory)
        made = not directory.exists()
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        config = {"format": MODEL_FORMAT, "version": MODEL_FORMAT_VERSION, "model": self.config.to_dict()}
        config.update(extra_config or {})
        extras = {k: torch.as_tensor(v).detach().cpu().contiguous() for k, v in (extra_tensors or {}).items()}
        names = (CONFIG_NAME, WEIGHTS_NAME, EXTRAS_NAME) if extras else (CONFIG_NAME, WEIGHTS_NAME)
        try:
            with contextlib.ExitStack() as stack:  # commits in reverse order of entry
                tmp = {name: stack.enter_context(atomicfile.atomic_path(directory / name)) for name in names}
                save_file(state, str(tmp[WEIGHTS_NAME]), metadata={"format": "pt"})
                if extras:
                    save_file(extras, str(tmp[EXTRAS_NAME]))
                tmp[CONFIG_NAME].write_text(json.dumps(config, indent=2) + "\n")
        except BaseException:
            if made:
                with contextlib.suppress(OSError):
                    directory.rmdir()
            raise
        if not extras:  # an older save's extras would describe another model
            (directory / EXTRAS_NAME).unlink(missing_ok=True)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str | torch.device = "cpu") -> "PoseCVAE":
        directory = Path(directory)
        config = read_model_config(directory)
        try:
            check_architecture(config["model"])
            model_config = ModelConfig.from_dict({**SAVED_DEFAULTS, **config["model"]})
        except (TypeError, ValueError) as err:
            raise ModelLoadError(f"{directory / CONFIG_NAME}: bad model config ({err})") from None
        model = cls(model_config)
        weights = directory / WEIGHTS_NAME
        if not weights.is_file():
            raise ModelLoadError(f"{weights}: missing (a model directory holds {WEIGHTS_NAME} and {CONFIG_NAME})")
        try:
            state = load_file(str(weights), device=str(map_location))
        except (SafetensorError, OSError, ValueError) as err:
            raise ModelLoadError(f"{weights}: unreadable or truncated safetensors file ({err})") from None
        missing, unexpected = _state_mismatch(model.state_dict(), state)
        if missing or unexpected:
            raise ModelLoadError(
                f"{weights}: weights do not match config.json "
                f"({len(missing)} missing, e.g. {missing[:1]}; {len(unexpected)} unexpected, e.g. {unexpected[:1]})"
            )
        model.load_state_dict(state, strict=True)
        return model.eval()


# Sane ranges of the architecture numbers a model's config.json may hold: the presets use a
# fraction of each, and a file beyond them would build a model of hundreds of GB before its
# weights could be found not to match.
ARCHITECTURE_LIMITS: dict[str, tuple[int, int]] = {
    "image_size": (8, 2048),
    "encoder_blocks": (0, 16),
    "decoder_blocks": (0, 16),
    "head_channels": (1, 1024),
    "latent_dim": (1, 8192),
    "condition_size": (4, 1024),
    "groups": (1, 512),
    "pose_head_width": (1, 8192),
    "pose_latent_dim": (0, 8192),
    "pose_prior_components": (1, 65536),
}
CHANNELS_LIMITS = (1, 4096)  # each stage's width
MAX_STAGES = 8


def architecture_differences(ours: ModelConfig, saved: dict) -> dict:
    """The model settings in which a saved model section (config.json's or a run's config.yaml's)
    differs from `ours`, so its weights cannot fit, each with its saved value (SAVED_DEFAULTS
    where the section predates the key), in name order; cond_dropout is a training setting."""
    saved = {**SAVED_DEFAULTS, **saved}
    mine = ours.to_dict()
    return {k: saved.get(k) for k in sorted(mine) if k != "cond_dropout" and mine[k] != saved.get(k)}


def check_architecture(data: dict) -> None:
    """Refuse architecture numbers outside ARCHITECTURE_LIMITS (ValueError, one line)."""
    def whole(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    for key, (lo, hi) in ARCHITECTURE_LIMITS.items():
        if key in data and not (whole(data[key]) and lo <= data[key] <= hi):
            raise ValueError(f"{key} must be a whole number in [{lo}, {hi}], got {_short(data[key])}")
    if "channels" in data:
        channels = data["channels"]
        lo, hi = CHANNELS_LIMITS
        if (
            not isinstance(channels, list)
            or not 1 <= len(channels) <= MAX_STAGES
            or not all(whole(c) and lo <= c <= hi for c in channels)
        ):
            raise ValueError(f"channels must be a list of 1-{MAX_STAGES} whole numbers in [{lo}, {hi}], got {_short(channels)}")


def _short(value: object, limit: int = 60) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _state_mismatch(expected: dict, found: dict) -> tuple[list[str], list[str]]:
    missing = [k for k in expected if k not in found or found[k].shape != expected[k].shape]
    unexpected = [k for k in found if k not in expected]
    return missing, unexpected


def read_model_config(directory: str | os.PathLike) -> dict:
    """config.json of a model directory, checked for format and version."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelLoadError(f"{directory}: no such model directory")
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise ModelLoadError(f"{path}: missing (a model directory holds {WEIGHTS_NAME} and {CONFIG_NAME})")
    config = read_versioned_json(path, MODEL_FORMAT, MODEL_FORMAT_VERSION, "model config", ModelLoadError)
    if not isinstance(config.get("model"), dict):
        raise ModelLoadError(f"{path}: has no 'model' section")
    return config


def load_extras(directory: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor]]:
    """The extra config entries and tensors saved beside the weights (e.g. training poses)."""
    directory = Path(directory)
    config = read_model_config(directory)
    extra_config = {k: v for k, v in config.items() if k not in ("format", "version", "model")}
    path = directory / EXTRAS_NAME
    tensors: dict[str, torch.Tensor] = {}
    if path.is_file():
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as err:
            raise ModelLoadError(f"{path}: unreadable or truncated safetensors file ({err})") from None
    return extra_config, tensors


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_image(model: PoseCVAE) -> dict[str, int]:
    """FLOPs of one encode + decode (and of decode alone, which is what generation costs),
    counted by torch's FlopCounterMode (a multiply-add counts as 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    size = model.config.image_size
    device = next(model.parameters()).device
    image = torch.zeros(1, 3, size, size, device=device)
    mask = torch.zeros(1, 1, size, size, device=device)
    landmarks = torch.rand(1, 33, 4, device=device)
    with torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            model(image, mask, landmarks, sample_posterior=False)
        total = counter.get_total_flops()
        z = torch.zeros(1, model.latent_dim, device=device)
        with FlopCounterMode(display=False) as counter:
            model.decode(z, landmarks)
        decode = counter.get_total_flops()
    return {"forward": int(total), "decode": int(decode)}
