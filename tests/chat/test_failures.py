"""Errors a user understands: the model server down, overloaded, or the context too long;
each with a clear message, Retry where it makes sense, and the question kept."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from asgiref.sync import async_to_sync
from django.urls import reverse

from assistant.chat.answering import answer_events, get_chat_client
from assistant.chat.models import Conversation, Message
from assistant.chat.services import question_submit
from inference.chat_client import ChatClient, ContextTooLongError, ModelServerError
from tests.chat.fakes import FakeChatClient, use_fake_client
from tests.conftest import free_port


def collect(message, user) -> list[tuple[str, dict]]:
    async def run():
        return [event async for event in answer_events(message, user)]

    return async_to_sync(run)()


class _Handler(BaseHTTPRequestHandler):
    status = 503
    body = b'{"error": {"message": "overloaded"}}'

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def failing_server():
    """A model server that answers every request with a given status and body."""
    servers = []

    def start(status: int, body: dict) -> str:
        handler = type("Handler", (_Handler,), {"status": status, "body": json.dumps(body).encode()})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def stream_error(base_url: str) -> ModelServerError:
    client = ChatClient(base_url=base_url, model="m", connect_retries=0, timeout=5)

    async def run():
        async for _ in client.stream([{"role": "user", "content": "hi"}]):
            pass

    with pytest.raises(ModelServerError) as caught:
        async_to_sync(run)()
    return caught.value


@pytest.mark.parametrize("status", [429, 503])
def test_an_overloaded_server_is_reported_as_busy_and_retryable(failing_server, status):
    error = stream_error(failing_server(status, {"error": {"message": "overloaded"}}))
    assert (error.kind, error.retryable, error.status_code) == ("busy", True, status)


def test_a_400_about_the_context_is_reported_as_too_long_and_not_retryable(failing_server):
    body = {"error": {"message": "Requested tokens (9000) exceed context window of 8192"}}
    error = stream_error(failing_server(400, body))
    assert isinstance(error, ContextTooLongError)
    assert (error.kind, error.retryable) == ("context_too_long", False)


def test_a_server_that_is_down_is_reported_as_unreachable():
    error = stream_error(f"http://127.0.0.1:{free_port()}/v1")
    assert (error.kind, error.retryable) == ("unreachable", True)


@pytest.mark.parametrize(
    "error,kind,retryable,words",
    [
        (ModelServerError("x", kind="unreachable"), "unreachable", True, "not reachable"),
        (ModelServerError("x", kind="busy", status_code=503), "busy", True, "busy"),
        (ContextTooLongError(), "context_too_long", False, "Shorten the question"),
    ],
)
def test_the_chat_gets_a_message_a_user_understands(client, owner, monkeypatch, error, kind, retryable, words):
    use_fake_client(monkeypatch, FakeChatClient(error=error))
    conversation = Conversation.objects.create(user=owner)
    question, answer = question_submit(conversation=conversation, content="How many days of leave?")
    events = collect(answer, owner)
    name, data = events[-1]
    assert name == "error" and data["kind"] == kind and data["retryable"] is retryable
    assert words in data["message"]
    answer.refresh_from_db()
    assert answer.status == Message.Status.ERROR and words in answer.error
    question.refresh_from_db()
    assert question.content == "How many days of leave?"  # the question is kept
    # After a reload the page offers Retry exactly when retrying can help.
    client.force_login(owner)
    page = client.get(reverse("chat:conversation", args=[conversation.id])).content.decode()
    assert words in page
    assert ('class="retry-button"' in page) is retryable


@pytest.mark.django_db(transaction=True)
def test_retry_answers_again_in_place_once_the_server_is_back(client, owner, settings, monkeypatch):
    settings.LLM_BASE_URL = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    settings.LLM_CONNECT_RETRIES = 0
    get_chat_client.cache_clear()
    try:
        conversation = Conversation.objects.create(user=owner)
        _, answer = question_submit(conversation=conversation, content="How many days of leave?")
        assert collect(answer, owner)[-1][0] == "error"
    finally:
        get_chat_client.cache_clear()
    use_fake_client(monkeypatch, FakeChatClient())  # the server is back
    client.force_login(owner)
    response = client.post(reverse("chat:api_answer_retry", args=[answer.id]))
    assert response.status_code == 200
    assert response.json()["stream_url"] == reverse("chat:api_answer_stream", args=[answer.id])
    answer.refresh_from_db()
    assert answer.status == Message.Status.PENDING and answer.error == ""
    assert collect(answer, owner)[-1][0] == "done"
    answer.refresh_from_db()
    assert answer.status == Message.Status.COMPLETE and answer.content == "Here it is."
    assert conversation.messages.count() == 2  # no second copy of the question


def test_only_a_failed_answer_can_be_retried(client, owner):
    conversation = Conversation.objects.create(user=owner)
    answer = Message.objects.create(conversation=conversation, role="assistant", status="complete", content="Done")
    client.force_login(owner)
    response = client.post(reverse("chat:api_answer_retry", args=[answer.id]))
    assert response.status_code == 400 and "failed" in response.json()["error"]


def test_it_rejects_outsider_retrying_another_users_answer_with_404(client, owner, outsider):
    conversation = Conversation.objects.create(user=owner)
    answer = Message.objects.create(conversation=conversation, role="assistant", status="error", error="down")
    client.force_login(outsider)
    assert client.post(reverse("chat:api_answer_retry", args=[answer.id])).status_code == 404
    answer.refresh_from_db()
    assert answer.status == "error"
