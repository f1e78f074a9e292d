"""Every Redis key and stream name, in one place (schema v1, see DESIGN.md)."""

SCHEMA_VERSION = 1

JOBS_STREAM = "affect:jobs"
JOBS_GROUP = "workers"


def frames_key(source: str) -> str:
    """Results stream of one source; the hash tag keeps a source's keys in one cluster slot."""
    return f"affect:{{{source}}}:frames"


def events_key(source: str) -> str:
    return f"affect:{{{source}}}:events"


def source_of(key: str) -> str:
    """The source id inside a stream key's hash tag (`affect:{cam}:frames` -> `cam`)."""
    return key.split("{", 1)[1].rsplit("}", 1)[0]


def heartbeat_key(worker: str) -> str:
    """JSON {ts, pid, sources, published}, no TTL: `affectstream health` judges staleness by ts."""
    return f"affect:worker:{worker}:heartbeat"


HEARTBEAT_PATTERN = "affect:worker:*:heartbeat"


def job_key(job_id: str) -> str:
    return f"affect:job:{job_id}"


# Archive jobs (pipeline/archive): every job id ever submitted, for `archive status` without SCAN.
JOBS_INDEX = "affect:jobs:index"
