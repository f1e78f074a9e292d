"""affectstream: facial expression and valence-arousal from cameras and video archives to Redis Streams.

Everything installs under this one name: `affectstream.pipeline` (the runtime: sources, frame stages,
streams, processes, fleet, archive, consumers and the `affectstream` command), `affectstream.engines`
(inference backends), `affectstream.training` (the MTL-GCN model), `affectstream.scoring` (metrics and the
ABAW file formats) and `affectstream.settings` (typed settings, environment, overrides). In the
repository the first three are the top-level folders the design names; `affectstream/` links them in.
"""


def version() -> str:
    """The installed distribution's version; "unknown" in a checkout that was never installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("affectstream")
    except PackageNotFoundError:
        return "unknown"
