"""The agent loop through the real answer pipeline: a scripted model server that makes real
streamed `tool_calls`, real PostgreSQL and Redis, the answer as a user receives and reloads it."""

from __future__ import annotations

import logging
import time

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connection

from assistant.chat.answering import answer_events, get_chat_client
from assistant.chat.assistants import assistant_default
from assistant.chat.memory import memory_enable_set
from assistant.chat.models import Conversation, Memory, Message
from assistant.chat.services import answer_stop, question_submit
from tests.chat.agent_tools import register_test_tools, unregister_test_tools
from tests.chat.fake_llm import SECRET, index_kitchen_and_vault
from tests.chat.scripted_llm import Call, Say, use_scripted_model

QUESTION = "What is the server room vault code?"


@pytest.fixture
def test_tools(db):
    register_test_tools()
    assistant = assistant_default()
    assistant.tools = ["lookup_note", "meet", "clock", "sleepy", "boom"]
    assistant.save()
    yield assistant
    unregister_test_tools()


@pytest.fixture
def indexed_folder(db, tmp_path, engineering):
    index_kitchen_and_vault(tmp_path, engineering)


@pytest.fixture
def scripted(settings):
    models = []

    def start(script, **kwargs):
        models.append(use_scripted_model(settings, script, **kwargs))
        return models[-1]

    yield start
    for model in models:
        model.close()
    get_chat_client.cache_clear()


def ask(user, question: str = QUESTION, *, on_event=None) -> tuple[Message, list[tuple[str, dict]]]:
    conversation = Conversation.objects.create(user=user)
    _, answer = question_submit(conversation=conversation, content=question)
    return answer, run_answer(answer, user, on_event=on_event)


def run_answer(answer: Message, user, *, on_event=None) -> list[tuple[str, dict]]:
    async def run():
        events = []
        async for name, data in answer_events(answer, user):
            events.append((name, data))
            if on_event is not None:
                await on_event(name, data)
        return events

    events = async_to_sync(run)()
    answer.refresh_from_db()
    return events


def steps_of(events) -> list[dict]:
    return [data for name, data in events if name == "step"]


def text_of(events) -> str:
    return "".join(data["text"] for name, data in events if name == "token")


def database_sleepers() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%%' AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0]


def wait_until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)  # polling for a condition, not a fixed wait
    return condition()


@pytest.mark.django_db(transaction=True)
def test_several_tools_in_one_step_run_together_and_each_result_goes_back_to_the_model(
    indexed_folder, teammate, test_tools, scripted
):
    model = scripted([
        Call.of(("lookup_note", {"query": "vault code"}), ("meet", {}), ("meet", {})),
        Say(f"The vault code is {SECRET} {{cite:Vault access}}."),
    ])
    answer, events = ask(teammate)
    steps = steps_of(events)
    started = [s for s in steps if s["status"] == "running"]
    ended = [s for s in steps if s["status"] != "running"]
    assert [s["tool"] for s in started] == ["lookup_note", "meet", "meet"]
    assert [s["status"] for s in ended] == ["done"] * 3  # both meetings met: the calls ran together
    assert sorted(s["id"] for s in ended) == sorted(s["id"] for s in started)
    assert all(s["step"] == 1 and s["duration_ms"] is not None for s in ended)
    assert model.offered(0) == ["lookup_note", "meet", "clock", "sleepy", "boom"]
    results = dict(model.tool_results(1))
    assert SECRET in results["lookup_note"] and results["meet"] == "Met."
    # What the user keeps: the answer, its steps in call order, its citation.
    assert answer.status == Message.Status.COMPLETE and text_of(events).startswith("The vault code is 9038 [")
    assert [s["id"] for s in answer.steps] == [s["id"] for s in started]
    lookup = answer.steps[0]
    assert lookup["label"] == "Searching “vault code”…" and lookup["summary"].startswith("Found")
    assert lookup["arguments"] == {"query": "vault code"} and lookup["status"] == "done"
    assert any(source["title"] == "Vault access" for source in lookup["sources"])
    assert [c["title"] for c in answer.citations] == ["Vault access"]


@pytest.mark.django_db(transaction=True)
def test_citations_across_steps_point_at_the_passages_the_steps_showed(indexed_folder, teammate, test_tools, scripted):
    scripted([
        Call.of(("lookup_note", {"query": "dishwasher floor 3"})),
        Call.of(("lookup_note", {"query": "vault code"})),
        Say(f"The dishwasher runs at 6 pm {{cite:Kitchen rules}}. The vault code is {SECRET} {{cite:Vault access}}."),
    ])
    answer, events = ask(teammate)
    assert answer.status == Message.Status.COMPLETE
    assert [(s["step"], s["tool"]) for s in answer.steps] == [(1, "lookup_note"), (2, "lookup_note")]
    assert {c["title"] for c in answer.citations} == {"Kitchen rules", "Vault access"}
    chips = answer.rendered_html.count('<a class="cite"')
    assert chips == 2
    sources = {s["title"]: s for s in answer.sources}
    assert sources["Vault access"]["cited"] and sources["Kitchen rules"]["cited"]
    assert SECRET in sources["Vault access"]["passage"]
    done = events[-1][1]
    assert done["status"] == "complete" and {c["title"] for c in done["citations"]} == {"Kitchen rules", "Vault access"}
