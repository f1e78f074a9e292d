"""`affectstream bridge mqtt` against a real Mosquitto broker and `bridge webhook` against a local HTTP
server, reading a real Redis: every entry delivered, none skipped when the sink goes away and comes back,
resumed where it stopped, credentials masked."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import redis

from affectstream.pipeline.consumers.bridge import GroupBridge
from affectstream.pipeline.consumers.mqtt_sink import SinkRefused
from affectstream.pipeline.consumers.webhook_sink import WebhookSink
from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.keys import frames_key, tracks_key
from affectstream.pipeline.streams.tracks import TrackEvents
from affectstream.pipeline.streams.writer import encode_frame
from tests.conftest import REPO, missing
from tests.consumer.test_consume import make_result
from tests.test_run_files import wait_for

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A real Mosquitto on loopback; its sessions and queued messages persist across `stop`/`start`."""

    def __init__(
        self, folder, users: dict[str, str] | None = None, tls: dict[str, str] | None = None
    ) -> None:
        if not os.path.exists(MOSQUITTO):
            missing("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self.port = free_port()
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence true",
            f"persistence_location {folder}/",
            "user root",
        ]
        if users:
            passwords = folder / "passwords"
            passwords.touch()
            for user, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, password], check=True)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        if tls:  # TLS only, with a throwaway CA
            lines += [f"cafile {tls['ca']}", f"certfile {tls['cert']}", f"keyfile {tls['key']}"]
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stderr=subprocess.DEVNULL)
        assert wait_for(self._listening, 10), "mosquitto did not start"

    def _listening(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()  # saves its sessions and queues (persistence)
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


class Subscriber:
    """A persistent-session QoS 1 subscriber: what the broker queued while it was away still reaches it."""

    def __init__(self, port: int, topic: str = "affectstream/#", ca: str | None = None) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, dict, bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-sub", clean_session=False)
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 1)
        if ca:
            self.client.tls_set(ca_certs=ca)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10), "the test subscriber could not subscribe"

    def _on_message(self, _client, _userdata, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic, json.loads(msg.payload), bool(msg.retain)))

    def ids(self, topic: str) -> set[str]:
        with self._lock:
            return {m["id"] for t, m, _r in self.messages if t == topic}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def write(client, source: str, frames: range, tracks: TrackEvents) -> tuple[set[str], set[str]]:
    """Frames and their track events in Redis as a worker writes them (ids from the frames'); their ids."""
    frame_ids, track_ids = set(), set()
    for i in frames:
        r = make_result(source, i, faces=1 + i % 2)  # track 2 comes and goes
        r.ended_tracks = [2] if i % 2 == 0 and i else []
        r.entry_id = f"{1_000_000 + i}-0"
        client.xadd(frames_key(source), encode_frame(r), id=r.entry_id)
        frame_ids.add(r.entry_id)
        for entry_id, fields in tracks.frame(r):
            client.xadd(tracks_key(source), fields, id=entry_id)
            track_ids.add(entry_id)
    return frame_ids, track_ids


def all_acknowledged(client, key: str, group: str) -> bool:
    """Whether the group has read every entry of `key` and acknowledged each (False before it exists)."""
    try:
        info = next(g for g in client.xinfo_groups(key) if g["name"].decode() == group)
    except (StopIteration, redis.ResponseError):
        return False
    last = client.xrevrange(key, count=1)[0][0]
    return info["last-delivered-id"] == last and int(info["pending"]) == 0


def bridge_cli(redis_url: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "affectstream", "bridge", *args, "--redis", redis_url, "--consumer", "b1"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return err


def test_mqtt_bridge_delivers_everything_through_a_broker_restart_and_resumes(redis_url, broker):
    client = connect(redis_url)
    tracks = TrackEvents("cam-1", update_every_s=0.1)
    frames, events = write(client, "cam-1", range(0, 6), tracks)
    sub = Subscriber(broker.port)
    proc = bridge_cli(redis_url, "mqtt", f"mqtt://127.0.0.1:{broker.port}", "--frames", "--from-start")
    try:
        assert wait_for(lambda: sub.ids("affectstream/cam-1/tracks") == events, 30)
        assert wait_for(lambda: sub.ids("affectstream/cam-1/frames") == frames, 30)
        # typed records: numbers as numbers, a start's box a list
        start = next(m for t, m, _r in sub.messages if t.endswith("/tracks") and m["event"] == "start")
        assert isinstance(start["track"], int) and isinstance(start["pts"], float) and len(start["box"]) == 4
        frame = next(m for t, m, _r in sub.messages if t.endswith("/frames"))
        assert isinstance(frame["frame"], int) and isinstance(frame["faces"], list)

        broker.stop()  # the broker goes away while new entries come
        more_frames, more_events = write(client, "cam-1", range(6, 12), tracks)
        time.sleep(3)  # the bridge retries meanwhile, with backoff
        broker.start()
        assert wait_for(lambda: sub.ids("affectstream/cam-1/tracks") == events | more_events, 60)
        assert wait_for(lambda: sub.ids("affectstream/cam-1/frames") == frames | more_frames, 60)
        assert "retrying" in stop(proc)

        # stopped, more entries come, started again: it resumes where it stopped
        later_frames, later_events = write(client, "cam-1", range(12, 15), tracks)
        before = len(sub.messages)
        proc = bridge_cli(redis_url, "mqtt", f"mqtt://127.0.0.1:{broker.port}", "--frames")
        assert wait_for(lambda: sub.ids("affectstream/cam-1/tracks") >= later_events, 30)
        assert wait_for(lambda: sub.ids("affectstream/cam-1/frames") >= later_frames, 30)
        time.sleep(0.5)
        resent = {m["id"] for _t, m, _r in sub.messages[before:]}
        assert resent == later_frames | later_events  # only the new ones
        stop(proc)
        assert client.xpending(tracks_key("cam-1"), "bridge-mqtt")["pending"] == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        sub.close()


def test_mqtt_credentials_are_masked_and_a_refusal_stops_the_bridge(redis_url, tmp_path):
    client = connect(redis_url)
    _frames, events = write(client, "cam-2", range(3), TrackEvents("cam-2", 0))
    b = Broker(tmp_path, users={"bridge": "s3cret-pw"})
    b.start()
    try:
        proc = bridge_cli(
            redis_url, "mqtt", f"mqtt://bridge:s3cret-pw@127.0.0.1:{b.port}", "--retain", "--from-start"
        )
        assert wait_for(lambda: all_acknowledged(client, tracks_key("cam-2"), "bridge-mqtt"), 30)
        err = stop(proc)
        assert "bridge:***@127.0.0.1" in err and "s3cret-pw" not in err  # (its log says which broker)
        # a retained message is what a late subscriber gets first
        import paho.mqtt.subscribe as subscribe

        msg = subscribe.simple(
            "affectstream/cam-2/tracks",
            hostname="127.0.0.1",
            port=b.port,
            auth={"username": "bridge", "password": "s3cret-pw"},
        )
        assert msg.retain and json.loads(msg.payload)["source"] == "cam-2"
        bad = bridge_cli(
            redis_url, "mqtt", f"mqtt://bridge:wrong-pw1@127.0.0.1:{b.port}", "--from-start", "--group", "g2"
        )
        write(client, "cam-2", range(3, 4), TrackEvents("cam-2", 0))
        _out, err = bad.communicate(timeout=60)
        assert bad.returncode == 1, err
        assert "refused the bridge" in err and "wrong-pw1" not in err and "***" in err
        assert client.xpending(tracks_key("cam-2"), "g2")["pending"] >= 1  # nothing skipped: it stays pending
    finally:
        b.stop()


class Receiver(http.server.ThreadingHTTPServer):
    """A webhook receiver: answers `answers` in turn (then 200) and keeps every request."""

    def __init__(self, answers: list[int]) -> None:
        self.answers, self.requests = list(answers), []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.headers["Idempotency-Key"], body))
                self.send_response(outer.answers.pop(0) if outer.answers else 200)
                self.end_headers()

            def log_message(self, *_args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook?token=abcdef123"


def test_webhook_bridge_retries_with_backoff_and_sends_every_event_with_its_key(redis_url):
    client = connect(redis_url)
    _frames, events = write(client, "cam-3", range(8), TrackEvents("cam-3", 0.1))
    receiver = Receiver([503, 503, 429, 500])
    stopped = threading.Event()
    bridge = GroupBridge(client, ["cam-*"], ["tracks"], "hooks", "b1", start="0")
    t = threading.Thread(target=bridge.run, args=(WebhookSink(receiver.url).send, stopped.is_set))
    t.start()
    try:
        assert wait_for(lambda: {k.split("/")[-1] for k, _b in receiver.requests} == events, 60)
    finally:
        stopped.set()
        t.join(10)
    keys = [k for k, _b in receiver.requests]
    assert len(keys) == len(events) + 4  # the first event was refused four times, then sent again
    assert (
        len(set(keys[:5])) == 1
        and keys[0] == f"cam-3/tracks/{min(events, key=lambda i: tuple(map(int, i.split('-'))))}"
    )
    assert all(body["id"] == key.split("/")[-1] for key, body in receiver.requests)
    receiver.close()


def test_webhook_refusal_stops_without_skipping(redis_url):
    client = connect(redis_url)
    write(client, "cam-4", range(2), TrackEvents("cam-4", 0))
    receiver = Receiver([400])
    bridge = GroupBridge(client, ["cam-4"], ["tracks"], "hooks", "b1", start="0")
    with pytest.raises(SinkRefused, match=r"400.*") as refused:
        bridge.run(WebhookSink(receiver.url).send, lambda: False)
    assert "abcdef123" not in str(refused.value)
    # the receiver is fixed (200 from now on): the same consumer gets the refused event first
    again = GroupBridge(client, ["cam-4"], ["tracks"], "hooks", "b1", start="0")
    stopped = threading.Event()
    t = threading.Thread(target=again.run, args=(WebhookSink(receiver.url).send, stopped.is_set))
    t.start()
    total = client.xlen(tracks_key("cam-4"))
    assert wait_for(lambda: len(receiver.requests) == total + 1, 30)
    stopped.set()
    t.join(10)
    assert receiver.requests[0][0] == receiver.requests[1][0]  # the refused one, again, first
    receiver.close()


def test_mqtts_with_a_private_ca(redis_url, tmp_path):
    from tests.cluster.servers import make_tls

    client = connect(redis_url)
    _frames, events = write(client, "cam-5", range(3), TrackEvents("cam-5", 0))
    tls = make_tls(tmp_path / "tls")
    b = Broker(tmp_path, tls=tls)
    b.start()
    sub = Subscriber(b.port, ca=tls["ca"])
    proc = bridge_cli(redis_url, "mqtt", f"mqtts://127.0.0.1:{b.port}", "--ca", tls["ca"], "--from-start")
    try:
        assert wait_for(lambda: sub.ids("affectstream/cam-5/tracks") == events, 30)
        stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        sub.close()
        b.stop()
