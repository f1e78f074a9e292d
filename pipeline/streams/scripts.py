"""Lua scripts sent by their SHA1 alone (`EVALSHA`), and loaded again where a server answers NOSCRIPT.

redis-py's `register_script` asks `SCRIPT EXISTS` before every pipeline that runs a script: one more
command per publish round trip, on every node. Here a script is only loaded when a server says it lacks it:
after a restart, `SCRIPT FLUSH`, a failover to a replica that never ran it, or a cluster node that just
took over a slot (`SCRIPT LOAD` on a cluster goes to every master). The caller resends the commands that
got NOSCRIPT (`pipeline.streams.replies` classes it `RELOAD`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import redis


class LuaScript:
    """One script: queue it in a pipeline by SHA1, load it when a reply says NOSCRIPT.

    Args:
        source: The Lua text.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def queue(self, pipe, keys: Sequence[str], args: Sequence) -> None:
        """Add one `EVALSHA` of this script to `pipe` (a pipeline, or a client to run it at once)."""
        return pipe.evalsha(self.sha, len(keys), *keys, *args)

    def load(self, client: redis.Redis) -> None:
        """Load the script on the server (on a cluster: on every master)."""
        client.script_load(self.source)

    def __call__(self, client: redis.Redis, keys: Sequence[str], args: Sequence):
        """Run the script now, loading it first when the server lacks it."""
        try:
            return self.queue(client, keys, args)
        except redis.exceptions.NoScriptError:
            self.load(client)
            return self.queue(client, keys, args)


def is_noscript(reply: object) -> bool:
    return isinstance(reply, redis.exceptions.NoScriptError)
