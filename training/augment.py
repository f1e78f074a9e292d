"""Batch augmentation on tensors: flips and a random similarity warp (rotation, scale, shift).

Working on a whole uint8 batch at once keeps augmentation far cheaper than the forward pass on CPU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from affectstream.training.config import AugmentConfig


def random_affine(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Apply a per-sample random flip + similarity transform to a float NCHW batch."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(cfg.rotate)
    lo, hi = cfg.scale
    scale = lo + torch.rand(n, generator=gen) * (hi - lo)
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * cfg.translate * 2  # grid units span 2
    flip = torch.ones(n)
    if cfg.hflip:
        flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, shift[:, 0]], 1), torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1
    )
    # Random draws stay on the CPU generator (reproducible on any device); the warp runs where x lives.
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    # Border padding: zero padding would paint black wedges no aligned crop ever contains.
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_erase(x: torch.Tensor, prob: float, gen: torch.Generator) -> torch.Tensor:
    """Zero one random rectangle (up to a quarter of each side) in a fraction `prob` of the samples."""
    if prob <= 0:
        return x
    n, _, h, w = x.shape
    for i in torch.nonzero(torch.rand(n, generator=gen) < prob).flatten().tolist():
        eh, ew = (
            int(torch.randint(h // 8, h // 4 + 1, (1,), generator=gen)),
            int(torch.randint(w // 8, w // 4 + 1, (1,), generator=gen)),
        )
        y0 = int(torch.randint(0, h - eh + 1, (1,), generator=gen))
        x0 = int(torch.randint(0, w - ew + 1, (1,), generator=gen))
        x[i, :, y0 : y0 + eh, x0 : x0 + ew] = 0
    return x


def normalize(images_u8: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 NHWC -> float NCHW, (x / 255 - mean) / std: the engine-spec preprocessing contract."""
    x = images_u8.permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s
