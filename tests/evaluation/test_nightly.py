"""The nightly run: beat's schedule when a tag is set, and notices that name a case only to whom
may see it (a case about engineering's salaries is not mailed to staff outside engineering, nor
posted to the webhook with its question)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core import mail

from assistant.evaluation import notify
from assistant.evaluation.tasks import evaluation_nightly
from tests.chat.scripted_llm import Say
from tests.evaluation.conftest import SALARIES, make_case

BEAT = ("import django, json; django.setup(); from assistant.celery import app; "
        "entry = app.conf.beat_schedule.get('evaluation-nightly'); "
        "print(json.dumps(entry and {'task': entry['task'], 'hours': sorted(entry['schedule'].hour)}))")


def _beat_entry(**env: str):
    done = subprocess.run([sys.executable, "-c", BEAT], cwd=django_settings.BASE_DIR, capture_output=True, text=True,
                          env={**os.environ, "DJANGO_SETTINGS_MODULE": "assistant.settings", **env}, timeout=120,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_beat_runs_the_nightly_tag_at_its_hour_and_not_without_a_tag():
    assert _beat_entry(EVALUATION_NIGHTLY_TAG="nightly", EVALUATION_NIGHTLY_HOUR="3") == {
        "task": "assistant.evaluation.tasks.evaluation_nightly", "hours": [3]}
    assert _beat_entry(EVALUATION_NIGHTLY_TAG="") is None


@pytest.fixture
def two_leads(db, engineering, sales) -> tuple[User, User]:
    lead = User.objects.create_user("lead", password="lead-pass-123", is_staff=True, email="lead@example.com")
    lead.groups.add(engineering)
    other = User.objects.create_user("sales-lead", password="sales-pass-123", is_staff=True,
                                     email="sales@example.com")
    other.groups.add(sales)
    return lead, other


def test_a_regression_notice_names_a_case_only_to_whom_may_see_it(knowledge, scripted, two_leads, settings,
                                                                    monkeypatch):
    settings.EVALUATION_NIGHTLY_TAG = "nightly"
    settings.EVALUATION_WEBHOOK_URL = "https://hooks.example.com/evaluation"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    posted = []
    monkeypatch.setattr(notify, "webhook_post", lambda url, payload: posted.append(payload))
    model = scripted([Say("The band is 95,000 to 120,000 euros {cite:Salary bands}."),
                      Say("Train travel is first class from 2024 {cite:Travel policy 2024}.")])
    secret = make_case(question="What is the salary band of a senior engineer?", expected_answer="95,000 to 120,000",
                       expected_sources=[SALARIES], must_contain=["95,000"], groups=["engineering"], tags=["nightly"])
    public = make_case(must_contain=["first class"], tags=["nightly"])
    evaluation_nightly()
    model.replay([Say("I do not know.")])  # both cases fail the second night
    evaluation_nightly()
    by_reader = {m.to[0]: m.body for m in mail.outbox}
    assert set(by_reader) == {"lead@example.com", "sales@example.com"}
    assert "salary band" in by_reader["lead@example.com"] and str(secret.id) in by_reader["lead@example.com"]
    assert "salary band" not in by_reader["sales@example.com"] and str(secret.id) not in by_reader["sales@example.com"]
    assert "train travel" in by_reader["sales@example.com"] and "1 case(s) about sources you may not read" in \
        by_reader["sales@example.com"]
    cases = {c["id"]: c["question"] for c in posted[0]["cases"]}
    assert cases == {str(secret.id): "", str(public.id): public.question}
    assert "salary band" not in posted[0]["text"]
