"""The agent's steps where users and programs read answers: the chat page's event stream, the
JSON API's stream, the OpenAI-compatible endpoint (which has no place for them), regenerate,
and the switch back to the plain path."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from django.urls import reverse

from assistant.accounts.tokens import api_token_create
from assistant.chat.models import Conversation, Message
from assistant.chat.openai_api import MODEL_ID
from assistant.chat.services import answer_regenerate, question_submit
from tests.chat.fake_llm import SECRET, index_kitchen_and_vault
from tests.chat.scripted_llm import Call, Say
from tests.chat.test_agent_loop import run_answer

QUESTION = "What is the server room vault code?"
SCRIPT = [Call.of(("lookup_note", {"query": "vault code"})), Say(f"The code is {SECRET} {{cite:Vault access}}.")]


@pytest.fixture
def indexed_folder(db, tmp_path, engineering):
    index_kitchen_and_vault(tmp_path, engineering)


def sse_events(text: str) -> list[tuple[str | None, object]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        data = lines.get("data", "null")
        events.append((lines.get("event"), data if data == "[DONE]" else json.loads(data)))
    return events


def streamed(method: str, path: str, *, user=None, body: dict | None = None, token: str = "") -> str:
    async def run():
        client = AsyncClient()
        if user is not None:
            await client.aforce_login(user)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if method == "GET":
            response = await client.get(path, headers=headers)
        else:
            response = await client.post(path, json.dumps(body), content_type="application/json", headers=headers)
        assert response.status_code == 200, response.content
        return b"".join([chunk async for chunk in response.streaming_content]).decode()

    return async_to_sync(run)()


@pytest.mark.django_db(transaction=True)
def test_the_chat_page_stream_sends_each_step_as_it_starts_and_ends(indexed_folder, teammate, agent_tools, scripted):
    scripted(SCRIPT)
    conversation = Conversation.objects.create(user=teammate)
    _, answer = question_submit(conversation=conversation, content=QUESTION)
    events = sse_events(streamed("GET", reverse("chat:api_answer_stream", args=[answer.id]), user=teammate))
    names = [name for name, _ in events]
    assert names.index("step") < names.index("token") and names[-1] in ("done", "title")
    steps = [data for name, data in events if name == "step"]
    assert [(s["tool"], s["status"]) for s in steps] == [("lookup_note", "running"), ("lookup_note", "done")]
    assert steps[0]["id"] == steps[1]["id"] and steps[0]["label"] == "Searching “vault code”…"
    answer.refresh_from_db()
    assert answer.steps == [steps[1]]  # a reload shows what the stream showed


@pytest.mark.django_db(transaction=True)
def test_the_json_api_stream_relays_steps(indexed_folder, teammate, agent_tools, scripted):
    scripted(SCRIPT)
    token = api_token_create(user=teammate, name="test")[1]
    conversation = Conversation.objects.create(user=teammate)
    text = streamed("POST", f"/api/v1/conversations/{conversation.id}/messages", token=token,
                    body={"content": QUESTION, "stream": True})
    events = sse_events(text)
    assert [(d["tool"], d["status"]) for n, d in events if n == "step"] == [
        ("lookup_note", "running"), ("lookup_note", "done")]
    done = [d for n, d in events if n == "done"][0]["answer"]
    assert SECRET in done["content"] and [c["title"] for c in done["citations"]] == ["Vault access"]


@pytest.mark.django_db(transaction=True)
def test_the_openai_endpoint_answers_through_the_agent_and_skips_the_steps(
    indexed_folder, teammate, agent_tools, scripted
):
    scripted(SCRIPT)
    token = api_token_create(user=teammate, name="test")[1]
    text = streamed("POST", "/v1/chat/completions", token=token,
                    body={"model": MODEL_ID, "messages": [{"role": "user", "content": QUESTION}], "stream": True})
    lines = [line[6:] for line in text.split("\n\n") if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)  # nothing but OpenAI's chunks
    assert SECRET in "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert [c["title"] for c in chunks[-1]["citations"]] == ["Vault access"]


@pytest.mark.django_db(transaction=True)
def test_regenerate_runs_the_steps_again(indexed_folder, teammate, agent_tools, scripted):
    model = scripted(SCRIPT + [Call.of(("clock", {})), Say("Again: the code is 9038.")])
    conversation = Conversation.objects.create(user=teammate)
    _, first = question_submit(conversation=conversation, content=QUESTION)
    run_answer(first, teammate)
    second = answer_regenerate(message=first)
    run_answer(second, teammate)
    assert [s["tool"] for s in first.steps] == ["lookup_note"]
    assert [s["tool"] for s in second.steps] == ["clock"] and second.content == "Again: the code is 9038."
    assert len(model.requests) == 4
    first.refresh_from_db()
    assert [s["tool"] for s in first.steps] == ["lookup_note"]  # the earlier version keeps its own


@pytest.mark.django_db(transaction=True)
def test_without_tool_support_the_plain_path_answers_and_offers_no_tools(
    indexed_folder, teammate, agent_tools, scripted, settings
):
    model = scripted([Say(f"The code is {SECRET} {{cite:Vault access}}.")])
    settings.LLM_TOOLS = False
    conversation = Conversation.objects.create(user=teammate)
    _, answer = question_submit(conversation=conversation, content=QUESTION)
    events = run_answer(answer, teammate)
    assert "tools" not in model.requests[0] and not [n for n, _ in events if n == "step"]
    assert answer.steps == [] and [c["title"] for c in answer.citations] == ["Vault access"]


@pytest.mark.django_db(transaction=True)
def test_an_assistant_without_tools_takes_the_plain_path(indexed_folder, teammate, agent_tools, scripted):
    agent_tools.tools = []
    agent_tools.save()
    model = scripted([Say("Plain.")])
    conversation = Conversation.objects.create(user=teammate)
    _, answer = question_submit(conversation=conversation, content=QUESTION)
    run_answer(answer, teammate)
    assert "tools" not in model.requests[0] and answer.content == "Plain." and answer.status == Message.Status.COMPLETE
