"""Training recipes: YAML validated once into frozen typed dataclasses (`settings.typed`).

``${AFFECTSTREAM_SHARED}`` and other ``${VAR}`` references in string values are expanded; the shared
folder defaults to ``../shared`` beside the repository. Relative file paths resolve against the repository.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import model_validator

from affectstream.settings import env
from affectstream.settings.interpolate import UnsetVariable
from affectstream.settings.interpolate import expand as expand_env
from affectstream.settings.typed import Range, typed, validate
from affectstream.training.errors import ConfigError
from affectstream.training.model import ModelConfig

REPO = Path(__file__).resolve().parents[1]


@typed(ConfigError)
class DataConfig:
    dataset: Literal["ferplus", "affectnet", "affwild2", "afew_va"] = "ferplus"
    root: str = "${AFFECTSTREAM_SHARED}/data/ferplus"
    train_split: str = "train"
    val_split: str = "valid"
    label_set: Literal["affectnet7", "affectnet8", "ferplus8", "affwild2_8", "affwild2_7"] = "ferplus8"
    input_size: int = 64
    colour: Literal["gray", "rgb"] = "gray"
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.25,)
    weak_va: bool = True
    # Centroid table for the weak VA targets (training.labels.VA_CENTROID_TABLES): affectnet_rank, derived
    # from published figures. Checkpoints made before 2026-12-07 name `affectnetc25`, a table removed because
    # its source forbids use by others: they load only with --set data.va_centroids=affectnet_rank.
    va_centroids: Literal["affectnet_rank"] = "affectnet_rank"
    eye_level: bool = False  # AffectNet: rotate crops so the eyes are level (from the 68 landmarks)
    frame_step: int = 1  # Aff-Wild2: keep every n-th annotated frame
    limit: int = 0  # >0: use only the first `limit` samples per split (smoke runs)
    # Self-distillation teacher: an .npz from `python -m training teacher` for the training split (its rows
    # are the training samples in order); used when loss.distill_weight > 0. Empty = none.
    teacher: str = ""


@typed(ConfigError)
class GraphConfig:
    embeddings: str = "configs/graph/label_embeddings.json"
    rho: str = "configs/graph/ferplus8_rho.json"
    tau: float = 0.1
    p: float = 0.5
    # "formula" (A, as ML-GCN's formula is written) or "authors" (A^T, as the authors' released code
    # computes it); see training.graph.ORIENTATIONS. Paper recipes use "authors".
    orientation: Literal["formula", "authors"] = "formula"


@typed(ConfigError)
class LossConfig:
    # soft: CE against vote distributions; weighted: CE with w_c ~ 1/count_c; unweighted: plain CE on the label
    ce: Literal["soft", "weighted", "unweighted"] = "soft"
    va_weight: float = 1.0
    # >0: the soft target is (1 - w) * votes + w * data.teacher's probabilities (needs ce: soft).
    distill_weight: Annotated[float, Range(0.0, 1.0)] = 0.0


@typed(ConfigError)
class OptimConfig:
    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    # True decays norms and biases too, as the authors' single SGD group does; False spares them (better
    # from scratch).
    decay_norms: bool = False
    batch_size: int = 64
    epochs: int = 20
    warmup_epochs: float = 1.0
    schedule: Literal["cosine", "constant", "step"] = (
        "cosine"  # step: x step_gamma every step_epochs epochs (torch's StepLR)
    )
    step_epochs: int = 10
    step_gamma: float = 0.1
    # >0: stop when validation accuracy has not improved for this many epochs (the authors: 10).
    early_stop: int = 0
    max_steps: int = 0  # >0: stop after this many steps (smoke runs)
    # >0: a wall-clock budget. The cosine schedule then follows max(step fraction, time fraction) and
    # training stops when the budget is spent, so a run on a shared, loaded CPU still anneals and ends on time.
    time_budget_min: float = 0.0
    # >0: also keep the model of each of the last N epochs (epoch_NNN.pt) for `affectstream average`.
    keep_epochs: int = 0


@typed(ConfigError)
class AugmentConfig:
    hflip: bool = True
    rotate: float = 15.0
    translate: float = 0.08
    scale: tuple[float, float] = (0.9, 1.1)
    erase: float = 0.0


@typed(ConfigError)
class ExportConfig:
    model_id: str = "mtlgcn-ferplus"
    template: str = "configs/model/ferplus_template.json"
    # Average the outputs for the crop and its mirror image inside the exported graph: every runtime
    # (pipeline, evaluation, TensorRT) then runs the same test-time augmentation, for twice the engine work.
    flip_average: bool = False


@typed(ConfigError)
class Recipe:
    name: str = "mtlgcn_ferplus"
    seed: int = 0
    threads: int = 2
    device: str = "auto"
    init_checkpoint: str = ""  # start from these model weights (a warm restart / fine-tune); resume wins
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    @model_validator(mode="after")
    def _distillation_needs_a_teacher_and_soft_targets(self) -> Recipe:
        w = self.loss.distill_weight
        if w > 0 and not self.data.teacher:
            raise ValueError(
                f"loss.distill_weight: {w} needs data.teacher (an .npz from `python -m training "
                "teacher`); set data.teacher or loss.distill_weight: 0"
            )
        if w > 0 and self.loss.ce != "soft":
            raise ValueError(
                f"loss.distill_weight: {w} needs loss.ce: soft (the teacher's probabilities are "
                f"soft targets); loss.ce is {self.loss.ce!r}"
            )
        return self


def expand(value: str) -> str:
    """Expand ``${VAR}``; AFFECTSTREAM_SHARED defaults to ../shared beside the repository."""
    try:
        return expand_env(value, {env.SHARED: str(REPO.parent / "shared")})
    except UnsetVariable as exc:
        raise ConfigError(f"recipe references ${{{exc.name}}}, which is not set in the environment") from None


def resolve_path(value: str) -> Path:
    path = Path(expand(value))
    return path if path.is_absolute() else REPO / path


def recipe_from_dict(raw: dict[str, Any]) -> Recipe:
    """Validate a parsed recipe (unknown keys and wrong types raise ConfigError naming the key)."""
    return validate(Recipe, raw, ConfigError)


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Load a YAML recipe, apply dotted-key overrides (``{"optim.epochs": 1}``) and validate it."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read recipe {path}: {exc}") from exc
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return recipe_from_dict(raw)


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """Plain dict (tuples as lists) for YAML and checkpoints."""

    def plain(value: Any) -> Any:
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(recipe))
