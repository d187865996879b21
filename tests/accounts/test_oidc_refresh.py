"""A single sign-on user who stays signed in: groups re-read from the provider at each session
renewal (every OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS), and a disabled account stopped at once.

Uses the test identity provider of test_oidc.py; the test plays the provider's authorization
endpoint (it answers a `prompt=none` renewal with a new code at once, as a real one does for a
user still signed in there).
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from assistant.accounts.tokens import api_token_create
from connectors.models import AuditEvent
from tests.accounts.test_oidc import engineering_doc, provider, sign_in  # noqa: F401 (fixtures)

PAGE = {"HTTP_SEC_FETCH_MODE": "navigate", "HTTP_ACCEPT": "text/html"}  # a page load in a browser
FETCH = {"HTTP_SEC_FETCH_MODE": "cors", "HTTP_ACCEPT": "*/*"}  # the chat page's fetch()


@pytest.fixture
def renew_every_second(settings):
    settings.OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = 1


def wait_for_renewal():
    time.sleep(1.1)


def doc_url(doc) -> str:
    return reverse("chat:document", args=[doc.id])


def test_a_group_removed_at_the_provider_is_gone_after_the_interval_without_signing_out(
        client, provider, engineering_doc, renew_every_second):  # noqa: F811
    sign_in(client, provider, groups=["engineering", "sales"])
    assert client.get(doc_url(engineering_doc), **PAGE).status_code == 200
    wait_for_renewal()

    renewal = client.get(doc_url(engineering_doc), **PAGE)
    assert renewal.status_code == 302
    location = urlparse(renewal["Location"])
    assert location.netloc == "idp.example.test"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["prompt"] == "none"
    # the provider now says: sales only
    code = provider.issue_code(nonce=query["nonce"], sub="u-123",
                               userinfo={"preferred_username": "ada", "groups": ["sales"]})
    back = client.get(reverse("oidc_authentication_callback"), {"code": code, "state": query["state"]})
    assert back.status_code == 302 and back["Location"] == doc_url(engineering_doc)

    assert client.get(doc_url(engineering_doc), **PAGE).status_code == 404  # the document is out of reach
    assert client.get(reverse("chat:home"), **PAGE).status_code == 200  # still signed in
    assert list(User.objects.get(username="ada").groups.values_list("name", flat=True)) == ["sales"]


def test_a_fetch_request_renews_the_groups_from_userinfo(
        client, provider, engineering_doc, renew_every_second):  # noqa: F811
    sign_in(client, provider, groups=["engineering"])
    for grant in provider.access_tokens.values():  # the provider removes the group
        grant["userinfo"]["groups"] = []
    wait_for_renewal()

    assert client.get(doc_url(engineering_doc), **FETCH).status_code == 404  # no redirect: refreshed in place
    user = User.objects.get(username="ada")
    assert not user.groups.exists()
    change = AuditEvent.objects.filter(action="user.groups_synced", target_id=str(user.pk)).latest("created_at")
    assert change.details["removed"] == ["engineering"]
    # renewed: the next requests within the interval do not ask the provider again
    assert client.get(reverse("chat:home"), **PAGE).status_code == 200


def test_a_fetch_request_that_cannot_be_renewed_gets_a_401_asking_to_sign_in_again(
        client, provider, engineering_doc, renew_every_second):  # noqa: F811
    sign_in(client, provider, groups=["engineering"])
    provider.access_tokens.clear()  # the access token expired at the provider
    wait_for_renewal()
    response = client.get(doc_url(engineering_doc), **FETCH)
    assert response.status_code == 401
    assert response.json()["code"] == "session_refresh_required"
    assert "Atlas" not in response.content.decode()
    post = client.post(reverse("chat:api_conversation_create"), **FETCH)
    assert post.status_code == 401


def test_a_form_posted_when_renewal_is_due_and_userinfo_fails_goes_back_to_its_page(
        client, provider, db, renew_every_second):  # noqa: F811
    from assistant.accounts.models import ApiToken

    sign_in(client, provider)
    provider.access_tokens.clear()
    wait_for_renewal()
    page = "http://testserver" + reverse("tokens:list")
    response = client.post(reverse("tokens:list"), {"name": "CLI", "scopes": ["ask"]}, HTTP_REFERER=page, **PAGE)
    assert response.status_code == 303 and response["Location"] == page
    assert not ApiToken.objects.exists()  # not acted on
    renewal = client.get(reverse("tokens:list"), **PAGE)  # the page load renews through the provider
    assert renewal.status_code == 302 and "prompt=none" in renewal["Location"]


def test_a_renewal_refused_by_the_provider_ends_the_session(
        client, provider, engineering_doc, renew_every_second):  # noqa: F811
    sign_in(client, provider)
    wait_for_renewal()
    renewal = client.get(reverse("chat:home"), **PAGE)
    state = parse_qs(urlparse(renewal["Location"]).query)["state"][0]
    client.get(reverse("oidc_authentication_callback"), {"error": "login_required", "state": state})
    response = client.get(reverse("chat:home"), **PAGE)
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_a_disabled_sso_users_session_and_tokens_stop_at_once(client, provider, engineering_doc):  # noqa: F811
    sign_in(client, provider)
    user = User.objects.get(username="ada")
    _, secret = api_token_create(user=user, name="CLI")
    assert client.get(doc_url(engineering_doc), **PAGE).status_code == 200
    User.objects.filter(pk=user.pk).update(is_active=False)  # even without a save (no signal)
    response = client.get(doc_url(engineering_doc), **PAGE)
    assert response.status_code == 302 and reverse("login") in response["Location"]
    assert client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401


def test_the_sso_backend_does_not_restore_a_disabled_users_session(client, provider, db):  # noqa: F811
    """The library's backend loads a session's user without looking at is_active; ours refuses."""
    from assistant.accounts.oidc import GroupsOIDCBackend

    sign_in(client, provider)
    user = User.objects.get(username="ada")
    assert GroupsOIDCBackend().get_user(user.pk) == user
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert GroupsOIDCBackend().get_user(user.pk) is None


def test_a_bad_renewal_interval_stops_start_up(monkeypatch):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    import assistant.settings as project_settings

    monkeypatch.setenv("OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS", "5")
    try:
        with pytest.raises(ImproperlyConfigured, match="OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS"):
            importlib.reload(project_settings)
    finally:
        monkeypatch.undo()
        importlib.reload(project_settings)
    assert project_settings.OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS == 900
