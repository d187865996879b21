"""/mcp over HTTP: the host and the personal API token checked on every request, then the SDK's
streamable HTTP transport, stateless, answering in JSON.

Stateless, so any web process of any host serves any request (no session to find), and a token
revoked between two calls is refused on the next one. A fresh session manager per request needs
no ASGI lifespan (the launcher runs uvicorn with `--lifespan off`).
"""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.http.request import split_domain_port, validate_host
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from assistant.accounts import scopes
from assistant.accounts.tokens import TokenAuthError, api_token_authenticate
from assistant.mcp.server import ACTOR_SCOPE_KEY, SERVER, Actor
from connectors.selectors import acl_groups_of

# A session manager per request would log its start and stop at INFO on every call.
logging.getLogger("mcp.server.streamable_http_manager").setLevel(logging.WARNING)
logging.getLogger("mcp.server.streamable_http").setLevel(logging.WARNING)

PATH = "/mcp"
#: Tool arguments are small; a larger body is refused (413) before it is parsed.
MAX_BODY_BYTES = 256 * 1024


def is_mcp_path(path: str) -> bool:
    return path == PATH or path.startswith(PATH + "/")


def _error(status: int, message: str, code: str, **headers: str) -> JSONResponse:
    body = {"error": {"message": message, "type": "authentication_error" if status == 401 else
                      "permission_error" if status == 403 else "invalid_request_error", "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers or None)


def _host_allowed(headers: Headers) -> bool:
    domain, _port = split_domain_port(headers.get("host", ""))
    allowed = settings.ALLOWED_HOSTS or ([".localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    return bool(domain) and validate_host(domain, allowed)


def authenticate(authorization: str) -> Actor | JSONResponse:
    """The token's owner, or the 401/403 answer (sync: runs in a worker thread)."""
    try:
        scheme, _sep, value = authorization.partition(" ")
        token = api_token_authenticate(value.strip() if scheme.lower() == "bearer" else "")
        if not token.has_scope(scopes.MCP):
            return _error(
                403, f"This API token lacks the '{scopes.MCP}' scope needed for MCP. Create a token with it "
                "on the API tokens page.", "insufficient_scope",
                **{"WWW-Authenticate": f'Bearer realm="assistant", error="insufficient_scope", scope="{scopes.MCP}"'},
            )
        return Actor(user_id=token.user.pk, groups=tuple(acl_groups_of(token.user)))
    except TokenAuthError as exc:
        return _error(401, str(exc), exc.code, **{"WWW-Authenticate": 'Bearer realm="assistant", error="invalid_token"'})
    finally:
        close_old_connections()


async def mcp_application(scope, receive, send) -> None:
    """The ASGI app mounted at /mcp (assistant/asgi.py)."""
    headers = Headers(scope=scope)
    if not _host_allowed(headers):
        await _error(400, "Bad Host header.", "bad_host")(scope, receive, send)
        return
    actor = await sync_to_async(authenticate, thread_sensitive=False)(headers.get("authorization", ""))
    if isinstance(actor, JSONResponse):
        await actor(scope, receive, send)
        return
    scope = {**scope, ACTOR_SCOPE_KEY: actor}
    manager = StreamableHTTPSessionManager(
        app=SERVER, stateless=True, json_response=True, max_request_body_size=MAX_BODY_BYTES
    )
    async with manager.run():
        await manager.handle_request(scope, receive, send)
