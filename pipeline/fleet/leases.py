"""One camera's lease: redis-py's `Lock` on `keys.lease_key`, with a token that names its holder.

Why `Lock` as it is: it already sets the key with NX and a TTL, and extends and releases it with scripts
that compare the token first; a lease lost to expiry raises `LockNotOwnedError` on the next `extend` or
`release`. What we add is the token `{worker}/{uuid hex}` (so `keys.holder_of` names the holder) and a
lock shared by the threads of one worker (`thread_local=False`: the claim loop acquires and renews it,
the publish stage reads its token for the fence in `pipeline.streams.writer`).
"""

from __future__ import annotations

import contextlib
import uuid

import redis
from redis.exceptions import LockError, LockNotOwnedError
from redis.lock import Lock

from affectstream.pipeline.streams.keys import holder_of, lease_key
from affectstream.pipeline.streams.writer import Fence


class Lease:
    """A camera's lease held by `worker`, `ttl_s` long from each `acquire` or `renew`.

    Args:
        client: Redis client.
        camera: The camera (source) name.
        worker: The holding worker's id, written into the token.
        ttl_s: Lease time to live.
    """

    def __init__(self, client: redis.Redis, camera: str, worker: str, ttl_s: float) -> None:
        self.camera = camera
        self.key = lease_key(camera)
        self.ttl_s = ttl_s
        self.token = f"{worker}/{uuid.uuid4().hex}"
        self._lock = Lock(client, self.key, timeout=ttl_s, blocking=False, thread_local=False)

    def acquire(self) -> bool:
        """Take the lease when nobody holds it; False when another holder does."""
        return bool(self._lock.acquire(token=self.token))

    def renew(self) -> bool:
        """Reset the TTL to `ttl_s`; False when the lease was lost (expired, or taken by another).

        Raises:
            redis.ConnectionError, redis.TimeoutError: Redis did not answer; the lease may still be held.
        """
        try:
            return self._lock.extend(self.ttl_s, replace_ttl=True)
        except LockNotOwnedError:
            return False

    def release(self) -> None:
        """Delete the lease if it is still ours (a lost one is left to its new holder)."""
        with contextlib.suppress(LockNotOwnedError, LockError):
            self._lock.release()

    @property
    def fence(self) -> Fence:
        """What every write of this camera's entries is checked against (only its claim loop takes it)."""
        return Fence(self.key, self.token)


def lease_holder(client: redis.Redis, camera: str) -> str:
    """The worker id holding `camera`'s lease; "" when none."""
    return holder_of(client.get(lease_key(camera)))
