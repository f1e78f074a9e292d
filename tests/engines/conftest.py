"""Tiny real MTL-GCN models for engine tests: built by `training`, exported to ONNX in a temp dir.

The model is the real architecture (graph head over the FER+ label graph) on timm's smallest test
backbone at 32x32 grey, with random weights: parity tests compare backends, not accuracy.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    # `pytest` (not `python -m pytest`) puts tests/ before the repo root; keep `engines` the package.
    sys.path.insert(0, str(REPO))

TEMPLATE_32 = ((11.0, 12.5), (21.0, 12.5), (16.0, 18.0), (12.0, 23.5), (20.0, 23.5))


@dataclass
class TinyModel:
    onnx: Path
    checkpoint: Path | None  # None until `training.inference` can load checkpoints
    module: object  # torch.nn.Module returning (probs, va)
    spec: object  # EngineSpec


def _export(module, spec, path: Path) -> None:
    """torch.onnx export with the engine contract: input/probs/va names, dynamic batch, spec metadata."""
    import onnx
    import torch

    from engines.spec import INPUT_NAME, METADATA_KEY, OUTPUT_PROBS, OUTPUT_VA

    x = torch.zeros(2, spec.channels, *spec.input_size)
    torch.onnx.export(
        module, (x,), str(path), dynamo=False, opset_version=17,
        input_names=[INPUT_NAME], output_names=[OUTPUT_PROBS, OUTPUT_VA],
        dynamic_axes={INPUT_NAME: {0: "n"}, OUTPUT_PROBS: {0: "n"}, OUTPUT_VA: {0: "n"}},
    )  # fmt: skip
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, spec.to_json()
    onnx.save(model, str(path))


def make_tiny_model(folder: Path, *, head: str = "mtlgcn", seed: int = 0) -> TinyModel:
    pytest.importorskip("torch", reason="the [train] extra (torch) builds the test model")
    pytest.importorskip("timm", reason="the [train] extra (timm) builds the test model")
    import warnings

    import torch

    from engines.spec import EngineSpec
    from training.build import build_model
    from training.config import DataConfig, ModelConfig, Recipe
    from training.labels import get_label_set
    from training.model import InferenceModel

    torch.manual_seed(seed)
    recipe = Recipe(
        data=DataConfig(input_size=32, colour="gray"),
        model=ModelConfig(head=head, backbone="test_resnet", gcn_hidden=32),
    )
    model = build_model(recipe)
    module = InferenceModel(model).eval()
    labels = get_label_set(recipe.data.label_set).labels
    spec = EngineSpec(
        model_id=f"tiny-{head}", input_size=(32, 32), colour="gray", mean=(0.5,), std=(0.25,),
        labels=labels, has_va=head != "linear", template=TEMPLATE_32,
    )  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = folder / f"tiny_{head}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
        _export(module, spec, onnx_path)
    checkpoint = None
    try:
        from training.checkpoint import save_checkpoint
        from training.inference import load_inference_model  # noqa: F401 - present once training ships it
    except ImportError:
        pass
    else:
        checkpoint = folder / f"tiny_{head}.pt"
        save_checkpoint(checkpoint, model, dataclasses.replace(recipe), epoch=0, step=0, best={})
    return TinyModel(onnx_path, checkpoint, module, spec)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> TinyModel:
    """The tiny MTL-GCN (with valence/arousal)."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_linear(tmp_path_factory) -> TinyModel:
    """A tiny single-task model (no valence/arousal output)."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny_linear"), head="linear")


@pytest.fixture
def faces(tiny) -> np.ndarray:
    """A normalised batch of 13 random faces (13: not a multiple of the test batch sizes)."""
    rng = np.random.default_rng(1)
    return rng.standard_normal((13, tiny.spec.channels, *tiny.spec.input_size)).astype(np.float32)
