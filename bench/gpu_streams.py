"""End-to-end frames/s on one GPU for N replayed streams, on a machine with torch alone.

Each stream is a thread decoding a video file in a loop with OpenCV (archive mode: nothing is dropped,
a bounded queue applies backpressure); prepare threads detect (SCRFD on torch, `detector.backend:
torch`), track and align each stream's frames in order, exactly as `FrameProcessor.prepare` does; one
engine thread batches the faces of all streams into the MTL-GCN (torch, FP16 with CUDA graphs on a
GPU) and finishes the results. Redis is left out (the GPU machines have no server): the figure is what
decode + detect + align + engine sustain, the ceiling a worker's publisher then has to keep up with.

    python bench/gpu_streams.py --make-clips ../shared/media/videos/WolfgangLanger_Pexels.mp4  # -> var/gpu_media
    python bench/gpu_streams.py --clip var/gpu_media/clip_1080p.mp4 --streams 1,8,32,64 --seconds 6
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _reader(path: str, name: str, out: queue.Queue, stop: threading.Event) -> None:
    """Decode `path` over and over into `out` (blocking when full: nothing is dropped)."""
    import cv2

    from affectstream.pipeline.types import Frame

    index = 0
    while not stop.is_set():
        capture = cv2.VideoCapture(path)
        while not stop.is_set():
            ok, image = capture.read()
            if not ok:
                break
            frame = Frame(source=name, index=index, pts=index / 30.0, ts=time.time(), image=image)
            index += 1
            while not stop.is_set():
                try:
                    out.put(frame, timeout=0.1)
                    break
                except queue.Full:
                    continue
        capture.release()


class Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.frames = self.faces = self.batches = 0

    def add(self, frames: int, faces: int) -> None:
        with self.lock:
            self.frames += frames
            self.faces += faces
            self.batches += 1

    def read(self) -> tuple[int, int, int]:
        with self.lock:
            return self.frames, self.faces, self.batches


def run_streams(  # noqa: PLR0915 (one GPU sitting, read top to bottom)
    clip: str,
    streams: int,
    seconds: float,
    *,
    detectors: list,
    processor,
    max_batch: int,
    warmup: float = 2.0,
) -> dict:
    """Frames/s and faces/s of `streams` replays of `clip` through detect -> align -> engine."""
    stop = threading.Event()
    inputs = [queue.Queue(maxsize=4) for _ in range(streams)]
    prepared: queue.Queue = queue.Queue(maxsize=4 * max_batch)
    counter = Counter()
    errors: list[BaseException] = []
    contexts = {i: processor.new_source(f"stream-{i}") for i in range(streams)}  # fresh tracks per run

    def prepare(k: int) -> None:
        mine = list(range(k, streams, len(detectors)))
        try:
            while not stop.is_set():
                for i in mine:
                    try:
                        frame = inputs[i].get(timeout=0.05)
                    except queue.Empty:
                        continue
                    prepared.put(processor.prepare(frame, contexts[i], detectors[k].detect(frame.image)))
        except BaseException as exc:  # reported after the run
            errors.append(exc)
            stop.set()

    def engine() -> None:
        try:
            while not stop.is_set():
                try:
                    batch = [prepared.get(timeout=0.05)]
                except queue.Empty:
                    continue
                deadline = time.monotonic() + 0.005
                faces = len(batch[0].faces)
                while faces < max_batch and (left := deadline - time.monotonic()) > 0:
                    try:
                        batch.append(prepared.get(timeout=left))
                        faces += len(batch[-1].faces)
                    except queue.Empty:
                        break
                processor.complete(batch)
                counter.add(len(batch), faces)
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    threads = [
        threading.Thread(target=_reader, args=(clip, f"s{i}", inputs[i], stop), daemon=True)
        for i in range(streams)
    ]
    threads += [
        threading.Thread(target=prepare, args=(k,), daemon=True) for k in range(min(len(detectors), streams))
    ]
    threads.append(threading.Thread(target=engine, daemon=True))
    for t in threads:
        t.start()
    time.sleep(warmup)
    f0, c0, b0 = counter.read()
    t0 = time.perf_counter()
    time.sleep(seconds)
    f1, c1, b1 = counter.read()
    elapsed = time.perf_counter() - t0
    stop.set()
    for t in threads:
        t.join(5)
    if errors:
        raise errors[0]
    frames, faces, batches = f1 - f0, c1 - c0, max(1, b1 - b0)
    return {
        "streams": streams,
        "frames_per_s": round(frames / elapsed, 1),
        "faces_per_s": round(faces / elapsed, 1),
        "per_stream_fps": round(frames / elapsed / streams, 1),
        "frames_per_engine_call": round(frames / batches, 1),
        "prepare_threads": min(len(detectors), streams),
    }


CLIPS = {"clip_1080p.mp4": (1920, 1080), "clip_360p.mp4": (640, 360)}


def make_clips(source: str, folder: Path, frames: int = 240) -> None:
    """The benchmark's H.264 clips (what cameras send), scaled from `source`; needs PyAV (not on GPU boxes)."""
    import av
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for name, (width, height) in CLIPS.items():
        with av.open(str(folder / name), "w") as out:
            stream = out.add_stream("libx264", rate=24)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": "23", "preset": "veryfast"}
            capture = cv2.VideoCapture(source)
            for _ in range(frames):
                ok, image = capture.read()
                if not ok:
                    break
                image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
                out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
            out.mux(stream.encode())
            capture.release()
        print(f"wrote {folder / name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--make-clips",
        metavar="SOURCE",
        help="write var/gpu_media/clip_{1080p,360p}.mp4 from SOURCE and exit",
    )
    parser.add_argument(
        "--clip", action="append", default=[], help="video file (repeat for several resolutions)"
    )
    parser.add_argument("--streams", default="1,8,32,64")
    parser.add_argument(
        "--seconds", type=float, default=6.0, help="timed seconds per measurement (after 2 s warm-up)"
    )
    parser.add_argument("--detector", default=str(REPO.parent / "shared" / "models" / "scrfd_500m.onnx"))
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (a dry run of the code path)")
    parser.add_argument(
        "--prepare-threads", type=int, default=12, help="detect/align threads (one detector each)"
    )
    parser.add_argument("--max-batch", type=int, default=128)
    parser.add_argument("-o", "--output", default="", help="write the results (JSON) here")
    args = parser.parse_args(argv)
    if args.make_clips:
        make_clips(args.make_clips, REPO / "var" / "gpu_media")
        return 0
    if not args.clip:
        parser.error("--clip is required")

    from affectstream.engines import create_engine
    from affectstream.pipeline.frames.detect import FaceDetector
    from affectstream.pipeline.frames.processor import FrameProcessor

    cuda = args.device.startswith("cuda")
    t0 = time.perf_counter()
    engine = create_engine(
        "torch", "default", device=args.device, fp16=cuda, cuda_graphs=cuda, max_batch=args.max_batch
    )
    detectors = [
        FaceDetector(args.detector, input_size="auto", backend="torch", device=args.device)
        for _ in range(args.prepare_threads)
    ]
    processor = FrameProcessor(detectors, engine)
    print(
        f"setup {time.perf_counter() - t0:.1f} s: engine {engine.spec.model_id} on {engine.device} "
        f"({'fp16, CUDA graphs' if cuda else 'fp32'}), {len(detectors)} x SCRFD {Path(args.detector).name} "
        f"on {detectors[0].providers[0]} (input auto: 640x384 for 16:9)",
        flush=True,
    )
    import cv2

    for clip in args.clip:  # set up (and capture) each detector's input size now, one at a time
        ok, image = cv2.VideoCapture(clip).read()
        for detector in detectors:
            detector.detect(image)
    rows = []
    for clip in args.clip:
        capture = cv2.VideoCapture(clip)
        size = f"{int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))}x{int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))}"
        capture.release()
        for n in [int(s) for s in args.streams.split(",")]:
            row = {
                "clip": Path(clip).name,
                "size": size,
                **run_streams(
                    clip, n, args.seconds, detectors=detectors, processor=processor, max_batch=args.max_batch
                ),
            }
            rows.append(row)
            print(
                f"  {size:9s} {n:3d} streams: {row['frames_per_s']:8.1f} frames/s ({row['per_stream_fps']:6.1f} per stream), "
                f"{row['faces_per_s']:8.1f} faces/s, {row['frames_per_engine_call']:5.1f} frames per engine call",
                flush=True,
            )
    engine.close()
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps({"device": args.device, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
