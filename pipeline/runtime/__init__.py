"""The processes: the supervisor and its workers, the worker's lanes, micro-batcher, heartbeats,
metrics, snapshots and health checks. A worker wires sources, the frame processor and the outbox together.
"""
