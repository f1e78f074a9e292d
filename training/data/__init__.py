"""Dataset readers behind one factory: ``create_dataset(cfg, split)`` returns in-RAM ``Samples``."""

from __future__ import annotations

from collections.abc import Callable

from affectstream.training.data.base import Samples
from affectstream.training.errors import ConfigError


def _ferplus(cfg, split: str) -> Samples:
    from affectstream.training.config import resolve_path
    from affectstream.training.data.ferplus import load_ferplus

    return load_ferplus(
        resolve_path(cfg.root),
        split,
        cfg.input_size,
        cfg.colour,
        weak_va=cfg.weak_va,
        va_centroids=cfg.va_centroids,
    )


def _affectnet(cfg, split: str) -> Samples:
    from affectstream.training.config import resolve_path
    from affectstream.training.data.affectnet import load_affectnet

    return load_affectnet(
        resolve_path(cfg.root), split, cfg.input_size, cfg.colour, cfg.label_set, cfg.eye_level
    )


def _affwild2(cfg, split: str) -> Samples:
    from affectstream.training.config import resolve_path
    from affectstream.training.data.affwild2 import load_affwild2

    return load_affwild2(
        resolve_path(cfg.root), split, cfg.input_size, cfg.colour, cfg.frame_step, cfg.label_set
    )


def _afew_va(cfg, split: str) -> Samples:
    from affectstream.training.config import resolve_path
    from affectstream.training.data.afew_va import load_afew_va

    return load_afew_va(resolve_path(cfg.root), split, cfg.input_size, cfg.colour, cfg.label_set)


DATASETS: dict[str, Callable] = {
    "ferplus": _ferplus,
    "affectnet": _affectnet,
    "affwild2": _affwild2,
    "afew_va": _afew_va,
}


def create_dataset(cfg, split: str) -> Samples:
    """Load split `split` of the dataset named by ``cfg.dataset`` (a DataConfig)."""
    try:
        factory = DATASETS[cfg.dataset]
    except KeyError:
        raise ConfigError(f"unknown dataset {cfg.dataset!r}; choose one of {sorted(DATASETS)}") from None
    samples = factory(cfg, split)
    if cfg.limit > 0 and len(samples) > cfg.limit:
        import numpy as np

        samples = samples.subset(np.arange(cfg.limit))
    return samples
