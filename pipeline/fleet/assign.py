"""Which member runs which camera: rendezvous (highest random weight) hashing with bounded loads.

Every member computes the same assignment from the same two inputs, the camera names and the live members'
capacities (both read from Redis only when their version changes, `pipeline.fleet.view`), so nobody
coordinates a decision and nobody claims a camera another member is meant to run. Each (camera, member) pair
gets a pseudo-random score; a camera goes to its best-scoring member that still has room. A member's room is
its target: its capacity, and no more than its fair share (cameras x its capacity / all live capacity,
rounded up), so the cameras spread even when they do not divide evenly. Cameras beyond the fleet's capacity
stay unassigned (nobody tries them). The assignment is the stable matching of cameras and members under
those scores (each keeps its best-scoring cameras), so a member joining or leaving moves few cameras
besides the ones it takes or gives up (`tests/fleet/test_assign.py` bounds it).
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import math
import threading
from collections.abc import Iterable, Mapping

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _hashes(names: Iterable[str]) -> np.ndarray:
    return np.array(
        [int.from_bytes(hashlib.blake2b(n.encode(), digest_size=8).digest(), "little") for n in names],
        dtype=np.uint64,
    )


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves every output bit (uint64 arithmetic wraps)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def fair_share(cameras: int, capacity: int, total_capacity: int) -> int:
    """A member's fair share: cameras x its capacity / the capacity of all live members, rounded up."""
    return math.ceil(cameras * capacity / total_capacity) if total_capacity else 0


def _room(fair: int) -> int:
    """A member's bound: its fair share, plus a tenth of it: a little slack keeps the stable matching from
    reshuffling many cameras when one member joins (exact for small fleets: below ten cameras each)."""
    return fair + fair // 10


def assign(
    cameras: Iterable[str], capacities: Mapping[str, int], unable: Mapping[str, Iterable[str]] | None = None
) -> dict[str, str]:
    """camera -> member, for every camera the live members (`capacities`: member -> cameras it runs at
    most) have room for; never to a member `unable` to run it (member -> cameras whose URL it cannot
    resolve). Deterministic: the same inputs give the same answer on every member."""
    key = (
        tuple(sorted(set(cameras))),
        tuple(sorted((m, int(c)) for m, c in capacities.items() if c > 0)),
        tuple(sorted((m, tuple(sorted(set(names)))) for m, names in (unable or {}).items() if names)),
    )
    with _lock:  # members in one process (the bench) compute each answer once, not once per thread
        return dict(_assign(*key))


_lock = threading.Lock()
_TOP = 8  # members ranked per camera at first; a camera turned away by all of them ranks the rest


@functools.lru_cache(maxsize=2)
def _camera_hashes(cameras: tuple[str, ...]) -> np.ndarray:
    return _hashes(cameras)  # the same cameras across membership changes: hashed once


@functools.lru_cache(maxsize=8)
def _assign(
    cameras: tuple[str, ...],
    capacities: tuple[tuple[str, int], ...],
    unable: tuple[tuple[str, tuple[str, ...]], ...],
) -> tuple[tuple[str, str], ...]:
    if not cameras or not capacities:
        return ()
    members = [m for m, _ in capacities]
    index = {name: i for i, name in enumerate(cameras)}
    barred = {
        (index[c], members.index(m)) for m, names in unable if m in members for c in names if c in index
    }
    total = sum(c for _, c in capacities)
    room = [min(c, _room(fair_share(len(cameras), c, total))) for _, c in capacities]
    scores = _mix(_camera_hashes(cameras)[:, None] ^ _mix(_hashes(members) * _GOLDEN)[None, :])
    top = min(_TOP, len(members))
    best = np.argpartition(scores, len(members) - top, axis=1)[:, len(members) - top :]
    order = np.take_along_axis(scores, best, axis=1).argsort(axis=1)[:, ::-1]
    best = np.take_along_axis(best, order, axis=1)
    ranked: list[list[int]] = best.tolist()  # each camera's members, best first
    ranked_scores: list[list[int]] = np.take_along_axis(scores, best, axis=1).tolist()
    # Deferred acceptance (cameras propose, members keep their best-scoring ones up to their room): the
    # stable matching, which a member joining or leaving changes only along short chains of moves.
    proposals = [0] * len(cameras)
    kept: list[list[tuple[int, int]]] = [[] for _ in members]  # per member: min-heap of (score, camera)
    free = list(range(len(cameras)))
    while free:
        c = free.pop()
        if proposals[c] == len(members):
            continue  # every member is full of cameras it scores higher: unassigned
        if proposals[c] == len(ranked[c]):
            ranked[c] = np.argsort(scores[c])[::-1].tolist()
            ranked_scores[c] = scores[c][ranked[c]].tolist()
        m, score = ranked[c][proposals[c]], ranked_scores[c][proposals[c]]
        proposals[c] += 1
        if not room[m] or (c, m) in barred:
            free.append(c)
            continue
        heapq.heappush(kept[m], (score, c))
        if len(kept[m]) > room[m]:
            free.append(heapq.heappop(kept[m])[1])
    return tuple((cameras[c], members[m]) for m, heap in enumerate(kept) for _score, c in heap)
