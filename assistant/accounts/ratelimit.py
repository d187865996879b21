"""Rate limits backed by Redis: counters with a TTL, shared by every web process.

The limits that use it (settings in assistant/settings.py):
- questions submitted to the chat, per user (CHAT_RATE_LIMIT);
- tool calls over MCP, per token owner (MCP_RATE_LIMIT);
- failed sign-ins, per username and client address (LOGIN_FAILURE_LIMIT).

A limit is written "<count>/<window>", e.g. "20/m", "5/15m", "100/h"; "off" disables it.
When Redis cannot be reached the limit is not enforced (logged): a broker outage must not
lock everyone out of the chat.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import ngettext

logger = logging.getLogger(__name__)

KEY_PREFIX = "assistant:ratelimit:"


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.count} per {_duration(self.seconds)}"


def _rate(value) -> Rate | None:
    """A setting parsed by assistant.env.env_rate: (count, seconds) or None (off)."""
    return Rate(*value) if value else None


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return unit if n == 1 else f"{n} {unit}s"
    return f"{seconds} seconds"


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


def _key(scope: str, identity: str, rate: Rate) -> str:
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]  # no usernames or addresses in Redis keys
    return f"{KEY_PREFIX}{scope}:{rate.seconds}:{digest}"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0


def hit(scope: str, identity: str, rate: Rate | None) -> Verdict:
    """Count one event; refused when it is over the limit.

    A window starts with the first event and lasts `rate.seconds` (the key's TTL), so a
    refusal always means a real wait: no burst at the edge of two clock-aligned windows.
    """
    if rate is None:
        return Verdict(True)
    key = _key(scope, identity, rate)
    try:
        pipe = _client(settings.REDIS_URL).pipeline(transaction=True)  # MULTI/EXEC: never a key without TTL
        pipe.set(key, 0, ex=rate.seconds, nx=True)
        pipe.incr(key)
        pipe.ttl(key)
        _, count, ttl = pipe.execute()
    except redis.RedisError:
        logger.warning("rate limit %s not enforced: Redis is unreachable", scope)
        return Verdict(True)
    if count > rate.count:
        return Verdict(False, max(1, int(ttl)))
    return Verdict(True)


def is_blocked(scope: str, identity: str, rate: Rate | None) -> Verdict:
    """Whether the count is already at the limit, without counting anything."""
    if rate is None:
        return Verdict(True)
    key = _key(scope, identity, rate)
    try:
        pipe = _client(settings.REDIS_URL).pipeline(transaction=True)
        pipe.get(key)
        pipe.ttl(key)
        raw, ttl = pipe.execute()
    except redis.RedisError:
        logger.warning("rate limit %s not enforced: Redis is unreachable", scope)
        return Verdict(True)
    if raw is not None and int(raw) >= rate.count:
        return Verdict(False, max(1, int(ttl)))
    return Verdict(True)


def reset(scope: str, identity: str, rate: Rate | None) -> None:
    if rate is None:
        return
    try:
        _client(settings.REDIS_URL).delete(_key(scope, identity, rate))
    except redis.RedisError:
        pass


# --- the limits -----------------------------------------------------------------------------


def chat_question_allowed(*, user) -> Verdict:
    """Count one question of `user`; refused past CHAT_RATE_LIMIT."""
    return hit("chat", str(user.pk), _rate(settings.CHAT_RATE_LIMIT))


def mcp_tool_call_allowed(*, user_id) -> Verdict:
    """Count one tool call over MCP by `user_id`; refused past MCP_RATE_LIMIT."""
    return hit("mcp", str(user_id), _rate(settings.MCP_RATE_LIMIT))


def sql_query_allowed(*, user_id) -> Verdict:
    """Count one question in SQL on a company database by `user_id`; refused past SQL_TOOL_RATE_LIMIT."""
    return hit("sql", str(user_id), _rate(settings.SQL_TOOL_RATE_LIMIT))


def _login_identity(username: str, ip: str | None) -> str:
    return f"{(username or '').strip().lower()}|{ip or '-'}"


def login_blocked(*, username: str, ip: str | None) -> Verdict:
    return is_blocked("login", _login_identity(username, ip), _rate(settings.LOGIN_FAILURE_LIMIT))


def login_failed(*, username: str, ip: str | None) -> Verdict:
    return hit("login", _login_identity(username, ip), _rate(settings.LOGIN_FAILURE_LIMIT))


def login_succeeded(*, username: str, ip: str | None) -> None:
    reset("login", _login_identity(username, ip), _rate(settings.LOGIN_FAILURE_LIMIT))


def too_many_requests(request: HttpRequest, message: str, retry_after: int) -> HttpResponse:
    """429 with the message: JSON for API calls (fetch, /api/ paths), a page otherwise."""
    wants_json = "/api/" in request.path or "application/json" in request.headers.get("Accept", "")
    if wants_json:
        response = JsonResponse({"error": message, "retry_after": retry_after}, status=429)
    else:
        response = render(request, "accounts/rate_limited.html", {"message": message}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def wait_phrase(seconds: int) -> str:
    if seconds < 90:
        return ngettext("%(count)d second", "%(count)d seconds", seconds) % {"count": seconds}
    minutes = math.ceil(seconds / 60)
    return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}
