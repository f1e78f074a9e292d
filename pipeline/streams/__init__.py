"""Everything about Redis Streams: key names, the entry schema, the connection, entry ids, the
idempotent fenced writer and the outbox, writer leases, reply classes, liveness by Redis time, and readers.
"""
