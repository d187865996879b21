"""The agent loop through the real answer pipeline: a scripted model server that makes real
streamed `tool_calls`, real PostgreSQL and Redis, the answer as a user receives and reloads it."""

from __future__ import annotations

import logging
import time

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connection

from assistant.chat.answering import answer_events
from assistant.chat.models import Conversation, Message
from assistant.chat.services import answer_stop, question_submit
from tests.chat.fake_llm import SECRET, index_kitchen_and_vault
from tests.chat.scripted_llm import Call, Say

QUESTION = "What is the server room vault code?"


@pytest.fixture
def indexed_folder(db, tmp_path, engineering):
    index_kitchen_and_vault(tmp_path, engineering)


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
    indexed_folder, teammate, agent_tools, scripted
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
    assert model.offered(0) == ["lookup_note", "meet", "clock", "sleepy", "boom", "long_text"]
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
def test_citations_across_steps_point_at_the_passages_the_steps_showed(indexed_folder, teammate, agent_tools, scripted):
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


@pytest.mark.django_db(transaction=True)
def test_bad_calls_go_back_to_the_model_as_errors_it_can_correct(teammate, agent_tools, scripted, caplog):
    assistant = agent_tools
    assistant.tools = ["lookup_note", "clock"]  # `boom` exists but this assistant may not use it
    assistant.save()
    model = scripted([
        Call.of(("lookup_note", '{"query": "vau'), ("delete_everything", {}), ("lookup_note", {"top": 3}),
                ("boom", {})),
        Call.of(("clock", {})),
        Say("It is 10:00."),
    ])
    with caplog.at_level(logging.INFO, logger="assistant.agent.loop"):
        answer, events = ask(teammate, "What time is it?")
    assert text_of(events) == "It is 10:00." and answer.status == Message.Status.COMPLETE
    assert model.offered(0) == ["lookup_note", "clock"]
    first = [s for s in answer.steps if s["step"] == 1]
    assert [(s["tool"], s["status"]) for s in first] == [
        ("lookup_note", "error"), ("delete_everything", "error"), ("lookup_note", "error"), ("boom", "error")]
    assert first[0]["arguments"] == {"raw": '{"query": "vau'} and "not valid JSON" in first[0]["error"]
    assert "no tool named 'delete_everything'" in first[1]["error"]
    assert "query" in first[2]["error"] and "Invalid arguments" in first[2]["error"]
    assert "no tool named 'boom'" in first[3]["error"]  # never offered, so refused as unknown
    told = [content for _name, content in model.tool_results(1)]
    assert all(content.startswith("Error: ") for content in told) and "not valid JSON" in told[0]
    assert [(s["step"], s["tool"], s["status"]) for s in answer.steps[4:]] == [(2, "clock", "done")]
    assert "delete_everything" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_tool_that_raises_is_reported_to_the_model_without_its_internals(teammate, agent_tools, scripted, caplog):
    model = scripted([Call.of(("boom", {})), Say("The tool broke; I cannot say.")])
    with caplog.at_level(logging.ERROR, logger="assistant.agent.loop"):
        answer, events = ask(teammate, "Break something.")
    assert answer.status == Message.Status.COMPLETE and text_of(events) == "The tool broke; I cannot say."
    [step] = answer.steps
    assert step["status"] == "error" and "failed unexpectedly" in step["error"] and "kaboom" not in step["error"]
    assert "kaboom" not in model.tool_results(1)[0][1]
    assert "kaboom" in caplog.text  # the staff's log has the whole story


@pytest.mark.django_db(transaction=True)
def test_a_model_that_never_stops_calling_is_asked_to_answer_without_tools_at_the_step_limit(
    teammate, agent_tools, scripted, settings
):
    settings.AGENT_MAX_STEPS = 3
    model = scripted([Call.of(("clock", {}))], no_tools_reply="It is 10:00, as far as I can tell.")
    answer, events = ask(teammate, "What time is it?")
    assert text_of(events) == "It is 10:00, as far as I can tell."
    assert answer.status == Message.Status.COMPLETE
    assert [(s["step"], s["status"]) for s in answer.steps] == [(1, "done"), (2, "done"), (3, "done")]
    assert len(model.requests) == 4
    assert all(model.offered(i) == ["lookup_note", "meet", "clock", "sleepy", "boom", "long_text"] for i in range(3))
    last = model.requests[3]
    assert "tools" not in last and "tool_choice" not in last  # never an empty `tools` array
    assert "Do not call tools" in last["messages"][-1]["content"]


@pytest.mark.django_db(transaction=True)
def test_a_tool_past_its_timeout_is_stopped_in_the_database_too(teammate, agent_tools, scripted, settings):
    settings.AGENT_TOOL_TIMEOUT_SECONDS = 1.0
    model = scripted([Call.of(("sleepy", {"seconds": 30})), Say("The search took too long.")])
    started = time.monotonic()
    answer, events = ask(teammate, "Search slowly.")
    assert time.monotonic() - started < 15
    assert text_of(events) == "The search took too long." and answer.status == Message.Status.COMPLETE
    [step] = answer.steps
    assert step["status"] == "error" and "did not finish within 1 seconds" in step["error"]
    assert "did not finish" in model.tool_results(1)[0][1]
    assert wait_until(lambda: database_sleepers() == 0), "the abandoned query still runs in the database"


@pytest.mark.django_db(transaction=True)
def test_stop_during_a_tool_ends_the_answer_at_once_and_keeps_the_steps(teammate, agent_tools, scripted, settings):
    settings.AGENT_TOOL_TIMEOUT_SECONDS = 60.0
    model = scripted([Call.of(("clock", {})), Call.of(("sleepy", {"seconds": 30})), Say("never said")])

    conversation = Conversation.objects.create(user=teammate)
    _, answer = question_submit(conversation=conversation, content="Search slowly.")

    async def on_event(name, data):  # the Stop button, pressed while the tool waits in the database
        if name == "step" and data["tool"] == "sleepy" and data["status"] == "running":
            assert await sync_to_async(wait_until)(lambda: database_sleepers() == 1)
            await sync_to_async(answer_stop)(message=answer)

    started = time.monotonic()
    events = run_answer(answer, teammate, on_event=on_event)
    assert time.monotonic() - started < 15
    assert events[-1][0] == "done" and events[-1][1]["status"] == "stopped"
    assert answer.status == Message.Status.STOPPED
    assert [(s["tool"], s["status"]) for s in answer.steps] == [("clock", "done"), ("sleepy", "cancelled")]
    assert steps_of(events)[-1]["status"] == "cancelled"
    assert len(model.requests) == 2  # the model was not asked again
    assert wait_until(lambda: database_sleepers() == 0), "the cancelled tool's query still runs"


@pytest.mark.django_db(transaction=True)
def test_a_reader_who_goes_away_during_a_tool_keeps_the_steps_so_far(teammate, agent_tools, scripted, settings):
    settings.AGENT_TOOL_TIMEOUT_SECONDS = 60.0
    scripted([Call.of(("clock", {})), Call.of(("sleepy", {"seconds": 30})), Say("never said")])
    conversation = Conversation.objects.create(user=teammate)
    _, answer = question_submit(conversation=conversation, content="Search slowly.")

    async def run():
        stream = answer_events(answer, teammate)
        async for name, data in stream:
            if name == "step" and data["tool"] == "sleepy":
                assert await sync_to_async(wait_until)(lambda: database_sleepers() == 1)
                break
        await stream.aclose()

    async_to_sync(run)()
    answer.refresh_from_db()
    assert answer.status == Message.Status.STOPPED
    assert [(s["tool"], s["status"]) for s in answer.steps] == [("clock", "done"), ("sleepy", "cancelled")]
    assert wait_until(lambda: database_sleepers() == 0)


@pytest.mark.django_db(transaction=True)
def test_the_time_budget_stops_a_tool_and_the_model_answers_from_what_it_has(
    teammate, agent_tools, scripted, settings
):
    settings.AGENT_TIME_BUDGET_SECONDS = 1.5
    settings.AGENT_TOOL_TIMEOUT_SECONDS = 60.0
    model = scripted([Call.of(("sleepy", {"seconds": 30}))], no_tools_reply="I ran out of time.")
    started = time.monotonic()
    answer, events = ask(teammate, "Search slowly.")
    assert time.monotonic() - started < 15
    assert text_of(events) == "I ran out of time." and answer.status == Message.Status.COMPLETE
    [step] = answer.steps
    assert step["status"] == "error" and "did not finish" in step["error"]
    assert len(model.requests) == 2 and "tools" not in model.requests[1]
    assert "time for using tools in this answer is over" in model.requests[1]["messages"][-1]["content"]
    assert wait_until(lambda: database_sleepers() == 0)


@pytest.mark.django_db(transaction=True)
def test_a_long_result_is_cut_with_a_note_on_how_to_read_more(teammate, agent_tools, scripted, settings):
    settings.AGENT_TOOL_RESULT_TOKENS = 300
    model = scripted([Call.of(("long_text", {})), Say("Done.")])
    answer, _events = ask(teammate, "Read it all.")
    [(_name, content)] = model.tool_results(1)
    assert content.startswith("word0 word1") and "word4999" not in content
    assert "read_document with a later part=" in content and len(content) < 2000
    assert answer.steps[0]["status"] == "done" and answer.content == "Done."
