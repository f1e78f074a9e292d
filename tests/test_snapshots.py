"""Snapshot pictures: any frame and any faces give a JPEG within the size cap at the configured width, or
nothing; and the writer writes only what a dashboard asked for (real Redis)."""

from __future__ import annotations

import time

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from affectstream.pipeline.config import SnapshotsConfig
from affectstream.pipeline.runtime.snapshots import SnapshotWriter, encode_snapshot
from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.keys import snapshot_key, snapshot_request_key
from affectstream.pipeline.types import FaceResult, FrameResult

coord = st.floats(-500, 3000, allow_nan=False)
faces = st.lists(
    st.builds(
        lambda box, track, expr, v, a: FaceResult(
            track, sorted(box[:2]) + sorted(box[2:]), 0.9, [[box[0], box[1]]], expr, {expr: 0.7}, v, a
        ),
        st.lists(coord, min_size=4, max_size=4),
        st.integers(0, 10**6),
        st.sampled_from(["Happy", "Neutral", "a-label-nobody-planned \u00e9\u4e2d"]),
        st.none() | st.floats(-1, 1),
        st.none() | st.floats(-1, 1),
    ),
    max_size=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    h=st.integers(16, 1200),
    w=st.integers(16, 1600),
    width=st.integers(64, 640),
    cap=st.integers(16_384, 65536),
    noise=st.booleans(),
    found=faces,
)
def test_snapshot_fits_the_cap_at_the_width_or_is_skipped(h, w, width, cap, noise, found):
    import cv2

    rng = np.random.default_rng(h * w)
    image = rng.integers(0, 256, (h, w, 3), np.uint8) if noise else np.full((h, w, 3), 90, np.uint8)
    jpeg = encode_snapshot(image, FrameResult("cam", 0, 0.0, time.time(), found), width, cap)
    if jpeg is None:
        assert noise  # only a picture of noise can be too big at the lowest quality
        return
    assert len(jpeg) <= cap
    picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    shown = min(width, w)  # never enlarged
    assert picture.shape[1] == shown and abs(picture.shape[0] - h * shown / w) <= 1


def test_writer_writes_only_requested_sources_with_expiry(redis_url):
    client = connect(redis_url)
    cfg = SnapshotsConfig(enabled=True, every_s=0.5, width=160, max_bytes=20000)
    writer = SnapshotWriter(connect(redis_url), cfg)
    writer.start()
    image = np.full((240, 320, 3), 120, np.uint8)
    client.set(snapshot_request_key("asked"), 1, ex=10)
    try:
        for frame in range(3):
            for source in ("asked", "unasked"):
                writer.offer(image, FrameResult(source, frame, 0.0, time.time()))
        deadline = time.monotonic() + 5
        while not client.exists(snapshot_key("asked")) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        writer.close()
    assert client.exists(snapshot_key("asked")) and not client.exists(snapshot_key("unasked"))
    assert writer.written == 1  # one per source per every_s: the next two offers came too soon
    assert 0 < client.pttl(snapshot_key("asked")) <= 1500
