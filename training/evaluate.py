"""Evaluation exactly as the pipeline feeds the model: resize-free crops, no test-time augmentation."""

from __future__ import annotations

import numpy as np
import torch

from affectstream.scoring.metrics import classification_report, va_report
from affectstream.training.augment import normalize
from affectstream.training.config import Recipe
from affectstream.training.data.base import Samples


@torch.no_grad()
def predict(model, samples: Samples, recipe: Recipe, device=None, batch_size: int = 256):
    """Softmax probabilities [N, C] and valence/arousal [N, 2] (None without a VA head)."""
    device = device or torch.device("cpu")
    model.eval()
    probs, vas = [], []
    for i in range(0, len(samples), batch_size):
        x = normalize(torch.from_numpy(samples.images[i : i + batch_size]), recipe.data.mean, recipe.data.std)
        logits, va = model(x.to(device).contiguous(memory_format=torch.channels_last))
        probs.append(torch.softmax(logits, 1).cpu().numpy())
        if va is not None:
            vas.append(va.clamp(-1, 1).cpu().numpy())
    probs = np.concatenate(probs) if probs else np.zeros((0, samples.label_set.num_classes))
    return probs, (np.concatenate(vas) if vas else None)


def evaluate_samples(model, samples: Samples, recipe: Recipe, device=None) -> dict:
    """Classification report on samples with a category, VA report on samples with VA."""
    probs, va = predict(model, samples, recipe, device)
    has = samples.label >= 0
    report = classification_report(samples.label[has], probs[has].argmax(1), samples.label_set.labels)
    if va is not None and samples.va_mask.any():
        report["va"] = va_report(va[samples.va_mask], samples.va[samples.va_mask])
    return report


def evaluate_onnx(model_path: str, config: str, split: str | None = None) -> dict:
    """Evaluate an exported ONNX file with ONNX Runtime on a recipe's data, preprocessed per its spec."""
    import onnxruntime as ort

    from affectstream.engines.spec import EngineSpec
    from affectstream.training.config import load_recipe
    from affectstream.training.data import create_dataset
    from affectstream.training.labels import get_label_set

    spec = EngineSpec.from_onnx(model_path)
    recipe = load_recipe(config)
    split = split or recipe.data.val_split
    samples = create_dataset(recipe.data, split)
    if tuple(samples.label_set.labels) != spec.labels or samples.images.shape[1:3] != spec.input_size:
        from affectstream.training.errors import ConfigError

        raise ConfigError(
            f"{config} data ({recipe.data.label_set}, {recipe.data.input_size}px) does not match "
            f"{model_path} ({spec.labels}, {spec.input_size})"
        )
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    x = normalize(torch.from_numpy(samples.images), spec.mean, spec.std).numpy()
    outs = [sess.run(None, {"input": x[i : i + 256]}) for i in range(0, len(x), 256)]
    probs = np.concatenate([o[0] for o in outs])
    has = samples.label >= 0
    report = classification_report(
        samples.label[has], probs[has].argmax(1), get_label_set(recipe.data.label_set).labels
    )
    if spec.has_va and samples.va_mask.any():
        va = np.concatenate([o[1] for o in outs])
        report["va"] = va_report(va[samples.va_mask], samples.va[samples.va_mask])
    report.update(
        {
            "checkpoint": str(model_path),
            "epoch": None,
            "split": split,
            "dataset": recipe.data.dataset,
            "labels": list(spec.labels),
        }
    )
    return report


def evaluate_checkpoint(checkpoint: str, split: str | None = None, config: str | None = None) -> dict:
    """Evaluate a checkpoint on a split of its recipe's dataset (or of another recipe's dataset).

    An ``.onnx`` path is run with ONNX Runtime instead and needs ``config`` for the data.
    """
    if str(checkpoint).endswith(".onnx"):
        if not config:
            from affectstream.training.errors import ConfigError

            raise ConfigError("evaluating an .onnx file needs -c <recipe> to know the data")
        return evaluate_onnx(str(checkpoint), config, split)
    from affectstream.training.build import build_model
    from affectstream.training.checkpoint import load_checkpoint, recipe_of
    from affectstream.training.config import load_recipe
    from affectstream.training.data import create_dataset

    ck = load_checkpoint(checkpoint)
    recipe = recipe_of(ck)
    data_recipe = load_recipe(config) if config else recipe
    model = build_model(recipe)
    model.load_state_dict(ck["model"])
    split = split or data_recipe.data.val_split
    samples = create_dataset(data_recipe.data, split)
    report = evaluate_samples(model, samples, recipe)
    report.update(
        {
            "checkpoint": str(checkpoint),
            "epoch": ck["epoch"],
            "split": split,
            "dataset": data_recipe.data.dataset,
            "labels": list(samples.label_set.labels),
        }
    )
    return report


def format_report(report: dict) -> str:
    """A plain-text metrics table: summary line, per-class recall/F1, confusion matrix, VA metrics."""
    names = report["labels"]
    lines = [
        f"{report['dataset']} {report['split']}: n={report['n']}  accuracy={report['accuracy']:.4f}  "
        f"macro-F1={report['macro_f1']:.4f}",
        "",
        f"{'class':<10} {'recall':>7} {'F1':>7}   confusion (rows true, cols predicted)",
    ]
    width = max(6, max(len(n) for n in names))
    lines.append(" " * 28 + " ".join(f"{n[:width]:>{width}}" for n in names))
    for name, row in zip(names, report["confusion"], strict=True):
        recall = report["recall"][name]
        rec = f"{recall:7.4f}" if recall is not None else "    n/a"
        lines.append(
            f"{name:<10} {rec} {report['f1'][name]:7.4f}   " + " ".join(f"{v:>{width}}" for v in row)
        )
    if "va" in report:
        va = report["va"]
        lines.append("")
        for dim in ("valence", "arousal"):
            m = va[dim]
            lines.append(
                f"{dim:<8} CCC={m['ccc']:.4f} PCC={m['pcc']:.4f} RMSE={m['rmse']:.4f} SAGR={m['sagr']:.4f}"
            )
        lines.append(f"ABAW VA (mean CCC) = {va['abaw_va']:.4f}")
    return "\n".join(lines)
