"""Rate limits (questions per user, failed sign-ins per username and address), CSRF and cookies."""

from __future__ import annotations

import json

import pytest
import redis
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse

from assistant.accounts import ratelimit
from assistant.chat.models import Conversation, Message
from assistant.env import env_rate


@pytest.fixture(autouse=True)
def clean_counters():
    client = redis.Redis.from_url(django_settings.REDIS_URL)

    def wipe():
        for key in client.scan_iter(f"{ratelimit.KEY_PREFIX}*"):
            client.delete(key)

    wipe()
    yield
    wipe()


def ask(client, conversation, text="How many days of leave?"):
    response = client.post(
        reverse("chat:api_question_submit", args=[conversation.id]), json.dumps({"content": text}),
        content_type="application/json",
    )
    # as if the answer had been streamed, so the next question is accepted
    Message.objects.filter(conversation=conversation, status="pending").update(status="complete")
    return response


def test_questions_past_the_limit_get_429_with_a_clear_json_message(client, owner, teammate, settings):
    settings.CHAT_RATE_LIMIT = (3, 60)
    conversation = Conversation.objects.create(user=owner)
    client.force_login(owner)
    for _ in range(3):
        assert ask(client, conversation).status_code == 201
    refused = ask(client, conversation)
    assert refused.status_code == 429
    assert "faster than allowed" in refused.json()["error"] and refused.json()["retry_after"] >= 1
    assert int(refused["Retry-After"]) >= 1
    assert conversation.messages.filter(role="user").count() == 3  # the refused question was not stored
    # the limit is per user: a teammate still asks
    other = Client()
    other.force_login(teammate)
    assert ask(other, Conversation.objects.create(user=teammate)).status_code == 201


def test_regenerating_and_editing_count_as_questions(client, owner, settings):
    settings.CHAT_RATE_LIMIT = (1, 60)
    conversation = Conversation.objects.create(user=owner)
    client.force_login(owner)
    data = ask(client, conversation).json()
    regenerate = client.post(reverse("chat:api_answer_regenerate", args=[data["assistant_message"]["id"]]))
    edit = client.post(reverse("chat:api_question_edit", args=[data["user_message"]["id"]]),
                       json.dumps({"content": "And sick leave?"}), content_type="application/json")
    assert (regenerate.status_code, edit.status_code) == (429, 429)
    assert "faster than allowed" in regenerate.json()["error"]
    assert conversation.messages.count() == 2


def test_the_chat_limit_can_be_switched_off(client, owner, settings):
    settings.CHAT_RATE_LIMIT = None
    conversation = Conversation.objects.create(user=owner)
    client.force_login(owner)
    assert all(ask(client, conversation).status_code == 201 for _ in range(5))


def failed_login(client, username="owner", ip="10.1.2.3"):
    return client.post(reverse("login"), {"username": username, "password": "wrong"}, REMOTE_ADDR=ip)


def test_failed_sign_ins_lock_the_username_from_that_address(client, owner, settings):
    settings.LOGIN_FAILURE_LIMIT = (3, 900)
    for _ in range(3):
        assert failed_login(client).status_code == 200
    locked = failed_login(client)
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.content.decode()
    assert int(locked["Retry-After"]) > 60
    # even the right password is refused while locked: guessing cannot continue
    right = client.post(reverse("login"), {"username": "owner", "password": "owner-pass-123"}, REMOTE_ADDR="10.1.2.3")
    assert right.status_code == 429 and "_auth_user_id" not in client.session
    # another address, or another username, is not affected
    ok = client.post(reverse("login"), {"username": "owner", "password": "owner-pass-123"}, REMOTE_ADDR="10.9.9.9")
    assert ok.status_code == 302
    assert failed_login(Client(), username="teammate").status_code == 200


def test_a_successful_sign_in_resets_the_count(client, owner, settings):
    settings.LOGIN_FAILURE_LIMIT = (3, 900)
    failed_login(client)
    failed_login(client)
    assert client.post(reverse("login"), {"username": "owner", "password": "owner-pass-123"},
                       REMOTE_ADDR="10.1.2.3").status_code == 302
    client.logout()
    assert failed_login(client).status_code == 200
    assert failed_login(client).status_code == 200


def test_an_unreachable_redis_does_not_lock_anyone_out(client, owner, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CHAT_RATE_LIMIT = (1, 60)
    conversation = Conversation.objects.create(user=owner)
    client.force_login(owner)
    assert ask(client, conversation).status_code == 201
    assert ask(client, conversation).status_code == 201


@pytest.mark.parametrize(
    "raw,expected",
    [("20/m", (20, 60)), ("5/15m", (5, 900)), ("100/h", (100, 3600)), ("7 / 2d", (7, 172800)), ("off", None)],
)
def test_rate_settings_parse(monkeypatch, raw, expected):
    monkeypatch.setenv("SOME_LIMIT", raw)
    assert env_rate("SOME_LIMIT", "1/m") == expected


@pytest.mark.parametrize("raw", ["20", "twenty/m", "20/week", "0/m", "5/0m"])
def test_a_bad_rate_setting_stops_start_up_naming_it(monkeypatch, raw):
    monkeypatch.setenv("CHAT_RATE_LIMIT", raw)
    with pytest.raises(ImproperlyConfigured, match="CHAT_RATE_LIMIT"):
        env_rate("CHAT_RATE_LIMIT", "20/m")


# --- CSRF and cookies -----------------------------------------------------------------------------


@pytest.fixture
def csrf_client():
    return Client(enforce_csrf_checks=True)


def test_forms_refuse_a_post_without_csrf_token(csrf_client, owner, staff, settings):
    # the sign-in form
    response = csrf_client.post(reverse("login"), {"username": "owner", "password": "owner-pass-123"})
    assert response.status_code == 403 and "_auth_user_id" not in csrf_client.session
    # a chat form and endpoint
    conversation = Conversation.objects.create(user=owner, title="Mine")
    csrf_client.force_login(owner)
    assert csrf_client.post(reverse("chat:rename", args=[conversation.id]), {"title": "Hacked"}).status_code == 403
    assert ask(csrf_client, conversation).status_code == 403
    conversation.refresh_from_db()
    assert conversation.title == "Mine" and not conversation.messages.exists()
    # a staff form
    csrf_client.force_login(staff)
    response = csrf_client.post(reverse("connectors:create", args=["folder"]), {"name": "x", "path": "/tmp"})
    assert response.status_code == 403


def test_a_post_with_the_token_from_the_form_is_accepted(csrf_client, owner):
    page = csrf_client.get(reverse("login"))
    token = page.context["csrf_token"]
    response = csrf_client.post(
        reverse("login"), {"username": "owner", "password": "owner-pass-123", "csrfmiddlewaretoken": str(token)}
    )
    assert response.status_code == 302


def test_cookies_are_secure_unless_switched_off(monkeypatch):
    """SECURE_COOKIES (default: on unless DEBUG) marks session and CSRF cookies Secure; both HttpOnly/SameSite."""
    import importlib

    import assistant.settings as project_settings

    try:
        monkeypatch.setenv("SECURE_COOKIES", "true")
        loaded = importlib.reload(project_settings)
        assert loaded.SESSION_COOKIE_SECURE and loaded.CSRF_COOKIE_SECURE
        assert loaded.SESSION_COOKIE_HTTPONLY and loaded.SESSION_COOKIE_SAMESITE == "Lax"
        monkeypatch.delenv("SECURE_COOKIES")
        monkeypatch.setenv("DEBUG", "false")
        assert importlib.reload(project_settings).SESSION_COOKIE_SECURE  # production default
        monkeypatch.setenv("SECURE_COOKIES", "false")
        assert not importlib.reload(project_settings).SESSION_COOKIE_SECURE
    finally:
        monkeypatch.undo()
        importlib.reload(project_settings)


def test_the_session_cookie_is_sent_secure_and_httponly(client, owner, settings):
    settings.SESSION_COOKIE_SECURE = True
    response = client.post(reverse("login"), {"username": "owner", "password": "owner-pass-123"})
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"
