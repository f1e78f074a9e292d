"""Losses: (soft or class-weighted) cross-entropy plus the CCC loss, each masked per sample."""

from __future__ import annotations

import torch
import torch.nn.functional as F

CE_MODES = ("soft", "weighted", "unweighted")


def ccc(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Concordance correlation coefficient of two 1-d tensors (population moments)."""
    pm, tm = pred.mean(), target.mean()
    pv, tv = pred.var(unbiased=False), target.var(unbiased=False)
    cov = ((pred - pm) * (target - tm)).mean()
    return 2 * cov / (pv + tv + (pm - tm) ** 2 + 1e-8)


def class_weights(counts: torch.Tensor) -> torch.Tensor:
    """w_c proportional to 1 / count_c, scaled to mean 1 (an absent class gets weight 0)."""
    counts = counts.float()
    w = torch.where(counts > 0, 1.0 / counts.clamp(min=1), torch.zeros_like(counts))
    return w * (w.numel() / w.sum())


def expression_loss(
    logits: torch.Tensor, dist: torch.Tensor, label: torch.Tensor, mode: str, weights: torch.Tensor | None
) -> torch.Tensor:
    """Cross-entropy over samples that have a category (label >= 0); 0 when none do.

    Args:
        logits: [N, C].
        dist: [N, C] target distributions (votes), used by mode "soft".
        label: [N] class index, -1 = missing.
        mode: "soft" (CE against dist), "weighted" (CE on label with class weights) or "unweighted".
        weights: [C] class weights for "weighted" (ignored otherwise).
    """
    if mode not in CE_MODES:
        from affectstream.training.errors import ConfigError

        raise ConfigError(f"loss.ce: {mode!r} is not allowed; allowed values: {CE_MODES}")
    mask = label >= 0
    if not mask.any():
        return logits.sum() * 0.0
    if mode == "soft":
        return -(dist[mask] * F.log_softmax(logits[mask], 1)).sum(1).mean()
    return F.cross_entropy(logits[mask], label[mask], weight=weights if mode == "weighted" else None)


def va_loss(va: torch.Tensor | None, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1 - (CCC_v + CCC_a) / 2 over samples with known valence/arousal; 0 when fewer than two."""
    if va is None or int(mask.sum()) < 2:
        return target.new_zeros(())
    v, t = va[mask], target[mask]
    return 1 - (ccc(v[:, 0], t[:, 0]) + ccc(v[:, 1], t[:, 1])) / 2
