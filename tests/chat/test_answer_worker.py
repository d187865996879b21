"""Answers written by a worker (ANSWER_RUNNER=worker) outlive the request that asked: two uvicorn
processes, a real Celery worker on queue "answer", real Redis and a model server that writes
slowly. The stream is resumed on the other web process from the last event seen; Stop works from
any client; a worker killed mid-answer leaves a failed answer with Retry, never one "in progress"."""

from __future__ import annotations

import json
import os
import signal
import time

import httpx
import pytest

from assistant.chat.models import Message
from tests.chat.slow_llm import SlowModel
from tests.conftest import spawn_celery_worker, spawn_web, stop_process
from tests.e2e.sse import login

pytestmark = pytest.mark.django_db(transaction=True)

ANSWER = " ".join(f"word{i}" for i in range(60)) + "."


@pytest.fixture
def slow_model():
    model = SlowModel(ANSWER)
    yield model
    model.close()


@pytest.fixture
def stack(slow_model, purge_queues, owner):
    """Two web processes and one answer worker, all ANSWER_RUNNER=worker, on the slow model."""
    env = dict(ANSWER_RUNNER="worker", LLM_BASE_URL=slow_model.base_url, LLM_MODEL="slow")
    processes, urls = [], []
    try:
        for name in ("web-a", "web-b"):
            process, url = spawn_web(name, **env)
            processes.append(process)
            urls.append(url)
        worker = spawn_celery_worker(queues="answer", pool="threads", **env)
        processes.append(worker)
        yield {"a": urls[0], "b": urls[1], "worker": worker, "model": slow_model}
    finally:
        for process in processes:
            stop_process(process)


def _submit(client: httpx.Client, question: str) -> str:
    headers = {"X-CSRFToken": client.cookies["csrftoken"], "Referer": str(client.base_url)}
    created = client.post("/chat/api/conversations/", json={}, headers=headers)
    assert created.status_code == 201, created.text
    submitted = client.post(f"/chat/api/c/{created.json()['id']}/messages/", json={"content": question},
                            headers=headers)
    assert submitted.status_code == 201, submitted.text
    return submitted.json()["stream_url"]


def _events(client: httpx.Client, url: str, *, last_id: str = "", stop_after_tokens: int | None = None):
    """(id, event, data) as they arrive; hangs up after `stop_after_tokens` tokens when given."""
    headers = {"Accept": "text/event-stream", **({"Last-Event-ID": last_id} if last_id else {})}
    found, entry = [], {}
    with client.stream("GET", url, headers=headers, timeout=60) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line.startswith("id:"):
                entry["id"] = line[3:].strip()
            elif line.startswith("event:"):
                entry["event"] = line[6:].strip()
            elif line.startswith("data:"):
                entry["data"] = json.loads(line[5:])
            elif not line and entry:
                found.append((entry.get("id", ""), entry.get("event"), entry.get("data")))
                entry = {}
                tokens = sum(1 for _i, e, _d in found if e == "token")
                if stop_after_tokens is not None and tokens >= stop_after_tokens:
                    break
    return found


def _text(events) -> str:
    return "".join(d["text"] for _i, e, d in events if e == "token")


def test_an_answer_started_on_one_web_process_is_resumed_on_another_from_the_last_event(stack, owner):
    a = login(stack["a"], "owner", "owner-pass-123")
    b = login(stack["b"], "owner", "owner-pass-123")
    b.cookies = a.cookies  # the same browser session, now served by the other process
    url = _submit(a, "Tell me a long story")

    first = _events(a, url, stop_after_tokens=5)  # then the tab goes away
    assert all(i for i, _e, _d in first), "every event carries an id to resume from"
    rest = _events(b, url, last_id=first[-1][0])

    assert _text(first) + _text(rest) == ANSWER  # nothing lost, nothing twice
    done = [d for _i, e, d in rest if e == "done"]
    assert done and done[0]["status"] == "complete"
    assert stack["model"].answers_written == 1  # written once, whoever read it


def test_the_answer_goes_on_without_a_reader_and_a_reload_replays_it_whole(stack, owner):
    a = login(stack["a"], "owner", "owner-pass-123")
    url = _submit(a, "Tell me a long story")
    _events(a, url, stop_after_tokens=2)
    message_id = url.rstrip("/").split("/")[-2]
    deadline = time.monotonic() + 60
    while Message.objects.get(id=message_id).status != Message.Status.COMPLETE:
        assert time.monotonic() < deadline, "the answer stopped when its reader left"
        time.sleep(0.2)
    assert Message.objects.get(id=message_id).content == ANSWER

    replay = _events(login(stack["b"], "owner", "owner-pass-123"), url)
    assert _text(replay) == ANSWER
    assert [e for _i, e, _d in replay if e == "done"] == ["done"]


def test_stop_from_another_client_ends_the_answer_everywhere(stack, owner):
    stack["model"].server.delay = 0.2
    a = login(stack["a"], "owner", "owner-pass-123")
    b = login(stack["b"], "owner", "owner-pass-123")
    url = _submit(a, "Tell me a long story")
    message_id = url.rstrip("/").split("/")[-2]
    first = _events(a, url, stop_after_tokens=2)
    stopped = b.post(f"/chat/api/messages/{message_id}/stop/", json={},
                     headers={"X-CSRFToken": b.cookies["csrftoken"], "Referer": stack["b"]})
    assert stopped.status_code == 200, stopped.text

    rest = _events(a, url, last_id=first[-1][0])
    done = [d for _i, e, d in rest if e == "done"]
    assert done and done[0]["status"] == "stopped"
    assert len(_text(first) + _text(rest)) < len(ANSWER)


def test_a_worker_killed_mid_answer_leaves_a_failed_answer_with_retry(stack, owner):
    stack["model"].server.delay = 0.3
    a = login(stack["a"], "owner", "owner-pass-123")
    url = _submit(a, "Tell me a long story")
    message_id = url.rstrip("/").split("/")[-2]
    first = _events(a, url, stop_after_tokens=2)
    os.killpg(stack["worker"].pid, signal.SIGKILL)
    stack["worker"].wait(timeout=10)

    rest = _events(a, url, last_id=first[-1][0])
    errors = [d for _i, e, d in rest if e == "error"]
    assert errors and errors[0]["retryable"] is True
    message = Message.objects.get(id=message_id)
    assert message.status == Message.Status.ERROR and message.error_retryable


def test_a_last_event_id_that_is_not_one_is_refused(stack, owner):
    a = login(stack["a"], "owner", "owner-pass-123")
    url = _submit(a, "Hello")
    response = a.get(url, headers={"Last-Event-ID": "'; DROP"})
    assert response.status_code == 400
    assert "Last-Event-ID" in response.json()["error"]


def test_the_sweep_fails_answers_a_dead_worker_left_in_progress_and_spares_live_ones(owner, settings):
    from datetime import timedelta

    import redis
    from django.utils import timezone

    from assistant.chat import answer_relay
    from assistant.chat.models import Conversation
    from assistant.chat.tasks import sweep_stale_answers

    settings.ANSWER_RUNNER = "worker"
    conversation = Conversation.objects.create(user=owner)
    old = timezone.now() - timedelta(minutes=5)
    dead, alive, fresh = (
        Message.objects.create(conversation=conversation, role="assistant", status=Message.Status.STREAMING)
        for _ in range(3)
    )
    Message.objects.filter(id__in=[dead.id, alive.id]).update(updated_at=old)
    redis.Redis.from_url(settings.REDIS_URL).set(answer_relay.alive_key(alive.id), "1", ex=30)

    assert sweep_stale_answers() == 1
    dead.refresh_from_db()
    assert dead.status == Message.Status.ERROR and dead.error_retryable
    assert Message.objects.get(id=alive.id).status == Message.Status.STREAMING  # its worker still beats
    assert Message.objects.get(id=fresh.id).status == Message.Status.STREAMING  # too recent to judge
    settings.ANSWER_RUNNER = "request"
    Message.objects.filter(id=fresh.id).update(updated_at=old)
    assert sweep_stale_answers() == 0  # a web request writing an answer has no heartbeat: left alone
