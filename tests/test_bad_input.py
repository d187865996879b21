"""Bad input is a 400 in each endpoint's own shape, never a 500 (the outside tester's cases).

NUL bytes (PostgreSQL cannot store them: a DataError), invalid UTF-8, lone surrogates, a list
where text is expected. tests/test_bad_input_fuzz.py sweeps every endpoint with random values;
these are the reported cases, each checked for the shape its clients parse.
"""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from assistant.accounts.tokens import api_token_create
from assistant.chat.models import Conversation, Memory
from connectors.models import Connector
from connectors.request_input import RequestInvalid, check_json_value, parse_json


@pytest.fixture
def signed_in(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def conversation(owner):
    return Conversation.objects.create(user=owner, title="Plans")


@pytest.fixture
def bearer(owner):
    _token, secret = api_token_create(user=owner, name="cli")
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def post_json(client, url, body, **extra):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.generic("POST", url, raw, content_type="application/json", **extra)


def chat_error(response) -> str:
    assert response.status_code == 400, response.content[:500]
    return response.json()["error"]


def api_error(response) -> dict:
    assert response.status_code == 400, response.content[:500]
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    return error


# --- the chat page's endpoints ({"error": "..."}) -----------------------------------------------


def test_a_nul_byte_in_a_search_is_a_400(signed_in):
    response = signed_in.get(reverse("chat:api_conversation_search"), {"q": "leave\x00"})
    assert "NUL" in chat_error(response)


@pytest.mark.parametrize("title", ["Plans\x00", ["a", "list"], "\ud800"])
def test_a_rename_with_bad_text_is_a_400_and_keeps_the_title(signed_in, conversation, title):
    response = post_json(signed_in, reverse("chat:rename", args=[conversation.id]), {"title": title})
    assert chat_error(response)
    conversation.refresh_from_db()
    assert conversation.title == "Plans"


def test_a_rename_form_with_a_nul_byte_answers_a_page_with_the_message(signed_in, conversation):
    response = signed_in.post(reverse("chat:rename", args=[conversation.id]), {"title": "Pl\x00ans"})
    assert response.status_code == 400
    assert "NUL character" in response.content.decode()
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("content", ["How many days\x00?", ["How", "many"], {"text": "x"}])
def test_a_question_with_bad_content_is_a_400(signed_in, conversation, content):
    response = post_json(signed_in, reverse("chat:api_question_submit", args=[conversation.id]), {"content": content})
    assert chat_error(response)
    assert not conversation.messages.exists()


def test_invalid_utf8_in_a_json_body_is_a_400(signed_in, conversation):
    response = post_json(signed_in, reverse("chat:api_question_submit", args=[conversation.id]),
                         b'{"content": "caf\xe9"}')
    assert "UTF-8" in chat_error(response)


def test_a_lone_surrogate_is_a_400(signed_in, conversation):
    response = post_json(signed_in, reverse("chat:api_question_submit", args=[conversation.id]),
                         b'{"content": "\\ud800 days?"}')
    assert "surrogate" in chat_error(response)


def test_memory_text_as_a_list_is_a_400(signed_in, owner):
    from assistant.chat.memory import memory_enable_set

    memory_enable_set(user=owner, enabled=True)
    response = post_json(signed_in, reverse("chat:memory_add"), {"text": ["a"]}, HTTP_ACCEPT="application/json")
    assert chat_error(response)
    assert not Memory.objects.exists()


def test_a_memory_switch_with_a_next_that_is_no_path_goes_to_the_memories_page(signed_in):
    response = signed_in.post(reverse("chat:memory_toggle"), {"enabled": "true", "next": "home"})
    assert response.status_code == 302
    assert response["Location"] == reverse("chat:memories")


def test_feedback_with_a_list_rating_is_a_400(signed_in, conversation):
    from assistant.chat.models import Message

    answer = Message.objects.create(conversation=conversation, role="assistant", content="27",
                                    status=Message.Status.COMPLETE)
    response = post_json(signed_in, reverse("chat:api_message_feedback", args=[answer.id]),
                         {"rating": ["up"], "comment": "x"})
    assert chat_error(response)


def test_a_huge_chunk_number_on_a_document_link_is_a_400(signed_in, conversation):
    from assistant.chat.models import Attachment

    attachment = Attachment.objects.create(conversation=conversation, name="a.md", media_type="text/markdown",
                                           size=1, text="x")
    for chunk in ("9" * 40, "²"):
        response = signed_in.get(reverse("chat:attachment", args=[attachment.id]), {"chunk": chunk})
        assert response.status_code == 400


# --- the tokens page (a form: the page again, with the message) ----------------------------------


def test_a_token_name_with_a_nul_byte_shows_the_form_again_with_a_400(signed_in):
    response = signed_in.post(reverse("tokens:list"), {"name": "cli\x00", "expires_in_days": ""})
    assert response.status_code == 400
    assert "NUL character" in response.content.decode()
    assert "ea_" not in response.content.decode()  # no secret: nothing was created


# --- the native API (OpenAI-style error objects) ------------------------------------------------


@pytest.mark.parametrize("title", ["Plans\x00", "\udfff"])
def test_an_api_conversation_title_with_bad_text_is_a_400(client, bearer, title):
    response = post_json(client, reverse("api:conversations"), {"title": title}, **bearer)
    assert api_error(response)["param"] == "title"
    assert not Conversation.objects.exists()


def test_an_api_body_in_latin1_is_a_400_invalid_json(client, bearer):
    response = post_json(client, reverse("api:conversations"), b'{"title": "caf\xe9"}', **bearer)
    assert api_error(response)["code"] == "invalid_json"


def test_an_api_paging_number_in_other_digits_is_a_400(client, bearer):
    response = client.get(reverse("api:conversations"), {"limit": "²"}, **bearer)
    assert api_error(response)["param"] == "limit"


# --- the OpenAI-compatible API ------------------------------------------------------------------


@pytest.mark.parametrize("content", ["Leave?\x00", "\ud83d", [{"type": "text", "text": "a\x00"}]])
def test_chat_completions_with_bad_text_is_a_400_in_openai_shape(client, bearer, content):
    body = {"model": "enterprise-assistant", "messages": [{"role": "user", "content": content}]}
    response = post_json(client, reverse("openai:chat_completions"), body, **bearer)
    api_error(response)
    assert not Conversation.objects.exists()


def test_chat_completions_with_deep_nesting_is_a_400(client, bearer):
    response = post_json(client, reverse("openai:chat_completions"), b"[" * 100_000 + b"]" * 100_000, **bearer)
    assert api_error(response)["code"] == "invalid_json"


# --- the connectors pages (staff) ----------------------------------------------------------------


@pytest.mark.parametrize(("route", "param"), [("connectors:audit", "actor"), ("connectors:documents", "q"),
                                              ("connectors:why", "id")])
def test_a_nul_byte_in_a_staff_filter_is_a_400(client, staff, route, param):
    client.force_login(staff)
    connector = Connector.objects.create(name="Eng", kind="folder", config={"path": "/srv"})
    url = reverse(route) if route == "connectors:audit" else reverse(route, args=[connector.id])
    assert client.get(url, {param: "x\x00"}).status_code == 400


def test_a_nul_byte_in_json_settings_is_a_form_error(client, staff, tmp_path):
    from connectors.forms import PrettyJSONField

    field = PrettyJSONField()
    with pytest.raises(Exception, match="NUL"):
        field.clean('{"a": "b\\u0000"}')
    with pytest.raises(Exception, match="NaN"):
        field.clean('{"a": NaN}')


# --- the helper itself -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"\xff", b"[1]", b'"x"', b"{", b'{"a": "\\u0000"}', b'{"a": "\\ud800"}', b'{"a": NaN}', b'{"a": Infinity}',
     b"[" * 50 + b"]" * 50],
)
def test_parse_json_refuses_what_cannot_be_stored(raw):
    with pytest.raises(RequestInvalid):
        body = parse_json(raw)
        if not isinstance(body, dict):
            raise RequestInvalid("not an object")


def test_check_json_value_accepts_ordinary_text():
    value = {"messages": [{"role": "user", "content": "27 jours de congé ✓ 🌴"}], "n": 1, "x": 1.5}
    assert check_json_value(value, "body") == value
