"""The optional HTTP endpoint (``[http] port``), Twisted's web server on the bridge's loop.

* ``GET /healthz``: the verdict and the facts behind it as JSON (the same as ``bridge
  check --json``); HTTP 200 when ``ok`` or ``degraded``, 503 when ``down``.
* ``GET /metrics``: the Prometheus text format (:mod:`bridge.service.exposition`).

Bound to 127.0.0.1 unless configured otherwise.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from ..runtime import as_future
from .exposition import CONTENT_TYPE

log = logging.getLogger(__name__)


class _Healthz(Resource):
    isLeaf = True

    def __init__(self, health: Callable[[], dict[str, Any]]) -> None:
        super().__init__()
        self.health = health

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 (Twisted API)
        body = self.health()
        request.setResponseCode(503 if body["code"] == 2 else 200)
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(body, sort_keys=True).encode() + b"\n"


class _Metrics(Resource):
    isLeaf = True

    def __init__(self, render: Callable[[], bytes]) -> None:
        super().__init__()
        self.render_metrics = render

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 (Twisted API)
        request.setHeader(b"content-type", CONTENT_TYPE.encode())
        return self.render_metrics()


class _Root(Resource):
    def getChild(self, path: bytes, request: Request) -> Resource:  # noqa: N802 (Twisted API)
        from twisted.web.pages import notFound

        return notFound()


class HttpEndpoint:
    """Serves ``/healthz`` (``health()``: a JSON-able dict with ``code``) and ``/metrics``."""

    def __init__(self, health: Callable[[], dict[str, Any]], metrics: Callable[[], bytes], *,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        root = _Root()
        root.putChild(b"healthz", _Healthz(health))
        root.putChild(b"metrics", _Metrics(metrics))
        self.site = Site(root)
        self.site.noisy = False
        self.site.log = lambda request: None  # no access log line per scrape
        self._listening: Any = None

    async def start(self) -> "HttpEndpoint":
        from twisted.internet import reactor
        from twisted.internet.endpoints import TCP4ServerEndpoint

        endpoint = TCP4ServerEndpoint(reactor, self.port, interface=self.host)
        self._listening = await as_future(endpoint.listen(self.site))
        self.port = self._listening.getHost().port
        log.info("HTTP endpoint on http://%s:%d/ (healthz, metrics)", self.host, self.port)
        return self

    async def stop(self) -> None:
        if self._listening is not None:
            listening, self._listening = self._listening, None
            await as_future(listening.stopListening())
