"""The detector when none is configured: `$AFFECTSTREAM_DETECTOR`, else the shared folder's SCRFD-500M when
it is there (so README's commands work offline after `make demo`), else insightface's `buffalo_sc` pack."""

from __future__ import annotations

from pathlib import Path

from affectstream.pipeline.config import load_config
from affectstream.pipeline.frames.detector_files import DEFAULT_PACK, configured_detector
from affectstream.settings import env


def _shared(root: Path) -> Path:
    model = root / "models" / "scrfd_500m.onnx"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"onnx")
    return model


def test_the_shared_folder_s_detector_is_the_default(tmp_path, monkeypatch):
    model = _shared(tmp_path / "shared")
    monkeypatch.delenv(env.DETECTOR, raising=False)
    monkeypatch.setenv(env.SHARED, str(tmp_path / "shared"))
    assert configured_detector() == str(model.resolve())
    assert load_config(None, {}).detector.model == str(model.resolve())


def test_relative_to_the_working_directory_by_default(tmp_path, monkeypatch):
    model = _shared(tmp_path / "shared")
    (tmp_path / "checkout").mkdir()
    monkeypatch.chdir(tmp_path / "checkout")
    monkeypatch.delenv(env.DETECTOR, raising=False)
    monkeypatch.delenv(env.SHARED, raising=False)
    assert configured_detector() == str(model.resolve())  # ../shared, an absolute path for the workers


def test_the_environment_and_the_config_win(tmp_path, monkeypatch):
    _shared(tmp_path / "shared")
    monkeypatch.setenv(env.SHARED, str(tmp_path / "shared"))
    monkeypatch.setenv(env.DETECTOR, "/models/mine.onnx")
    assert configured_detector() == "/models/mine.onnx"
    assert configured_detector("buffalo_l") == "buffalo_l"
    assert load_config(None, {"detector": {"model": "buffalo_l"}}).detector.model == "buffalo_l"


def test_without_a_shared_folder_the_insightface_pack(tmp_path, monkeypatch):
    monkeypatch.delenv(env.DETECTOR, raising=False)
    monkeypatch.setenv(env.SHARED, str(tmp_path / "nowhere"))
    assert configured_detector() == DEFAULT_PACK
    assert load_config(None, {}).detector.model == DEFAULT_PACK
