"""What an answer did and drew on, in a real browser: the working indicator while the model
prepares its first token, the sources listed under the answer (cited ones first) on the real
retrieve-then-answer path, and an answer's stored steps folded into one line that unfolds.

The model is the scripted server of tests/chat/fake_llm.py behind a gate the test opens, so the
page is seen while it waits for the first token without waiting for any fixed time.
Screenshots (light and dark) go to docs/screenshots/.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from assistant.chat.models import Conversation, Message
from assistant.rag.citations import finalize_answer
from assistant.rag.retrieval import Passage
from assistant.rag.sources import sources_record
from connectors.models import Connector, Document
from tests.chat.fake_llm import SOURCE_BLOCK
from tests.conftest import ARTIFACTS, ROOT, free_port, service_env, stop_process, wait_for_http
from tests.e2e.test_chat_browser import _LeaveAnswerHandler, handbook, log_in  # noqa: F401 (a fixture)

pytestmark = pytest.mark.e2e
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
QUESTION = "How many days of paid annual leave do employees get?"
LAST = "article.message-assistant:last-of-type"
GIVEN_TITLE = re.compile(r'<source id="\d+" title="([^"]*)"')


class _GatedHandler(_LeaveAnswerHandler):
    """Answers only once the test opens the gate; fails the answer when the test says so."""

    def answer(self, messages: list[dict]) -> str:
        if not any(SOURCE_BLOCK.search(str(m.get("content", ""))) for m in messages):
            return "Paid annual leave"  # the conversation's title
        return super().answer(messages)

    def do_POST(self):  # noqa: N802
        self.server.gate.wait(120)
        if self.server.fail.is_set():
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._json(500, {"error": {"message": "the model crashed"}})
            return
        super().do_POST()


@pytest.fixture
def gated_app(transactional_db):
    model = ThreadingHTTPServer(("127.0.0.1", 0), _GatedHandler)
    model.requests, model.gate, model.fail = [], threading.Event(), threading.Event()
    threading.Thread(target=model.serve_forever, daemon=True).start()
    ARTIFACTS.mkdir(exist_ok=True)
    port, log = free_port(), ARTIFACTS / "web-gated.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "assistant.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log"],
        cwd=ROOT,
        env=service_env(LLM_BASE_URL=f"http://127.0.0.1:{model.server_address[1]}/v1", LLM_MODEL="fake",
                        LLM_CONNECT_RETRIES="1", ALLOWED_HOSTS="127.0.0.1,localhost",
                        # a larger model's window, and more hits: several documents under the answer
                        LLM_CONTEXT_LENGTH="32768", RAG_TOP_K="12"),
        stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", timeout=60, process=process, log=log)
        yield url, model
    finally:
        model.gate.set()
        stop_process(process)
        model.shutdown()
        model.server_close()


# Colour transitions still running after a theme switch (endless animations, a spinner, excepted).
TRANSITIONS_OVER = (
    "() => document.getAnimations().every((a) => a.playState !== 'running'"
    " || a.effect.getComputedTiming().iterations === Infinity)"
)


def shots(page, name: str) -> None:
    """The page in the light theme, then in the dark one."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(0, 0)  # no hover left on what was clicked last
    for scheme, suffix in (("light", ""), ("dark", "-dark")):
        page.emulate_media(color_scheme=scheme)
        page.wait_for_function(TRANSITIONS_OVER)
        page.screenshot(path=str(SCREENSHOTS / f"{name}{suffix}.png"))
    page.emulate_media(color_scheme="light")
    page.wait_for_function(TRANSITIONS_OVER)


def ask(page, url: str, question: str = QUESTION):
    User.objects.create_user("employee", password="employee-pass-123", first_name="Erin")
    log_in(page, url, "employee", "employee-pass-123")
    page.fill("#prompt", question)
    page.keyboard.press("Enter")
    return page.locator(LAST)


def test_the_page_shows_it_is_working_then_lists_the_sources_under_the_answer(handbook, gated_app, browser):
    url, model = gated_app
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    answer = ask(page, url)
    working = answer.locator(".working[role='status']")
    working.wait_for(timeout=60_000)  # the question is being retrieved and the model has not written yet
    assert "Thinking" in working.inner_text()
    shots(page, "chat-working")

    model.gate.set()
    page.wait_for_selector(f"{LAST}[data-status='complete']", timeout=120_000)
    assert working.count() == 0
    sources = answer.locator(".answer-sources li.source")
    # every document the model was given is listed, once, not only the one it cited
    prompts = [str(m.get("content", "")) for r in model.requests if r.get("stream") for m in r["messages"]]
    given = {html.unescape(title) for prompt in prompts for title in GIVEN_TITLE.findall(prompt)}
    assert given and set(sources.locator("a.source-title").all_inner_texts()) == given
    assert sources.count() == len(given)
    first = sources.first
    assert first.get_attribute("data-cited") == "true" and "Cited [" in first.inner_text()
    assert "Employee Handbook" in first.locator("a.source-title").inner_text()
    assert first.locator("a.source-title").get_attribute("href").startswith("/chat/documents/")
    assert "27 days of paid annual leave" in first.locator(".source-passage").inner_text()
    assert answer.locator(".answer-sources li.source[data-cited='true']").count() == 1
    titles = sources.locator("a.source-title").all_inner_texts()
    _show_all(answer, len(titles))
    shots(page, "chat-sources")

    # the same list, in the same order, after a reload (drawn by the server)
    page.reload()
    again = page.locator(f"{LAST} .answer-sources li.source a.source-title")
    assert again.all_text_contents() == titles
    assert page.locator(f"{LAST} .working").count() == 0


def _show_all(answer, count: int) -> None:
    """Beyond the first three, the sources wait behind "Show all"; it unfolds and folds them."""
    more = answer.locator(".sources-more")
    if count <= 3:
        assert more.count() == 0
        return
    visible = answer.locator(".answer-sources li.source:visible")
    assert visible.count() == 3 and f"Show all {count} sources" in more.inner_text()
    more.click()
    assert more.get_attribute("aria-expanded") == "true" and visible.count() == count
    more.click()
    assert visible.count() == 3 and more.get_attribute("aria-expanded") == "false"


def test_the_working_indicator_is_not_left_behind_by_an_error_or_stop(gated_app, browser):
    url, model = gated_app
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    answer = ask(page, url, "When does the dishwasher run?")
    answer.locator(".working").wait_for(timeout=60_000)
    page.click("#stop")
    page.wait_for_selector(f"{LAST}[data-status='stopped']", timeout=30_000)
    assert answer.locator(".working").count() == 0

    model.fail.set()
    model.gate.set()
    page.fill("#prompt", "And on weekends?")
    page.keyboard.press("Enter")
    failed = page.locator(LAST)
    failed.locator(".message-error").wait_for(timeout=60_000)
    assert failed.get_attribute("data-status") == "error"
    assert failed.locator(".working").count() == 0


POLICIES = {
    "Travel policy 2024.pdf": "Trains: first class is allowed for journeys over four hours; book through the travel desk.",
    "Travel policy 2023.pdf": "Trains: first class is allowed for journeys over six hours, with a manager's approval.",
    "Expenses guide.docx": "Keep every receipt. Claims are filed within 30 days of the trip in the expenses tool.",
    "Rail booking FAQ.md": "The travel desk books rail tickets within one working day; urgent trips by phone.",
    "Per diem rates 2024.csv": "Paris 90 EUR, Lyon 75 EUR, Berlin 85 EUR, London 110 GBP per day.",
}


def _documents() -> list[Document]:
    connector = Connector.objects.create(name="Policies", kind="folder", config={"path": "/srv/policies"},
                                         is_public=True)
    return [
        Document.objects.create(connector=connector, external_id=name, title=name, location=f"/srv/policies/{name}",
                                text=text, content_hash=name, acl_public=True)
        for name, text in POLICIES.items()
    ]


def _answer_with_sources(text: str, documents: list[Document]) -> dict:
    """The answer's HTML, citations and sources as the pipeline stores them."""
    passages = [
        Passage(n=n, chunk_id=n, document_id=str(d.id), title=d.title, location=d.location, url="",
                connector="Policies", text=d.text, start_char=0, end_char=len(d.text))
        for n, d in enumerate(documents, start=1)
    ]
    rendered, citations = finalize_answer(text, passages)
    return {"rendered_html": rendered, "citations": citations, "sources": sources_record(passages, citations)}


def _step(n: int, tool: str, arguments: dict, label: str, summary: str, documents=(), status="done", error=""):
    return {
        "id": f"call_{n}", "step": n, "tool": tool, "arguments": arguments, "status": status, "label": label,
        "summary": summary, "error": error, "duration_ms": 40 * n,
        "sources": [{"title": d.title, "url": reverse("chat:document", args=[d.id]), "connector": "Policies",
                     "document_id": str(d.id), "kind": "document"} for d in documents],
    }


def _sources_fold_behind_show_all(page) -> None:
    """Five sources, the two cited first and marked, three shown until "Show all"."""
    sources = page.locator(f"{LAST} .answer-sources li.source")
    assert sources.count() == 5
    assert sources.locator("a.source-title").all_inner_texts()[:2] == ["Travel policy 2024.pdf", "Travel policy 2023.pdf"]
    assert [sources.nth(i).get_attribute("data-cited") for i in range(5)] == ["true"] * 2 + ["false"] * 3
    _show_all(page.locator(LAST), 5)


def test_stored_steps_are_folded_unfold_on_click_or_keyboard_and_survive_a_reload(gated_app, browser):
    url, _ = gated_app
    user = User.objects.create_user("employee", password="employee-pass-123", first_name="Erin")
    documents = _documents()
    new, old = documents[:2]
    conversation = Conversation.objects.create(user=user, title="Travel policies compared", title_source="user")
    question = Message.objects.create(conversation=conversation, role="user",
                                      content="What changed between the 2023 and 2024 travel policies?")
    text = (
        "Trains: first class is now allowed for journeys over four hours [1]. "
        "In 2023 first class was allowed for journeys over six hours, with a manager's approval [2]."
    )
    answer = Message.objects.create(
        conversation=conversation, parent=question, role="assistant", content=text,
        **_answer_with_sources(text, documents), status=Message.Status.COMPLETE,
        steps=[
            _step(1, "search_knowledge", {"query": "travel policy 2024"}, "Searching “travel policy 2024”…",
                  "Found 5 passages in 2 documents", [new, old]),
            _step(2, "read_document", {"document": "Travel policy 2023.pdf", "part": 2},
                  "Reading “Travel policy 2023.pdf”…", "Read part 2 of 3", [old]),
            _step(3, "read_document", {"document": "Expenses.pdf"}, "Reading “Expenses.pdf”…", "", status="error",
                  error="No document named Expenses.pdf. Use search_knowledge to find one."),
        ],
    )
    Conversation.objects.filter(id=conversation.id).update(active_leaf=answer)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    log_in(page, url, "employee", "employee-pass-123")
    page.goto(f"{url}{conversation.get_absolute_url()}")

    for _ in range(2):  # as first drawn, then after a reload
        toggle = page.locator(f"{LAST} .steps-toggle")
        assert toggle.inner_text().strip() == "3 steps"
        assert toggle.get_attribute("aria-expanded") == "false"
        assert page.locator(f"{LAST} .steps-list").is_hidden()
        if _ == 0:
            shots(page, "chat-steps-folded")
        toggle.click()
        assert toggle.get_attribute("aria-expanded") == "true"
        steps = page.locator(f"{LAST} .step")
        assert steps.count() == 3
        assert steps.nth(0).locator(".step-label em").inner_text() == "travel policy 2024"
        assert "Found 5 passages in 2 documents" in steps.nth(0).inner_text()
        assert "query" in steps.nth(0).locator(".step-arguments").inner_text()
        link = steps.nth(1).locator(".step-sources a")
        assert link.inner_text() == "Travel policy 2023.pdf"
        assert link.get_attribute("href") == reverse("chat:document", args=[old.id])
        assert steps.nth(2).get_attribute("data-status") == "error"
        assert steps.nth(2).locator(".step-label .visually-hidden").text_content() == " (Failed)"  # said, not drawn
        assert "No document named" in steps.nth(2).locator(".step-error").inner_text()
        if _ == 0:
            _sources_fold_behind_show_all(page)
            page.locator("article.message-user").last.evaluate("(el) => el.scrollIntoView({block: 'start'})")
            shots(page, "chat-steps")
        # the keyboard folds and unfolds it too
        toggle.focus()
        page.keyboard.press("Enter")
        assert toggle.get_attribute("aria-expanded") == "false"
        page.keyboard.press("Space")
        assert toggle.get_attribute("aria-expanded") == "true"
        page.reload()


# The page's EventSource replaced by one the test drives: the events the agent loop sends
# (`step` running then done, tokens, `done`) played in order, each checked as it lands.
SCRIPTED_STREAM = """
window.__streams = [];
window.EventSource = class extends EventTarget {
  constructor(url) { super(); this.url = url; this.readyState = 1; window.__streams.push(this); }
  close() { this.readyState = 2; }
};
"""
EMIT = "([name, data]) => window.__streams.at(-1).dispatchEvent(new MessageEvent(name, {data: JSON.stringify(data)}))"


def _live(n: int, status: str, label: str, **extra) -> dict:
    return {"id": f"call_{n}", "step": n, "tool": "search_knowledge", "arguments": {"query": "travel policy"},
            "status": status, "label": label, "summary": "", "sources": [], "error": "", "duration_ms": None,
            **extra}


def test_live_steps_replace_the_working_indicator_then_fold_when_the_answer_starts(gated_app, browser):
    url, _ = gated_app
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.add_init_script(SCRIPTED_STREAM)
    answer = ask(page, url, "Compare the 2023 and 2024 travel policies.")
    answer.locator(".working").wait_for()
    page.wait_for_function("() => window.__streams.length === 1")

    page.evaluate(EMIT, ["step", _live(1, "running", "Searching “travel policy 2024”…")])
    step = answer.locator(".step[data-step-id='call_1']")
    assert step.get_attribute("data-status") == "running" and answer.locator(".working").count() == 0
    assert step.locator(".step-label em").inner_text() == "travel policy 2024"
    assert step.locator(".step-label .visually-hidden").text_content() == " (In progress)"
    assert answer.locator(".steps-toggle").is_hidden()  # unfolded while it works
    page.evaluate(EMIT, ["step", _live(1, "done", "Searching “travel policy 2024”…", duration_ms=12,
                                       summary="Found 5 passages in 3 documents")])
    assert answer.locator(".step").count() == 1  # the same step, updated in place
    assert step.get_attribute("data-status") == "done" and "Found 5 passages" in step.inner_text()
    assert step.locator(".step-label .visually-hidden").count() == 0
    page.evaluate(EMIT, ["step", _live(2, "running", "Reading “Travel policy 2023.pdf”…")])
    assert answer.locator(".step").count() == 2

    page.evaluate(EMIT, ["step", _live(2, "done", "Reading “Travel policy 2023.pdf”…", summary="Read part 1")])
    page.evaluate(EMIT, ["token", {"text": "In 2024 first class "}])
    toggle = answer.locator(".steps-toggle")
    assert toggle.is_visible() and toggle.inner_text().strip() == "2 steps"
    assert toggle.get_attribute("aria-expanded") == "false" and answer.locator(".steps-list").is_hidden()
    page.evaluate(EMIT, ["done", {"status": "complete", "html": "<p>In 2024 first class is allowed.</p>",
                                  "citations": [], "sources": [], "steps": []}])
    assert answer.get_attribute("data-status") == "complete"
    toggle.click()
    assert answer.locator(".step").nth(1).locator(".step-summary").inner_text() == "Read part 1"
