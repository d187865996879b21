"""A password change or a disabled account revokes the user's API tokens (kept, shown as revoked
with the reason and date, audit-logged, the user told on their next page); a disabled account's
open sessions stop at once."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse

from assistant.accounts.models import ApiToken
from assistant.accounts.tokens import api_token_create
from connectors.models import AuditEvent

MODELS_URL = "/v1/models"
NOTICE = "because your password changed. Create new ones on the API tokens page."


def bearer(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_a_password_change_revokes_every_token_and_says_why(client, owner):
    token, secret = api_token_create(user=owner, name="CLI")
    _, other_secret = api_token_create(user=owner, name="Notebook")
    assert client.get(MODELS_URL, **bearer(secret)).status_code == 200

    owner.set_password("a-brand-new-pass-456")
    owner.save()

    for value in (secret, other_secret):
        refused = client.get(MODELS_URL, **bearer(value))
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "revoked_api_key"
        assert "password changed" in refused.json()["error"]["message"]
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_reason == "password_changed"
    assert ApiToken.objects.filter(user=owner).count() == 2  # kept, not deleted
    event = AuditEvent.objects.get(action="user.api_tokens_revoked", target_id=str(owner.pk))
    assert event.details == {"reason": "password_changed", "revoked": 2}


def test_the_user_is_told_on_their_next_page_and_the_list_shows_reason_and_date(client, owner):
    token, _ = api_token_create(user=owner, name="CLI")
    owner.set_password("a-brand-new-pass-456")
    owner.save()
    client.force_login(owner)
    body = client.get(reverse("chat:memories")).content.decode()
    assert body.count(NOTICE) == 1 and "Your API tokens were revoked on" in body
    assert NOTICE not in client.get(reverse("chat:memories")).content.decode()  # told once

    # the tokens page keeps a banner, and the list says when and why, until a new token is made
    body = client.get(reverse("tokens:list")).content.decode()
    assert body.count(NOTICE) == 1
    token.refresh_from_db()
    row = body[body.index(f'data-token="{token.id}"'):]
    row = row[: row.index("</tr>")]
    assert "Revoked" in row and "your password changed" in row and token.revoked_at.isoformat()[:16] in row
    client.post(reverse("tokens:list"), {"name": "New", "scopes": ["ask"]})
    assert NOTICE not in client.get(reverse("tokens:list")).content.decode()


def test_the_tokens_page_shows_the_notice_once_not_twice(client, owner):
    api_token_create(user=owner, name="CLI")
    owner.is_active = False
    owner.save()
    owner.is_active = True
    owner.save()
    client.force_login(owner)
    client.get(reverse("chat:home"))  # the first page after signing in queues the message
    body = client.get(reverse("tokens:list")).content.decode()
    assert body.count("because your account was disabled") == 1  # the banner; no second flash
    assert "because your account was disabled" not in client.get(reverse("chat:memories")).content.decode()


def test_the_admins_password_form_revokes_the_users_tokens(client, owner, staff):
    _, secret = api_token_create(user=owner, name="CLI")
    client.force_login(staff)
    response = client.post(reverse("admin:auth_user_password_change", args=[owner.pk]),
                           {"password1": "Reset-by-admin-789", "password2": "Reset-by-admin-789",
                            "usable_password": "true"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert client.get(MODELS_URL, **bearer(secret)).status_code == 401
    event = AuditEvent.objects.get(action="user.api_tokens_revoked", target_id=str(owner.pk))
    assert event.actor == staff  # who acted is recorded


def test_manage_py_changepassword_revokes_the_users_tokens(owner, monkeypatch):
    _, secret = api_token_create(user=owner, name="CLI")
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "Changed-on-the-cli-321")
    call_command("changepassword", "owner")
    assert ApiToken.objects.get(user=owner).revoked_reason == "password_changed"


def test_a_password_hash_upgrade_at_sign_in_is_not_a_change(client, db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = User.objects.create_user("legacy", password="legacy-pass-123")
    _, secret = api_token_create(user=user, name="CLI")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher",
                                 "django.contrib.auth.hashers.MD5PasswordHasher"]
    response = client.post(reverse("login"), {"username": "legacy", "password": "legacy-pass-123"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.password.startswith("pbkdf2_")  # re-hashed with the stronger hasher ...
    assert client.get(MODELS_URL, **bearer(secret)).status_code == 200  # ... and the token still works


def test_making_the_password_unusable_revokes_the_tokens(client, owner):
    _, secret = api_token_create(user=owner, name="CLI")
    owner.set_unusable_password()
    owner.save(update_fields=["password"])  # looks like a hash upgrade's save, but is not one
    assert client.get(MODELS_URL, **bearer(secret)).status_code == 401


def test_saving_a_user_without_a_password_change_keeps_the_tokens(client, owner):
    _, secret = api_token_create(user=owner, name="CLI")
    owner.first_name = "Olive"
    owner.save()
    client.force_login(owner)  # updates last_login
    assert client.get(MODELS_URL, **bearer(secret)).status_code == 200


def test_disabling_an_account_in_the_admin_ends_its_sessions_and_revokes_its_tokens(client, owner, staff):
    from django.test import Client

    token, secret = api_token_create(user=owner, name="CLI")
    owners_browser = Client()
    owners_browser.force_login(owner)
    assert owners_browser.get(reverse("tokens:list")).status_code == 200
    client.force_login(staff)
    form = {"username": "owner", "first_name": "", "last_name": "", "email": "",
            "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2026-01-01", "initial-date_joined_1": "00:00:00"}  # is_active: unticked
    response = client.post(reverse("admin:auth_user_change", args=[owner.pk]), form)
    assert response.status_code == 302, response.content.decode()[:3000]
    owner.refresh_from_db()
    assert owner.is_active is False

    response = owners_browser.get(reverse("tokens:list"))
    assert response.status_code == 302 and reverse("login") in response["Location"]
    assert not owners_browser.session.get("_auth_user_id")
    refused = client.get(MODELS_URL, **bearer(secret))
    assert refused.status_code == 401 and "disabled" in refused.json()["error"]["message"]
    token.refresh_from_db()
    assert token.revoked_reason == "account_disabled"
    ended = AuditEvent.objects.get(action="user.sessions_ended", target_id=str(owner.pk))
    assert ended.details["sessions"] == 1 and ended.actor == staff


def test_a_session_stops_at_once_even_when_the_account_is_disabled_without_a_save(client, owner):
    client.force_login(owner)
    assert client.get(reverse("tokens:list")).status_code == 200
    User.objects.filter(pk=owner.pk).update(is_active=False)  # no signal runs
    response = client.get(reverse("tokens:list"))
    assert response.status_code == 302 and reverse("login") in response["Location"]
    User.objects.filter(pk=owner.pk).update(is_active=True)
    assert client.get(reverse("tokens:list")).status_code == 302  # that session is gone for good
