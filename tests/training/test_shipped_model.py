"""The shipped models score on FER+ valid what the model card says, fed the way the pipeline feeds them.

A regression guard for everything between the data and the answer: the ONNX files, their spec, the
normalisation contract and the FER+ reader. ONNX Runtime's float32 CPU kernels are deterministic, so
the float model's accuracy is reproduced to the last image. The INT8 kernels differ by instruction set
(VNNI/AMX against AVX2, whose 16-bit intermediate sums can saturate), so the INT8 count gets a few
images of slack.
"""

from __future__ import annotations

import pytest

from tests.training.conftest import REPO, shared_path

pytestmark = pytest.mark.train

# engines/models/MODEL_CARD.md, "Metrics": correct / 3555 FER+ valid images (majority label), and slack.
MODEL_CARD_CORRECT = {"float32": (2976, 0), "int8": (2973, 5)}


@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_shipped_model_scores_its_model_card_accuracy_on_ferplus_valid(variant):
    shared_path("data", "ferplus")
    from affectstream.engines import default_model_path
    from affectstream.training.evaluate import evaluate_onnx

    path = default_model_path(int8=variant == "int8")
    report = evaluate_onnx(str(path), str(REPO / "configs/model/ferplus_mtlgcn.yaml"))
    assert report["n"] == 3555
    correct, slack = MODEL_CARD_CORRECT[variant]
    assert abs(round(report["accuracy"] * 3555) - correct) <= slack
