"""ASGI entry point: the chat streams answers from async views; /mcp is the MCP server (assistant/mcp)."""

import os

from django.core.asgi import get_asgi_application

from assistant.connection_budget import WEB_POOL_SIZE_DEFAULT

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
# The web server lends each request a pooled database connection (see DATABASE_POOL_SIZE),
# unless persistent connections were asked for instead. Streaming answers hand theirs back while
# they wait for the model, so a small pool serves many conversations; the sum over every process
# must stay under PostgreSQL's max_connections (see assistant/checks.py).
if not os.environ.get("DATABASE_CONN_MAX_AGE", "").strip("0"):
    os.environ.setdefault("DATABASE_POOL_SIZE", str(WEB_POOL_SIZE_DEFAULT))

django_application = get_asgi_application()

from assistant.mcp.http import is_mcp_path, mcp_application  # noqa: E402  (needs the apps loaded above)


async def application(scope, receive, send):
    """Django for every path but /mcp, which the MCP SDK's transport serves (not a Django view: it
    needs the raw ASGI messages)."""
    if scope["type"] == "http" and is_mcp_path(scope.get("path", "")):
        await mcp_application(scope, receive, send)
        return
    await django_application(scope, receive, send)
