"""Telling staff that a scheduled run regressed: an e-mail through Django's mail settings to every
active staff member with an address, and optionally a JSON POST to EVALUATION_WEBHOOK_URL, guarded
like every outbound request (connectors.safe_http: no private or loopback address unless allowed)."""

from __future__ import annotations

import json
import logging

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.urls import reverse

from connectors.safe_http import FetchError, GuardedTransport, check_url

logger = logging.getLogger(__name__)
WEBHOOK_TIMEOUT = 10.0


def _page_url(run) -> str:
    path = reverse("evaluation:run", args=[run.id])
    return f"{settings.EVALUATION_SITE_URL.rstrip('/')}{path}" if settings.EVALUATION_SITE_URL else path


def webhook_post(url: str, payload: dict) -> None:
    allowed = settings.EVALUATION_WEBHOOK_ALLOWED_HOSTS
    check_url(url, allowed_hosts=allowed)  # FetchError: refused before any connection
    with httpx.Client(transport=GuardedTransport(allowed_hosts=allowed), trust_env=False,
                      follow_redirects=False, timeout=WEBHOOK_TIMEOUT) as client:
        response = client.post(url, content=json.dumps(payload), headers={"Content-Type": "application/json"})
    if response.status_code >= 400:
        raise FetchError(f"The webhook answered {response.status_code}.", url=url)


def regression_notify(*, run, comparison) -> dict:
    """Mail the staff and call the webhook; returns what was done (failures are logged, not raised)."""
    subject = f"Evaluation regressed: {run.label or run.tag or run.id}"
    body = f"{comparison.describe()}\n\n{_page_url(run)}\n"
    recipients = list(get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="")
                      .values_list("email", flat=True))
    done = {"mailed": 0, "webhook": False}
    if recipients:
        done["mailed"] = send_mail(subject, body, None, recipients, fail_silently=True) and len(recipients)
    if settings.EVALUATION_WEBHOOK_URL:
        payload = {"text": f"{subject}\n{body}", "run": str(run.id), "tag": run.tag,
                   "regressions": comparison.regressions,
                   "cases": [{"id": c["id"], "question": c["question"]} for c in comparison.worse]}
        try:
            webhook_post(settings.EVALUATION_WEBHOOK_URL, payload)
            done["webhook"] = True
        except (FetchError, httpx.HTTPError) as exc:
            logger.warning("evaluation webhook failed: %s", exc)
    return done
