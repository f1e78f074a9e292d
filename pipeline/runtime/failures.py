"""What ends one source of a worker for good while the others go on, and who is told.

Three things do: a file whose reader fails (an `error` event: the file cannot be read), a stream that
refuses writes for good (the outbox gives up on it), and a fenced write (the source's lease is held by
someone else now). Each stops reading the source at once. The supervisor is told (`report`) for a
configured source, so `run` exits with `EXIT_SOURCES_FAILED` naming it; a fleet camera's fenced write is
queued for its member's claim loop (`fenced`), which releases the camera instead.
"""

from __future__ import annotations

import queue
from collections.abc import Callable


class SourceFailures:
    """A worker's record of sources that failed for good.

    Args:
        stop_reading: Stops taking frames of a source (`Intake.stop_reading`).
        report: Called with (source, reason) for each source that failed for good; None: nobody to tell.
        files: Names of the file sources (a reader error fails those; a camera reconnects instead).
        fenced_sources: Names of the sources under the run's own writer lease (not a fleet member's).
    """

    def __init__(
        self,
        stop_reading: Callable[[str], None],
        report: Callable[[str, str], None] | None,
        *,
        files: set[str],
        fenced_sources: set[str],
    ) -> None:
        self._stop_reading = stop_reading
        self._report = report
        self._files = files
        self._fenced_sources = fenced_sources
        self._fenced: queue.SimpleQueue = queue.SimpleQueue()  # fleet cameras whose lease turned out lost
        self.reader_errors: dict[str, str] = {}  # file sources whose reader failed (name -> reason)

    def on_event(self, source: str, kind: str, detail: dict) -> None:
        """A reader's event: an `error` of a file fails it."""
        if kind == "error" and source in self._files:
            self.reader_errors[source] = str(detail.get("reason", "error"))
            self._failed(source, self.reader_errors[source])

    def on_publish_failed(self, source: str, reason: str) -> None:
        """A stream of `source` refuses writes for good."""
        self._stop_reading(source)
        self._failed(source, reason)

    def on_fenced(self, source: str, holder: str) -> None:
        """A write of `source` was fenced: its lease is `holder`'s now."""
        self._stop_reading(source)
        if source in self._fenced_sources:
            self._failed(
                source,
                f"run {holder or 'unknown'} took over writing {source}'s streams; this run stopped writing them",
            )
        else:
            self._fenced.put((source, holder))

    def fenced(self) -> list[tuple[str, str]]:
        """(source, holder) of every fenced write of a fleet camera since the last call."""
        out = []
        while not self._fenced.empty():
            out.append(self._fenced.get())
        return out

    def _failed(self, source: str, reason: str) -> None:
        if self._report is not None:
            self._report(source, reason)
