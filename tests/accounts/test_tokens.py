"""Personal API tokens: shown once, hashed at rest, revocable, last use shown; each user's own."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from assistant.accounts.models import ApiToken
from assistant.accounts.tokens import InvalidTokenInput, api_token_create

MODELS_URL = "/v1/models"


def bearer(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_a_token_is_stored_only_as_its_sha256_hash(owner):
    token, secret = api_token_create(user=owner, name="CLI")
    assert secret.startswith("ea_") and len(secret) >= 40
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)
    assert secret not in stored
    assert secret[3:] not in stored  # not even without its prefix
    assert token.token_prefix == secret[: len(token.token_prefix)] and len(token.token_prefix) < 12


def test_two_tokens_never_share_a_secret(owner):
    secrets = {api_token_create(user=owner, name=f"t{i}")[1] for i in range(20)}
    assert len(secrets) == 20


def test_the_page_shows_a_new_token_once_and_then_only_its_prefix(client, owner):
    client.force_login(owner)
    response = client.post(reverse("tokens:list"), {"name": "Notebook", "expires_in_days": "30",
                                                "scopes": ["conversations:read", "ask"]})
    assert response.status_code == 200
    body = response.content.decode()
    token = ApiToken.objects.get(user=owner)
    secret = response.context["secret"]
    assert secret in body and "shown only this once" in body
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    assert token.expires_at is not None and token.expires_at > timezone.now() + timedelta(days=29)

    again = client.get(reverse("tokens:list")).content.decode()
    assert secret not in again
    assert token.token_prefix in again and "Notebook" in again and "Never" in again  # never used yet


def test_creating_a_token_without_a_name_says_what_to_fix(client, owner):
    client.force_login(owner)
    response = client.post(reverse("tokens:list"), {"name": "   ", "expires_in_days": ""})
    assert response.status_code == 400
    assert "Give the token a name" in response.content.decode()
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("days", ["0", "abc", "99999"])
def test_a_bad_expiry_is_refused_with_a_clear_message(owner, days):
    with pytest.raises(InvalidTokenInput, match="Expiry must"):
        api_token_create(user=owner, name="x", expires_in_days=days)


def test_the_token_page_needs_a_signed_in_user(client):
    response = client.get(reverse("tokens:list"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_token_authenticates_its_owner_and_records_its_last_use(client, owner):
    token, secret = api_token_create(user=owner, name="CLI")
    assert token.last_used_at is None
    response = client.get(MODELS_URL, **bearer(secret))
    assert response.status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None and timezone.now() - token.last_used_at < timedelta(seconds=10)

    client.force_login(owner)
    assert "Just now</time>" in client.get(reverse("tokens:list")).content.decode()

    # an older last use is shown as such, and refreshed by the next call
    ApiToken.objects.filter(id=token.id).update(last_used_at=timezone.now() - timedelta(hours=3))
    assert "3\xa0hours ago</time>" in client.get(reverse("tokens:list")).content.decode()
    client.get(MODELS_URL, **bearer(secret))
    token.refresh_from_db()
    assert timezone.now() - token.last_used_at < timedelta(seconds=10)


def test_last_use_is_written_at_most_once_a_minute(client, owner):
    token, secret = api_token_create(user=owner, name="CLI")
    client.get(MODELS_URL, **bearer(secret))
    token.refresh_from_db()
    first = token.last_used_at
    client.get(MODELS_URL, **bearer(secret))
    token.refresh_from_db()
    assert token.last_used_at == first


def test_the_owner_revokes_a_token_and_it_stops_working_at_once(client, owner):
    token, secret = api_token_create(user=owner, name="CLI")
    assert client.get(MODELS_URL, **bearer(secret)).status_code == 200
    client.force_login(owner)
    response = client.post(reverse("tokens:revoke", args=[token.id]))
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    client.logout()
    refused = client.get(MODELS_URL, **bearer(secret))
    assert refused.status_code == 401
    assert "revoked" in refused.json()["error"]["message"]
    assert refused.json()["error"]["code"] == "revoked_api_key"


def test_it_rejects_outsider_revoking_another_users_token_with_404(client, owner, outsider):
    token, secret = api_token_create(user=owner, name="CLI")
    client.force_login(outsider)
    assert client.post(reverse("tokens:revoke", args=[token.id])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert "CLI" not in client.get(reverse("tokens:list")).content.decode()  # not listed either
    client.logout()
    assert client.get(MODELS_URL, **bearer(secret)).status_code == 200


def test_an_expired_token_is_refused(client, owner):
    token, secret = api_token_create(user=owner, name="CLI", expires_in_days=1)
    ApiToken.objects.filter(id=token.id).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get(MODELS_URL, **bearer(secret))
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_a_disabled_accounts_token_is_refused(client, owner):
    _, secret = api_token_create(user=owner, name="CLI")
    owner.is_active = False
    owner.save()
    response = client.get(MODELS_URL, **bearer(secret))
    assert response.status_code == 401 and "disabled" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "header,expected",
    [
        (None, "Authorization: Bearer"),
        ("Bearer ea_not-a-real-token", "Unknown API token"),
        ("Bearer sk-123", "not an API token of this assistant"),
        ("Basic dXNlcjpwYXNz", "Authorization: Bearer"),
    ],
)
def test_a_missing_or_unknown_token_gets_a_401_that_says_why(client, db, header, expected):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get(MODELS_URL, **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert expected in error["message"] and error["type"] == "authentication_error"


def test_a_session_cookie_alone_does_not_open_the_api(client, owner):
    client.force_login(owner)
    assert client.get(MODELS_URL).status_code == 401


def test_the_chat_pages_settings_menu_links_to_the_tokens_page(client, owner):
    client.force_login(owner)
    body = client.get(reverse("chat:home")).content.decode()
    assert f'href="{reverse("tokens:list")}"' in body
