"""The training loop: preloaded uint8 batches, tensor augmentation, per-epoch checkpoints, resume.

``train(recipe, out_dir)`` writes ``recipe.yaml`` (the resolved recipe), ``last.pt`` (every epoch, for
resume), ``best.pt`` (best validation accuracy) and ``log.jsonl`` (one line of metrics per epoch).
With ``loss.distill_weight`` > 0 the soft targets mix in ``data.teacher`` (``training.distill``).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from affectstream.training.augment import normalize, random_affine, random_erase
from affectstream.training.build import build_model
from affectstream.training.checkpoint import load_checkpoint, save_checkpoint
from affectstream.training.config import Recipe, recipe_to_dict
from affectstream.training.data import create_dataset
from affectstream.training.data.base import Samples
from affectstream.training.distill import distill_targets
from affectstream.training.evaluate import evaluate_samples
from affectstream.training.losses import class_weights, expression_loss, va_loss


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


SCHEDULES = ("cosine", "constant", "step")


def lr_at(
    step: int,
    total: int,
    warmup: int,
    base: float,
    schedule: str,
    time_frac: float = 0.0,
    epoch: int = 0,
    step_epochs: int = 10,
    step_gamma: float = 0.1,
) -> float:
    """Linear warm-up, then cosine decay to 0, constant, or step decay by epoch (torch's StepLR).

    ``time_frac`` (elapsed / time budget) pulls the cosine forward when the run is slower than planned.
    ``epoch`` (0-based) drives "step": base * step_gamma ** (epoch // step_epochs).
    """
    if schedule not in SCHEDULES:
        from affectstream.training.errors import ConfigError

        raise ConfigError(f"optim.schedule: {schedule!r} is not allowed; allowed values: {SCHEDULES}")
    if step < warmup:
        return base * (step + 1) / warmup
    if schedule == "constant":
        return base
    if schedule == "step":
        return base * step_gamma ** (epoch // max(1, step_epochs))
    progress = max((step - warmup) / max(1, total - warmup), time_frac)
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    o = recipe.optim
    # No weight decay on norms and biases unless asked for: decaying them only hurts from-scratch training.
    decay = [p for p in model.parameters() if p.ndim > 1 or o.decay_norms]
    no_decay = [p for p in model.parameters() if p.ndim <= 1 and not o.decay_norms]
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if o.name == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov)
    if o.name == "adamw":
        return torch.optim.AdamW(groups, lr=o.lr)
    from affectstream.training.errors import ConfigError

    raise ConfigError(f"optim.name {o.name!r} is not one of ['sgd', 'adamw']")


def _batch(samples: Samples, idx: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
    t = torch.from_numpy
    return {
        "images": t(samples.images[idx]).to(device),
        "label": t(samples.label[idx]).to(device),
        "dist": t(samples.dist[idx]).to(device),
        "va": t(samples.va[idx]).to(device),
        "va_mask": t(samples.va_mask[idx]).to(device),
    }


def train(recipe: Recipe, out_dir: str | Path, resume: bool = True, progress: bool = True) -> dict:  # noqa: PLR0915 (the training loop; to be split (issue 26))
    """Train (or resume) one recipe; returns the best validation report."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(recipe.seed)
    np.random.seed(recipe.seed)
    if recipe.threads > 0:
        torch.set_num_threads(recipe.threads)
    device = pick_device(recipe.device)
    _save_recipe(recipe, out_dir)
    last = out_dir / "last.pt"
    resuming = resume and last.exists()

    train_set = create_dataset(recipe.data, recipe.data.train_split)
    # loss.distill_weight > 0: dist becomes (1 - w) * votes + w * data.teacher (reloaded on resume too).
    train_set = distill_targets(train_set, recipe)
    val_set = create_dataset(recipe.data, recipe.data.val_split)
    # The backbone's pretrained weights only seed a new run; a resumed or warm-started one has its own.
    fresh = not resuming and not recipe.init_checkpoint
    model = build_model(recipe, pretrained=fresh).to(device).to(memory_format=torch.channels_last)
    opt = make_optimizer(model, recipe)
    counts = torch.from_numpy(
        np.bincount(train_set.label[train_set.label >= 0], minlength=train_set.label_set.num_classes)
    )
    weights = class_weights(counts).to(device) if recipe.loss.ce == "weighted" else None

    o = recipe.optim
    steps_per_epoch = max(1, len(train_set) // o.batch_size)
    total = steps_per_epoch * o.epochs if o.max_steps <= 0 else min(o.max_steps, steps_per_epoch * o.epochs)
    warmup = int(o.warmup_epochs * steps_per_epoch)
    start_epoch, step, best, elapsed = 0, 0, {"accuracy": -1.0}, 0.0
    budget = o.time_budget_min * 60
    if resuming:
        ck = load_checkpoint(last)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        start_epoch, step, best = ck["epoch"], ck["step"], ck["best"]
        elapsed = float(ck.get("elapsed", 0.0))
        print(f"resumed from {last} at epoch {start_epoch}, step {step}")
    elif recipe.init_checkpoint:
        from affectstream.training.config import resolve_path

        model.load_state_dict(load_checkpoint(resolve_path(recipe.init_checkpoint))["model"])

    gen = torch.Generator().manual_seed(recipe.seed)
    for epoch in range(start_epoch, o.epochs):
        if step >= total or (budget and elapsed >= budget) or _stalled(best, epoch, o.early_stop):
            break
        # Per-epoch permutation derived from (seed, epoch): a resumed run sees the same order.
        order = np.random.default_rng(recipe.seed + epoch).permutation(len(train_set))
        gen.manual_seed(recipe.seed * 1000 + epoch)
        model.train()
        t0, seen, loss_sum = time.time(), 0, 0.0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{o.epochs}", disable=not progress)
        for i in bar:
            time_frac = (elapsed + time.time() - t0) / budget if budget else 0.0
            if step >= total or time_frac >= 1.0:
                break
            b = _batch(train_set, order[i * o.batch_size : (i + 1) * o.batch_size], device)
            x = normalize(b["images"], recipe.data.mean, recipe.data.std)
            x = random_affine(x, recipe.augment, gen)
            x = random_erase(x, recipe.augment.erase, gen).contiguous(memory_format=torch.channels_last)
            for g in opt.param_groups:
                g["lr"] = lr_at(
                    step, total, warmup, o.lr, o.schedule, time_frac, epoch, o.step_epochs, o.step_gamma
                )
            logits, va = model(x)
            loss = expression_loss(logits, b["dist"], b["label"], recipe.loss.ce, weights)
            if model.has_va:
                loss = loss + recipe.loss.va_weight * va_loss(va, b["va"], b["va_mask"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            seen += len(x)
            loss_sum += loss.item() * len(x)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", lr=f"{opt.param_groups[0]['lr']:.4f}")
        report = evaluate_samples(model, val_set, recipe, device=device)
        train_s = time.time() - t0
        elapsed += train_s  # evaluation counts against the budget too: it shares the same CPU
        entry = {
            "epoch": epoch + 1,
            "step": step,
            "train_loss": loss_sum / max(seen, 1),
            "seconds": train_s,
            "elapsed": elapsed,
            "lr": opt.param_groups[0]["lr"],
            "images_per_s": seen / max(train_s, 1e-9),
            "val_accuracy": report["accuracy"],
            "val_macro_f1": report["macro_f1"],
            "val_abaw_va": report.get("va", {}).get("abaw_va"),
        }
        print(json.dumps(entry), flush=True)
        with (out_dir / "log.jsonl").open("a") as fh:
            fh.write(json.dumps(entry) + "\n")
        if report["accuracy"] > best["accuracy"]:
            best = {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "epoch": epoch + 1}
            save_checkpoint(out_dir / "best.pt", model, recipe, epoch + 1, step, best, elapsed=elapsed)
        save_checkpoint(last, model, recipe, epoch + 1, step, best, opt, elapsed=elapsed)
        if o.keep_epochs > 0:
            _keep_epoch(out_dir, model, recipe, epoch + 1, step, best, o.keep_epochs)
    return best


def _stalled(best: dict, epochs_done: int, patience: int) -> bool:
    """Early stopping: ``patience`` epochs since the best validation accuracy (0 = never stop early).

    Derived from the checkpoint's best epoch, so a resumed run stops where the uninterrupted one would.
    """
    return patience > 0 and "epoch" in best and epochs_done - int(best["epoch"]) >= patience


def _keep_epoch(out_dir: Path, model, recipe: Recipe, epoch: int, step: int, best: dict, keep: int) -> None:
    """Save this epoch's model as epoch_NNN.pt and delete all but the newest `keep` of them."""
    save_checkpoint(out_dir / f"epoch_{epoch:03d}.pt", model, recipe, epoch, step, best)
    for old in sorted(out_dir.glob("epoch_[0-9][0-9][0-9].pt"))[:-keep]:
        old.unlink()


def _save_recipe(recipe: Recipe, out_dir: Path) -> None:
    import yaml

    (out_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False))
