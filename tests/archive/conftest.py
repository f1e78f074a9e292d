"""Fixtures of the archive tests: an emotion model file, the detector, and `archive` CLI runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, need_shared

FERPLUS = ("Neutral", "Happiness", "Surprise", "Sadness", "Anger", "Disgust", "Fear", "Contempt")


def tiny_model(path: Path) -> Path:
    """A small MTL-GCN-shaped ONNX (conv -> pool -> class and VA heads) with the engine spec metadata.

    Untrained, fixed weights: its outputs depend on the face crop, which is all the archive tests need
    (exactly-once, resume, files). The shipped model is used instead whenever it exists.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    w = {
        "conv_w": rng.normal(0, 0.5, (8, 1, 5, 5)).astype(np.float32),
        "conv_b": np.zeros(8, np.float32),
        "cls_w": rng.normal(0, 2.0, (8, len(FERPLUS))).astype(np.float32),
        "cls_b": np.zeros(len(FERPLUS), np.float32),
        "va_w": rng.normal(0, 2.0, (8, 2)).astype(np.float32),
        "va_b": np.zeros(2, np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["input", "conv_w", "conv_b"], ["c"], strides=[2, 2]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "cls_w", "cls_b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
        helper.make_node("Gemm", ["f", "va_w", "va_b"], ["va_raw"]),
        helper.make_node("Tanh", ["va_raw"], ["va"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_mtlgcn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 48, 48])],
        [
            helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", len(FERPLUS)]),
            helper.make_tensor_value_info("va", TensorProto.FLOAT, ["N", 2]),
        ],
        [numpy_helper.from_array(v, k) for k, v in w.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    spec = {
        "model_id": "tiny-test-mtlgcn", "input_size": [48, 48], "colour": "gray", "mean": [0.5], "std": [0.5],
        "labels": list(FERPLUS), "has_va": True,
        "template": [[16.6, 19.0], [31.4, 19.0], [24.0, 27.6], [17.8, 35.8], [30.2, 35.8]],
    }  # fmt: skip
    helper.set_model_props(model, {"affectstream.spec": json.dumps(spec)})
    onnx.save(model, str(path))
    return path


def model_for_tests(tmp_dir: Path) -> str:
    """$AFFECTSTREAM_TEST_MODEL, else the shipped model, else a tiny one built in `tmp_dir`.

    Shared by test folders that need some model file (call it from their own `model_path` fixture).
    """
    if os.environ.get("AFFECTSTREAM_TEST_MODEL"):
        return os.environ["AFFECTSTREAM_TEST_MODEL"]
    shipped = REPO / "engines" / "models" / "mtlgcn_ferplus.onnx"
    if shipped.is_file():
        return str(shipped)
    return str(tiny_model(tmp_dir / "tiny.onnx"))


@pytest.fixture(scope="session")
def model_path(tmp_path_factory) -> str:
    return model_for_tests(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="session")
def detector() -> str:
    return str(need_shared("models", "scrfd_500m.onnx"))


def cli(*args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m pipeline ARGS` from the repository root; returns the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def start_cli(*args: str, log: Path) -> subprocess.Popen:
    """Start `python -m pipeline ARGS` in the background, its output going to `log`."""
    fh = open(log, "w")  # noqa: SIM115 - the child owns it; closed when the test's tmp dir goes
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", *args], cwd=REPO, stdout=fh, stderr=subprocess.STDOUT
    )
