"""`affectstream render` on real media: on the fly through the pipeline, and from a results stream."""

from __future__ import annotations

import numpy as np
import pytest

from affectstream.pipeline.cli.main import main as cli_main
from affectstream.pipeline.consumers.render import render_live
from affectstream.pipeline.sources import probe, read_video
from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.writer import ResultPublisher
from tests.conftest import need_shared


def decoded(path) -> tuple[int, int, int, object, np.ndarray | None]:
    """(frames, width, height, average rate, frame 100) of a video, by decoding all of it."""
    import av

    n, sample = 0, None
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate
        for frame in container.decode(stream):
            if n == 100:
                sample = frame.to_ndarray(format="bgr24")
            n += 1
        return n, stream.codec_context.width, stream.codec_context.height, rate, sample


def test_render_wolfganglanger_keeps_frames_size_rate_and_writes_plots(tmp_path, small_processor):
    video = need_shared("media", "videos", "WolfgangLanger_Pexels.mp4")
    out, plots = tmp_path / "annotated.mp4", tmp_path / "plots"
    stats = render_live(video, out, small_processor(), plots_dir=plots)

    n_in, w_in, h_in, rate_in, frame_in = decoded(video)
    n_out, w_out, h_out, rate_out, frame_out = decoded(out)
    assert (n_out, w_out, h_out) == (n_in, w_in, h_in) == (472, 640, 360)
    assert rate_out == rate_in == probe(video).rate
    assert stats.frames == 472 and stats.missing == 0
    assert stats.faces >= 0.9 * 472  # one face in (nearly) every frame

    # The annotations are really drawn: frame 100 differs from the input far beyond codec noise.
    diff = np.abs(frame_out.astype(np.int16) - frame_in.astype(np.int16)).max(axis=2)
    assert (diff > 80).sum() > 500

    assert stats.plots, "no per-track plot written"
    for path in stats.plots:
        assert path.suffix == ".png" and path.stat().st_size > 20_000
        import matplotlib.image

        img = matplotlib.image.imread(path)
        assert img.shape[0] >= 400 and img.shape[1] >= 800
        assert img[..., :3].std() > 0.1  # not a blank canvas
    main_track = max(stats.plots, key=lambda p: p.stat().st_size)
    assert main_track.name.startswith("track_")


def test_render_from_stream_via_cli(tmp_path, redis_url, small_processor, capsys):
    """Results published to Redis first (real pipeline), then drawn with `affectstream render --redis`."""
    from affectstream.pipeline.frames.processor import iter_file_results

    video = need_shared("media", "videos", "single_face.mp4")
    client = connect(redis_url)
    results = [r for _, r in iter_file_results(str(video), small_processor(), name="clip")]
    ResultPublisher(client, maxlen=10_000).publish(results[:60])  # the last 12 frames have no result
    out = tmp_path / "from_stream.mp4"
    code = cli_main(
        [
            "render",
            str(video),
            "-o",
            str(out),
            "--redis",
            redis_url,
            "--source",
            "clip",
            "--plots",
            str(tmp_path / "plots"),
        ]
    )
    assert code == 0
    printed = capsys.readouterr()
    assert "72 frames" in printed.out and "12 frames had no result" in printed.err
    n, w, h, rate, _ = decoded(out)
    assert (n, w, h) == (72, 640, 360) and rate == probe(video).rate
    assert list((tmp_path / "plots").glob("track_*.png"))


def test_render_errors_name_the_problem(tmp_path, redis_url):
    with pytest.raises(Exception, match="does not exist"):
        probe(tmp_path / "missing.mp4")
    video = need_shared("media", "videos", "single_face.mp4")
    assert (
        cli_main(
            [
                "render",
                str(video),
                "-o",
                str(tmp_path / "x.mp4"),
                "--redis",
                redis_url,
                "--source",
                "nothing-here",
            ]
        )
        == 2
    )
    assert sum(1 for _ in read_video(video)) == 72
