"""The MCP server's handlers: list the registry's MCP tools, call one as the token's owner.

Input schemas are the tools' pydantic models (the same JSON schema the chat's model is offered).
A bad argument, a document the owner may not read or a rate limit is a tool error the calling
model can act on (`isError`); an unknown tool is a JSON-RPC invalid-params error. Tools run
their ORM work in a worker thread, never on the event loop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mcp_types as types
from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.utils.translation import gettext as _
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError

from assistant.accounts import ratelimit
from assistant.agent.registry import Tool, ToolContext, ToolError, mcp_tools, tool_named

logger = logging.getLogger(__name__)

#: Where the authenticating ASGI layer (assistant/mcp/http.py) leaves the caller in the request's scope.
ACTOR_SCOPE_KEY = "assistant.mcp.actor"
#: The cap on one result given to an MCP client: their models have larger windows than ours.
MCP_RESULT_TOKENS = 4000


@dataclass(frozen=True)
class Actor:
    """The token's owner, as authenticated for this HTTP request."""

    user_id: int
    groups: tuple[str, ...]


def tool_entry(tool: Tool) -> types.Tool:
    schema = tool.Arguments.model_json_schema()
    schema.pop("title", None)
    return types.Tool(
        name=tool.name, description=tool.description, input_schema=schema,
        annotations=types.ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False),
    )


def _actor(ctx: ServerRequestContext) -> Actor:
    request = ctx.request
    actor = request.scope.get(ACTOR_SCOPE_KEY) if request is not None else None
    if not isinstance(actor, Actor):  # the HTTP layer always sets it; never serve without one
        raise MCPError(code=types.INVALID_REQUEST, message="Not authenticated.")
    return actor


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


def run_tool(tool: Tool, actor: Actor, raw_arguments) -> types.CallToolResult:
    """One call, synchronously (in a worker thread): rate limit, parse, run as the actor."""
    try:
        verdict = ratelimit.mcp_tool_call_allowed(user_id=actor.user_id)
        if not verdict.allowed:
            return _error(
                _("Too many tool calls. Wait %(wait)s before calling again.")
                % {"wait": ratelimit.wait_phrase(verdict.retry_after)}
            )
        try:
            arguments = tool.parse(raw_arguments)
            context = ToolContext(user_id=actor.user_id, groups=list(actor.groups), result_tokens=MCP_RESULT_TOKENS)
            result = tool.run(context, arguments)
        except ToolError as exc:
            return _error(str(exc))
        text = result.content if not result.summary else f"{result.content}\n\n({result.summary})"
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=False)
    except Exception:
        logger.exception("MCP tool %s failed", tool.name)
        return _error(_("The tool failed on the server. Try again later."))
    finally:
        close_old_connections()  # hand the thread's connection back (to the pool) between calls


async def list_tools(ctx: ServerRequestContext, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    _actor(ctx)
    return types.ListToolsResult(tools=[tool_entry(tool) for tool in mcp_tools()])


async def call_tool(ctx: ServerRequestContext, params: types.CallToolRequestParams) -> types.CallToolResult:
    actor = _actor(ctx)
    tool = tool_named(params.name)
    if tool is None or not tool.mcp:
        names = ", ".join(t.name for t in mcp_tools())
        raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool {params.name[:80]!r}; the tools are: {names}.")
    return await sync_to_async(run_tool, thread_sensitive=False)(tool, actor, params.arguments or {})


SERVER = Server(
    "enterprise-assistant",
    version="1",
    instructions=(
        "Search and read the company's documents the token's owner may read. Start with search_knowledge; "
        "read_document reads one whole; list_sources names the sources to narrow a search."
    ),
    on_list_tools=list_tools,
    on_call_tool=call_tool,
)
