"""engines loads training checkpoints without importing training: through an entry point (the layers)."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

from affectstream.engines.errors import BackendUnavailable

pytest.importorskip("torch", reason="the torch backend needs the [train] extra")


def test_training_registers_its_loader():
    from affectstream.engines.torch import CHECKPOINT_LOADERS

    (loader,) = importlib.metadata.entry_points(group=CHECKPOINT_LOADERS)
    assert loader.value == "affectstream.training.inference:load_inference_model"
    from affectstream.training.inference import load_inference_model

    assert loader.load() is load_inference_model


def test_importing_the_torch_backend_imports_no_training():
    code = "import sys, affectstream.engines.torch; print(sorted(m for m in sys.modules if '.training' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("found", [0, 2])
def test_none_or_several_loaders_say_what_to_install(monkeypatch, tmp_path, found):
    from affectstream.engines import torch as backend

    eps = [importlib.metadata.EntryPoint(f"l{i}", "x:y", backend.CHECKPOINT_LOADERS) for i in range(found)]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: eps)
    with pytest.raises(BackendUnavailable, match=r"pip install -e '\.\[train\]'"):
        backend.load_checkpoint(tmp_path / "model.pt")
