"""Work sharing in the prepare stage: any thread takes any frame, each source stays in frame order."""

from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest

from affectstream.pipeline.frames.context import SourceContext
from affectstream.pipeline.runtime.lanes import LaneAborted, SourceLane
from affectstream.pipeline.sources._buffer import FrameBuffer
from affectstream.pipeline.types import Frame


class ListSource:
    """A finished file-like source holding `n` frames (the real reader's buffer semantics)."""

    def __init__(self, name: str, n: int) -> None:
        self.name = name
        self._buffer = FrameBuffer(n + 1, keep_newest=False)
        for i in range(n):
            self._buffer.put(
                Frame(name, i, i / 30.0, time.time(), np.zeros((1, 1, 3), np.uint8)), threading.Event()
            )
        self._buffer.close()

    def get(self, timeout: float):
        return self._buffer.get(timeout)

    @property
    def finished(self) -> bool:
        return self._buffer.drained


def test_threads_share_sources_and_each_source_keeps_frame_order():
    lanes = [
        SourceLane(ListSource(name, n), SourceContext(name)) for name, n in (("a", 300), ("b", 40), ("c", 5))
    ]
    out: list[tuple[str, int, str]] = []
    rng = random.Random(0)

    def work() -> None:
        cursor = 0
        while not all(lane.finished for lane in lanes):
            for k in range(len(lanes)):
                lane = lanes[(cursor + k) % len(lanes)]
                if (taken := lane.take()) is not None:
                    cursor += 1
                    break
            else:
                time.sleep(0.0005)
                continue
            time.sleep(rng.random() * 0.002)  # "detection" takes a varying time, out of order
            with taken.lane.in_order(taken.seq, aborted=lambda: False):
                out.append((taken.frame.source, taken.frame.index, threading.current_thread().name))

    threads = [threading.Thread(target=work, name=f"t{i}") for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for name, n in (("a", 300), ("b", 40), ("c", 5)):
        assert [i for s, i, _ in out if s == name] == list(range(n))
    # The long source was not left to one thread: every thread worked on it.
    assert {t for s, _, t in out if s == "a"} == {"t0", "t1", "t2"}


def test_skip_until_drops_published_frames_and_detect_due_sees_the_rest_in_order():
    lane = SourceLane(ListSource("a", 10), SourceContext("a", detect_every=3), skip_until=6)
    taken = [lane.take(), lane.take(), lane.take()]
    assert [(t.frame.index, t.seq, t.detect) for t in taken] == [(7, 0, True), (8, 1, False), (9, 2, False)]
    assert lane.take() is None and lane.finished


def test_take_returns_none_while_another_thread_takes():
    lane = SourceLane(ListSource("a", 3), SourceContext("a"))
    with lane._take:  # another thread holds the lane
        assert lane.take() is None
    assert lane.take().frame.index == 0


def test_a_waiter_is_released_when_the_worker_fails():
    lane = SourceLane(ListSource("a", 3), SourceContext("a"))
    lane.take()  # frame 0: taken by a thread that then dies
    second = lane.take()
    failed = threading.Event()
    errors = []

    def wait_second() -> None:
        try:
            with lane.in_order(second.seq, aborted=failed.is_set):
                errors.append("admitted")
        except LaneAborted as exc:
            errors.append(str(exc))

    t = threading.Thread(target=wait_second)
    t.start()
    time.sleep(0.2)
    assert t.is_alive()  # frame 0 never passed: frame 1 waits
    failed.set()  # the thread holding frame 0 died
    t.join(2)
    assert not t.is_alive()
    assert errors and "abandoned" in errors[0]


def test_in_order_admits_the_next_frame_after_an_exception():
    lane = SourceLane(ListSource("a", 2), SourceContext("a"))
    first, second = lane.take(), lane.take()
    with pytest.raises(ValueError), lane.in_order(first.seq, aborted=lambda: False):
        raise ValueError("tracking failed")
    with lane.in_order(second.seq, aborted=lambda: False):
        pass
