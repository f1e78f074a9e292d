"""`affectstream engine build|info` and `affectstream models`, through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from affectstream.engines.cache import DeviceInfo, ensure_plan
from affectstream.pipeline.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, **engine) -> Path:
    lines = ["engine:"] + [f"  {k}: {v}" for k, v in engine.items()]
    path = tmp_path / "pipeline.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _trt_importable() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(_trt_importable(), reason="checks the CPU-only failure; TensorRT is installed here")
def test_build_on_cpu_fails_fast_without_traceback(tmp_path, tiny):
    cfg = _config(tmp_path, backend="tensorrt", model=str(tiny.onnx), cache_dir=str(tmp_path / "cache"))
    result = subprocess.run(
        [sys.executable, "-m", "affectstream", "engine", "build", "-c", str(cfg)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert "cannot build a TensorRT engine on this machine" in result.stderr
    assert "affectstream[gpu]" in result.stderr
    assert not (tmp_path / "cache").exists()  # failed before doing any work


def test_build_with_onnxruntime_backend_has_nothing_to_do(tmp_path, tiny, capsys):
    cfg = _config(tmp_path, backend="onnxruntime", model=str(tiny.onnx))
    assert main(["engine", "build", "-c", str(cfg)]) == 0
    assert "nothing to build" in capsys.readouterr().out


def test_build_with_bad_config_exits_2(tmp_path, capsys):
    cfg = _config(tmp_path, backend="tensorrt", precision="int4")
    assert main(["engine", "build", "-c", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "engine.precision" in err and "'fp16'" in err
    assert main(["engine", "build", "-c", str(tmp_path / "missing.yaml")]) == 2


def test_info_prints_key_and_spec(tmp_path, tiny, capsys):
    device = DeviceInfo("NVIDIA L4", "8.9", "10.3.0")
    plan, key, _ = ensure_plan(tiny.onnx, tmp_path, device, lambda o, p, k, s: p.write_bytes(b"x" * 2048))
    assert main(["engine", "info", str(plan)]) == 0
    out = capsys.readouterr().out
    assert key.digest() in out and "gpu_name: NVIDIA L4" in out and "tiny-mtlgcn" in out
    assert "Neutral" in out and "this machine:" in out
    assert main(["engine", "info", "--json", str(plan)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["key"]["onnx_sha256"] == key.onnx_sha256 and info["spec"]["has_va"] is True


def test_info_without_sidecar_fails(tmp_path, capsys):
    plan = tmp_path / "orphan.plan"
    plan.write_bytes(b"x")
    assert main(["engine", "info", str(plan)]) == 1
    assert "sidecar" in capsys.readouterr().err


def test_models_lists_shipped_models(capsys):
    from affectstream.engines import list_models

    code = main(["models", "--json"])
    listed = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [m["name"] for m in listed] == [m.name for m in list_models()]
    code = main(["models"])
    out = capsys.readouterr().out
    if listed:
        assert code == 0 and listed[0]["name"] in out
    else:
        assert code == 1 and "no models" in out
