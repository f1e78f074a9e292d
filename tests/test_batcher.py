import queue
import threading
import time
from types import SimpleNamespace

from affectstream.pipeline.runtime.batcher import STOP, MicroBatcher


def item(n_faces, tag=None):
    return SimpleNamespace(faces=[0] * n_faces, tag=tag)


def test_cuts_at_max_faces_and_keeps_order():
    q = queue.Queue()
    for i in range(6):
        q.put(item(3, i))
    q.put(STOP)
    b = MicroBatcher(q, max_faces=8, max_wait_ms=50)
    batches = []
    while batch := b.next_batch():
        batches.append([x.tag for x in batch])
    assert batches == [[0, 1, 2], [3, 4, 5]]
    assert b.next_batch() == []


def test_waits_at_most_max_wait_for_more_faces():
    q = queue.Queue()
    q.put(item(1))
    b = MicroBatcher(q, max_faces=32, max_wait_ms=30)
    t = time.monotonic()
    assert len(b.next_batch()) == 1
    assert 0.025 <= time.monotonic() - t < 0.5


def test_late_item_within_wait_joins_batch():
    q = queue.Queue()
    q.put(item(1, "a"))
    threading.Timer(0.01, q.put, args=(item(1, "b"),)).start()
    b = MicroBatcher(q, max_faces=32, max_wait_ms=200)
    assert [x.tag for x in b.next_batch()] == ["a", "b"]


def test_faceless_frames_do_not_wait():
    q = queue.Queue()
    q.put(item(0))
    b = MicroBatcher(q, max_faces=32, max_wait_ms=1000)
    t = time.monotonic()
    assert len(b.next_batch()) == 1
    assert time.monotonic() - t < 0.1


def test_idle_producer_cuts_the_batch_at_once():
    q = queue.Queue()
    q.put(item(1))
    b = MicroBatcher(q, max_faces=8, max_wait_ms=500, producer_idle=lambda: True)
    t = time.monotonic()
    assert len(b.next_batch()) == 1
    assert time.monotonic() - t < 0.1


def test_busy_producer_is_waited_for_until_it_goes_idle():
    q = queue.Queue()
    q.put(item(1))
    idle = threading.Event()
    threading.Timer(0.05, q.put, args=(item(1),)).start()
    threading.Timer(0.15, idle.set).start()
    b = MicroBatcher(q, max_faces=8, max_wait_ms=2000, producer_idle=idle.is_set)
    t = time.monotonic()
    assert len(b.next_batch()) == 2
    assert 0.1 < time.monotonic() - t < 0.5
