"""The embedded cluster's dashboards, imported and connected on the first request for a page.

Distributed's dashboards are Bokeh servers inside the scheduler and each
worker: importing Bokeh took 0.66 s of the embedded cluster's 0.75 s start
(``-X importtime``), on the path of every job, watched or not. Their HTTP
servers listen from the start, so the link the job prints works at once, as do
Distributed's own pages (``/info``, ``/health``, ``/metrics``); the first request
for any other page imports Bokeh, connects the dashboard as Distributed does,
and sends the browser on to the page it asked for, now Bokeh's. Dask's
performance report imports what it needs itself.
"""

from __future__ import annotations

import importlib
import threading

from distributed import Worker
from tornado import web

__all__ = ["LazyDashboardWorker", "connect_on_first_request"]


class _ConnectThenRedirect(web.RequestHandler):
    """Any page, before the dashboard is connected: connect it, then ask for the page again."""

    def initialize(self, dashboard: _LazyDashboard) -> None:
        self.dashboard = dashboard

    def get(self, *args) -> None:
        self.dashboard.connect()
        self.redirect(self.request.uri)


class _LazyDashboard(web.Application):
    """Routes every request to :class:`_ConnectThenRedirect` until the dashboard is connected,
    then none: the server's application asks its next one, Bokeh's."""

    def __init__(self, server, kind: str) -> None:
        super().__init__([(r"/.*", _ConnectThenRedirect, {"dashboard": self})])
        self._server, self._kind = server, kind
        self._lock = threading.Lock()
        self.connected = False

    def find_handler(self, request, **kwargs):
        return None if self.connected else super().find_handler(request, **kwargs)

    def connect(self) -> None:
        with self._lock:
            if self.connected:
                return
            dashboard = importlib.import_module(f"distributed.dashboard.{self._kind}")
            s = self._server
            prefix = getattr(s, "_http_prefix", None) or "/"
            dashboard.connect(s.http_application, s.http_server, s, prefix=prefix)
            self.connected = True


def connect_on_first_request(server, kind: str = "scheduler") -> None:
    """Connect Distributed's dashboard (``kind``: scheduler or worker) to ``server``'s HTTP
    server on the first request for one of its pages.

    ``server`` must have been started without its dashboard (``dashboard=False``).
    """
    server.http_application.add_application(_LazyDashboard(server, kind))


class LazyDashboardWorker(Worker):
    """A worker whose dashboard comes with the first request for one of its pages.

    ``LocalCluster`` asks each worker for its dashboard wherever it gives a
    ``worker_dashboard_address``, the address its HTTP server listens on.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **{**kwargs, "dashboard": False})

    async def start_unsafe(self):
        await super().start_unsafe()
        connect_on_first_request(self, "worker")
        return self
