"""The MCP server at /mcp, driven by the MCP SDK's own client against the real ASGI app under
uvicorn: personal API tokens, the owner's groups, revocation, scopes, bad input, rate limits."""

from __future__ import annotations

import subprocess
import sys

import anyio
import httpx
import httpx2
import pytest
import redis
from django.conf import settings
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from assistant.accounts.models import ApiToken
from assistant.accounts.ratelimit import KEY_PREFIX
from assistant.accounts.tokens import api_token_create, api_token_revoke
from connectors.models import Connector, SyncRun
from connectors.sync import sync_run_execute
from tests.conftest import ARTIFACTS, ROOT, free_port, service_env, stop_process, wait_for_http

RATE = 6  # MCP_RATE_LIMIT of the server under test, per minute


@pytest.fixture(scope="module")
def mcp_server(django_db_setup, django_db_blocker):
    """uvicorn serving assistant.asgi:application (full-text search: no embedding model to load)."""
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    log = ARTIFACTS / "mcp-web.log"
    with django_db_blocker.unblock():
        env = service_env(ALLOWED_HOSTS="127.0.0.1,localhost", RAG_SEARCH_MODE="fulltext", MCP_RATE_LIMIT=f"{RATE}/m")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "assistant.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--lifespan", "off"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", timeout=60, process=process, log=log)
    except Exception:
        stop_process(process)
        raise
    yield f"{url}/mcp"
    stop_process(process)


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(f"{KEY_PREFIX}mcp:*"):
        client.delete(key)


@pytest.fixture
def indexed(transactional_db, tmp_path, engineering):
    public_dir, secret_dir = tmp_path / "public", tmp_path / "secret"
    public_dir.mkdir()
    secret_dir.mkdir()
    (public_dir / "canteen.md").write_text("# Canteen\n\nThe canteen serves lunch from noon. Salary day is the 25th.\n")
    (secret_dir / "salaries.md").write_text("# Salary bands\n\nThe salary band for a senior engineer is 95,000 euros.\n")
    public = Connector.objects.create(name="Public", kind="folder", config={"path": str(public_dir)}, is_public=True)
    secret = Connector.objects.create(name="Engineering", kind="folder", config={"path": str(secret_dir)})
    secret.groups.add(engineering)
    for connector in (public, secret):
        sync_run_execute(SyncRun.objects.create(connector=connector).id)
    return public, secret


def token_for(user, scopes=("mcp",)) -> str:
    return api_token_create(user=user, name="IDE", scopes=list(scopes))[1]


def session(url: str, token: str) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    return Client(streamable_http_client(url, http_client=http))


def run(coroutine_function, *args):
    return anyio.run(coroutine_function, *args)


def text_of(result) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def test_it_lists_the_three_knowledge_tools_with_their_schemas(mcp_server, indexed, teammate):
    secret = token_for(teammate)

    async def main():
        async with session(mcp_server, secret) as client:
            return (await client.list_tools()).tools

    tools = {tool.name: tool for tool in run(main)}
    assert set(tools) == {"search_knowledge", "read_document", "list_sources"}
    assert tools["search_knowledge"].input_schema["required"] == ["query"]
    assert "after" in tools["search_knowledge"].input_schema["properties"]
    assert tools["read_document"].annotations.read_only_hint is True


def test_two_users_with_different_groups_get_different_results(mcp_server, indexed, teammate, outsider):
    async def search(token):
        async with session(mcp_server, token) as client:
            return await client.call_tool("search_knowledge", {"query": "salary"})

    mine, theirs = run(search, token_for(teammate)), run(search, token_for(outsider))
    assert not mine.is_error and not theirs.is_error
    assert "Salary bands" in text_of(mine) and "95,000" in text_of(mine)
    assert "Canteen" in text_of(theirs)
    assert "Salary bands" not in text_of(theirs) and "95,000" not in text_of(theirs)


def test_list_sources_and_read_document_act_as_the_owner(mcp_server, indexed, teammate, outsider):
    secret_document = indexed[1].documents.get()

    async def main(token):
        async with session(mcp_server, token) as client:
            listed = await client.call_tool("list_sources", {})
            read = await client.call_tool("read_document", {"document": str(secret_document.id)})
            return text_of(listed), read

    listed, read = run(main, token_for(teammate))
    assert "- Engineering" in listed and "95,000" in text_of(read) and not read.is_error
    listed, read = run(main, token_for(outsider))
    assert "Engineering" not in listed and read.is_error and "95,000" not in text_of(read)


def test_a_revoked_token_is_refused(mcp_server, indexed, teammate):
    secret = token_for(teammate)
    api_token_revoke(token=ApiToken.objects.get(user=teammate))

    async def main():
        async with session(mcp_server, secret) as client:
            await client.list_tools()

    with pytest.raises(BaseException):  # the client fails to connect (401)
        run(main)
    response = httpx.post(mcp_server, headers={"Authorization": f"Bearer {secret}"}, json={})
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_token_without_the_mcp_scope_or_without_a_token_is_refused(mcp_server, indexed, teammate):
    chat_only = token_for(teammate, scopes=("ask",))
    response = httpx.post(mcp_server, headers={"Authorization": f"Bearer {chat_only}"}, json={})
    assert response.status_code == 403 and response.json()["error"]["code"] == "insufficient_scope"
    assert httpx.post(mcp_server, json={}).status_code == 401


def test_bad_input_gets_mcp_errors_never_a_500(mcp_server, indexed, teammate):
    secret = token_for(teammate)

    async def main():
        async with session(mcp_server, secret) as client:
            blank = await client.call_tool("search_knowledge", {"query": "  "})
            dates = await client.call_tool("search_knowledge", {"query": "x", "after": "soon"})
            with pytest.raises(MCPError) as unknown:
                await client.call_tool("drop_database", {})
            return blank, dates, unknown.value

    blank, dates, unknown = run(main)
    assert blank.is_error and "query" in text_of(blank)
    assert dates.is_error and "after" in text_of(dates)
    assert "Unknown tool" in unknown.message
    headers = {"Authorization": f"Bearer {secret}", "Accept": "application/json, text/event-stream"}
    for body in (b"\xff\xfe not json", b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": 7}', b"\x00"):
        response = httpx.post(mcp_server, headers={**headers, "Content-Type": "application/json"}, content=body)
        assert 400 <= response.status_code < 500 or response.json().get("error"), (body, response.status_code)
        assert response.status_code < 500


def test_tool_calls_are_rate_limited_per_owner(mcp_server, indexed, teammate, outsider):
    async def calls(token, count):
        async with session(mcp_server, token) as client:
            return [await client.call_tool("list_sources", {}) for _ in range(count)]

    results = run(calls, token_for(teammate), RATE + 1)
    assert not any(r.is_error for r in results[:RATE])
    assert results[RATE].is_error and "Too many tool calls" in text_of(results[RATE])
    assert not run(calls, token_for(outsider), 1)[0].is_error  # another owner is not held back
