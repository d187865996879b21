"""Single sign-on with OpenID Connect against a tiny identity provider run by the test.

The provider answers the token, userinfo and JWKS endpoints over real HTTP and signs
ID tokens (RS256) with a key made for the test; the app uses mozilla-django-oidc as in
production. Covered: the login page offers the provider, sign-in creates the user with
its groups, a group removed at the provider is removed at the next sign-in and the next
query no longer sees that group's documents, and forged or foreign tokens are refused.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.contrib.auth.models import Group, User
from django.urls import reverse

from connectors.models import AuditEvent, Connector, Document
from connectors.selectors import documents_visible

CLIENT_ID = "assistant-web"
ISSUER = "https://idp.example.test/realms/company"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def int_b64(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class FakeProvider:
    """Token, userinfo and JWKS endpoints of an OpenID provider, on 127.0.0.1."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        self.codes: dict[str, dict] = {}
        self.access_tokens: dict[str, dict] = {}
        self.token_requests: list[dict] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/jwks":
                    return self._json(200, {"keys": [provider.jwk()]})
                if self.path == "/userinfo":
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    claims = provider.access_tokens.get(token)
                    if claims is None:
                        return self._json(401, {"error": "invalid_token"})
                    return self._json(200, claims["userinfo"])
                return self._json(404, {"error": "not_found"})

            def do_POST(self):
                if self.path != "/token":
                    return self._json(404, {"error": "not_found"})
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                provider.token_requests.append(form)
                grant = provider.codes.pop(form.get("code", ""), None)
                if grant is None or form.get("client_id") != CLIENT_ID or form.get("client_secret") != "s3cret":
                    return self._json(400, {"error": "invalid_grant"})
                access = secrets.token_urlsafe(16)
                provider.access_tokens[access] = grant
                return self._json(200, {"access_token": access, "token_type": "Bearer", "id_token": grant["id_token"]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def jwk(self) -> dict:
        numbers = self.key.public_key().public_numbers()
        return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256",
                "n": int_b64(numbers.n), "e": int_b64(numbers.e)}

    def sign(self, claims: dict, *, key=None, kid=None) -> str:
        header = {"alg": "RS256", "typ": "JWT", "kid": kid or self.kid}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        signature = (key or self.key).sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"

    def issue_code(self, *, nonce: str, sub: str, userinfo: dict, id_claims: dict | None = None, **sign_kwargs) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": CLIENT_ID, "sub": sub, "iat": now, "exp": now + 300, "nonce": nonce}
        claims.update(id_claims or {})
        code = secrets.token_urlsafe(12)
        self.codes[code] = {"id_token": self.sign(claims, **sign_kwargs), "userinfo": {"sub": sub, **userinfo}}
        return code

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider(settings):
    fake = FakeProvider()
    settings.OIDC_ENABLED = True
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = "s3cret"
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = "https://idp.example.test/authorize"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{fake.base}/token"
    settings.OIDC_OP_USER_ENDPOINT = f"{fake.base}/userinfo"
    settings.OIDC_OP_JWKS_ENDPOINT = f"{fake.base}/jwks"
    settings.OIDC_ISSUER = ISSUER
    settings.OIDC_PROVIDER_NAME = "Company SSO"
    settings.OIDC_GROUPS_CLAIM = "groups"
    settings.OIDC_USERNAME_CLAIM = "preferred_username"
    yield fake
    fake.close()


def start_sign_in(client) -> dict:
    """Press "Sign in with ..." and return the query the browser is sent to the provider with."""
    response = client.get(reverse("oidc_authentication_init"))
    assert response.status_code == 302
    location = urlparse(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://idp.example.test/authorize"
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def sign_in(client, provider, *, sub="u-123", username="ada", groups=("engineering",), email="ada@example.com", **kw):
    query = start_sign_in(client)
    code = provider.issue_code(
        nonce=query["nonce"], sub=sub,
        userinfo={"preferred_username": username, "email": email, "given_name": "Ada", "family_name": "Lovelace",
                  "groups": list(groups)},
        **kw,
    )
    return client.get(reverse("oidc_authentication_callback"), {"code": code, "state": query["state"]})


@pytest.fixture
def engineering_doc(db):
    connector = Connector.objects.create(name="Eng wiki", kind="folder", config={"path": "/srv/eng"})
    return Document.objects.create(
        connector=connector, external_id="atlas.md", title="Atlas plan", text="Atlas ships in May.", content_hash="x",
        acl_groups=["engineering"],
    )


def test_the_login_page_offers_the_provider_only_when_configured(client, db, settings):
    settings.OIDC_ENABLED = False
    body = client.get(reverse("login")).content.decode()
    assert "Sign in with" not in body
    assert client.get(reverse("oidc_authentication_init")).status_code == 404
    settings.OIDC_ENABLED = True
    settings.OIDC_PROVIDER_NAME = "Company SSO"
    body = client.get(reverse("login")).content.decode()
    assert "Sign in with Company SSO" in body and reverse("oidc_authentication_init") in body


def test_sign_in_creates_the_user_with_names_email_and_groups(client, provider, engineering_doc):
    response = sign_in(client, provider, groups=["engineering", "/staff/design"])
    assert response.status_code == 302 and response["Location"] == reverse("chat:home")
    user = User.objects.get(username="ada")
    assert user.email == "ada@example.com" and (user.first_name, user.last_name) == ("Ada", "Lovelace")
    assert not user.has_usable_password()
    assert sorted(user.groups.values_list("name", flat=True)) == ["engineering", "staff/design"]
    # the session is the user's: the chat opens and the engineering document is readable
    assert client.get(reverse("chat:home")).status_code == 200
    assert client.get(reverse("chat:document", args=[engineering_doc.id])).status_code == 200
    # the code was exchanged with the client's credentials and PKCE
    assert provider.token_requests[-1]["client_id"] == CLIENT_ID and "code_verifier" in provider.token_requests[-1]


def test_a_group_removed_at_the_provider_is_gone_at_the_next_sign_in_and_query(client, provider, engineering_doc):
    sign_in(client, provider, groups=["engineering", "sales"])
    user = User.objects.get(username="ada")
    assert documents_visible(user=user).filter(id=engineering_doc.id).exists()
    Group.objects.create(name="unrelated")  # groups the user never had are left alone
    client.logout()
    sign_in(client, provider, groups=["sales"])
    user.refresh_from_db()
    assert list(user.groups.values_list("name", flat=True)) == ["sales"]
    assert User.objects.filter(username="ada").count() == 1  # the same account, not a new one
    assert not documents_visible(user=user).filter(id=engineering_doc.id).exists()
    assert client.get(reverse("chat:document", args=[engineering_doc.id])).status_code == 404
    assert Group.objects.filter(name__in=["engineering", "unrelated"]).count() == 2
    # the change of access is in the audit log
    change = AuditEvent.objects.filter(action="user.groups_synced", target_id=str(user.pk)).latest("created_at")
    assert change.details == {"via": "oidc", "added": [], "removed": ["engineering"]}


def test_a_token_signed_with_another_key_is_refused(client, provider, db):
    intruder = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    response = sign_in(client, provider, key=intruder)
    assert response.status_code == 302 and "sso=failed" in response["Location"]
    assert not User.objects.filter(username="ada").exists()
    assert "did not complete" in client.get(response["Location"]).content.decode()


@pytest.mark.parametrize(
    "claims",
    [{"aud": "another-app"}, {"iss": "https://evil.example.test"}, {"exp": int(time.time()) - 3600}],
    ids=["audience", "issuer", "expired"],
)
def test_a_token_for_another_client_issuer_or_time_is_refused(client, provider, db, claims):
    response = sign_in(client, provider, id_claims=claims)
    assert "sso=failed" in response["Location"]
    assert not User.objects.filter(username="ada").exists()


def test_a_local_account_with_a_password_is_not_taken_over(client, provider, owner, settings):
    response = sign_in(client, provider, username="owner")
    assert "sso=failed" in response["Location"]
    assert "_auth_user_id" not in client.session
    settings.OIDC_LINK_LOCAL_ACCOUNTS = True
    response = sign_in(client, provider, username="owner", groups=["engineering"])
    assert response["Location"] == reverse("chat:home")
    assert client.session["_auth_user_id"] == str(owner.pk)


def test_a_deactivated_account_cannot_sign_in_through_the_provider(client, provider, db):
    sign_in(client, provider)
    User.objects.filter(username="ada").update(is_active=False)
    client.logout()
    response = sign_in(client, provider)
    assert "sso=failed" in response["Location"]
    assert "_auth_user_id" not in client.session


def test_turning_sso_on_without_its_endpoints_stops_start_up_naming_what_is_missing(monkeypatch):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    import assistant.settings as project_settings

    for name in ("OIDC_RP_CLIENT_SECRET", "OIDC_OP_AUTHORIZATION_ENDPOINT", "OIDC_OP_TOKEN_ENDPOINT",
                 "OIDC_OP_JWKS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OIDC_RP_CLIENT_ID", "assistant-web")
    try:
        with pytest.raises(ImproperlyConfigured, match="OIDC_RP_CLIENT_SECRET"):
            importlib.reload(project_settings)
        monkeypatch.setenv("OIDC_RP_CLIENT_SECRET", "s3cret")
        monkeypatch.setenv("OIDC_OP_AUTHORIZATION_ENDPOINT", "https://idp.example.test/authorize")
        with pytest.raises(ImproperlyConfigured, match="OIDC_OP_TOKEN_ENDPOINT"):
            importlib.reload(project_settings)
    finally:
        monkeypatch.undo()
        importlib.reload(project_settings)
    assert project_settings.OIDC_ENABLED is False
