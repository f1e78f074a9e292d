"""Tiny real MTL-GCN models for engine tests: built by `training`, exported to ONNX in a temp dir.

The model is the real architecture (graph head over the FER+ label graph) on timm's smallest test
backbone at 32x32 grey, with random weights: parity tests compare backends, not accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

TEMPLATE_32 = ((11.0, 12.5), (21.0, 12.5), (16.0, 18.0), (12.0, 23.5), (20.0, 23.5))


@dataclass
class TinyModel:
    onnx: Path
    checkpoint: Path
    module: object  # torch.nn.Module returning (probs, va), as loaded from the checkpoint
    spec: object  # EngineSpec


def make_tiny_model(folder: Path, *, head: str = "mtlgcn", seed: int = 0) -> TinyModel:
    """Train-free tiny model: build, save a checkpoint, export with `training.export` (the real path)."""
    pytest.importorskip("torch", reason="the [train] extra (torch) builds the test model")
    pytest.importorskip("timm", reason="the [train] extra (timm) builds the test model")
    import json
    import warnings

    import torch

    from affectstream.training.build import build_model
    from affectstream.training.checkpoint import save_checkpoint
    from affectstream.training.config import DataConfig, ExportConfig, ModelConfig, Recipe
    from affectstream.training.export import export_onnx
    from affectstream.training.inference import load_inference_model

    folder.mkdir(parents=True, exist_ok=True)
    template = folder / "template.json"
    template.write_text(json.dumps({"template": [list(p) for p in TEMPLATE_32]}))
    torch.manual_seed(seed)
    recipe = Recipe(
        data=DataConfig(input_size=32, colour="gray"),
        model=ModelConfig(head=head, backbone="test_resnet", gcn_hidden=32),
        export=ExportConfig(model_id=f"tiny-{head}", template=str(template)),
    )
    checkpoint = folder / f"tiny_{head}.pt"
    save_checkpoint(checkpoint, build_model(recipe), recipe, epoch=0, step=0, best={})
    onnx_path = folder / f"tiny_{head}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        export_onnx(checkpoint, onnx_path)
    module, spec = load_inference_model(checkpoint)
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
