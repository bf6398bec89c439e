"""Can the model learn at all? On 16 real prepared samples the reconstruction loss must
fall at least five-fold within a few hundred CPU steps."""

import numpy as np
import pytest
import torch

from poseguide import hardware
from poseguide.dataset import PoseDataset, to_model_inputs
from poseguide.losses import LossConfig, VAELoss
from poseguide.model import PoseCVAE, preset


@pytest.mark.slow
def test_reconstruction_loss_falls_fivefold_on_16_real_samples(prepared_dataset):
    # The precision users get here: bf16 only where this CPU has it natively, fp32 otherwise.
    precision = hardware.choose_precision(hardware.detect("cpu"))
    torch.manual_seed(0)
    data = PoseDataset(prepared_dataset, np.arange(16))
    image, mask, landmarks = to_model_inputs(data.__getitems__(list(range(16))), "cpu", channels_last=precision.channels_last)
    model = PoseCVAE(preset("small", cond_dropout=0.0))
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
    loss_fn = VAELoss(LossConfig(kl_weight=1e-4, kl_warmup_steps=0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.99))

    history = []
    for step in range(400):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision.mixed_precision == "bf16"):
            out = model(image, mask, landmarks)
        terms = loss_fn(image, mask, landmarks, out, step)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        history.append(terms["rec"].item())
        if step >= 20 and history[0] / np.mean(history[-5:]) >= 5.0:
            break
    first, last = history[0], float(np.mean(history[-5:]))
    assert first / last >= 5.0, f"reconstruction loss only fell {first / last:.1f}x ({first:.4f} -> {last:.4f}) in {len(history)} steps"
