"""The FER+ head ablation as one resumable command.

    python -m training.ablation -o var/ablation [--set KEY=VALUE ...] [--arms a,b] [--no-second-seed]

Four arms of ``configs/model/ferplus_ablation.yaml`` (the default recipe's backbone, data, augmentation and
optimiser at a shorter budget), each differing from the recipe in one setting only: single-task (linear
classifier), multi-task (linear expression + linear valence/arousal heads), and MTL-GCN with each graph
orientation ("formula": A; "authors": A^T, as the authors' code). All with seed 0; then the two arms with the
best final accuracy again with seed 1, to show the run-to-run noise.

Every run is ``training.train`` in ``<out>/<arm>_s<seed>``: it checkpoints every epoch and resumes from
``last.pt``, and a finished run is skipped, so the command can be killed and started again at any time.
``<out>/summary.md`` and ``summary.json`` are rewritten after every run. The numbers are the final epoch's:
nothing is selected on FER+ valid.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RECIPE = "configs/model/ferplus_ablation.yaml"
ARMS: dict[str, dict] = {
    "single_task": {"model.head": "linear"},
    "multi_task": {"model.head": "multitask"},
    "mtlgcn_formula": {"model.head": "mtlgcn", "graph.orientation": "formula"},
    "mtlgcn_authors": {"model.head": "mtlgcn", "graph.orientation": "authors"},
}
SECOND_SEED = 1


def final_entry(run: Path) -> dict | None:
    """The last epoch's metrics of a run (its log.jsonl), or None before its first epoch."""
    log = run / "log.jsonl"
    if not log.exists():
        return None
    entries = []
    for line in log.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:  # a line being written by a run in another process
            continue
    return entries[-1] if entries else None


def is_finished(run: Path, epochs: int) -> bool:
    entry = final_entry(run)
    return entry is not None and entry["epoch"] >= epochs


def run_arm(arm: str, seed: int, out: Path, overrides: dict, progress: bool) -> Path:
    """Train (or resume, or skip when finished) one arm with one seed; returns its run folder."""
    from affectstream.training.config import REPO, load_recipe
    from affectstream.training.train import train

    recipe = load_recipe(REPO / RECIPE, {**overrides, **ARMS[arm], "seed": seed})
    run = out / f"{arm}_s{seed}"
    if not is_finished(run, recipe.optim.epochs):
        train(recipe, run, resume=True, progress=progress)
    return run


def best_two(out: Path, arms: list[str], seed: int = 0) -> list[str]:
    """The two arms with the highest final accuracy for ``seed`` (arms without a result are left out)."""
    done = [(final_entry(out / f"{a}_s{seed}") or {}).get("val_accuracy", -1.0) for a in arms]
    ranked = sorted(zip(done, arms, strict=True), reverse=True)
    return [a for acc, a in ranked if acc >= 0][:2]


def summary_rows(out: Path) -> list[dict]:
    rows = []
    for run in sorted(p for p in out.iterdir() if p.is_dir() and (p / "log.jsonl").exists()):
        entry = final_entry(run)
        if entry is None:
            continue
        arm, _, seed = run.name.rpartition("_s")
        rows.append(
            {
                "arm": arm,
                "seed": int(seed),
                "epoch": entry["epoch"],
                "accuracy": entry["val_accuracy"],
                "macro_f1": entry["val_macro_f1"],
                "va_mean_ccc": entry.get("val_abaw_va"),
                "train_s": round(entry["elapsed"]) if "elapsed" in entry else None,
            }
        )
    return rows


def write_summary(out: Path, epochs: int) -> str:
    """summary.json and summary.md (a Markdown table) from every run's final epoch."""
    rows = summary_rows(out)
    (out / "summary.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = [
        "| arm | seed | epochs done | FER+ valid accuracy | macro-F1 | VA mean CCC (weak targets) | train + eval s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        va = f"{r['va_mean_ccc']:.3f}" if r["va_mean_ccc"] is not None else "–"
        state = f"{r['epoch']}/{epochs}"
        lines.append(
            f"| {r['arm']} | {r['seed']} | {state} | {100 * r['accuracy']:.2f}% | {r['macro_f1']:.3f} | {va} | {r['train_s']} |"
        )
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    return text


def run_ablation(
    out: Path,
    overrides: dict,
    arms: list[str],
    second_seed: bool = True,
    progress: bool = False,
    seeds: list[int] | None = None,
) -> str:
    """All seed-0 arms, then the best two again with the second seed; returns the Markdown table.

    ``seeds`` instead runs exactly the given arms with exactly those seeds (to spread arms over processes).
    """
    from affectstream.training.config import REPO, load_recipe

    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        from affectstream.training.errors import ConfigError

        raise ConfigError(f"unknown ablation arm(s) {unknown}; allowed values: {sorted(ARMS)}")
    epochs = load_recipe(REPO / RECIPE, overrides).optim.epochs
    out.mkdir(parents=True, exist_ok=True)
    for arm in arms:
        for seed in seeds or [0]:
            run_arm(arm, seed, out, overrides, progress)
            write_summary(out, epochs)
    if second_seed and not seeds:
        for arm in best_two(out, arms):
            run_arm(arm, SECOND_SEED, out, overrides, progress)
            write_summary(out, epochs)
    return write_summary(out, epochs)


def main(argv: list[str] | None = None) -> int:
    from affectstream.settings.overrides import add_set_option, nested
    from affectstream.training.cli import _passive_omp

    _passive_omp()
    p = argparse.ArgumentParser(prog="python -m training.ablation", description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--out", default="var/ablation", help="folder of the runs and the summary")
    add_set_option(p, "a recipe key (all arms)")
    p.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated subset of {','.join(ARMS)}")
    p.add_argument("--no-second-seed", action="store_true", help="skip the seed-1 reruns of the best two")
    p.add_argument("--seed", type=int, action="append", help="run the arms with exactly these seeds instead")
    p.add_argument("--progress", action="store_true", help="progress bars")
    args = p.parse_args(argv)
    from affectstream.training.errors import TrainingError

    try:
        table = run_ablation(
            Path(args.out),
            nested(args.set),
            args.arms.split(","),
            second_seed=not args.no_second_seed,
            progress=args.progress,
            seeds=args.seed,
        )
    except TrainingError as exc:
        print(f"error: {exc}")
        return 2
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
