"""Subcommands ``train``, ``evaluate``, ``export``, ``average`` and ``teacher`` for the ``affectstream`` CLI.

Importing this module must stay cheap: torch is imported inside the handlers only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from affectstream.engines.errors import EXIT_USAGE
from affectstream.settings.overrides import add_set_option


def _fail(exc: Exception) -> int:
    """A recipe, data or checkpoint problem: the message names it (exit 2, as a bad config)."""
    print(f"error: {exc}", file=sys.stderr)
    return EXIT_USAGE


def _passive_omp() -> None:
    """Make idle OpenMP threads sleep instead of spin (must run before torch is imported).

    On a CPU shared with other processes, spinning threads burn their time slice waiting at barriers:
    measured here, 2-thread training ran at ~30 images per CPU-second with the default policy and
    ~130 with PASSIVE.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cmd_train(args: argparse.Namespace) -> int:
    _passive_omp()
    from affectstream.training.config import load_recipe
    from affectstream.training.errors import TrainingError
    from affectstream.training.train import train

    try:
        recipe = load_recipe(args.config, dict(args.set))  # dotted keys: recipe.optim.epochs=2
        out = Path(args.output) if args.output else Path("runs") / recipe.name
        best = train(recipe, out, resume=not args.no_resume, progress=not args.no_progress)
    except TrainingError as exc:
        return _fail(exc)
    print(json.dumps({"run": str(out), "best": best}))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    _passive_omp()
    from affectstream.training.errors import TrainingError
    from affectstream.training.evaluate import evaluate_checkpoint, format_report

    try:
        report = evaluate_checkpoint(args.checkpoint, split=args.split, config=args.config)
    except TrainingError as exc:
        return _fail(exc)
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=1) + "\n")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    _passive_omp()
    from affectstream.training.errors import TrainingError
    from affectstream.training.export import export_onnx

    try:
        spec = export_onnx(
            args.checkpoint,
            args.output,
            template=args.template,
            model_id=args.model_id,
            flip_average=args.flip_average,
        )
    except TrainingError as exc:
        return _fail(exc)
    print(f"wrote {args.output}: {spec.to_json()}")
    return 0


def cmd_average(args: argparse.Namespace) -> int:
    _passive_omp()
    from affectstream.training.average import average_checkpoints
    from affectstream.training.errors import TrainingError
    from affectstream.training.evaluate import format_report

    try:
        report = average_checkpoints(args.checkpoints, args.output)
    except TrainingError as exc:
        return _fail(exc)
    print(format_report(report))
    print(f"wrote {args.output}")
    return 0


def cmd_teacher(args: argparse.Namespace) -> int:
    _passive_omp()
    import numpy as np

    from affectstream.scoring.metrics import accuracy
    from affectstream.training.checkpoint import load_checkpoint, recipe_of
    from affectstream.training.config import load_recipe
    from affectstream.training.distill import member_probs, write_teacher
    from affectstream.training.errors import TrainingError

    try:
        recipe = load_recipe(args.config) if args.config else recipe_of(load_checkpoint(args.checkpoints[0]))
        split = args.split or recipe.data.train_split
        members, samples = member_probs(args.checkpoints, recipe.data, split)
        ensemble = np.mean(members, axis=0)
        write_teacher(args.output, ensemble, samples, source=f"{recipe.data.dataset} {split!r}")
        scores = {split: (members, ensemble, samples)}
        if recipe.data.val_split != split:
            val_members, val_samples = member_probs(args.checkpoints, recipe.data, recipe.data.val_split)
            scores[recipe.data.val_split] = (val_members, np.mean(val_members, axis=0), val_samples)
    except TrainingError as exc:
        return _fail(exc)

    def acc(probs, s) -> str:
        has = s.label >= 0
        return f"{accuracy(s.label[has], probs[has].argmax(1)):.4f}"

    for i, path in enumerate(args.checkpoints):
        accs = "  ".join(f"{name} accuracy={acc(m[i], s)}" for name, (m, _, s) in scores.items())
        print(f"member {path}: {accs}")
    accs = "  ".join(f"{name} accuracy={acc(e, s)}" for name, (_, e, s) in scores.items())
    print(f"ensemble of {len(args.checkpoints)} (mirror-averaged): {accs}")
    print(
        f"wrote {args.output}: {recipe.data.dataset} {split} ({len(samples)} samples x {ensemble.shape[1]})"
    )
    return 0


def register(subparsers) -> None:
    """Add ``train``, ``evaluate``, ``export``, ``average`` and ``teacher`` to an argparse subparsers object."""
    p = subparsers.add_parser("train", help="train a model from a recipe (resumable)")
    p.add_argument(
        "-c", "--config", required=True, help="recipe YAML, e.g. configs/model/ferplus_mtlgcn.yaml"
    )
    p.add_argument("-o", "--output", help="run folder (default runs/<recipe name>)")
    add_set_option(p, "a recipe key, e.g. optim.epochs=2")
    p.add_argument("--no-resume", action="store_true", help="start over even if the run folder has last.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_train)

    p = subparsers.add_parser(
        "evaluate", help="evaluate a checkpoint; prints a table, optionally writes JSON"
    )
    p.add_argument("checkpoint", help="a .pt checkpoint from `train`, or an exported .onnx (needs -c)")
    p.add_argument("--split", help="dataset split (default: the recipe's validation split)")
    p.add_argument("-c", "--config", help="evaluate on this recipe's data instead of the checkpoint's")
    p.add_argument("--json", action="store_true", help="print the full report as JSON instead of the table")
    p.add_argument("-o", "--output", metavar="PATH", help="also write the full report (JSON) here")
    p.set_defaults(handler=cmd_evaluate)

    p = subparsers.add_parser(
        "export", help="export a checkpoint to ONNX with the engine spec in its metadata"
    )
    p.add_argument("checkpoint")
    p.add_argument("-o", "--output", required=True, help="ONNX file to write")
    p.add_argument("--template", help="landmark template JSON (default: the recipe's export.template)")
    p.add_argument("--model-id", help="model id (default: the recipe's export.model_id)")
    p.add_argument(
        "--flip-average",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average each crop with its mirror image inside the graph (default: the recipe's export.flip_average)",
    )
    p.set_defaults(handler=cmd_export)

    p = subparsers.add_parser(
        "average", help="average checkpoints' weights (SWA), re-estimate BatchNorm, evaluate"
    )
    p.add_argument(
        "checkpoints", nargs="+", help="checkpoints of one run, e.g. runs/x/epoch_05*.pt (optim.keep_epochs)"
    )
    p.add_argument("-o", "--output", required=True, help="checkpoint to write")
    p.set_defaults(handler=cmd_average)

    p = subparsers.add_parser(
        "teacher",
        help="ensemble checkpoints' mirror-averaged predictions into a self-distillation teacher (.npz)",
    )
    p.add_argument(
        "checkpoints", nargs="+", help="checkpoints of runs with different seeds, e.g. runs/s*/best.pt"
    )
    p.add_argument("-o", "--output", required=True, help="teacher file to write (.npz), for data.teacher")
    p.add_argument("--split", help="dataset split (default: the recipe's training split)")
    p.add_argument("-c", "--config", help="take the data from this recipe instead of the first checkpoint's")
    p.set_defaults(handler=cmd_teacher)
