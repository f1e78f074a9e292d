"""Plan cache keys, sidecars and rebuild decisions.

TensorRT cannot run here, so `build` is a function that writes placeholder bytes: these tests check
the cache's bookkeeping (which key, which file, when to rebuild, what it logs), not TensorRT itself;
tests/engines/test_engine_tensorrt.py covers real plans where TensorRT imports.
"""

from __future__ import annotations

import dataclasses
import logging

import pytest

from affectstream.engines.cache import (
    DeviceInfo,
    check_plan,
    ensure_plan,
    make_key,
    plan_filename,
    read_sidecar,
    sidecar_path,
)
from affectstream.engines.errors import ModelFileError, PlanMismatch

A100 = DeviceInfo("NVIDIA A100-SXM4-40GB", "8.0", "10.3.0")
L4 = DeviceInfo("NVIDIA L4", "8.9", "10.3.0")


class Builds:
    """Counts builds and writes the key into the file, so a test can tell which build made it."""

    def __init__(self) -> None:
        self.calls = []

    def __call__(self, onnx, plan, key, spec) -> None:
        self.calls.append(key)
        plan.write_bytes(f"plan {key.digest()}".encode())


def test_key_covers_every_input(tiny):
    base = make_key(tiny.onnx, A100)
    assert base.precision == "fp16" and (base.min_batch, base.opt_batch, base.max_batch) == (1, 32, 32)
    variants = [
        make_key(tiny.onnx, L4),
        make_key(tiny.onnx, dataclasses.replace(A100, trt_version="10.4.0")),
        make_key(tiny.onnx, A100, precision="fp32"),
        make_key(tiny.onnx, A100, max_batch=64),
        make_key(tiny.onnx, A100, opt_batch=8),
    ]
    digests = {base.digest(), *(k.digest() for k in variants)}
    assert len(digests) == 6
    assert make_key(tiny.onnx, A100) == base  # deterministic


def test_key_rejects_bad_profiles(tiny):
    with pytest.raises(ValueError, match="precision 'int4'"):
        make_key(tiny.onnx, A100, precision="int4")
    with pytest.raises(ValueError, match="1 <= min <= opt <= max"):
        make_key(tiny.onnx, A100, max_batch=8, opt_batch=16)


def test_miss_then_hit(tmp_path, tiny):
    build = Builds()
    plan, key, built = ensure_plan(tiny.onnx, tmp_path, A100, build, max_batch=16)
    assert built and len(build.calls) == 1
    assert plan.name == plan_filename(key, "tiny-mtlgcn") and plan.name.startswith("tiny-mtlgcn-fp16-b16-")
    recorded_key, recorded_spec = read_sidecar(plan)
    assert recorded_key == key and recorded_spec == tiny.spec
    again, key2, built2 = ensure_plan(tiny.onnx, tmp_path, A100, build, max_batch=16)
    assert (again, key2, built2) == (plan, key, False) and len(build.calls) == 1


def test_other_gpu_builds_its_own_plan_and_says_why(tmp_path, tiny, caplog):
    build = Builds()
    a100_plan, _, _ = ensure_plan(tiny.onnx, tmp_path, A100, build)
    with caplog.at_level(logging.WARNING, logger="affectstream.engines.cache"):
        l4_plan, _, built = ensure_plan(tiny.onnx, tmp_path, L4, build)
    assert built and l4_plan != a100_plan and a100_plan.is_file()
    assert "gpu_name: 'NVIDIA A100-SXM4-40GB' -> 'NVIDIA L4'" in caplog.text
    assert "compute_capability: '8.0' -> '8.9'" in caplog.text


def test_corrupt_sidecar_forces_rebuild(tmp_path, tiny, caplog):
    build = Builds()
    plan, _, _ = ensure_plan(tiny.onnx, tmp_path, A100, build)
    sidecar_path(plan).write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="affectstream.engines.cache"):
        _, _, built = ensure_plan(tiny.onnx, tmp_path, A100, build)
    assert built and len(build.calls) == 2 and "rebuilding" in caplog.text
    assert read_sidecar(plan)[1] == tiny.spec


def test_failed_build_leaves_nothing(tmp_path, tiny):
    def broken(onnx, plan, key, spec):
        plan.write_bytes(b"half a plan")
        raise RuntimeError("builder crashed")

    with pytest.raises(RuntimeError, match="builder crashed"):
        ensure_plan(tiny.onnx, tmp_path, A100, broken)
    assert list(tmp_path.iterdir()) == []


def test_check_plan_refuses_foreign_plans(tmp_path, tiny):
    plan, _, _ = ensure_plan(tiny.onnx, tmp_path, A100, Builds())
    key, spec = check_plan(plan, A100)
    assert spec == tiny.spec and key.gpu_name == A100.gpu_name
    with pytest.raises(PlanMismatch, match=r"NVIDIA A100-SXM4-40GB \(sm 8.0\).*NVIDIA L4 \(sm 8.9\)"):
        check_plan(plan, L4)
    sidecar_path(plan).unlink()
    with pytest.raises(ModelFileError, match="sidecar"):
        check_plan(plan, A100)
    with pytest.raises(ModelFileError, match="does not exist"):
        check_plan(tmp_path / "missing.plan", A100)


def test_key_covers_recipe_cuda_major_and_calibration_crops(tiny, tmp_path):
    """Old TF32 "fp32" plans, a CUDA 12 build's plan under a CUDA 13 TensorRT of the same version, and
    int8 plans of other crops must all miss the cache."""
    from affectstream.engines.cache import BUILD_RECIPE, write_sidecar

    base = make_key(
        tiny.onnx, dataclasses.replace(A100, cuda_major="12"), precision="int8", calibration_sha256="a" * 64
    )
    assert base.recipe == BUILD_RECIPE and base.cuda_major == "12"
    others = [
        make_key(
            tiny.onnx,
            dataclasses.replace(A100, cuda_major="13"),
            precision="int8",
            calibration_sha256="a" * 64,
        ),
        make_key(
            tiny.onnx,
            dataclasses.replace(A100, cuda_major="12"),
            precision="int8",
            calibration_sha256="b" * 64,
        ),
        dataclasses.replace(base, recipe=BUILD_RECIPE - 1),
    ]
    assert len({base.digest(), *(k.digest() for k in others)}) == 4
    assert make_key(tiny.onnx, A100, precision="fp16", calibration_sha256="a" * 64).calibration_sha256 == ""
    # A plan of an older recipe is refused when given directly...
    plan = tmp_path / "old.plan"
    plan.write_bytes(b"plan")
    write_sidecar(plan, dataclasses.replace(make_key(tiny.onnx, A100), recipe=1), tiny.spec)
    with pytest.raises(PlanMismatch, match="build recipe 1"):
        check_plan(plan, A100)
    # ...and a version-1 sidecar (no recipe, CUDA major or calibration fields) means "rebuild".
    import json

    side = sidecar_path(plan)
    doc = json.loads(side.read_text())
    doc["version"] = 1
    for name in ("recipe", "cuda_major", "calibration_sha256"):
        doc["key"].pop(name)
    side.write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match="sidecar version 1"):
        read_sidecar(plan)
