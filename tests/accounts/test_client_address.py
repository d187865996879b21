"""Whose address is the client's: X-Forwarded-For counts only from a configured proxy.

The sign-in limit is per username and address, and the audit log records the address: a
client that could choose it would get unlimited password guesses and forge the log. The
full-stack tests run the requests through uvicorn's proxy-header handling exactly as
`make run` starts it (launcher.web_command) and then Django's ASGI application.
"""

from __future__ import annotations

import ipaddress
import re

import httpx
import pytest
import redis
import uvicorn
from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from django.core import signals
from django.core.asgi import get_asgi_application
from django.db import close_old_connections
from django.test import RequestFactory
from django.urls import reverse

from assistant import launcher
from assistant.accounts import ratelimit
from connectors import audit
from connectors.models import AuditEvent, Connector


@pytest.fixture(autouse=True)
def clean_counters():
    client = redis.Redis.from_url(django_settings.REDIS_URL)

    def wipe():
        for key in client.scan_iter(f"{ratelimit.KEY_PREFIX}*"):
            client.delete(key)

    wipe()
    yield
    wipe()


def networks(*items: str) -> tuple:
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def served_as_make_run(environ: dict[str, str], app):
    """`app` wrapped the way uvicorn wraps it when started with the launcher's command line."""
    args = launcher.web_command(environ, "127.0.0.1", 8000)
    params = uvicorn.main.make_context("uvicorn", args[args.index("assistant.asgi:application"):]).params
    config = uvicorn.Config(app, proxy_headers=params["proxy_headers"],
                            forwarded_allow_ips=params["forwarded_allow_ips"], lifespan="off")
    config.load()
    return config.loaded_app


def echo_client_app():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["client"][0])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app, seen


def call(app, headers: dict[str, str], peer: str = "127.0.0.1"):
    async def go():
        transport = httpx.ASGITransport(app=app, client=(peer, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
            await client.get("/", headers=headers)

    async_to_sync(go)()


# --- uvicorn, as the launcher starts it ---------------------------------------------------------


def test_make_run_uvicorn_ignores_forwarded_for_from_loopback(monkeypatch):
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)  # a bare machine
    app, seen = echo_client_app()
    call(served_as_make_run({}, app), {"X-Forwarded-For": "203.0.113.9"})
    assert seen == ["127.0.0.1"]


def test_make_run_uvicorn_believes_a_configured_proxy_only(monkeypatch):
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    app, seen = echo_client_app()
    served = served_as_make_run({"FORWARDED_ALLOW_IPS": "10.0.0.0/8"}, app)
    call(served, {"X-Forwarded-For": "203.0.113.9"}, peer="10.1.1.1")
    call(served, {"X-Forwarded-For": "203.0.113.9"}, peer="198.51.100.4")
    assert seen == ["203.0.113.9", "198.51.100.4"]


# --- the one function that decides --------------------------------------------------------------


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "expected"),
    [
        ((), "127.0.0.1", "203.0.113.9", "127.0.0.1"),  # nobody trusted: the socket peer
        ((), "192.0.2.7", "", "192.0.2.7"),
        (("10.0.0.0/8",), "192.0.2.7", "203.0.113.9", "192.0.2.7"),  # peer is no proxy of ours
        (("10.0.0.0/8",), "10.0.0.5", "203.0.113.9", "203.0.113.9"),
        (("10.0.0.0/8",), "10.0.0.5", "1.1.1.1, 203.0.113.9", "203.0.113.9"),  # left of it: client-written
        (("10.0.0.0/8",), "10.0.0.5", "203.0.113.9, 10.0.0.9", "203.0.113.9"),  # a chain of our proxies
        (("10.0.0.0/8",), "10.0.0.5", "", "10.0.0.5"),
        (("10.0.0.0/8",), "10.0.0.5", "not-an-ip", "10.0.0.5"),
        (("10.0.0.0/8",), "10.0.0.5", "203.0.113.9:4711", "203.0.113.9"),
        (("::1",), "::1", "[2001:db8::5]:443", "2001:db8::5"),
        (("*",), "192.0.2.7", "203.0.113.9", "203.0.113.9"),
    ],
)
def test_client_ip_is_the_peer_unless_a_configured_proxy_forwarded(settings, trusted, peer, forwarded, expected):
    if trusted == ("*",):
        trusted = ("0.0.0.0/0", "::/0")
    settings.FORWARDED_ALLOW_IPS = networks(*trusted)
    request = RequestFactory().get("/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=forwarded)
    assert audit.client_ip(request) == expected


def test_the_setting_accepts_addresses_and_networks_and_refuses_garbage(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from assistant.env import env_networks

    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.5, 172.16.0.0/12,::1")
    assert env_networks("FORWARDED_ALLOW_IPS") == networks("10.0.0.5", "172.16.0.0/12", "::1")
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "")
    assert env_networks("FORWARDED_ALLOW_IPS") == ()
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "proxy.internal")
    with pytest.raises(ImproperlyConfigured, match="FORWARDED_ALLOW_IPS"):
        env_networks("FORWARDED_ALLOW_IPS")


# --- the whole stack: uvicorn as `make run` starts it, then Django ------------------------------


@pytest.fixture
def stack(db, monkeypatch):
    """Requests through uvicorn's proxy handling (launcher's flags) into Django's ASGI app."""
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    # As Django's own test clients do: the test's transaction must survive the request signals.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield lambda environ: Stack(served_as_make_run(environ, get_asgi_application()))
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


class Stack:
    def __init__(self, app):
        self.app = app
        self.cookies = httpx.Cookies()

    def request(self, method: str, path: str, *, peer="127.0.0.1", forwarded=None, data=None) -> httpx.Response:
        async def go():
            transport = httpx.ASGITransport(app=self.app, client=(peer, 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost",
                                         cookies=self.cookies) as client:
                headers = {"X-Forwarded-For": forwarded} if forwarded else {}
                response = await client.request(method, path, headers=headers, data=data)
                self.cookies.update(client.cookies)
                return response

        return async_to_sync(go)()

    def sign_in(self, username: str, password: str, **kwargs) -> httpx.Response:
        page = self.request("GET", reverse("login"), **kwargs)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        return self.request("POST", reverse("login"),
                            data={"username": username, "password": password, "csrfmiddlewaretoken": token}, **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        token = self.cookies.get("csrftoken")
        return self.request("POST", path, data={"csrfmiddlewaretoken": token}, **kwargs)


def test_rotating_forwarded_for_does_not_bypass_the_sign_in_limit(stack, owner, settings):
    settings.LOGIN_FAILURE_LIMIT = (3, 900)
    site = stack({})
    answers = [site.sign_in("owner", "wrong", forwarded=f"203.0.113.{n}").status_code for n in range(1, 6)]
    assert answers == [200, 200, 200, 429, 429]
    # the right password from the same peer is refused too, whatever address it claims
    assert site.sign_in("owner", "owner-pass-123", forwarded="198.51.100.77").status_code == 429


def test_behind_a_configured_proxy_the_limit_is_per_forwarded_client(stack, owner, settings):
    settings.LOGIN_FAILURE_LIMIT = (3, 900)
    settings.FORWARDED_ALLOW_IPS = networks("10.0.0.0/8")
    site = stack({"FORWARDED_ALLOW_IPS": "10.0.0.0/8"})
    for _ in range(3):
        site.sign_in("owner", "wrong", peer="10.0.0.2", forwarded="203.0.113.1")
    assert site.sign_in("owner", "wrong", peer="10.0.0.2", forwarded="203.0.113.1").status_code == 429
    # another client behind the same proxy is not locked out by the first one's failures
    assert site.sign_in("owner", "owner-pass-123", peer="10.0.0.2", forwarded="203.0.113.2").status_code == 302


def test_the_audit_log_records_the_real_peer_not_a_forged_address(stack, staff):
    site = stack({})
    assert site.sign_in("admin", "admin-pass-123", forwarded="203.0.113.66").status_code == 302
    connector = Connector.objects.create(name="Handbook", kind="folder", config={"path": "/nonexistent"})
    response = site.post(reverse("connectors:action", args=[connector.id, "delete"]), forwarded="203.0.113.66")
    assert response.status_code == 302
    event = AuditEvent.objects.get(action=audit.CONNECTOR_DELETED)
    assert event.ip == "127.0.0.1"


def test_the_audit_log_records_the_forwarded_client_of_a_configured_proxy(stack, staff, settings):
    settings.FORWARDED_ALLOW_IPS = networks("10.0.0.2")
    site = stack({"FORWARDED_ALLOW_IPS": "10.0.0.2"})
    assert site.sign_in("admin", "admin-pass-123", peer="10.0.0.2", forwarded="203.0.113.66").status_code == 302
    connector = Connector.objects.create(name="Handbook", kind="folder", config={"path": "/nonexistent"})
    site.post(reverse("connectors:action", args=[connector.id, "delete"]), peer="10.0.0.2", forwarded="203.0.113.66")
    assert AuditEvent.objects.get(action=audit.CONNECTOR_DELETED).ip == "203.0.113.66"
