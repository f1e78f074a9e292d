"""Live dashboard: sources and their status, faces in view, circumplex, expression shares, throughput.

`affectstream dashboard` runs `serve`; tests build the app with `create_app` over a `DashboardState`.
Importing this package pulls in Starlette only when `app` is imported.
"""

from affectstream.pipeline.consumers.dashboard.state import DashboardState

__all__ = ["DashboardState"]
