"""Load a checkpoint as the deployed module: ``forward(x) -> (probs, va)``, plus its engine spec."""

from __future__ import annotations

from pathlib import Path

from affectstream.engines.spec import EngineSpec


def spec_for(recipe, template: str | Path | None = None, model_id: str | None = None) -> EngineSpec:
    """The engine spec a recipe's model needs: input size, colour, normalisation, labels, template."""
    import json

    from affectstream.training.config import resolve_path
    from affectstream.training.errors import ConfigError
    from affectstream.training.labels import get_label_set

    path = resolve_path(str(template or recipe.export.template))
    try:
        points = json.loads(path.read_text())["template"]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"cannot read landmark template {path}: {exc}") from exc
    size = recipe.data.input_size
    return EngineSpec(
        model_id=model_id or recipe.export.model_id,
        input_size=(size, size),
        colour=recipe.data.colour,
        mean=tuple(recipe.data.mean),
        std=tuple(recipe.data.std),
        labels=get_label_set(recipe.data.label_set).labels,
        has_va=recipe.model.head != "linear",
        template=tuple((float(x), float(y)) for x, y in points),
    )


def load_inference_model(
    checkpoint_path: str | Path, template: str | Path | None = None, flip_average: bool | None = None
):
    """Rebuild the model of a checkpoint (``torch.load(weights_only=True)``) in eval mode.

    Returns:
        (module, spec): ``module(x)`` takes float32 NCHW preprocessed crops and returns
        ``(probs [N, C], va [N, 2])``; ``spec`` is the EngineSpec an export of it would carry.
        ``flip_average`` None takes the recipe's ``export.flip_average``.
    """
    from affectstream.training.build import build_model
    from affectstream.training.checkpoint import load_checkpoint, recipe_of
    from affectstream.training.model import InferenceModel

    ck = load_checkpoint(checkpoint_path)
    recipe = recipe_of(ck)
    model = build_model(recipe)
    model.load_state_dict(ck["model"])
    flip = recipe.export.flip_average if flip_average is None else flip_average
    module = InferenceModel(model, flip_average=flip).eval()
    return module, spec_for(recipe, template)
