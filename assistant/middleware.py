"""The project's own middlewares: a strict Content-Security-Policy on every response, and the
request's stage trace.

The pages load no inline scripts or styles and nothing from other hosts, so the
policy can forbid them: an answer that smuggles markup in cannot run code or
fetch a remote image.
"""

from __future__ import annotations

from connectors.middleware import HybridMiddleware
from connectors.stage_timing import trace_open

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


class ContentSecurityPolicyMiddleware(HybridMiddleware):
    def handle(self, request):
        return self._apply(self.get_response(request))

    async def ahandle(self, request):
        return self._apply(await self.get_response(request))

    @staticmethod
    def _apply(response):
        # The admin ships inline scripts of its own; the product pages do not.
        response.headers.setdefault("Content-Security-Policy", POLICY)
        return response


class StageTimingMiddleware(HybridMiddleware):
    """Opens the request's stage trace (connectors/stage_timing.py); first in MIDDLEWARE, so the
    trace's first stage is the middleware chain itself."""

    def handle(self, request):
        trace_open()
        return self.get_response(request)

    async def ahandle(self, request):
        trace_open()
        return await self.get_response(request)
