"""TensorRT 10.x and 11.x by feature detection, and the GPU-less paths, without a GPU.

TensorRT's Python bindings install from PyPI but their libraries (`tensorrt-cu1x-libs`) download from
NVIDIA's own index at install time, so a CPU machine without that index cannot load real bindings.
These tests load `engines.tensorrt` and `engines.trt_build` against stand-in modules shaped like each
release's API (10.x: FP16/INT8 flags and `IInt8EntropyCalibrator2`; 11.x: neither) and record what
the build asks of the builder; `test_engine_tensorrt.py` builds real plans where TensorRT and a GPU exist.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest

from affectstream.engines.errors import BackendUnavailable

OURS = (
    "affectstream.engines._trt",
    "affectstream.engines.tensorrt",
    "affectstream.engines.trt_build",
)  # re-imported over each stand-in
MODULES = ("tensorrt", "pycuda", "pycuda.driver", *OURS)


class Recorder:
    """What the build asked of the stand-in builder."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __call__(self, *call) -> None:
        self.calls.append(call)

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


def fake_tensorrt(version: str, *, legacy: bool, rec: Recorder) -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version

    class ILogger:
        class Severity:
            INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

        def __init__(self) -> None:
            pass

    trt.ILogger = ILogger
    flag_names = ["TF32", "FP16", "INT8"] if legacy else ["TF32"]  # 11.x removed FP16/INT8
    trt.BuilderFlag = types.SimpleNamespace(**{name: name for name in flag_names})
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=3)
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="workspace")
    if legacy:
        trt.IInt8EntropyCalibrator2 = type("IInt8EntropyCalibrator2", (), {"__init__": lambda self: None})

    class Config:
        def set_memory_pool_limit(self, *a):
            rec("pool", *a)

        def add_optimization_profile(self, p):
            rec("profile")

        def set_flag(self, flag):
            rec("set_flag", flag)

        def clear_flag(self, flag):
            rec("clear_flag", flag)

    class Profile:
        def set_shape(self, *a):
            rec("set_shape", *a)

    class Builder:
        def __init__(self, logger) -> None:
            pass

        def create_network(self, flags):
            rec("create_network", flags)
            return object()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            return b"plan"

    class OnnxParser:
        num_errors = 0

        def __init__(self, network, logger) -> None:
            pass

        def parse_from_file(self, path):
            rec("parse", path, Path(path).read_bytes())
            return True

    trt.Builder, trt.OnnxParser = Builder, OnnxParser
    return trt


def fake_pycuda(*, gpus: int, rec: Recorder):
    pycuda = types.ModuleType("pycuda")
    driver = types.ModuleType("pycuda.driver")

    class Error(Exception):
        pass

    class Context:
        @staticmethod
        def pop():
            rec("pop")

    class Primary:
        def push(self):
            rec("push")

        def detach(self):
            rec("detach")

    class Device:
        def __init__(self, i) -> None:
            self.i = i

        @staticmethod
        def count():
            return gpus

        def retain_primary_context(self):
            rec("retain", self.i)
            return Primary()

    def init():
        if gpus < 0:
            raise Error("cuInit failed: no CUDA-capable device is detected")

    driver.Error, driver.Context, driver.Device, driver.init = Error, Context, Device, init
    driver.get_version = lambda: (13, 0, 0)
    pycuda.driver = driver
    return pycuda, driver


@pytest.fixture
def stand_in(monkeypatch):
    """`install(version, legacy, gpus)` puts stand-ins in sys.modules and returns (tensorrt module, trt_build, rec)."""
    saved = {name: sys.modules.get(name) for name in MODULES}

    def install(version: str, *, legacy: bool, gpus: int = 1):
        rec = Recorder()
        pycuda, driver = fake_pycuda(gpus=gpus, rec=rec)
        for name, module in (
            ("tensorrt", fake_tensorrt(version, legacy=legacy, rec=rec)),
            ("pycuda", pycuda),
            ("pycuda.driver", driver),
        ):
            sys.modules[name] = module
        for name in OURS:
            sys.modules.pop(name, None)
        import affectstream.engines.tensorrt as backend

        return backend, rec

    yield install
    for name, module in saved.items():
        if module is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = module


def test_capabilities_by_feature_not_version(stand_in):
    stand_in("11.4.0", legacy=False)
    trt_build = importlib.import_module(
        "affectstream.engines.trt_build"
    )  # before the fix: AttributeError at import

    eleven = trt_build.capabilities()
    assert (eleven.precision_flags, eleven.strongly_typed, eleven.mode) == (False, True, "strongly-typed")
    stand_in("10.16.1", legacy=True)
    ten = importlib.import_module("affectstream.engines.trt_build").capabilities()
    assert (ten.precision_flags, ten.mode) == (True, "builder-flags")


@pytest.mark.parametrize("legacy", [True, False], ids=["10.x", "11.x"])
def test_fp32_plans_clear_tf32(stand_in, tmp_path, legacy):
    backend, rec = stand_in("10.16.1" if legacy else "11.4.0", legacy=legacy)
    from affectstream.engines import default_model_path
    from affectstream.engines.cache import DeviceInfo, make_key
    from affectstream.engines.spec import EngineSpec
    from affectstream.engines.trt_build import build_plan

    onnx = default_model_path()
    key = make_key(onnx, DeviceInfo("H200", "9.0", "x", "13"), precision="fp32", max_batch=8)
    build_plan(onnx, tmp_path / "p.plan", key, EngineSpec.from_onnx(onnx))
    assert ("clear_flag", "TF32") in rec.calls
    assert not [c for c in rec.calls if c[0] == "set_flag"]
    assert ("create_network", 0 if legacy else 1 << 3) in rec.calls
    assert (tmp_path / "p.plan").read_bytes() == b"plan"


def test_fp16_on_10x_sets_the_flag_and_on_11x_parses_an_fp16_onnx(stand_in, tmp_path):
    from affectstream.engines import default_model_path
    from affectstream.engines.cache import DeviceInfo, make_key
    from affectstream.engines.spec import EngineSpec

    onnx = default_model_path()
    spec = EngineSpec.from_onnx(onnx)
    key = make_key(onnx, DeviceInfo("H200", "9.0", "x", "13"), precision="fp16", max_batch=8)
    _, rec10 = stand_in("10.16.1", legacy=True)
    from affectstream.engines.trt_build import build_plan

    build_plan(onnx, tmp_path / "a.plan", key, spec)
    assert ("set_flag", "FP16") in rec10.calls
    assert [c[1] for c in rec10.calls if c[0] == "parse"] == [str(onnx)]

    _, rec11 = stand_in("11.4.0", legacy=False)
    from affectstream.engines.trt_build import build_plan as build_plan_11

    build_plan_11(onnx, tmp_path / "b.plan", key, spec)
    assert not [c for c in rec11.calls if c[0] in ("set_flag", "clear_flag")]  # types come from the file
    (parsed,) = [c for c in rec11.calls if c[0] == "parse"]
    assert parsed[1].endswith("model_fp16.onnx")
    import onnx as onnx_lib

    model = onnx_lib.load_model_from_string(parsed[2])
    assert any(i.data_type == onnx_lib.TensorProto.FLOAT16 for i in model.graph.initializer)


def test_int8_on_11x_without_crops_says_what_to_set(stand_in, tmp_path):
    stand_in("11.4.0", legacy=False)
    from affectstream.engines import default_model_path
    from affectstream.engines.cache import DeviceInfo, make_key
    from affectstream.engines.errors import EngineBuildError
    from affectstream.engines.spec import EngineSpec
    from affectstream.engines.trt_build import build_plan

    onnx = default_model_path()
    key = make_key(onnx, DeviceInfo("H200", "9.0", "x", "13"), precision="int8", max_batch=8)
    with pytest.raises(EngineBuildError, match="engine.calibration_dir"):
        build_plan(onnx, tmp_path / "p.plan", key, EngineSpec.from_onnx(onnx))


def test_no_gpu_is_unavailable_before_the_builder_is_imported(stand_in, tmp_path):
    backend, rec = stand_in("11.4.0", legacy=False, gpus=0)
    from affectstream.engines import default_model_path

    with pytest.raises(BackendUnavailable, match="no NVIDIA GPU is visible"):
        backend.build_cached_plan(default_model_path(), cache_dir=tmp_path)
    assert "affectstream.engines.trt_build" not in sys.modules
    assert not list(tmp_path.iterdir())


def test_primary_context_is_retained_once_and_never_detached(stand_in):
    backend, rec = stand_in("10.16.1", legacy=True, gpus=2)
    assert backend.primary_context(0) is backend.primary_context(0)
    backend.primary_context(1)
    with backend._pushed(backend.primary_context(0)):
        pass
    assert rec.names().count("retain") == 2 and "detach" not in rec.names()
    assert rec.names().count("push") == rec.names().count("pop") == 1


def test_close_waits_for_a_running_infer(stand_in):
    """`_release` takes the engine lock: a close() during infer() must not free live buffers."""
    backend, rec = stand_in("10.16.1", legacy=True)
    engine = object.__new__(backend.TensorRTEngine)
    engine._lock = threading.Lock()
    engine._ctx = backend.primary_context(0)
    engine._stream = types.SimpleNamespace(synchronize=lambda: rec("sync"))
    engine._dev = {"input": types.SimpleNamespace(free=lambda: rec("free"))}
    engine._host = {}
    engine._closed = False
    engine._lock.acquire()  # an infer() in flight
    closer = threading.Thread(target=engine.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive() and "free" not in rec.names()
    engine._lock.release()
    closer.join(5)
    assert not closer.is_alive() and rec.names()[-1] == "pop" and "free" in rec.names()


def _cli_build(tmp_path: Path, fake_trt_init: str | None) -> subprocess.CompletedProcess:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"engine:\n  backend: tensorrt\n  cache_dir: {tmp_path / 'engines'}\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    if fake_trt_init is not None:
        pkg = tmp_path / "site" / "tensorrt"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text(fake_trt_init)
        env["PYTHONPATH"] = str(tmp_path / "site")
    repo = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, "-m", "affectstream.pipeline.cli.main", "engine", "build", "-c", str(cfg)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("installed", ["libraries missing", "bindings load, no GPU"])
def test_engine_build_with_tensorrt_installed_but_no_gpu_exits_3_in_one_line(tmp_path, installed):
    """The bindings without their libraries raise a bare ImportError (no module name), as the real
    `tensorrt_bindings` does without `tensorrt-cu1x-libs`; with libraries but no GPU, pycuda fails."""
    if installed == "libraries missing":
        init = "raise ImportError('libnvonnxparser.so.10: cannot open shared object file: No such file or directory')\n"
    else:
        init = "__version__ = '11.4.0'\n"  # importable; pycuda (absent here, or without a driver) stops the build
    result = _cli_build(tmp_path, init)
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot build a TensorRT engine on this machine"), (
        lines
    )
    assert "Traceback" not in result.stderr and not (tmp_path / "engines").exists()


def test_engine_build_without_tensorrt_exits_3_in_one_line(tmp_path):
    result = _cli_build(tmp_path, None)
    assert result.returncode == 3 and len(result.stderr.strip().splitlines()) == 1, result.stderr
