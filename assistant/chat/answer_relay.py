"""Answers that outlive the browser tab: the answer is written by a worker (queue "answer") into a
Redis stream of its events; any web process tails that stream, from the start or from the last
event a client saw (SSE `Last-Event-ID`). A reload, another device or a second web replica picks
the answer up where it is; the worker keeps going whoever is reading.

Keys (Redis, REDIS_URL): `answer:<id>:events` (a stream of {"e": event, "d": JSON}, ended by an
"end" entry, kept ANSWER_STREAM_TTL seconds), `answer:<id>:alive` (set by the writing worker every
HEARTBEAT_SECONDS, lapses when it dies), `answer:<id>:queued` (the answer was handed to a worker).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
import redis.asyncio as aioredis
from django.conf import settings

logger = logging.getLogger(__name__)

END = "end"  # the stream's last entry; never sent to browsers
HEARTBEAT_SECONDS = 2.0
ALIVE_SECONDS = 8  # a worker silent this long is dead (a few missed heartbeats)
POLL_MS = 1500  # how long one read waits before the reader looks whether the writer still lives
MAX_EVENTS = 50_000  # a stream is cut (oldest first) past this many entries
EVENT_ID = re.compile(r"^(0|\d{1,20}-\d{1,20})$")


def events_key(message_id) -> str:
    return f"answer:{message_id}:events"


def alive_key(message_id) -> str:
    return f"answer:{message_id}:alive"


def queued_key(message_id) -> str:
    return f"answer:{message_id}:queued"


def valid_event_id(value: str) -> bool:
    return bool(EVENT_ID.match(value or ""))


#: One client (a pool of connections) per event loop: a connection is bound to the loop that opened
#: it, and opening one costs a TCP handshake and two CLIENT SETINFO round trips (measured: 27 to 46
#: ms on a busy 2-core machine, against 0.8 ms for a command on an open connection).
_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@asynccontextmanager
async def redis_connection():
    """This event loop's client (its connections stay open for the next answer)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
    yield client


async def publish(client, message_id, event: str, data: dict | None = None) -> str:
    """Append one event to the answer's stream; returns its id."""
    key = events_key(message_id)
    async with client.pipeline(transaction=False) as pipe:
        pipe.xadd(key, {"e": event, "d": json.dumps(data or {})}, maxlen=MAX_EVENTS, approximate=True)
        pipe.expire(key, settings.ANSWER_STREAM_TTL)
        entry_id, _ = await pipe.execute()
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id


async def claim_queue(client, message_id) -> bool:
    """True once per answer: the caller hands it to a worker (a reload does not queue it twice)."""
    return bool(await client.set(queued_key(message_id), "1", nx=True, ex=settings.ANSWER_STREAM_TTL))


async def heartbeat(client, message_id) -> None:
    """Say "this answer's worker lives" until cancelled."""
    while True:
        await client.set(alive_key(message_id), "1", ex=ALIVE_SECONDS)
        await asyncio.sleep(HEARTBEAT_SECONDS)


async def writer_alive(client, message_id) -> bool:
    return bool(await client.exists(alive_key(message_id)))


async def stream_exists(client, message_id) -> bool:
    return bool(await client.exists(events_key(message_id)))


def _decode(fields: dict) -> tuple[str, dict]:
    event = fields.get(b"e", b"").decode()
    try:
        data = json.loads(fields.get(b"d", b"{}"))
    except ValueError:
        data = {}
    return event, data if isinstance(data, dict) else {}


async def read_after(client, message_id, last_id: str) -> list[tuple[str, str, dict]]:
    """The events after `last_id` (waiting up to POLL_MS for the first): (id, event, data)."""
    found = await client.xread({events_key(message_id): last_id}, block=POLL_MS, count=500)
    entries = []
    for _key, items in found or ():
        for entry_id, fields in items:
            event, data = _decode(fields)
            entries.append((entry_id.decode() if isinstance(entry_id, bytes) else entry_id, event, data))
    return entries


async def tail(client, message_id, last_id: str, idle) -> AsyncIterator[tuple[str, str, dict]]:
    """The answer's events after `last_id` as they come, until its end. `idle()` is awaited when
    nothing came for a while: it may publish an ending (the writer died) or return False to stop."""
    while True:
        entries = await read_after(client, message_id, last_id)
        if not entries:
            if await idle() is False:
                return
            continue
        for entry_id, event, data in entries:
            last_id = entry_id
            if event == END:
                return
            yield entry_id, event, data


def sync_connection() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)


def publish_ending(client: redis.Redis, message_id, event: str, data: dict) -> None:
    """From synchronous code: one last event, then the end."""
    key = events_key(message_id)
    with client.pipeline(transaction=False) as pipe:
        pipe.xadd(key, {"e": event, "d": json.dumps(data)}, maxlen=MAX_EVENTS, approximate=True)
        pipe.xadd(key, {"e": END, "d": "{}"}, maxlen=MAX_EVENTS, approximate=True)
        pipe.expire(key, settings.ANSWER_STREAM_TTL)
        pipe.execute()
