"""affectstream: facial expression and valence-arousal from cameras and video archives to Redis Streams.

Everything installs under this one name: `affectstream.pipeline` (the runtime: sources, frame stages,
streams, processes, fleet, archive, consumers and the `affectstream` command), `affectstream.engines`
(inference backends), `affectstream.training` (the MTL-GCN model), `affectstream.scoring` (metrics and the
ABAW file formats) and `affectstream.settings` (typed settings, environment, overrides). In the
repository the first three are the top-level folders the design names; `affectstream/` links them in.

For notebooks, `affectstream.analyze_image` and `affectstream.analyze_video` (`affectstream.api`, docs/api.md)
run the pipeline's frame path on a picture or a video file, without Redis; they are imported on first use,
so `import affectstream` stays light (a consumer-only install has no decoder or model runtime).
"""


def version() -> str:
    """The installed distribution's version; "unknown" in a checkout that was never installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("affectstream")
    except PackageNotFoundError:
        return "unknown"


_API = ("analyze_image", "analyze_video")  # the notebook API (affectstream/api.py), imported when first used


def __getattr__(name: str):
    if name in _API:
        import importlib

        # By name: the package root must not depend on the runtime's config (the rooms' import contract).
        return getattr(importlib.import_module("affectstream.api"), name)
    raise AttributeError(f"module 'affectstream' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
