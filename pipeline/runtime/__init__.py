"""The processes: the supervisor (`run`'s and `archive work`'s) and the worker, which only wires its parts:
the intake of its sources (`intake`, `lanes`), the frame path's two halves on their threads (`stages`,
`batcher`), the publisher, the account of every frame (`accounts`), sources that fail for good
(`failures`), heartbeats, metrics, snapshots and health checks.
"""
