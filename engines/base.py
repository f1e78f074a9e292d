"""The one interface every inference backend offers, and the batching shared by all of them.

A backend is anything with `spec`, `max_batch`, `infer` and `close` (the `Engine` Protocol).
`ChunkedEngine` is an optional base class that validates the input once and splits batches larger
than `max_batch`, so a backend only implements `_run` for one batch of at most `max_batch` faces.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from affectstream.engines.errors import EngineInputError
from affectstream.engines.spec import EngineSpec


@runtime_checkable
class Engine(Protocol):
    """An MTL-GCN inference backend.

    Attributes:
        spec: What the model expects and predicts.
        max_batch: Largest batch run in one call; larger inputs are split by the engine itself.
    """

    spec: EngineSpec
    max_batch: int

    def infer(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities and valence/arousal for a batch of aligned, normalised faces.

        Args:
            faces: float32 array [N, C, H, W] with C, H, W from `spec`.

        Returns:
            probs: float32 [N, len(spec.labels)], each row summing to 1.
            va: float32 [N, 2] (valence, arousal), NaN-filled when `spec.has_va` is false.
        """
        ...

    def close(self) -> None:
        """Release sessions, device memory and streams. Idempotent."""
        ...


def validate_faces(faces: np.ndarray, spec: EngineSpec) -> np.ndarray:
    """The batch as a C-contiguous float32 array, or an error naming what is wrong with it."""
    if not isinstance(faces, np.ndarray):
        raise EngineInputError(f"faces must be a numpy array, got {type(faces).__name__}")
    expected = (spec.channels, *spec.input_size)
    if faces.ndim != 4 or tuple(faces.shape[1:]) != expected:
        raise EngineInputError(
            f"faces must have shape [N, {expected[0]}, {expected[1]}, {expected[2]}] for model "
            f"{spec.model_id!r} ({spec.colour}), got {list(faces.shape)}"
        )
    if faces.dtype != np.float32:
        # A float64 batch silently doubles the copy cost; only exact float types are converted.
        if not np.issubdtype(faces.dtype, np.floating):
            raise EngineInputError(f"faces must be float32 (normalised), got dtype {faces.dtype}")
        faces = faces.astype(np.float32)
    return np.ascontiguousarray(faces)


def nan_va(n: int) -> np.ndarray:
    """The `va` output of a model without valence/arousal: NaN, so nobody mistakes it for 0."""
    return np.full((n, 2), np.nan, dtype=np.float32)


class ChunkedEngine:
    """Base of the bundled backends: input checks, chunking by `max_batch`, context manager.

    Subclasses set `spec` and `max_batch` and implement `_run` (one chunk) and `_release`.
    """

    spec: EngineSpec
    max_batch: int
    _closed: bool = False

    def _run(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Run one chunk of 1..max_batch faces; return probs and va (None when the model has none)."""
        raise NotImplementedError

    def _release(self) -> None:
        """Free backend resources; called once by `close`."""

    def infer(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._closed:
            raise EngineInputError(f"{type(self).__name__} for {self.spec.model_id!r} is closed")
        faces = validate_faces(faces, self.spec)
        n = faces.shape[0]
        classes = len(self.spec.labels)
        if n == 0:
            return np.zeros((0, classes), np.float32), np.zeros((0, 2), np.float32)
        probs_parts, va_parts = [], []
        for start in range(0, n, self.max_batch):
            probs, va = self._run(faces[start : start + self.max_batch])
            probs_parts.append(np.asarray(probs, dtype=np.float32).reshape(-1, classes))
            if va is None:
                va_parts.append(nan_va(probs_parts[-1].shape[0]))
            else:
                va_parts.append(np.asarray(va, dtype=np.float32).reshape(-1, 2))
        if len(probs_parts) == 1:
            return probs_parts[0], va_parts[0]
        return np.concatenate(probs_parts), np.concatenate(va_parts)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._release()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.spec.model_id!r}, max_batch={self.max_batch})"
