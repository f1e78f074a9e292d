"""The shipped default model scores on FER+ valid what its model card says, fed the way the pipeline feeds it.

A regression guard for everything between the data and the answer: the ONNX file, its spec, the
normalisation contract and the FER+ reader. ONNX Runtime on CPU is deterministic, so the accuracy is
reproduced to the last image.
"""

from __future__ import annotations

import pytest

from tests.training.conftest import REPO, shared_path

pytestmark = pytest.mark.train

# engines/models/MODEL_CARD.md, "Metrics": correct / 3555 FER+ valid images (majority label).
MODEL_CARD_CORRECT = 3002


def test_shipped_model_scores_its_model_card_accuracy_on_ferplus_valid():
    shared_path("data", "ferplus")
    from engines import default_model_path
    from training.evaluate import evaluate_onnx

    report = evaluate_onnx(str(default_model_path()), str(REPO / "configs/model/ferplus_mtlgcn.yaml"))
    assert report["n"] == 3555
    assert round(report["accuracy"] * 3555) == MODEL_CARD_CORRECT
