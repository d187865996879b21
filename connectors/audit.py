"""The audit log of admin actions: who did what to which object, from where, and when.

Services call `audit_record(actor=..., action=..., target=..., details=...)`; the
request's client address comes from `AuditContextMiddleware`, so services need no
request. Details never hold secrets: keys that look like one (password, token, key,
secret...) are replaced by "[hidden]" before anything is stored.

It lives in `connectors` (below `assistant` in the dependency direction), so both the
connector services and the chat product (e.g. the feedback export) can write to it.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
import re
from typing import Any

from django.db import models
from connectors.middleware import HybridMiddleware

logger = logging.getLogger(__name__)

#: Actions written by this project; other values are allowed (e.g. "feedback.exported").
CONNECTOR_CREATED = "connector.created"
CONNECTOR_CHANGED = "connector.changed"
CONNECTOR_DELETED = "connector.deleted"
ACL_CHANGED = "acl.changed"
SYNC_STARTED = "sync.started"
SYNC_CANCELLED = "sync.cancelled"
REINDEX_STARTED = "reindex.started"
FILES_UPLOADED = "files.uploaded"
FILE_DELETED = "file.deleted"
EXPORTED = "export.created"
GROUPS_SYNCED = "user.groups_synced"  # a user's groups changed from the identity provider's claim

HIDDEN = "[hidden]"
_SECRET_KEY = re.compile(r"pass|secret|token|api.?key|private|credential|authori[sz]ation|cookie|^key$|_key$", re.I)
_MAX_TEXT = 2000
_MAX_DEPTH = 6

_client_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar("audit_client_ip", default=None)


def scrub(value: Any, *, depth: int = 0) -> Any:
    """A JSON-safe copy of `value` with secret-looking keys hidden and long text cut."""
    if depth > _MAX_DEPTH:
        return "…"
    if isinstance(value, dict):
        return {
            str(key): (HIDDEN if _SECRET_KEY.search(str(key)) else scrub(item, depth=depth + 1))
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [scrub(item, depth=depth + 1) for item in items]
    if value is None or isinstance(value, bool | int | float):
        return value
    text = str(value)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"


def _target_fields(target) -> tuple[str, str, str]:
    """(type, id, label) of a model instance, a (type, id[, label]) tuple, a plain string or None."""
    if target is None:
        return "", "", ""
    if isinstance(target, models.Model):
        meta = target._meta
        return f"{meta.app_label}.{meta.model_name}", str(target.pk), str(target)[:300]
    if isinstance(target, tuple):
        kind, ident, *rest = target
        return str(kind)[:80], str(ident)[:200], (str(rest[0]) if rest else "")[:300]
    return str(target)[:80], "", ""


def audit_record(*, actor, action: str, target=None, details: dict | None = None, ip: str | None = None):
    """Store one audit event and return it.

    `actor`: the user who acted (None or an anonymous user: the system, e.g. a schedule).
    `target`: a model instance, a tuple (type, id) or (type, id, label), a string, or None.
    `details`: JSON-able facts about the change; secret-looking keys are hidden.
    """
    from connectors.models import AuditEvent

    if not action or len(action) > 80:
        raise ValueError("An audit action is a short name like 'connector.created'.")
    user = actor if getattr(actor, "is_authenticated", False) else None
    target_type, target_id, target_label = _target_fields(target)
    return AuditEvent.objects.create(
        actor=user,
        actor_name=(user.get_username() if user else "")[:150],
        action=action,
        target_type=target_type,
        target_id=target_id,
        target_label=target_label,
        details=scrub(details or {}),
        ip=ip or _client_ip.get(),
    )


def _address(raw: str | None):
    """An IP address from a socket peer or one X-Forwarded-For entry ("1.2.3.4:80", "[::1]:80" too)."""
    text = (raw or "").strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def _trusted(address, networks) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_ip(request) -> str | None:
    """The client's address: the one function that decides it (sign-in limit, audit log).

    The socket peer (REMOTE_ADDR), unless the peer is a proxy listed in FORWARDED_ALLOW_IPS
    (none by default): then the right-most address of X-Forwarded-For that is not itself a
    trusted proxy. Entries left of it were written by the client and prove nothing.
    """
    from django.conf import settings

    peer = _address(request.META.get("REMOTE_ADDR"))
    networks = getattr(settings, "FORWARDED_ALLOW_IPS", ())
    if peer is None or not _trusted(peer, networks):
        return str(peer) if peer else None
    hops = (request.META.get("HTTP_X_FORWARDED_FOR") or "").split(",")
    client = peer
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # garbage from before the trusted chain: stop at the last address vouched for
        client = address
        if not _trusted(address, networks):
            break
    return str(client)


class AuditContextMiddleware(HybridMiddleware):
    """Remembers the client's address for the audit events written while serving a request."""

    def handle(self, request):
        token = _client_ip.set(client_ip(request))
        try:
            return self.get_response(request)
        finally:
            _client_ip.reset(token)

    async def ahandle(self, request):
        token = _client_ip.set(client_ip(request))
        try:
            return await self.get_response(request)
        finally:
            _client_ip.reset(token)
