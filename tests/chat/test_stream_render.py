"""While an answer streams, the chat page gets its markdown rendered by the server (`render`
events: the text so far as sanitised HTML), not only at the end; programs' streams do not."""

from __future__ import annotations

import pytest

from assistant.chat.models import Conversation
from assistant.chat.services import question_submit
from assistant.rag.citations import render_partial_html
from tests.chat.scripted_llm import Say
from tests.chat.test_agent_streams import sse_events, streamed

ANSWER = "Steps:\n\n1. Open **Settings**\n2. Run `vpn --login` <script>alert(1)</script> [1]\n\n```sh\necho ok"


def test_a_partial_answer_renders_markdown_and_an_open_code_block_sanitised():
    html = render_partial_html(ANSWER)
    assert "<strong>Settings</strong>" in html and "<code>vpn --login</code>" in html
    assert "<pre>" in html and "echo ok" in html  # an unclosed fence is already a code block
    assert "<script" not in html
    assert "[1]" in html  # markers stay text until the answer is complete and checked


@pytest.mark.django_db(transaction=True)
def test_the_chat_page_stream_sends_the_rendered_answer_while_it_streams(teammate, scripted, settings):
    settings.STREAM_RENDER_SECONDS = 0.05
    scripted([Say(ANSWER)])
    conversation = Conversation.objects.create(user=teammate)
    _, answer = question_submit(conversation=conversation, content="How do I connect to the VPN?")
    events = sse_events(streamed("GET", f"/chat/api/messages/{answer.id}/stream/", user=teammate))
    names = [name for name, _data in events]
    assert "render" in names and names.index("render") < names.index("done")
    assert names[names.index("token") + 1] == "render"  # the first token comes rendered at once
    written = ""
    for name, data in events:  # each render is the text written so far, as the end would show it
        if name == "token":
            written += data["text"]
        elif name == "render":
            assert data["html"] == render_partial_html(written)
            assert "<script" not in data["html"]


@pytest.mark.django_db(transaction=True)
def test_the_json_api_stream_has_no_render_events(teammate, scripted):
    from assistant.accounts.tokens import api_token_create

    scripted([Say(ANSWER)])
    secret = api_token_create(user=teammate, name="t")[1]
    conversation = Conversation.objects.create(user=teammate)
    body = {"content": "How do I connect to the VPN?", "stream": True}
    events = sse_events(streamed("POST", f"/api/v1/conversations/{conversation.id}/messages", body=body, token=secret))
    assert "render" not in [name for name, _data in events]
