"""/evaluation/: runs from the page in a worker with progress, the charts per metric, one run's
cases, two runs side by side; the nightly run and its notices; EN and FR."""

from __future__ import annotations

import json

import httpx
import pytest
from django.contrib.auth.models import User
from django.core import mail

from assistant.evaluation import notify
from assistant.evaluation.models import CaseResult, EvaluationRun
from assistant.evaluation.tasks import evaluation_nightly
from connectors.safe_http import BlockedAddress
from tests.chat.scripted_llm import Say
from tests.evaluation.conftest import SALARIES, evaluate, make_case

GOOD = "Train travel is first class from 2024 {cite:Travel policy 2024}."


@pytest.fixture
def lead(db, engineering) -> User:
    user = User.objects.create_user("lead", password="lead-pass-123", is_staff=True, email="lead@example.com")
    user.groups.add(engineering)
    return user


@pytest.fixture
def sales_lead(db, sales) -> User:
    user = User.objects.create_user("sales-lead", password="sales-pass-123", is_staff=True)
    user.groups.add(sales)
    return user


def test_a_run_started_on_the_page_runs_in_the_worker_the_cases_the_starter_may_see(
        client, lead, sales_lead, knowledge, scripted, django_capture_on_commit_callbacks):
    scripted([Say(GOOD)])
    make_case()
    make_case(question="Salary band of a senior engineer?", expected_sources=[SALARIES], groups=["engineering"])
    client.force_login(sales_lead)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/evaluation/runs/start/", {"label": "from the page"})
    run = EvaluationRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/evaluation/runs/{run.id}/"
    assert run.total == 1 and run.trigger == "page" and run.started_by == sales_lead
    progress = client.get(f"/evaluation/runs/{run.id}/progress/").json()
    assert progress == {"status": "succeeded", "done": 1, "total": 1, "error": "", "label": "Finished"}
    page = client.get(f"/evaluation/runs/{run.id}/").content.decode()
    assert "What class is train travel in 2024?" in page and "Salary band" not in page


def test_the_page_refuses_a_run_with_no_case(client, lead, db):
    client.force_login(lead)
    response = client.post("/evaluation/runs/start/", {"tag": "nothing"}, follow=True)
    assert "No case you may see" in response.content.decode() and not EvaluationRun.objects.exists()


def test_the_dashboard_charts_each_metric_and_compares_two_runs(client, lead, knowledge, scripted):
    model = scripted([Say(GOOD)])
    case = make_case(must_contain=["first class"])
    evaluate("--label", "before")
    model.replay([Say("Train travel is in second class {cite:Travel policy 2024}.")])
    evaluate("--label", "after")
    before, after = EvaluationRun.objects.order_by("created_at")
    client.force_login(lead)
    html = client.get("/evaluation/").content.decode()
    assert 'data-metric="must_contain"' in html and "<polyline" in html and "<script>" not in html
    assert "before" in html and "after" in html
    compared = client.get(f"/evaluation/compare/?a={before.id}&b={after.id}").content.decode()
    assert "Train travel is first class from 2024 [1]." in compared and "second class" in compared
    assert "now fails" in compared and "Travel policy 2024" in compared
    assert client.get("/evaluation/compare/?a=x&b=y").status_code == 400
    detail = client.get(f"/evaluation/runs/{after.id}/").content.decode()
    assert "Must contain" in detail and str(case.id) in detail


def test_run_pages_hide_results_of_cases_the_reader_may_not_see(client, sales_lead, knowledge, scripted):
    scripted([Say("The band is 95,000 to 120,000 euros {cite:Salary bands}.")])
    make_case(question="Salary band of a senior engineer?", expected_sources=[SALARIES], groups=["engineering"])
    evaluate()
    run = EvaluationRun.objects.get()
    client.force_login(sales_lead)
    page = client.get(f"/evaluation/runs/{run.id}/").content.decode()
    assert "Salary band" not in page and "95,000" not in page


def test_the_nightly_run_mails_staff_and_calls_the_webhook_when_it_regressed(knowledge, scripted, lead, settings,
                                                                             monkeypatch):
    settings.EVALUATION_NIGHTLY_TAG = "travel"
    settings.EVALUATION_WEBHOOK_URL = "https://hooks.example.com/evaluation"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    posted = []
    monkeypatch.setattr(notify, "webhook_post", lambda url, payload: posted.append((url, payload)))
    model = scripted([Say(GOOD)])
    case = make_case(must_contain=["first class"])
    assert evaluation_nightly() is not None  # the first night: nothing to compare with
    assert not mail.outbox and not posted
    model.replay([Say("Train travel is in second class.")])
    evaluation_nightly()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["lead@example.com"]
    assert str(case.id) in mail.outbox[0].body and "must_contain" in mail.outbox[0].body
    assert posted and posted[0][1]["cases"][0]["id"] == str(case.id)
    assert EvaluationRun.objects.filter(trigger="schedule").count() == 2


def test_the_webhook_is_guarded_like_other_outbound_requests(settings):
    settings.EVALUATION_WEBHOOK_ALLOWED_HOSTS = []
    with pytest.raises(BlockedAddress):
        notify.webhook_post("http://127.0.0.1:9/hook", {"text": "x"})


def test_the_webhook_posts_json_to_an_allowed_host(settings):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings.EVALUATION_WEBHOOK_ALLOWED_HOSTS = [f"127.0.0.1:{server.server_address[1]}"]
        notify.webhook_post(f"http://127.0.0.1:{server.server_address[1]}/hook", {"text": "regressed"})
    finally:
        server.shutdown()
    assert received == [{"text": "regressed"}]
    assert httpx


def test_the_run_pages_speak_french(client, lead, knowledge, scripted):
    scripted([Say(GOOD)])
    make_case()
    evaluate()
    client.force_login(lead)
    html = client.get("/evaluation/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Lancer une évaluation" in html
    run = EvaluationRun.objects.get()
    assert "Terminée" in client.get(f"/evaluation/runs/{run.id}/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert CaseResult.objects.count() == 1
