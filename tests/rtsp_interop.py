"""Camera interop helpers: media in the shapes cameras send, servers nobody here wrote, a lossy relay.

- `encode` makes a clip with ffmpeg in one of `SHAPES` (multi-slice H.264, HEVC, B-frames, an odd size, a
  resolution change mid-stream) from a shared video; clips are made per test session, never committed.
- `VlcServer` runs Debian's VLC (`cvlc`, RTSP output: UDP only, it answers a TCP SETUP with 461) as a
  non-root user, as VLC refuses to run as root.
- `LossyRelay` sits between a client and an RTSP server over TCP-interleaved RTP and drops a share of the
  RTP packets (seeded), so pictures lose slices in transit as they do on a lossy camera link.
- `read_camera` reads a URL through the pipeline's `Source` and scores each delivered frame with SCRFD.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from affectstream.settings import env
from tests.rtsp_fixtures import free_port

VLC_PACKAGES = "vlc-bin vlc-plugin-base"
# ffmpeg arguments per shape: what the clip's video is; every clip has a keyframe each second (24 fps).
_X264 = ["-c:v", "libx264", "-preset", "veryfast", "-g", "24", "-pix_fmt", "yuv420p"]
SHAPES: dict[str, list[str]] = {
    "slices4": [*_X264, "-bf", "0", "-x264-params", "slices=4"],
    "slice-max-size": [*_X264, "-bf", "0", "-x264-params", "slice-max-size=1200"],
    "hevc": [
        "-c:v",
        "libx265",
        "-preset",
        "veryfast",
        "-g",
        "24",
        "-x265-params",
        "log-level=error",
        "-tag:v",
        "hvc1",
        "-pix_fmt",
        "yuv420p",
    ],
    "bframes": [*_X264, "-bf", "3", "-x264-params", "slices=2"],
    "odd-size": [*_X264, "-bf", "0", "-vf", "scale=718:406", "-x264-params", "slices=3"],
}
# The resolution change: the first half at the source size, the second at 960x540, one MPEG-TS stream.
RESIZE = "resize"
CODECS = {RESIZE: "h264", "hevc": "h265"}


def encode(src: Path, out_dir: Path, shape: str, frames: int) -> Path:
    """Encode the first `frames` frames of `src` (video only) into `out_dir` in `shape`; returns the file."""
    if shape == RESIZE:
        half = frames // 2
        parts = []
        for i, (start, vf) in enumerate(((0, "null"), (half, "scale=960:540"))):
            part = out_dir / f"{RESIZE}-{i}.ts"
            _ffmpeg(
                [
                    "-i",
                    str(src),
                    "-vf",
                    f"select=gte(n\\,{start}),setpts=N/FRAME_RATE/TB,{vf}",
                    "-frames:v",
                    str(half),
                    "-an",
                    *SHAPES["slices4"],
                    "-output_ts_offset",
                    str(i * half / 24),
                    str(part),
                ]
            )
            parts.append(part)
        out = out_dir / f"{RESIZE}.ts"
        out.write_bytes(b"".join(p.read_bytes() for p in parts))  # MPEG-TS concatenates byte-wise
        return out
    out = out_dir / f"{shape}.mp4"
    _ffmpeg(["-i", str(src), "-frames:v", str(frames), "-an", *SHAPES[shape], str(out)])
    return out


def _ffmpeg(args: list[str]) -> None:
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr[-2000:]}")


def need_tool(tool: str, packages: str) -> None:
    """Skip (or fail in CI) when `tool` is not installed."""
    if shutil.which(tool):
        return
    msg = f"{tool} is not installed; apt-get install {packages}"
    if os.environ.get(env.REQUIRE_SHARED) == "1":
        pytest.fail(msg)
    pytest.skip(msg)


def _as_unprivileged(cmd: list[str]) -> list[str]:
    """`cmd` run as `nobody` when we are root (VLC refuses root), unchanged otherwise."""
    if os.geteuid() != 0:
        return cmd
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", *cmd]


@dataclass
class VlcServer:
    """VLC's RTSP output (`#rtp{sdp=rtsp://...}`) playing `media` in a loop on 127.0.0.1:`port`/cam.

    VLC plays as soon as it starts, whether or not anyone watches (like a camera): clients join mid-stream.
    """

    media: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    _dir: str | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self, timeout: float = 20.0) -> VlcServer:
        # The unprivileged user cannot read pytest's private tmp_path: the clip goes to a readable folder.
        self._dir = tempfile.mkdtemp(prefix="affectstream-vlc-")
        os.chmod(self._dir, 0o755)
        clip = Path(self._dir) / self.media.name
        shutil.copyfile(self.media, clip)
        os.chmod(clip, 0o644)
        cmd = [
            "cvlc",
            "--intf",
            "dummy",
            "--no-audio",
            "--loop",
            "--no-video-title-show",
            str(clip),
            "--sout",
            f"#rtp{{sdp=rtsp://127.0.0.1:{self.port}/cam}}",
            "--sout-keep",
        ]
        self.proc = subprocess.Popen(
            _as_unprivileged(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self._dir
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cvlc exited {self.proc.returncode} before listening on {self.port}")
            if self._describes():
                return self
            time.sleep(0.2)
        raise RuntimeError(f"cvlc did not listen on {self.port} within {timeout:g} s")

    def _describes(self) -> bool:
        """Whether VLC answers DESCRIBE with 200 (it listens before its stream is set up: 5xx until then)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
                conn.sendall(f"DESCRIBE {self.url} RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode())
                return conn.recv(64).startswith(b"RTSP/1.0 200")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)


class LossyRelay:
    """A TCP relay in front of an RTSP server that drops `loss` of the interleaved RTP video packets.

    Clients use `url` with `rtsp_transport: tcp`; RTSP messages and RTCP pass untouched, RTP packets on
    channel 0 are dropped at random (seeded), whole, as a lossy network drops datagrams.
    """

    def __init__(self, upstream_port: int, path: str, loss: float, seed: int = 25) -> None:
        self.upstream_port = upstream_port
        self.path = path
        self.loss = loss
        self.dropped = 0
        self.forwarded = 0
        self._rng = random.Random(seed)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{self.path}"

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pipe, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, self._split), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, keep) -> None:
        """Copy `src` to `dst`; `keep(buffer)` -> (bytes to send, rest to keep) filters when given.

        The client's requests name the relay's port in their URLs; the server answers them anyway.
        """
        buf = b""
        try:
            while data := src.recv(65536):
                out, buf = keep(buf + data) if keep else (data, b"")
                if out:
                    dst.sendall(out)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                s.close()

    def _split(self, buf: bytes) -> tuple[bytes, bytes]:
        """Whole messages of `buf` to forward (lost RTP packets left out), and the incomplete rest."""
        out = []
        while buf:
            if buf[0:1] == b"$":  # interleaved frame: $, channel, 16-bit length, payload
                if len(buf) < 4:
                    break
                size = 4 + int.from_bytes(buf[2:4], "big")
                if len(buf) < size:
                    break
                if buf[1] == 0 and self._rng.random() < self.loss:
                    self.dropped += 1
                else:
                    self.forwarded += buf[1] == 0
                    out.append(buf[:size])
                buf = buf[size:]
                continue
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[: end + 4]
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            if len(buf) < end + 4 + length:
                break
            out.append(buf[: end + 4 + length])
            buf = buf[end + 4 + length :]
        return b"".join(out), buf


@dataclass
class Reading:
    """What a camera delivered to the pipeline.

    Attributes:
        faces: Faces found in each delivered frame, in order.
        pts: Each delivered frame's pts (s).
        sizes: Each delivered frame's (width, height).
        thumbs: Each delivered frame, 32x18 grey (to find it among the file's frames).
        stats: The source's counters at the end.
        events: (kind, detail) of every event.
    """

    faces: list[int] = field(default_factory=list)
    pts: list[float] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)
    thumbs: list = field(default_factory=list)
    stats: object = None
    events: list[tuple[str, dict]] = field(default_factory=list)

    @property
    def face_share(self) -> float:
        return sum(n > 0 for n in self.faces) / max(1, len(self.faces))

    def add(self, image, detector, pts: float) -> None:
        import cv2

        self.faces.append(len(detector.detect(image)))
        self.pts.append(pts)
        self.sizes.append((image.shape[1], image.shape[0]))
        self.thumbs.append(
            cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (32, 18), interpolation=cv2.INTER_AREA)
        )

    def unmatched(self, reference: Reading, tolerance: float = 1.0) -> int:
        """Delivered frames that are none of `reference`'s frames (mean grey difference above `tolerance`):
        a picture with a green or stale part, or one damaged in transit."""
        import numpy as np

        ref = np.stack(reference.thumbs).astype(np.float32)
        return sum(
            float(np.abs(ref - t.astype(np.float32)).mean(axis=(1, 2)).min()) > tolerance for t in self.thumbs
        )


def read_camera(
    url: str, detector, *, frames: int, seconds: float, until_end: bool = False, **spec: object
) -> Reading:
    """Read `url` with the pipeline's reader until `frames` frames, `seconds`, or (`until_end`) the end of
    the first connection's stream; each frame is scored by `detector` as it arrives."""
    from affectstream.pipeline.sources import SourceSpec, open_source

    got = Reading()
    src = open_source(
        SourceSpec("cam", url, **spec), lambda _n, kind, detail: got.events.append((kind, detail))
    ).start()
    deadline = time.monotonic() + seconds
    try:
        while len(got.faces) < frames and time.monotonic() < deadline:
            if until_end and any(kind == "reconnecting" for kind, _ in got.events):
                break
            frame = src.get(0.2)
            if frame is None:
                continue
            got.add(frame.image, detector, frame.pts)
    finally:
        src.stop()
    got.stats = src.stats
    return got


def read_file(path: Path, detector) -> Reading:
    """The same scoring over every frame of a local file (the reference a camera is compared with)."""
    from affectstream.pipeline.sources import read_video

    got = Reading()
    for frame in read_video(path):
        got.add(frame.image, detector, frame.pts)
    return got
