"""Telling staff that a scheduled run regressed: an e-mail through Django's mail settings to every
active staff member with an address, and optionally a JSON POST to EVALUATION_WEBHOOK_URL, guarded
like every outbound request (connectors.safe_http: no private or loopback address unless allowed).

A case is named only to whom may see it (assistant/evaluation/access.py): each mail lists the
cases its reader may see and counts the others; the webhook, whose readers are unknown, gets the
questions of cases anyone may see and only the ids of the others."""

from __future__ import annotations

import dataclasses
import json
import logging

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mass_mail
from django.urls import reverse

from assistant.evaluation.access import cases_readable, cases_visible
from assistant.evaluation.models import EvaluationCase
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


def _shown(comparison, visible: set[str], url: str) -> str:
    """The comparison as text, naming only the cases in `visible`."""
    text = dataclasses.replace(comparison, worse=[c for c in comparison.worse if str(c["id"]) in visible]).describe()
    hidden = len(comparison.worse) - sum(1 for c in comparison.worse if str(c["id"]) in visible)
    if hidden:
        text += f"\n  ...and {hidden} case(s) about sources you may not read."
    return f"{text}\n\n{url}\n"


def regression_notify(*, run, comparison) -> dict:
    """Mail the staff and call the webhook; returns what was done (failures are logged, not raised)."""
    subject = f"Evaluation regressed: {run.label or run.tag or run.id}"
    cases = list(EvaluationCase.objects.filter(id__in=[c["id"] for c in comparison.worse]))  # a deleted one: hidden
    staff = get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="")
    mails = [(subject, _shown(comparison, {str(c.id) for c in cases_visible(cases, user=user)}, _page_url(run)),
              None, [user.email]) for user in staff]
    done = {"mailed": 0, "webhook": False}
    if mails:
        done["mailed"] = send_mass_mail(mails, fail_silently=True)
    if settings.EVALUATION_WEBHOOK_URL:
        public = {str(c.id) for c in cases_readable(cases, groups=[])}
        payload = {"text": f"{subject}\n{_shown(comparison, public, _page_url(run))}", "run": str(run.id),
                   "tag": run.tag, "regressions": comparison.regressions,
                   "cases": [{"id": c["id"], "question": c["question"] if str(c["id"]) in public else ""}
                             for c in comparison.worse]}
        try:
            webhook_post(settings.EVALUATION_WEBHOOK_URL, payload)
            done["webhook"] = True
        except (FetchError, httpx.HTTPError) as exc:
            logger.warning("evaluation webhook failed: %s", exc)
    return done
