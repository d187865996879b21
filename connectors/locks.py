"""What the sync engine keeps in Redis: one lock per connector (two syncs of a connector never
overlap) and the follow-up flag of uploads that came in while a run was reading."""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=1)
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def lock_key(connector_id) -> str:
    return f"assistant:sync-lock:{connector_id}"


def followup_key(connector_id) -> str:
    return f"assistant:sync-followup:{connector_id}"
